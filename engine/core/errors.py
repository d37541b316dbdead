"""Domain errors the services raise; the web layer maps each to one HTTP status."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: the field or BPMN element to blame, and what is wrong."""

    message: str
    field: str | None = None
    element: str | None = None

    def as_dict(self) -> dict[str, str]:
        """The API's error shape: {"field" or "element", "message"}."""
        out: dict[str, str] = {}
        if self.field is not None:
            out["field"] = self.field
        if self.element is not None:
            out["element"] = self.element
        out["message"] = self.message
        return out


class EngineError(Exception):
    """Base class of every error a service raises on purpose."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or [Problem(message)]


class NotFound(EngineError):
    """The thing does not exist, or the caller may not know that it exists."""


class Forbidden(EngineError):
    """The caller may see the thing but not do this to it."""


class Conflict(EngineError):
    """The thing changed under the caller (task no longer open, concurrent writer)."""


class Unavailable(EngineError):
    """The database could not take the change (locked, full, restarting); nothing was changed."""


class Invalid(EngineError):
    """The input breaks a schema or a rule; `problems` names each field or element."""
