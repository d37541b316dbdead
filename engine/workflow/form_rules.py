"""Cross-field rules a form declares (issue 19): checked when its task is completed, before anything is saved, each
error beside its field; and checked themselves when the form is deployed.

A form lists its rules at its top level, beside `properties`:

    "x-rules": [
      {"field": "invitation.submission_due", "op": "before", "value": {"case": "assessment_date"},
       "message": "Must be before the annual assessment date, {value} (Determination 19, cl. 5)."}
    ]

A rule
  field    the field it checks, a dotted path through the form's objects ("agreement.schedule1.end_date"); its
           error goes there.
  op       what must hold of the field's value:
           before, after, on_or_before, on_or_after          compared with the date `value`
           within                                            `value` is {"from": operand, "to": operand}, both ends
                                                             included (either may be left out)
           at_least_days_after, at_least_days_before,        at least / at most `days` (or `months`, in the
           not_more_than_days_after, not_more_than_days_before, ..._months_... ops) after / before the date `value`:
           at_least_months_after, ... not_more_than_months_before   notice periods, a cycle's length
           equals, not_equals                                compared with `value` as it is (text, number, yes/no)
  value    an operand: a literal (a "YYYY-MM-DD" date for the date ops), {"field": "dotted.path"} (another field of
           the form), {"case": "dotted.path"} (a value of the case, as the task sees it) or {"today": true} (the
           organisation's date today).
  days / months   for the counting ops: a whole number, or a {"field": ...} / {"case": ...} operand.
  when     optional: the rule applies only when {"field" or "case": "dotted.path", "equals": v} (or "in": [v, ...])
           holds.
  message  optional: what the person reads; {value}, {from}, {to}, {days} and {months} are filled in (dates read
           "30 June 2026"). Without it a plain sentence is made from the op.

A rule is skipped, not failed, when the field is empty (whether it is required is the schema's business), when an
operand has no value (a case value the diagram has not set yet, an empty other field) and when a value is not a
date where a date is compared (the schema's `format` reports it). No code runs: the rules are data, read by this
module alone; nothing here reads the database (whether a person exists is the process's own check, at start and
on completion).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

from engine.core.dates import add_months

RULES_KEY = "x-rules"
_MISSING: Any = object()

_COMPARE = {"before", "after", "on_or_before", "on_or_after"}
_COUNT_RE = re.compile(r"(at_least|not_more_than)_(days|months)_(before|after)")
_COUNTS = {f"{a}_{u}_{d}" for a in ("at_least", "not_more_than") for u in ("days", "months")
           for d in ("before", "after")}
_DATE_OPS = _COMPARE | _COUNTS | {"within"}
_EQUALITY = {"equals", "not_equals"}
OPS = tuple(sorted(_DATE_OPS | _EQUALITY))
_KEYS = {"field", "op", "value", "days", "months", "when", "message"}
_PATH_RE = re.compile(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*)*", re.ASCII)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_MAX_MESSAGE = 500
_MAX_RULES = 200
_DEFAULTS = {
    "before": "Must be before {value}.", "after": "Must be after {value}.",
    "on_or_before": "Must be on or before {value}.", "on_or_after": "Must be on or after {value}.",
    "equals": "Must be {value}.", "not_equals": "Must not be {value}.",
}


# ------------------------------------------------------------------------------------------------ reading values


def lookup(source: object, path: str) -> Any:
    """The value at a dotted path in nested objects (a number steps into a list); _MISSING when absent or null."""
    current: Any = source
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return _MISSING
    return _MISSING if current is None or current == "" else current


def as_date(value: object) -> dt.date | None:
    """A calendar date from a date or 'YYYY-MM-DD' text (a datetime's text gives its date); None otherwise."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _DATE_RE.fullmatch(value[:10]) and (len(value) == 10 or value[10:11] == "T"):
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _whole(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 6:
        return int(value.strip())
    return None


def _shown(value: object) -> str:
    """A value as a person reads it in a message: dates as "30 June 2026"."""
    if (day := as_date(value)) is not None:
        return f"{day.day} {_MONTHS[day.month - 1]} {day.year}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


class _Values:
    """Where operands are read from: the submitted data, the case as the task sees it, and today."""

    def __init__(self, data: Mapping[str, Any], case: Mapping[str, Any] | None, today: dt.date) -> None:
        self.data, self.case, self.today = data, case or {}, today

    def operand(self, operand: object) -> Any:
        if isinstance(operand, Mapping):
            if "field" in operand:
                return lookup(self.data, str(operand["field"]))
            if "case" in operand:
                return lookup(self.case, str(operand["case"]))
            if operand.get("today") is True:
                return self.today
            return _MISSING
        return _MISSING if operand is None else operand


# ------------------------------------------------------------------------------------------------ checking data


def check(schema: Mapping[str, Any], data: object, case: Mapping[str, Any] | None, today: dt.date
          ) -> dict[str, list[str]]:
    """Every declared rule that `data` breaks, as {field_path: [messages]}; {} when none. A malformed rule (one
    `rule_problems` would refuse) is skipped."""
    rules = schema.get(RULES_KEY) if isinstance(schema, Mapping) else None
    if not isinstance(rules, list) or not isinstance(data, Mapping):
        return {}
    values, out = _Values(data, case, today), dict[str, list[str]]()
    for rule in rules[:_MAX_RULES]:
        if not isinstance(rule, dict) or _rule_problems(rule, schema):
            continue
        message = _broken(rule, values)
        if message is not None:
            messages = out.setdefault(str(rule["field"]), [])
            if message not in messages:
                messages.append(message)
    return out


def _applies(when: object, values: _Values) -> bool:
    if not isinstance(when, Mapping):
        return True
    actual = values.operand({k: v for k, v in when.items() if k in ("field", "case")})
    if actual is _MISSING:
        return False
    if "equals" in when:
        return bool(actual == when["equals"])
    return actual in when.get("in", [])


def _broken(rule: Mapping[str, Any], values: _Values) -> str | None:
    """The rule's message when the data breaks it; None when it holds or cannot be checked yet."""
    if not _applies(rule.get("when"), values):
        return None
    op, actual = str(rule["op"]), lookup(values.data, str(rule["field"]))
    if actual is _MISSING:
        return None
    fills: dict[str, Any] = {}
    if op in _EQUALITY:
        other = values.operand(rule["value"])
        if other is _MISSING:
            return None
        fills["value"] = other
        holds = (actual == other) == (op == "equals")
    else:
        day = as_date(actual)
        if day is None:
            return None
        held = _date_holds(op, day, rule, values, fills)
        if held is None:
            return None
        holds = held
    if holds:
        return None
    return _message(rule, op, fills)


def _date_holds(op: str, day: dt.date, rule: Mapping[str, Any], values: _Values, fills: dict[str, Any]
                ) -> bool | None:
    """Whether the date rule holds for `day`; None when an operand has no (date) value yet."""
    if op == "within":
        bounds = rule["value"]
        low = as_date(values.operand(bounds.get("from"))) if "from" in bounds else None
        high = as_date(values.operand(bounds.get("to"))) if "to" in bounds else None
        if low is None and high is None:
            return None
        fills.update({"from": low or "", "to": high or ""})
        return (low is None or day >= low) and (high is None or day <= high)
    other = as_date(values.operand(rule["value"]))
    if other is None:
        return None
    fills["value"] = other
    if op in _COMPARE:
        return {"before": day < other, "after": day > other, "on_or_before": day <= other,
                "on_or_after": day >= other}[op]
    match = _COUNT_RE.fullmatch(op)
    assert match is not None
    least, unit, direction = match.group(1) == "at_least", match.group(2), match.group(3)
    amount = _whole(values.operand(rule[unit]))
    if amount is None or amount < 0:
        return None
    fills[unit] = amount
    sign = 1 if direction == "after" else -1
    try:
        bound = (other + dt.timedelta(days=sign * amount)) if unit == "days" else add_months(other, sign * amount)
    except (OverflowError, ValueError):
        return None
    if least:
        return day >= bound if direction == "after" else day <= bound
    return day <= bound if direction == "after" else day >= bound


def _message(rule: Mapping[str, Any], op: str, fills: Mapping[str, Any]) -> str:
    template = rule.get("message")
    if not isinstance(template, str):
        template = _default_message(op, fills)
    for name in ("value", "from", "to", "days", "months"):
        template = template.replace("{" + name + "}", _shown(fills.get(name, "")))
    return template


def _default_message(op: str, fills: Mapping[str, Any]) -> str:
    if op in _DEFAULTS:
        return _DEFAULTS[op]
    if op == "within":
        if fills.get("from") and fills.get("to"):
            return "Must be between {from} and {to}."
        return "Must be on or after {from}." if fills.get("from") else "Must be on or before {to}."
    match = _COUNT_RE.fullmatch(op)
    assert match is not None
    least = "at least" if match.group(1) == "at_least" else "not more than"
    return f"Must be {least} {{{match.group(2)}}} {match.group(2)} {match.group(3)} {{value}}."


# ------------------------------------------------------------------------------------------------ checking rules


def rule_problems(schema: object) -> list[str]:
    """What is wrong with the form's declared rules, each naming its rule ("x-rules[2].op: ..."); []: all sound."""
    if not isinstance(schema, Mapping) or RULES_KEY not in schema:
        return []
    rules = schema[RULES_KEY]
    if not isinstance(rules, list):
        return [f"{RULES_KEY}: must be a list of rules"]
    if len(rules) > _MAX_RULES:
        return [f"{RULES_KEY}: at most {_MAX_RULES} rules"]
    problems: list[str] = []
    for i, rule in enumerate(rules):
        problems += [f"{RULES_KEY}[{i}]{p}" for p in _rule_problems(rule, schema)]
    return problems


def _rule_problems(rule: object, schema: Mapping[str, Any]) -> list[str]:
    """A rule's problems, each starting with the key it is about (".op: ...")."""
    if not isinstance(rule, dict):
        return [": must be an object with field, op and value"]
    problems = [f".{key}: unknown key (keys: {', '.join(sorted(_KEYS))})" for key in rule if key not in _KEYS]
    field, op = rule.get("field"), rule.get("op")
    field_schema = None
    if not isinstance(field, str) or not _PATH_RE.fullmatch(field):
        problems.append(".field: must name a field of the form, as a dotted path (\"agreement.start\")")
    elif (field_schema := field_of(schema, field)) is None:
        problems.append(f".field: '{field}' is not a field of this form")
    if op == "person_exists":
        problems.append(".op: 'person_exists' needs the people records: a form's rules read only the form and the "
                        "case; the process checks people when the task is completed (its on_complete hook)")
        return problems
    if not isinstance(op, str) or op not in OPS:
        problems.append(f".op: unknown op {op!r} (ops: {', '.join(OPS)})")
        return problems
    dated = op in _DATE_OPS
    if dated and field_schema is not None and not _is_date_field(field_schema):
        problems.append(f".field: '{field}' is not a date field (\"format\": \"date\"), so it cannot be {op}")
    if "value" not in rule:
        problems.append(".value: required")
    elif op == "within":
        problems += _bounds_problems(rule["value"], schema)
    else:
        problems += [f".value{p}" for p in _operand_problems(rule["value"], schema, dated)]
    match = _COUNT_RE.fullmatch(op)
    for unit in ("days", "months"):
        wanted = match is not None and match.group(2) == unit
        if unit in rule and not wanted:
            problems.append(f".{unit}: only the ..._{unit}_... ops count {unit}")
        elif wanted and unit not in rule:
            problems.append(f".{unit}: required by {op}")
        elif wanted:
            problems += [f".{unit}{p}" for p in _amount_problems(rule[unit], schema)]
    if "when" in rule:
        problems += [f".when{p}" for p in _when_problems(rule["when"], schema)]
    message = rule.get("message")
    if "message" in rule and (not isinstance(message, str) or not message.strip() or len(message) > _MAX_MESSAGE):
        problems.append(f".message: must be text of 1 to {_MAX_MESSAGE} characters")
    return problems


def _operand_problems(operand: object, schema: Mapping[str, Any], dated: bool) -> list[str]:
    if isinstance(operand, dict):
        if len(operand) != 1:
            return [": an operand is one of {\"field\": path}, {\"case\": path}, {\"today\": true} or a literal"]
        [(kind, path)] = operand.items()
        if kind == "today":
            if path is not True:
                return [": {\"today\": true} is the only way to name today"]
            return [] if dated else [": today is a date: it is compared only by the date ops"]
        if kind not in ("field", "case"):
            return [f": unknown operand {kind!r} (field, case, today or a literal)"]
        if not isinstance(path, str) or not _PATH_RE.fullmatch(path):
            return [f".{kind}: must be a dotted path (\"agreement.start\")"]
        if kind == "field":
            other = field_of(schema, path)
            if other is None:
                return [f".field: '{path}' is not a field of this form"]
            if dated and not _is_date_field(other):
                return [f".field: '{path}' is not a date field (\"format\": \"date\")"]
        return []
    if operand is None or isinstance(operand, list):
        return [": must be a literal, {\"field\": path}, {\"case\": path} or {\"today\": true}"]
    if dated and as_date(operand) is None:
        return [f": {operand!r} is not a date (YYYY-MM-DD)"]
    return []


def _bounds_problems(bounds: object, schema: Mapping[str, Any]) -> list[str]:
    if not isinstance(bounds, dict) or not bounds or set(bounds) - {"from", "to"}:
        return [".value: 'within' takes {\"from\": operand, \"to\": operand} (either may be left out)"]
    return [f".value.{end}{p}" for end, operand in bounds.items() for p in _operand_problems(operand, schema, True)]


def _amount_problems(amount: object, schema: Mapping[str, Any]) -> list[str]:
    if isinstance(amount, dict):
        if "today" in amount:
            return [": must be a whole number, {\"field\": path} or {\"case\": path}"]
        return _operand_problems(amount, schema, False)
    whole = _whole(amount)
    if whole is None or whole < 0 or isinstance(amount, str):
        return [": must be a whole number of 0 or more, {\"field\": path} or {\"case\": path}"]
    return []


def _when_problems(when: object, schema: Mapping[str, Any]) -> list[str]:
    shape = ": takes {\"field\" or \"case\": path, \"equals\": value} or {..., \"in\": [values]}"
    if not isinstance(when, dict):
        return [shape]
    sources = [k for k in ("field", "case") if k in when]
    tests = [k for k in ("equals", "in") if k in when]
    if len(sources) != 1 or len(tests) != 1 or len(when) != 2:
        return [shape]
    problems = _operand_problems({sources[0]: when[sources[0]]}, schema, False)
    if tests[0] == "in" and not (isinstance(when["in"], list) and when["in"]
                                 and all(not isinstance(v, (dict, list)) for v in when["in"])):
        problems.append(".in: must be a list of values")
    if tests[0] == "equals" and isinstance(when["equals"], (dict, list)):
        problems.append(".equals: must be a value (text, number, true or false)")
    return problems


# ------------------------------------------------------------------------------------------------ the form's fields


def _branches(schema: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    """Subschemas whose properties can apply to the same object (as the renderer reads them)."""
    for key in ("allOf", "anyOf", "oneOf"):
        items = schema.get(key)
        if isinstance(items, list):
            yield from (s for s in items if isinstance(s, Mapping))
    for key in ("then", "else"):
        if isinstance(schema.get(key), Mapping):
            yield schema[key]
    for key in ("dependencies", "dependentSchemas"):
        deps = schema.get(key)
        if isinstance(deps, Mapping):
            yield from (s for s in deps.values() if isinstance(s, Mapping))


def _property(schema: Mapping[str, Any], name: str, depth: int = 0) -> Mapping[str, Any] | None:
    """The named property of an object schema, looking into its branches; its branches' views are merged."""
    if depth > 8:
        return None
    found: dict[str, Any] | None = None
    props = schema.get("properties")
    if isinstance(props, Mapping) and isinstance(props.get(name), Mapping):
        found = dict(props[name])
    for branch in _branches(schema):
        sub = _property(branch, name, depth + 1)
        if sub is not None:
            found = {**sub, **(found or {})}
    return found


def field_of(schema: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
    """The schema of the field at a dotted path through the form's objects; None when the form has no such field."""
    current: Mapping[str, Any] | None = schema
    for part in path.split("."):
        if current is None:
            return None
        current = _property(current, part)
    return current


def _is_date_field(schema: Mapping[str, Any]) -> bool:
    return schema.get("format") == "date"
