"""Database engine, sessions and the unit of work that owns each service call's transaction."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from engine.core.errors import Conflict, Unavailable

_P = ParamSpec("_P")
_R = TypeVar("_R")

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
            if ":memory:" not in url:  # checkpoints are Checkpointer's; a commit does one only past this size
                cur.execute(f"PRAGMA wal_autocheckpoint={WAL_FALLBACK_PAGES}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            readonly = conn.get_execution_options().get("ntpswf_readonly", False)
            sql = "BEGIN" if readonly else "BEGIN IMMEDIATE"
            # On the driver's connection: a statement through SQLAlchemy costs more than the BEGIN itself, and
            # every unit of work starts with one. Its errors are wrapped as SQLAlchemy wraps any other.
            try:
                conn.connection.driver_connection.execute(sql)
            except sqlite3.Error as exc:
                raise DBAPIError.instance(sql, None, exc, sqlite3.Error, dialect=conn.dialect) from exc

        return engine
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 10)
    ping_idle = kwargs.pop("pool_pre_ping", None) is None  # an explicit pool_pre_ping wins over the idle ping
    engine = create_engine(url, **kwargs)
    if ping_idle:
        _ping_when_idle(engine)
    return engine


#: SQLite: how often the background checkpoint runs, and the WAL size (pages) at which a commit checkpoints
#: itself anyway (should the background one fall behind or not run).
CHECKPOINT_EVERY_S = 0.5
WAL_FALLBACK_PAGES = 20_000


class Checkpointer:
    """Copies SQLite's write-ahead log into the database file in a background thread.

    SQLite otherwise makes the commit that fills the log past 1,000 pages do it, with an fsync: every hundred
    or so completions one request took 15 to 40 ms longer. A PASSIVE checkpoint never blocks readers or
    writers, and pysqlite releases the GIL while it works, so requests do not wait for it."""

    def __init__(self, engine: Engine, every: float = CHECKPOINT_EVERY_S) -> None:
        self.engine = engine
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ntpswf-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.checkpoint()

    def checkpoint(self) -> None:
        """One PASSIVE checkpoint on a pooled connection (autocommit: no transaction, no write lock)."""
        try:
            conn = self.engine.raw_connection()
            try:
                conn.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # type: ignore[union-attr]
            finally:
                conn.close()
        except Exception as exc:  # a full disk or a locked file: the next round (or a commit) checkpoints
            log.debug("background checkpoint failed: %s", exc)

    def stop(self) -> None:
        """Stop the thread (dispose)."""
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)


#: A pooled connection unused for this long is pinged before use (it may have been cut while it waited).
PING_AFTER_IDLE_S = 10.0


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled PostgreSQL connection before use only when it has been idle a while.

    SQLAlchemy's pool_pre_ping costs a round trip on every checkout, that is on every request. Connections in
    steady use skip it; one that waited in the pool (a quiet night, a firewall's idle cut) is pinged and
    replaced if dead. A server restart under load still fails the statements in flight once: the pool then
    drops all its connections and the next request reconnects (and the failed one was a clean 503)."""

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn: Any, record: Any) -> None:
        record.info["ntpswf_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("ntpswf_idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the pool replaces this connection and tries again
            raise DisconnectionError(f"connection idle for {time.monotonic() - since:.0f} s is dead") from exc
        if not alive:
            raise DisconnectionError("connection failed its ping")


class Database:
    """One engine and its session factory."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **kwargs)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # Reads on PostgreSQL run in autocommit: under READ COMMITTED a transaction gives a read nothing more
        # (each statement sees its own snapshot), and it would cost a BEGIN and an end per view; ending one
        # with ROLLBACK would also make psycopg drop every prepared statement of the connection. On SQLite
        # a read is one deferred transaction (one snapshot for the whole view) that never takes the write lock.
        options = {"isolation_level": "AUTOCOMMIT"} if self.is_postgres else {"ntpswf_readonly": True}
        self.read_sessions = sessionmaker(self.engine.execution_options(**options), expire_on_commit=False)
        event.listen(self.read_sessions, "before_flush", _refuse_write)
        file_sqlite = self.engine.dialect.name == "sqlite" and self.engine.url.database not in (None, "", ":memory:")
        self.checkpointer = Checkpointer(self.engine) if file_sqlite else None

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

    def run(self, step: Callable[Concatenate[Session, _P], _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """Run one step (a service function that takes a Session and never commits) in its own unit of work, and
        commit it: how a view or a command calls such a step. An error rolls everything back."""
        with self.unit_of_work() as uow:
            result = step(uow.session, *args, **kwargs)
            uow.commit()
        return result

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session for views: it never writes (a change to a loaded object is an error at flush)."""
        session = self.read_sessions()
        try:
            yield session
        finally:
            # close() ends the transaction and detaches objects with their loaded state intact,
            # so views can still read what they loaded (rollback() would expire it).
            session.close()

    def dispose(self) -> None:
        """Stop the background checkpoint and close pooled connections (tests, shutdown)."""
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self.engine.dispose()


def connection_of(session: Session) -> Connection:
    """`session.connection()`, kept on the session for the transaction it belongs to: hot paths send several
    statements a step, and asking the session each time costs more than some of them.

    Kept per transaction, savepoints included: a savepoint begun with `begin_nested` is only sent when the session
    is asked for its connection inside it, so a new (nested or root) transaction always asks again."""
    current = session.get_nested_transaction() or session.get_transaction()
    kept: tuple[Any, Connection] | None = session.info.get(_CONNECTION)
    if current is not None and kept is not None and kept[0] is current:
        return kept[1]
    conn = session.connection()
    session.info[_CONNECTION] = (session.get_nested_transaction() or session.get_transaction(), conn)
    return conn


_CONNECTION = "ntpswf_connection"


def _refuse_write(session: Session, _context: Any, _instances: Any) -> None:
    raise RuntimeError("a read session tried to write: changes belong in a unit of work")


class UnitOfWork:
    """The transaction of one service call: nothing is written unless commit() is reached."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.committed = False

    def commit(self) -> None:
        """Commit everything the service did."""
        self.session.commit()
        self.committed = True
