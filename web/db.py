"""The console's database: one engine per app, one session per request, closed at teardown."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from campaigns.db import make_engine, session_factory

ENGINE = "dialer.engine"
SESSIONS = "dialer.sessions"


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions[ENGINE] = engine
    app.extensions[SESSIONS] = session_factory(engine)
    app.teardown_appcontext(close_session)


def engine() -> Engine:
    return current_app.extensions[ENGINE]  # type: ignore[no-any-return]


def sessions() -> sessionmaker[Session]:
    return current_app.extensions[SESSIONS]  # type: ignore[no-any-return]


def session() -> Session:
    """This request's session; a view commits what it changed, teardown closes it."""
    if "db_session" not in g:
        g.db_session = sessions()()
    return g.db_session  # type: ignore[no-any-return]


def close_session(_error: BaseException | None = None) -> None:
    current = g.pop("db_session", None)
    if current is not None:
        current.close()


def dispose(app: Flask) -> None:
    """Closes the app's pooled connections (tests, and a server shutting down)."""
    app.extensions[ENGINE].dispose()
