"""The browsable API reference: the OpenAPI document turned into plain rows for a server-side page.

No Swagger UI: it needs scripts from a CDN (or a bundle we would have to vendor) and inline script that
the Content-Security-Policy forbids. A plain page works offline, with a keyboard and a screen reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup, escape

_METHOD_ORDER = {"get": 0, "post": 1, "put": 2, "patch": 3, "delete": 4}


@dataclass
class Row:
    """One field of a body, parameter or schema."""

    name: str
    type: str
    required: bool
    notes: str


@dataclass
class Operation:
    """One call, ready for the template."""

    method: str
    path: str
    anchor: str
    summary: str
    description: str
    tag: str
    secured: bool
    parameters: list[Row] = field(default_factory=list)
    bodies: list[tuple[str, str, list[Row]]] = field(default_factory=list)  # media type, schema name, rows
    responses: list[tuple[str, str, str]] = field(default_factory=list)  # code, description, schema name


def inline_code(text: str) -> Markup:
    """Text with `backticked` parts as <code>, everything escaped."""
    parts = str(text).split("`")
    return Markup("").join(Markup("<code>{}</code>").format(part) if i % 2 else escape(part)
                           for i, part in enumerate(parts))


def _ref_name(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref", "")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else ""


def type_text(schema: dict[str, Any]) -> str:
    """A short human description of a schema's type: 'string (date)', 'list of TaskOut', 'Errors'."""
    if "$ref" in schema:
        return _ref_name(schema)
    if "anyOf" in schema:
        parts = [type_text(s) for s in schema["anyOf"]]
        return " or ".join(p for p in parts if p) or "any"
    kind = schema.get("type")
    if kind == "array":
        return f"list of {type_text(schema.get('items', {}))}"
    if kind == "object" and "properties" not in schema:
        return "object"
    if "enum" in schema or "const" in schema:
        return " | ".join(repr(v) for v in schema.get("enum", [schema.get("const")]))
    text = str(kind or "any")
    return f"{text} ({schema['format']})" if "format" in schema else text


def _notes(schema: dict[str, Any]) -> str:
    notes = [str(schema["description"])] if schema.get("description") else []
    for key, label in (("minLength", "at least {} characters"), ("maxLength", "at most {} characters"),
                       ("minimum", "at least {}"), ("maximum", "at most {}"), ("default", "default {}")):
        if key in schema and schema[key] not in (None, ""):
            notes.append(label.format(schema[key]))
    return "; ".join(notes)


def rows_of(schema: dict[str, Any], components: dict[str, Any]) -> list[Row]:
    """The fields of an object schema (following one $ref)."""
    if "$ref" in schema:
        schema = components.get(_ref_name(schema), {})
    required = set(schema.get("required", []))
    return [Row(name, type_text(prop), name in required, _notes(prop))
            for name, prop in (schema.get("properties") or {}).items()]


def _operation(path: str, method: str, op: dict[str, Any], components: dict[str, Any],
               default_secured: bool) -> Operation:
    secured = bool(op.get("security", [{}] if default_secured else []))
    result = Operation(
        method=method.upper(), path=path, anchor=op.get("operationId", f"{method}{path}"),
        summary=op.get("summary", ""), description=op.get("description", ""),
        tag=(op.get("tags") or ["other"])[0], secured=secured)
    for param in op.get("parameters", []):
        result.parameters.append(Row(f"{param['name']} ({param['in']})", type_text(param.get("schema", {})),
                                     bool(param.get("required")), _notes(param.get("schema", {}))))
    for media, content in (op.get("requestBody", {}).get("content") or {}).items():
        schema = content.get("schema", {})
        result.bodies.append((media, _ref_name(schema) or type_text(schema), rows_of(schema, components)))
    for code, response in sorted(op.get("responses", {}).items()):
        schema = (response.get("content") or {}).get("application/json", {}).get("schema", {})
        result.responses.append((code, response.get("description", ""), type_text(schema) if schema else ""))
    return result


def docs_page_context(doc: dict[str, Any]) -> dict[str, Any]:
    """What api/docs.html shows: info, operations grouped by tag, and every schema's fields."""
    components = doc.get("components", {}).get("schemas", {})
    default_secured = bool(doc.get("security"))
    operations = [
        _operation(path, method, op, components, default_secured)
        for path, item in doc.get("paths", {}).items() for method, op in item.items()
    ]
    operations.sort(key=lambda o: (o.path, _METHOD_ORDER.get(o.method.lower(), 9)))
    groups: dict[str, list[Operation]] = {}
    for op in operations:
        groups.setdefault(op.tag, []).append(op)
    schemas = [(name, schema.get("description", ""), rows_of(schema, components))
               for name, schema in sorted(components.items())]
    return {"info": doc.get("info", {}), "openapi_version": doc.get("openapi", ""), "groups": groups,
            "schemas": schemas, "code": inline_code}
