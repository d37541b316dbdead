"""JSON Schema forms, the engine's half: is a form valid (deploy time), is the data valid (completion).

The web layer renders and parses the same schemas (web.formrender); both use these checks, so a task
completed over the API is held to exactly what the web form enforces.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match
from jsonschema.validators import Draft202012Validator, validator_for

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


def _message(error: Any) -> str:
    """A human sentence for a jsonschema error, falling back to its own message."""
    kw, val = error.validator, error.validator_value
    expected = as_list(val) or [val]
    if kw == "type" and ("integer" in expected or "number" in expected):
        whole = isinstance(error.instance, float) and "number" not in expected
        return "Must be a whole number." if whole else "Must be a number."
    if kw in ("enum", "oneOf", "anyOf") and (options := choices(as_dict(error.schema))):
        return "Must be one of: " + ", ".join(t for _, t in options) + "."
    if kw == "format" and val == "date":
        return "Must be a date (YYYY-MM-DD)."
    s = "" if val == 1 else "s"
    simple = {
        "minLength": f"Must be at least {val} character{s}.",
        "maxLength": f"Must be at most {val} character{s}.",
        "minimum": f"Must be at least {val}.", "maximum": f"Must be at most {val}.",
        "exclusiveMinimum": f"Must be more than {val}.", "exclusiveMaximum": f"Must be less than {val}.",
        "minItems": f"Choose at least {val}.", "maxItems": f"Choose at most {val}.",
        "multipleOf": f"Must be a multiple of {val}.", "uniqueItems": "Items must be unique.",
        "const": f"Must be {show(val)}.", "format": f"Must be a valid {val}.",
        "pattern": "Is not in the expected format.", "type": "Must be text." if val == "string" else None,
    }
    return str(simple.get(kw) or error.message)


def _collect(error: Any, out: dict[str, list[str]]) -> None:
    if error.validator in ("oneOf", "anyOf") and error.context and not choices(as_dict(error.schema)):
        error = best_match(error.context)  # say what the closest alternative lacked
    path = ".".join(str(p) for p in error.absolute_path)
    missing = _missing(error) if error.validator in ("required", "dependentRequired", "dependencies") else []
    targets = [(f"{path}.{n}" if path else n, "This field is required.") for n in missing]
    for field, message in targets or [(path, _message(error))]:
        if message not in out.setdefault(field, []):
            out[field].append(message)


def validate(schema: dict[str, Any], data: dict[str, Any], case: Mapping[str, Any] | None = None
             ) -> dict[str, list[str]]:
    """Validate data against the schema; returns {field_path: [messages]}, {} when valid. `case` is the case's data
    as the task sees it (for rules that compare a field with a case value)."""
    out: dict[str, list[str]] = {}
    cls = validator_for(schema, default=_DEFAULT)
    try:
        for error in cls(schema, format_checker=_FORMATS).iter_errors(data):
            _collect(error, out)
    except Exception as exc:  # a broken schema (bad type, dangling $ref) must not 500 a page
        return {"": [f"The form definition is invalid: {exc}"]}
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
    return sorted(problems)
