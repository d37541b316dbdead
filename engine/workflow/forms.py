"""JSON Schema forms, the engine's half: is a form valid (deploy time), is the data valid (completion).

The web layer renders and parses the same schemas (web.formrender); both use these checks, so a task
completed over the API is held to exactly what the web form enforces.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema
from jsonschema.exceptions import best_match
from jsonschema.validators import Draft202012Validator, validator_for

from engine.core.clock import CLOCK
from engine.workflow import form_rules

JSON = dict[str, Any]
Choices = list[tuple[Any, str]]
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)
_TYPES = "array, boolean, integer, null, number, object, string"


def as_dict(value: object) -> JSON:
    """The value if it is a dict, else {}."""
    return value if isinstance(value, dict) else {}


def as_list(value: object) -> list[Any]:
    """The value if it is a list, else []."""
    return value if isinstance(value, list) else []


def show(value: object) -> str:
    """Value as it appears in an HTML value attribute (JSON spelling for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def choices(schema: JSON, ui_names: object = None) -> Choices | None:
    """(value, label) pairs, labelled as rjsf labels them; None if the field is free.

    Values come from `enum`, or from the consts of `oneOf`/`anyOf`. Labels, first found: the UI schema's
    `ui:enumNames` (given as `ui_names`), the schema's `enumNames`, the `title` of the `oneOf`/`anyOf` branch
    with the same const, and the value itself."""
    titled: dict[str, str] = {}
    consts: list[Any] = []
    for key in ("oneOf", "anyOf"):
        alts = as_list(schema.get(key))
        if alts and all(isinstance(b, dict) and "const" in b for b in alts):
            consts = [b["const"] for b in alts]
            titled = {show(b["const"]): str(b["title"]) for b in alts if "title" in b}
            break
    values = schema["enum"] if isinstance(schema.get("enum"), list) else consts
    if not values:
        return None
    for names in (as_list(ui_names), as_list(schema.get("enumNames"))):
        if len(names) == len(values):
            return [(v, str(names[i])) for i, v in enumerate(values)]
    return [(v, titled.get(show(v), show(v))) for v in values]


# ---------------------------------------------------------------- validation


def _is_date(instance: object) -> bool:
    # strict: exactly YYYY-MM-DD and a real calendar day (Feb 30 raises ValueError)
    return not isinstance(instance, str) or (bool(_DATE_RE.fullmatch(instance))
                                             and bool(dt.date.fromisoformat(instance)))


_FORMATS = jsonschema.FormatChecker()
_FORMATS.checks("date", raises=ValueError)(_is_date)
_KEYWORDS = Draft202012Validator.VALIDATORS


def _dependencies(validator: Any, deps: object, instance: object, schema: JSON) -> Iterable[Any]:
    """Draft-07 "dependencies" (RJSF forms use it): its list and schema halves."""
    if isinstance(deps, dict):
        lists = {k: v for k, v in deps.items() if isinstance(v, list)}
        yield from _KEYWORDS["dependentRequired"](validator, lists, instance, schema)
        rest = {k: v for k, v in deps.items() if not isinstance(v, list)}
        yield from _KEYWORDS["dependentSchemas"](validator, rest, instance, schema)


# 2020-12 dropped "dependencies"; keep honouring it, or RJSF-style forms would skip checks
_DEFAULT = jsonschema.validators.extend(Draft202012Validator, {"dependencies": _dependencies})


def _missing(error: Any) -> list[str]:
    """Names a required/dependentRequired error says are absent."""
    inst, wanted = as_dict(error.instance), error.validator_value
    if isinstance(wanted, dict):  # dependentRequired / array-form dependencies
        wanted = [n for k, v in wanted.items() if k in inst for n in as_list(v)]
    return [n for n in as_list(wanted) if isinstance(n, str) and n not in inst]


def _labels(root: JSON, path: Iterable[Any]) -> dict[str, str]:
    """value -> label of the choices of the array field at `path` (its items' enum or consts)."""
    current: Any = root
    for part in path:
        if isinstance(part, int):
            return {}
        current = form_rules.field_of(current, str(part)) if isinstance(current, dict) else None
    options = choices(as_dict(as_dict(current).get("items")))
    return {show(v): t for v, t in options or []}


def _message(error: Any, root: JSON | None = None) -> str:
    """A human sentence for a jsonschema error: the field's own labels where it has choices, never the validator's
    wording (it shows Python lists and schemas); the error's own message only for keywords no form here uses."""
    kw, val = error.validator, error.validator_value
    expected = as_list(val) or [val]
    if kw == "type" and ("integer" in expected or "number" in expected):
        whole = isinstance(error.instance, float) and "number" not in expected
        return "Must be a whole number." if whole else "Must be a number."
    if kw in ("enum", "oneOf", "anyOf") and (options := choices(as_dict(error.schema))):
        return "Must be one of: " + ", ".join(t for _, t in options) + "."
    if kw == "format" and val == "date":
        return "Must be a date (YYYY-MM-DD)."
    if kw == "contains":
        wanted = as_dict(val)
        labels = _labels(root or {}, error.absolute_path)
        names = [labels.get(show(v), show(v)) for v in ([wanted["const"]] if "const" in wanted
                                                       else as_list(wanted.get("enum")))]
        return f"Must include {' or '.join(names)}." if names else "Must include a value this form asks for."
    s = "" if val == 1 else "s"
    kinds = {"string": "Must be text.", "boolean": "Must be yes or no.", "array": "Must be a list.",
             "object": "Must be a group of fields.", "null": "Must be left empty."}
    simple = {
        "minLength": f"Must be at least {val} character{s}.",
        "maxLength": f"Must be at most {val} character{s}.",
        "minimum": f"Must be at least {val}.", "maximum": f"Must be at most {val}.",
        "exclusiveMinimum": f"Must be more than {val}.", "exclusiveMaximum": f"Must be less than {val}.",
        "minItems": f"Choose at least {val}.", "maxItems": f"Choose at most {val}.",
        "minProperties": f"Fill in at least {val}.", "maxProperties": f"Fill in at most {val}.",
        "multipleOf": f"Must be a multiple of {val}.", "uniqueItems": "Items must be unique.",
        "const": "Must be ticked (yes)." if val is True else f"Must be {show(val)}.",
        "format": f"Must be a valid {val}.", "pattern": "Is not in the expected format.",
        "type": kinds.get(str(expected[0])) if len(expected) == 1 else None,
        "not": "This value is not allowed here.",
    }
    if kw in ("additionalProperties", "unevaluatedProperties"):
        return "This form has no field named " + ", ".join(repr(k) for k in _extra_keys(error)) + "."
    if kw is None:  # a `false` schema: nothing may be given here
        return "This field is not allowed here."
    return str(simple.get(kw) or error.message)


def _extra_keys(error: Any) -> list[str]:
    """The keys an object error names as not allowed (additionalProperties, unevaluatedProperties)."""
    schema, inst = as_dict(error.schema), as_dict(error.instance)
    known = set(as_dict(schema.get("properties")))
    return sorted(k for k in inst if k not in known) or ["(unknown)"]


def _collect(error: Any, out: dict[str, list[str]], root: JSON) -> None:
    if error.validator in ("oneOf", "anyOf") and error.context and not choices(as_dict(error.schema)):
        error = best_match(error.context)  # say what the closest alternative lacked
    path = ".".join(str(p) for p in error.absolute_path)
    missing = _missing(error) if error.validator in ("required", "dependentRequired", "dependencies") else []
    targets = [(f"{path}.{n}" if path else n, "This field is required.") for n in missing]
    for field, message in targets or [(path, _message(error, root))]:
        if message not in out.setdefault(field, []):
            out[field].append(message)


def today_here(name: str = "Australia/Darwin") -> dt.date:
    """Today in a time zone (the organisation's, from its settings; the settings' default when not given), on the
    engine clock."""
    try:
        zone = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("Australia/Darwin")
    return CLOCK.now().astimezone(zone).date()


def validate(schema: dict[str, Any], data: dict[str, Any], case: Mapping[str, Any] | None = None,
             today: dt.date | None = None) -> dict[str, list[str]]:
    """Validate data against the schema, then against the rules the form declares (`x-rules`, engine.workflow.
    form_rules); returns {field_path: [messages]}, {} when valid. `case` is the case's data as the task sees it (a
    rule comparing a field with a case value is skipped while the case has no such value); `today` is the
    organisation's date (the runtime passes it from its settings; default: the engine clock in the settings'
    default zone)."""
    out: dict[str, list[str]] = {}
    cls = validator_for(schema, default=_DEFAULT)
    try:
        for error in cls(schema, format_checker=_FORMATS).iter_errors(data):
            _collect(error, out, schema)
    except Exception as exc:  # a broken schema (bad type, dangling $ref) must not 500 a page
        return {"": [f"The form definition is invalid: {exc}"]}
    for field, messages in form_rules.check(schema, data, case, today or today_here()).items():
        known = out.setdefault(field, [])
        known += [m for m in messages if m not in known]
    return out


def check_schema(schema: dict[str, Any]) -> list[str]:
    """Problems with the schema itself (meta-schema check) as readable messages; []: valid."""
    if not isinstance(schema, dict):
        return ["The schema must be a JSON object."]
    cls, problems = validator_for(schema, default=_DEFAULT), []
    for error in cls(cls.META_SCHEMA).iter_errors(schema):
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        message = error.message
        if error.validator == "anyOf" and list(error.absolute_path)[-1:] == ["type"]:
            message = f"{error.instance!r} is not a JSON Schema type (use one of: {_TYPES})."
        problems.append(f"{where}: {message}")
    return sorted(problems) + form_rules.rule_problems(schema)
