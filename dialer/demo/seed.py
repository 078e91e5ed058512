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

from campaigns import appointments, callerids, surveys
from campaigns.imports import import_leads
from campaigns.manage import add_agent, create_campaign, steer
from campaigns.models import Appointment, Campaign, Lead, utcnow

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
# The agent campaigns' caller-ID pools: New York's leads see a 212 number, Chicago's a 312, Los
# Angeles' (213) one of California (415); Denver, Honolulu and abroad the campaign's own.
CALLER_ID_POOL = (("+12125550101", 400), ("+13125550101", 400), ("+14155550101", 200))
FIRST_NAMES = ("Ana", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jon")
# The other kinds, each working beside the telemarketing campaign on the same carrier: an
# agentless survey, agentless appointment reminders, and collections with agents of their own.
# Their leads' numbers start further on, so no number is in two campaigns.
DEMO_SURVEY = "Demo survey"
DEMO_REMINDERS = "Demo reminders"
DEMO_COLLECTIONS = "Demo collections"
COLLECTIONS_AGENTS = 2
SURVEY = surveys.SurveyDefinition(
    (
        surveys.Question(
            "q1",
            "On a scale of 1 to 5, how happy are you with your energy supplier?",
            "12345",
            {"1": "q2", "2": "q2"},
            "q3",
        ),
        surveys.Question(
            "q2", "What bothers you most? 1 for the price, 2 for the service, 3 for billing.", "123"
        ),
        surveys.Question("q3", "Would you like a call from an advisor? 1 for yes, 2 for no.", "12"),
    ),
    intro="Hello, this is a one minute survey on behalf of {seller}.",
    end_message="Thank you for your answers. Goodbye.",
)
COLLECTIONS_SCRIPT = (
    "Hello, may I speak with {first_name} {last_name}? This is {agent} from {seller} about "
    "account {account_ref}."
)
# The collections campaign leaves this on answering machines: Regulation F's limited-content
# message (12 CFR 1006.2(j)), which names a person to call back and a number, and no debt.
COLLECTIONS_VOICEMAIL = (
    "Hello, this is Sam Carter calling. Please call me back at {callback}. Thank you."
)


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
    people. `seed_kinds` adds the other kinds' campaigns."""
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
        _caller_id_pool(session, campaign)
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


def _caller_id_pool(session: Session, campaign: Campaign) -> None:
    """The demo pool, for a campaign whose pool is empty."""
    if not callerids.pool(session, campaign.id):
        for number, daily_cap in CALLER_ID_POOL:
            callerids.add(session, campaign, number, daily_cap)


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


def _campaign(session: Session, name: str, kind: str, trunk: str, **settings: object) -> Campaign:
    campaign = session.scalar(select(Campaign).where(Campaign.name == name))
    if campaign is None:
        campaign = create_campaign(
            session,
            name,
            kind,
            trunk_name=trunk,
            caller_id="+12125550100",
            seller_name="Demo Energy",
            callback_number="+12125550199",
            calling_days=list(range(7)),
            calling_start="08:00",
            calling_end="21:00",
            **settings,
        )
    campaign.trunk_name = trunk
    return campaign


def _left(session: Session, campaign_id: int) -> int:
    return (
        session.scalar(
            select(func.count()).where(
                Lead.campaign_id == campaign_id, Lead.status.in_(("new", "recycled"))
            )
        )
        or 0
    )


def seed_kinds(
    engine: Engine, phone_uri: Callable[[str], str], trunk: str, *, leads: int = 80
) -> tuple[dict[str, int], str]:
    """The survey, reminders and collections campaigns (created once, started), with leads
    when fewer than twenty are left: the survey's questions, the reminders' calendar with each
    lead's appointment, the collections' accounts and agents. Returns their ids by name and
    what was done."""
    said = []
    ids: dict[str, int] = {}
    with Session(engine) as session:
        survey = _campaign(
            session, DEMO_SURVEY, "survey", trunk, dial_mode="progressive", agentless=True,
            max_lines=4,
        )  # fmt: skip
        if surveys.load(session, survey.id) is None:
            surveys.save(session, survey, SURVEY)
        reminders = _campaign(
            session, DEMO_REMINDERS, "appointment", trunk, dial_mode="progressive",
            agentless=True, max_lines=3,
        )  # fmt: skip
        collections = _campaign(
            session, DEMO_COLLECTIONS, "collections", trunk, dial_mode="progressive",
            script=COLLECTIONS_SCRIPT, amd_action="message",
            voicemail_message=COLLECTIONS_VOICEMAIL,
        )  # fmt: skip
        _caller_id_pool(session, collections)
        for i in range(1, COLLECTIONS_AGENTS + 1):
            add_agent(session, f"collector{i}", phone_uri(f"collector{i}"), collections)
        ids = {
            DEMO_SURVEY: survey.id,
            DEMO_REMINDERS: reminders.id,
            DEMO_COLLECTIONS: collections.id,
        }
        session.commit()
        counts = {}
        for name, campaign_id in ids.items():
            total = session.scalar(select(func.count()).where(Lead.campaign_id == campaign_id))
            counts[name] = (_left(session, campaign_id), total or 0)
    for offset, name in enumerate(ids, 1):
        left, total = counts[name]
        if left < 20:
            start = 100_000 * offset + total
            imported = _import_kind(engine, name, leads, start)
            said.append(f"{imported} leads for {name!r}")
    _book_reminders(engine, ids[DEMO_REMINDERS])
    for campaign_id in ids.values():
        with Session(engine) as session:
            steer(session, session.get_one(Campaign, campaign_id), "start")
    said.append("survey, reminders and collections campaigns started")
    return ids, ", ".join(said)


def _import_kind(engine: Engine, name: str, count: int, start: int) -> int:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "demo-leads.csv"
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["first_name", "last_name", "phone", "consent", "account", "balance"])
            for i, (phone, _, _) in enumerate(_numbers(list(ZONES), count, start)):
                writer.writerow(
                    [FIRST_NAMES[i % len(FIRST_NAMES)], f"Lead{start + i}", phone, "yes",
                     f"AC-{start + i}", f"{100 + (start + i) % 900}.00"]
                )  # fmt: skip
        summary = import_leads(engine, path, name, list_name=f"demo {start}")
    return summary.imported


def _book_reminders(engine: Engine, campaign_id: int) -> None:
    """A calendar for the next days (09:00-17:00 UTC, every 30 minutes, two places each) and
    an appointment for every lead that has none, so each reminder has something to say."""
    with Session(engine) as session:
        campaign = session.get_one(Campaign, campaign_id)
        tomorrow = (utcnow() + dt.timedelta(days=1)).replace(
            hour=9, minute=0, second=0, microsecond=0
        )
        for day in range(5):
            appointments.add_slots(
                session, campaign, tomorrow + dt.timedelta(days=day), 16, capacity=2
            )
        booked = select(Appointment.lead_id).where(Appointment.campaign_id == campaign_id)
        waiting = session.scalars(
            select(Lead.id).where(Lead.campaign_id == campaign_id, Lead.id.not_in(booked))
        ).all()
        free = appointments.free_slots(session, campaign_id, utcnow(), limit=len(waiting) + 1)
        places = [slot.id for slot in free for _ in range(slot.capacity - slot.booked)]
        for lead_id, slot_id in zip(waiting, places, strict=False):
            appointments.book(session, campaign_id, lead_id, slot_id)
        session.commit()
