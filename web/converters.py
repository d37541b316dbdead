"""URL converters: an id beyond what the database holds is simply not found (404), never a server error."""

from __future__ import annotations

from typing import Any

from werkzeug.routing import IntegerConverter

from web.openapi_models import MAX_ID


class BoundedIntConverter(IntegerConverter):
    """werkzeug's `int`, capped at the largest id a table holds (PostgreSQL `integer`): `/cases/18446744073709551616`
    matches no rule and is a 404, where SQLite raised OverflowError (a 500) before."""

    def __init__(self, url_map: Any, fixed_digits: int = 0, min: int | None = None,
                 max: int | None = None, signed: bool = False) -> None:
        bound = MAX_ID if max is None or max > MAX_ID else max
        super().__init__(url_map, fixed_digits=fixed_digits, min=min, max=bound, signed=signed)
