"""The console's database: one engine per app, one session per request, closed at teardown."""

from __future__ import annotations

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from campaigns.db import make_engine, session_factory

ENGINE = "dialer.engine"
SESSIONS = "dialer.sessions"
WRITING_SESSIONS = "dialer.writing_sessions"
READING_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions[ENGINE] = engine
    app.extensions[SESSIONS] = session_factory(engine)
    # SQLite: a request that changes data takes the write lock when its transaction begins, as
    # the hopper does. A deferred transaction that read first cannot write once another
    # connection (a node, an import) has committed since: it fails at once with "database is
    # locked" instead of waiting. A view that hands writing to another connection (an import)
    # ends its own transaction first.
    app.extensions[WRITING_SESSIONS] = session_factory(
        engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
    )
    app.teardown_appcontext(close_session)


def engine() -> Engine:
    return current_app.extensions[ENGINE]  # type: ignore[no-any-return]


def sessions() -> sessionmaker[Session]:
    return current_app.extensions[SESSIONS]  # type: ignore[no-any-return]


def session() -> Session:
    """This request's session; a view commits what it changed, teardown closes it."""
    if "db_session" not in g:
        writing = has_request_context() and request.method not in READING_METHODS
        factory = current_app.extensions[WRITING_SESSIONS if writing else SESSIONS]
        g.db_session = factory()
    return g.db_session  # type: ignore[no-any-return]


def close_session(_error: BaseException | None = None) -> None:
    current = g.pop("db_session", None)
    if current is not None:
        current.close()


def dispose(app: Flask) -> None:
    """Closes the app's pooled connections (tests, and a server shutting down)."""
    app.extensions[ENGINE].dispose()
