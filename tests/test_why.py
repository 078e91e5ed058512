"""'Why is nothing dialing?' against the gate, lead by lead: the explainer groups leads and asks
the gate once per group; these tests ask it for every lead and compare."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.orm import Session

from campaigns import dnc
from campaigns.compliance import (
    ABANDON_WINDOW,
    DIAL_MODE_KIND,
    AnswerLog,
    CampaignRules,
    DialHistory,
    LeadFacts,
    may_dial,
    next_dial_time,
)
from campaigns.hopper import Candidate, campaign_rules, histories, lead_facts
from campaigns.models import (
    ABANDONED,
    LIVE_ANSWER,
    Base,
    CallAttempt,
    Campaign,
    DncEntry,
    ImportRun,
    Lead,
    LeadList,
    RegFDebt,
)
from campaigns.why import (
    DATED_STATUSES,
    HOPPER_STATUSES,
    IN_FLIGHT_STATUSES,
    CampaignFacts,
    CampaignNotFound,
    Explanation,
    _groups,
    _tally,
    explain,
    why,
)
from tests.conftest import make_campaign

UTC = dt.UTC
NOON_NY = dt.datetime(2026, 6, 10, 16, tzinfo=UTC)  # a Wednesday, 12:00 in New York
MINUTE = dt.timedelta(minutes=1)
ZONE_SETS = [
    ("America/New_York",),
    ("America/Los_Angeles",),
    ("America/Chicago", "America/New_York"),
    ("Pacific/Honolulu",),
    ("Europe/London",),
    (),
]
PHONE_TYPES = ["fixed_line", "fixed_line_or_mobile", "mobile", "voip"]


def expected(
    campaign: CampaignFacts,
    leads: list[tuple[LeadFacts, DialHistory, str | None]],
    now: dt.datetime,
) -> tuple[dict[str, int], int, dict[str, dt.datetime]]:
    """Counts by reason, dialable leads and each reason's next instant, lead by lead."""
    counts: dict[str, int] = defaultdict(int)
    nexts: dict[str, dt.datetime] = {}
    dialable = 0
    for lead, history, hold in leads:
        if hold is not None:
            counts[hold] += 1
            continue
        window = DialHistory(
            on_dnc=history.on_dnc,
            dnc_detail=history.dnc_detail,
            number_dials=history.number_dials,
            debt_dials=history.debt_dials,
            last_debt_conversation=history.last_debt_conversation,
            last_abandon=history.last_abandon,
            window_live_answers=campaign.live_answers,
            window_abandons=campaign.abandons,
        )
        verdict = may_dial(lead, campaign.rules, now, window, campaign.kind)
        if verdict.allowed:
            if campaign.status == "active":
                dialable += 1
            else:
                counts["campaign_not_active"] += 1
            continue
        reason = verdict.reason or ""
        counts[reason] += 1
        at = next_dial_time(lead, campaign.rules, now, window, campaign.kind, campaign.answers)
        if at is not None and (reason not in nexts or at < nexts[reason]):
            nexts[reason] = at
    return dict(counts), dialable, nexts


def compare(
    explanation: Explanation, counts: dict[str, int], dialable: int, nexts: dict[str, Any]
) -> None:
    got = {r.reason: r.leads for r in explanation.refused}
    for quiet in ("not_dialable_status", "in_flight"):
        if quiet not in counts:
            got.pop(quiet, None)
    assert got == counts
    assert explanation.dialable == dialable
    assert {r.reason: r.next_at for r in explanation.refused if r.next_at} == nexts
    assert explanation.next_dialable_at == (min(nexts.values()) if nexts else None)


# -- The pure core: groups as the shell makes them, against the gate lead by lead -------------


@st.composite
def rules(draw: st.DrawFn) -> CampaignRules:
    start = draw(st.sampled_from([8, 9, 12, 20]))
    return CampaignRules(
        kind=draw(st.sampled_from(["telemarketing", "collections"])),
        calling_days=draw(st.frozensets(st.integers(0, 6), min_size=1)),
        calling_start=dt.time(start),
        calling_end=dt.time(draw(st.integers(start + 1, 23))),
        holidays=draw(st.frozensets(st.just(NOON_NY.date()), max_size=1)),
        max_attempts=draw(st.integers(1, 6)),
        uk_mode=draw(st.booleans()),
    )


@st.composite
def plain_leads(draw: st.DrawFn, now: dt.datetime) -> tuple[LeadFacts, bool]:
    """A lead with no dial history that matters, and whether it is on a do-not-call list."""
    lead = LeadFacts(
        phone_e164="",
        phone_type=draw(st.sampled_from(PHONE_TYPES)),
        time_zones=draw(st.sampled_from(ZONE_SETS)),
        state=draw(st.sampled_from([None, "NY", "FL", "OK"])),
        status=draw(st.sampled_from(HOPPER_STATUSES)),
        attempts=draw(st.integers(0, 7)),
        next_dial_at=draw(
            st.none() | st.integers(-3 * 24 * 60, 3 * 24 * 60).map(lambda m: now + m * MINUTE)
        ),
        consent_automated=draw(st.booleans()),
    )
    return lead, draw(st.booleans())


@st.composite
def answer_logs(draw: st.DrawFn, now: dt.datetime) -> AnswerLog:
    answers = draw(st.lists(st.tuples(st.integers(0, 30 * 24 * 60 - 1), st.booleans())))
    return AnswerLog(tuple((now - m * MINUTE, abandoned) for m, abandoned in answers))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_groups_reach_the_verdict_and_the_next_instant_of_each_of_their_leads(data) -> None:  # type: ignore[no-untyped-def]
    now = NOON_NY + data.draw(st.integers(-12 * 60, 12 * 60)) * MINUTE
    log = data.draw(answer_logs(now))
    live, abandons = log.counts(now)
    campaign = CampaignFacts(
        name="c",
        status=data.draw(st.sampled_from(["active", "active", "paused"])),
        dial_mode=data.draw(st.sampled_from(sorted(DIAL_MODE_KIND))),
        rules=data.draw(rules()),
        live_answers=live,
        abandons=abandons,
        answers=log,
    )
    leads = data.draw(st.lists(plain_leads(now), max_size=40))
    groups = []
    for on_dnc in (False, True):
        rows = [
            SimpleNamespace(
                status=lead.status,
                zones=json.dumps(list(lead.time_zones)),
                phone_type=lead.phone_type,
                consent_automated=lead.consent_automated,
                state=lead.state,
                attempts=lead.attempts,
                next_dial_at=lead.next_dial_at,
            )
            for lead, listed in leads
            if listed == on_dnc
        ]
        for counted in _tally(rows, now):
            groups += _groups(counted, now, DialHistory(on_dnc=on_dnc))
    by_status: dict[str, int] = defaultdict(int)
    for lead, _ in leads:
        by_status[lead.status] += 1
    explanation = explain(campaign, by_status, groups, now)
    one_by_one = [
        (
            lead,
            DialHistory(on_dnc=listed),
            "no_dial_time" if lead.status in DATED_STATUSES and lead.next_dial_at is None else None,
        )
        for lead, listed in leads
    ]
    compare(explanation, *expected(campaign, one_by_one, now))
    assert explanation.leads == len(leads)
    assert explanation.dialable + sum(r.leads for r in explanation.refused) == len(leads)


# -- The shell: the database's leads, attempts and lists, against the hopper's own reading ----

STATUSES = [*HOPPER_STATUSES, *HOPPER_STATUSES, "claimed", "done", "dnc", "invalid"]
PHONES = [f"+1212555{i:04d}" for i in range(30)]
ACCOUNTS = [None, None, "A-1", "A-2", "A-3"]


@st.composite
def databases(draw: st.DrawFn) -> dict[str, Any]:
    """A campaign, another one sharing numbers and debts, their leads, attempts over the last
    month and do-not-call entries."""
    now = NOON_NY + draw(st.integers(-10 * 60, 10 * 60)) * MINUTE
    phones = draw(st.lists(st.sampled_from(PHONES), unique=True, max_size=25))
    leads = [
        {
            "phone_e164": phone,
            "phone_type": draw(st.sampled_from(PHONE_TYPES)),
            "time_zones": list(draw(st.sampled_from(ZONE_SETS))),
            "state": draw(st.sampled_from([None, "NY", "FL", "OK"])),
            "status": draw(st.sampled_from(STATUSES)),
            "attempts": draw(st.integers(0, 7)),
            "next_dial_at": draw(
                st.none() | st.integers(-2 * 24 * 60, 2 * 24 * 60).map(lambda m: now + m * MINUTE)
            ),
            "consent_automated": draw(st.booleans()),
            "account_ref": draw(st.sampled_from(ACCOUNTS)),
            "other_list": draw(st.integers(0, 5)) == 0,
            "unfinished": draw(st.integers(0, 7)) == 0,
        }
        for phone in phones
    ]
    others = draw(st.lists(st.sampled_from(PHONES), unique=True, max_size=6))
    attempts = [
        {
            "mine": draw(st.booleans()),
            "pick": draw(st.integers(0, 1000)),
            "minutes_ago": draw(
                st.sampled_from([0, 30, 23 * 60, 24 * 60, 3 * 24 * 60, 7 * 24 * 60])
                | st.integers(0, 31 * 24 * 60)
            ),
            "outcome": draw(st.sampled_from(["human", "machine", "no_answer", "busy"])),
            "abandoned": draw(st.integers(0, 3)) == 0,
            "conversation": draw(st.integers(0, 3)) == 0,
        }
        for _ in range(draw(st.integers(0, 40)))
    ]
    listed = [
        {
            "phone_e164": draw(st.sampled_from(PHONES)),
            "scope": draw(st.sampled_from(["global", "mine", "theirs"])),
            "expired": draw(st.booleans()),
        }
        for _ in range(draw(st.integers(0, 5)))
    ]
    campaign = {
        "kind": draw(st.sampled_from(["telemarketing", "collections"])),
        "dial_mode": draw(st.sampled_from(["predictive", "progressive", "preview", "power"])),
        "status": draw(st.sampled_from(["active", "active", "paused"])),
        "uk_mode": draw(st.booleans()),
        "max_attempts": draw(st.integers(1, 6)),
        "calling_days": sorted(draw(st.frozensets(st.integers(0, 6), min_size=1))),
        "calling_start": draw(st.sampled_from(["08:00", "09:00", "13:00"])),
        "calling_end": draw(st.sampled_from(["17:00", "20:00", "21:00"])),
        "holidays": draw(st.sampled_from([[], [now.date().isoformat()]])),
        "abandon_target": draw(st.sampled_from([0.01, 0.03])),
    }
    return {
        "now": now,
        "campaign": campaign,
        "leads": leads,
        "others": others,
        "attempts": attempts,
        "listed": listed,
    }


def load(engine: Engine, data: dict[str, Any]) -> None:
    now = data["now"]
    with Session(engine) as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(delete(table))
        session.commit()
        mine = make_campaign(session, "mine", **data["campaign"])
        theirs = make_campaign(session, "theirs", kind="collections")
        disabled = LeadList(campaign_id=mine.id, name="disabled", active=False)
        session.add(disabled)
        session.flush()
        running = ImportRun(
            campaign_id=mine.id, list_id=mine.lists[0].id, filename="x.csv", status="running"
        )
        session.add(running)
        session.commit()
        ids = (mine.id, theirs.id, mine.lists[0].id, disabled.id, running.id, theirs.lists[0].id)
    mine_id, theirs_id, list_id, disabled_id, import_id, their_list = ids
    rows = []
    for lead in data["leads"]:
        row = {k: v for k, v in lead.items() if k not in ("other_list", "unfinished")}
        row.update(
            campaign_id=mine_id,
            list_id=disabled_id if lead["other_list"] else list_id,
            import_id=import_id if lead["unfinished"] else None,
            region="US",
            custom_fields={},
        )
        rows.append(row)
    by_phone = {lead["phone_e164"]: lead for lead in data["leads"]}
    for phone in data["others"]:
        rows.append(
            {
                "campaign_id": theirs_id,
                "list_id": their_list,
                "import_id": None,
                "phone_e164": phone,
                "phone_type": "fixed_line",
                "region": "US",
                "state": None,
                "time_zones": ["America/New_York"],
                "status": "recycled",
                "attempts": 1,
                "next_dial_at": now,
                "consent_automated": False,
                "account_ref": by_phone.get(phone, {}).get("account_ref"),
                "custom_fields": {},
            }
        )
    with engine.begin() as connection:
        if rows:
            connection.execute(insert(Lead), rows)
        leads = connection.execute(
            select(Lead.id, Lead.campaign_id, Lead.phone_e164, Lead.account_ref)
        ).all()
        attempts = []
        for attempt in data["attempts"]:
            pool = [lead for lead in leads if (lead.campaign_id == mine_id) == attempt["mine"]]
            if not pool:
                continue
            lead = pool[attempt["pick"] % len(pool)]
            human = attempt["outcome"] == "human"
            attempts.append(
                {
                    "lead_id": lead.id,
                    "campaign_id": lead.campaign_id,
                    "phone_e164": lead.phone_e164,
                    "account_ref": lead.account_ref,
                    "started_at": now - attempt["minutes_ago"] * MINUTE,
                    "outcome": attempt["outcome"],
                    "abandoned": human and attempt["abandoned"],
                    "conversation": human and attempt["conversation"],
                }
            )
        if attempts:
            connection.execute(insert(CallAttempt), attempts)
        entries = {
            (
                entry["phone_e164"],
                {"global": None, "mine": mine_id, "theirs": theirs_id}[entry["scope"]],
            ): now - MINUTE if entry["expired"] else None
            for entry in data["listed"]
        }
        for (phone, campaign_id), expires_at in entries.items():
            connection.execute(
                insert(DncEntry),
                {
                    "phone_e164": phone,
                    "scope": "global" if campaign_id is None else "campaign",
                    "campaign_id": campaign_id,
                    "expires_at": expires_at,
                },
            )


def one_by_one(
    engine: Engine, name: str, now: dt.datetime
) -> tuple[CampaignFacts, list[tuple[LeadFacts, DialHistory, str | None]], dict[str, int]]:
    """Each lead as the hopper would judge it: its history read by the hopper's own code."""
    with Session(engine) as session:
        campaign = session.scalars(select(Campaign).where(Campaign.name == name)).one()
        rules = campaign_rules(campaign)
        in_window = (
            CallAttempt.campaign_id == campaign.id,
            CallAttempt.started_at > now - ABANDON_WINDOW,
            LIVE_ANSWER,
        )
        answers = session.execute(select(CallAttempt.started_at, ABANDONED).where(*in_window))
        log = AnswerLog(tuple((at, bool(abandoned)) for at, abandoned in answers))
        live, abandons = log.counts(now)
        facts = CampaignFacts(
            campaign.name, campaign.status, campaign.dial_mode, rules, live, abandons, log
        )
        disabled = set(session.scalars(select(LeadList.id).where(LeadList.active.is_(False))))
        unfinished = set(
            session.scalars(select(ImportRun.id).where(ImportRun.status != "completed"))
        )
        judged: list[tuple[LeadFacts, DialHistory, str | None]] = []
        by_status: dict[str, int] = defaultdict(int)
        for lead in session.scalars(select(Lead).where(Lead.campaign_id == campaign.id)):
            by_status[lead.status] += 1
            if lead.status not in HOPPER_STATUSES:
                hold = "in_flight" if lead.status in IN_FLIGHT_STATUSES else "not_dialable_status"
                judged.append((lead_facts(lead), DialHistory(), hold))
                continue
            hold = None
            if lead.list_id in disabled:
                hold = "list_disabled"
            elif lead.import_id in unfinished:
                hold = "import_not_completed"
            elif lead.status in DATED_STATUSES and lead.next_dial_at is None:
                hold = "no_dial_time"
            on_dnc = dnc.blocking_entry(session, lead.phone_e164, campaign.id, now) is not None
            candidate = Candidate(
                lead.id,
                lead.campaign_id,
                lead.phone_e164,
                lead.phone_type,
                json.dumps(lead.time_zones),
                lead.state,
                lead.status,
                lead.attempts,
                lead.next_dial_at,
                lead.consent_automated,
                None,
                None,
                lead.account_ref,
                on_dnc,
            )
            history = histories(session.connection(), rules, [candidate], now, (live, abandons))
            judged.append((lead_facts(candidate), history[lead.id], hold))
    return facts, judged, dict(by_status)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(databases())
def test_explanation_matches_the_hopper_and_the_gate_lead_by_lead(engine: Engine, data) -> None:  # type: ignore[no-untyped-def]
    load(engine, data)
    now = data["now"]
    explanation = why(engine, "mine", now)
    facts, judged, by_status = one_by_one(engine, "mine", now)
    counts, dialable, nexts = expected(facts, judged, now)
    compare(explanation, counts, dialable, nexts)
    assert explanation.by_status == by_status
    assert explanation.leads == len(data["leads"])


# -- A campaign a manager would ask about --------------------------------------------------


def add_leads(engine: Engine, campaign: Campaign, count: int, start: int, **fields: Any) -> None:
    list_id = fields.pop("list_id", campaign.lists[0].id)
    rows = [
        {
            "campaign_id": campaign.id,
            "list_id": list_id,
            "phone_e164": f"+1212555{i:04d}",
            "phone_type": "fixed_line",
            "region": "US",
            "state": "NY",
            "time_zones": ["America/New_York"],
            "status": "new",
            "custom_fields": {},
            **fields,
        }
        for i in range(start, start + count)
    ]
    with engine.begin() as connection:
        connection.execute(insert(Lead), rows)


@pytest.fixture
def nothing_dials(engine: Engine, session: Session) -> Campaign:
    """At 07:30 in New York and 04:30 in Los Angeles: 3 Los Angeles leads outside hours (and
    1 more that a dial time keeps for later), 2 leads on do-not-call lists, 2 at their attempt
    limit, 4 waiting for a recycle delay, and 5 closed."""
    campaign = make_campaign(session, status="active", dial_mode="progressive")
    la = {"time_zones": ["America/Los_Angeles"], "state": "CA"}
    add_leads(engine, campaign, 3, 0, **la)
    add_leads(engine, campaign, 1, 3, next_dial_at=at("2026-06-10T12:00"), **la)
    add_leads(engine, campaign, 2, 10, attempts=6, status="recycled", next_dial_at=at("T06:00"))
    add_leads(engine, campaign, 4, 20, status="recycled", next_dial_at=at("2026-06-10T15:15"))
    add_leads(engine, campaign, 5, 30, status="done")
    add_leads(engine, campaign, 2, 40, status="new")
    dnc.add(session, "+12125550040")
    dnc.add(session, "+12125550041", campaign_id=campaign.id)
    session.commit()
    return campaign


def at(text: str) -> dt.datetime:
    if text.startswith("T"):
        text = "2026-06-10" + text
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


SEVEN_THIRTY_NY = at("2026-06-10T11:30")


def test_each_count_and_the_next_dialable_instant_exactly(engine: Engine, nothing_dials) -> None:  # type: ignore[no-untyped-def]
    explanation = why(engine, nothing_dials.name, SEVEN_THIRTY_NY)
    refused = {r.reason: r for r in explanation.refused}
    assert {reason: r.leads for reason, r in refused.items()} == {
        "outside_calling_hours": 3,
        "not_due": 5,
        "dnc": 2,
        "max_attempts": 2,
        "not_dialable_status": 5,
    }
    assert explanation.dialable == 0
    # The campaign calls from 09:00: Los Angeles opens at 16:00 UTC; the recycle delays end at
    # 15:15 UTC, 11:15 in New York, already open.
    assert refused["outside_calling_hours"].next_at == at("2026-06-10T16:00")
    assert refused["outside_calling_hours"].next_zone == "America/Los_Angeles"
    assert refused["not_due"].next_at == at("2026-06-10T15:15")
    assert refused["dnc"].next_at is None and refused["max_attempts"].next_at is None
    assert explanation.next_dialable_at == at("2026-06-10T15:15")
    summary = explanation.summary()
    assert summary.startswith("Nothing is dialable now: 5 leads wait for their recycle delay")
    assert "3 are outside calling hours (next window opens 09:00 America/Los_Angeles" in summary
    assert summary.endswith("the next lead becomes dialable at 2026-06-10 15:15 UTC.")
    as_json = explanation.as_json()
    assert as_json["next_dialable_at"] == "2026-06-10T15:15:00+00:00"
    assert as_json["by_status"] == {"done": 5, "new": 6, "recycled": 6}


def test_what_the_hopper_passes_by_before_the_gate(engine: Engine, session: Session) -> None:
    campaign = make_campaign(session, status="paused", dial_mode="progressive")
    disabled = LeadList(campaign_id=campaign.id, name="old", active=False)
    running = ImportRun(campaign_id=campaign.id, list_id=campaign.lists[0].id, filename="a.csv")
    session.add_all([disabled, running])
    session.commit()
    add_leads(engine, campaign, 2, 0)
    add_leads(engine, campaign, 3, 10, list_id=disabled.id)
    add_leads(engine, campaign, 4, 20, import_id=running.id)
    add_leads(engine, campaign, 1, 30, status="recycled", attempts=1)
    add_leads(engine, campaign, 1, 40, status="claimed")
    explanation = why(engine, campaign.name, NOON_NY)
    assert {r.reason: r.leads for r in explanation.refused} == {
        "campaign_not_active": 2,
        "list_disabled": 3,
        "import_not_completed": 4,
        "no_dial_time": 1,
        "in_flight": 1,
    }
    assert explanation.dialable == 0 and explanation.next_dialable_at is None
    assert explanation.summary() == (
        "Nothing is dialed: the campaign is paused; 2 leads would be dialable now were it "
        "active, 4 belong to an import that has not completed, 3 are on disabled lists, 1 has no "
        "dial time (retries the hopper never picks)."
    )


def dial(lead: Lead, ago: dt.timedelta, **fields: Any) -> dict[str, Any]:
    return {
        "lead_id": lead.id,
        "campaign_id": lead.campaign_id,
        "phone_e164": lead.phone_e164,
        "account_ref": lead.account_ref,
        "started_at": NOON_NY - ago,
        "outcome": "human",
        "abandoned": False,
        "conversation": False,
        **fields,
    }


HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


def test_predictive_dialing_waits_for_old_abandons_to_leave_the_window(
    engine: Engine, session: Session
) -> None:
    campaign = make_campaign(session, status="active", dial_mode="predictive")
    add_leads(engine, campaign, 2, 0)
    lead = session.scalars(select(Lead).where(Lead.campaign_id == campaign.id)).first()
    assert lead is not None
    # 4 abandons among 40 live answers 29 days ago, 60 clean ones 10 days ago: 3.9% now, and
    # none in 60 once the old ones leave the window, a day from now.
    rows = [dial(lead, 29 * DAY, abandoned=i < 4) for i in range(40)]
    rows += [dial(lead, 10 * DAY) for _ in range(60)]
    with engine.begin() as connection:
        connection.execute(insert(CallAttempt), rows)
    explanation = why(engine, campaign.name, NOON_NY)
    [capped] = explanation.refused
    assert (capped.reason, capped.leads, capped.next_at) == ("abandon_cap", 2, NOON_NY + DAY)
    assert explanation.abandon_rate == pytest.approx(4 / 100)
    assert explanation.abandon_capped_until == NOON_NY + DAY
    assert explanation.summary() == (
        "Nothing is dialable now: 2 leads wait for the 30-day abandon rate to fall under the "
        "target (next at 2026-06-11 16:00 UTC), the 30-day abandon rate is 4.00%, at or over "
        "the 3.00% target: predictive dials stop until 2026-06-11 16:00 UTC; the next lead "
        "becomes dialable at 2026-06-11 16:00 UTC."
    )


def test_dial_histories_name_their_rule_and_their_instant(engine: Engine, session: Session) -> None:
    """A Florida number called 3 times today waits 24 h from the first call; a debt talked
    about yesterday 7 days (Regulation F), also from another campaign's lead of the same
    account; a number abandoned 2 days ago, in UK mode, 72 h."""
    campaign = make_campaign(
        session, kind="collections", status="active", dial_mode="progressive", uk_mode=True
    )
    other = make_campaign(session, "Old debts", kind="collections")
    add_leads(engine, campaign, 1, 0)
    add_leads(engine, campaign, 1, 1, state="FL")
    add_leads(engine, campaign, 1, 2, account_ref="DEBT-7")
    add_leads(engine, campaign, 1, 3)
    add_leads(engine, other, 1, 9, account_ref="DEBT-7")
    leads = {lead.phone_e164: lead for lead in session.scalars(select(Lead))}
    rows = [dial(leads["+12125550001"], h * HOUR, outcome="no_answer") for h in (1, 2, 3)]
    rows.append(dial(leads["+12125550009"], DAY, conversation=True))
    rows.append(dial(leads["+12125550003"], 2 * DAY, abandoned=True))
    with engine.begin() as connection:
        connection.execute(insert(CallAttempt), rows)
    explanation = why(engine, campaign.name, NOON_NY)
    assert {r.reason: (r.leads, r.next_at) for r in explanation.refused} == {
        "state_daily_cap": (1, NOON_NY + 21 * HOUR + dt.timedelta(microseconds=1)),
        "reg_f_after_conversation": (1, NOON_NY + 6 * DAY),
        "uk_abandon_quiet": (1, NOON_NY + DAY),
    }
    assert explanation.dialable == 1


def test_a_campaign_that_does_not_exist_is_named(engine: Engine) -> None:
    with pytest.raises(CampaignNotFound, match="no campaign named 'Nope'"):
        why(engine, "Nope", NOON_NY)
    with pytest.raises(ValueError, match="time zone"):
        why(engine, "Nope", NOON_NY.replace(tzinfo=None))


def test_cli_prints_the_table_and_the_sentence_or_json(
    db_url: str, engine: Engine, nothing_dials, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from dialer.cli import main

    monkeypatch.setenv("DATABASE_URL", db_url)
    args = ["campaign", "why", nothing_dials.name, "--at", "2026-06-10T07:30-04:00"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "Nothing is dialable now: 5 leads wait for their recycle delay" in result.output
    assert any(line.split()[:3] == ["3", "outside", "calling"] for line in lines)
    assert "09:00 America/Los_Angeles = 2026-06-10 16:00 UTC" in result.output
    assert "answered in" in result.output
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["dialable"] == 0 and answer["next_dialable_at"] == "2026-06-10T15:15:00+00:00"
    assert {r["reason"]: r["leads"] for r in answer["refused"]}["dnc"] == 2
    result = CliRunner().invoke(main, ["campaign", "why", "Nope"])
    assert result.exit_code != 0 and "no campaign named 'Nope'" in result.output
    result = CliRunner().invoke(main, ["campaign", "why", nothing_dials.name, "--at", "noon"])
    assert result.exit_code != 0 and "'noon' is not an ISO 8601 instant" in result.output


def test_leads_by_status_add_up(engine: Engine, nothing_dials) -> None:  # type: ignore[no-untyped-def]
    explanation = why(engine, nothing_dials.name, SEVEN_THIRTY_NY)
    with engine.connect() as connection:
        total = connection.scalar(select(func.count()).select_from(Lead))
    assert explanation.leads == total == sum(explanation.by_status.values())
    assert explanation.dialable + sum(r.leads for r in explanation.refused) == total


def test_a_lead_counted_apart_does_not_lend_its_dial_time_to_its_group(
    engine: Engine, session: Session
) -> None:
    """Three leads alike but for their dial times, the first on a do-not-call list: the gate
    names its recycle delay first (it checks the dial time before the lists), but it will never
    pass, so the delay that ends first for a lead that will is the second one's."""
    campaign = make_campaign(session, status="active", dial_mode="progressive")
    add_leads(engine, campaign, 1, 0, status="recycled", next_dial_at=NOON_NY + HOUR)
    add_leads(engine, campaign, 1, 1, status="recycled", next_dial_at=NOON_NY + 2 * HOUR)
    add_leads(engine, campaign, 1, 2, status="recycled", next_dial_at=NOON_NY + 3 * HOUR)
    dnc.add(session, "+12125550000")
    session.commit()
    explanation = why(engine, campaign.name, NOON_NY)
    [waiting] = explanation.refused
    assert (waiting.reason, waiting.leads, waiting.next_at) == ("not_due", 3, NOON_NY + 2 * HOUR)


def test_the_debts_state_follows_the_calls_written(engine: Engine, session: Session) -> None:
    """`reg_f_debts` as the triggers keep it: nothing for a debt called six times, the seventh
    latest call once there are eight (written out of order, as a bulk insert may), the latest
    conversation as agents record it, and none once it is taken back."""
    campaign = make_campaign(session, kind="collections")
    add_leads(engine, campaign, 1, 0, account_ref="DEBT-1")
    lead = session.scalars(select(Lead)).one()

    def state() -> tuple[Any, ...] | None:
        with engine.connect() as connection:
            row = connection.execute(
                select(RegFDebt.seventh_dial_at, RegFDebt.last_conversation_at)
            ).first()
        return tuple(row) if row else None

    with engine.begin() as connection:
        connection.execute(insert(CallAttempt), [dial(lead, h * HOUR) for h in range(1, 7)])
    assert state() is None
    with engine.begin() as connection:
        connection.execute(insert(CallAttempt), [dial(lead, h * HOUR) for h in (0, 9)])
    assert state() == (NOON_NY - 6 * HOUR, None)
    session.commit()  # a new snapshot: SQLite's read transaction began before the calls
    talked = session.scalars(
        select(CallAttempt).where(CallAttempt.started_at == NOON_NY - 2 * HOUR)
    ).one()
    talked.conversation = True
    session.commit()
    assert state() == (NOON_NY - 6 * HOUR, NOON_NY - 2 * HOUR)
    talked.conversation = False
    session.commit()
    assert state() == (NOON_NY - 6 * HOUR, None)


def test_the_quiet_week_ends_to_the_microsecond(engine: Engine, session: Session) -> None:
    """A lead due in an hour whose debt was talked about 6 days and 22 hours ago (and a fraction
    of a second): the week ends later than its dial time, and the explainer says when exactly,
    as the gate would (SQLite keeps instants as text: its own date arithmetic drops the
    microseconds)."""
    campaign = make_campaign(session, kind="collections", status="active", dial_mode="progressive")
    add_leads(engine, campaign, 1, 0, status="recycled", next_dial_at=NOON_NY + HOUR)
    add_leads(engine, campaign, 1, 1, status="recycled", next_dial_at=NOON_NY + HOUR)
    leads = session.scalars(select(Lead).order_by(Lead.id)).all()
    fraction = dt.timedelta(microseconds=123456)
    rows = [
        dial(leads[0], 6 * DAY + 22 * HOUR - fraction, conversation=True),
        dial(leads[1], 6 * DAY + 21 * HOUR, conversation=True),
    ]
    with engine.begin() as connection:
        connection.execute(insert(CallAttempt), rows)
    [waiting] = why(engine, campaign.name, NOON_NY).refused
    assert (waiting.reason, waiting.leads) == ("not_due", 2)
    assert waiting.next_at == NOON_NY + 2 * HOUR + fraction
