"""The live dashboard: each running campaign's state, calls, agents and abandon rate against
the 3% line, the agents on the floor, and charts from the hourly sums; pushed to the browser
over server-sent events within a second of the change in the database.

One board is read for every open dashboard of the process, at most every 0.3 s (at once
after a change made in this process): the campaigns' run rows, the agents' sessions, the
hourly sums of the last day and the bridges of the last hour (9 ms with a million leads and
two million attempts on SQLite). The leads' dialable counts scan the leads (0.4 s there), so a
thread of their own reads them every 15 s, and the "why is nothing dialing" counts every 30 s;
the board shows their last value and never waits for them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, Response, abort, current_app, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from campaigns import timeline, why
from campaigns.models import MAX_ABANDON_TARGET, Campaign, ImportRun, utcnow
from campaigns.monitor import (
    AgentStatus,
    CampaignStatus,
    agent_statuses,
    campaign_statuses,
    dialable_counts,
)
from web import charts, db
from web.campaigns import BUTTONS
from web.display import viewer_zone
from web.permissions import allow, may
from web.streams import Refreshed, Shared, shared, stream

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")
BOARD = "dialer.dashboard_board"
BOARD_MAX_AGE = 0.3
LOOK_EVERY = 0.2
DIALABLE_EVERY = 15.0
WHY_EVERY = 30.0
# Contacts in the last hour move by one a call: read apart from the board (which is read
# several times a second while a dashboard is open), at most this often.
CONTACTS_EVERY = 10.0
STATE_LABELS = {
    "dialing": "dialing",
    "no_leads": "no lead to dial",
    "no_agents": "no agent ready",
    "paused": "paused",
    "stopping": "stopping",
    "error": "error",
    "not running": "no node running it",
}
AGENT_STATE_LABELS = {
    "ready": "ready",
    "reserved": "connecting",
    "on_call": "on call",
    "wrap_up": "wrap-up",
    "paused": "paused",
}
CHARTS = ("hourly", "outcomes", "abandon")


def why_nothing_dials(
    engine: Engine, campaign_name: str, now: dt.datetime
) -> why.Explanation | None:
    """The "why is nothing dialing" counts of one campaign (`campaigns.why`): its leads by
    what keeps them from being dialed now, and when the next one will be. None hides the
    panel (a campaign renamed since the board was read)."""
    try:
        return why.why(engine, campaign_name, now)
    except why.CampaignNotFound:
        return None


def percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def count(value: int) -> str:
    return f"{value:,}"


def since_text(seconds: float) -> str:
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def campaign_view(
    status: CampaignStatus,
    dialable: int | None,
    contacts: int,
    version: str,
    explanation: why.Explanation | None,
) -> dict[str, Any]:
    """One campaign as the dashboard shows it: its figures as text, the level of each abandon
    rate (ok, amber from 80% of the target, red at it), the buttons its status offers."""
    today_rate = status.today.abandon_rate if status.today.live else None
    month_rate = status.last_30_days.abandon_rate if status.last_30_days.live else None
    agents = Counter(status.agents)
    fields = {
        "state": STATE_LABELS.get(status.state, status.state.replace("_", " ")),
        "detail": status.detail,
        "ringing": count(status.ringing),
        "up": count(status.up),
        "waiting": count(status.waiting),
        "lines": count(status.lines),
        "dial_level": f"{status.dial_level:.1f}",
        "ready": count(agents["ready"]),
        "talking": count(agents["reserved"] + agents["on_call"]),
        "wrap_up": count(agents["wrap_up"]),
        "paused": count(agents["paused"]),
        "attempts_today": count(status.today.attempts),
        "answer_rate": percent(status.today.answer_rate),
        "contacts_per_hour": count(contacts),
        "abandon_today": percent(today_rate),
        "abandon_today_of": f"{status.today.abandoned:,} of {status.today.live:,} live answers",
        "abandon_30d": percent(month_rate),
        "abandon_30d_of": f"{status.last_30_days.abandoned:,} of {status.last_30_days.live:,}",
        "target": percent(status.abandon_target),
        "dialable": "…" if dialable is None else count(dialable),
    }
    return {
        "id": status.id,
        "name": status.name,
        "kind": status.kind,
        "status": status.status,
        "dial_mode": status.dial_mode,
        "actions": list(BUTTONS.get(status.status, ())),
        "fields": fields,
        "levels": {
            "abandon_today": charts.abandon_level(today_rate, status.abandon_target),
            "abandon_30d": charts.abandon_level(month_rate, status.abandon_target),
        },
        # Where each rate sits on a gauge that ends at 4/3 of the 3% line.
        "gauges": {
            "abandon_today": _gauge(today_rate),
            "abandon_30d": _gauge(month_rate),
            "target": _gauge(status.abandon_target),
            "limit": _gauge(MAX_ABANDON_TARGET),
        },
        "charts": version,
        "why": None if explanation is None else _why_view(explanation),
    }


def _gauge(rate: float | None) -> float:
    if rate is None:
        return 0.0
    return round(min(1.0, rate / (MAX_ABANDON_TARGET * 4 / 3)), 4)


def _why_view(explanation: why.Explanation) -> dict[str, Any]:
    return {
        "summary": explanation.summary(),
        "reasons": [
            {"label": reason.label, "leads": count(reason.leads), "when": reason.when()}
            for reason in explanation.refused
        ],
    }


def agent_view(agent: AgentStatus, now: dt.datetime) -> dict[str, Any]:
    since = now - dt.timedelta(seconds=agent.seconds_in_state)
    label = AGENT_STATE_LABELS.get(agent.state, agent.state)
    if agent.state == "paused" and agent.pause_code:
        label = f"paused: {agent.pause_code}"
    return {
        "user_id": agent.user_id,
        "username": agent.username,
        "campaign": agent.campaign or "—",
        "state": agent.state,
        "label": label,
        "since": since.isoformat(),
        "for": since_text(agent.seconds_in_state),
        "calls": agent.calls_taken,
        "node": agent.node or "—",
    }


def charts_version(hours: Sequence[timeline.HourFigures]) -> str:
    """Changes whenever the scheduler's rollup changes one of these hours: the browser then
    loads the charts again, and not otherwise."""
    digest = hashlib.sha1(usedforsecurity=False)
    for hour in hours:
        digest.update(repr(hour).encode())
    return digest.hexdigest()[:12]


@dataclass
class BoardReader:
    """Reads the board every stream of the process shares (`web.streams.Shared`)."""

    sessions: sessionmaker[Session]
    engine: Engine
    dialable: Refreshed[dict[int, int]] = field(init=False)
    explained: dict[int, Refreshed[why.Explanation | None]] = field(default_factory=dict)

    contacts: Refreshed[dict[int, int]] = field(init=False)

    def __post_init__(self) -> None:
        self.dialable = Refreshed(self._count_dialable, DIALABLE_EVERY)
        self.contacts = Refreshed(self._count_contacts, CONTACTS_EVERY, wait_first=True)

    def _count_contacts(self) -> dict[int, int]:
        with self.sessions() as session:
            ids = list(session.scalars(select(Campaign.id)))
            return timeline.contacts_last_hour(session, ids, utcnow())

    def _count_dialable(self) -> dict[int, int]:
        # The campaigns as the board picks them, so that the counts are of the same ones.
        with self.sessions() as session:
            ids = [c.id for c in campaign_statuses(session, utcnow(), dialable={})]
            counts = dialable_counts(session, ids, utcnow())
            # Every campaign counted, none dialable included: one missing is not counted yet.
            return {campaign_id: counts.get(campaign_id, 0) for campaign_id in ids}

    def __call__(self) -> dict[str, Any]:
        now = utcnow()
        midnight = now.astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
        dialable = self.dialable.get()
        with self.sessions() as session:
            statuses = campaign_statuses(
                session, now, local_midnight=midnight, dialable=dialable or {}
            )
            ids = [s.id for s in statuses]
            hours = timeline.read_hours(
                session, ids, timeline.floor_hour(now - dt.timedelta(hours=24))
            )
            agents = agent_statuses(session, now)
        contacts = self.contacts.get() or {}
        campaigns = [
            campaign_view(
                status,
                None if dialable is None else dialable.get(status.id),
                contacts.get(status.id, 0),
                charts_version(hours[status.id]),
                self._why(status, now),
            )
            for status in statuses
        ]
        states = Counter(agent.state for agent in agents)
        floor = {
            "up": count(sum(s.up for s in statuses)),
            "ringing": count(sum(s.ringing for s in statuses)),
            "waiting": count(sum(s.waiting for s in statuses)),
            "ready": count(states["ready"]),
            "talking": count(states["reserved"] + states["on_call"]),
            "wrap_up": count(states["wrap_up"]),
            "paused": count(states["paused"]),
        }
        return {
            "now": now.isoformat(),
            "campaigns": campaigns,
            "agents": [agent_view(agent, now) for agent in agents],
            "floor": floor,
        }

    def _why(self, status: CampaignStatus, now: dt.datetime) -> why.Explanation | None:
        """Asked only of an active campaign that is not dialing."""
        if status.status != "active" or status.state == "dialing":
            self.explained.pop(status.id, None)
            return None
        if status.id not in self.explained:
            name = status.name
            self.explained[status.id] = Refreshed(
                lambda: why_nothing_dials(self.engine, name, utcnow()), WHY_EVERY
            )
        return self.explained[status.id].get()


def board(app: Any) -> Shared[dict[str, Any]]:
    def make() -> Shared[dict[str, Any]]:
        reader = BoardReader(app.extensions[db.SESSIONS], app.extensions[db.ENGINE])
        return Shared(reader, BOARD_MAX_AGE)

    return shared(app, BOARD, make)


@allow("account")
def home() -> Any:
    """`/`: staff to the dashboard, agents to their desktop."""
    if may(current_user.role, "dashboard.view"):
        return redirect(url_for("dashboard.overview"))
    if may(current_user.role, "desk.use"):
        return redirect(url_for("desk.index"))
    return redirect(url_for("auth.account"))


@bp.route("/")
@allow("dashboard.view")
def overview() -> Any:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    current = board(app).get()
    session = db.session()
    live_ids = {c["id"] for c in current["campaigns"]}
    others = [
        c
        for c in session.scalars(select(Campaign).order_by(Campaign.status, Campaign.name))
        if c.id not in live_ids
    ]
    imports = session.scalars(select(ImportRun).order_by(ImportRun.id.desc()).limit(5)).all()
    names = {c.id: c.name for c in session.scalars(select(Campaign))}
    return render_template(
        "dashboard/overview.html",
        board=current,
        others=others,
        imports=imports,
        names=names,
        charts=CHARTS,
    )


@bp.route("/events")
@allow("dashboard.view")
def events() -> Any:
    shared_board = board(current_app._get_current_object())  # type: ignore[attr-defined]
    return stream("board", shared_board.get, LOOK_EVERY)


@bp.route("/campaigns/<int:campaign_id>/<any(hourly, outcomes, abandon):chart>.svg")
@allow("dashboard.view")
def chart(campaign_id: int, chart: str) -> Any:
    """One chart of one campaign as an SVG image, in the viewer's time zone."""
    session = db.session()
    campaign = session.get(Campaign, campaign_id) or abort(404)
    now = utcnow()
    zone = viewer_zone()
    if chart == "abandon":
        since = now - dt.timedelta(days=timeline.TREND_DAYS + 1)
    else:
        since = timeline.floor_hour(now - dt.timedelta(hours=23))
    rows = timeline.read_hours(session, [campaign.id], since)[campaign.id]
    if chart == "hourly":
        svg = charts.hourly_chart(timeline.last_hours(rows, now), zone)
    elif chart == "outcomes":
        svg = charts.outcome_chart(timeline.outcome_counts(timeline.last_hours(rows, now)))
    else:
        svg = charts.abandon_chart(
            timeline.daily_abandons(rows, now, zone), campaign.abandon_target
        )
    return Response(svg, mimetype="image/svg+xml")
