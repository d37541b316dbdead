"""People records: the list and the edit form (HR and admins)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from engine.core.errors import Conflict, Invalid
from engine.people.models import Person
from engine.people.users import get_person, parse_person, person_dict, record_person
from engine.workflow.registry import REGISTRY
from web import services
from web.auth import current_user, roles_required

bp = Blueprint("people", __name__, url_prefix="/people")


@bp.get("/")
@roles_required("admin", "hr")
def index() -> ResponseReturnValue:
    """Everyone on record."""
    with services().db.read() as s:
        people = [person_dict(s, p) for p in s.scalars(select(Person).order_by(Person.name))]
    return render_template("people.html", people=people)


def _form_values() -> dict[str, Any]:
    values: dict[str, Any] = {k: v for k, v in request.form.items() if k != "csrf_token"}
    values["ceo_delegate"] = request.form.get("ceo_delegate") == "on"
    return values


@bp.route("/new", methods=["GET", "POST"])
@bp.route("/<username>", methods=["GET", "POST"])
@roles_required("admin", "hr")
def edit(username: str | None = None) -> ResponseReturnValue:
    """Create or edit a person record."""
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = _form_values()
        if username is not None:
            values["username"] = username  # the username is the key; it is not edited here
        try:
            recorded = services().db.run(record_person, parse_person(values), username)
        except (Invalid, Conflict) as exc:
            for p in exc.problems:
                errors.setdefault(p.field or "", []).append(p.message)
        else:
            # Each policy hears of a record saved in (or moved into) another classification (D19-3.3: new starters)
            user = current_user()
            outcomes = REGISTRY.people_recorded(services().runtime, user, user.username,
                                                [recorded[0]] if recorded[1] else [])
            flash("Saved." + "".join(f" {o.message}." for o in outcomes if o.message))
            return redirect(url_for("people.index"))
        person = values
    elif username is None:
        person = {}
    else:
        with services().db.read() as s:
            person = person_dict(s, get_person(s, username))
    if username is not None and not person:
        abort(404)
    return render_template("person_edit.html", person=person, username=username, errors=errors), (
        422 if errors else 200)
