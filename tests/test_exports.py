"""Exports: every cell a spreadsheet would take for a formula leaves neutralised, in CSV and in
XLSX, whatever was imported; everything else leaves as stored."""

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import openpyxl
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from campaigns.exports import INNER_CELL_START, csv_text, neutralise, write_csv, write_xlsx
from campaigns.imports import import_leads
from campaigns.models import Lead
from tests.conftest import hostile_leads_csv, make_campaign

# Stated here, not imported, so a trigger dropped from the module fails these tests.
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

# Text of every kind, and text behind each trigger (plain st.text() seldom starts with one).
# Excel's times have no zone: a workbook reads back naive datetimes.
WALL_CLOCK = dt.datetime(2027, 1, 2, 9, 30)  # noqa: DTZ001 - what a workbook holds
MIDNIGHT = dt.datetime(2027, 1, 2)  # noqa: DTZ001

texts = st.one_of(
    st.text(),
    st.tuples(st.sampled_from(TRIGGERS), st.text()).map("".join),
)
# Text made of the characters that start cells, quote them and start formulas, to look for a
# way round the quotes.
tricky = st.text(alphabet=";\t\r\n\" =+-@a,'", max_size=12)
FORMULA_STARTS = ("=", "+", "-", "@")


@given(texts)
def test_neutralised_text_never_starts_with_a_formula_trigger(value: str) -> None:
    out = neutralise(value)
    assert not out.startswith(TRIGGERS)
    if value.startswith(TRIGGERS):
        assert out == "'" + value, "the value is kept whole behind the quote"
    else:
        assert out == value, "a value that starts no formula leaves unchanged"


@given(st.lists(st.lists(texts, min_size=1, max_size=4), max_size=5))
def test_csv_cells_read_back_as_the_neutralised_values(rows: list[list[str]]) -> None:
    out = io.StringIO(newline="")
    assert write_csv(rows, ["a", "b", "c", "d"], out) == len(rows)
    read = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert read == [["a", "b", "c", "d"], *([csv_text(v) for v in row] for row in rows)]
    assert not any(cell.startswith(TRIGGERS) for row in read for cell in row)


@given(
    st.lists(st.lists(st.one_of(texts, tricky), min_size=1, max_size=4), max_size=5),
    st.sampled_from([";", "\t"]),
)
def test_no_cell_starts_a_formula_whatever_delimiter_a_spreadsheet_splits_on(
    rows: list[list[str]], delimiter: str
) -> None:
    """Much of Europe opens CSV splitting on `;`: the quotes then pair up differently, and a
    value's `;=1+1` or a line break before `@SUM(...)` would start a cell of its own."""
    out = io.StringIO(newline="")
    write_csv(rows, ["a", "b", "c", "d"], out)
    read = csv.reader(io.StringIO(out.getvalue(), newline=""), delimiter=delimiter)
    for row in read:
        for cell in row:
            assert not cell.lstrip("\t\r\n").startswith(FORMULA_STARTS), (cell, rows)


def test_csv_quotes_every_cell_and_keeps_numbers_and_dates_as_they_are() -> None:
    out = io.StringIO(newline="")
    rows = [
        ["-- call after 5pm", -12, Decimal("-12.50"), dt.date(2027, 1, 2), None, True],
        ["a;=1+1", 3, 0.5, dt.datetime(2027, 1, 2, 9, 30, tzinfo=dt.UTC), "", False],
    ]
    write_csv(rows, ["note", "n", "balance", "day", "empty", "flag"], out)
    assert out.getvalue().splitlines() == [
        '"note","n","balance","day","empty","flag"',
        '"\'-- call after 5pm","-12","-12.50","2027-01-02","","true"',
        # A spreadsheet splitting on ";" would start a cell "=1+1", quotes or not.
        '"a;\'=1+1","3","0.5","2027-01-02T09:30:00+00:00","","false"',
    ]


def test_xlsx_writes_text_cells_neutralised_and_typed_cells_typed(tmp_path: Path) -> None:
    path = tmp_path / "export.xlsx"
    rows = [
        ['=HYPERLINK("http://x","y")', -12, Decimal("-12.50"), dt.date(2027, 1, 2), None],
        ["#N/A", 3, 0.5, WALL_CLOCK, "bell\x07"],
        ["=", True, 0, dt.datetime(2027, 1, 2, 9, 30, tzinfo=dt.UTC), "\t=1+1"],
    ]
    assert write_xlsx(rows, ["@note", "n", "balance", "when", "other"], path) == 3
    sheet = openpyxl.load_workbook(path).active
    assert sheet.title == "Export"
    cells = list(sheet.iter_rows())
    assert [[c.value for c in row] for row in cells] == [
        ["'@note", "n", "balance", "when", "other"],
        ['\'=HYPERLINK("http://x","y")', -12, -12.5, MIDNIGHT, None],
        ["#N/A", 3, 0.5, WALL_CLOCK, "bell\ufffd"],
        ["'=", True, 0, WALL_CLOCK, "'\t=1+1"],
    ]
    assert {c.data_type for row in cells for c in row if isinstance(c.value, str)} == {"s"}
    assert not any(c.data_type in {"f", "e"} for row in cells for c in row)


def test_stored_leads_leave_neutralised_in_csv_and_xlsx(
    engine: Engine, session: Session, tmp_path: Path
) -> None:
    # The leads of the import test, exported from the database as a report would.
    campaign = make_campaign(session).name
    import_leads(engine, hostile_leads_csv(tmp_path / "hostile.csv"), campaign)
    with engine.connect() as connection:
        leads = connection.execute(
            select(Lead.source_row, Lead.phone_e164, Lead.first_name, Lead.custom_fields).order_by(
                Lead.source_row
            )
        ).all()
    header = ["row", "phone", "first name", "-- remarks"]
    rows = [(row, phone, name, custom["-- remarks"]) for row, phone, name, custom in leads]
    hyperlink, img = '\'=HYPERLINK("http://x","y")', '"><img src=x onerror=alert(1)>'
    expected = [
        [2, "'+12125550000", "'-- call after 5pm", "'+44 via email"],
        [3, "'+442079460001", "'+44 via email", hyperlink],
        [4, "'+12125550002", hyperlink, "'@SUM(A1)"],
        [5, "'+442079460003", "'@SUM(A1)", "<script>alert(1)</script>"],
        [6, "'+12125550004", "<script>alert(1)</script>", img],
        [7, "'+442079460005", img, "'-- call after 5pm"],
    ]

    with (tmp_path / "leads.csv").open("w", newline="", encoding="utf-8") as out:
        write_csv(rows, header, out)
    with (tmp_path / "leads.csv").open(newline="", encoding="utf-8") as back:
        read = list(csv.reader(back))
    assert read == [["row", "phone", "first name", "'-- remarks"]] + [
        [str(row[0]), *row[1:]] for row in expected
    ]

    write_xlsx(rows, header, tmp_path / "leads.xlsx", sheet="Leads")
    sheet = openpyxl.load_workbook(tmp_path / "leads.xlsx")["Leads"]
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values == [["row", "phone", "first name", "'-- remarks"], *expected]
    # Saved again as CSV by whatever reads the workbook, no cell starts a formula.
    resaved = io.StringIO(newline="")
    csv.writer(resaved).writerows(values)
    assert not any(
        cell.startswith(TRIGGERS)
        for row in csv.reader(io.StringIO(resaved.getvalue(), newline=""))
        for cell in row
    )


@given(st.text(alphabet=st.sampled_from(list('ab =+-@;\t\r\n" ')) | st.characters()))
def test_a_csv_cell_is_neutralised_wherever_a_spreadsheet_could_start_a_cell(value: str) -> None:
    # The quick test for delimiters before the pattern changes no cell.
    assert csv_text(value) == INNER_CELL_START.sub(r"\1'", neutralise(value))
