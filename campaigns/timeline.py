"""A campaign's figures over time, read from the hourly sums the scheduler keeps
(`campaign_hours`, rolled up every minute, the current hour included): the dashboard's
charts. One read of at most 30 days x 24 rows per campaign, never the attempts themselves, so a
page stays fast over months of calls.

`read_hours` is the only I/O; the series are pure functions of its rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.models import OUTCOME_COLUMNS, CallAttempt, CampaignHour
from campaigns.rollups import HOUR, floor_hour

DAY = dt.timedelta(days=1)
# The abandon rule's window (47 CFR 64.1200(a)(7)): the trend chart shows as many days.
TREND_DAYS = 30
# What an answered call became, in the order the outcome chart stacks them; `live` counts a
# person's answer whatever came of it, so the parts are split out of it.
OUTCOME_PARTS = (
    ("connected", "Talked to an agent"),
    ("abandoned", "Abandoned (no agent in 2 s)"),
    ("hung_up", "Person hung up in the greeting"),
    ("machine", "Answering machine"),
    ("machine_message", "Message left on a machine"),
    ("busy", "Busy"),
    ("no_answer", "No answer"),
    ("invalid", "Number not in service"),
    ("congestion", "Carrier congestion"),
    ("failed", "Failed"),
)


@dataclass(frozen=True)
class HourFigures:
    """One campaign's attempts that started in one hour (UTC), as `campaign_hours` sums them."""

    hour: dt.datetime
    attempts: int = 0
    human: int = 0
    machine: int = 0
    machine_message: int = 0
    busy: int = 0
    no_answer: int = 0
    invalid: int = 0
    congestion: int = 0
    failed: int = 0
    live: int = 0
    abandoned: int = 0
    connected: int = 0
    talk_s: float = 0.0


COLUMNS = tuple(f.name for f in fields(HourFigures))


@dataclass(frozen=True)
class DayFigures:
    day: dt.date
    live: int
    abandoned: int

    @property
    def abandon_rate(self) -> float | None:
        return self.abandoned / self.live if self.live else None


def read_hours(
    session: Session, campaign_ids: Sequence[int], since: dt.datetime
) -> dict[int, list[HourFigures]]:
    """Each campaign's hourly sums from `since` on, oldest first (hours without a call have no
    row)."""
    found: dict[int, list[HourFigures]] = {campaign_id: [] for campaign_id in campaign_ids}
    if not campaign_ids:
        return found
    columns = [getattr(CampaignHour, name) for name in COLUMNS]
    rows = session.execute(
        select(CampaignHour.campaign_id, *columns)
        .where(CampaignHour.campaign_id.in_(campaign_ids), CampaignHour.hour >= since)
        .order_by(CampaignHour.campaign_id, CampaignHour.hour)
    )
    for campaign_id, *values in rows:
        found[campaign_id].append(HourFigures(*values))
    return found


def contacts_last_hour(
    session: Session, campaign_ids: Sequence[int], now: dt.datetime
) -> dict[int, int]:
    """Calls bridged to an agent in the 60 minutes before `now`, per campaign: contacts per
    hour as the floor feels it now. Reads attempts that started in the last two hours only
    (a conversation that began earlier and is still on counted when it was bridged)."""
    if not campaign_ids:
        return {}
    rows = session.execute(
        select(CallAttempt.campaign_id, func.count())
        .where(
            CallAttempt.campaign_id.in_(campaign_ids),
            CallAttempt.started_at >= now - 2 * HOUR,
            CallAttempt.bridged_at >= now - HOUR,
        )
        .group_by(CallAttempt.campaign_id)
    )
    return {campaign_id: int(count) for campaign_id, count in rows}


# -- pure series


def last_hours(rows: Iterable[HourFigures], now: dt.datetime, hours: int = 24) -> list[HourFigures]:
    """One entry per hour for the `hours` hours up to and including the current one, oldest
    first; an hour without a row is all zeros."""
    current = floor_hour(now)
    first = current - (hours - 1) * HOUR
    by_hour = {floor_hour(row.hour): row for row in rows if row.hour >= first}
    return [by_hour.get(first + i * HOUR, HourFigures(first + i * HOUR)) for i in range(hours)]


def outcome_counts(rows: Iterable[HourFigures]) -> dict[str, int]:
    """What the attempts of these hours became, split so that the parts add up to the
    attempts: a person's answer was connected, abandoned or hung up during the greeting."""
    counts = dict.fromkeys((name for name, _ in OUTCOME_PARTS), 0)
    for row in rows:
        connected = min(row.connected, row.live)
        abandoned = min(row.abandoned, row.live - connected)
        counts["connected"] += connected
        counts["abandoned"] += abandoned
        counts["hung_up"] += row.live - connected - abandoned
        for name in OUTCOME_COLUMNS:
            if name == "human":  # counted above as connected, abandoned or hung up
                continue
            counts[name] += getattr(row, name)
    return counts


def daily_abandons(
    rows: Iterable[HourFigures], now: dt.datetime, zone: ZoneInfo, days: int = TREND_DAYS
) -> list[DayFigures]:
    """Live answers and abandons per calendar day in `zone`, for the `days` days up to today
    (today included), oldest first."""
    today = now.astimezone(zone).date()
    first = today - dt.timedelta(days=days - 1)
    live: dict[dt.date, int] = {}
    abandoned: dict[dt.date, int] = {}
    for row in rows:
        day = row.hour.astimezone(zone).date()
        if first <= day <= today:
            live[day] = live.get(day, 0) + row.live
            abandoned[day] = abandoned.get(day, 0) + row.abandoned
    return [
        DayFigures(day, live.get(day, 0), abandoned.get(day, 0))
        for day in (first + dt.timedelta(days=i) for i in range(days))
    ]
