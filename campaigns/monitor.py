"""What is happening now, as the database tells it (ARCHITECTURE §3a): per campaign its asked
and actual state, dial mode and level, lines, calls ringing and up, live answers and abandon
rate today and over the rolling 30 days, leads dialable; per agent their state and time in it.
`dialer status` prints it; the console's dashboard shows it.

The 30-day figures come from the hourly sums the scheduler keeps (`campaign_hours`) plus the
attempts since the last hour summed, so months of attempts are never scanned per look.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import String, Text, and_, cast, func, not_, or_, select, type_coerce
from sqlalchemy.orm import Session

from campaigns.compliance import (
    ABANDON_WINDOW,
    MAYBE_MOBILE,
    DialHistory,
    LeadFacts,
    may_dial,
)
from campaigns.hopper import campaign_rules
from campaigns.models import (
    LIVE_ANSWER,
    AgentSession,
    CallAttempt,
    Campaign,
    CampaignHour,
    CampaignRun,
    Lead,
    Node,
    User,
)
from campaigns.why import HOPPER_STATUS, zones_of

# A node silent this long is shown as gone, and its campaign figures are not counted.
NODE_SILENT_AFTER = dt.timedelta(seconds=10)


@dataclass(frozen=True)
class Figures:
    live: int = 0
    abandoned: int = 0
    attempts: int = 0

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.live if self.live else 0.0

    @property
    def answer_rate(self) -> float | None:
        """Attempts a person answered, of all attempts; None before the first attempt."""
        return self.live / self.attempts if self.attempts else None


@dataclass
class CampaignStatus:
    id: int
    name: str
    kind: str
    status: str  # asked: draft, active, paused, stopped, finished
    state: str  # what the nodes do: dialing, no_leads, no_agents, paused, ... or "not running"
    detail: str
    dial_mode: str
    dial_level: float
    lines: int
    ringing: int
    up: int
    waiting: int
    today: Figures
    last_30_days: Figures
    abandon_target: float
    dialable: int
    agents: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for period in ("today", "last_30_days"):
            figures: Figures = getattr(self, period)
            data[period]["abandon_rate"] = round(figures.abandon_rate, 4)
        return data


@dataclass(frozen=True)
class AgentStatus:
    user_id: int
    username: str
    campaign: str | None
    state: str
    pause_code: str | None
    seconds_in_state: float
    node: str | None
    calls_taken: int


def live_figures(
    session: Session, campaign_ids: list[int], since: dt.datetime
) -> dict[int, Figures]:
    """Live answers and abandons per campaign since `since`: hourly sums for the hours the
    scheduler has summed, the attempts themselves after that."""
    if not campaign_ids:
        return {}
    covered = session.scalar(select(func.max(CampaignHour.hour)))
    totals: Counter[tuple[int, str]] = Counter()
    raw_since = since
    if covered is not None and covered > since:
        start = since.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
        for campaign_id, live, abandoned, attempts in session.execute(
            select(
                CampaignHour.campaign_id,
                func.sum(CampaignHour.live),
                func.sum(CampaignHour.abandoned),
                func.sum(CampaignHour.attempts),
            )
            .where(
                CampaignHour.campaign_id.in_(campaign_ids),
                CampaignHour.hour >= start,
                CampaignHour.hour < covered,
            )
            .group_by(CampaignHour.campaign_id)
        ):
            totals[(campaign_id, "live")] += int(live or 0)
            totals[(campaign_id, "abandoned")] += int(abandoned or 0)
            totals[(campaign_id, "attempts")] += int(attempts or 0)
        # The partial hour at the window's start is counted from the attempts.
        for campaign_id, live, abandoned, attempts in _raw(session, campaign_ids, since, start):
            totals[(campaign_id, "live")] += live
            totals[(campaign_id, "abandoned")] += abandoned
            totals[(campaign_id, "attempts")] += attempts
        raw_since = covered
    for campaign_id, live, abandoned, attempts in _raw(session, campaign_ids, raw_since, None):
        totals[(campaign_id, "live")] += live
        totals[(campaign_id, "abandoned")] += abandoned
        totals[(campaign_id, "attempts")] += attempts
    return {
        campaign_id: Figures(
            totals[(campaign_id, "live")],
            totals[(campaign_id, "abandoned")],
            totals[(campaign_id, "attempts")],
        )
        for campaign_id in campaign_ids
    }


def _raw(
    session: Session, campaign_ids: list[int], since: dt.datetime, until: dt.datetime | None
) -> list[tuple[int, int, int, int]]:
    live = LIVE_ANSWER
    conditions = [CallAttempt.campaign_id.in_(campaign_ids), CallAttempt.started_at >= since]
    if until is not None:
        conditions.append(CallAttempt.started_at < until)
    rows = session.execute(
        select(
            CallAttempt.campaign_id,
            func.count().filter(live),
            func.count().filter(CallAttempt.abandoned),
            func.count(),
        )
        .where(*conditions)
        .group_by(CallAttempt.campaign_id)
    )
    return [(campaign_id, int(a or 0), int(b or 0), int(c)) for campaign_id, a, b, c in rows]


def dialable_counts(session: Session, campaign_ids: list[int], now: dt.datetime) -> dict[int, int]:
    """Leads the hopper could hand out now for automatic dials: due, under the attempt limit,
    possible mobiles only with consent, and inside the calling window of every zone of the
    number; counted by zones, state and attempts, the gate asked once per group. (What needs
    a lead's history or the lists, do-not-call, daily caps, Regulation F, is checked as it is
    dialed; `dialer campaign why` counts those too.)"""
    if not campaign_ids:
        return {}
    rules = {
        campaign.id: campaign_rules(campaign)
        for campaign in session.scalars(select(Campaign).where(Campaign.id.in_(campaign_ids)))
    }
    automated_ok = not_(and_(Lead.phone_type.in_(sorted(MAYBE_MOBILE)), ~Lead.consent_automated))
    due = or_(Lead.next_dial_at.is_(None), Lead.next_dial_at <= now)
    # The JSON as text, grouped as stored (PostgreSQL cannot compare json values).
    sqlite = session.get_bind().dialect.name == "sqlite"
    zones = type_coerce(Lead.time_zones, String) if sqlite else cast(Lead.time_zones, Text)
    rows = session.execute(
        select(Lead.campaign_id, zones, Lead.state, Lead.attempts, func.count())
        .where(Lead.campaign_id.in_(campaign_ids), HOPPER_STATUS, due, automated_ok)
        .group_by(Lead.campaign_id, zones, Lead.state, Lead.attempts)
    )
    counts: Counter[int] = Counter()
    for campaign_id, zones_text, state, attempts, count in rows:
        stand_in = LeadFacts(
            phone_e164="",
            phone_type="fixed_line",
            time_zones=zones_of(zones_text),
            state=state,
            attempts=attempts,
        )
        if may_dial(stand_in, rules[campaign_id], now, DialHistory(), "preview"):
            counts[campaign_id] += count
    return {campaign_id: counts[campaign_id] for campaign_id in rules}


def campaign_statuses(
    session: Session,
    now: dt.datetime,
    *,
    local_midnight: dt.datetime | None = None,
    dialable: dict[int, int] | None = None,
) -> list[CampaignStatus]:
    """Every campaign that is not a draft or finished, or that a node is running.
    `dialable`: counts read a moment ago (`dialable_counts` reads the leads, which a live page
    refreshing every half second should not do each time)."""
    running = select(CampaignRun.campaign_id)
    campaigns = session.scalars(
        select(Campaign)
        .where(or_(Campaign.status.in_(("active", "paused", "stopped")), Campaign.id.in_(running)))
        .order_by(Campaign.name)
    ).all()
    ids = [campaign.id for campaign in campaigns]
    alive = select(Node.name).where(Node.heartbeat_at >= now - NODE_SILENT_AFTER)
    runs: dict[int, list[CampaignRun]] = {}
    for run in session.scalars(
        select(CampaignRun).where(CampaignRun.campaign_id.in_(ids), CampaignRun.node.in_(alive))
    ):
        runs.setdefault(run.campaign_id, []).append(run)
    midnight = local_midnight or now.astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    today = live_figures(session, ids, midnight)
    month = live_figures(session, ids, now - ABANDON_WINDOW)
    if dialable is None:
        dialable = dialable_counts(session, ids, now)
    agents: dict[int, Counter[str]] = {}
    for campaign_id, state, count in session.execute(
        select(AgentSession.campaign_id, AgentSession.state, func.count())
        .where(AgentSession.campaign_id.in_(ids), AgentSession.state != "logged_out")
        .group_by(AgentSession.campaign_id, AgentSession.state)
    ):
        agents.setdefault(campaign_id, Counter())[state] = int(count)
    statuses = []
    for campaign in campaigns:
        mine = runs.get(campaign.id, [])
        ready = agents.get(campaign.id, Counter())["ready"]
        ringing = sum(run.ringing for run in mine)
        statuses.append(
            CampaignStatus(
                id=campaign.id,
                name=campaign.name,
                kind=campaign.kind,
                status=campaign.status,
                state=_state(mine),
                detail="; ".join(sorted({run.detail for run in mine if run.detail})),
                dial_mode=campaign.dial_mode,
                dial_level=round(ringing / max(1, ready), 2),
                lines=sum(run.lines for run in mine),
                ringing=ringing,
                up=sum(run.up for run in mine),
                waiting=sum(run.waiting for run in mine),
                today=today.get(campaign.id, Figures()),
                last_30_days=month.get(campaign.id, Figures()),
                abandon_target=campaign.abandon_target,
                dialable=dialable.get(campaign.id, 0),
                agents=dict(agents.get(campaign.id, Counter())),
            )
        )
    return statuses


def _state(runs: list[CampaignRun]) -> str:
    if not runs:
        return "not running"
    states = {run.state for run in runs}
    for preferred in ("dialing", "error", "no_leads", "no_agents"):
        if preferred in states:
            return preferred
    return sorted(states)[0]


def agent_statuses(session: Session, now: dt.datetime) -> list[AgentStatus]:
    rows = session.execute(
        select(AgentSession, User.username, Campaign.name)
        .join(User, User.id == AgentSession.user_id)
        .outerjoin(Campaign, Campaign.id == AgentSession.campaign_id)
        .where(AgentSession.state != "logged_out")
        .order_by(Campaign.name, AgentSession.state, User.username)
    ).all()
    return [
        AgentStatus(
            user_id=row.user_id,
            username=username,
            campaign=campaign,
            state=row.state,
            pause_code=row.pause_code,
            seconds_in_state=max(0.0, (now - row.state_since).total_seconds()),
            node=row.node,
            calls_taken=row.calls_taken,
        )
        for row, username, campaign in rows
    ]
