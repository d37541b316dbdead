"""The studio's scenario lab (issue 20): "Try this draft" runs the process's scenarios against its drafts and against
what runs (engine.workflow.scenario_lab), and shows side by side which scenarios changed outcome, date or path, and
where. The try runs in the request (a few seconds per side, bounded by the engine); its report is kept and shown on
its own page, from which the drafts deploy (studio_dmn.deploy) with the confirmation a changed scenario needs.

Who may try is the engine's rule (versions.require_owner inside scenario_lab); the role check on each view is the
studio's own (studio.OWNERS). Forms carry the CSRF token as csrf_token.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from engine.core.errors import EngineError, Problem
from engine.workflow import dmn_drafts, scenario_lab, versions
from web import services
from web.auth import current_user, roles_required
from web.errors import status_of
from web.studio import OWNERS

bp = Blueprint("studio_lab", __name__, url_prefix="/studio")


@bp.errorhandler(EngineError)
def _engine_error(exc: EngineError) -> ResponseReturnValue:
    code = status_of(exc)
    return render_template("error.html", code=code, message=exc.message, problems=exc.problems), code


@bp.post("/processes/<key>/lab")
@roles_required(*OWNERS)
def try_draft(key: str) -> ResponseReturnValue:
    """Run the scenarios against the drafts and what runs; show the report."""
    report = scenario_lab.try_draft(services().db, current_user(), key, services().settings)
    return redirect(url_for("studio_lab.result", key=key, job_id=report.job_id))


@bp.get("/processes/<key>/lab/<int:job_id>")
@roles_required(*OWNERS)
def result(key: str, job_id: int) -> ResponseReturnValue:
    """A kept report: live against draft, scenario by scenario."""
    report = scenario_lab.report(services().db, current_user(), key, job_id)
    return render_page(key, report)


def render_page(key: str, report: scenario_lab.LabReport, problems: list[Problem] | None = None,
                form: dict[str, Any] | None = None, status: int = 200) -> ResponseReturnValue:
    """The report's page (also the answer of a deployment refused for want of a confirmation, with its errors)."""
    db, user = services().db, current_user()
    current = scenario_lab.current_fingerprint(db, user, key) == report.fingerprint
    with db.read() as s:
        drafts = any(t.draft for t in dmn_drafts.table_files(s, user, key))
        diagram = versions.saved_draft(s, key) is not None
        latest = versions.definition(s, key).version
    errors: dict[str, list[str]] = {}
    for p in problems or []:
        errors.setdefault(p.field or "", []).append(p.message)
    return render_template("studio/lab_result.html", key=key, report=report, current=current, drafts=drafts,
                           diagram=diagram,
                           latest=latest, errors=errors, form=form or {}, confirm_label=scenario_lab.CONFIRM_LABEL,
                           max_reason=scenario_lab.MAX_REASON), status
