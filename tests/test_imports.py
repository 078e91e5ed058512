"""CSV lead import against a real database: the user's stories and the malformed files."""

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from campaigns import dnc
from campaigns.import_rows import json_object
from campaigns.imports import ImportFileError, import_leads, write_error_report
from campaigns.leads import TEXT_LIMITS
from campaigns.models import ImportRun, Lead
from dialer.cli import main
from tests.conftest import HOSTILE_VALUES, hostile_leads_csv, make_campaign


@pytest.fixture
def campaign(session: Session) -> str:
    return make_campaign(session, "Spring sale").name


def lead_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(Lead)) or 0


def write(tmp_path: Path, content: bytes | str, name: str = "leads.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def test_import_maps_headers_normalises_numbers_and_reports_every_problem(
    engine: Engine, session: Session, campaign: str, tmp_path: Path
) -> None:
    dnc.add(session, "+13055550199")
    session.commit()
    path = write(
        tmp_path,
        "First Name;Surname;Mobile;Balance;Due Date;Region code\n"
        "Anna;Smith;(212) 555-0100;$1,234.50;03/31/2027;NE\n"
        "Bob;Jones;+1 212-555-0100;;;\n"
        "Carl;;12;;;\n"
        '=HYPERLINK("http://x");Evil;(212) 555-0111;;;\n'
        "Eve;;+1 305 555 0199;;;\n"
        "Fay;;+44 20 7946 0018;12,5x;;\n"
        "Gus;;(405) 555-0123;;;\n",
    )
    summary = import_leads(engine, path, campaign)
    assert (summary.rows, summary.imported, summary.duplicates, summary.invalid, summary.dnc) == (
        7,
        3,
        1,
        2,
        1,
    )
    assert [(e.row, e.field) for e in summary.errors] == [(4, "phone"), (7, "balance")]
    stored = {lead.phone_e164: lead for lead in session.scalars(select(Lead))}
    anna, gus = stored["+12125550100"], stored["+14055550123"]
    assert stored["+12125550111"].first_name == '=HYPERLINK("http://x")', "kept as written"
    assert (anna.first_name, anna.last_name, str(anna.balance), anna.due_date.isoformat()) == (
        "Anna",
        "Smith",
        "1234.50",
        "2027-03-31",
    )
    assert anna.custom_fields == {"Region code": "NE"}
    assert anna.time_zones == ["America/New_York"] and anna.state == "NY"
    assert gus.state == "OK" and gus.time_zones == ["America/Chicago"]
    assert anna.phone_type == "fixed_line_or_mobile" and anna.status == "new"

    report = io.StringIO()
    assert write_error_report(engine, summary.import_id, report) == 4
    assert '"3","phone","\'+12125550100","duplicate of row 2"' in report.getvalue()


def test_reimporting_the_same_file_adds_nothing(
    engine: Engine, campaign: str, tmp_path: Path
) -> None:
    path = write(tmp_path, "phone\n2125550100\n2125550101\n")
    import_leads(engine, path, campaign)
    again = import_leads(engine, path, campaign)
    assert (again.imported, again.duplicates) == (0, 2)
    assert lead_count(engine) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\xef\xbb\xbf\r\n", "is empty"),
        (b"phone\n", "header but no rows"),
        (b"name,email\nAnna,a@example.com\n", "no phone column"),
        (b"\x00\x01\x02binary", "NUL bytes"),
        (b"phone,name\n" + b"2125550100," + b"x" * 200_000 + b"\n", "longer than"),
    ],
)
def test_malformed_files_fail_clearly_and_store_nothing(
    engine: Engine, campaign: str, tmp_path: Path, content: bytes, message: str
) -> None:
    path = write(tmp_path, content)
    with pytest.raises(ImportFileError, match=message):
        import_leads(engine, path, campaign)
    assert lead_count(engine) == 0


def test_a_failure_late_in_the_file_undoes_the_rows_already_written(
    engine: Engine, campaign: str, tmp_path: Path
) -> None:
    good = "".join(f"212555{i:04d}\n" for i in range(25_000))
    # Valid UTF-8 up to here, then a byte that is not: the import stops and undoes itself.
    path = write(tmp_path, b"phone\n" + good.encode() + "Zoë\n".encode("cp1252"))
    with pytest.raises(ImportFileError, match="line 25002"):
        import_leads(engine, path, campaign)
    assert lead_count(engine) == 0
    assert not list(tmp_path.glob("dialer-import-*")), "the staging files are removed"
    with engine.connect() as connection:
        run = connection.execute(select(ImportRun.status, ImportRun.error)).one()
    assert run.status == "failed" and "utf-8" in run.error


def test_an_import_whose_caller_fails_once_it_began_is_on_record_as_failed(
    engine: Engine, campaign: str, tmp_path: Path
) -> None:
    """The console's own write when an import begins can fail (the database busy): the run
    must not stay "running" for ever, its page polling a progress that never comes."""

    def begun(import_id: int) -> None:
        raise RuntimeError("database is locked")

    path = write(tmp_path, "phone\n2125550100\n")
    with pytest.raises(RuntimeError, match="database is locked"):
        import_leads(engine, path, campaign, started=begun)
    assert lead_count(engine) == 0
    with engine.connect() as connection:
        run = connection.execute(select(ImportRun.status, ImportRun.error)).one()
    assert run == ("failed", "database is locked")


def test_cp1252_file_with_tabs_and_ragged_rows(
    engine: Engine, session: Session, campaign: str, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "Téléphone\tPrénom\tNom\n2125550100\tZoë\tMüller\n2125550101\tonly two\n".encode("cp1252"),
    )
    summary = import_leads(engine, path, campaign, mapping={"phone": "Téléphone"})
    assert summary.imported == 1 and summary.errors[0].row == 3
    assert session.scalars(select(Lead.custom_fields)).one() == {"Prénom": "Zoë", "Nom": "Müller"}


def test_cli_json_summary_has_the_documented_shape(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session: Session, campaign: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    path = write(tmp_path, "phone,first_name\n2125550100,Anna\nnope,Bob\n")
    result = CliRunner().invoke(
        main, ["leads", "import", str(path), "--campaign", campaign, "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert {k: summary[k] for k in ("rows", "imported", "duplicates", "invalid", "dnc")} == {
        "rows": 2,
        "imported": 1,
        "duplicates": 0,
        "invalid": 1,
        "dnc": 0,
    }
    assert summary["errors"] == [
        {"row": 3, "field": "phone", "value": "nope", "reason": summary["errors"][0]["reason"]}
    ]


def test_large_file_goes_through_the_parallel_path(
    engine: Engine, campaign: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("campaigns.imports.PARALLEL_BYTES", 0)
    path = write(tmp_path, "phone\n" + "".join(f"212555{i:04d}\n" for i in range(3000)) + "bad\n")
    summary = import_leads(engine, path, campaign)
    assert (summary.imported, summary.invalid, summary.errors[0].row) == (3000, 1, 3002)


@pytest.mark.parametrize("parallel", [False, True])
def test_the_first_occurrence_is_kept_and_every_duplicate_names_it(
    engine: Engine,
    session: Session,
    campaign: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    parallel: bool,
) -> None:
    # Batches of 2 rows in chunks of 3: first occurrences and their duplicates fall in
    # different batches, validating processes and transactions.
    monkeypatch.setattr("campaigns.imports.BATCH_ROWS", 2)
    monkeypatch.setattr("campaigns.imports.CHUNK_ROWS", 3)
    if parallel:
        monkeypatch.setattr("campaigns.imports.PARALLEL_BYTES", 0)
    dnc.add(session, "+13055550199")
    session.commit()
    import_leads(engine, write(tmp_path, "phone\n(405) 555-0123\n", "earlier.csv"), campaign)
    path = write(
        tmp_path,
        "phone,name\n"
        "2125550100,first\n"
        "2125550099,a\n"
        "305 555 0199,blocked\n"
        "+1 212 555 0100,second\n"
        "nope,b\n"
        "405-555-0123,known\n"
        "212.555.0100,third\n"
        "(305) 555-0199,blocked again\n"
        "2125550102,c\n",
    )
    summary = import_leads(engine, path, campaign)
    assert (summary.rows, summary.imported, summary.duplicates, summary.invalid, summary.dnc) == (
        9,
        3,
        3,
        1,
        2,
    )
    rows = dict(
        session.execute(
            select(Lead.phone_e164, Lead.source_row).where(Lead.import_id == summary.import_id)
        ).all()
    )
    assert rows == {"+12125550100": 2, "+12125550099": 3, "+12125550102": 10}
    in_id_order = session.scalars(
        select(Lead.source_row).where(Lead.import_id == summary.import_id).order_by(Lead.id)
    ).all()
    assert in_id_order == [2, 3, 10], "leads are stored in file order (the hopper's tie-break)"
    report = io.StringIO()
    assert write_error_report(engine, summary.import_id, report) == 6
    assert list(csv.reader(io.StringIO(report.getvalue()))) == [
        ["row", "field", "value", "reason"],
        ["4", "phone", "'+13055550199", "on a do-not-call list"],
        ["5", "phone", "'+12125550100", "duplicate of row 2"],
        ["6", "phone", "nope", summary.errors[0].reason],
        ["7", "phone", "'+14055550123", "duplicate of the campaign"],
        ["8", "phone", "'+12125550100", "duplicate of row 2"],
        ["9", "phone", "'+13055550199", "on a do-not-call list"],
    ]
    with engine.connect() as connection:
        run = connection.execute(
            select(ImportRun.status, ImportRun.rows, ImportRun.imported).where(
                ImportRun.id == summary.import_id
            )
        ).one()
    assert tuple(run) == ("completed", 9, 3)
    assert not list(tmp_path.glob("dialer-import-*")), "the staging files are removed"


@given(st.dictionaries(st.text(), st.text(), max_size=4))
def test_custom_fields_are_encoded_exactly_as_json_dumps_would(fields: dict[str, str]) -> None:
    assert json_object(fields) == json.dumps(fields)


@pytest.mark.parametrize("parallel", [False, True])
def test_quoted_fields_across_batches_keep_row_numbers(
    engine: Engine,
    session: Session,
    campaign: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    parallel: bool,
) -> None:
    # Batches of 3 lines: the quoted note of row 4 starts in the first batch and ends in the
    # second; the batches after it have no quotes and are split by the validating process.
    monkeypatch.setattr("campaigns.imports.BATCH_ROWS", 3)
    if parallel:
        monkeypatch.setattr("campaigns.imports.PARALLEL_BYTES", 0)
    path = write(
        tmp_path,
        "phone,note\n"
        "2125550100,a\n"
        "2125550101,b\n"
        '2125550102,"two\nlines, one comma"\n'
        "2125550103,c\n"
        "\n"
        "2125550104,d\n"
        "nope,e\n"
        "2125550105,f\n",
    )
    summary = import_leads(engine, path, campaign)
    assert (summary.rows, summary.imported, [e.row for e in summary.errors]) == (7, 6, [8])
    notes = dict(session.execute(select(Lead.source_row, Lead.custom_fields)).all())
    assert notes[4] == {"note": "two\nlines, one comma"} and notes[9] == {"note": "f"}


def test_columns_the_file_lacks_get_the_same_defaults_as_columns_it_leaves_empty(
    engine: Engine, session: Session, campaign: str, tmp_path: Path
) -> None:
    # A field the file has no column for is written into the INSERT rather than bound.
    only_phone = write(tmp_path, "phone\n(212) 555-0100\n", "only_phone.csv")
    every_field = write(
        tmp_path,
        "phone,first_name,last_name,email,account,balance,due_date,appointment,priority,"
        "consent,notes\n(212) 555-0101,,,,,,,,,,\n(212) 555-0102,Ann,Lee,a@b.co,A1,5,"
        "2027-01-02,2027-01-02 10:00+00:00,3,yes,vip\n",
        "every_field.csv",
    )
    import_leads(engine, only_phone, campaign)
    import_leads(engine, every_field, campaign)
    leads = {lead.phone_e164: lead for lead in session.scalars(select(Lead))}
    columns = [c.key for c in Lead.__table__.columns if c.key not in {"id", "phone_e164"}]
    bare, empty, full = (leads[f"+1212555010{i}"] for i in range(3))
    differ = {c for c in columns if getattr(bare, c) != getattr(empty, c)}
    assert differ == {"list_id", "import_id", "created_at"}
    assert (bare.priority, bare.consent_automated, bare.custom_fields) == (0, False, {})
    assert (full.priority, full.consent_automated, full.custom_fields) == (
        3,
        True,
        {"notes": "vip"},
    )
    assert full.consent_at is not None and full.appointment_at is not None


@pytest.mark.parametrize("parallel", [False, True])
def test_every_value_is_stored_as_written_whatever_its_first_character(
    engine: Engine, campaign: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parallel: bool
) -> None:
    # Notes that start with - or +, formulas and markup are data: no row is refused for them,
    # and each is read back from the database character for character (formulas are
    # neutralised where they leave the system, tests/test_exports.py).
    if parallel:
        monkeypatch.setattr("campaigns.imports.PARALLEL_BYTES", 0)
    summary = import_leads(engine, hostile_leads_csv(tmp_path / "hostile.csv"), campaign)
    assert (summary.imported, summary.invalid, summary.errors) == (len(HOSTILE_VALUES), 0, [])
    with engine.connect() as connection:
        stored = connection.execute(
            select(
                Lead.phone_e164,
                Lead.region,
                Lead.first_name,
                Lead.last_name,
                Lead.account_ref,
                Lead.custom_fields,
            ).order_by(Lead.source_row)
        ).all()
    expected = []
    for i, value in enumerate(HOSTILE_VALUES):
        other = HOSTILE_VALUES[(i + 1) % len(HOSTILE_VALUES)]
        phone, region = (f"+4420794600{i:02d}", "GB") if i % 2 else (f"+121255500{i:02d}", "US")
        expected.append((phone, region, value, other, value, {"notes": value, "-- remarks": other}))
    assert [tuple(row) for row in stored] == expected


def test_a_value_longer_than_its_column_is_a_row_error_on_every_database(
    engine: Engine, session: Session, campaign: str, tmp_path: Path
) -> None:
    # PostgreSQL enforces the columns' lengths: a 200-character first name used to fail the
    # whole import there (SQLite stored it).
    long_name, long_note = "N" * (TEXT_LIMITS["first_name"] + 1), "x" * 256
    path = write(
        tmp_path,
        "phone,first_name,account,note\n"
        f"2125550100,{long_name},A1,ok\n"
        f"2125550101,Bob,{'A' * TEXT_LIMITS['account_ref']},ok\n"
        f"2125550102,Cy,A3,{long_note}\n",
    )
    summary = import_leads(engine, path, campaign)
    assert (summary.imported, summary.invalid) == (1, 2)
    assert [tuple(e) for e in summary.errors] == [
        (2, "first_name", long_name, "121 characters; at most 120 fit"),
        (4, "note", long_note, "256 characters; at most 255 fit"),
    ]
    assert session.scalars(select(Lead.first_name)).all() == ["Bob"]


def test_text_limits_are_the_lengths_of_the_lead_columns() -> None:
    assert {name: Lead.__table__.c[name].type.length for name in TEXT_LIMITS} == TEXT_LIMITS
