"""The agent desktop: an agent logs in to a campaign of their groups, goes ready, takes the
calls the dialer connects to their phone and dispositions each one; between calls they may
preview a lead or dial a number by hand; on a call they may hang up or transfer it.

Every move goes through the agent service (`campaigns.agents`); what the node does (reserve
the agent for a call, bridge it, end it) reaches the page over server-sent events
(`web.streams`): the screen pop is on the agent's screen the moment the call is bridged.
Supervisors, managers and administrators may take calls here too.

Each action answers JSON to the page's script (`Accept: application/json`) and, for a page
without it, a message and a redirect back to the desktop.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from campaigns import agents, appointments, surveys
from campaigns.agents import AgentError, DebtCalls
from campaigns.compliance import REG_F_MAX_ATTEMPTS, REG_F_WINDOW
from campaigns.dispositions import NO_DISPOSITION, PARTY_LABELS, RIGHT_PARTY_CODES
from campaigns.models import (
    AgentGroupMember,
    AgentSession,
    Campaign,
    CampaignAgentGroup,
    DispositionCode,
    NodeCommand,
    User,
    utcnow,
)
from web import db
from web.display import viewer_zone
from web.permissions import allow
from web.streams import Shared, shared, stream

bp = Blueprint("desk", __name__, url_prefix="/desk")

FLOOR = "dialer.desk_floor"
# The agents' sessions are read again this often for every open desktop of the process (a
# node in another process moves them); an agent's own moves wake the streams at once.
FLOOR_MAX_AGE = 0.2
LOOK_EVERY = 0.2
# A failed command (a dial the node could not place, a transfer to an agent no longer ready)
# is shown to its agent for this long.
NOTICE_FOR = dt.timedelta(seconds=60)
GIVE_UP_AFTER = 1000
STATE_LABELS = {
    "logged_out": "Logged out",
    "ready": "Ready",
    "reserved": "Connecting",
    "on_call": "On call",
    "wrap_up": "Wrap-up",
    "paused": "Paused",
}
REASON_LABELS = {
    "new": "New lead",
    "recycled": "Recycled lead",
    "callback": "Callback",
    "transfer": "Transferred to you",
    "manual": "Manual dial",
    "preview": "Preview",
}
COMMAND_FAILURES = {
    "dial": "The dial did not go out",
    "hangup": "The hang-up did not reach the call",
    "transfer": "The transfer failed",
}
# The lead's fields a screen pop shows, in this order, when they have a value (the phone
# number is in its heading).
POP_FIELDS = (
    ("email", "Email"),
    ("account_ref", "Account"),
    ("balance", "Balance"),
    ("due_date", "Due date"),
    ("state", "US state"),
)
# Fields a campaign kind's agents look at first, shown large at the top of the screen pop.
HIGHLIGHTS = {
    "collections": (("balance", "Balance"), ("due_date", "Due"), ("account_ref", "Account")),
}
CALLBACK_CODE = "CALLBACK"
# Shortcut keys 1-9, one per disposition in the campaign's catalogue order.
SHORTCUTS = "123456789"
MAX_NOTES = 2000
AMOUNT = re.compile(r"^\d{1,12}(\.\d{1,2})?$")


# -- what the streams watch


@dataclass(frozen=True)
class Seat:
    """One agent's session as the open desktops watch it."""

    user_id: int
    username: str
    campaign_id: int | None
    state: str
    since: dt.datetime
    pause_code: str | None
    pause_after_call: str | None
    attempt_id: int | None
    node: str | None
    wrap_deadline: dt.datetime | None
    calls_taken: int


@dataclass(frozen=True)
class Notice:
    id: int
    agent_id: int
    text: str
    at: dt.datetime


@dataclass(frozen=True)
class Floor:
    seats: dict[int, Seat]
    campaign_status: dict[int, str]
    notices: tuple[Notice, ...]
    command_mark: int


@dataclass
class FloorReader:
    """Reads every session, the statuses of their campaigns, and the commands finished since
    the last read that failed (their agents are told why). Commands are read by id from the
    oldest one still waiting for its node, so each read touches only the newest rows."""

    sessions: sessionmaker[Session]
    mark: int | None = None
    waiting: set[int] = field(default_factory=set)
    recent: deque[Notice] = field(default_factory=deque)

    def __call__(self) -> Floor:
        now = utcnow()
        with self.sessions() as session:
            seats = {
                row[0]: Seat(*row)
                for row in session.execute(
                    select(
                        AgentSession.user_id,
                        User.username,
                        AgentSession.campaign_id,
                        AgentSession.state,
                        AgentSession.state_since,
                        AgentSession.pause_code,
                        AgentSession.pause_after_call,
                        AgentSession.current_attempt_id,
                        AgentSession.node,
                        AgentSession.wrap_deadline,
                        AgentSession.calls_taken,
                    ).join(User, User.id == AgentSession.user_id)
                )
            }
            ids = {seat.campaign_id for seat in seats.values() if seat.campaign_id is not None}
            statuses = {
                campaign_id: status
                for campaign_id, status in session.execute(
                    select(Campaign.id, Campaign.status).where(Campaign.id.in_(ids))
                )
            }
            self._read_commands(session, now)
        while self.recent and self.recent[0].at < now - NOTICE_FOR:
            self.recent.popleft()
        assert self.mark is not None
        return Floor(seats, statuses, tuple(self.recent), self.mark)

    def _read_commands(self, session: Session, now: dt.datetime) -> None:
        if self.mark is None:
            self.mark = int(session.scalar(select(func.max(NodeCommand.id))) or 0)
            return
        # A command its node never carried out (the node died) is given up after a thousand
        # newer ones, so that the reads stay short.
        self.waiting = {i for i in self.waiting if i > self.mark - GIVE_UP_AFTER}
        low = min(self.waiting, default=self.mark + 1) - 1
        rows = session.execute(
            select(
                NodeCommand.id,
                NodeCommand.agent_id,
                NodeCommand.kind,
                NodeCommand.error,
                NodeCommand.done_at,
            )
            .where(NodeCommand.id > low)
            .order_by(NodeCommand.id)
        ).all()
        seen = {notice.id for notice in self.recent}
        for command_id, agent_id, kind, error, done_at in rows:
            self.mark = max(self.mark, command_id)
            if done_at is None:
                self.waiting.add(command_id)
                continue
            self.waiting.discard(command_id)
            if error and agent_id is not None and command_id not in seen:
                failure = COMMAND_FAILURES.get(kind, f"{kind} failed")
                self.recent.append(Notice(command_id, agent_id, f"{failure}: {error}", now))


def floor(app: Any) -> Shared[Floor]:
    factory = app.extensions[db.SESSIONS]
    return shared(app, FLOOR, lambda: Shared(FloorReader(factory), FLOOR_MAX_AGE))


def pop_view(pop: Mapping[str, Any]) -> dict[str, Any]:
    """A screen pop as the desktop shows it: the lead's name, why it was dialled, its fields
    with their labels, its own fields, the script and the zones for its local clock."""
    name = " ".join(str(pop[k]) for k in ("first_name", "last_name") if pop.get(k))
    reason = str(pop.get("reason") or "new")
    highlighted = HIGHLIGHTS.get(str(pop.get("kind")), ())
    shown = {key for key, _ in highlighted}
    fields = [
        [label, _shown(key, pop[key])]
        for key, label in POP_FIELDS
        if pop.get(key) not in (None, "") and key not in shown
    ]
    attempts = int(pop.get("attempts") or 0)
    return {
        "key": f"{pop.get('lead_id')}:{reason}",
        "lead_id": pop.get("lead_id"),
        "name": name or str(pop.get("phone") or "Unknown lead"),
        "phone": pop.get("phone"),
        "reason": reason,
        "reason_label": REASON_LABELS.get(reason, reason),
        "attempts": attempts,
        "attempts_label": "first call" if attempts == 0 else f"called {attempts} times before",
        "zones": [str(z) for z in pop.get("time_zones") or []],
        "highlights": [
            [label, _shown(key, pop[key])]
            for key, label in highlighted
            if pop.get(key) not in (None, "")
        ],
        "fields": fields,
        "custom": [[str(k), str(v)] for k, v in (pop.get("custom_fields") or {}).items()],
        "script": str(pop.get("script") or ""),
        "preview": pop.get("preview_lead_id") is not None,
        "reg_f": pop.get("reg_f") or [],
    }


def reg_f_lines(calls: DebtCalls, now: dt.datetime) -> list[list[Any]]:
    """Regulation F's counters as a collections screen pop shows them: label, value, and
    whether the rule binds now (the week's calls at the cap, a conversation within 7 days)."""
    lines: list[list[Any]] = [
        [
            "Calls about this debt, last 7 days",
            f"{calls.week} of {REG_F_MAX_ATTEMPTS}",
            calls.week >= REG_F_MAX_ATTEMPTS,
        ]
    ]
    if calls.last_conversation is None:
        lines.append(["Last conversation about it", "none recorded", False])
        return lines
    since = now - calls.last_conversation
    ago = {0: "today", 1: "1 day ago"}.get(since.days, f"{since.days} days ago")
    lines.append(["Last conversation about it", ago, since < REG_F_WINDOW])
    return lines


def _shown(key: str, value: Any) -> str:
    if key == "balance":
        try:
            return f"{Decimal(str(value)):,.2f}"
        except InvalidOperation:
            return str(value)
    return str(value)


def desk_state(
    seat: Seat | None,
    status: str | None,
    pop: Mapping[str, Any] | None,
    others: list[str],
    notices: list[Notice],
    now: dt.datetime,
) -> dict[str, Any]:
    """What one agent's desktop shows now, as the stream sends it (JSON)."""
    if seat is None:
        state = "logged_out"
        since = now
    else:
        state, since = seat.state, seat.since
    wrap_total = None
    if seat is not None and state == "wrap_up" and seat.wrap_deadline is not None:
        wrap_total = max(0.0, (seat.wrap_deadline - since).total_seconds())
    label = STATE_LABELS.get(state, state)
    if state == "paused" and seat is not None and seat.pause_code:
        label = f"Paused: {seat.pause_code}"
    return {
        "now": now.isoformat(),
        "state": state,
        "label": label,
        "since": since.isoformat(),
        "wrap_total_s": wrap_total,
        "pause_code": seat.pause_code if seat else None,
        "pause_after_call": seat.pause_after_call if seat else None,
        "campaign_id": seat.campaign_id if seat else None,
        "campaign_status": status,
        "node": seat.node if seat else None,
        "attempt": seat.attempt_id if seat else None,
        "calls_taken": seat.calls_taken if seat else 0,
        "pop": pop_view(pop) if pop else None,
        "transfer_to": others,
        "notices": [{"id": n.id, "text": n.text} for n in notices],
    }


def desk_look(app: Any, user_id: int) -> Callable[[], dict[str, Any]]:
    """The stream's look at one agent: the shared floor, and the agent's screen pop read
    again only when their session moved."""
    watched = floor(app)
    factory: sessionmaker[Session] = app.extensions[db.SESSIONS]
    mark = watched.get().command_mark
    loaded: dict[str, Any] = {"key": None, "pop": None}

    def look() -> dict[str, Any]:
        now = utcnow()
        current = watched.get()
        seat = current.seats.get(user_id)
        key = None if seat is None else (seat.state, seat.since, seat.attempt_id, seat.campaign_id)
        if key != loaded["key"]:
            pop = None
            if seat is not None and seat.state in agents.IN_CALL:
                with factory() as session:
                    pop = agents.current(session, user_id).screen_pop or None
                    if pop and pop.get("kind") == "collections" and pop.get("lead_id"):
                        counted = agents.debt_calls(session, int(pop["lead_id"]), now)
                        pop["reg_f"] = reg_f_lines(counted, now)
            loaded.update(key=key, pop=pop)
        others = []
        if seat is not None and seat.campaign_id is not None:
            others = sorted(
                s.username
                for s in current.seats.values()
                if s.campaign_id == seat.campaign_id and s.state == "ready" and s.user_id != user_id
            )
        notices = [n for n in current.notices if n.agent_id == user_id and n.id > mark]
        status = None if seat is None else current.campaign_status.get(seat.campaign_id or 0)
        return desk_state(seat, status, loaded["pop"], others, notices, now)

    return look


# -- the disposition form


def lead_zone(pop: Mapping[str, Any], fallback: zoneinfo.ZoneInfo) -> zoneinfo.ZoneInfo:
    """The zone a callback time is typed in: the lead's own (its first, when its number spans
    several), else the agent's."""
    for name in pop.get("time_zones") or []:
        try:
            return zoneinfo.ZoneInfo(str(name))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            continue
    return fallback


def callback_time(form: Mapping[str, str], zone: zoneinfo.ZoneInfo) -> dt.datetime | None:
    """The callback's date and time as typed, in `zone`; None when both are empty."""
    day, clock = form.get("callback_date", "").strip(), form.get("callback_time", "").strip()
    if not day and not clock:
        return None
    if not day or not clock:
        raise AgentError(
            f"a callback needs both a date and a time (got date {day!r}, time {clock!r})"
        )
    try:
        local = dt.datetime.combine(dt.date.fromisoformat(day), dt.time.fromisoformat(clock))
    except ValueError:
        raise AgentError(
            f"callback date {day!r} and time {clock!r}: expected YYYY-MM-DD and HH:MM"
        ) from None
    return local.replace(tzinfo=zone).astimezone(dt.UTC)


def collections_form(form: Mapping[str, str], code: str) -> dict[str, Any]:
    """Collections: who the agent is speaking with, which a code about the debt needs
    confirmed first, and the promise to pay."""
    party = form.get("party", "").strip() or None
    if party is None and code in RIGHT_PARTY_CODES:
        raise AgentError(
            f"confirm you are speaking with the debtor (right party) before recording {code}"
        )
    return {"party": party, **promise_to_pay(form, code)}


def promise_to_pay(form: Mapping[str, str], code: str) -> dict[str, Any]:
    """Collections: the amount and date a debtor promised to pay (only with PTP)."""
    if code != "PTP":
        return {}
    amount_text = form.get("promise_amount", "").strip().replace(",", "")
    date_text = form.get("promise_date", "").strip()
    if not AMOUNT.match(amount_text):
        raise AgentError(
            f"promise amount {form.get('promise_amount', '')!r} is not an amount such as 150.00"
        )
    try:
        date = dt.date.fromisoformat(date_text)
    except ValueError:
        raise AgentError(f"promise date {date_text!r}: expected YYYY-MM-DD") from None
    return {"promise_amount": Decimal(amount_text), "promise_date": date}


def appointment_slot(form: Mapping[str, str], code: str) -> dict[str, Any]:
    """Appointment setting: the slot a lead is booked into (only with BOOKED)."""
    if code != "BOOKED":
        return {}
    raw = form.get("appointment_slot", "").strip()
    if not raw.isdigit():
        raise AgentError(f"choose the appointment's time (got {raw!r})")
    return {"appointment_slot": int(raw)}


def survey_answers(form: Mapping[str, str], code: str) -> dict[str, Any]:
    """A survey read by the agent: the answer picked for each question (answer_<key>)."""
    answers = {
        name.removeprefix("answer_"): str(form.get(name, "")).strip()
        for name in form
        if name.startswith("answer_")
    }
    answers = {key: digit for key, digit in answers.items() if digit}
    return {"survey_answers": answers} if answers else {}


# What each campaign kind's disposition form adds to the code, the notes and the callback: a
# template of fields (templates/desk/kind_<kind>.html) and a reader that turns them into
# `agents.disposition` keyword arguments.
KIND_FORMS: dict[str, Callable[[Mapping[str, str], str], dict[str, Any]]] = {
    "collections": collections_form,
    "appointment": appointment_slot,
    "survey": survey_answers,
}
FREE_SLOTS_SHOWN = 30


def kind_context(session: Session, campaign: Campaign, zone: zoneinfo.ZoneInfo) -> dict[str, Any]:
    """What a kind's form shows: the calendar's free slots, the survey's questions, the
    parties a collections agent may be speaking with."""
    if campaign.kind == "collections":
        return {"parties": list(PARTY_LABELS.items()), "right_party_codes": RIGHT_PARTY_CODES}
    if campaign.kind == "appointment":
        free = appointments.free_slots(session, campaign.id, utcnow(), limit=FREE_SLOTS_SHOWN)
        return {
            "slots": [
                (
                    slot.id,
                    f"{slot.starts_at.astimezone(zone):%a %d %b %H:%M}",
                    slot.capacity - slot.booked,
                )
                for slot in free
            ]
        }
    if campaign.kind == "survey":
        survey = surveys.load(session, campaign.id)
        return {"questions": list(survey.questions) if survey is not None else []}
    return {}


# -- pages


def _campaigns_of(session: Session, user_id: int) -> list[Campaign]:
    """The campaigns the user's groups work, but finished ones."""
    return list(
        session.scalars(
            select(Campaign)
            .join(CampaignAgentGroup, CampaignAgentGroup.campaign_id == Campaign.id)
            .join(AgentGroupMember, AgentGroupMember.group_id == CampaignAgentGroup.group_id)
            .where(AgentGroupMember.user_id == user_id, Campaign.status != "finished")
            .distinct()
            .order_by(Campaign.name)
        )
    )


@bp.route("/")
@allow("desk.use")
def index() -> Any:
    session = db.session()
    user = session.get_one(User, current_user.id)
    row = session.get(AgentSession, user.id)
    if row is None or row.state == "logged_out" or row.campaign_id is None:
        return render_template(
            "desk/login.html",
            user=user,
            campaigns=_campaigns_of(session, user.id),
        )
    campaign = session.get_one(Campaign, row.campaign_id)
    codes = [
        (code, label)
        for code, label in session.execute(
            select(DispositionCode.code, DispositionCode.label)
            .where(DispositionCode.campaign_id == campaign.id)
            .order_by(DispositionCode.id)
        )
        if code != NO_DISPOSITION[0]
    ]
    return render_template(
        "desk/index.html",
        user=user,
        campaign=campaign,
        codes=list(zip(SHORTCUTS, codes, strict=False)),
        extra_codes=codes[len(SHORTCUTS) :],
        callback_code=CALLBACK_CODE,
        kind_form=f"desk/kind_{campaign.kind}.html",
        kind=kind_context(session, campaign, viewer_zone()),
        agent_zone=viewer_zone().key,
    )


@bp.route("/events")
@allow("desk.use")
def events() -> Any:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return stream("desk", desk_look(app, current_user.id), LOOK_EVERY)


@bp.route("/phone")
@allow("desk.use")
def phone() -> Any:
    user = db.session().get_one(User, current_user.id)
    return render_template("desk/phone.html", user=user)


# -- actions


def _answer(message: str) -> Any:
    if request.accept_mimetypes.best == "application/json":
        return jsonify(ok=True, message=message)
    flash(message, "success")
    return redirect(url_for("desk.index"))


def _refused(error: AgentError) -> Any:
    if request.accept_mimetypes.best == "application/json":
        return jsonify(ok=False, error=str(error), reason=error.reason), 422
    flash(f"Not done: {error}", "error")
    return redirect(url_for("desk.index"))


def _act(action: Callable[[Session, int], str]) -> Any:
    session = db.session()
    try:
        message = action(session, current_user.id)
    except AgentError as error:
        session.rollback()
        return _refused(error)
    return _answer(message)


@bp.route("/login", methods=["POST"])
@allow("desk.use")
def login() -> Any:
    def act(session: Session, user_id: int) -> str:
        raw = request.form.get("campaign_id", "")
        if not raw.isdigit():
            raise AgentError(f"choose a campaign (got {raw!r})")
        row = agents.login(session, user_id, int(raw))
        campaign = session.get_one(Campaign, row.campaign_id)
        return f"Logged in to {campaign.name}, paused. Go ready when you are."

    return _act(act)


@bp.route("/ready", methods=["POST"])
@allow("desk.use")
def ready() -> Any:
    def act(session: Session, user_id: int) -> str:
        agents.ready(session, user_id)
        return "You are ready: calls come to your phone."

    return _act(act)


@bp.route("/pause", methods=["POST"])
@allow("desk.use")
def pause() -> Any:
    def act(session: Session, user_id: int) -> str:
        code = request.form.get("code", "").strip()
        if not code:
            raise AgentError("choose a pause code")
        when = agents.pause(session, user_id, code)
        if when == "paused":
            return f"Paused ({code})."
        return f"You will be paused ({code}) when this call is dispositioned."

    return _act(act)


@bp.route("/logout", methods=["POST"])
@allow("desk.use")
def logout() -> Any:
    def act(session: Session, user_id: int) -> str:
        agents.logout(session, user_id)
        return "Logged out of the campaign."

    return _act(act)


@bp.route("/disposition", methods=["POST"])
@allow("desk.use")
def disposition() -> Any:
    def act(session: Session, user_id: int) -> str:
        form = request.form
        code = form.get("code", "").strip()
        if not code:
            raise AgentError("choose a disposition")
        notes = form.get("notes", "")
        if len(notes) > MAX_NOTES:
            raise AgentError(f"notes have {len(notes)} characters; at most {MAX_NOTES}")
        row = session.get(AgentSession, user_id)
        pop = dict(row.screen_pop or {}) if row is not None else {}
        campaign = session.get(Campaign, row.campaign_id) if row and row.campaign_id else None
        extra: dict[str, Any] = {}
        if code == CALLBACK_CODE:
            extra["callback_at"] = callback_time(form, lead_zone(pop, viewer_zone()))
            extra["personal_callback"] = form.get("personal") in ("on", "1", "yes")
        if campaign is not None and campaign.kind in KIND_FORMS:
            extra.update(KIND_FORMS[campaign.kind](form, code))
        agents.disposition(session, user_id, code, notes=notes, **extra)
        return f"{code} recorded."

    return _act(act)


@bp.route("/preview/next", methods=["POST"])
@allow("desk.use")
def preview_next() -> Any:
    def act(session: Session, user_id: int) -> str:
        pop = agents.preview_next(session, user_id)
        if pop is None:
            return "No lead is due for a call now."
        return "Preview the lead, then dial or skip it."

    return _act(act)


@bp.route("/preview/dial", methods=["POST"])
@allow("desk.use")
def preview_dial() -> Any:
    def act(session: Session, user_id: int) -> str:
        agents.preview_dial(session, user_id)
        return "Dialling the lead."

    return _act(act)


@bp.route("/preview/skip", methods=["POST"])
@allow("desk.use")
def preview_skip() -> Any:
    def act(session: Session, user_id: int) -> str:
        agents.preview_skip(session, user_id)
        return "Skipped: the lead goes back to the list."

    return _act(act)


@bp.route("/dial", methods=["POST"])
@allow("desk.use")
def manual_dial() -> Any:
    def act(session: Session, user_id: int) -> str:
        number = request.form.get("number", "").strip()
        if not number:
            raise AgentError("type the number to dial")
        agents.manual_dial(session, user_id, number)
        return f"Dialling {number}."

    return _act(act)


@bp.route("/hangup", methods=["POST"])
@allow("desk.use")
def hangup() -> Any:
    def act(session: Session, user_id: int) -> str:
        agents.hangup(session, user_id)
        return "Hanging up."

    return _act(act)


@bp.route("/transfer", methods=["POST"])
@allow("desk.use")
def transfer() -> Any:
    def act(session: Session, user_id: int) -> str:
        target = (request.form.get("agent") or request.form.get("number") or "").strip()
        if not target:
            raise AgentError("choose an agent or type a number to transfer to")
        return f"Transferring the call to {agents.transfer(session, user_id, target)}."

    return _act(act)
