"""Determination 19's periods as administrator settings, and the pay points of each classification.

The text fixes some periods (two months, four weeks, twelve months) and is silent on others (how long an
employee has to ask for a review).  Each is a `Setting` row an administrator can see and change, with the
text's value, or the documented choice, as its default.  A case copies the values when it starts, so a
change applies to cases started afterwards and never moves a running case's dates behind its back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.core.clock import CLOCK
from engine.core.errors import Conflict, Forbidden, Invalid, NotFound, Problem
from engine.core.models import AuditEvent, Setting
from engine.people.models import PayPoint, Person, User
from engine.policies.pay_progression import timing as policy
from engine.workflow.models import ProcessInstance


@dataclass(frozen=True)
class SettingSpec:
    """One setting: its key, what it means, the clause it serves and its default."""

    key: str
    label: str
    clause: str
    default: str
    kind: str  # "int" (a count of days or months) or "date"
    source: str  # where the default comes from: the text, or a choice where the text is silent
    minimum: int = 1
    maximum: int = 120


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("d19.invite_months_before", "Invitation due before the annual assessment date (months)", "D19-3.2",
                "2", "int", "cl. 3(2): “at least two months prior to the annual assessment date”", 1, 12),
    SettingSpec("d19.agreement_setup_months", "Performance management set up within (months of commencement)",
                "D19-3.3", "2", "int", "cl. 3: “within two months of commencement of employment”", 1, 12),
    SettingSpec("d19.cycle_months", "Performance cycle and service needed for progression (months)", "D19-2",
                "12", "int", "cl. 3(1), 5: “a 12 month period”, “after each 12 months service”", 1, 24),
    SettingSpec("d19.review_days", "CEO review completed within (days of receipt)", "D19-9a", "28", "int",
                "cl. 9: “within four weeks of receipt of the review request” (28 days)", 1, 120),
    SettingSpec("d19.review_request_days", "Time the employee has to ask for a CEO review (days)", "D19-9a", "28",
                "int", "silent in the text; chosen to match the CEO's four weeks (docs/decisions.md)", 1, 365),
    SettingSpec("d19.s59_request_days", "Time to record that a section 59 review was sought (days)", "D19-9c", "28",
                "int", "silent in the text; chosen to match the review period (docs/decisions.md)", 1, 365),
    SettingSpec("d19.commencement_date", "Commencement date of the determination", "D19-5", "2011-12-09", "date",
                "the Enterprise Agreement's commencement date is not in the text; the determination's date is "
                "used until an administrator sets it (docs/decisions.md)"),
)
SPECS_BY_KEY = {s.key: s for s in SETTINGS}


@dataclass(frozen=True)
class D19Settings:
    """The values in force."""

    invite_months_before: int
    agreement_setup_months: int
    cycle_months: int
    review_days: int
    review_request_days: int
    s59_request_days: int
    commencement_date: date

    def periods(self) -> dict[str, Any]:
        """What a case copies at its start: counts, and ISO 8601 durations for timer expressions."""
        return {
            "invite_months": self.invite_months_before, "agreement_setup_months": self.agreement_setup_months,
            "cycle_months": self.cycle_months, "review_days": self.review_days,
            "review": f"P{self.review_days}D", "review_request": f"P{self.review_request_days}D",
            "s59_request": f"P{self.s59_request_days}D",
            "review_request_days": self.review_request_days, "s59_request_days": self.s59_request_days,
        }


def _parse(spec: SettingSpec, raw: str) -> int | date:
    text = raw.strip()
    if spec.kind == "date":
        return policy.parse_date(text)
    if not re.fullmatch(r"\d{1,4}", text):
        raise ValueError("Must be a whole number.")
    value = int(text)
    if not spec.minimum <= value <= spec.maximum:
        raise ValueError(f"Must be between {spec.minimum} and {spec.maximum}.")
    return value


def stored_values(session: Session) -> dict[str, str]:
    """The raw values an administrator has set (keys without a row use their default)."""
    keys = list(SPECS_BY_KEY)
    return {row.key: row.value for row in session.scalars(select(Setting).where(Setting.key.in_(keys)))}


def load(session: Session) -> D19Settings:
    """The settings in force: stored values over the defaults (a corrupt stored value falls back too)."""
    stored = stored_values(session)
    values: dict[str, Any] = {}
    for spec in SETTINGS:
        try:
            values[spec.key.removeprefix("d19.")] = _parse(spec, stored.get(spec.key, spec.default))
        except ValueError:
            values[spec.key.removeprefix("d19.")] = _parse(spec, spec.default)
    return D19Settings(**values)


def listing(session: Session) -> list[dict[str, Any]]:
    """Every setting with its current value, default, clause and source, for the admin page."""
    stored = stored_values(session)
    return [{"key": s.key, "label": s.label, "clause": s.clause, "default": s.default, "kind": s.kind,
             "source": s.source, "value": stored.get(s.key, s.default), "changed": s.key in stored,
             "minimum": s.minimum, "maximum": s.maximum} for s in SETTINGS]


def save(session: Session, actor: str, values: dict[str, str]) -> list[str]:
    """Validate and store changed settings; nothing is stored when any value is wrong. Returns changed keys."""
    problems: list[Problem] = []
    parsed: dict[str, str] = {}
    for key, raw in values.items():
        spec = SPECS_BY_KEY.get(key)
        if spec is None:
            problems.append(Problem("no such setting", field=key))
            continue
        try:
            typed = _parse(spec, str(raw))
        except ValueError as exc:
            problems.append(Problem(str(exc) if spec.kind == "int" else "Must be a date (YYYY-MM-DD).", field=key))
            continue
        parsed[key] = typed.isoformat() if isinstance(typed, date) else str(typed)
    if problems:
        raise Invalid("the settings have errors", problems)
    stored = stored_values(session)
    changed = []
    for key, value in parsed.items():
        before = stored.get(key, SPECS_BY_KEY[key].default)
        if before == value:
            continue
        row = session.get(Setting, key)
        if row is None:
            session.add(Setting(key=key, value=value))
        else:
            row.value = value
        session.add(AuditEvent(instance_id=None, at=CLOCK.now(), actor=actor, kind="setting_changed",
                               detail={"key": key, "before": before, "after": value,
                                       "clause": SPECS_BY_KEY[key].clause}))
        changed.append(key)
    return changed


# ---------------------------------------------------------------------------------------- pay points

_CODE = re.compile(r"[A-Z0-9][A-Z0-9-]{0,19}")


def pay_point_rows(session: Session) -> list[dict[str, Any]]:
    """Every pay point, by classification and order, with how many people are on it."""
    counts = dict(session.execute(select(Person.pay_point, func.count()).group_by(Person.pay_point)).all())
    rows = session.scalars(select(PayPoint).order_by(PayPoint.classification, PayPoint.ordinal)).all()
    return [{"id": p.id, "classification": p.classification, "code": p.code, "ordinal": p.ordinal,
             "annual_salary": p.annual_salary, "people": counts.get(p.code, 0)} for p in rows]


def _pay_point_values(payload: dict[str, Any]) -> tuple[str, str, int, int | None]:
    problems: list[Problem] = []
    classification = str(payload.get("classification") or "").strip().upper()
    code = str(payload.get("code") or "").strip().upper()
    for name, value in (("classification", classification), ("code", code)):
        if not _CODE.fullmatch(value):
            problems.append(Problem("Must be letters, digits and hyphens (up to 20).", field=name))
    ordinal_text = str(payload.get("ordinal") or "").strip()
    if not re.fullmatch(r"\d{1,3}", ordinal_text) or int(ordinal_text) < 1:
        problems.append(Problem("Must be a whole number from 1 (the lowest point).", field="ordinal"))
    salary_text = str(payload.get("annual_salary") or "").strip().replace(",", "")
    if salary_text and not re.fullmatch(r"\d{1,7}", salary_text):
        problems.append(Problem("Must be a whole number of dollars, or empty.", field="annual_salary"))
    if problems:
        raise Invalid("the pay point has errors", problems)
    return classification, code, int(ordinal_text), int(salary_text) if salary_text else None


def save_pay_point(session: Session, actor: str, payload: dict[str, Any], pay_point_id: int | None = None) -> int:
    """Add a pay point, or change one (D19-1: pay points are ordered data); returns its id."""
    classification, code, ordinal, salary = _pay_point_values(payload)
    row = session.get(PayPoint, pay_point_id) if pay_point_id is not None else None
    if pay_point_id is not None and row is None:
        raise NotFound("no such pay point")
    clash = session.scalars(select(PayPoint).where(
        PayPoint.classification == classification,
        (PayPoint.code == code) | (PayPoint.ordinal == ordinal))).all()
    for other in clash:
        if row is not None and other.id == row.id:
            continue
        field = "code" if other.code == code else "ordinal"
        raise Conflict(f"{classification} already has {other.code} at position {other.ordinal}",
                       [Problem(f"{classification} already has {other.code} at position {other.ordinal}.",
                                field=field)])
    before = None
    if row is None:
        row = PayPoint(classification=classification, code=code, ordinal=ordinal, annual_salary=salary)
        session.add(row)
    else:
        before = {"classification": row.classification, "code": row.code, "ordinal": row.ordinal,
                  "annual_salary": row.annual_salary}
        row.classification, row.code, row.ordinal, row.annual_salary = classification, code, ordinal, salary
    session.flush()
    session.add(AuditEvent(instance_id=None, at=CLOCK.now(), actor=actor, kind="pay_point_saved", detail={
        "clause": "D19-1", "before": before, "after": {"classification": classification, "code": code,
                                                       "ordinal": ordinal, "annual_salary": salary}}))
    return row.id


def delete_pay_point(session: Session, actor: str, pay_point_id: int) -> None:
    """Remove a pay point nobody is on."""
    row = session.get(PayPoint, pay_point_id)
    if row is None:
        raise NotFound("no such pay point")
    on_it = session.scalar(select(func.count()).select_from(Person).where(
        Person.classification == row.classification, Person.pay_point == row.code)) or 0
    if on_it:
        raise Conflict(f"{on_it} people are on {row.code}", [Problem(
            f"{on_it} people are on {row.code}; move them first.", field="code")])
    session.delete(row)
    session.add(AuditEvent(instance_id=None, at=CLOCK.now(), actor=actor, kind="pay_point_deleted", detail={
        "clause": "D19-1", "classification": row.classification, "code": row.code}))


# ---------------------------------------------------------------------------------------- pay points, as a list

#: The most points a classification may have (the scales have a handful; a long list is a mistake).
MAX_POINTS = 50
#: The highest annual salary a point may give, in whole dollars.
MAX_SALARY = 9_999_999


def pay_point_items(session: Session, classification: str | None = None) -> list[dict[str, Any]]:
    """Every classification's pay points in order (GET /api/v1/pay-points), or one classification's."""
    query = select(PayPoint).order_by(PayPoint.classification, PayPoint.ordinal)
    if classification is not None:
        query = query.where(PayPoint.classification == classification)
    return [{"classification": p.classification, "code": p.code, "ordinal": p.ordinal,
             "annual_salary": p.annual_salary} for p in session.scalars(query)]


def _points_in_use(session: Session, classification: str) -> dict[str, str]:
    """Codes of the classification that people hold or a running pay progression case names, with who/which."""
    used: dict[str, str] = {}
    for code, count in session.execute(select(Person.pay_point, func.count()).where(
            Person.classification == classification, Person.pay_point.is_not(None)).group_by(Person.pay_point)):
        used[str(code)] = f"{count} {'person holds' if count == 1 else 'people hold'} it"
    for ident, data in session.execute(select(ProcessInstance.id, ProcessInstance.data).where(
            ProcessInstance.process_key == "pay_progression", ProcessInstance.status == "running")):
        data = data or {}
        for cls_key, code_key in (("classification", "pay_point"), ("assessed_classification", "assessed_pay_point"),
                                  ("assessed_classification", "new_pay_point")):
            code = data.get(code_key)
            if data.get(cls_key) == classification and isinstance(code, str):
                used.setdefault(code, f"running case #{ident} names it")
    return used


def replace_pay_points(session: Session, user: User | None, actor: str, classification: str,
                       points: Any) -> list[dict[str, Any]]:
    """Replace a classification's pay points with `points` (lowest first: [{"code", "annual_salary"?}]) (D19-1).

    Administrators only (`user` None is the trusted operator of the command line). A point that people hold, or
    that a running case names, cannot go (Conflict naming it); duplicates and bad codes are Invalid naming the
    field. The caller commits; on an error nothing has changed."""
    if user is not None and not user.has_role("admin"):
        raise Forbidden("only an administrator changes pay points")
    problems: list[Problem] = []
    classification = classification.strip().upper() if isinstance(classification, str) else ""
    if not _CODE.fullmatch(classification):
        problems.append(Problem("Must be letters, digits and hyphens (up to 20).", field="classification"))
    if not isinstance(points, list) or not 1 <= len(points) <= MAX_POINTS:
        problems.append(Problem(f"Must be a list of 1 to {MAX_POINTS} points, lowest first.", field="points"))
        raise Invalid("the pay points have errors", problems)
    clean: list[tuple[str, int | None]] = []
    seen: set[str] = set()
    for i, point in enumerate(points):
        where = f"points.{i}"
        if not isinstance(point, dict):
            problems.append(Problem("Must be an object with a code and, optionally, an annual salary.", field=where))
            continue
        code = point.get("code")
        code = code.strip().upper() if isinstance(code, str) else ""
        if not _CODE.fullmatch(code):
            problems.append(Problem("Must be letters, digits and hyphens (up to 20).", field=f"{where}.code"))
        elif code in seen:
            problems.append(Problem(f"{code} is listed twice.", field=f"{where}.code"))
        seen.add(code)
        salary = point.get("annual_salary")
        if salary is not None and (isinstance(salary, bool) or not isinstance(salary, int)
                                   or not 0 <= salary <= MAX_SALARY):
            problems.append(Problem(f"Must be a whole number of dollars from 0 to {MAX_SALARY}, or absent.",
                                    field=f"{where}.annual_salary"))
            salary = None
        clean.append((code, salary))
    if problems:
        raise Invalid("the pay points have errors", problems)
    before = pay_point_items(session, classification)
    going = [p["code"] for p in before if p["code"] not in seen]
    used = _points_in_use(session, classification) if going else {}
    conflicts = [Problem(f"{code} cannot go: {used[code]}.", field="points") for code in going if code in used]
    if conflicts:
        raise Conflict(f"{', '.join(code for code in going if code in used)} of {classification} cannot go",
                       conflicts)
    for row in session.scalars(select(PayPoint).where(PayPoint.classification == classification)):
        session.delete(row)
    session.flush()
    for ordinal, (code, salary) in enumerate(clean, start=1):
        session.add(PayPoint(classification=classification, code=code, ordinal=ordinal, annual_salary=salary))
    session.flush()
    after = pay_point_items(session, classification)
    session.add(AuditEvent(instance_id=None, at=CLOCK.now(), actor=actor, kind="pay_points_replaced", detail={
        "clause": "D19-1", "classification": classification, "before": before, "after": after}))
    return after
