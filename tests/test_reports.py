"""`dialer report campaign`: crafted attempts and dispositions, counted by hand."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from campaigns import appointments
from campaigns.compliance import ABANDON_WINDOW
from campaigns.hopper import _context_statement, window_parameters
from campaigns.models import Appointment, CallAttempt, Disposition, Lead
from campaigns.reports import campaign_report
from campaigns.why import CampaignNotFound
from dialer.cli import main
from tests.conftest import make_campaign

NOW = dt.datetime(2026, 6, 10, 16, tzinfo=dt.UTC)  # 12:00 in New York
MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


@pytest.fixture
def recovery(engine: Engine, session: Session) -> dict[str, Any]:
    """A collections campaign's month, and another campaign's calls that must not count."""
    mine = make_campaign(session, "Recovery", kind="collections")
    theirs = make_campaign(session, "Other")
    leads = []
    for i, (campaign, status) in enumerate(
        [(mine, "new"), (mine, "recycled"), (mine, "recycled"), (mine, "done"), (theirs, "new")]
    ):
        lead = Lead(
            campaign_id=campaign.id,
            list_id=campaign.lists[0].id,
            phone_e164=f"+1212555{i:04d}",
            phone_type="fixed_line",
            region="US",
            status=status,
        )
        session.add(lead)
        leads.append(lead)
    session.commit()

    def attempt(lead: Lead, ago: dt.timedelta, outcome: str | None, **flags: bool) -> dict:
        return {
            "lead_id": lead.id,
            "campaign_id": lead.campaign_id,
            "phone_e164": lead.phone_e164,
            "started_at": NOW - ago,
            "outcome": outcome,
            "abandoned": flags.get("abandoned", False),
            "conversation": flags.get("conversation", False),
        }

    a, b, c, d, other = leads
    rows = [
        # Today, in UTC and in New York.
        attempt(a, HOUR, "human", conversation=True),
        attempt(a, 2 * HOUR, "human", abandoned=True),
        attempt(b, 3 * HOUR, "machine"),
        attempt(b, 4 * HOUR, "no_answer"),
        attempt(c, 10 * MINUTE, None),  # still up
        # 01:00 UTC today: 21:00 yesterday in New York.
        attempt(c, 15 * HOUR, "busy"),
        # Yesterday, and within the month; an abandon the line recorded as such.
        attempt(d, 20 * HOUR, "human"),
        attempt(d, 29 * DAY, "abandoned", abandoned=True),
        attempt(d, 29 * DAY, "no_answer"),
        # The window's edge (the hopper counts attempts started after it) and beyond.
        attempt(d, ABANDON_WINDOW, "human", abandoned=True),
        attempt(d, 31 * DAY, "human"),
        # Another campaign's.
        attempt(other, HOUR, "human", abandoned=True),
    ]
    with engine.begin() as connection:
        connection.execute(insert(CallAttempt), rows)
        dispositions = [
            (a, "PTP", HOUR, Decimal("150.00")),
            (a, "RPC", 2 * HOUR, None),
            (b, "PTP", 10 * DAY, Decimal("99.99")),
            (b, "PTP", 12 * DAY, Decimal("0.01")),
            (d, "PTP", 40 * DAY, Decimal("500.00")),
            (other, "SALE", HOUR, None),
        ]
        connection.execute(
            insert(Disposition),
            [
                {
                    "lead_id": lead.id,
                    "code": code,
                    "created_at": NOW - ago,
                    "promise_amount": amount,
                    "notes": "",
                }
                for lead, code, ago, amount in dispositions
            ],
        )
    return {"campaign": mine}


def test_counts_today_and_over_the_rolling_30_days(engine: Engine, recovery) -> None:  # type: ignore[no-untyped-def]
    report = campaign_report(engine, "Recovery", NOW)
    today, window = report.today, report.window
    assert today.since == dt.datetime(2026, 6, 10, tzinfo=dt.UTC)
    assert today.by_outcome == {
        "human": 2,
        "machine": 1,
        "no_answer": 1,
        "in_progress": 1,
        "busy": 1,
    }
    assert window.by_outcome == {
        "human": 3,
        "machine": 1,
        "no_answer": 2,
        "in_progress": 1,
        "busy": 1,
        "abandoned": 1,
    }
    assert (today.attempts, window.attempts) == (6, 9)
    # Live: a person answered, connected or abandoned (the hopper's definition).
    assert (today.live_answers, today.abandons) == (2, 1)
    assert (window.live_answers, window.abandons) == (4, 2)
    assert window.abandon_rate == 0.5
    assert today.dispositions == {"PTP": 1, "RPC": 1}
    assert window.dispositions == {"PTP": 3, "RPC": 1}
    assert (today.promises, today.promised) == (1, Decimal("150.00"))
    assert (window.promises, window.promised) == (3, Decimal("250.00"))
    assert report.leads_by_status == {"new": 1, "recycled": 2, "done": 1}


def test_today_starts_at_midnight_where_the_manager_is(engine: Engine, recovery) -> None:  # type: ignore[no-untyped-def]
    report = campaign_report(engine, "Recovery", NOW, ZoneInfo("America/New_York"))
    assert report.today.since == dt.datetime(2026, 6, 10, 4, tzinfo=dt.UTC)
    assert "busy" not in report.today.by_outcome
    assert report.today.attempts == 5


def test_the_30_days_are_the_hoppers(engine: Engine, recovery) -> None:  # type: ignore[no-untyped-def]
    postgres = engine.dialect.name == "postgresql"
    with engine.connect() as connection:
        hopper = connection.execute(
            _context_statement(True, postgres),
            {
                "campaign": recovery["campaign"].id,
                "now": NOW,
                "node": "report",
                "limit_callbacks": 0,
                **window_parameters(NOW),
            },
        ).first()
        connection.rollback()
    assert hopper is not None
    report = campaign_report(engine, "Recovery", NOW)
    assert (report.window.live_answers, report.window.abandons) == (hopper.live, hopper.abandoned)


def test_an_unknown_campaign_is_named(engine: Engine) -> None:
    with pytest.raises(CampaignNotFound, match="no campaign named 'Nope'"):
        campaign_report(engine, "Nope", NOW)


def test_cli_prints_a_table_or_json(db_url: str, recovery, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", db_url)
    args = ["report", "campaign", "Recovery", "--at", NOW.isoformat()]
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["today"]["attempts"] == 6 and report["last_30_days"]["abandon_rate"] == 0.5
    assert report["last_30_days"]["promises_to_pay"] == {"count": 3, "amount": "250.00"}
    assert report["leads_by_status"] == {"done": 1, "new": 1, "recycled": 2}
    result = CliRunner().invoke(main, [*args, "--tz", "America/New_York"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Campaign 'Recovery' (collections) at 2026-06-10 12:00 EDT"
    assert lines[2].split() == ["attempts", "5", "9"]
    assert any(
        line.split() == ["abandon", "rate", "50.00%", "50.00%", "(cap", "3.00%)"] for line in lines
    )
    assert any(line.split() == ["amount", "promised", "150.00", "250.00"] for line in lines)
    result = CliRunner().invoke(main, [*args, "--tz", "Mars/Olympus"])
    assert result.exit_code != 0 and "'Mars/Olympus' is not a time zone" in result.output
    result = CliRunner().invoke(main, ["report", "campaign", "Nope"])
    assert result.exit_code != 0 and "no campaign named 'Nope'" in result.output


def test_a_campaign_with_no_calls_reports_zeros(engine: Engine, session: Session) -> None:
    make_campaign(session, "Quiet")
    report = campaign_report(engine, "Quiet", NOW)
    assert report.window.attempts == 0 and report.window.abandon_rate is None
    assert "abandon rate" in report.text() and "promises" not in report.text()
    assert session.scalars(select(Lead)).all() == []


def test_regulation_f_counters_sum_the_weeks_calls_per_debt(
    engine: Engine, session: Session, recovery: dict[str, Any]
) -> None:
    from campaigns.reporting import reg_f_counters

    campaign = recovery["campaign"]
    # One debt called 7 times this week (at the cap), one 8 times (a breach), by account.
    for account, calls in (("ACC-7", 7), ("ACC-8", 8)):
        lead = Lead(
            campaign_id=campaign.id,
            list_id=campaign.lists[0].id,
            phone_e164=f"+1212666{calls:04d}",
            phone_type="fixed_line",
            region="US",
            account_ref=account,
        )
        session.add(lead)
        session.flush()
        session.add_all(
            CallAttempt(
                lead_id=lead.id,
                campaign_id=campaign.id,
                phone_e164=lead.phone_e164,
                account_ref=account,
                started_at=NOW - (n + 1) * 12 * HOUR,
                outcome="no_answer",
            )
            for n in range(calls)
        )
    session.commit()
    [line] = reg_f_counters(session, [campaign], NOW)
    # This week: a, b and c twice (a talked), d once (its other calls are older), the two
    # accounts; the other campaign's call is not counted.
    assert (line.debts, line.attempts, line.conversations) == (6, 7 + 7 + 8, 1)
    assert line.by_calls == {"1": 1, "2": 3, "3": 0, "4": 0, "5": 0, "6": 0, "7": 1, "8+": 1}
    assert (line.at_cap, line.over_cap) == (1, 1)


def test_agentless_calls_and_appointments_are_counted(engine: Engine, session: Session) -> None:
    """A reminders campaign: what its flow made of each call (a call without a result, a call
    of another campaign and one older than the window are not counted), and its appointments
    by status."""
    reminders = make_campaign(session, "Reminders", kind="appointment")
    other = make_campaign(session, "Survey", kind="survey")
    leads = []
    for i, campaign in enumerate([reminders, reminders, reminders, other]):
        lead = Lead(
            campaign_id=campaign.id,
            list_id=campaign.lists[0].id,
            phone_e164=f"+1212555{i:04d}",
            phone_type="fixed_line",
            region="US",
        )
        session.add(lead)
        leads.append(lead)
    session.commit()
    [slot] = appointments.add_slots(session, reminders, NOW + DAY, 1, capacity=5)
    for lead in leads[:3]:
        appointments.book(session, reminders.id, lead.id, slot.id)
    session.commit()
    first = session.scalars(select(Appointment).where(Appointment.lead_id == leads[0].id)).one()
    first.status = "confirmed"
    session.commit()
    calls = [
        (leads[0], HOUR, "confirmed"),
        (leads[1], 2 * HOUR, "no_input"),
        (leads[1], 2 * DAY, "no_input"),
        (leads[2], 3 * HOUR, None),
        (leads[2], 31 * DAY, "cancelled"),
        (leads[3], HOUR, "completed"),
    ]
    with engine.begin() as connection:
        connection.execute(
            insert(CallAttempt),
            [
                {
                    "lead_id": lead.id,
                    "campaign_id": lead.campaign_id,
                    "phone_e164": lead.phone_e164,
                    "started_at": NOW - ago,
                    "outcome": "human",
                    "ivr_result": result,
                }
                for lead, ago, result in calls
            ],
        )
    report = campaign_report(engine, "Reminders", NOW)
    assert report.today.ivr_results == {"confirmed": 1, "no_input": 1}
    assert report.window.ivr_results == {"confirmed": 1, "no_input": 2}
    assert report.appointments_by_status == {"booked": 2, "confirmed": 1}
    text = report.text()
    assert "agentless calls                    2           3" in text
    assert "appointments by status: booked 2, confirmed 1" in text
    figures = report.as_json()
    assert figures["last_30_days"]["ivr_results"] == {"confirmed": 1, "no_input": 2}
    assert figures["appointments_by_status"] == {"booked": 2, "confirmed": 1}
