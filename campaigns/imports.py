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
import json
import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.orm import Session

from campaigns import dnc
from campaigns.leads import (
    ImportFileError,
    LeadRow,
    PhoneAnalyzer,
    RowError,
    RowValidator,
    detect_encoding,
    map_columns,
    neutralise,
    sniff_delimiter,
)
from campaigns.models import Campaign, ImportRowError, ImportRun, Lead, LeadList, utcnow

SAMPLE_BYTES = 64 * 1024
# A lead row is a few hundred characters; anything this long is not a lead list.
MAX_LINE = 64 * 1024
CHUNK_ROWS = 20_000
PARALLEL_BYTES = 4 * 2**20
JSON_ERRORS = 100


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


def _bounded_lines(raw: IO[bytes], encoding: str) -> Iterator[str]:
    # Decoded line by line (a newline byte never sits inside a UTF-8 or cp1252 character), so
    # a bad byte is reported on its own line and an endless line is never read whole.
    number = 0
    while True:
        line = raw.readline(MAX_LINE + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE:
            raise ImportFileError(
                f"line {number} is longer than {MAX_LINE} characters: not a lead list"
            )
        try:
            yield line.decode(encoding)
        except UnicodeDecodeError as error:
            raise ImportFileError(
                f"line {number}: bytes that are not {encoding} ({error.reason}); "
                "save the file as UTF-8 and import it again"
            ) from None


def _open_rows(path: Path) -> tuple[IO[bytes], Iterator[list[str]]]:
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
    return raw, csv.reader(_bounded_lines(raw, encoding), delimiter=delimiter)


LEAD_COLUMNS = (
    "campaign_id",
    "list_id",
    "import_id",
    "source_row",
    "phone_e164",
    "phone_type",
    "region",
    "state",
    "time_zones",
    "first_name",
    "last_name",
    "email",
    "account_ref",
    "balance",
    "due_date",
    "appointment_at",
    "custom_fields",
    "status",
    "attempts",
    "priority",
    "consent_automated",
    "consent_at",
    "created_at",
)


class _LeadRows:
    """Lead rows as DBAPI tuples. A million rows through SQLAlchemy's per-value type
    processing cost more than everything else in an import, so the conversions that the
    models' types would make are done here once per distinct value."""

    def __init__(self, sqlite: bool, ids: tuple[int, int, int]) -> None:
        self.sqlite = sqlite
        self.ids = ids
        self.now = self.moment(utcnow())
        self._zones: dict[tuple[str, ...], str] = {}

    def moment(self, value: dt.datetime | None) -> object:
        if value is None or not self.sqlite:
            return value
        # The storage format of SQLAlchemy's SQLite DATETIME, in UTC like UTCDateTime.
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def row(self, lead: LeadRow) -> tuple[object, ...]:
        phone = lead.phone
        zones = self._zones.get(phone.time_zones)
        if zones is None:
            zones = self._zones[phone.time_zones] = json.dumps(list(phone.time_zones))
        due: object = lead.due_date
        balance: object = lead.balance
        if self.sqlite:
            due = due.isoformat() if due is not None else None
            balance = str(balance) if balance is not None else None
        return (
            *self.ids,
            lead.row,
            phone.e164,
            phone.phone_type,
            phone.region,
            phone.state,
            zones,
            lead.first_name,
            lead.last_name,
            lead.email,
            lead.account_ref,
            balance,
            due,
            self.moment(lead.appointment_at),
            json.dumps(lead.custom_fields) if lead.custom_fields else "{}",
            "new",
            0,
            lead.priority,
            lead.consent,
            self.now if lead.consent else None,
            self.now,
        )


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


@dataclass(frozen=True)
class _Plan:
    """What a validating process needs to turn CSV records into lead rows."""

    header: list[str]
    mapping: dict[str, str] | None
    region: str
    sqlite: bool
    ids: tuple[int, int, int]


Validated = list[RowError | tuple[int, str, int, tuple[object, ...]]]
_worker: tuple[RowValidator, _LeadRows] | None = None


def _start_worker(plan: _Plan) -> None:
    global _worker
    _worker = (
        RowValidator(map_columns(plan.header, plan.mapping), PhoneAnalyzer(plan.region)),
        _LeadRows(plan.sqlite, plan.ids),
    )


def _validate_records(records: list[tuple[int, list[str]]]) -> Validated:
    assert _worker is not None
    validator, lead_rows = _worker
    out: Validated = []
    for row_number, cells in records:
        result = validator.validate(row_number, cells)
        if isinstance(result, RowError):
            out.append(result)
        else:
            e164 = result.phone.e164
            out.append((int(e164[1:]), e164, row_number, lead_rows.row(result)))
    return out


def _record_batches(rows: Iterator[list[str]], size: int) -> Iterator[list[tuple[int, list[str]]]]:
    batch: list[tuple[int, list[str]]] = []
    for row_number, cells in enumerate(rows, start=2):
        if cells and (len(cells) > 1 or cells[0].strip()):
            batch.append((row_number, cells))
            if len(batch) >= size:
                yield batch
                batch = []
    if batch:
        yield batch


def _validated(rows: Iterator[list[str]], plan: _Plan, parallel: bool) -> Iterator[Validated]:
    """Validation runs in a second process for large files (it is most of the CPU work),
    while this one reads, deduplicates and writes; order is kept."""
    if not parallel:
        _start_worker(plan)
        yield from map(_validate_records, _record_batches(rows, 2000))
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(1, initializer=_start_worker, initargs=(plan,)) as pool:
        yield from pool.imap(_validate_records, _record_batches(rows, 2000), chunksize=1)


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
    mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    insert_leads = (
        f"INSERT INTO leads ({', '.join(LEAD_COLUMNS)}) "
        f"VALUES ({', '.join([mark] * len(LEAD_COLUMNS))})"
    )

    raw, rows = _open_rows(path)
    with raw:
        header = next(rows, None)
        if header is None or not any(cell.strip() for cell in header):
            raise ImportFileError(f"{path.name} has no header row")
        header[0] = header[0].lstrip("\ufeff")
        map_columns(header, mapping)  # a bad header fails here, before any process starts
        plan = _Plan(
            header,
            mapping,
            region,
            engine.dialect.name == "sqlite",
            (campaign_id, list_id, summary.import_id),
        )
        parallel = path.stat().st_size > PARALLEL_BYTES and (os.cpu_count() or 1) > 1
        first_row: dict[int, int] = {}
        leads: list[tuple[object, ...]] = []
        problems: list[RowError] = []
        writer = _ChunkWriter(engine, insert_leads, summary.import_id)
        try:
            for batch in _validated(rows, plan, parallel):
                for result in batch:
                    summary.rows += 1
                    if isinstance(result, RowError):
                        summary.invalid += 1
                        if len(summary.errors) < JSON_ERRORS:
                            summary.errors.append(result)
                        problems.append(result)
                        continue
                    key, e164, row_number, values = result
                    if key in first_row or key in known:
                        summary.duplicates += 1
                        where = f"row {first_row[key]}" if key in first_row else "the campaign"
                        problems.append(
                            RowError(row_number, "phone", e164, f"duplicate of {where}")
                        )
                    elif key in blocked:
                        summary.dnc += 1
                        problems.append(
                            RowError(row_number, "phone", e164, "on a do-not-call list")
                        )
                    else:
                        first_row[key] = row_number
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

    def submit(
        self, summary: ImportSummary, leads: list[tuple[object, ...]], problems: list[RowError]
    ) -> None:
        self.wait()
        progress = {"rows": summary.rows, "imported": summary.imported + len(leads)}
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

    def _insert_sqlite(self, leads: list[tuple[object, ...]]) -> None:
        # SQLite checks three foreign keys per row, which costs more than the row itself;
        # this import created the campaign, list and run rows they point to, so the check is
        # switched off on this one connection (it must be done outside a transaction).
        raw = self.engine.raw_connection()
        try:
            sqlite = raw.driver_connection
            sqlite.execute("PRAGMA foreign_keys=OFF")
            try:
                sqlite.execute("BEGIN")
                sqlite.executemany(self.insert_leads, leads)
                sqlite.execute("COMMIT")
            except BaseException:
                sqlite.execute("ROLLBACK")
                raise
            finally:
                sqlite.execute("PRAGMA foreign_keys=ON")
        finally:
            raw.close()

    def _write(
        self, leads: list[tuple[object, ...]], problems: list[RowError], progress: dict[str, int]
    ) -> None:
        if leads and self.engine.dialect.name == "sqlite":
            self._insert_sqlite(leads)
            leads = []
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
            connection.execute(
                update(ImportRun).where(ImportRun.id == self.import_id).values(**progress)
            )


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
