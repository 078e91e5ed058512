import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from campaigns import dnc
from campaigns.models import utcnow
from dialer.cli import main
from tests.conftest import make_campaign


def test_file_import_reports_bad_lines_and_renews_known_numbers(
    engine: Engine, session: Session, tmp_path: Path
) -> None:
    path = tmp_path / "dnc.csv"
    path.write_text("name,phone\nAnna,(212) 555-0100\nBob,not a number\nCy,+1 212 555 0101\n")
    first = dnc.import_file(engine, path)
    assert (first.lines, first.added, first.invalid) == (3, 2, 1)
    assert first.errors[0].row == 3 and first.errors[0].value == "not a number"
    later = utcnow() + dt.timedelta(days=30)
    again = dnc.import_file(engine, path, expires_at=later)
    assert (again.added, again.already) == (0, 2)
    assert dnc.blocking_entry(session, "+12125550100", None, utcnow()) is not None
    assert dnc.blocking_entry(session, "+12125550100", None, later + dt.timedelta(1)) is None


def test_campaign_list_blocks_only_its_campaign(session: Session) -> None:
    spring, autumn = make_campaign(session, "Spring"), make_campaign(session, "Autumn")
    dnc.add(session, "+12125550100", campaign_id=spring.id)
    session.commit()
    now = utcnow()
    assert dnc.blocked_numbers(session, spring.id, now) == {"+12125550100"}
    assert dnc.blocked_numbers(session, autumn.id, now) == set()


def test_cli_check_exits_1_for_a_blocked_number(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    runner = CliRunner()
    assert runner.invoke(main, ["dnc", "check", "212-555-0100"]).exit_code == 0
    added = runner.invoke(main, ["dnc", "add", "(212) 555-0100", "--reason", "asked"])
    assert added.exit_code == 0 and "+12125550100" in added.output
    checked = runner.invoke(main, ["dnc", "check", "+1 212 555 0100"])
    assert checked.exit_code == 1 and "blocked" in checked.output
    bad = runner.invoke(main, ["dnc", "add", "12"])
    assert bad.exit_code == 2 and "'12': not a valid number" in bad.output
