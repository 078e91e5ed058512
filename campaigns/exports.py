"""Data leaving the dialer for a spreadsheet: CSV and XLSX exports.

What a user imports is stored as written, `-- call after 5pm` and `=HYPERLINK(...)` alike
(ARCHITECTURE §5a). A spreadsheet that opens an export evaluates a text cell starting with a
formula character, so every export neutralises such cells here, on the way out, and nowhere
else: the stored value stays the user's.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO

# The first characters a spreadsheet takes a cell's text as a formula for (OWASP, CSV
# injection): =, + and - start an expression, @ a function call in Excel; tab and carriage
# return are skipped by some readers, which then meet the formula behind them.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

# Where a spreadsheet may start a cell inside a CSV value: after a delimiter other than ours
# (`;` in much of Europe, a tab) or a line break. Quoting every cell does not stop it there: a
# reader splitting on `;` pairs the quotes of a comma-separated line differently and reads the
# rest of the line unquoted. A trigger behind such a character (and any spaces or quotes)
# gets the `'` a leading one gets.
INNER_CELL_START = re.compile(r"([;\t\r\n])(?=[\s\"]*[=+\-@])")

# An exported value: text from the database, or a typed column. Numbers stay numbers: a number
# written by us (a balance of -12.50, a row number) cannot hold a formula, and a report whose
# amounts were text would not add up.
Cell = str | int | float | Decimal | bool | dt.date | dt.datetime | None

# Excel refuses a workbook whose strings hold characters XML 1.0 cannot carry, and truncates
# its cells at 32,767 characters.
XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
XLSX_MAX_TEXT = 32_767
# An XLSX sheet holds 1,048,576 rows: past that, the export says so in its last row.
XLSX_MAX_ROWS = 1_048_000


def neutralise(value: str) -> str:
    """The text as a spreadsheet shows it as text: a `'` before a cell that starts with a
    formula trigger, every other cell unchanged."""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


def csv_text(value: str) -> str:
    """Text as a CSV cell: neutralised at its start and wherever a spreadsheet reading the file
    with another delimiter would start a cell inside it."""
    # `neutralise`, written out: a large export has hundreds of thousands of text cells.
    if value.startswith(FORMULA_TRIGGERS):
        value = "'" + value
    # The pattern only where one of its delimiters is: four substring tests cost a fraction
    # of a regular expression's pass.
    if ";" in value or "\t" in value or "\n" in value or "\r" in value:
        return INNER_CELL_START.sub(r"\1'", value)
    return value


def cell_text(value: Cell) -> str:
    """A value as a CSV cell: text neutralised (`csv_text`), numbers, dates and times as
    written by Python (ISO 8601), nothing as an empty cell."""
    if isinstance(value, str):  # first: most cells of a large export are text
        return csv_text(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):  # dt.datetime too
        return value.isoformat()
    if isinstance(value, int | float | Decimal):
        return str(value)
    raise TypeError(f"cannot export a {type(value).__name__} ({value!r}): not a cell value")


# Cells the csv module writes as `cell_text` would: numbers as str() has them, None empty.
_WRITTEN_AS_IS = frozenset({int, float, Decimal, type(None)})


class CsvRows:
    """Rows written as CSV to `out` (opened with newline=""), cell by cell as `cell_text` has
    them. Every cell is quoted, so that a reader splitting on commas keeps each value whole."""

    def __init__(self, out: IO[str]) -> None:
        self._writer = csv.writer(out, quoting=csv.QUOTE_ALL)

    def write(self, row: Sequence[Cell]) -> None:
        # Text, numbers and empty cells, most of a large export's, without a call to
        # `cell_text` each.
        self._writer.writerow(
            [
                csv_text(value)
                if value.__class__ is str
                else (value if value.__class__ in _WRITTEN_AS_IS else cell_text(value))
                for value in row
            ]
        )


def write_csv(rows: Iterable[Sequence[Cell]], header: Sequence[str], out: IO[str]) -> int:
    """Writes the header (none if empty: a part of a file) and the rows as CSV to `out`
    (opened with newline=""); returns the number of rows."""
    writer = CsvRows(out)
    if header:
        writer.write(header)
    count = 0
    for row in rows:
        writer.write(row)
        count += 1
    return count


def _xlsx_text(value: str) -> str:
    return XML_ILLEGAL.sub("\ufffd", neutralise(value))[:XLSX_MAX_TEXT]


def write_xlsx(
    rows: Iterable[Sequence[Cell]],
    header: Sequence[str],
    out: IO[bytes] | Path,
    sheet: str = "Export",
) -> int:
    """Writes the header and the rows as one worksheet of an XLSX workbook to `out` (a binary
    file or a path); returns the number of rows. Text is written as text cells, neutralised as
    in CSV, so a workbook saved again as CSV stays safe; numbers, dates and booleans keep their
    types. A datetime with a time zone is written at its own wall-clock time (Excel has no
    zones): convert it to the reader's zone first. Characters XML cannot hold become U+FFFD.

    Rows stream through openpyxl's write-only workbook, so memory stays flat whatever the
    number of rows."""
    # Imported lazily: only exports need it, and the import's worker processes never do.
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    worksheet = workbook.create_sheet(sheet)

    def text_cell(value: str) -> WriteOnlyCell:
        cell = WriteOnlyCell(worksheet, _xlsx_text(value))
        # openpyxl infers a formula from a leading "=" and an error from "#N/A": both are
        # text here, whatever neutralise left.
        cell.data_type = "s"
        return cell

    def typed(value: Cell) -> object:
        if isinstance(value, str):
            return text_cell(value)
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            return value.replace(tzinfo=None)
        if value is None or isinstance(value, int | float | Decimal | dt.date):
            return value
        raise TypeError(f"cannot export a {type(value).__name__} ({value!r}): not a cell value")

    worksheet.append([text_cell(name) for name in header])
    count = 0
    for row in rows:
        worksheet.append([typed(value) for value in row])
        count += 1
    workbook.save(out)
    return count


def capped_rows(rows: Iterable[Sequence[Cell]], width: int) -> Iterator[Sequence[Cell]]:
    """The rows a worksheet holds, then one saying that the rest were left out."""
    for count, row in enumerate(rows):
        if count == XLSX_MAX_ROWS:
            yield ["More rows than a worksheet holds: export as CSV for all of them."] + [None] * (
                width - 1
            )
            return
        yield row
