"""A case's record for the personnel file: a print-friendly page and a CSV export.

Whoever may see the case may see and export its record (engine.queries.get_instance decides; a case one
may not see is 404).  The page also offers the Determination 19 actions its reader may take: appoint
another person approved by the CEO, apply a progression to the people record, start the pay progression
cycle from a recorded performance agreement.
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template
from flask.typing import ResponseReturnValue

from engine import queries
from engine.d19 import APPOINTABLE, may_apply_progression, may_appoint_in, may_start_cycle_from
from engine.d19_record import case_record, record_csv
from web import services
from web.auth import current_user, login_required

bp = Blueprint("records", __name__)


@bp.get("/cases/<int:instance_id>/record")
@login_required
def show(instance_id: int) -> ResponseReturnValue:
    """Who decided what, when and with what reason: the case's record, ready to print."""
    user = current_user()
    with services().db.read() as s:
        row = queries.get_instance(s, user, instance_id)
        record = case_record(s, row)
        actions = {  # the engine decides who may do what; the page only offers it
            "appoint": may_appoint_in(s, user, row),
            "apply": may_apply_progression(s, user, row),
            "start_cycle": may_start_cycle_from(s, user, row),
        }
    return render_template("records/record.html", record=record, actions=actions, lanes=APPOINTABLE)


@bp.get("/cases/<int:instance_id>/record.csv")
@login_required
def export(instance_id: int) -> ResponseReturnValue:
    """The history as CSV, one row per entry."""
    with services().db.read() as s:
        row = queries.get_instance(s, current_user(), instance_id)
        text = record_csv(case_record(s, row))
    return Response(text, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="case-{instance_id}-record.csv"',
        "Cache-Control": "no-store"})
