"""Engine and session lifecycle, and schema migrations shipped inside the package."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_URL = "sqlite:///dialer.db"
# SQLite: how often the write-ahead log is copied into the database, off the request path.
CHECKPOINT_EVERY_S = 1.0
MIGRATIONS = Path(__file__).with_name("migrations")
# PostgreSQL: a pooled connection used less than this long ago is handed out without a ping.
PING_AFTER_IDLE_S = 10.0
# SQLite: how long a writer waits for the write lock before "database is locked", and how it
# looks for it at first (`_begin_immediate`).
BUSY_TIMEOUT_MS = 10_000
LOCK_LOOK_FOR_S = 0.05
LOCK_LOOK_S = 0.00025
# The latest SQLite write transactions' waits for the write lock, as (thread id, seconds):
# `dialer bench node` tells its node's apart from the other writers'.
WRITE_LOCK_WAITS: deque[tuple[int, float]] = deque(maxlen=50_000)


def database_url(url: str | None = None) -> str:
    return url or os.environ.get("DATABASE_URL") or DEFAULT_URL


def _tune_sqlite(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # WAL lets the console read while a node writes; NORMAL is durable in WAL mode.
    # busy_timeout first: switching to WAL needs a lock another connection may hold.
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # No checkpoint inside a commit: the claim that crossed the 1000-page mark paid for copying
    # the log into the database, 3-4 times its own cost (measured: every 4-6 claims of 100 at
    # 10M leads, p99 57 ms against a median of 15). `_checkpoint_in_background` does it, and
    # SQLite itself when the last connection closes.
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def _checkpoint_in_background(engine: Engine, path: str) -> None:
    """A daemon thread copies the log into the database every second (PASSIVE: it never waits
    for, nor blocks, readers and writers); it stops when the engine is disposed or collected.

    Each checkpoint opens its own connection and closes it at once, under a lock the dispose
    waits for: a pooled connection taken while the engine was being disposed outlived it and
    recreated the log files of a database its owner had just removed."""
    stop = threading.Event()
    lock = threading.Lock()
    target = weakref.ref(engine)

    def run() -> None:
        while not stop.wait(CHECKPOINT_EVERY_S):
            with lock:
                if stop.is_set() or target() is None:
                    return
                with contextlib.suppress(sqlite3.Error):
                    connection = sqlite3.connect(path, timeout=0)
                    try:
                        connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    finally:
                        connection.close()

    def stopped(_engine: Engine) -> None:
        with lock:
            stop.set()

    event.listen(engine, "engine_disposed", stopped)
    threading.Thread(target=run, name="sqlite-checkpoint", daemon=True).start()


def make_engine(url: str | None = None, **kwargs: object) -> Engine:
    url = database_url(url)
    if url.startswith("sqlite"):
        # pysqlite opens its own transactions lazily; we issue BEGIN ourselves so that
        # `BEGIN IMMEDIATE` (the hopper's write lock) is possible.
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
            **kwargs,
        )
        event.listen(engine, "connect", _tune_sqlite)
        event.listen(engine, "connect", _disable_pysqlite_begin)
        event.listen(engine, "begin", _emit_begin)
        if engine.url.database not in (None, "", ":memory:"):
            _checkpoint_in_background(engine, engine.url.database)
        return engine
    engine = create_engine(url, **kwargs)
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Pings a connection at checkout only when it sat in the pool for a while: a ping is one
    more round trip, one in five of a hopper claim's. A server restart between two uses fails
    one transaction per process: SQLAlchemy then discards every connection of the pool."""

    @event.listens_for(engine, "connect")
    @event.listens_for(engine, "checkin")
    def used(_dbapi_connection, record) -> None:  # type: ignore[no-untyped-def]
        record.info["used_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping(dbapi_connection, record, _proxy) -> None:  # type: ignore[no-untyped-def]
        if time.monotonic() - record.info.get("used_at", 0.0) < PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool drops this connection and checks out another one.
            raise exc.DisconnectionError(str(error)) from error


def _disable_pysqlite_begin(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    dbapi_connection.isolation_level = None


def _emit_begin(connection) -> None:  # type: ignore[no-untyped-def]
    # `sqlite_begin="BEGIN IMMEDIATE"` takes the write lock up front: a deferred transaction
    # that reads and then writes fails at once with "database is locked" when another writer
    # got there first, instead of waiting for busy_timeout.
    mode = connection.get_execution_options().get("sqlite_begin", "BEGIN")
    if mode == "BEGIN IMMEDIATE":
        _begin_immediate(connection.connection.dbapi_connection)
    else:
        connection.exec_driver_sql(mode)


def _begin_immediate(dbapi_connection: sqlite3.Connection) -> None:
    started = time.monotonic()
    _take_write_lock(dbapi_connection)
    WRITE_LOCK_WAITS.append((threading.get_ident(), time.monotonic() - started))


def _take_write_lock(dbapi_connection: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, looking for the write lock every LOCK_LOOK_S for its first
    LOCK_LOOK_FOR_S, then as SQLite does until busy_timeout. SQLite's own handler sleeps 1, 2,
    5, 10, 15, 20 ... ms between looks: a writer that met the lock held for 3 ms waited 8 ms,
    one held for 9 ms waited 18 (`dialer bench node`: the node's writes met it 1 time in 20)."""
    deadline = time.monotonic() + LOCK_LOOK_FOR_S
    dbapi_connection.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                dbapi_connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                    raise
            if time.monotonic() >= deadline:
                break
            time.sleep(LOCK_LOOK_S)
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    dbapi_connection.execute("BEGIN IMMEDIATE")


@contextmanager
def migrated_schema(url: str, prefix: str) -> Iterator[str]:
    """A new PostgreSQL schema, migrated, for tests and benchmarks on a shared database: yields
    a URL whose connections work in it, and drops it afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    scoped = schema_url(url, schema)
    try:
        upgrade(scoped)
        yield scoped
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def schema_url(url: str, schema: str) -> str:
    """`url` with its connections working in the PostgreSQL schema `schema`."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


def writer(engine: Engine) -> Engine:
    """The engine for transactions that write: on SQLite they take the write lock at BEGIN
    (a read transaction that writes later fails at once if another connection wrote meanwhile,
    instead of waiting for its turn). The same pool; elsewhere the option changes nothing."""
    return engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")


def begin_write(session: Session) -> None:
    """Ends the session's transaction (committing what it holds) and starts the next one with
    SQLite's write lock: a transaction that read first and writes later fails at once with
    "database is locked" when another connection (a node, the console) wrote in between."""
    if session.in_transaction():
        session.commit()
    session.connection(execution_options={"sqlite_begin": "BEGIN IMMEDIATE"})


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url(url)), revision)


def current_revision(url: str | None = None) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(database_url(url))
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
