"""Server-sent events: the live pages (the agent desktop, the dashboard) get each change
pushed by the server as the database shows it; the browser never polls.

How a change is noticed. Inside one process (the embedded `dialer serve`, or any console
whose own views made the change: an agent's ready, a manager's pause) `campaigns.live` wakes
every open stream at once. A change made in another process (a node on another machine
bridging a call, another console behind the load balancer) is found by reading the database
again: every stream of a process shares one read per interval (`Shared`), so a hundred open
desktops cost one query per interval, not a hundred.

What a stream costs. Each open stream holds one of the server's threads for its life, so it
ends after STREAM_SECONDS (the browser's EventSource reconnects by itself, one second later),
sends a comment every KEEPALIVE_S so that proxies and the server keep a quiet connection (and
a closed one is noticed), and at most MAX_STREAMS are open per process: the next one is told to
come back in 30 s, so that pages are always served. A server that stops ends its streams first
(`close`).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from flask import Flask, Response, current_app

from campaigns import live

T = TypeVar("T")
S = TypeVar("S")
log = logging.getLogger(__name__)
KEEPALIVE_S = 15.0
RETRY_MS = 1000
BUSY_RETRY_MS = 30_000
SLOTS = "dialer.stream_slots"
# Keys of a message that change at every look (the server's clock) and do not make a change.
VOLATILE = frozenset({"now"})


def init_app(app: Flask) -> None:
    app.config.setdefault("STREAM_SECONDS", 300.0)
    app.config.setdefault("MAX_STREAMS", 48)
    app.extensions[SLOTS] = Slots(int(app.config["MAX_STREAMS"]))


class Slots:
    """The app's open streams: at most `limit`, and none once the server is stopping."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self.closing = False
        self._changed = threading.Condition()

    def enter(self) -> bool:
        with self._changed:
            if self.closing or self.open >= self.limit:
                return False
            self.open += 1
            return True

    def leave(self) -> None:
        with self._changed:
            self.open -= 1
            self._changed.notify_all()

    def close(self, timeout: float = 5.0) -> bool:
        """Ends every open stream (at its next look) and waits for them; True when all ended."""
        with self._changed:
            self.closing = True
        live.wake_local()
        with self._changed:
            return self._changed.wait_for(lambda: self.open == 0, timeout)


def stream_limit(threads: int) -> int:
    """How many streams a server with `threads` threads keeps open at most: a quarter of its
    threads, and at least one, stay free for pages and forms (a server of one thread gets one
    stream all the same)."""
    return max(1, threads - max(1, threads // 4))


def serve_with(app: Flask, threads: int) -> None:
    """Fits the app's stream limit to the server that serves it, and opens it to streams (a
    server that stopped closed it)."""
    slots: Slots = app.extensions[SLOTS]
    with slots._changed:
        slots.limit = stream_limit(threads)
        slots.closing = False
    app.config["MAX_STREAMS"] = slots.limit


def close(app: Flask, timeout: float = 5.0) -> bool:
    """Before the server stops: the open streams end, so that no thread writes to a closed
    server (browsers reconnect to the next one)."""
    slots: Slots = app.extensions[SLOTS]
    return slots.close(timeout)


class Shared(Generic[T]):
    """A value read from the database for every stream of the process: again when it is
    older than `max_age` seconds, or at once after a wake-up in this process. One reader at a
    time; the others wait for its value rather than read the same rows again."""

    def __init__(self, read: Callable[[], T], max_age: float) -> None:
        self._read = read
        self.max_age = max_age
        self._lock = threading.Lock()
        self._value: T | None = None
        self._at = -math.inf
        self._wait = max_age
        # Subscribed while the app holds this value: a wake-up marks the value stale.
        subscription = live.subscribed()
        self._woken = subscription.__enter__()
        weakref.finalize(self, subscription.__exit__, None, None, None)

    def get(self) -> T:
        with self._lock:
            started = time.monotonic()
            if self._value is None or self._woken.is_set() or started >= self._at + self._wait:
                self._woken.clear()
                self._value = self._read()
                # As of when the read began: a change committed during it is read next time.
                self._at = started
                # A read slower than the age it may reach (a busy console) would follow the
                # last at once, and reading would take the whole process: the next waits at
                # least twice as long as this one took, as from its end.
                took = time.monotonic() - started
                self._wait = max(self.max_age, 3 * took)
            return self._value


class Refreshed(Generic[T]):
    """A slow read (one that scans the leads) kept fresh by a thread of its own, at most every
    `every` seconds and only while someone asks for it: who asks gets the last value at once
    (None before the first read ends), never waits for the scan."""

    def __init__(self, read: Callable[[], T], every: float, wait_first: bool = False) -> None:
        self._read = read
        self.every = every
        # The first asker reads at once (the others wait for its value) rather than get None.
        self.wait_first = wait_first
        self._lock = threading.Lock()
        self._value: T | None = None
        self._at = -math.inf
        self._reading = False
        # Moved on by `forget`: a read begun before it is not kept.
        self._generation = 0

    def get(self) -> T | None:
        with self._lock:
            if self._value is None and self.wait_first:
                self._value, self._at = self._read(), time.monotonic()
                return self._value
            if not self._reading and time.monotonic() - self._at >= self.every:
                self._reading = True
                threading.Thread(
                    target=self._refresh, args=(self._generation,), name="refresh", daemon=True
                ).start()
            return self._value

    def forget(self) -> None:
        """What was read is out of date (this process changed it): the next asker reads at
        once when `wait_first`, else starts a new read."""
        with self._lock:
            self._value, self._at, self._generation = None, -math.inf, self._generation + 1

    def _refresh(self, generation: int) -> None:
        value = self._value
        try:
            value = self._read()
        except Exception:  # the database went away for a moment: the next ask tries again
            log.exception("a slow read for a live page failed")
        with self._lock:
            self._reading = False
            if generation == self._generation:
                self._value, self._at = value, time.monotonic()


_registry_lock = threading.Lock()


def shared(app: Flask, key: str, make: Callable[[], S]) -> S:
    """The app's one `Shared` (or `Refreshed`) under `key`, made on first use."""
    with _registry_lock:
        found = app.extensions.get(key)
        if found is None:
            found = app.extensions[key] = make()
        return found  # type: ignore[no-any-return]


def kept_fresh(key: str, read: Callable[[], T], every: float) -> T:
    """A slow read every request of the process shares (the current app's one `Refreshed`
    under `key`): read again in the background once `every` seconds old; the first asker
    waits for the first read."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    value = shared(app, key, lambda: Refreshed(read, every, wait_first=True)).get()
    assert value is not None  # read at once by the first asker
    return value


def forget(app: Flask, prefix: str) -> None:
    """Every `Refreshed` of the app whose key starts with `prefix` reads again when next asked."""
    with _registry_lock:
        found = [value for key, value in app.extensions.items() if key.startswith(prefix)]
    for value in found:
        if isinstance(value, Refreshed):
            value.forget()


def message(event: str, data: Any, retry_ms: int | None = None) -> str:
    """One server-sent event; JSON on a single data line (json.dumps escapes new lines)."""
    head = f"retry: {retry_ms}\n" if retry_ms is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def stream(event: str, look: Callable[[], dict[str, Any]], interval: float) -> Response:
    """A response that sends `look()` as `event` at once, then again whenever what it returns
    changes (looked at every `interval` seconds, and at once on a wake-up in this process)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    seconds = float(app.config["STREAM_SECONDS"])
    slots: Slots = app.extensions[SLOTS]

    def events() -> Iterator[str]:
        if not slots.enter():
            yield message("busy", {"retry_s": BUSY_RETRY_MS // 1000}, BUSY_RETRY_MS)
            return
        try:
            yield from _changes(event, look, interval, seconds, slots)
        finally:
            slots.leave()

    return Response(
        events(),
        mimetype="text/event-stream",
        # A buffering proxy (nginx) would hold the events back.
        headers={"X-Accel-Buffering": "no"},
    )


def _changes(
    event: str, look: Callable[[], dict[str, Any]], interval: float, seconds: float, slots: Slots
) -> Iterator[str]:
    ends = time.monotonic() + seconds
    last: str | None = None
    sent = time.monotonic()
    first = True
    with live.subscribed() as woken:
        while True:
            data = look()
            key = json.dumps(
                {k: v for k, v in data.items() if k not in VOLATILE}, sort_keys=True, default=str
            )
            if key != last:
                yield message(event, data, RETRY_MS if first else None)
                first, last, sent = False, key, time.monotonic()
            elif time.monotonic() - sent >= KEEPALIVE_S:
                yield ": still here\n\n"
                sent = time.monotonic()
            if time.monotonic() >= ends or slots.closing:
                return
            if woken.wait(interval):
                woken.clear()
