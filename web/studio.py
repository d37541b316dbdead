"""The process owners' studio: processes and versions, the modeler, forms, validation, deployment,
comparison, roll back, migration of running cases, imports; and the instance diagram every case shows.

Owners' pages need the process_owner or admin role. The JSON endpoints the modeler calls live under
/studio/api/ and answer errors as JSON ({"problems": [{"element"|"field", "message"}]}). The instance
diagram is for anyone who may see the case, and, as element states only, for the process's owners; the
process overview (counts of where its cases stand) for its owners (engine.workflow.access.may_oversee_process).
"""

from __future__ import annotations

import json
from typing import Any

from flask import (
    Blueprint,
    Response,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import generate_csrf

from engine.core.errors import EngineError, Invalid, Problem
from engine.people.groups import group_names
from engine.workflow import migration, queries, versions
from engine.workflow.assignment import role_lanes
from engine.workflow.bundles import MAX_FORM_DEPTH, json_depth
from engine.workflow.diagram import case_links, diagram_access, element_states, instance_diagram
from engine.workflow.forms import check_schema
from engine.workflow.overview import process_overview
from web import services
from web.auth import current_user, login_required, roles_required
from web.errors import status_of
from web.formrender import render_form
from web.openapi_models import MAX_ID

bp = Blueprint("studio", __name__, url_prefix="/studio")
OWNERS = ("process_owner", "admin")
#: The deepest JSON the modeler sends: the forms in it are at most MAX_FORM_DEPTH deep, a few levels down.
MAX_BODY_DEPTH = MAX_FORM_DEPTH + 8


def _problems_json(problems: list[Problem], status: int) -> ResponseReturnValue:
    return jsonify(problems=[p.as_dict() for p in problems]), status


def _body() -> dict[str, Any]:
    too_deep = Invalid("too deep", [Problem(f"JSON nested deeper than {MAX_BODY_DEPTH} levels", field="body")])
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # "[[[[..." deeper than the JSON parser's stack: silent=True catches ValueError only
        raise too_deep from None
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object", [Problem("must be a JSON object", field="body")])
    if json_depth(body, MAX_BODY_DEPTH) > MAX_BODY_DEPTH:
        raise too_deep
    return body


def _uploads() -> dict[str, bytes]:
    """The uploaded files by name, read and closed (large uploads are spooled to temporary files)."""
    files: dict[str, bytes] = {}
    for storage in request.files.getlist("files"):
        try:
            if storage.filename:
                files[storage.filename] = storage.read()
        finally:
            storage.close()
    return files


def _optional_int(value: Any) -> int | None:
    """A version number from the modeler, or None (also for a number past any version)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID else None


@bp.errorhandler(EngineError)
def _engine_error(exc: EngineError) -> ResponseReturnValue:
    """JSON for the modeler's calls, the site's error page for people."""
    code = status_of(exc)
    if request.path.startswith("/studio/api/") or request.path.endswith(".json"):
        return _problems_json(exc.problems, code)
    return render_template("error.html", code=code, message=exc.message, problems=exc.problems), code


# --------------------------------------------------------------------------- pages


@bp.get("/")
@roles_required(*OWNERS)
def index() -> ResponseReturnValue:
    """Every process with its newest version, running cases and draft; the import form."""
    with services().db.read() as s:
        items = versions.processes(s)
    return render_template("studio/index.html", items=items)


@bp.post("/import")
@roles_required(*OWNERS)
def import_diagram() -> ResponseReturnValue:
    """Upload a diagram made elsewhere (and its forms): it becomes the process's draft, problems listed."""
    files = _uploads()
    if not files:
        raise Invalid("choose a file", [Problem("choose a .bpmn file to import", field="files")])
    key, problems = versions.import_files(services().db, current_user(), files, services().settings.forms_dir)
    if problems:
        flash(f"Imported as a draft of '{key}'. It cannot be deployed yet: {len(problems)} problem(s) are listed.")
    else:
        flash(f"Imported as a draft of '{key}'. It is valid and can be deployed.")
    return redirect(url_for("studio.edit", key=key))


@bp.post("/deploy-files")
@roles_required(*OWNERS)
def deploy_files() -> ResponseReturnValue:
    """Deploy uploaded files together (e.g. a process and the processes it calls) as new versions."""
    files = _uploads()
    if not files:
        raise Invalid("choose files", [Problem("choose the .bpmn, .dmn and .json files to deploy", field="files")])
    results = versions.deploy_files(services().db, current_user(), files, services().settings.forms_dir)
    flash("Deployed: " + ", ".join(f"{r.key} version {r.version}" + ("" if r.created else " (unchanged)")
                                   for r in results) + ".")
    return redirect(url_for("studio.index"))


@bp.get("/processes/<key>")
@roles_required(*OWNERS)
def process(key: str) -> ResponseReturnValue:
    """The versions of a process side by side: who deployed what when, running cases, actions."""
    with services().db.read() as s:
        rows = versions.versions(s, key)
        running = migration.versions_with_running_cases(s, key)
        items = [{"version": r.version, "name": r.name, "deployed_at": r.deployed_at, "deployed_by": r.deployed_by,
                  "hash": r.content_hash[:10], "files": sorted(r.sources), "forms": sorted(r.forms),
                  "running": running.get(r.version, 0)} for r in rows]
        draft = versions.saved_draft(s, key)
    return render_template("studio/process.html", key=key, name=rows[0].name, items=items,
                           latest=rows[0].version, draft=draft)


@bp.get("/processes/<key>/edit")
@roles_required(*OWNERS)
def edit(key: str) -> ResponseReturnValue:
    """The modeler: the saved draft, or a version (the newest unless ?version=N) as a new draft."""
    version = request.args.get("version", type=int)
    with services().db.read() as s:
        draft = versions.open_draft(s, key, version)
        lanes = sorted(role_lanes() | group_names(s))  # the properties panel offers roles and work groups
    problems: list[Problem] = []
    if draft.saved_at is not None:
        problems = versions.validate_draft(services().db, current_user(), key, draft.filename, draft.xml,
                                           draft.forms, services().settings.forms_dir)
    data = {
        "key": key, "filename": draft.filename, "xml": draft.xml, "forms": draft.forms,
        "base_version": draft.base_version, "lanes": lanes,
        "problems": [p.as_dict() for p in problems], "csrf": generate_csrf(),
        "urls": {"validate": url_for("studio.api_validate"), "draft": url_for("studio.api_draft"),
                 "deploy": url_for("studio.api_deploy"), "preview": url_for("studio.api_form_preview")},
    }
    return render_template("studio/edit.html", key=key, draft=draft, data=data)


@bp.post("/processes/<key>/draft/discard")
@roles_required(*OWNERS)
def discard(key: str) -> ResponseReturnValue:
    """Throw the draft away."""
    if versions.discard_draft(services().db, current_user(), key):
        flash("The draft was discarded.")
    with services().db.read() as s:
        deployed = versions.processes(s)
    if any(p["key"] == key and p["version"] for p in deployed):
        return redirect(url_for("studio.process", key=key))
    return redirect(url_for("studio.index"))


@bp.get("/processes/<key>/compare")
@roles_required(*OWNERS)
def compare(key: str) -> ResponseReturnValue:
    """What changed between two versions."""
    with services().db.read() as s:
        rows = versions.versions(s, key)
        newest = rows[0].version
        new = request.args.get("new", default=newest, type=int)
        old = request.args.get("old", default=max(1, new - 1), type=int)
        diff = versions.compare(s, key, old, new)
    return render_template("studio/compare.html", key=key, diff=diff, all_versions=[r.version for r in rows],
                           old=old, new=new)


@bp.post("/processes/<key>/rollback")
@roles_required(*OWNERS)
def rollback(key: str) -> ResponseReturnValue:
    """Deploy an earlier version's content again as a new version."""
    version = request.form.get("version", type=int)
    if version is None:
        raise Invalid("choose a version", [Problem("choose the version to roll back to", field="version")])
    result = versions.rollback(services().db, current_user(), key, version)
    flash(f"Version {version} was deployed again as version {result.version}. Running cases keep their version.")
    return redirect(url_for("studio.process", key=key))


@bp.get("/processes/<key>/versions/<int:version>/download")
@roles_required(*OWNERS)
def download(key: str, version: int) -> ResponseReturnValue:
    """One file of a version (the process's .bpmn unless ?file= names another) as a download."""
    with services().db.read() as s:
        row = versions.definition(s, key, version)
        name, text = versions.source_file(row, request.args.get("file") or None)
    stem, _, ext = name.rpartition(".")
    download_name = f"{stem}.v{version}.{ext}" if stem else name
    response = Response(text, mimetype="application/xml")
    response.headers["Content-Disposition"] = f'attachment; filename="{download_name}"'
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@bp.get("/processes/<key>/migrate")
@roles_required(*OWNERS)
def migrate_preview(key: str) -> ResponseReturnValue:
    """Which running cases of one version can move to another, and why the others cannot."""
    with services().db.read() as s:
        rows = versions.versions(s, key)
        running = migration.versions_with_running_cases(s, key)
    all_versions = [r.version for r in rows]
    to_version = request.args.get("to", default=all_versions[0], type=int)
    sources = [v for v in sorted(running) if v != to_version]
    from_version = request.args.get("from", default=sources[0] if sources else to_version, type=int)
    candidates = migration.preview(services().runtime, current_user(), key, from_version, to_version)
    return render_template("studio/migrate.html", key=key, candidates=candidates, all_versions=all_versions,
                           running=running, from_version=from_version, to_version=to_version, outcomes=None,
                           links=_case_links(key, [c.instance_id for c in candidates]))


@bp.post("/processes/<key>/migrate")
@roles_required(*OWNERS)
def migrate(key: str) -> ResponseReturnValue:
    """Move the chosen cases, or every case that can move; one transaction per case."""
    from_version = request.form.get("from", type=int)
    to_version = request.form.get("to", type=int)
    if from_version is None or to_version is None:
        raise Invalid("choose the versions", [Problem("choose both versions", field="from")])
    chosen: list[int] | None = None
    if request.form.get("scope") != "all":
        chosen = [v for v in request.form.getlist("instance", type=int) if v > 0]
        if not chosen:
            raise Invalid("choose cases", [Problem("choose at least one case, or migrate all that can move",
                                                   field="instance")])
    outcomes = migration.migrate_many(services().runtime, current_user(), key, from_version, to_version, chosen)
    moved = sum(1 for o in outcomes if o.migrated)
    flash(f"{moved} case(s) moved from version {from_version} to version {to_version}"
          + (f"; {len(outcomes) - moved} could not move." if moved != len(outcomes) else "."))
    with services().db.read() as s:
        running = migration.versions_with_running_cases(s, key)
        all_versions = [r.version for r in versions.versions(s, key)]
    candidates = migration.preview(services().runtime, current_user(), key, from_version, to_version)
    return render_template("studio/migrate.html", key=key, candidates=candidates, all_versions=all_versions,
                           running=running, from_version=from_version, to_version=to_version, outcomes=outcomes,
                           links=_case_links(key, [c.instance_id for c in candidates]))


def _case_links(key: str, ids: list[int]) -> dict[int, str]:
    """What the viewer may open of each listed case (the engine decides): "case", "diagram" or nothing."""
    with services().db.read() as s:
        return case_links(s, current_user(), key, ids)


def _version_arg() -> int | None:
    """?version=N (a version number) or nothing (every version); anything else is refused naming the field."""
    raw = request.args.get("version", "")
    if raw in ("", "all"):
        return None
    if not raw.isdigit() or not 0 < int(raw) <= MAX_ID:
        raise Invalid("bad version", [Problem("must be a version number, or 'all'", field="version")])
    return int(raw)


@bp.get("/processes/<key>/overview")
@login_required
def overview(key: str) -> ResponseReturnValue:
    """Where the cases of a process stand: counts of cases, the diagram coloured by counts per element, and a
    table of them (its process owners and admins; no case data)."""
    version = _version_arg()
    with services().db.read() as s:
        view = process_overview(s, current_user(), key, version)
    data = {"xml": view.xml, "counts": view.counts(), "names": {e.element: e.name for e in view.elements}}
    links = _case_links(key, [c["id"] for c in view.running])
    return render_template("studio/overview.html", key=key, view=view, data=data, links=links)


# --------------------------------------------------------------------------- instance diagrams


@bp.get("/instances/<int:instance_id>/diagram.json")
@login_required
def instance_diagram_json(instance_id: int) -> ResponseReturnValue:
    """A case's diagram and which elements are completed, open and waiting (anyone who may see the case)."""
    with services().db.read() as s:
        row, full = diagram_access(s, current_user(), instance_id)
        data = instance_diagram(s, row) if full else element_states(s, row)
    response = jsonify(data)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/instances/<int:instance_id>/diagram")
@login_required
def instance_page(instance_id: int) -> ResponseReturnValue:
    """The case's diagram with its history beside it; for a process owner who may not see the case, the diagram's
    element states alone."""
    with services().db.read() as s:
        row, full = diagram_access(s, current_user(), instance_id)
        if not full:
            case = {"id": row.id, "process": row.process_key, "version": row.definition.version,
                    "status": row.status}
            return render_template("studio/instance_states.html", case=case)
        case = queries.instance_dict(s, row)
    return render_template("studio/instance.html", case=case)


# --------------------------------------------------------------------------- JSON endpoints (the modeler)


def _draft_args(body: dict[str, Any]) -> tuple[str | None, Any, Any, Any]:
    key = body.get("key")
    return (key if isinstance(key, str) and key else None), body.get("filename"), body.get("xml"), \
        body.get("forms", {})


@bp.post("/api/validate")
@roles_required(*OWNERS)
def api_validate() -> ResponseReturnValue:
    """Every problem of the diagram and forms as sent, each with its element; nothing is stored."""
    key, filename, xml, forms = _draft_args(_body())
    problems = versions.validate_draft(services().db, current_user(), key, filename, xml, forms,
                                       services().settings.forms_dir)
    return jsonify(valid=not problems, problems=[p.as_dict() for p in problems])


@bp.post("/api/draft")
@roles_required(*OWNERS)
def api_draft() -> ResponseReturnValue:
    """Save the modeler's work as the process's draft."""
    body = _body()
    key, filename, xml, forms = _draft_args(body)
    if key is None:
        raise Invalid("no process", [Problem("the draft needs a process key", field="key")])
    draft = versions.save_draft(services().db, current_user(), key, filename, xml, forms,
                                _optional_int(body.get("base_version")))
    return jsonify(saved_at=draft.saved_at, saved_by=draft.saved_by)


@bp.post("/api/deploy")
@roles_required(*OWNERS)
def api_deploy() -> ResponseReturnValue:
    """Validate and deploy as new versions (audited); answers the versions or every problem."""
    key, filename, xml, forms = _draft_args(_body())
    results = versions.deploy_draft(services().db, current_user(), key, filename, xml, forms,
                                    services().settings.forms_dir)
    return jsonify(processes=[{"key": r.key, "version": r.version, "created": r.created} for r in results]), 201


@bp.post("/api/form-preview")
@roles_required(*OWNERS)
def api_form_preview() -> ResponseReturnValue:
    """The form as staff will see it, rendered by the same code (web.formrender.render_form)."""
    body = _body()
    schema, ui_schema = body.get("schema"), body.get("ui_schema")
    if len(json.dumps(body)) > 512 * 1024:
        raise Invalid("form too large", [Problem("the form is larger than 512 KiB", field="schema")])
    for field, value in (("schema", schema), ("ui_schema", ui_schema)):
        if json_depth(value, MAX_FORM_DEPTH) > MAX_FORM_DEPTH:
            return jsonify(html="", problems=[{"field": field, "message": f"nested deeper than {MAX_FORM_DEPTH} "
                                                                          "levels"}])
    problems = [Problem(m, field="schema") for m in check_schema(schema)] if schema is not None else []
    if not isinstance(schema, dict) or problems:
        return jsonify(html="", problems=[p.as_dict() for p in problems or [
            Problem("the schema must be a JSON object", field="schema")]])
    if ui_schema is not None and not isinstance(ui_schema, dict):
        return jsonify(html="", problems=[{"field": "ui_schema", "message": "the UI schema must be a JSON object"}])
    try:
        html = str(render_form(schema, ui_schema, {}, None))
    except Exception:  # a schema the renderer cannot draw must not 500 the editor
        return jsonify(html="", problems=[{"field": "schema", "message": "this schema cannot be rendered as a form"}])
    return jsonify(html=html, problems=[])
