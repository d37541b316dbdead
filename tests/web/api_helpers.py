"""Helpers shared by the API tests: tokens, calls with a bearer token, a running case."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select
from werkzeug.test import TestResponse

from engine.people.models import User
from engine.people.users import issue_token
from engine.schema import Base
from engine.workflow.models import HumanTask
from engine.workflow.runtime import Runtime

START = {"employee": "employee", "agreement_start": "2025-06-30", "assessment_date": "2026-06-30"}
INVITE = {"invitation": {"message": "Please make your submission by 30 May."}}
DEMO_USERS = ("employee", "engineer", "clerk", "supervisor", "manager", "ceo", "delegate", "hr", "ocpe",
              "owner", "admin")


def token_for(runtime: Runtime, username: str | None) -> str:
    """A live token straight from the engine (the token endpoint itself is tested on its own); for None, a
    token that belongs to nobody (an anonymous caller)."""
    if username is None:
        return "no-such-token"
    with runtime.db.unit_of_work() as uow:
        user = uow.session.scalars(select(User).where(User.username == username)).one()
        value, _ = issue_token(uow.session, user)
        uow.commit()
    return value


class Api:
    """A test client that sends one user's bearer token."""

    def __init__(self, client: FlaskClient, token: str | None) -> None:
        self.client = client
        self.token = token

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return {**headers, **(extra or {})}

    def get(self, path: str, **kw: Any) -> TestResponse:
        return self.client.get(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def post(self, path: str, **kw: Any) -> TestResponse:
        return self.client.post(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def put(self, path: str, **kw: Any) -> TestResponse:
        return self.client.put(path, headers=self._headers(kw.pop("headers", None)), **kw)

    def delete(self, path: str, **kw: Any) -> TestResponse:
        return self.client.delete(path, headers=self._headers(kw.pop("headers", None)), **kw)


def api_as(app: Flask, runtime: Runtime, username: str | None) -> Api:
    """A client calling as `username` (None: without a token)."""
    return Api(app.test_client(), token_for(runtime, username) if username else None)


def start_case(runtime: Runtime, data: dict[str, Any] | None = None) -> int:
    """A pay progression case for `employee`, started by HR."""
    return runtime.start(None, "pay_progression", data or START, actor="hr")


def open_task(runtime: Runtime, case: int, name: str) -> int:
    """The id of the case's open task `name`."""
    with runtime.db.read() as s:
        return s.scalars(select(HumanTask.id).where(HumanTask.instance_id == case, HumanTask.name == name,
                                                    HumanTask.state == "open")).one()


def assert_errors(response: TestResponse, status: int, *fields: str) -> list[dict[str, str]]:
    """The answer has `status`, is the API's error shape, and names `fields` (when given)."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    errors = response.get_json()["errors"]
    assert errors and all(isinstance(e["message"], str) and e["message"] for e in errors)
    assert all(set(e) <= {"field", "element", "message"} for e in errors)
    if fields:
        assert {e.get("field") for e in errors} >= set(fields), errors
    return list(errors)


def row_counts(runtime: Runtime) -> dict[str, int]:
    """How many rows every table holds (to prove a refused call changed nothing)."""
    with runtime.db.read() as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) or 0 for t in Base.metadata.sorted_tables
                if t.name not in ("rate_limit_hit", "api_token")}


@contextmanager
def listening(runtime: Runtime, name: str, fn: Callable[..., None]) -> Iterator[None]:
    """`fn` hears the runtime's engine event `name` inside the block (the database's own statements and commits)."""
    event.listen(runtime.db.engine, name, fn)
    try:
        yield
    finally:
        event.remove(runtime.db.engine, name, fn)
