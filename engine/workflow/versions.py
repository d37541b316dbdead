"""The process owners' studio, engine side: versions, drafts, deploy from the modeler, roll back, compare.

A version keeps the files its process is built from (`ProcessDefinition.sources`). The modeler edits
the file that defines the process; a deployment from the studio is that version's files with the edited
one replaced, plus the forms as edited. Rolling back deploys an earlier version's content again as a
new version (history is never rewritten), so running cases keep the version they run on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.core.clock import CLOCK
from engine.core.db import Database
from engine.core.errors import Forbidden, Invalid, NotFound, Problem
from engine.people.groups import group_names
from engine.people.models import User
from engine.workflow.access import may_deploy
from engine.workflow.assignment import lanes_with_groups
from engine.workflow.bundles import BPMN_NS, MAX_FORM_BYTES, MAX_SOURCE_BYTES, Bundle, Deployed, read_bundle, safe_xml
from engine.workflow.definitions import deploy, latest_definition, with_deployed_callees
from engine.workflow.models import ProcessDefinition, ProcessDraft, ProcessInstance
from engine.workflow.parsing import validate_bundle
from engine.workflow.validation import SPIFF_NS

_NS = {"bpmn": BPMN_NS, "spiffworkflow": SPIFF_NS}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,150}\.(bpmn|dmn|json)$")


def require_owner(user: User) -> None:
    """Only process owners and administrators use the studio."""
    if not may_deploy(user):
        raise Forbidden("only process owners and administrators may do this")


# --------------------------------------------------------------------------- reading versions


def definition(session: Session, key: str, version: int | None = None) -> ProcessDefinition:
    """A version of a process (the newest when version is None), or NotFound."""
    if version is None:
        row = latest_definition(session, key)
    else:
        row = session.scalars(select(ProcessDefinition).where(
            ProcessDefinition.key == key, ProcessDefinition.version == version)).first()
    if row is None:
        raise NotFound(f"no version {version} of process '{key}'" if version else f"no process '{key}'")
    return row


def versions(session: Session, key: str) -> list[ProcessDefinition]:
    """Every version of a process, newest first."""
    rows = list(session.scalars(select(ProcessDefinition).where(ProcessDefinition.key == key)
                                .order_by(ProcessDefinition.version.desc())))
    if not rows:
        raise NotFound(f"no process '{key}'")
    return rows


def processes(session: Session) -> list[dict[str, Any]]:
    """Each process: key, name, newest version, number of versions, running cases, draft (if any)."""
    counts = dict(session.execute(select(ProcessDefinition.key, func.count()).group_by(ProcessDefinition.key)).all())
    running = dict(session.execute(select(ProcessInstance.process_key, func.count())
                                   .where(ProcessInstance.status == "running")
                                   .group_by(ProcessInstance.process_key)).all())
    drafts = {d.process_key: d for d in session.scalars(select(ProcessDraft))}
    newest = (select(ProcessDefinition.key, func.max(ProcessDefinition.version).label("v"))
              .group_by(ProcessDefinition.key).subquery())
    latest = session.scalars(select(ProcessDefinition).join(
        newest, (ProcessDefinition.key == newest.c.key) & (ProcessDefinition.version == newest.c.v))
        .order_by(ProcessDefinition.key)).all()
    out = [{"key": d.key, "name": d.name, "version": d.version, "versions": counts.get(d.key, 0),
            "running": running.get(d.key, 0), "deployed_at": d.deployed_at, "deployed_by": d.deployed_by,
            "draft": drafts.pop(d.key, None)} for d in latest]
    # Drafts of processes never deployed (imports that do not deploy yet).
    out.extend({"key": k, "name": k, "version": None, "versions": 0, "running": 0, "deployed_at": None,
                "deployed_by": None, "draft": d} for k, d in sorted(drafts.items()))
    return out


def main_file(row: ProcessDefinition) -> str:
    """The source file that defines the version's process (the one the modeler edits)."""
    for name, text in row.sources.items():
        if name.lower().endswith(".dmn"):
            continue
        root = safe_xml(name, text)
        if any(p.get("id") == row.key for p in root.iter(f"{{{BPMN_NS}}}process")):
            return name
    return next(iter(row.sources))


def source_file(row: ProcessDefinition, filename: str | None = None) -> tuple[str, str]:
    """(filename, text) of one file of a version: the main file unless another is named."""
    name = filename or main_file(row)
    if name not in row.sources:
        raise NotFound(f"version {row.version} of '{row.key}' has no file '{name}'")
    return name, str(row.sources[name])


# --------------------------------------------------------------------------- drafts


@dataclass
class Draft:
    """What the modeler edits: one BPMN file and the forms, based on a version (or on nothing, for imports)."""

    key: str
    filename: str
    xml: str
    forms: dict[str, Any]
    base_version: int | None
    saved_at: str | None = None
    saved_by: str | None = None
    other_files: list[str] = field(default_factory=list)


def saved_draft(session: Session, key: str) -> ProcessDraft | None:
    """The saved draft of a process, if any."""
    return session.scalars(select(ProcessDraft).where(ProcessDraft.process_key == key)).first()


def open_draft(session: Session, key: str, version: int | None = None) -> Draft:
    """The saved draft of a process, else the given (or newest) version as a new draft."""
    saved = saved_draft(session, key)
    if saved is not None and version is None:
        base = latest_definition(session, key)
        others = [f for f in (base.sources if base else {}) if f != saved.filename]
        return Draft(key, saved.filename, saved.xml, dict(saved.forms), saved.base_version,
                     saved.updated_at.isoformat(), saved.updated_by, others)
    row = definition(session, key, version)
    name, text = source_file(row)
    return Draft(key, name, text, dict(row.forms), row.version, other_files=[f for f in row.sources if f != name])


def _check_inputs(filename: str, xml: Any, forms: Any) -> tuple[str, str, dict[str, Any]]:
    if not isinstance(filename, str) or not _SAFE_NAME.match(filename) or not filename.endswith(".bpmn"):
        raise Invalid("bad file name", [Problem("must be a plain file name ending in .bpmn", field="filename")])
    if not isinstance(xml, str) or not xml.strip():
        raise Invalid("no diagram", [Problem("the diagram is empty", field="xml")])
    if len(xml.encode()) > MAX_SOURCE_BYTES:
        raise Invalid("diagram too large", [Problem(
            f"the diagram is larger than {MAX_SOURCE_BYTES // 1024} KiB", field="xml")])
    if not isinstance(forms, dict):
        raise Invalid("forms must be an object", [Problem("must be an object of file name -> schema", field="forms")])
    for name, schema in forms.items():
        if not isinstance(name, str) or not _SAFE_NAME.match(name) or not name.endswith(".json"):
            raise Invalid("bad form name", [Problem(
                "form names are plain file names ending in .json", field=str(name))])
        if len(json.dumps(schema)) > MAX_FORM_BYTES:
            raise Invalid("form too large", [Problem(f"larger than {MAX_FORM_BYTES // 1024} KiB", field=name)])
    return filename, xml, forms


def save_draft(db: Database, user: User, key: str, filename: Any, xml: Any, forms: Any,
               base_version: int | None) -> Draft:
    """Keep the modeler's work as the process's draft (one per process; the last save wins)."""
    require_owner(user)
    filename, xml, forms = _check_inputs(filename, xml, forms)
    safe_xml(filename, xml)  # refuse hostile XML before it is stored
    with db.unit_of_work() as uow:
        row = uow.session.scalars(select(ProcessDraft).where(ProcessDraft.process_key == key)).first()
        if row is None:
            row = ProcessDraft(process_key=key, filename=filename, xml=xml, forms=forms, base_version=base_version,
                               updated_at=CLOCK.now(), updated_by=user.username)
            uow.session.add(row)
        else:
            row.filename, row.xml, row.forms, row.base_version = filename, xml, forms, base_version
            row.updated_at, row.updated_by = CLOCK.now(), user.username
        uow.commit()
        return Draft(key, filename, xml, forms, base_version, row.updated_at.isoformat(), user.username)


def discard_draft(db: Database, user: User, key: str) -> bool:
    """Forget the draft of a process; True when there was one."""
    require_owner(user)
    with db.unit_of_work() as uow:
        row = uow.session.scalars(select(ProcessDraft).where(ProcessDraft.process_key == key)).first()
        if row is None:
            return False
        uow.session.delete(row)
        uow.commit()
        return True


def draft_bundle(session: Session, key: str | None, filename: str, xml: str, forms: dict[str, Any],
                 forms_dir: Any) -> Bundle:
    """A deployable bundle: the newest version's other files, the edited file, and the forms."""
    files: dict[str, Any] = {}
    base = latest_definition(session, key) if key else None
    if base is not None:
        main = main_file(base)
        files.update({name: text for name, text in base.sources.items() if name != main})
        files.update({name: json.dumps(schema) for name, schema in base.forms.items()})
    files[filename] = xml
    files.update({name: json.dumps(schema) for name, schema in forms.items()})
    return read_bundle(files, forms_dir)


def validate_draft(db: Database, user: User, key: str | None, filename: Any, xml: Any, forms: Any,
                   forms_dir: Any) -> list[Problem]:
    """Every problem of the modeler's current diagram and forms (nothing is stored)."""
    require_owner(user)
    filename, xml, forms = _check_inputs(filename, xml, forms)
    with db.read() as session:
        try:
            bundle = with_deployed_callees(session, draft_bundle(session, key, filename, xml, forms, forms_dir))
        except Invalid as exc:
            return exc.problems
        groups = group_names(session)
    with lanes_with_groups(groups):
        return validate_bundle(bundle)


def deploy_draft(db: Database, user: User, key: str | None, filename: Any, xml: Any, forms: Any,
                 forms_dir: Any) -> list[Deployed]:
    """Deploy the modeler's diagram and forms as new versions (audited); the process's draft is cleared."""
    require_owner(user)
    filename, xml, forms = _check_inputs(filename, xml, forms)
    with db.unit_of_work() as uow:
        bundle = draft_bundle(uow.session, key, filename, xml, forms, forms_dir)
        results = deploy(uow.session, bundle, user.username, reason="deployed from the studio")
        keys = {r.key for r in results} | ({key} if key else set())
        for row in uow.session.scalars(select(ProcessDraft).where(ProcessDraft.process_key.in_(keys))):
            uow.session.delete(row)
        uow.commit()
    return results


def import_files(db: Database, user: User, files: dict[str, bytes], forms_dir: Any) -> tuple[str, list[Problem]]:
    """Keep an uploaded diagram (made elsewhere) as a draft, whatever its problems; returns (key, problems).

    Hostile XML is refused outright. Otherwise the diagram opens in the modeler even when it cannot be
    deployed, so the owner can see and fix what is unsupported.
    """
    require_owner(user)
    bundle = read_bundle(files, forms_dir)
    bpmn = [name for name in bundle.sources if name.lower().endswith((".bpmn", ".xml"))]
    if len(bpmn) != 1:
        raise Invalid("import one diagram at a time", [Problem(
            "give exactly one .bpmn file (forms as .json files beside it)", field="file")])
    name = bpmn[0]
    root = safe_xml(name, bundle.sources[name])
    processes = [p for p in root.iter(f"{{{BPMN_NS}}}process") if p.get("id")]
    if root.tag != f"{{{BPMN_NS}}}definitions" or not processes:
        raise Invalid("not a BPMN diagram", [Problem("the file has no bpmn:process with an id", element=name)])
    executable = [p for p in processes if p.get("isExecutable") == "true"]
    key = str((executable or processes)[0].get("id"))
    filename = name if name.lower().endswith(".bpmn") else name.rsplit(".", 1)[0] + ".bpmn"
    if not _SAFE_NAME.match(filename):
        filename = f"{key}.bpmn" if _SAFE_NAME.match(f"{key}.bpmn") else "imported.bpmn"
    with db.read() as session, lanes_with_groups(group_names(session)):
        problems = validate_bundle(with_deployed_callees(session, read_bundle(files, forms_dir)))
        base = latest_definition(session, key)
    save_draft(db, user, key, filename, bundle.sources[name], dict(bundle.forms),
               base.version if base else None)
    return key, problems


def deploy_files(db: Database, user: User, files: dict[str, bytes], forms_dir: Any) -> list[Deployed]:
    """Deploy uploaded files as one bundle (a process with the processes it calls, its DMN and forms); audited."""
    require_owner(user)
    bundle = read_bundle(files, forms_dir)
    with db.unit_of_work() as uow:
        results = deploy(uow.session, bundle, user.username, reason="uploaded in the studio")
        uow.commit()
    return results


def rollback(db: Database, user: User, key: str, version: int) -> Deployed:
    """Deploy an earlier version's content again, as a new version."""
    require_owner(user)
    with db.unit_of_work() as uow:
        row = definition(uow.session, key, version)
        latest = latest_definition(uow.session, key)
        if latest is not None and latest.content_hash == row.content_hash:
            raise Invalid(f"version {latest.version} already runs this content", [Problem(
                f"version {version} has the same content as the newest version {latest.version}", field="version")])
        bundle = Bundle(sources=dict(row.sources), forms=dict(row.forms))
        results = [r for r in deploy(uow.session, bundle, user.username, reason=f"rolled back to version {version}")
                   if r.key == key]
        uow.commit()
    if not results:
        raise NotFound(f"version {version} of '{key}' does not define '{key}'")
    return results[0]


# --------------------------------------------------------------------------- comparing versions


@dataclass
class ElementInfo:
    """What the comparison looks at for one BPMN element."""

    id: str
    kind: str
    name: str
    details: dict[str, str]


def _text(node: etree._Element | None) -> str:
    return " ".join((node.text or "").split()) if node is not None else ""


def elements(xml: str, filename: str = "diagram.bpmn") -> dict[str, ElementInfo]:
    """The process elements of a diagram by id, with the properties the engine reads."""
    root = safe_xml(filename, xml)
    lanes: dict[str, str] = {}
    for ref in root.iter(f"{{{BPMN_NS}}}flowNodeRef"):
        lane = ref.getparent()
        if ref.text and lane is not None:
            lanes[ref.text.strip()] = lane.get("name") or lane.get("id") or ""
    out: dict[str, ElementInfo] = {}
    for process in root.iter(f"{{{BPMN_NS}}}process"):
        for node in process.iter():
            if not isinstance(node.tag, str) or not node.tag.startswith(f"{{{BPMN_NS}}}") or not node.get("id"):
                continue
            kind = etree.QName(node).localname
            if kind in ("flowNodeRef", "incoming", "outgoing", "laneSet", "extensionElements"):
                continue
            details: dict[str, str] = {}
            for prop in node.xpath("./bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property",
                                   namespaces=_NS):
                details[f"property {prop.get('name')}"] = prop.get("value") or ""
            for tag in ("instructionsForEndUser", "preScript", "postScript"):
                found = node.find(f"./{{{BPMN_NS}}}extensionElements/{{{SPIFF_NS}}}{tag}")
                if found is not None:
                    details[tag] = _text(found)
            for tag, label in (("script", "script"), ("conditionExpression", "condition"),
                               ("timeDate", "timer date"), ("timeDuration", "timer duration"),
                               ("timeCycle", "timer cycle")):
                found = node.find(f".//{{{BPMN_NS}}}{tag}")
                if found is not None and (kind != "process"):
                    details[label] = _text(found)
            if node.get("id") in lanes:
                details["lane"] = lanes[node.get("id") or ""]
            for attr in ("sourceRef", "targetRef", "attachedToRef", "calledElement"):
                if node.get(attr):
                    details[attr] = str(node.get(attr))
            out[str(node.get("id"))] = ElementInfo(str(node.get("id")), kind, node.get("name") or "", details)
    return out


def _form_fields(schema: Any, prefix: str = "") -> dict[str, str]:
    """Field path -> a compact description (type, required, choices), for comparing forms."""
    out: dict[str, str] = {}
    if not isinstance(schema, dict):
        return out
    required = set(schema.get("required") or []) if isinstance(schema.get("required"), list) else set()
    props = schema.get("properties")
    for name, sub in (props.items() if isinstance(props, dict) else []):
        path = f"{prefix}{name}"
        if not isinstance(sub, dict):
            continue
        desc = {k: sub[k] for k in ("type", "title", "format", "enum", "minimum", "maximum", "minLength",
                                    "maxLength", "pattern", "const") if k in sub}
        desc["required"] = name in required
        out[path] = json.dumps(desc, sort_keys=True, ensure_ascii=False)
        out.update(_form_fields(sub, prefix=f"{path}."))
        if isinstance(sub.get("items"), dict):
            out.update(_form_fields(sub["items"], prefix=f"{path}[]."))
    return out


def compare(session: Session, key: str, old_version: int, new_version: int) -> dict[str, Any]:
    """What changed between two versions: elements added, removed, renamed, changed; forms changed."""
    old, new = definition(session, key, old_version), definition(session, key, new_version)
    before = elements(source_file(old)[1], source_file(old)[0])
    after = elements(source_file(new)[1], source_file(new)[0])
    added = [after[i] for i in after if i not in before]
    removed = [before[i] for i in before if i not in after]
    renamed = [(before[i], after[i]) for i in after if i in before and before[i].name != after[i].name]
    changed: list[dict[str, Any]] = []
    for i in after:
        if i not in before:
            continue
        a, b = before[i], after[i]
        diffs: list[dict[str, str | None]] = []
        if a.kind != b.kind:
            diffs.append({"what": "type", "before": a.kind, "after": b.kind})
        for prop in sorted(set(a.details) | set(b.details)):
            if a.details.get(prop) != b.details.get(prop):
                diffs.append({"what": prop, "before": a.details.get(prop), "after": b.details.get(prop)})
        if diffs:
            changed.append({"element": b, "changes": diffs})
    forms: list[dict[str, Any]] = []
    for name in sorted(set(old.forms) | set(new.forms)):
        if name not in old.forms:
            forms.append({"name": name, "status": "added", "fields": []})
        elif name not in new.forms:
            forms.append({"name": name, "status": "removed", "fields": []})
        elif old.forms[name] != new.forms[name]:
            f_old, f_new = _form_fields(old.forms[name]), _form_fields(new.forms[name])
            fields = [{"field": f, "status": "added" if f not in f_old else "removed" if f not in f_new else "changed"}
                      for f in sorted(set(f_old) | set(f_new)) if f_old.get(f) != f_new.get(f)]
            forms.append({"name": name, "status": "changed", "fields": fields or [
                {"field": "(layout or wording)", "status": "changed"}]})
    return {"old": old, "new": new, "added": added, "removed": removed, "renamed": renamed, "changed": changed,
            "forms": forms, "same": old.content_hash == new.content_hash}
