"""The password policy, for every path that sets a password (command line, API, CSV import, the password page).

At least 12 characters, and not guessable: zxcvbn (a maintained port of Dropbox's estimator) scores the
password against its lists of common and breached passwords, English words, names, keyboard patterns, dates,
repeats and sequences, and against the person's own username and name (which it must not contain either); a
score below 3 ("safely unguessable: moderate protection from an offline attack") is refused with zxcvbn's own
advice.
"""

from __future__ import annotations

import re

from zxcvbn import zxcvbn

from engine.core.errors import Invalid, Problem

MIN_LENGTH = 12
MAX_LENGTH = 1024
#: zxcvbn's score from 0 (too guessable) to 4 (very unguessable); 3 is what the policy asks.
MIN_SCORE = 3


def password_problem(password: str, *personal: str | None) -> str | None:
    """Why `password` is refused, in words; None when it is acceptable. `personal`: username, name, e-mail."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    if password.strip() != password and not password.strip():
        return "must not be only spaces"
    lowered = password.lower()
    if any(len(word) >= 4 and word in lowered for word in _personal_words(personal)):
        return "must not contain your username, name or e-mail address"
    # zxcvbn's cost grows with the length; what it rejects is found in the first 100 characters.
    result = zxcvbn(password[:100], user_inputs=_personal_words(personal))
    if result["score"] < MIN_SCORE:
        feedback = result.get("feedback") or {}
        advice = " ".join(filter(None, [feedback.get("warning"), *(feedback.get("suggestions") or [])]))
        return "is too easy to guess" + (f": {advice}" if advice else "")
    return None


def _personal_words(personal: tuple[str | None, ...]) -> list[str]:
    """The username, name and e-mail as whole values and word by word ('Sam Starter' -> sam, starter)."""
    words: list[str] = []
    for value in filter(None, personal):
        words.append(value.lower())
        words.extend(w for w in re.split(r"[\W_]+", value.lower()) if len(w) >= 3)
    return words


def check_password(password: str, *personal: str | None, field: str = "password") -> None:
    """Raise Invalid naming `field` when the password breaks the policy."""
    problem = password_problem(password, *personal)
    if problem is not None:
        raise Invalid("the password is not acceptable", [Problem(problem, field=field)])
