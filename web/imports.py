"""Lead files uploaded through the console: kept in an upload folder until mapped, then
imported in the background by the same code as `dialer leads import`.

Imports run on a small thread pool of their own, so a request that starts one returns at once
and other users' pages are served meanwhile; a large file's rows are validated in worker
processes (campaigns.imports). Progress is read from the import's ImportRun row, so any
console behind a load balancer can show it."""

from __future__ import annotations

import concurrent.futures
import json
import logging
import multiprocessing
import re
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from flask import Flask, current_app
from sqlalchemy import Engine
from werkzeug.utils import secure_filename

from campaigns.db import make_engine
from campaigns.imports import PARALLEL_BYTES, ImportFileError, count_lines, import_leads
from web import db, lead_counts

log = logging.getLogger(__name__)
RUNNER = "dialer.imports"
TOKEN = re.compile(r"^[0-9a-f]{32}$")
# An upload nobody mapped is removed after a day.
UPLOAD_LIFETIME_S = 24 * 3600
# How long a request waits for the import's ImportRun row before it gives up.
START_TIMEOUT_S = 60.0
DESCRIPTION = "upload.json"


@dataclass(frozen=True)
class Upload:
    """A file waiting for its column mapping."""

    token: str
    campaign_id: int
    filename: str
    user_id: int
    size: int
    lines: int


class UploadFolder:
    """One folder per upload, named by a random token: the file under its own (sanitised) name,
    which the import records and its messages use, and a description of the upload."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _place(self, token: str) -> Path:
        if not TOKEN.match(token):
            raise KeyError(token)
        return self.folder / token

    def path(self, token: str) -> Path:
        upload = self.find(token)
        if upload is None:
            raise KeyError(token)
        return self._place(token) / upload.filename

    def save(self, stream: object, upload: dict[str, object]) -> Upload:
        """Stores an uploaded file (a werkzeug FileStorage) and its description."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.sweep()
        token = secrets.token_hex(16)
        place = self._place(token)
        place.mkdir(mode=0o700)
        name = secure_filename(str(upload.pop("filename", ""))) or "leads.csv"
        path = place / name[-200:]
        stream.save(path)  # type: ignore[attr-defined]
        path.chmod(0o600)
        described = Upload(
            token=token,
            filename=path.name,
            size=path.stat().st_size,
            lines=count_lines(path),
            **upload,  # type: ignore[arg-type]
        )
        (place / DESCRIPTION).write_text(json.dumps(asdict(described)))
        return described

    def find(self, token: str) -> Upload | None:
        try:
            description = self._place(token) / DESCRIPTION
        except KeyError:
            return None
        if not description.exists():
            return None
        return Upload(**json.loads(description.read_text()))

    def remove(self, token: str) -> None:
        shutil.rmtree(self._place(token), ignore_errors=True)

    def sweep(self) -> None:
        cutoff = time.time() - UPLOAD_LIFETIME_S
        for place in self.folder.iterdir():
            if TOKEN.match(place.name) and place.stat().st_mtime < cutoff:
                self.remove(place.name)


class BackgroundImports:
    """Runs `import_leads` on threads of its own and hands back the import's id as soon as
    its ImportRun row exists."""

    def __init__(
        self,
        engine: Engine,
        uploads: UploadFolder,
        threads: int,
        ended: Callable[[], None] = lambda: None,
    ) -> None:
        self.engine = engine
        self.uploads = uploads
        # Told when an import ends, completed or not (the pages' lead counts are out of date).
        self.ended = ended
        self.pool = concurrent.futures.ThreadPoolExecutor(
            threads, thread_name_prefix="console-import"
        )

    def start(
        self,
        upload: Upload,
        campaign_name: str,
        list_name: str,
        region: str,
        mapping: dict[str, str],
    ) -> int:
        """The import's id; raises ImportFileError (or what else stopped it) when it ended
        before its ImportRun row was written."""
        started: concurrent.futures.Future[int] = concurrent.futures.Future()
        path = self.uploads.path(upload.token)

        def run() -> None:
            try:
                if path.stat().st_size > PROCESS_BYTES:
                    _import_in_a_process(
                        self.engine,
                        path,
                        campaign_name,
                        list_name,
                        region,
                        mapping,
                        upload.lines,
                        started.set_result,
                    )
                else:
                    import_leads(
                        self.engine,
                        path,
                        campaign_name,
                        list_name=list_name,
                        region=region,
                        mapping=mapping,
                        started=started.set_result,
                        expected_rows=upload.lines,
                    )
            except Exception as error:
                if not started.done():
                    started.set_exception(error)
                else:
                    # The import recorded why in its ImportRun row; the log keeps the trace.
                    log.exception("lead import of %s failed", upload.filename)
            finally:
                self.uploads.remove(upload.token)
                self.ended()

        self.pool.submit(run)
        return started.result(timeout=START_TIMEOUT_S)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True)


# A file larger than this is imported by a process of its own: reading, deduplicating and
# writing a million rows in the console's interpreter made every page wait its turn for it
# (measured by `dialer bench console`: p95 of 1-3 s during the import instead of 0.1-0.5 s).
PROCESS_BYTES = PARALLEL_BYTES


# This process (the import's writer) is not at a lower CPU priority, its validating processes
# are (campaigns.imports): the writer holds SQLite's write lock for each chunk of rows, and a
# niced writer kept it past the 10 s the nodes wait for it on a busy machine.
class _ImportFailed(Exception):
    """An import that stopped before its ImportRun row existed, as its process told."""


def _import_in_a_process(
    engine: Engine,
    path: Path,
    campaign_name: str,
    list_name: str,
    region: str,
    mapping: dict[str, str],
    expected_rows: int,
    begun: Callable[[int], None],
) -> None:
    """Runs import_leads in a new process and waits for it; `begun` is called here with the
    import's id as soon as the process has written its ImportRun row."""
    context = multiprocessing.get_context("spawn")
    receiving, sending = context.Pipe(duplex=False)
    url = engine.url.render_as_string(hide_password=False)
    process = context.Process(
        target=_import_process,
        args=(url, str(path), campaign_name, list_name, region, mapping, expected_rows, sending),
        name="console-import",
    )
    process.start()
    sending.close()
    try:
        while True:
            try:
                kind, value = receiving.recv()
            except EOFError:
                process.join()
                raise _ImportFailed(
                    f"the import process ended with code {process.exitcode} before its end"
                ) from None
            if kind == "started":
                begun(int(value))
            elif kind == "file_error":
                raise ImportFileError(str(value))
            elif kind == "failed":
                raise _ImportFailed(str(value))
            elif kind == "done":
                return
    finally:
        receiving.close()
        process.join()


def _import_process(
    url: str,
    path: str,
    campaign_name: str,
    list_name: str,
    region: str,
    mapping: dict[str, str],
    expected_rows: int,
    sending: Any,
) -> None:
    """Process entry: the import; what became of it goes back through `sending`."""
    engine = make_engine(url)
    try:
        import_leads(
            engine,
            Path(path),
            campaign_name,
            list_name=list_name,
            region=region,
            mapping=mapping,
            started=lambda import_id: sending.send(("started", import_id)),
            expected_rows=expected_rows,
        )
        sending.send(("done", None))
    except ImportFileError as error:
        sending.send(("file_error", str(error)))
    except Exception as error:
        log.exception("lead import of %s failed", path)
        sending.send(("failed", f"{type(error).__name__}: {error}"))
    finally:
        sending.close()
        engine.dispose()


def init_app(app: Flask) -> None:
    uploads = UploadFolder(Path(app.config["UPLOAD_FOLDER"]))
    app.extensions[RUNNER] = BackgroundImports(
        app.extensions[db.ENGINE],
        uploads,
        int(app.config["IMPORT_THREADS"]),
        ended=lambda: lead_counts.recount(app=app),
    )


def runner() -> BackgroundImports:
    return current_app.extensions[RUNNER]  # type: ignore[no-any-return]
