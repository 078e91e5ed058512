"""CSV lead import: streams a file of any size into a campaign's list.

Rows are validated, deduplicated (within the file and against the campaign) and scrubbed
against the do-not-call lists in force. Leads are written in short transactions (a long one
would stall every other writer of a SQLite database); the hopper dials no lead of an import
that has not completed, and a failed import deletes its leads, so the database is left as it
was and its ImportRun says why.
"""

from __future__ import annotations

import codecs
import concurrent.futures
import csv
import datetime as dt
import itertools
import json
import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.orm import Session

from campaigns import dnc
from campaigns.import_rows import (
    MAX_LINE,
    PHONE,
    SOURCE_ROW,
    UNBOUND_DEFAULTS,
    ImportPlan,
    LineBatch,
    Records,
    Validated,
    bound_columns,
    sqlite_moment,
    start_worker,
    validate_batch,
)
from campaigns.leads import (
    ImportFileError,
    RowError,
    detect_encoding,
    map_columns,
    neutralise,
    sniff_delimiter,
)
from campaigns.models import Campaign, ImportRowError, ImportRun, Lead, LeadList, utcnow

SAMPLE_BYTES = 64 * 1024
CHUNK_ROWS = 20_000
BATCH_ROWS = 2000
READ_BYTES = 2**20
PARALLEL_BYTES = 4 * 2**20
MAX_WORKERS = 2
JSON_ERRORS = 100
# The page cache of the connection that writes an import: the campaign's unique index on phone
# numbers takes random inserts, and with SQLite's default 2 MB cache a million-row import
# rewrote its pages over and over (1.7 GB written for a 73 MB file, and half the time).
IMPORT_CACHE_KIB = 64 * 1024
# Checkpoints copy the pages a transaction changed from the WAL into the database file; spaced
# out, a page the import changes in many chunks (the unique index again) is copied once.
IMPORT_CHECKPOINT_PAGES = 25_000


@dataclass
class ImportSummary:
    import_id: int
    rows: int = 0
    imported: int = 0
    duplicates: int = 0
    invalid: int = 0
    dnc: int = 0
    errors: list[RowError] = field(default_factory=list)

    def as_json(self) -> str:
        shown = self.errors[:JSON_ERRORS]
        body: dict[str, Any] = {
            "import_id": self.import_id,
            "rows": self.rows,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "invalid": self.invalid,
            "dnc": self.dnc,
            "errors": [e._asdict() for e in shown],
        }
        if self.invalid > len(shown):
            body["more_errors"] = self.invalid - len(shown)
        return json.dumps(body)


def _bounded_lines(raw: IO[bytes], encoding: str) -> Iterator[list[str]]:
    """The file's lines (each ending in its newline), a block at a time: a bad byte is reported
    with its line number and an endless line is never read whole. Lines split at b"\n" only,
    which never sits inside a UTF-8 or cp1252 character."""
    lines_before = 0
    carry = b""
    while True:
        read = raw.read(READ_BYTES)
        block, carry = carry + read, b""
        if read:
            cut = block.rfind(b"\n") + 1
            if len(block) - cut <= MAX_LINE:
                block, carry = block[:cut], block[cut:]
            if not block:
                continue
        elif not block:
            return
        if len(block) > MAX_LINE and max(map(len, block.split(b"\n"))) > MAX_LINE:
            long_line = next(i for i, line in enumerate(block.split(b"\n")) if len(line) > MAX_LINE)
            raise ImportFileError(
                f"line {lines_before + long_line + 1} is longer than {MAX_LINE} characters: "
                "not a lead list"
            )
        try:
            text = block.decode(encoding)
        except UnicodeDecodeError as error:
            line = lines_before + block.count(b"\n", 0, error.start) + 1
            raise ImportFileError(
                f"line {line}: bytes that are not {encoding} ({error.reason}); "
                "save the file as UTF-8 and import it again"
            ) from None
        lines = text.split("\n")
        last = lines.pop()
        lines_before += len(lines)
        yield [line + "\n" for line in lines]
        if last:
            yield [last]


def _open_lines(path: Path) -> tuple[IO[bytes], Iterator[str], str]:
    """The open file, its lines and its delimiter."""
    raw = path.open("rb")
    sample = raw.read(SAMPLE_BYTES)
    if not sample.strip(b" \t\r\n\xef\xbb\xbf"):
        raw.close()
        raise ImportFileError(f"{path.name} is empty")
    if b"\x00" in sample:
        raw.close()
        raise ImportFileError(f"{path.name} is not a text file (it contains NUL bytes)")
    encoding = detect_encoding(sample)
    sample_text = codecs.decode(sample[:8192], encoding, errors="replace")
    delimiter = sniff_delimiter(sample_text.lstrip("\ufeff").splitlines()[:20] or [""])
    raw.seek(0)
    csv.field_size_limit(MAX_LINE)
    return raw, itertools.chain.from_iterable(_bounded_lines(raw, encoding)), delimiter


def import_leads(
    engine: Engine,
    path: Path,
    campaign_name: str,
    *,
    list_name: str | None = None,
    region: str | None = None,
    mapping: dict[str, str] | None = None,
) -> ImportSummary:
    """Imports a CSV file; raises ImportFileError (naming the problem) when the file as a whole
    cannot be imported, after undoing everything it stored."""
    with engine.begin() as connection:
        campaign_id = connection.scalar(select(Campaign.id).where(Campaign.name == campaign_name))
        if campaign_id is None:
            raise ImportFileError(
                f"no campaign named {campaign_name!r}: create it first (dialer campaign create)"
            )
        list_name = list_name or path.stem
        lead_list = connection.execute(
            select(LeadList.id, LeadList.default_region).where(
                LeadList.campaign_id == campaign_id, LeadList.name == list_name
            )
        ).first()
        if lead_list is None:
            list_id = connection.scalar(
                insert(LeadList)
                .values(campaign_id=campaign_id, name=list_name, default_region=region or "US")
                .returning(LeadList.id)
            )
            list_region = region or "US"
        else:
            list_id, list_region = lead_list
        import_id = connection.scalar(
            insert(ImportRun)
            .values(campaign_id=campaign_id, list_id=list_id, filename=path.name[:255])
            .returning(ImportRun.id)
        )
    summary = ImportSummary(import_id=import_id)
    try:
        _stream_rows(engine, path, summary, campaign_id, list_id, region or list_region, mapping)
    except Exception as error:
        _undo(engine, import_id, error)
        if isinstance(error, ImportFileError | csv.Error):
            raise ImportFileError(str(error)) from None
        raise
    return summary


def _record_batches(lines: Iterator[str], delimiter: str) -> Iterator[LineBatch | Records]:
    """The records after the header, a batch at a time. A batch of lines with no quote
    character is sent as it is (a line is then a record, and splitting it costs the validating
    process, not this one); otherwise it is split here, where a quoted field may run on into
    the lines that follow. Rows are numbered by record, the header being row 1."""
    row_number = 2
    while batch := list(itertools.islice(lines, BATCH_ROWS)):
        if '"' not in "".join(batch):
            yield LineBatch(row_number, batch)
            row_number += len(batch)
            continue
        reader = csv.reader(itertools.chain(batch, lines), delimiter=delimiter)
        records: Records = []
        while reader.line_num < len(batch):
            records.append((row_number, next(reader)))
            row_number += 1
        yield records


def _validated(
    batches: Iterator[LineBatch | Records], plan: ImportPlan, workers: int
) -> Iterator[Validated]:
    """Validation runs in worker processes for large files (it is most of the CPU work) while
    this one reads, deduplicates and writes. Results come back in file order, and only a few
    batches are in flight, so memory stays flat whatever the size of the file."""
    if not workers:
        start_worker(plan)
        yield from map(validate_batch, batches)
        return
    with concurrent.futures.ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=start_worker,
        initargs=(plan,),
    ) as pool:
        pending: deque[concurrent.futures.Future[Validated]] = deque()
        for batch in batches:
            pending.append(pool.submit(validate_batch, batch))
            if len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _insert_statement(
    sqlite: bool, ids: tuple[int, int, int], now: dt.datetime, bound: tuple[str, ...]
) -> str:
    """INSERT of one import's leads, the values its rows share written in: ours (ids from the
    database, a timestamp we formatted, the defaults of columns the file has no field for),
    never the file's."""
    campaign_id, list_id, import_id = (int(i) for i in ids)
    created = sqlite_moment(now) if sqlite else now.isoformat()
    shared = {
        "campaign_id": str(campaign_id),
        "list_id": str(list_id),
        "import_id": str(import_id),
        "status": "'new'",
        "attempts": "0",
        "created_at": f"'{created}'",
    }
    shared.update(
        (name, default) for name, default in UNBOUND_DEFAULTS.items() if name not in bound
    )
    mark = "?" if sqlite else "%s"
    columns = [*shared, *bound]
    values = [*shared.values(), *([mark] * len(bound))]
    return f"INSERT INTO leads ({', '.join(columns)}) VALUES ({', '.join(values)})"


def _stream_rows(
    engine: Engine,
    path: Path,
    summary: ImportSummary,
    campaign_id: int,
    list_id: int,
    region: str,
    mapping: dict[str, str] | None,
) -> None:
    now = utcnow()
    with engine.connect() as connection:
        known = {
            int(n[1:])
            for n in connection.scalars(
                select(Lead.phone_e164).where(Lead.campaign_id == campaign_id)
            )
        }
    with Session(engine) as session:
        blocked = {int(n[1:]) for n in dnc.blocked_numbers(session, campaign_id, now)}
    sqlite = engine.dialect.name == "sqlite"

    raw, lines, delimiter = _open_lines(path)
    with raw:
        header_reader = csv.reader(lines, delimiter=delimiter)
        header = next(header_reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise ImportFileError(f"{path.name} has no header row")
        header[0] = header[0].lstrip("\ufeff")
        # A bad header fails here, before any process starts.
        bound = bound_columns(map_columns(header, mapping))
        insert_leads = _insert_statement(
            sqlite, (campaign_id, list_id, summary.import_id), now, bound
        )
        plan = ImportPlan(
            header,
            delimiter,
            mapping,
            region,
            sqlite,
            now,
        )
        workers = 0
        if path.stat().st_size > PARALLEL_BYTES:
            workers = min(MAX_WORKERS, os.cpu_count() or 1)
        first_row: dict[int, int] = {}
        leads: list[tuple[object, ...]] = []
        problems: list[RowError] = []
        writer = _ChunkWriter(engine, insert_leads, summary.import_id)
        try:
            batches = _record_batches(lines, delimiter)
            for batch in _validated(batches, plan, workers):
                for result in batch:
                    summary.rows += 1
                    if isinstance(result, RowError):
                        summary.invalid += 1
                        if len(summary.errors) < JSON_ERRORS:
                            summary.errors.append(result)
                        problems.append(result)
                        continue
                    key, values = result
                    if key in first_row or key in known:
                        summary.duplicates += 1
                        where = f"row {first_row[key]}" if key in first_row else "the campaign"
                        problems.append(
                            RowError(
                                values[SOURCE_ROW], "phone", values[PHONE], f"duplicate of {where}"
                            )
                        )
                    elif key in blocked:
                        summary.dnc += 1
                        problems.append(
                            RowError(
                                values[SOURCE_ROW], "phone", values[PHONE], "on a do-not-call list"
                            )
                        )
                    else:
                        first_row[key] = values[SOURCE_ROW]
                        leads.append(values)
                if len(leads) + len(problems) >= CHUNK_ROWS:
                    writer.submit(summary, leads, problems)
            writer.submit(summary, leads, problems)
        finally:
            writer.close()
    if summary.rows == 0:
        raise ImportFileError(f"{path.name} has a header but no rows")
    with engine.begin() as connection:
        connection.execute(
            update(ImportRun)
            .where(ImportRun.id == summary.import_id)
            .values(
                status="completed",
                rows=summary.rows,
                imported=summary.imported,
                duplicates=summary.duplicates,
                invalid=summary.invalid,
                dnc=summary.dnc,
                finished_at=utcnow(),
            )
        )


class _ChunkWriter:
    """Writes chunks on a thread of its own: sqlite3 and psycopg release the GIL while the
    database works, so reading and validating go on meanwhile. One chunk in flight at most."""

    def __init__(self, engine: Engine, insert_leads: str, import_id: int) -> None:
        self.engine = engine
        self.insert_leads = insert_leads
        self.import_id = import_id
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="import-writer")
        self.pending: concurrent.futures.Future[None] | None = None
        self.sqlite: _SqliteWriter | None = None

    def submit(
        self, summary: ImportSummary, leads: list[tuple[object, ...]], problems: list[RowError]
    ) -> None:
        self.wait()
        progress = (summary.rows, summary.imported + len(leads))
        self.pending = self.pool.submit(self._write, list(leads), list(problems), progress)
        summary.imported += len(leads)
        leads.clear()
        problems.clear()

    def wait(self) -> None:
        if self.pending is not None:
            self.pending.result()  # re-raises the writer's error here
            self.pending = None

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self.pool.shutdown(wait=True)
            if self.sqlite is not None:
                self.sqlite.close()

    def _write(
        self, leads: list[tuple[object, ...]], problems: list[RowError], progress: tuple[int, int]
    ) -> None:
        if self.engine.dialect.name == "sqlite":
            if self.sqlite is None:
                self.sqlite = _SqliteWriter(self.engine)
            self.sqlite.write(self.insert_leads, self.import_id, leads, problems, progress)
            return
        with self.engine.begin() as connection:
            if leads:
                connection.exec_driver_sql(self.insert_leads, leads)
            if problems:
                connection.execute(
                    insert(ImportRowError),
                    [
                        {
                            "import_id": self.import_id,
                            "row": p.row,
                            "field": p.field,
                            "value": p.value[:1000],
                            "reason": p.reason,
                        }
                        for p in problems
                    ],
                )
            rows, imported = progress
            connection.execute(
                update(ImportRun)
                .where(ImportRun.id == self.import_id)
                .values(rows=rows, imported=imported)
            )


class _SqliteWriter:
    """One pooled connection, held for the whole import, writing each chunk (leads, row errors,
    progress) in one transaction through sqlite3 itself."""

    def __init__(self, engine: Engine) -> None:
        self.raw = engine.raw_connection()
        self.connection = self.raw.driver_connection
        self.cache_size = self.connection.execute("PRAGMA cache_size").fetchone()[0]
        self.checkpoint = self.connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        # SQLite checks three foreign keys per row, which costs more than the row itself;
        # this import created the campaign, list and run rows they point to, so the check is
        # switched off on this one connection (it must be done outside a transaction).
        self.connection.execute("PRAGMA foreign_keys=OFF")
        self.connection.execute(f"PRAGMA cache_size=-{IMPORT_CACHE_KIB}")
        self.connection.execute(f"PRAGMA wal_autocheckpoint={IMPORT_CHECKPOINT_PAGES}")

    def write(
        self,
        insert_leads: str,
        import_id: int,
        leads: list[tuple[object, ...]],
        problems: list[RowError],
        progress: tuple[int, int],
    ) -> None:
        sqlite = self.connection
        sqlite.execute("BEGIN")
        try:
            sqlite.executemany(insert_leads, leads)
            sqlite.executemany(
                "INSERT INTO import_row_errors (import_id, row, field, value, reason) "
                "VALUES (?, ?, ?, ?, ?)",
                [(import_id, p.row, p.field, p.value[:1000], p.reason) for p in problems],
            )
            sqlite.execute(
                "UPDATE import_runs SET rows = ?, imported = ? WHERE id = ?",
                (*progress, import_id),
            )
            sqlite.execute("COMMIT")
        except BaseException:
            sqlite.execute("ROLLBACK")
            raise

    def close(self) -> None:
        try:
            self.connection.execute("PRAGMA foreign_keys=ON")
            self.connection.execute(f"PRAGMA cache_size={self.cache_size}")
            self.connection.execute(f"PRAGMA wal_autocheckpoint={self.checkpoint}")
        finally:
            self.raw.close()


def _undo(engine: Engine, import_id: int, error: Exception) -> None:
    with engine.begin() as connection:
        connection.execute(delete(Lead).where(Lead.import_id == import_id))
        connection.execute(
            update(ImportRun)
            .where(ImportRun.id == import_id)
            .values(status="failed", imported=0, error=str(error)[:2000], finished_at=utcnow())
        )


def write_error_report(engine: Engine, import_id: int, out: IO[str]) -> int:
    """The import's row errors as CSV, every cell safe to open in a spreadsheet."""
    writer = csv.writer(out)
    writer.writerow(["row", "field", "value", "reason"])
    count = 0
    with engine.connect() as connection:
        result = connection.execute(
            select(
                ImportRowError.row,
                ImportRowError.field,
                ImportRowError.value,
                ImportRowError.reason,
            )
            .where(ImportRowError.import_id == import_id)
            .order_by(ImportRowError.row)
            .execution_options(yield_per=5000)
        )
        for row, field_name, value, reason in result:
            writer.writerow([row, neutralise(field_name), neutralise(value), neutralise(reason)])
            count += 1
    return count
