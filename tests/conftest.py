"""Fixture chain: database URL (SQLite, and PostgreSQL when configured) -> runtime -> app -> client -> login."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from engine.core.clock import CLOCK
from engine.core.config import PROJECT_ROOT, Settings
from engine.core.db import Database
from engine.schema import Base
from engine.workflow.demo import deploy_processes, load_people
from engine.workflow.runtime import Runtime

POSTGRES_URL = os.environ.get("NTPSWF_TEST_POSTGRES_URL")
IN_CI = os.environ.get("CI", "").lower() == "true"
SHARED = PROJECT_ROOT.parent / "shared"
#: A fixed "now" for tests: the clock never moves unless a test moves it.
T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def require(condition: bool, reason: str) -> None:
    """Skip when a real part is missing on a user's machine; fail in CI, where it must be there."""
    if not condition:
        if IN_CI:
            pytest.fail(f"CI needs this: {reason}")
        pytest.skip(reason)


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    from engine.core import clock

    clock.install()
    CLOCK.freeze(T0)
    yield
    CLOCK.reset()


@pytest.fixture(autouse=True)
def _dispose_databases(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every Database a test makes (a fixture's, a Driver's restore, one a test opens on a database file) has its
    connections closed when the test ends: an open PostgreSQL connection collected later warns inside another test."""
    made: list[Database] = []
    original = Database.__init__

    def tracking(self: Database, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(Database, "__init__", tracking)
    yield
    for db in made:
        db.dispose()


_pg_schema_ready = False


def _reset_postgres(url: str) -> None:
    global _pg_schema_ready
    db = Database(url)
    try:
        if not _pg_schema_ready:
            with db.engine.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
            from web.cli import upgrade_database

            upgrade_database(url)
            _pg_schema_ready = True
        else:
            names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            with db.engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        db.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated database on each backend."""
    if request.param == "postgres":
        require(bool(POSTGRES_URL), "NTPSWF_TEST_POSTGRES_URL is not set (PostgreSQL tests skipped)")
        assert POSTGRES_URL is not None
        _reset_postgres(POSTGRES_URL)
        return POSTGRES_URL
    return sqlite_database(tmp_path / "test.sqlite3")


def sqlite_database(path: Path) -> str:
    """The URL of a new SQLite database at `path` holding every table."""
    url = f"sqlite:///{path}"
    db = Database(url)
    Base.metadata.create_all(db.engine)
    db.dispose()
    return url


@pytest.fixture
def settings(db_url: str) -> Settings:
    # compact_above_tasks=0: every save compacts the workflow (engine.workflow.compaction), so every suite that
    # runs a case straight and restored also proves that compaction changes nothing the case does.
    return Settings(database_url=db_url, forms_dir=PROJECT_ROOT / "forms", processes_dir=PROJECT_ROOT / "processes",
                    compact_above_tasks=0)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    db = Database(settings.database_url)
    yield Runtime(db, settings)
    db.dispose()


@pytest.fixture
def org(runtime: Runtime) -> Runtime:
    """The demo people and logins, and every process in processes/ deployed (no cases)."""
    load_people(runtime)
    deploy_processes(runtime)
    return runtime


@pytest.fixture
def app(settings: Settings, tmp_path: Path) -> Iterator[Flask]:
    from web import create_app

    os.environ.setdefault("NTPSWF_SECRET_KEY", "test-secret")
    application = create_app(settings, {"TESTING": True, "WTF_CSRF_ENABLED": False})
    yield application
    application.extensions["ntpswf"].db.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class Auth:
    """Log the test client in and out as a demo user."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def login(self, username: str, password: str = "demo-pass-2026") -> Any:
        return self.client.post("/login", data={"username": username, "password": password})

    def logout(self) -> Any:
        return self.client.post("/logout")


@pytest.fixture
def auth(client: FlaskClient) -> Auth:
    return Auth(client)


@pytest.fixture
def app_org(app: Flask) -> Runtime:
    """The demo people and processes in the app's own database."""
    runtime: Runtime = app.extensions["ntpswf"].runtime
    load_people(runtime)
    deploy_processes(runtime)
    return runtime
