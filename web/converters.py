"""URL converters and query/form parsing: an id beyond what the database holds is simply not found (404), or not a
number the app reads, never a server error."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Request
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.routing import IntegerConverter

from web.openapi_models import MAX_ID


def digits_up_to(bound: int) -> str:
    """A regular expression (no groups) for the decimal numbers from 0 to `bound`, leading zeros allowed."""
    top = str(bound)
    parts = [rf"\d{{1,{len(top) - 1}}}"] if len(top) > 1 else []
    for i, digit in enumerate(top):
        if digit != "0":
            parts.append(f"{top[:i]}[0-{int(digit) - 1}]" + (rf"\d{{{len(top) - i - 1}}}" if i < len(top) - 1 else ""))
    return "0*(?:" + "|".join([*parts, top]) + ")"


class BoundedIntConverter(IntegerConverter):
    """werkzeug's `int`, capped at the largest id a table holds (PostgreSQL `integer`): `/cases/18446744073709551616`
    matches no rule and is a 404, where SQLite raised OverflowError (a 500) before. The cap is in the regular
    expression too: a number past it that failed only in `to_python` let werkzeug answer 405 when another rule
    takes the same path with another method (POST /tasks/2147483648, whose GET is another rule)."""

    def __init__(self, url_map: Any, fixed_digits: int = 0, min: int | None = None,
                 max: int | None = None, signed: bool = False) -> None:
        bound = MAX_ID if max is None or max > MAX_ID else max
        super().__init__(url_map, fixed_digits=fixed_digits, min=min, max=bound, signed=signed)
        if not signed and not fixed_digits and bound >= 0:
            self.regex = digits_up_to(bound)


def bounded_int(text: Any) -> int:
    """`int(text)` for a whole number no larger than any id (2^31 - 1 either way); ValueError otherwise, which
    `request.args.get(name, type=int)` reads as "not given", as it reads `?version=abc`."""
    value = int(text)
    if not -MAX_ID <= value <= MAX_ID:
        raise ValueError(f"{text!r} is past any id")
    return value


class BoundedMultiDict(ImmutableMultiDict[str, Any]):
    """The query and form values: `get(name, type=int)` and `getlist(name, type=int)` read only whole numbers that
    a database column can be compared with. `?after=9999999999999999999999999999999` was an OverflowError from
    SQLite (a 500) in every view that reads a number from the query or a form; now it is as if not given."""

    def get(self, key: str, default: Any = None, type: Callable[[Any], Any] | None = None) -> Any:  # type: ignore[override]
        if type is None:
            return super().get(key, default)
        return super().get(key, default, bounded_int if type is int else type)

    def getlist(self, key: str, type: Callable[[Any], Any] | None = None) -> list[Any]:
        if type is None:
            return super().getlist(key)
        return super().getlist(key, bounded_int if type is int else type)


class BoundedRequest(Request):
    """Flask's request with `BoundedMultiDict` for the query string and the form (the app's request_class)."""

    parameter_storage_class = BoundedMultiDict
