"""Wake-ups for the nodes when the console, the API or an agent changes the shared state
(ARCHITECTURE §3a): PostgreSQL NOTIFY between processes, a local signal inside one process
(the embedded `dialer serve`); the nodes also poll at least every second, so a lost wake-up
only costs that second."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from sqlalchemy import text
from sqlalchemy.orm import Session

CHANNEL = "dialer"
_subscribers: dict[threading.Event, bool] = {}
_lock = threading.Lock()


def commit_and_wake(session: Session) -> None:
    """Commits, and tells every node that something it acts on has changed."""
    if session.get_bind().dialect.name == "postgresql":
        # Delivered by PostgreSQL when the transaction commits, never before.
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
    session.commit()
    wake_local()


def wake_local(*, by_node: bool = False) -> None:
    """Wakes this process's subscribers; a node's own changes (`by_node`: a call put through,
    an agent to wrap-up) wake the console's live views but not the nodes."""
    with _lock:
        for event, wants_node_changes in _subscribers.items():
            if wants_node_changes or not by_node:
                event.set()


@contextlib.contextmanager
def subscribed(*, node_changes: bool = True) -> Iterator[threading.Event]:
    """An event set by every wake-up in this process while the block runs (those a node
    makes too, unless `node_changes` is False)."""
    event = threading.Event()
    with _lock:
        _subscribers[event] = node_changes
    try:
        yield event
    finally:
        with _lock:
            _subscribers.pop(event, None)
