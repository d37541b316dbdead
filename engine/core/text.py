"""Free text people type, made safe to show to other people.

Control characters and the Unicode bidirectional controls (U+202E RIGHT-TO-LEFT OVERRIDE and its kin) can make
a name or a reason read differently from what it is ("Trojan Source", CVE-2021-42574). Names are refused when
they hold one (the person can say what they meant); free text in forms has them stripped, keeping line breaks
and tabs.
"""

from __future__ import annotations

import unicodedata
from typing import Any

#: The bidirectional formatting characters: marks, embeddings, overrides and isolates.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_KEPT = frozenset("\n\t")


def _unsafe(char: str) -> bool:
    return char in BIDI_CONTROLS or (unicodedata.category(char) == "Cc" and char not in _KEPT)


def unsafe_character(text: str, single_line: bool = True) -> str | None:
    """The first control or text-direction character in `text` as 'U+202E', or None when there is none."""
    for char in text:
        if _unsafe(char) or (single_line and char in _KEPT):
            return f"U+{ord(char):04X}"
    return None


def strip_unsafe(text: str) -> str:
    """`text` without control and text-direction characters (line breaks and tabs kept; CR LF becomes LF)."""
    text = text.replace("\r\n", "\n")
    if not any(_unsafe(char) for char in text):
        return text
    return "".join(char for char in text if not _unsafe(char))


def strip_unsafe_values(value: Any) -> Any:
    """Every string in a JSON-like value, stripped (dictionary keys too)."""
    if isinstance(value, str):
        return strip_unsafe(value)
    if isinstance(value, dict):
        return {strip_unsafe(k) if isinstance(k, str) else k: strip_unsafe_values(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_unsafe_values(v) for v in value]
    return value
