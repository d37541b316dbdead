"""How the database layer hands out sessions (issue #8): reads never write, PostgreSQL reads keep the connection's
prepared statements, a pooled PostgreSQL connection that died while idle is replaced before use, and SQLite's log
is checkpointed in the background."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

import engine.core.db
from engine.core.db import Database
from engine.people.models import Person
from engine.schema import Base
from tests.conftest import POSTGRES_URL, require


def _add_person(db: Database) -> None:
    with db.unit_of_work() as uow:
        uow.session.add(Person(username="rw", name="Before", email="rw@example.org", classification="AO5"))
        uow.commit()


def test_scale_a_read_session_refuses_to_write(db_url: str) -> None:
    db = Database(db_url)
    try:
        _add_person(db)
        with pytest.raises(RuntimeError, match="read session tried to write"), db.read() as s:
            person = s.scalars(select(Person).where(Person.username == "rw")).one()
            person.name = "After"
            s.scalars(select(Person)).all()  # autoflush would write the change: refused
        with db.read() as s:
            assert s.scalars(select(Person.name).where(Person.username == "rw")).one() == "Before"
    finally:
        db.dispose()


def _postgres() -> str:
    require(bool(POSTGRES_URL), "NTPSWF_TEST_POSTGRES_URL is not set (PostgreSQL tests skipped)")
    assert POSTGRES_URL is not None
    return POSTGRES_URL


def test_scale_postgresql_reads_keep_the_connections_prepared_statements() -> None:
    # psycopg prepares a statement the sixth time it runs on a connection, and forgets all of them at a
    # ROLLBACK: views that ended their reads with one re-planned every statement on every request.
    db = Database(_postgres(), pool_size=1, max_overflow=0)
    try:
        query = select(Person.id).where(Person.username == "nobody")
        for _ in range(8):
            with db.read() as s:
                assert s.execute(query).first() is None
        with db.read() as s:
            prepared = s.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one()
        assert prepared >= 1
    finally:
        db.dispose()


def _backend_pid(db: Database) -> int:
    with db.read() as s:
        return int(s.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _kill(url: str, pid: int) -> None:
    killer = Database(url)
    try:
        with killer.engine.begin() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
    finally:
        killer.dispose()


def test_reliability_a_postgresql_connection_cut_while_idle_is_replaced_before_use(
        monkeypatch: pytest.MonkeyPatch) -> None:
    url = _postgres()
    db = Database(url, pool_size=1, max_overflow=0)
    try:
        pid = _backend_pid(db)
        _kill(url, pid)
        monkeypatch.setattr(engine.core.db, "PING_AFTER_IDLE_S", 0.0)  # it has waited "long enough"
        assert _backend_pid(db) != pid  # pinged, found dead, replaced: the caller never saw it
    finally:
        db.dispose()


def test_reliability_a_postgresql_connection_cut_while_busy_fails_once_then_the_pool_recovers() -> None:
    url = _postgres()
    db = Database(url, pool_size=1, max_overflow=0)
    try:
        pid = _backend_pid(db)
        _kill(url, pid)  # just used: not pinged, so the statement in flight fails (a clean 503 in the web app)
        with pytest.raises(OperationalError), db.read() as s:
            s.execute(text("SELECT 1")).scalar_one()
        assert _backend_pid(db) != pid  # and the next use reconnects by itself
    finally:
        db.dispose()


def test_scale_sqlite_checkpoints_in_the_background_not_in_a_request(tmp_path: Path) -> None:
    # A commit that fills the write-ahead log used to copy it into the database file itself, with an fsync
    # (15-40 ms for one request in every hundred or so). The checkpointer thread does it instead.
    url = f"sqlite:///{tmp_path / 'wal.sqlite3'}"
    main_file = tmp_path / "wal.sqlite3"
    writer = Database(url)
    try:
        assert writer.checkpointer is not None
        writer.checkpointer.stop()  # so that only the commit itself could copy the log
        Base.metadata.create_all(writer.engine)
        before = main_file.stat().st_size
        with writer.unit_of_work() as uow:  # ~2 MB, far below the size at which a commit checkpoints itself
            uow.session.add_all(Person(username=f"p{i}", name="x" * 1000, email=f"p{i}@example.org",
                                       classification="AO5") for i in range(2000))
            uow.commit()
        assert main_file.stat().st_size == before  # the commit left it in the log
        background = Database(url)  # a process with its checkpointer running
        try:
            deadline = time.monotonic() + 10 * engine.core.db.CHECKPOINT_EVERY_S
            while main_file.stat().st_size == before and time.monotonic() < deadline:
                time.sleep(0.05)
            assert main_file.stat().st_size > before + 1_000_000  # copied in by the background checkpoint
        finally:
            background.dispose()
        assert background.checkpointer is not None and not background.checkpointer._thread.is_alive()
    finally:
        writer.dispose()
