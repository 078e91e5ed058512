"""The forecaster reads a campaign's own history and runs it through the simulator."""

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session

from campaigns.models import CallAttempt, Disposition, Lead
from dialer.cli import main
from dialer.forecast import CHOICES, CampaignStats, forecast, observed_stats
from tests.conftest import make_campaign

NOW = dt.datetime(2026, 6, 10, 16, tzinfo=dt.UTC)


def add_history(session: Session, campaign_id: int, list_id: int) -> None:
    """300 attempts: 20% persons talking 100-200 s with 30 s of wrap-up, 30% machines, the
    rest unanswered."""
    lead = Lead(
        campaign_id=campaign_id,
        list_id=list_id,
        phone_e164="+12125550123",
        phone_type="fixed_line",
        region="US",
    )
    session.add(lead)
    session.flush()
    for i in range(300):
        started = NOW - dt.timedelta(hours=2, minutes=i % 60)
        outcome = "human" if i % 5 == 0 else "machine" if i % 10 in (1, 2, 3) else "no_answer"
        answered = started + dt.timedelta(seconds=10) if outcome == "human" else None
        ended = answered + dt.timedelta(seconds=100 + i % 100) if answered else None
        attempt = CallAttempt(
            lead_id=lead.id,
            campaign_id=campaign_id,
            phone_e164=lead.phone_e164,
            started_at=started,
            answered_at=answered,
            ended_at=ended,
            outcome=outcome,
        )
        session.add(attempt)
        session.flush()
        if ended:
            session.add(
                Disposition(
                    attempt_id=attempt.id,
                    lead_id=lead.id,
                    code="SALE",
                    created_at=ended + dt.timedelta(seconds=30),
                )
            )
    session.commit()


def test_observed_statistics_come_from_the_campaign_history(session: Session) -> None:
    campaign = make_campaign(session)
    assert observed_stats(session, campaign.id, agents=4, now=NOW).attempts == 0
    add_history(session, campaign.id, campaign.lists[0].id)
    stats = observed_stats(session, campaign.id, agents=4, now=NOW)
    assert stats.attempts == 300
    assert stats.live_rate == pytest.approx(0.2)
    assert stats.machine_rate == pytest.approx(0.3)
    assert stats.talk_mean == pytest.approx(147.5)
    assert stats.wrap_mean == pytest.approx(30.0)


def test_dialer_forecast_prints_every_mode(
    session: Session, db_url: str, monkeypatch, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    campaign = make_campaign(session, trunk_name="carrier")
    monkeypatch.setenv("DATABASE_URL", db_url)
    sip = tmp_path / "sip.toml"
    sip.write_text('[trunks.carrier]\nhost = "127.0.0.1"\nmax_cps = 7\n', encoding="utf-8")
    monkeypatch.setenv("DIALER_SIP_CONFIG", str(sip))
    result = CliRunner().invoke(
        main, ["forecast", "--campaign", campaign.name, "--agents", "3", "--hours", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["stats"]["agents"] == 3 and report["stats"]["attempts"] == 0
    assert report["stats"]["calls_per_second"] == 7.0  # the campaign's trunk
    assert [row["mode"] for row in report["forecast"]] == [label for label, *_ in CHOICES]
    assert {"contacts_per_hour", "utilisation", "abandon_rate"} <= set(report["forecast"][0])
    missing = CliRunner().invoke(main, ["forecast", "--campaign", "nope"])
    assert missing.exit_code != 0 and "no campaign named 'nope'" in missing.output


def test_impossible_statistics_are_refused() -> None:
    with pytest.raises(ValueError, match="sum to <= 1"):
        CampaignStats(5, 0.6, 0.5, 0.0, 0.0, 100, 1, 20)


def test_each_mode_says_what_one_shift_may_give_by_chance() -> None:
    """The range holds the seeds' middle 80%: a short shift's few abandons spread widely
    around the pooled rate, a long one's less."""
    stats = CampaignStats(
        agents=20, live_rate=0.3, machine_rate=0.2, busy_rate=0.1, sit_rate=0.1,
        talk_mean=60, talk_cv=0.4, wrap_mean=10,
    )  # fmt: skip
    seeds = tuple(range(10))
    short = {row["mode"]: row for row in forecast(stats, 0.25, seeds)}
    long = {row["mode"]: row for row in forecast(stats, 2.0, seeds)}
    for rows in (short, long):
        for row in rows.values():
            low, high = row["abandon_rate_range"]
            assert 0 <= low <= high <= 1
            u_low, u_high = row["utilisation_range"]
            assert u_low <= row["utilisation"] <= u_high
    width = {
        name: rows["power 3"]["abandon_rate_range"][1] - rows["power 3"]["abandon_rate_range"][0]
        for name, rows in (("short", short), ("long", long))
    }
    assert width["short"] > width["long"] > 0
