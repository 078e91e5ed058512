"""CSV lead import: streams a file of any size into a campaign's list.

Rows are validated, deduplicated (within the file and against the campaign) and scrubbed
against the do-not-call lists in force. Leads are written in short transactions (a long one
would stall every other writer of a SQLite database); the hopper dials no lead of an import
that has not completed, and a failed import deletes its leads, so the database is left as it
was and its ImportRun says why.

On SQLite the validating processes keep their valid rows in staging files of their own (in a
temporary folder next to the database, removed whatever happens); the importing process sees
only phone numbers and row numbers, decides which rows are duplicates or on a do-not-call
list, and its writer copies each chunk's other rows from the staging files in one statement.
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
import tempfile
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.orm import Session

from campaigns import appointments, db, dnc
from campaigns.exports import write_csv
from campaigns.import_rows import (
    MAX_LINE,
    STAGING_TABLE,
    UNBOUND_DEFAULTS,
    ImportPlan,
    LineBatch,
    Records,
    Validated,
    bound_columns,
    sqlite_moment,
    start_worker,
    stop_worker,
    validate_batch,
)
from campaigns.leads import (
    HEADER_ALIASES,
    ImportFileError,
    RowError,
    detect_encoding,
    header_key,
    map_columns,
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
ERROR_REPORT_HEADER = ("row", "field", "value", "reason")
# import_row_errors.field: a custom field's name is the file's header, which may be longer.
ERROR_FIELD_CHARS = 80
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
    started: Callable[[int], None] | None = None,
    expected_rows: int | None = None,
) -> ImportSummary:
    """Imports a CSV file; raises ImportFileError (naming the problem) when the file as a whole
    cannot be imported, after undoing everything it stored. `started` is called with the
    import's id as soon as its ImportRun row is committed (the console shows its progress,
    against `expected_rows`)."""
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
            .values(
                campaign_id=campaign_id,
                list_id=list_id,
                filename=path.name[:255],
                expected_rows=expected_rows,
            )
            .returning(ImportRun.id)
        )
    summary = ImportSummary(import_id=import_id)
    try:
        # Inside: a caller's failure here (its own write, say) must not leave the run "running".
        if started is not None:
            started(import_id)
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
) -> Generator[Validated, None, None]:
    """Validation runs in worker processes for large files (it is most of the CPU work) while
    this one reads, deduplicates and writes. Results come back in file order, and only a few
    batches are in flight, so memory stays flat whatever the size of the file."""
    if not workers:
        start_worker(plan)
        try:
            yield from map(validate_batch, batches)
        finally:
            stop_worker()
        return
    with concurrent.futures.ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_validator,
        initargs=(plan,),
    ) as pool:
        pending: deque[concurrent.futures.Future[Validated]] = deque()
        for batch in batches:
            pending.append(pool.submit(validate_batch, batch))
            if len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# The validating processes run at the lowest priority: they hold no lock, and on a small
# machine the console's pages and the node's calls come before an import's speed. The writer
# keeps its priority: it holds SQLite's write lock for each chunk.
VALIDATOR_NICE = 19


def _start_validator(plan: ImportPlan) -> None:
    os.nice(VALIDATOR_NICE)
    start_worker(plan)


@dataclass(frozen=True)
class _LeadInsert:
    """The INSERT of one import's leads. The values its rows share are written in: ours (ids
    from the database, a timestamp we formatted, the defaults of columns the file has no field
    for), never the file's; the file's values are bound, or selected from staging tables."""

    columns: list[str]
    shared: list[str]
    bound: tuple[str, ...]
    mark: str

    @classmethod
    def build(
        cls, sqlite: bool, ids: tuple[int, int, int], now: dt.datetime, bound: tuple[str, ...]
    ) -> _LeadInsert:
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
        return cls([*shared, *bound], list(shared.values()), bound, "?" if sqlite else "%s")

    def values(self) -> str:
        values = [*self.shared, *([self.mark] * len(self.bound))]
        return f"INSERT INTO leads ({', '.join(self.columns)}) VALUES ({', '.join(values)})"

    def select(self, staging: list[str]) -> str:
        """Copies the rows of a range of row numbers from the attached staging schemas, but
        those the importing process set aside (duplicates, do-not-call), in file order: leads
        of equal priority are dialed in the order of their ids. (Phone-number order, the order
        of the campaign's unique index, measured no cheaper: a chunk changes nearly every page
        of that index either way.)"""
        bound = ", ".join(self.bound)
        ranges = " UNION ALL ".join(
            f"SELECT {bound} FROM {schema}.{STAGING_TABLE} WHERE source_row BETWEEN ? AND ?"
            for schema in staging
        )
        return (
            f"INSERT INTO leads ({', '.join(self.columns)}) "
            f"SELECT {', '.join([*self.shared, *self.bound])} FROM ({ranges}) "
            "WHERE source_row NOT IN (SELECT value FROM json_each(?)) ORDER BY source_row"
        )


@dataclass
class _Chunk:
    """What one transaction writes: valid rows (bound, or staged between rows `first` and
    `last` less those `set_aside`), row errors and the import's progress."""

    leads: list[tuple[object, ...]] = field(default_factory=list)
    first: int = 0
    last: int = 0
    set_aside: list[int] = field(default_factory=list)
    staging: set[str] = field(default_factory=set)
    imported: int = 0
    problems: list[RowError] = field(default_factory=list)
    progress: tuple[int, int] = (0, 0)


def _staging_folder(engine: Engine) -> str | None:
    # Next to the database: the disk its owner chose for it, with room for a copy of the rows.
    database = engine.url.database
    if database in (None, "", ":memory:") or database.startswith("file:"):
        return None
    return str(Path(database).resolve().parent)


def _stream_rows(
    engine: Engine,
    path: Path,
    summary: ImportSummary,
    campaign_id: int,
    list_id: int,
    region: str,
    mapping: dict[str, str] | None,
) -> None:
    if engine.dialect.name != "sqlite":
        _import_file(engine, path, summary, campaign_id, list_id, region, mapping, None)
        return
    near = _staging_folder(engine)
    with tempfile.TemporaryDirectory(prefix="dialer-import-", dir=near) as folder:
        _import_file(engine, path, summary, campaign_id, list_id, region, mapping, folder)


def _import_file(
    engine: Engine,
    path: Path,
    summary: ImportSummary,
    campaign_id: int,
    list_id: int,
    region: str,
    mapping: dict[str, str] | None,
    staging: str | None,
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
        lead_insert = _LeadInsert.build(
            sqlite, (campaign_id, list_id, summary.import_id), now, bound
        )
        plan = ImportPlan(header, delimiter, mapping, region, sqlite, now, staging)
        workers = 0
        if path.stat().st_size > PARALLEL_BYTES:
            workers = min(MAX_WORKERS, os.cpu_count() or 1)
        first_row: dict[int, int] = {}
        chunk = _Chunk(first=2)
        chunk_rows = 0
        writer = _ChunkWriter(engine, lead_insert, summary.import_id)
        batches = _validated(_record_batches(lines, delimiter), plan, workers)
        try:
            for batch in batches:
                if batch.staging is not None:
                    chunk.staging.add(batch.staging)
                rows = iter(batch.rows)
                for result in batch.results:
                    chunk_rows += 1
                    if isinstance(result, RowError):
                        summary.invalid += 1
                        if len(summary.errors) < JSON_ERRORS:
                            summary.errors.append(result)
                        chunk.problems.append(result)
                        continue
                    key, row = result
                    chunk.last = row
                    lead = next(rows, None)
                    if key in first_row or key in known:
                        summary.duplicates += 1
                        where = f"row {first_row[key]}" if key in first_row else "the campaign"
                        chunk.problems.append(
                            RowError(row, "phone", f"+{key}", f"duplicate of {where}")
                        )
                        chunk.set_aside.append(row)
                    elif key in blocked:
                        summary.dnc += 1
                        chunk.problems.append(
                            RowError(row, "phone", f"+{key}", "on a do-not-call list")
                        )
                        chunk.set_aside.append(row)
                    else:
                        first_row[key] = row
                        chunk.imported += 1
                        if lead is not None:
                            chunk.leads.append(lead)
                if chunk_rows >= CHUNK_ROWS:
                    chunk, chunk_rows = _submit(writer, summary, chunk, chunk_rows), 0
            _submit(writer, summary, chunk, chunk_rows)
        finally:
            # The worker processes stop (and close their staging files) before the folder goes.
            batches.close()
            writer.close()
    if summary.rows == 0:
        raise ImportFileError(f"{path.name} has a header but no rows")
    # The write lock first: this transaction reads before it writes.
    with db.writer(engine).begin() as connection:
        kind = connection.scalar(select(Campaign.kind).where(Campaign.id == campaign_id))
        if kind == "appointment":
            appointments.adopt_imported(connection, campaign_id, summary.import_id)
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


def _submit(writer: _ChunkWriter, summary: ImportSummary, chunk: _Chunk, rows: int) -> _Chunk:
    """Hands the chunk to the writer; returns the next, which starts after its last row."""
    summary.rows += rows
    summary.imported += chunk.imported
    chunk.progress = (summary.rows, summary.imported)
    writer.submit(chunk)
    return _Chunk(first=chunk.last + 1, last=chunk.last, staging=set(chunk.staging))


class _ChunkWriter:
    """Writes chunks on a thread of its own: sqlite3 and psycopg release the GIL while the
    database works, so reading and validating go on meanwhile. One chunk in flight at most."""

    def __init__(self, engine: Engine, lead_insert: _LeadInsert, import_id: int) -> None:
        self.engine = engine
        self.lead_insert = lead_insert
        self.import_id = import_id
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="import-writer")
        self.pending: concurrent.futures.Future[None] | None = None
        self.sqlite: _SqliteWriter | None = None

    def submit(self, chunk: _Chunk) -> None:
        self.wait()
        self.pending = self.pool.submit(self._write, chunk)

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

    def _write(self, chunk: _Chunk) -> None:
        if self.engine.dialect.name == "sqlite":
            if self.sqlite is None:
                self.sqlite = _SqliteWriter(self.engine)
            self.sqlite.write(self.lead_insert, self.import_id, chunk)
            return
        with self.engine.begin() as connection:
            if chunk.leads:
                connection.exec_driver_sql(self.lead_insert.values(), chunk.leads)
            if chunk.problems:
                connection.execute(
                    insert(ImportRowError),
                    [
                        {
                            "import_id": self.import_id,
                            "row": p.row,
                            "field": p.field[:ERROR_FIELD_CHARS],
                            "value": p.value[:1000],
                            "reason": p.reason,
                        }
                        for p in chunk.problems
                    ],
                )
            rows, imported = chunk.progress
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
        self.attached: dict[str, str] = {}

    def write(self, lead_insert: _LeadInsert, import_id: int, chunk: _Chunk) -> None:
        sqlite = self.connection
        for staging in sorted(chunk.staging - self.attached.keys()):
            schema = self.attached[staging] = f"staging{len(self.attached)}"
            sqlite.execute(f"ATTACH DATABASE ? AS {schema}", (staging,))
        sqlite.execute("BEGIN")
        try:
            if chunk.imported:
                schemas = [self.attached[staging] for staging in sorted(chunk.staging)]
                copied = sqlite.execute(
                    lead_insert.select(schemas),
                    [*((chunk.first, chunk.last) * len(schemas)), json.dumps(chunk.set_aside)],
                ).rowcount
                if copied != chunk.imported:
                    raise RuntimeError(
                        f"rows {chunk.first}-{chunk.last}: {copied} leads staged, "
                        f"{chunk.imported} expected"
                    )
            sqlite.executemany(
                "INSERT INTO import_row_errors (import_id, row, field, value, reason) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (import_id, p.row, p.field[:ERROR_FIELD_CHARS], p.value[:1000], p.reason)
                    for p in chunk.problems
                ],
            )
            sqlite.execute(
                "UPDATE import_runs SET rows = ?, imported = ? WHERE id = ?",
                (*chunk.progress, import_id),
            )
            sqlite.execute("COMMIT")
        except BaseException:
            sqlite.execute("ROLLBACK")
            raise

    def close(self) -> None:
        try:
            for schema in self.attached.values():
                self.connection.execute(f"DETACH DATABASE {schema}")
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
    """The import's row errors as CSV (out opened with newline=""), in row order, every cell
    neutralised for spreadsheets (campaigns.exports); returns the number of errors."""
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
        return write_csv(result, ERROR_REPORT_HEADER, out)


PREVIEW_ROWS = 10


@dataclass(frozen=True)
class FilePreview:
    """What the console's mapping step shows: the header, the first records, the columns the
    import would map to lead fields by their names, and how many lines follow the header."""

    header: list[str]
    rows: list[list[str]]
    delimiter: str
    suggested: dict[str, str]
    lines: int


def suggested_mapping(header: list[str]) -> dict[str, str]:
    """Lead field -> column, as `map_columns` maps by name when nothing is overridden."""
    fields: dict[str, str] = {}
    for name in header:
        target = HEADER_ALIASES.get(header_key(name))
        if target and target not in fields:
            fields[target] = name.strip()
    return fields


def count_lines(path: Path) -> int:
    """Lines after the header (a quoted field running over several lines counts each)."""
    newlines, last = 0, b""
    with path.open("rb") as raw:
        while block := raw.read(READ_BYTES):
            newlines += block.count(b"\n")
            last = block
    ends_open = bool(last) and not last.endswith(b"\n")
    return max(0, newlines + ends_open - 1)


def preview(path: Path, rows: int = PREVIEW_ROWS) -> FilePreview:
    """The first records of a lead file read as the import reads them (encoding, delimiter,
    quoting); raises ImportFileError for a file the import would refuse as a whole."""
    raw, lines, delimiter = _open_lines(path)
    with raw:
        reader = csv.reader(lines, delimiter=delimiter)
        header = next(reader, None)
        if header is None or not any(cell.strip() for cell in header):
            raise ImportFileError(f"{path.name} has no header row")
        header[0] = header[0].lstrip("\ufeff")
        first = list(itertools.islice(reader, rows))
    return FilePreview(header, first, delimiter, suggested_mapping(header), count_lines(path))
