"""Serving the console: the app as `dialer web` and `dialer serve` build it, and waitress on a
thread of its own for a process that runs the console beside other work (the scheduler, a
node)."""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from typing import Any

import waitress
from flask import Flask

from web import create_app, export_process, streams
from web import db as web_db
from web.config import COOKIE_SECURE_ENV
from web.imports import RUNNER
from web.users import ensure_admin


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def prepare(
    host: str, config: dict[str, Any] | None = None
) -> tuple[Flask, tuple[str, str] | None]:
    """The console to serve on `host`, and the first administrator's (name, one-time password)
    when this start created it (print it once). The schema must be migrated already."""
    settings = dict(config or {})
    if is_loopback(host) and COOKIE_SECURE_ENV not in os.environ:
        # Plain HTTP on this machine only: browsers drop a Secure cookie sent over it.
        settings.setdefault("SESSION_COOKIE_SECURE", False)
    app = create_app(settings)
    return app, ensure_admin(app)


class ConsoleServer:
    """The console under waitress on a thread of its own."""

    def __init__(self, app: Flask, host: str = "127.0.0.1", port: int = 8080, threads: int = 64):
        self.app = app
        # Each open agent desktop or dashboard holds a thread: they get at most three in four.
        streams.serve_with(app, threads)
        self.server = waitress.create_server(
            app, host=host, port=port, threads=threads, ident="dialer"
        )
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, name="console", daemon=True)

    def _serve(self) -> None:
        try:
            self.server.run()
        except OSError:
            # Closing the server's sockets under its loop ends the loop this way.
            if not self.stopping:
                raise

    @property
    def url(self) -> str:
        host = self.server.effective_host  # type: ignore[union-attr]
        return f"http://{host}:{self.server.effective_port}"  # type: ignore[union-attr]

    def start(self) -> ConsoleServer:
        export_process.warm(self.app)
        self.thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stops serving, lets running imports finish, closes the database pool."""
        # Open streams end, and requests still running finish while the server can take
        # their last bytes, before it closes (a thread writing to a closed server fails).
        self.stopping = True
        streams.close(self.app)
        dispatcher = self.server.task_dispatcher
        deadline = time.monotonic() + 2.0
        while (dispatcher.active_count or dispatcher.queue) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.server.close()
        self.server.task_dispatcher.shutdown()
        self.thread.join(timeout)
        self.app.extensions[RUNNER].shutdown()
        export_process.shutdown(self.app)
        web_db.dispose(self.app)
