from click.testing import CliRunner

from dialer.cli import main


def test_help_lists_command_groups() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    assert "bench" in result.output


def test_serve_once_migrates_and_runs_every_scheduler_job(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from campaigns.db import current_revision

    url = f"sqlite:///{tmp_path / 'dialer.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    result = CliRunner().invoke(main, ["serve", "--once"])
    assert result.exit_code == 0, result.output
    for job in ("release_orphaned_claims", "roll_up_hours", "settle_forgotten_wrap_ups"):
        assert f"ran job {job}" in result.output
    assert current_revision(url) is not None


def test_simulate_offers_agents_carrier_and_phones() -> None:
    result = CliRunner().invoke(main, ["simulate", "--help"])
    assert result.exit_code == 0, result.output
    for command in ("agents", "carrier", "phones"):
        assert f"  {command} " in result.output


def _cli(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(main, list(args))


def test_a_survey_and_a_calendar_are_set_up_from_the_command_line(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`dialer campaign survey` takes the questions as JSON and gives them back; a bad file is
    refused naming what is wrong and leaves the survey as it was. `dialer campaign slots` adds a
    calendar in the manager's zone, keeps the times already there, lists the slots to come."""
    import json

    from sqlalchemy import select

    from campaigns import db
    from campaigns.models import Campaign

    url = f"sqlite:///{tmp_path / 'dialer.db'}"
    db.upgrade(url)
    monkeypatch.setenv("DATABASE_URL", url)
    result = _cli("campaign", "create", "Poll", "--kind", "survey", "--agentless")
    assert result.exit_code == 2 and "give --max-lines" in result.output
    result = _cli("campaign", "create", "Sale", "--kind", "telemarketing", "--agentless")
    assert result.exit_code == 2 and "only survey and appointment campaigns" in result.output
    poll = ["campaign", "create", "Poll", "--kind", "survey", "--agentless", "--max-lines", "6"]
    assert _cli(*poll).exit_code == 0
    assert _cli("campaign", "create", "Visits", "--kind", "appointment").exit_code == 0
    with db.session_factory(db.make_engine(url))() as session:
        made = session.scalars(select(Campaign).order_by(Campaign.id)).all()
        assert [(c.name, c.agentless, c.max_lines) for c in made] == [
            ("Poll", True, 6),
            ("Visits", False, 0),
        ]
    survey = {
        "intro": "A short survey for {seller}.",
        "questions": [
            {"key": "q1", "text": "Happy? 1 yes, 2 no.", "digits": "12", "branches": {"1": "end"}},
            {"key": "q2", "text": "A call back? 1 yes, 2 no.", "digits": "12"},
        ],
    }
    good = tmp_path / "survey.json"
    good.write_text(json.dumps(survey))
    result = _cli("campaign", "survey", "Poll")
    assert result.exit_code == 1 and "has no survey yet" in result.output
    result = _cli("campaign", "survey", "Poll", str(good))
    assert result.exit_code == 0, result.output
    assert "2 questions" in result.output
    bad = tmp_path / "bad.json"
    wrong = {"key": "q1", "text": "x", "digits": "12", "branches": {"3": "end"}}
    bad.write_text(json.dumps({"questions": [wrong]}))
    result = _cli("campaign", "survey", "Poll", str(bad))
    assert result.exit_code == 1
    assert "branch on '3', which is not one of its digits" in result.output
    bad.write_text('{"questions": [')
    result = _cli("campaign", "survey", "Poll", str(bad))
    assert result.exit_code == 2 and "not JSON (line 1" in result.output
    result = _cli("campaign", "survey", "Visits", str(good))
    assert result.exit_code == 1 and "not a survey campaign" in result.output
    given_back = json.loads(_cli("campaign", "survey", "Poll").output)
    assert [q["key"] for q in given_back["questions"]] == ["q1", "q2"]
    assert given_back["intro"] == survey["intro"]

    add = ["campaign", "slots", "Visits", "--tz", "America/New_York", "--every", "60"]
    result = _cli(*add, "--add", "2099-03-02T09:00", "--count", "2", "--capacity", "3")
    assert result.exit_code == 0, result.output
    assert "2 slots added" in result.output
    result = _cli(*add, "--add", "2099-03-02T10:00", "--count", "2")
    assert "1 slots added to 'Visits' (1 already there)" in result.output
    lines = [line for line in result.output.splitlines() if "booked" in line]
    assert lines == [
        "Mon 2099-03-02 09:00 EST   60 min  booked 0/3",
        "Mon 2099-03-02 10:00 EST   60 min  booked 0/3",
        "Mon 2099-03-02 11:00 EST   60 min  booked 0/1",
    ]
    result = _cli("campaign", "slots", "Poll", "--add", "2099-03-02T09:00")
    assert result.exit_code == 1 and "not an appointment campaign" in result.output
    result = _cli("campaign", "slots", "Visits", "--add", "tomorrow")
    assert result.exit_code == 2 and "'tomorrow' is not an ISO 8601 instant" in result.output
