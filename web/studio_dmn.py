"""The studio's decision tables (issue 20): each DMN file of a process opened in dmn-js, saved as a draft (checked on
every save, each problem naming the table, rule and column), deployed with the process as its next version, and
compared with what runs, or between two versions, cell by cell.

Who may do this is the studio's rule, asked of the engine (versions.require_owner inside every dmn_drafts service);
the role check on each view is the studio's own (studio.OWNERS). JSON endpoints live under /studio/api/ and carry
the CSRF token in X-CSRFToken as the modeler's do; the page's forms carry it as csrf_token.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import generate_csrf

from engine.core.errors import EngineError, Invalid, Problem
from engine.workflow import dmn_drafts, scenario_lab, versions
from web import services, studio_lab
from web.auth import current_user, roles_required
from web.errors import status_of
from web.studio import OWNERS

bp = Blueprint("studio_dmn", __name__, url_prefix="/studio")


@bp.errorhandler(EngineError)
def _engine_error(exc: EngineError) -> ResponseReturnValue:
    """JSON for the editor's calls, the site's error page for people."""
    code = status_of(exc)
    if request.path.startswith("/studio/api/"):
        return jsonify(problems=[p.as_dict() for p in exc.problems]), code
    return render_template("error.html", code=code, message=exc.message, problems=exc.problems), code


def _xml_body() -> Any:
    """The "xml" of the JSON body ({"xml": "<definitions ...>"}); Invalid naming the body when it is not one."""
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # "[[[[..." deeper than the JSON parser's stack: silent=True catches ValueError only
        raise Invalid("the body is nested too deeply", [Problem("JSON nested too deeply", field="body")]) from None
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object", [Problem("must be a JSON object", field="body")])
    return body.get("xml")


@bp.get("/processes/<key>/tables")
@roles_required(*OWNERS)
def tables(key: str) -> ResponseReturnValue:
    """The decision tables of a process: each file, its draft, and deploying the drafts."""
    with services().db.read() as s:
        files = dmn_drafts.table_files(s, current_user(), key)
        rows = versions.versions(s, key)
        diffs = dmn_drafts.compare_drafts(s, current_user(), key) if any(f.draft for f in files) else {}
        diagram = versions.saved_draft(s, key) is not None  # tried with the tables (scenario lab)
    return render_template("studio/dmn_tables.html", key=key, files=files, latest=rows[0].version, diffs=diffs,
                           all_versions=[r.version for r in rows], diagram=diagram,
                           confirm_label=scenario_lab.CONFIRM_LABEL, max_reason=scenario_lab.MAX_REASON)


@bp.get("/processes/<key>/tables/<filename>")
@roles_required(*OWNERS)
def edit(key: str, filename: str) -> ResponseReturnValue:
    """dmn-js on one DMN file of the process: its draft if saved, else the newest version's."""
    with services().db.read() as s:
        table = dmn_drafts.open_table(s, current_user(), key, filename)
    problems = dmn_drafts.check_table(services().db, current_user(), key, filename, table.xml) if table.draft else []
    data = {
        "key": key, "filename": filename, "xml": table.xml, "csrf": generate_csrf(),
        "problems": [p.as_dict() for p in problems],
        "urls": {"save": url_for("studio_dmn.api_save", key=key, filename=filename),
                 "validate": url_for("studio_dmn.api_validate", key=key, filename=filename)},
    }
    return render_template("studio/dmn_edit.html", key=key, table=table, data=data, problems=problems)


@bp.post("/api/processes/<key>/tables/<filename>/validate")
@roles_required(*OWNERS)
def api_validate(key: str, filename: str) -> ResponseReturnValue:
    """Every problem a deployment with this table would have; nothing is stored."""
    problems = dmn_drafts.check_table(services().db, current_user(), key, filename, _xml_body())
    return jsonify(valid=not problems, problems=[p.as_dict() for p in problems])


@bp.post("/api/processes/<key>/tables/<filename>")
@roles_required(*OWNERS)
def api_save(key: str, filename: str) -> ResponseReturnValue:
    """Save the table as a draft of the process (kept whatever its problems), and list the problems."""
    table, problems = dmn_drafts.save_table(services().db, current_user(), key, filename, _xml_body())
    return jsonify(saved_at=table.saved_at, saved_by=table.saved_by, valid=not problems,
                   problems=[p.as_dict() for p in problems])


@bp.post("/processes/<key>/tables/<filename>/discard")
@roles_required(*OWNERS)
def discard(key: str, filename: str) -> ResponseReturnValue:
    """Throw one table's draft away."""
    if dmn_drafts.discard_table(services().db, current_user(), key, filename):
        flash(f"The draft of {filename} was discarded.")
    return redirect(url_for("studio_dmn.tables", key=key))


@bp.post("/processes/<key>/tables/deploy")
@roles_required(*OWNERS)
def deploy(key: str) -> ResponseReturnValue:
    """Deploy the process with its edited tables as a new version (refused, naming each cell, when one is wrong),
    once the scenario lab has tried them: when a scenario fails or changed, only with the confirmation and a
    reason (else 422 on the lab's page naming the field, nothing deployed)."""
    form = {"confirm": request.form.get("confirm"), "reason": request.form.get("reason")}
    try:
        results, _ = scenario_lab.deploy_tables(services().db, current_user(), key, services().settings,
                                                confirm=form["confirm"], reason=form["reason"])
    except scenario_lab.ConfirmationNeeded as exc:
        return studio_lab.render_page(key, exc.report, exc.problems, form, 422)
    flash("Deployed: " + ", ".join(f"{r.key} version {r.version}" + ("" if r.created else " (unchanged)")
                                   for r in results) + ".")
    return redirect(url_for("studio_dmn.tables", key=key))


@bp.get("/processes/<key>/tables/compare")
@roles_required(*OWNERS)
def compare(key: str) -> ResponseReturnValue:
    """The tables of two deployed versions, cell by cell."""
    with services().db.read() as s:
        all_versions = [r.version for r in versions.versions(s, key)]
        new = request.args.get("new", default=all_versions[0], type=int)
        old = request.args.get("old", default=max(1, new - 1), type=int)
        diffs = dmn_drafts.compare_versions(s, current_user(), key, old, new)
    return render_template("studio/dmn_compare.html", key=key, diffs=diffs, all_versions=all_versions,
                           old=old, new=new)
