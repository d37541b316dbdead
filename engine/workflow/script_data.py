"""What a script may leave in task data: values the serializer can write (JSON scalars, dates, decimals, and
lists and dicts of them), at most MAX_DATA_NODES of them, without helpers or interpreter machinery."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Any

_KEPT_SCALARS = (str, int, float, bool, type(None), date, Decimal)  # date covers datetime
_JSON_KEYS = (str, int, float, bool, type(None))


# Deeper than this cannot be kept: json and SpiffWorkflow's serializer recurse, and so does the check.
_MAX_DEPTH = 100
# Task data that would serialize to more values than this is not kept.  Sharing makes the limit
# necessary: `v = [v, v]` sixty times is 60 small lists in memory but 2**60 values once serialized.
MAX_DATA_NODES = 1_000_000


def _serialized_size(value: Any, memo: dict[int, int | None], depth: int = 0) -> int | None:
    """How many values the serializer would write for ``value``; None when it cannot be serialized.

    Kept: str, int, float, bool, None, date, datetime, Decimal, and lists and dicts (JSON keys) of
    them.  ``memo`` makes shared containers cost once, so the check stays linear in memory size.
    """
    if callable(value):
        return None
    if isinstance(value, _KEPT_SCALARS):
        return 1
    key = id(value)
    if key in memo:
        return memo[key]  # None while in progress as well: meeting it again means a cycle
    if depth >= _MAX_DEPTH:
        return None
    if isinstance(value, list):
        children: Iterable[Any] = value
    elif isinstance(value, dict) and all(isinstance(k, _JSON_KEYS) for k in value):
        children = value.values()
    else:
        return None
    memo[key] = None
    total = 1
    for child in children:
        size = _serialized_size(child, memo, depth + 1)
        if size is None:
            return None
        total += size
    memo[key] = total
    return total


_MACHINERY_KEYS = frozenset({"__builtins__", "__warningregistry__"})


def scrub_data(context: dict[str, Any], drop: set[str]) -> None:
    """Remove helpers, machinery and anything that would not serialize from task data (in place)."""
    memo: dict[int, int | None] = {}
    total = 0
    for key in list(context):
        if key in _MACHINERY_KEYS or key in drop:
            del context[key]
            continue
        size = _serialized_size(context[key], memo)
        if size is None or total + size > MAX_DATA_NODES:
            del context[key]
        else:
            total += size
