"""Database engine, sessions and the unit of work that owns each service call's transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from engine.errors import Conflict, Unavailable

log = logging.getLogger(__name__)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create a SQLAlchemy engine tuned for the backend (WAL and a busy timeout on SQLite)."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30, "check_same_thread": False})
        busy_ms = int(float(kwargs["connect_args"].get("timeout", 30)) * 1000)
        engine = create_engine(url, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let pysqlite open no implicit transactions; we BEGIN ourselves so that
            # a write transaction takes the lock up front (BEGIN IMMEDIATE) and never deadlocks.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            if ":memory:" not in url:
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={busy_ms}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            readonly = conn.get_execution_options().get("ntpswf_readonly", False)
            conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")  # errors wrapped like any other

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 10)
    return create_engine(url, **kwargs)


class Database:
    """One engine and its session factory."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_postgres(self) -> bool:
        """True when the backend is PostgreSQL (row locks with SKIP LOCKED are available)."""
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def unit_of_work(self) -> Iterator[UnitOfWork]:
        """A transaction that rolls back unless the service calls commit()."""
        session = self.sessions()
        uow = UnitOfWork(session)
        try:
            yield uow
        except StaleDataError as exc:
            # Raised at flush or commit when another writer changed the row since we read it.
            raise Conflict("the case was changed by someone else at the same time; reload and try again") from exc
        except OperationalError as exc:
            # Locked past the busy timeout, disk full, server restarting: the transaction is rolled back
            # whole, so the caller can safely try again.
            log.warning("database unavailable: %s", exc.orig)
            raise Unavailable("the database could not take the change just now (nothing was changed); "
                              "try again in a moment") from exc
        finally:
            if not uow.committed:
                session.rollback()
            session.close()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session for views (never commits)."""
        session = self.sessions()
        session.connection(execution_options={"ntpswf_readonly": True})
        try:
            yield session
        finally:
            # close() ends the transaction and detaches objects with their loaded state intact,
            # so views can still read what they loaded (rollback() would expire it).
            session.close()

    def dispose(self) -> None:
        """Close pooled connections (tests, shutdown)."""
        self.engine.dispose()


class UnitOfWork:
    """The transaction of one service call: nothing is written unless commit() is reached."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.committed = False

    def commit(self) -> None:
        """Commit everything the service did."""
        self.session.commit()
        self.committed = True
