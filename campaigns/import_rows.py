"""The validating side of a lead import: CSV records in, database rows or row errors out.

It runs in the importing process for small files and in worker processes for large ones, so it
imports neither SQLAlchemy nor the models (~30 MB and half a second in every worker).
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import json
import operator
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii

from campaigns.leads import (
    ColumnMap,
    LeadRow,
    PhoneAnalyzer,
    RowError,
    RowValidator,
    map_columns,
)

# A lead row is a few hundred characters; anything this long is not a lead list.
MAX_LINE = 64 * 1024
# Columns with a value of their own in each row; the import's ids, the status, the attempt
# count and the creation time are the same for every row and written into the statement
# (binding them a million times was 8% of the insert).
LEAD_COLUMNS = (
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
    "priority",
    "consent_automated",
    "consent_at",
)
SOURCE_ROW = LEAD_COLUMNS.index("source_row")
PHONE = LEAD_COLUMNS.index("phone_e164")
# Columns only a mapped field can fill (custom_fields: the unmapped columns), and their value
# without one. A file without such a field gets the value written into the statement: every
# value bound is converted on the writer's thread, which holds the GIL while it does so.
FIELD_SOURCES = {
    "first_name": "first_name",
    "last_name": "last_name",
    "email": "email",
    "account_ref": "account_ref",
    "balance": "balance",
    "due_date": "due_date",
    "appointment_at": "appointment_at",
    "priority": "priority",
    "consent_automated": "consent",
    "consent_at": "consent",
}
UNBOUND_DEFAULTS = {
    "first_name": "NULL",
    "last_name": "NULL",
    "email": "NULL",
    "account_ref": "NULL",
    "balance": "NULL",
    "due_date": "NULL",
    "appointment_at": "NULL",
    "custom_fields": "'{}'",
    "priority": "0",
    "consent_automated": "false",
    "consent_at": "NULL",
}


def bound_columns(columns: ColumnMap) -> tuple[str, ...]:
    """The lead columns whose values come from the file's rows, in LEAD_COLUMNS order (so
    source_row and phone_e164 keep their places)."""
    return tuple(
        name
        for name in LEAD_COLUMNS
        if name not in UNBOUND_DEFAULTS
        or (name == "custom_fields" and columns.custom)
        or FIELD_SOURCES.get(name) in columns.fields
    )


@dataclass(frozen=True)
class ImportPlan:
    """What a validating process needs to turn CSV records into lead rows."""

    header: list[str]
    delimiter: str
    mapping: dict[str, str] | None
    region: str
    sqlite: bool
    now: dt.datetime
    # SQLite: the folder where each validating process keeps the rows it validated, for the
    # writer to copy (None: the rows go back to the importing process).
    staging: str | None


def sqlite_moment(value: dt.datetime) -> str:
    # The storage format of SQLAlchemy's SQLite DATETIME, in UTC like UTCDateTime.
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class LeadRows:
    """Lead rows as DBAPI tuples. A million rows through SQLAlchemy's per-value type
    processing cost more than everything else in an import, so the conversions that the
    models' types would make are done here once per distinct value."""

    def __init__(self, sqlite: bool, now: dt.datetime, bound: tuple[str, ...]) -> None:
        self.sqlite = sqlite
        self.now: object = sqlite_moment(now) if sqlite else now
        self._zones: dict[tuple[str, ...], str] = {}
        self._pick = (
            operator.itemgetter(*(LEAD_COLUMNS.index(name) for name in bound))
            if bound != LEAD_COLUMNS
            else None
        )

    def row(self, lead: LeadRow) -> tuple[object, ...]:
        phone = lead.phone
        zones = self._zones.get(phone.time_zones)
        if zones is None:
            zones = self._zones[phone.time_zones] = json.dumps(list(phone.time_zones))
        due: object = lead.due_date
        balance: object = lead.balance
        appointment: object = lead.appointment_at
        if self.sqlite:
            due = due.isoformat() if due is not None else None
            balance = str(balance) if balance is not None else None
            appointment = sqlite_moment(appointment) if appointment is not None else None
        values = (
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
            appointment,
            json_object(lead.custom_fields),
            lead.priority,
            lead.consent,
            self.now if lead.consent else None,
        )
        return values if self._pick is None else self._pick(values)


def json_object(fields: dict[str, str]) -> str:
    """json.dumps of a dict of strings, character for character, at a fifth of its cost (its
    per-call set-up was 8% of an import)."""
    if not fields:
        return "{}"
    return (
        "{"
        + ", ".join([f"{_json_key(k)}: {encode_basestring_ascii(v)}" for k, v in fields.items()])
        + "}"
    )


@functools.lru_cache(maxsize=1024)
def _json_key(name: str) -> str:
    # Keys are the file's header names: the same few on every row.
    return encode_basestring_ascii(name)


@dataclass(frozen=True, slots=True)
class LineBatch:
    """Lines with no quote character: each one is a record, split where it is validated."""

    first_row: int
    lines: list[str]


# Records as (row number, cells), split by the importing process.
Records = list[tuple[int, list[str]]]
# Where a validating process stages its valid rows: one table of the lead columns the file
# fills, keyed by row number, so the writer selects a chunk's rows by range.
STAGING_TABLE = "staged_leads"


@dataclass(frozen=True, slots=True)
class Validated:
    """A batch's outcome in file order: row errors and, for each valid row, its number as an
    integer (cheap to deduplicate) and its row number. The valid rows themselves are in
    `rows`, in the same order, or in the table of the `staging` file."""

    results: list[RowError | tuple[int, int]]
    rows: list[tuple[object, ...]]
    staging: str | None


class _Staging:
    """A validating process's own SQLite file of valid rows. Sent back through a pipe, a row
    cost more to pickle and unpickle than to store here, and the writer then bound every value
    again; from here it copies a chunk with one INSERT ... SELECT."""

    def __init__(self, folder: str, bound: tuple[str, ...]) -> None:
        self.path = os.path.join(folder, f"rows-{os.getpid()}.db")
        self.connection = sqlite3.connect(self.path, isolation_level=None)
        # WAL: the writer reads committed batches while this process appends. The file is
        # thrown away after the import, so nothing is synced and the log is never copied back.
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute("PRAGMA synchronous=OFF")
        self.connection.execute("PRAGMA wal_autocheckpoint=0")
        columns = ", ".join(["source_row INTEGER PRIMARY KEY", *bound[1:]])
        self.connection.execute(f"CREATE TABLE {STAGING_TABLE} ({columns})")
        self.insert = f"INSERT INTO {STAGING_TABLE} VALUES ({', '.join('?' * len(bound))})"

    def add(self, rows: list[tuple[object, ...]]) -> None:
        # Committed before the batch's outcome goes back: the writer may copy it at once.
        self.connection.execute("BEGIN")
        self.connection.executemany(self.insert, rows)
        self.connection.execute("COMMIT")

    def close(self) -> None:
        self.connection.close()


_worker: tuple[RowValidator, LeadRows, str, _Staging | None] | None = None


def start_worker(plan: ImportPlan) -> None:
    global _worker
    stop_worker()
    csv.field_size_limit(MAX_LINE)
    columns = map_columns(plan.header, plan.mapping)
    bound = bound_columns(columns)
    _worker = (
        RowValidator(columns, PhoneAnalyzer(plan.region)),
        LeadRows(plan.sqlite, plan.now, bound),
        plan.delimiter,
        _Staging(plan.staging, bound) if plan.staging is not None else None,
    )


def stop_worker() -> None:
    """Closes the staging file of the import validated in this process (worker processes
    close theirs when they exit)."""
    global _worker
    if _worker is not None and _worker[3] is not None:
        _worker[3].close()
    _worker = None


def validate_batch(batch: LineBatch | Records) -> Validated:
    assert _worker is not None
    validator, lead_rows, delimiter, staging = _worker
    records: Iterable[tuple[int, list[str]]] = (
        enumerate(csv.reader(batch.lines, delimiter=delimiter), start=batch.first_row)
        if isinstance(batch, LineBatch)
        else batch
    )
    results: list[RowError | tuple[int, int]] = []
    rows: list[tuple[object, ...]] = []
    for row_number, cells in records:
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue  # a blank line
        result = validator.validate(row_number, cells)
        if isinstance(result, RowError):
            results.append(result)
        else:
            results.append((int(result.phone.e164[1:]), row_number))
            rows.append(lead_rows.row(result))
    if staging is None:
        return Validated(results, rows, None)
    staging.add(rows)
    return Validated(results, [], staging.path)
