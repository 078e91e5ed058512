"""The demo's campaign, agents and leads, so a newcomer sees calls at once.

Calls may only be placed between 08:00 and 21:00 in the called party's time zone, and a demo
can be started at any hour: the demo's leads are spread over time zones around the world, so
some of them are always inside their calling window. The numbers are made up; the demo's
carrier is a SIPp on this machine, and no call ever leaves it.
"""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from campaigns.imports import import_leads
from campaigns.manage import add_agent, create_campaign, steer
from campaigns.models import Campaign, Lead

DEMO_CAMPAIGN = "Demo telemarketing"
DEMO_AGENTS = 6
# (time zone, region, number prefix, digits after it): numbers of these forms are valid where
# they are (the prefix holds a subscriber part's valid first digit), and phonenumbers places
# them in that zone.
ZONES = (
    ("America/New_York", "US", "+12122", 6),
    ("America/Chicago", "US", "+13122", 6),
    ("America/Denver", "US", "+13032", 6),
    ("America/Los_Angeles", "US", "+12132", 6),
    ("Pacific/Honolulu", "US", "+18082", 6),
    ("Europe/London", "GB", "+44207", 7),
    ("Asia/Tokyo", "JP", "+8135", 7),
    ("Australia/Sydney", "AU", "+6129", 7),
)
SCRIPT = (
    "Hi {first_name}, this is {agent} calling for {seller}. We are offering our customers a "
    "free review of their energy plan this month. Do you have two minutes?"
)
FIRST_NAMES = ("Ana", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jon")


def zones_in_hours(
    now: dt.datetime, earliest: dt.time = dt.time(8, 30), latest: dt.time = dt.time(20, 30)
) -> list[tuple[str, str, str, int]]:
    """The demo zones whose local time is inside the calling window now, with a margin."""
    return [
        entry for entry in ZONES if earliest <= now.astimezone(ZoneInfo(entry[0])).time() <= latest
    ]


def numbers_in_hours(count: int, now: dt.datetime, start: int = 0) -> list[tuple[str, str, str]]:
    """`count` distinct numbers (E.164, region, zone) spread over the zones in hours now."""
    zones = zones_in_hours(now) or list(ZONES)
    return list(_numbers(zones, count, start))


def _numbers(
    zones: list[tuple[str, str, str, int]], count: int, start: int
) -> Iterator[tuple[str, str, str]]:
    for i in range(start, start + count):
        zone, region, prefix, digits = zones[i % len(zones)]
        yield f"{prefix}{i // len(zones):0{digits}d}", region, zone


def seed_demo(
    engine: Engine,
    phone_uri: Callable[[str], str],
    trunk: str,
    *,
    leads_per_zone: int = 60,
) -> tuple[int, str]:
    """The demo campaign (created once, started), its agents with their phones at
    `phone_uri(name)` (the simulated phones' port changes at every start), and more leads when
    fewer than a hundred are left to dial. Returns the campaign's id and what was done, for
    people."""
    with Session(engine) as session:
        campaign = session.scalar(select(Campaign).where(Campaign.name == DEMO_CAMPAIGN))
        said = []
        if campaign is None:
            campaign = create_campaign(
                session,
                DEMO_CAMPAIGN,
                "telemarketing",
                dial_mode="predictive",
                trunk_name=trunk,
                caller_id="+12125550100",
                seller_name="Demo Energy",
                callback_number="+12125550199",
                calling_days=list(range(7)),
                calling_start="08:00",
                calling_end="21:00",
                script=SCRIPT,
            )
            said.append(f"created campaign {DEMO_CAMPAIGN!r}")
        campaign.trunk_name = trunk
        for i in range(1, DEMO_AGENTS + 1):
            add_agent(session, f"demo{i}", phone_uri(f"demo{i}"), campaign)
        left = session.scalar(
            select(func.count()).where(
                Lead.campaign_id == campaign.id, Lead.status.in_(("new", "recycled"))
            )
        )
        total = session.scalar(select(func.count()).where(Lead.campaign_id == campaign.id))
        campaign_id = campaign.id
        session.commit()
    if (left or 0) < 100:
        imported = _import(engine, len(ZONES) * leads_per_zone, total or 0)
        said.append(f"{imported} leads imported in {len(ZONES)} time zones")
    with Session(engine) as session:
        steer(session, session.get_one(Campaign, campaign_id), "start")
    said.append(f"{DEMO_AGENTS} agents, campaign started")
    return campaign_id, f"demo campaign {DEMO_CAMPAIGN!r}: " + ", ".join(said)


def _import(engine: Engine, count: int, start: int) -> int:
    """Through the CSV import a manager uses: numbers validated, time zones looked up."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "demo-leads.csv"
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["first_name", "last_name", "phone", "consent"])
            for i, (phone, _, _) in enumerate(_numbers(list(ZONES), count, start)):
                writer.writerow(
                    [FIRST_NAMES[i % len(FIRST_NAMES)], f"Lead{start + i}", phone, "yes"]
                )
        summary = import_leads(engine, path, DEMO_CAMPAIGN, list_name=f"demo {start}")
    return summary.imported
