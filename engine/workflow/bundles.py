"""What is uploaded to deploy: BPMN and DMN sources and JSON forms, read as untrusted input (size and depth
limits, no entities or network), with the forms a diagram names looked up in forms/ and its policy folders."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as safe_et
from defusedxml import DefusedXmlException
from lxml import etree

from engine.core.errors import Invalid, Problem

MAX_SOURCE_BYTES = 2 * 1024 * 1024
MAX_FORM_BYTES = 512 * 1024
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
DMN_NAMESPACES = ("https://www.omg.org/spec/DMN/", "http://www.omg.org/spec/DMN/")


@dataclass
class Bundle:
    """What one deployment carries: sources by filename, forms by filename."""

    sources: dict[str, str] = field(default_factory=dict)
    forms: dict[str, Any] = field(default_factory=dict)
    forms_dir: Path | None = None  # where named forms not in the upload are looked up


@dataclass
class ParsedProcess:
    """One executable process parsed from a bundle, with the forms it uses."""

    key: str
    name: str
    spec: Any
    subprocess_specs: dict[str, Any]
    forms: dict[str, Any]
    files: list[str] = field(default_factory=list)  # the sources it is built from


@dataclass(frozen=True)
class Deployed:
    """The result of deploying one process: its key and version, and whether it was new."""

    key: str
    version: int
    created: bool


# --------------------------------------------------------------------------- reading untrusted input


def _decode(name: str, raw: bytes | str, limit: int) -> str:
    data = raw.encode() if isinstance(raw, str) else raw
    if len(data) > limit:
        raise Invalid(f"{name}: file is larger than {limit // 1024} KiB", [Problem(
            f"file is larger than {limit // 1024} KiB", element=name)])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Invalid(f"{name}: not UTF-8", [Problem("file is not UTF-8 text", element=name)]) from exc


def safe_xml(name: str, text: str) -> etree._Element:
    """Parse untrusted XML: no DTDs or entities (XXE, billion laughs), no network, bounded size."""
    try:
        # defusedxml refuses any DOCTYPE/entity declaration before lxml sees the document.
        safe_et.fromstring(text.encode(), forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise Invalid(f"{name}: refused", [Problem(
            f"DTDs and entity declarations are not allowed ({type(exc).__name__})", element=name)]) from exc
    except safe_et.ParseError as exc:
        raise Invalid(f"{name}: not well-formed XML", [Problem(
            f"not well-formed XML: {exc}", element=name)]) from exc
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                             remove_comments=True)
    try:
        root = etree.fromstring(text.encode(), parser=parser)
    except etree.XMLSyntaxError as exc:  # lxml's own limits (nesting past 256 levels...) and what expat let by
        raise Invalid(f"{name}: refused", [Problem(f"not an XML document this service reads: {exc}",
                                                   element=name)]) from exc
    depth, deepest = _depth(root)
    if depth > MAX_XML_DEPTH:
        where = deepest.get("id") or etree.QName(deepest).localname
        raise Invalid(f"{name}: nested too deep", [Problem(
            f"elements are nested {depth} levels deep (at most {MAX_XML_DEPTH}), at {where}", element=name)])
    return root


#: The deepest nesting of elements a diagram may have: real diagrams stay under 30 (subprocesses in
#: subprocesses with their extension elements); the parsers that read them recurse once or more per level.
MAX_XML_DEPTH = 100


#: The deepest nesting of objects and lists a form (JSON schema or UI schema) may have: the forms in forms/ stay
#: at 10 or less; jsonschema's check and the form renderer recurse several frames per level (at 75 levels of
#: "properties" a check of the schema ran out of stack: a server error).
MAX_FORM_DEPTH = 32


def json_depth(value: Any, limit: int) -> int:
    """How deeply objects and lists nest in `value` (a scalar is 0, `{}` and `[1]` are 1); iteratively, and it
    stops counting past `limit`."""
    depth, level = 0, [value]
    while depth <= limit:
        containers = [item for item in level if isinstance(item, dict | list)]
        if not containers:
            return depth
        depth += 1
        level = [child for item in containers for child in (item.values() if isinstance(item, dict) else item)]
    return depth


def _depth(root: etree._Element) -> tuple[int, etree._Element]:
    """How deep the elements are nested (the root is 1), and the element deepest down; iteratively."""
    deepest, best = root, 1
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if depth > best:
            deepest, best = element, depth
        stack.extend((child, depth + 1) for child in element if isinstance(child.tag, str))
    return best, deepest


def read_bundle(files: Mapping[str, bytes | str], forms_dir: Path | None) -> Bundle:
    """Sort uploaded files into sources (.bpmn/.dmn) and forms (.json); read names forms from forms_dir."""
    bundle = Bundle(forms_dir=forms_dir)
    for name, raw in files.items():
        base = Path(name).name
        lower = base.lower()
        if lower.endswith((".bpmn", ".dmn", ".xml")):
            bundle.sources[base] = _decode(base, raw, MAX_SOURCE_BYTES)
        elif lower.endswith(".json"):
            text = _decode(base, raw, MAX_FORM_BYTES)
            try:
                bundle.forms[base] = json.loads(text)
            except json.JSONDecodeError as exc:
                raise Invalid(f"{base}: not valid JSON", [Problem(
                    f"not valid JSON: {exc.msg} (line {exc.lineno})", element=base)]) from exc
            except RecursionError as exc:  # "[[[[..." nested deeper than the parser's stack
                raise Invalid(f"{base}: nested too deeply", [Problem(
                    "not accepted: the JSON is nested too deeply", element=base)]) from exc
        else:
            raise Invalid(f"{base}: unsupported file", [Problem(
                "only .bpmn, .dmn and .json files can be deployed", element=base)])
    if not bundle.sources:
        raise Invalid("nothing to deploy", [Problem("no .bpmn file was given")])
    return bundle


def form_from_dir(forms_dir: Path | None, name: str) -> Any | None:
    """A form named by a diagram, from `forms_dir` or one of its policy folders (forms/<policy>/): form file names
    are unique across policies."""
    if forms_dir is None or "/" in name or "\\" in name or name.startswith("."):
        return None
    folders = sorted(d for d in forms_dir.iterdir() if d.is_dir()) if forms_dir.is_dir() else []
    candidates = [forms_dir / name, *(folder / name for folder in folders)]  # never a glob: the name is untrusted
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


# --------------------------------------------------------------------------- parsing and validation


def is_dmn(root: etree._Element) -> bool:
    return isinstance(root.tag, str) and root.tag.startswith("{") and root.tag[1:].startswith(DMN_NAMESPACES)
