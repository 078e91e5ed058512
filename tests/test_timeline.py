"""The series the dashboard's charts draw, from hourly sums (pure), and the one read of them."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from campaigns.models import CampaignHour
from campaigns.timeline import (
    HOUR,
    OUTCOME_PARTS,
    HourFigures,
    daily_abandons,
    floor_hour,
    last_hours,
    outcome_counts,
    read_hours,
)
from tests.conftest import make_campaign

NOW = dt.datetime(2026, 3, 8, 14, 25, tzinfo=dt.UTC)
counts = st.integers(min_value=0, max_value=500)


@st.composite
def hours(draw: st.DrawFn) -> HourFigures:
    """An hour as the rollup sums it: a person's answer is `human` (abandoned or not), and
    connected and abandoned ones are among them."""
    human = draw(counts)
    abandoned = draw(st.integers(0, human))
    connected = draw(st.integers(0, human - abandoned))
    others = {name: draw(counts) for name in ("machine", "busy", "no_answer", "invalid", "failed")}
    congestion = draw(counts)
    attempts = human + congestion + sum(others.values())
    offset = draw(st.integers(0, 24 * 40))
    return HourFigures(
        floor_hour(NOW) - offset * HOUR,
        attempts=attempts,
        human=human,
        congestion=congestion,
        live=human,
        abandoned=abandoned,
        connected=connected,
        **others,
    )


@given(st.lists(hours(), max_size=40))
def test_the_outcome_parts_add_up_to_the_attempts(rows: list[HourFigures]) -> None:
    parts = outcome_counts(rows)
    assert list(parts) == [name for name, _ in OUTCOME_PARTS]
    assert sum(parts.values()) == sum(row.attempts for row in rows)
    assert parts["connected"] + parts["abandoned"] + parts["hung_up"] == sum(r.live for r in rows)
    assert all(value >= 0 for value in parts.values())


@given(st.lists(hours(), max_size=40), st.sampled_from(["UTC", "Asia/Kolkata", "America/Denver"]))
def test_the_trend_has_thirty_days_ending_today_and_counts_each_hour_once(
    rows: list[HourFigures], zone_name: str
) -> None:
    zone = ZoneInfo(zone_name)
    days = daily_abandons(rows, NOW, zone)
    assert len(days) == 30 and days[-1].day == NOW.astimezone(zone).date()
    assert all(b.day - a.day == dt.timedelta(days=1) for a, b in itertools.pairwise(days))
    inside = [r for r in rows if r.hour.astimezone(zone).date() >= days[0].day]
    assert sum(d.live for d in days) == sum(r.live for r in inside)
    assert sum(d.abandoned for d in days) == sum(r.abandoned for r in inside)


def test_the_last_day_has_an_entry_for_every_hour_zeros_included() -> None:
    rows = [
        HourFigures(floor_hour(NOW) - 2 * HOUR, attempts=7),
        HourFigures(floor_hour(NOW) - 30 * HOUR, attempts=9),
    ]
    series = last_hours(rows, NOW)
    assert len(series) == 24 and series[-1].hour == floor_hour(NOW)
    assert [h.attempts for h in series if h.attempts] == [7]
    assert series[0].hour == floor_hour(NOW) - 23 * HOUR


def test_hours_are_read_per_campaign_oldest_first(session: Session) -> None:
    campaign = make_campaign(session)
    other = make_campaign(session, name="Other")
    for campaign_id, back, attempts in ((campaign.id, 1, 5), (campaign.id, 0, 6), (other.id, 0, 7)):
        session.add(
            CampaignHour(
                campaign_id=campaign_id, hour=floor_hour(NOW) - back * HOUR, attempts=attempts
            )
        )
    session.add(CampaignHour(campaign_id=campaign.id, hour=floor_hour(NOW) - 50 * HOUR, attempts=1))
    session.commit()
    found = read_hours(session, [campaign.id, other.id], NOW - 24 * HOUR)
    assert [h.attempts for h in found[campaign.id]] == [5, 6]
    assert [h.attempts for h in found[other.id]] == [7]
    assert found[campaign.id][0].hour.tzinfo is not None
    assert read_hours(session, [], NOW) == {}
