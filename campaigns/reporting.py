"""What the console's report pages, their exports and the REST API show (campaigns.reports is
the command line's campaign report, counted from the attempts as the hopper counts them).

Reports over months of attempts stay fast because they read hourly sums: `campaign_hours`
(attempts, kept by the scheduler's roll-up), `disposition_hours` and `agent_state_hours`
(`campaigns.rollups`), `gate_refusals`. Only the edges of a period that fall inside an hour,
and the hours not summed yet, are read from the rows themselves, through indexed ranges. Call
detail reads attempts a page at a time, newest first, through an index on the start time.

Every function takes the period in UTC (`Period` turns a user's days into it) and returns
plain dataclasses; none writes (`campaigns.rollups.catch_up` does, before a report reads).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import zoneinfo
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Connection,
    DateTime,
    Float,
    Numeric,
    Select,
    case,
    cast,
    exists,
    func,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session

from campaigns import rollups
from campaigns.compliance import ABANDON_WINDOW, REG_F_WINDOW
from campaigns.models import (
    ABANDONED,
    ATTEMPT_OUTCOMES,
    LIVE_ANSWER,
    OUTCOME_COLUMNS,
    AgentStateHour,
    CallAttempt,
    Campaign,
    CampaignHour,
    Disposition,
    DispositionHour,
    DncEntry,
    GateRefusal,
    Lead,
    RollupMark,
    User,
)
from campaigns.monitor import live_figures

# A report covers at most this many days (a year and a month: last year's same month).
MAX_DAYS = 400
# Sources of do-not-call entries a called person asked for during a call.
OPT_OUT_SOURCES = ("opt_out_key", "disposition")
# What call detail filters an attempt's outcome by: the line's outcomes and "abandoned" (a
# live answer no agent took in time, whose line outcome is "human").
CALL_OUTCOMES = ATTEMPT_OUTCOMES
# Regulation F (12 CFR 1006.14(b)(2)): at most 7 calls about a debt in 7 days.
REG_F_CAP = 7
# States an agent's time is reported in, in the order people read them.
AGENT_STATES = ("ready", "reserved", "on_call", "wrap_up", "paused")


class ReportError(ValueError):
    """A report cannot be made as asked; the message names the field, the value and what
    would be accepted. `field` is the field's name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Period:
    """Whole days in a user's time zone, as instants in UTC: [start, end)."""

    first_day: dt.date
    last_day: dt.date
    zone: str
    start: dt.datetime
    end: dt.datetime

    @classmethod
    def of_days(cls, first_day: dt.date, last_day: dt.date, zone: str) -> Period:
        if last_day < first_day:
            raise ReportError(
                "to", f"to={last_day.isoformat()} is before from={first_day.isoformat()}"
            )
        days = (last_day - first_day).days + 1
        if days > MAX_DAYS:
            raise ReportError(
                "to",
                f"from {first_day.isoformat()} to {last_day.isoformat()} is {days} days: "
                f"a report covers at most {MAX_DAYS}",
            )
        tz = zoneinfo.ZoneInfo(zone)
        start = dt.datetime.combine(first_day, dt.time(), tz).astimezone(dt.UTC)
        end = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time(), tz)
        return cls(first_day, last_day, zone, start, end.astimezone(dt.UTC))

    def local_day(self, moment: dt.datetime) -> dt.date:
        return moment.astimezone(zoneinfo.ZoneInfo(self.zone)).date()


def segments(
    start: dt.datetime, end: dt.datetime, rolled_until: dt.datetime | None
) -> tuple[tuple[dt.datetime, dt.datetime] | None, list[tuple[dt.datetime, dt.datetime]]]:
    """Splits [start, end) into the whole hours an hourly roll-up has summed (before
    `rolled_until`) and the rest, read from the rows: (rolled range or None, raw ranges)."""
    if end <= start:
        return None, []
    first = rollups.ceil_hour(start)
    last = min(rollups.floor_hour(end), rolled_until or first)
    if rolled_until is None or first >= last:
        return None, [(start, end)]
    raw = [(a, b) for a, b in ((start, first), (last, end)) if a < b]
    return (first, last), raw


# -- attempts by outcome


@dataclass
class Outcomes:
    """Ended attempts of a period (the hourly roll-up's figures)."""

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
    # Hours in which the campaign dialled (contacts per hour divide by these).
    hours: int = 0

    def add(self, other: Outcomes) -> None:
        for name in (*OUTCOME_COLUMNS, "attempts", "live", "abandoned", "connected", "hours"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.talk_s += other.talk_s

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.live if self.live else 0.0

    @property
    def contacts_per_hour(self) -> float:
        return self.connected / self.hours if self.hours else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "by_outcome": {name: getattr(self, name) for name in OUTCOME_COLUMNS},
            "live_answers": self.live,
            "abandoned": self.abandoned,
            "abandon_rate": round(self.abandon_rate, 4),
            "connected": self.connected,
            "talk_seconds": round(self.talk_s, 1),
            "dialing_hours": self.hours,
            "contacts_per_hour": round(self.contacts_per_hour, 2),
        }


def attempt_hours(
    session: Session, campaign_ids: list[int], start: dt.datetime, end: dt.datetime
) -> dict[tuple[int, dt.datetime], Outcomes]:
    """Ended attempts per (campaign, UTC hour) started in [start, end): the scheduler's hourly
    sums for the hours it has summed, the attempts themselves for the rest."""
    if not campaign_ids:
        return {}
    found: dict[tuple[int, dt.datetime], Outcomes] = defaultdict(Outcomes)
    covered = session.scalar(select(func.max(CampaignHour.hour)))
    rolled, raw = segments(start, end, covered)
    if rolled is not None:
        for row in session.scalars(
            select(CampaignHour).where(
                CampaignHour.campaign_id.in_(campaign_ids),
                CampaignHour.hour >= rolled[0],
                CampaignHour.hour < rolled[1],
            )
        ):
            found[(row.campaign_id, row.hour)].add(
                Outcomes(
                    **{name: getattr(row, name) for name in OUTCOME_COLUMNS},
                    attempts=row.attempts,
                    live=row.live,
                    abandoned=row.abandoned,
                    connected=row.connected,
                    talk_s=row.talk_s,
                )
            )
    connection = session.connection()
    hour = rollups._hour_of(connection, CallAttempt.started_at).label("hour")
    bridged = CallAttempt.bridged_at.is_not(None)

    def count(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    talk = func.coalesce(
        func.sum(
            case(
                (
                    bridged,
                    rollups.seconds_between(
                        connection, CallAttempt.bridged_at, CallAttempt.ended_at
                    ),
                ),
                else_=0.0,
            )
        ),
        0.0,
    )
    for a, b in raw:
        for row in session.execute(
            select(
                CallAttempt.campaign_id,
                hour,
                func.count(),
                *(count(CallAttempt.outcome == name) for name in OUTCOME_COLUMNS),
                count(LIVE_ANSWER),
                count(ABANDONED),
                count(bridged),
                talk,
            )
            .where(
                CallAttempt.campaign_id.in_(campaign_ids),
                CallAttempt.started_at >= a,
                CallAttempt.started_at < b,
                CallAttempt.ended_at.is_not(None),
            )
            .group_by(CallAttempt.campaign_id, hour)
        ):
            campaign_id, at, attempts, *counts, live_count, abandoned, connected, talk_s = row
            found[(campaign_id, rollups._as_hour(at))].add(
                Outcomes(
                    **dict(zip(OUTCOME_COLUMNS, (int(c) for c in counts), strict=True)),
                    attempts=int(attempts),
                    live=int(live_count),
                    abandoned=int(abandoned),
                    connected=int(connected),
                    talk_s=float(talk_s or 0.0),
                )
            )
    for outcomes in found.values():
        outcomes.hours = 1 if outcomes.attempts else 0
    return dict(found)


# -- dispositions and agent time, from campaigns.rollups


def _mark(session: Session, name: str) -> dt.datetime | None:
    return session.scalar(select(RollupMark.done_until).where(RollupMark.name == name))


@dataclass
class DispositionFigures:
    code: str
    count: int = 0
    promises: int = 0
    promised: Decimal = Decimal(0)


def disposition_totals(
    session: Session, campaign_ids: list[int], start: dt.datetime, end: dt.datetime
) -> dict[int, dict[str, DispositionFigures]]:
    """Dispositions recorded in [start, end) per campaign and code."""
    found: dict[int, dict[str, DispositionFigures]] = defaultdict(dict)
    if not campaign_ids:
        return {}
    wanted = set(campaign_ids)

    def add(campaign_id: int, code: str, count: int, promises: int, promised: Decimal) -> None:
        figures = found[campaign_id].setdefault(code, DispositionFigures(code))
        figures.count += count
        figures.promises += promises
        figures.promised += promised

    rolled, raw = segments(start, end, _mark(session, rollups.DISPOSITIONS))
    if rolled is not None:
        for campaign_id, code, count, promises, promised in session.execute(
            select(
                DispositionHour.campaign_id,
                DispositionHour.code,
                func.sum(DispositionHour.count),
                func.sum(DispositionHour.promises),
                func.sum(DispositionHour.promised),
            )
            .where(
                DispositionHour.campaign_id.in_(campaign_ids),
                DispositionHour.hour >= rolled[0],
                DispositionHour.hour < rolled[1],
            )
            .group_by(DispositionHour.campaign_id, DispositionHour.code)
        ):
            add(campaign_id, code, int(count), int(promises), Decimal(str(promised or 0)))
    for a, b in raw:
        for (campaign_id, code, _), counted in rollups.dispositions_between(
            session.connection(), a, b
        ).items():
            if campaign_id in wanted:
                add(campaign_id, code, counted.count, counted.promises, counted.promised)
    return dict(found)


@dataclass
class AgentFigures:
    user_id: int
    username: str
    # Seconds per state; pause seconds per code as well.
    seconds: dict[str, float] = field(default_factory=dict)
    pause_by_code: dict[str, float] = field(default_factory=dict)
    calls: int = 0

    @property
    def logged_in_s(self) -> float:
        return sum(self.seconds.values())

    @property
    def talk_s(self) -> float:
        return self.seconds.get("on_call", 0.0)

    @property
    def wrap_s(self) -> float:
        return self.seconds.get("wrap_up", 0.0)

    @property
    def pause_s(self) -> float:
        return self.seconds.get("paused", 0.0)

    @property
    def ready_s(self) -> float:
        # Reserved (a call being connected to them) is waiting for the customer, as ready is.
        return self.seconds.get("ready", 0.0) + self.seconds.get("reserved", 0.0)

    @property
    def contacts_per_hour(self) -> float:
        hours = self.logged_in_s / 3600
        return self.calls / hours if hours else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "username": self.username,
            "logged_in_seconds": round(self.logged_in_s, 1),
            "ready_seconds": round(self.ready_s, 1),
            "talk_seconds": round(self.talk_s, 1),
            "wrap_seconds": round(self.wrap_s, 1),
            "pause_seconds": round(self.pause_s, 1),
            "pause_by_code": {code: round(s, 1) for code, s in sorted(self.pause_by_code.items())},
            "calls": self.calls,
            "contacts_per_hour": round(self.contacts_per_hour, 2),
        }


def agent_performance(
    session: Session,
    start: dt.datetime,
    end: dt.datetime,
    *,
    campaign_ids: list[int] | None = None,
    user_ids: list[int] | None = None,
) -> list[AgentFigures]:
    """Each agent's time in [start, end) by state (pause by code), calls taken (entries into
    a call) and contacts per logged-in hour, from agent_state_changes' hourly sums."""
    found: dict[int, AgentFigures] = {}
    names = dict(session.execute(select(User.id, User.username)).all())

    def add(user_id: int, campaign_id: int, state: str, code: str, seconds: float, entries: int):  # type: ignore[no-untyped-def]
        if campaign_ids is not None and campaign_id not in campaign_ids:
            return
        if user_ids is not None and user_id not in user_ids:
            return
        figures = found.setdefault(user_id, AgentFigures(user_id, names.get(user_id, "?")))
        figures.seconds[state] = figures.seconds.get(state, 0.0) + seconds
        if state == "paused":
            figures.pause_by_code[code or "—"] = (
                figures.pause_by_code.get(code or "—", 0.0) + seconds
            )
        if state == "on_call":
            figures.calls += entries

    rolled, raw = segments(start, end, _mark(session, rollups.AGENT_STATES))
    if rolled is not None:
        query = select(
            AgentStateHour.user_id,
            AgentStateHour.campaign_id,
            AgentStateHour.state,
            AgentStateHour.pause_code,
            func.sum(AgentStateHour.seconds),
            func.sum(AgentStateHour.entries),
        ).where(AgentStateHour.hour >= rolled[0], AgentStateHour.hour < rolled[1])
        if user_ids is not None:
            query = query.where(AgentStateHour.user_id.in_(user_ids))
        if campaign_ids is not None:
            query = query.where(AgentStateHour.campaign_id.in_(campaign_ids))
        for user_id, campaign_id, state, code, seconds, entries in session.execute(
            query.group_by(
                AgentStateHour.user_id,
                AgentStateHour.campaign_id,
                AgentStateHour.state,
                AgentStateHour.pause_code,
            )
        ):
            add(user_id, campaign_id, state, code, float(seconds or 0), int(entries or 0))
    for a, b in raw:
        for (user_id, campaign_id, state, code, _), time in rollups.agent_time_between(
            session.connection(), a, b
        ).items():
            add(user_id, campaign_id, state, code, time.seconds, time.entries)
    return sorted(found.values(), key=lambda f: f.username)


# -- the campaign summary


@dataclass
class CampaignSummary:
    campaign_id: int
    name: str
    kind: str
    totals: Outcomes
    by_day: list[tuple[dt.date, Outcomes]]
    dispositions: list[DispositionFigures]
    leads_by_status: dict[str, int]
    abandon_30_days: float
    live_30_days: int
    abandoned_30_days: int
    abandon_target: float

    @property
    def promises(self) -> DispositionFigures:
        total = DispositionFigures("PTP")
        for figures in self.dispositions:
            total.promises += figures.promises
            total.promised += figures.promised
        return total

    def as_json(self) -> dict[str, Any]:
        promises = self.promises
        return {
            "campaign_id": self.campaign_id,
            "name": self.name,
            "kind": self.kind,
            **self.totals.as_json(),
            "by_day": [{"day": day.isoformat(), **o.as_json()} for day, o in self.by_day],
            "dispositions": {d.code: d.count for d in self.dispositions},
            "promises_to_pay": {"count": promises.promises, "amount": str(promises.promised)},
            "leads_by_status": self.leads_by_status,
            "last_30_days": {
                "live_answers": self.live_30_days,
                "abandoned": self.abandoned_30_days,
                "abandon_rate": round(self.abandon_30_days, 4),
                "target": self.abandon_target,
            },
        }


def campaign_summary(
    session: Session, campaign: Campaign, period: Period, now: dt.datetime
) -> CampaignSummary:
    end = min(period.end, now)
    hours = attempt_hours(session, [campaign.id], period.start, end)
    totals = Outcomes()
    days: dict[dt.date, Outcomes] = defaultdict(Outcomes)
    for (_, hour), outcomes in sorted(hours.items(), key=lambda item: item[0][1]):
        totals.add(outcomes)
        days[period.local_day(hour)].add(outcomes)
    dispositions = disposition_totals(session, [campaign.id], period.start, end).get(
        campaign.id, {}
    )
    by_status = dict(
        session.execute(
            select(Lead.status, func.count())
            .where(Lead.campaign_id == campaign.id)
            .group_by(Lead.status)
        ).all()
    )
    month = live_figures(session, [campaign.id], now - ABANDON_WINDOW)[campaign.id]
    return CampaignSummary(
        campaign_id=campaign.id,
        name=campaign.name,
        kind=campaign.kind,
        totals=totals,
        by_day=sorted(days.items()),
        dispositions=sorted(dispositions.values(), key=lambda d: (-d.count, d.code)),
        leads_by_status={k: int(v) for k, v in sorted(by_status.items())},
        abandon_30_days=month.abandon_rate,
        live_30_days=month.live,
        abandoned_30_days=month.abandoned,
        abandon_target=campaign.abandon_target,
    )


# -- compliance


@dataclass
class AbandonLine:
    campaign_id: int
    name: str
    live: int
    abandoned: int
    target: float

    @property
    def rate(self) -> float:
        return self.abandoned / self.live if self.live else 0.0

    @property
    def standing(self) -> str:
        """ok, near (past 80% of the target) or over."""
        if self.rate > self.target:
            return "over"
        return "near" if self.rate > 0.8 * self.target else "ok"


@dataclass
class RegFLine:
    campaign_id: int
    name: str
    debts: int = 0
    attempts: int = 0
    # Debts by calls in the last 7 days: 1, 2, ... 7 and "8+" (8+ is a breach).
    by_calls: dict[str, int] = field(default_factory=dict)
    at_cap: int = 0
    over_cap: int = 0
    conversations: int = 0


@dataclass
class ComplianceReport:
    abandons: list[AbandonLine]
    refusals: dict[str, dict[str, int]]  # campaign name -> reason -> dials refused
    reg_f: list[RegFLine]
    opt_outs: dict[str, dict[str, int]]  # campaign name (or "global") -> source -> entries
    reg_f_as_of: dt.datetime | None = None  # when the Regulation F counters were read

    def as_json(self) -> dict[str, Any]:
        return {
            "abandon_30_days": [
                {
                    "campaign_id": a.campaign_id,
                    "name": a.name,
                    "live_answers": a.live,
                    "abandoned": a.abandoned,
                    "abandon_rate": round(a.rate, 4),
                    "target": a.target,
                    "standing": a.standing,
                }
                for a in self.abandons
            ],
            "gate_refusals": self.refusals,
            "regulation_f": [
                {
                    "campaign_id": r.campaign_id,
                    "name": r.name,
                    "debts_called": r.debts,
                    "attempts": r.attempts,
                    "debts_by_calls": r.by_calls,
                    "debts_at_cap": r.at_cap,
                    "debts_over_cap": r.over_cap,
                    "debts_in_conversation_block": r.conversations,
                }
                for r in self.reg_f
            ],
            "regulation_f_as_of": self.reg_f_as_of.isoformat() if self.reg_f_as_of else None,
            "opt_outs": self.opt_outs,
        }


def compliance(
    session: Session,
    campaigns: list[Campaign],
    period: Period,
    now: dt.datetime,
    reg_f: tuple[dt.datetime, list[RegFLine]] | None = None,
) -> ComplianceReport:
    """30-day abandonment per campaign against its target, dials the gate refused in the period
    by reason, Regulation F's counters for collections campaigns (the last 7 days, as the gate
    counts them; `reg_f`: read already, with when), and opt-outs taken during calls in the
    period."""
    ids = [c.id for c in campaigns]
    names = {c.id: c.name for c in campaigns}
    month = live_figures(session, ids, now - ABANDON_WINDOW)
    abandons = [
        AbandonLine(c.id, c.name, month[c.id].live, month[c.id].abandoned, c.abandon_target)
        for c in campaigns
    ]
    refusals: dict[str, dict[str, int]] = defaultdict(dict)
    if ids:
        for campaign_id, reason, count in session.execute(
            select(GateRefusal.campaign_id, GateRefusal.reason, func.sum(GateRefusal.count))
            .where(
                GateRefusal.campaign_id.in_(ids),
                GateRefusal.hour >= rollups.floor_hour(period.start),
                GateRefusal.hour < period.end,
            )
            .group_by(GateRefusal.campaign_id, GateRefusal.reason)
            .order_by(GateRefusal.campaign_id, func.sum(GateRefusal.count).desc())
        ):
            refusals[names[campaign_id]][reason] = int(count)
    opt_outs: dict[str, dict[str, int]] = defaultdict(dict)
    for campaign_id, source, count in session.execute(
        select(DncEntry.campaign_id, DncEntry.source, func.count())
        .where(
            DncEntry.source.in_(OPT_OUT_SOURCES),
            DncEntry.created_at >= period.start,
            DncEntry.created_at < period.end,
        )
        .group_by(DncEntry.campaign_id, DncEntry.source)
    ):
        if campaign_id is None or campaign_id in names:
            opt_outs[names.get(campaign_id, "global") if campaign_id else "global"][source] = int(
                count
            )
    if reg_f is None:
        collections = [c for c in campaigns if c.kind == "collections"]
        reg_f = now, reg_f_counters(session, collections, now)
    return ComplianceReport(
        abandons=abandons,
        refusals=dict(refusals),
        reg_f=reg_f[1],
        opt_outs=dict(opt_outs),
        reg_f_as_of=reg_f[0],
    )


def reg_f_counters(session: Session, campaigns: list[Campaign], now: dt.datetime) -> list[RegFLine]:
    """Per collections campaign, the debts called in the last 7 days (a debt is its account
    reference, else its number, as the gate counts it): calls per debt, debts at the cap of 7
    (not callable until a call leaves the window), over it (a breach: there should be none),
    and in the 7 days after a conversation about the debt. Reads 7 days of the campaigns'
    attempts through the (campaign, start) index."""
    lines = []
    since = now - REG_F_WINDOW
    for campaign in campaigns:
        debt = func.coalesce(CallAttempt.account_ref, CallAttempt.phone_e164)
        per_debt = (
            select(
                func.count().label("calls"),
                func.max(case((CallAttempt.conversation, 1), else_=0)).label("talked"),
            )
            .where(CallAttempt.campaign_id == campaign.id, CallAttempt.started_at >= since)
            .group_by(debt)
            .subquery()
        )
        # Summed per number of calls in the database: a collections campaign has a quarter of a
        # million debts in a week, and reading each into Python took seconds.
        calls = case((per_debt.c.calls > REG_F_CAP, REG_F_CAP + 1), else_=per_debt.c.calls)
        rows = session.execute(
            select(
                calls, func.count(), func.sum(per_debt.c.calls), func.sum(per_debt.c.talked)
            ).group_by(calls)
        ).all()
        by_calls = {int(n): int(debts) for n, debts, _, _ in rows}
        lines.append(
            RegFLine(
                campaign_id=campaign.id,
                name=campaign.name,
                debts=sum(by_calls.values()),
                attempts=sum(int(attempts) for _, _, attempts, _ in rows),
                by_calls={
                    (str(n) if n <= REG_F_CAP else f"{REG_F_CAP + 1}+"): by_calls.get(n, 0)
                    for n in range(1, REG_F_CAP + 2)
                },
                at_cap=by_calls.get(REG_F_CAP, 0),
                over_cap=by_calls.get(REG_F_CAP + 1, 0),
                conversations=sum(int(talked or 0) for _, _, _, talked in rows),
            )
        )
    return lines


# -- call detail


@dataclass(frozen=True)
class CallFilter:
    """Which attempts call detail shows; None: any."""

    start: dt.datetime
    end: dt.datetime
    campaign_ids: tuple[int, ...]
    outcome: str | None = None
    agent_id: int | None = None
    phone: str | None = None
    disposition: str | None = None


@dataclass(frozen=True)
class CallRow:
    id: int
    started_at: dt.datetime
    campaign_id: int
    campaign: str
    lead_id: int
    phone: str
    first_name: str | None
    last_name: str | None
    account_ref: str | None
    dial_mode: str
    outcome: str | None
    abandoned: bool
    sip_code: int | None
    sip_reason: str | None
    amd_verdict: str | None
    agent_id: int | None
    agent: str | None
    connect_delay_ms: int | None
    answered_at: dt.datetime | None
    bridged_at: dt.datetime | None
    ended_at: dt.datetime | None
    disposition: str | None
    notes: str | None
    has_recording: bool

    @property
    def talk_s(self) -> float | None:
        if self.bridged_at is None or self.ended_at is None:
            return None
        return round((self.ended_at - self.bridged_at).total_seconds(), 1)


CALL_COLUMNS = (
    "id",
    "started_at",
    "campaign_id",
    "campaign",
    "lead_id",
    "phone",
    "first_name",
    "last_name",
    "account_ref",
    "dial_mode",
    "outcome",
    "abandoned",
    "sip_code",
    "sip_reason",
    "amd_verdict",
    "agent_id",
    "agent",
    "connect_delay_ms",
    "answered_at",
    "bridged_at",
    "ended_at",
    "disposition",
    "notes",
    "has_recording",
)


# The number, the lead's name and account, and how the line went: call detail's and its
# export's columns.
_LINE_COLUMNS = (
    CallAttempt.phone_e164,
    Lead.first_name,
    Lead.last_name,
    CallAttempt.account_ref,
    CallAttempt.dial_mode,
    CallAttempt.outcome,
    CallAttempt.abandoned,
    CallAttempt.sip_code,
    CallAttempt.sip_reason,
    CallAttempt.amd_verdict,
)


def _last_disposition(column: Any) -> Any:
    return (
        select(column)
        .where(Disposition.attempt_id == CallAttempt.id)
        .order_by(Disposition.id.desc())
        .limit(1)
        .scalar_subquery()
    )


def _calls() -> Select[Any]:
    """Attempts as CallRow columns."""
    return (
        select(
            CallAttempt.id,
            CallAttempt.started_at,
            CallAttempt.campaign_id,
            Campaign.name,
            CallAttempt.lead_id,
            *_LINE_COLUMNS,
            CallAttempt.agent_id,
            User.username,
            CallAttempt.connect_delay_ms,
            CallAttempt.answered_at,
            CallAttempt.bridged_at,
            CallAttempt.ended_at,
            _last_disposition(Disposition.code),
            _last_disposition(Disposition.notes),
            CallAttempt.recording_path.is_not(None),
        )
        .join(Campaign, Campaign.id == CallAttempt.campaign_id)
        .join(Lead, Lead.id == CallAttempt.lead_id)
        .outerjoin(User, User.id == CallAttempt.agent_id)
    )


def number_leads(session: Session | Connection, wanted: CallFilter) -> tuple[int, ...] | None:
    """The leads of the number `wanted` names in its campaigns (None: no number named)."""
    if wanted.phone is None:
        return None
    return tuple(
        session.scalars(
            select(Lead.id).where(
                Lead.campaign_id.in_(wanted.campaign_ids), Lead.phone_e164 == wanted.phone
            )
        )
    )


def call_query(wanted: CallFilter, lead_ids: tuple[int, ...] | None = None) -> Select[Any]:
    """The attempts `wanted` names, newest first (ties by id); `lead_ids` are the number's
    leads (number_leads) when it names one."""
    query = _calls().where(*_call_conditions(wanted, lead_ids))
    return query.order_by(CallAttempt.started_at.desc(), CallAttempt.id.desc())


def _call_conditions(wanted: CallFilter, lead_ids: tuple[int, ...] | None) -> list[Any]:
    conditions = [
        CallAttempt.campaign_id.in_(wanted.campaign_ids),
        CallAttempt.started_at >= wanted.start,
        CallAttempt.started_at < wanted.end,
    ]
    if wanted.outcome == "abandoned":
        conditions.append(ABANDONED)
    elif wanted.outcome is not None:
        conditions.append(CallAttempt.outcome == wanted.outcome)
    if wanted.agent_id is not None:
        conditions.append(CallAttempt.agent_id == wanted.agent_id)
    if wanted.phone is not None:
        # The number's leads, looked up first (through the leads' (campaign, number) index):
        # given as values, the planners read each lead's attempts through its (lead, start)
        # index; as a subquery, SQLite scanned the period's attempts for them.
        conditions.append(CallAttempt.lead_id.in_(lead_ids or ()))
    if wanted.disposition is not None:
        conditions.append(
            exists().where(
                Disposition.attempt_id == CallAttempt.id, Disposition.code == wanted.disposition
            )
        )
    return conditions


def split_calls(connection: Connection, wanted: CallFilter, parts: int) -> list[CallFilter]:
    """`wanted` as up to `parts` consecutive periods of about as many attempts each, the
    newest first (their exports, put end to end, are the whole one's), so that several
    processes write a large export together; one period below SPLIT_LEAST attempts."""
    conditions = _call_conditions(wanted, number_leads(connection, wanted))
    count = connection.scalar(select(func.count()).select_from(CallAttempt).where(*conditions))
    if parts < 2 or not count or count < SPLIT_LEAST:
        return [wanted]
    starts = (
        select(CallAttempt.started_at)
        .where(*conditions)
        .order_by(CallAttempt.started_at.desc())
        .limit(1)
    )
    # Each boundary is an attempt's start: every attempt of that moment is in the newer part.
    bounds = [wanted.end]
    for part in range(1, parts):
        bound = connection.scalar(starts.offset(count * part // parts))
        if bound is not None and wanted.start < bound < bounds[-1]:
            bounds.append(bound)
    bounds.append(wanted.start)
    return [
        dataclasses.replace(wanted, start=start, end=end)
        for end, start in itertools.pairwise(bounds)
    ]


def _row(values: Any) -> CallRow:
    return CallRow(*values)


def call_page(
    session: Session,
    wanted: CallFilter,
    limit: int,
    after: tuple[dt.datetime, int] | None = None,
) -> tuple[list[CallRow], tuple[dt.datetime, int] | None]:
    """Up to `limit` attempts after the key `after` (the last row of the previous page);
    returns them and the key of the next page (None on the last one)."""
    query = call_query(wanted, number_leads(session, wanted))
    if after is not None:
        started, attempt_id = after
        query = query.where(
            CallAttempt.started_at <= started,
            or_(CallAttempt.started_at < started, CallAttempt.id < attempt_id),
        )
    rows = [_row(r) for r in session.execute(query.limit(limit + 1))]
    more = len(rows) > limit
    rows = rows[:limit]
    following = (rows[-1].started_at, rows[-1].id) if more and rows else None
    return rows, following


# What the call detail export writes of an attempt, in its order, as `export_rows` yields it:
# the times as the driver gives them (naive UTC on SQLite), not through `UTCDateTime`, whose
# conversion of four times a row was a sixth of a 40,000-row export.
# A call export of fewer attempts is written by one process: splitting it would cost more than
# it saves.
SPLIT_LEAST = 10_000


def export_columns(connection: Connection) -> tuple[Any, ...]:
    """What the call detail export reads of each attempt: its start (a datetime, read without
    the UTC check of the model's type), campaign, number, lead and line columns, the agent, the
    connect delay, the talk time in seconds (computed by the database, not per row in Python),
    the last disposition's code and notes, and whether it has a recording."""
    talk_s = rollups.seconds_between(connection, CallAttempt.bridged_at, CallAttempt.ended_at)
    return (
        type_coerce(CallAttempt.started_at, DateTime()),
        Campaign.name,
        *_LINE_COLUMNS,
        User.username,
        CallAttempt.connect_delay_ms,
        # Numeric first: PostgreSQL rounds a numeric, not a double, to a number of places.
        type_coerce(func.round(cast(talk_s, Numeric()), 1), Float()),
        _last_disposition(Disposition.code),
        _last_disposition(Disposition.notes),
        CallAttempt.recording_path.is_not(None),
    )


def export_rows(connection: Connection, wanted: CallFilter) -> Iterator[tuple[Any, ...]]:
    """Every attempt `wanted` names as `export_columns`, streamed (exports), newest first."""
    query = call_query(wanted, number_leads(connection, wanted)).with_only_columns(
        *export_columns(connection), maintain_column_froms=False
    )
    for partition in connection.execute(query.execution_options(yield_per=2000)).partitions():
        yield from partition


def attempt_detail(
    session: Session, attempt_id: int, campaign_ids: tuple[int, ...]
) -> CallRow | None:
    query = _calls().where(CallAttempt.id == attempt_id, CallAttempt.campaign_id.in_(campaign_ids))
    values = session.execute(query).first()
    return None if values is None else _row(values)


def lead_calls(session: Session, lead_id: int) -> list[CallRow]:
    """A lead's attempts, newest first (through the (lead, start) index)."""
    query = _calls().where(CallAttempt.lead_id == lead_id)
    return [
        _row(values) for values in session.execute(query.order_by(CallAttempt.started_at.desc()))
    ]


def recording_path(session: Session, attempt_id: int) -> str | None:
    return session.scalar(select(CallAttempt.recording_path).where(CallAttempt.id == attempt_id))
