"""Large exports (the call detail of a period, the whole do-not-call list) written by processes
of their own (a large call export by two at once, a part each), at the console's CPU priority:
at nice 5 a busy machine starved them (a day of calls, 0.4 s of work, took 2.2-2.6 s beside
three busy processes of the console's session, 1.05-1.23 s at the same priority), and pages do
not wait for them either way.

Written in the console's interpreter, a day of calls (38,000 rows, about a second of work)
held every page of every user behind it: `dialer bench console` found the exports taking a
third of the console's time. The request's thread waits for the file without holding the
interpreter, then sends it. A database only this process can open (SQLite in memory) is
exported in the process, as before.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, send_file
from sqlalchemy import Connection, Engine

from campaigns import db as campaigns_db
from campaigns.exports import Cell, capped_rows, write_csv, write_xlsx
from web import db

KEY = "dialer.export_process"
# Two managers' exports at a time; a third waits for one of them.
PROCESSES = 2
MIMETYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

# (connection, *args) -> the export's rows: a module-level function, so that the export
# process can be told which one to run.
Rows = Callable[..., Iterable[Sequence[Cell]]]
# (connection, *args) -> the args of consecutive parts of the same export, in its order (at
# most PROCESSES of them): a large CSV is written by the export processes together.
Parts = Callable[..., Sequence[tuple[Any, ...]]]


class ExportProcesses:
    """The app's export processes, started by `warm` or at the first export."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def write(
        self,
        rows: Rows,
        parts: Sequence[tuple[Any, ...]],
        header: Sequence[str],
        kind: str,
        paths: Sequence[Path],
        sheet: str,
    ) -> None:
        """Writes `rows(connection, *part)` for each of `parts` to its path, all at once
        (the export processes one each), the header in the first only."""
        for attempt in (1, 2):
            try:
                executor = self._executor()
                jobs = [
                    executor.submit(
                        _write, rows, part, () if index else tuple(header), kind, str(path), sheet
                    )
                    for index, (part, path) in enumerate(zip(parts, paths, strict=True))
                ]
                for job in jobs:
                    job.result()
                return
            except BrokenProcessPool:
                # An export process died (killed, out of memory): once more with new ones.
                with self._lock:
                    self._pool = None
                if attempt == 2:
                    raise

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    PROCESSES,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_begin,
                    initargs=(self.url,),
                )
            return self._pool

    def warm(self) -> None:
        """Starts the processes now (a spawned interpreter takes a second to import the
        console), so that the first export does not wait for them."""
        for _ in range(PROCESSES):
            self._executor().submit(_ready)

    def shutdown(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def init_app(app: Flask) -> None:
    url = app.extensions[db.ENGINE].url
    in_memory = url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")
    app.extensions[KEY] = (
        None if in_memory else ExportProcesses(url.render_as_string(hide_password=False))
    )


def warm(app: Flask) -> None:
    processes: ExportProcesses | None = app.extensions.get(KEY)
    if processes is not None:
        processes.warm()


def shutdown(app: Flask) -> None:
    processes: ExportProcesses | None = app.extensions.get(KEY)
    if processes is not None:
        processes.shutdown()


def send(
    rows: Rows,
    args: tuple[Any, ...],
    header: Sequence[str],
    name: str,
    kind: str = "csv",
    parts: Parts | None = None,
) -> Response:
    """The export of `rows(connection, *args)`, written by an export process, as a CSV or XLSX
    attachment named `name`. A CSV with `parts` is written by the export processes together,
    a part each, and sent as one file."""
    processes: ExportProcesses | None = current_app.extensions[KEY]
    if processes is None:
        with db.engine().connect() as connection:
            return send_written(rows(connection, *args), header, name, kind)
    pieces: Sequence[tuple[Any, ...]] = [args]
    if parts is not None and kind == "csv":
        with db.engine().connect() as connection:
            pieces = parts(connection, *args)
    paths = [_spool(kind) for _ in pieces]
    try:
        processes.write(rows, pieces, header, kind, paths, name[:31])
        with paths[0].open("ab") as whole:
            for path in paths[1:]:
                with path.open("rb") as part:
                    shutil.copyfileobj(part, whole)
        return _attachment(paths[0], name, kind)
    finally:
        for path in paths:
            path.unlink(missing_ok=True)


def send_written(
    cells: Iterable[Sequence[Cell]], header: Sequence[str], name: str, kind: str = "csv"
) -> Response:
    """Rows a view has at hand already (a report's few lines), written here, as an attachment."""
    path = _spool(kind)
    try:
        _write_rows(cells, header, kind, path, name[:31])
        return _attachment(path, name, kind)
    finally:
        path.unlink(missing_ok=True)


def _spool(kind: str) -> Path:
    handle, spool = tempfile.mkstemp(prefix="dialer-export-", suffix=f".{kind}")
    os.close(handle)
    return Path(spool)


def _attachment(path: Path, name: str, kind: str) -> Response:
    # Open before the caller unlinks it (POSIX): the file is freed when the response closes.
    return send_file(
        path.open("rb"),
        mimetype=MIMETYPES[kind],
        as_attachment=True,
        download_name=f"{name}.{kind}",
    )


def _write_rows(
    cells: Iterable[Sequence[Cell]], header: Sequence[str], kind: str, path: Path, sheet: str
) -> None:
    if kind == "xlsx":
        write_xlsx(capped_rows(cells, len(header)), header, path, sheet=sheet)
        return
    with path.open("w", newline="", encoding="utf-8") as out:
        write_csv(cells, header, out)


# -- inside an export process

_engine: Engine | None = None


def _begin(url: str) -> None:
    global _engine
    _engine = campaigns_db.make_engine(url)


def _ready() -> None:
    """Nothing: the process is up."""


def _write(
    rows: Rows, args: tuple[Any, ...], header: tuple[str, ...], kind: str, path: str, sheet: str
) -> None:
    assert _engine is not None
    connection: Connection
    with _engine.connect() as connection:
        _write_rows(rows(connection, *args), header, kind, Path(path), sheet)
