"""The agent service: what an agent does in a session, for the console, the API and the
demo's simulated agents alike (ARCHITECTURE §3a).

An agent logs in to one campaign (paused), goes ready, takes the calls the node connects,
dispositions each one, pauses with a code and logs out; in between they may preview a lead
and dial or skip it, dial a number by hand, hang up and transfer. Every dial passes the
compliance gate, here and again in the node right before the INVITE.

The session lives in `agent_sessions`, moved by two hands: the agent's (these functions:
logged_out, ready, paused, and wrap_up to ready by a disposition) and the owning node's
(`reserve_for_call`, `bridged`, `call_ended`: ready to reserved to on_call to wrap_up). Each
move is one conditional UPDATE on the state it leaves, so the two never undo each other: a
pause asked while the node reserves the agent for a call becomes `pause_after_call`. What
needs the line pool (a dial, a hang-up, a transfer) is a `node_commands` row for the node that
owns the session.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, and_, case, func, select, update
from sqlalchemy.orm import Session

from campaigns import appointments, dnc, hopper, live, scripts, surveys
from campaigns.compliance import REG_F_WINDOW, DialKind, Verdict
from campaigns.db import begin_write as _write
from campaigns.dispositions import DispositionError, record_disposition
from campaigns.leads import PhoneAnalyzer
from campaigns.models import (
    AgentGroup,
    AgentGroupMember,
    AgentSession,
    CallAttempt,
    Callback,
    Campaign,
    CampaignAgentGroup,
    DispositionCode,
    Lead,
    LeadList,
    NodeCommand,
    User,
    utcnow,
)

# States in which an agent is logged in and counted by the pacer (paused ones are not).
WORKING = ("ready", "reserved", "on_call", "wrap_up")
IN_CALL = ("reserved", "on_call", "wrap_up")
# The list a campaign's hand-dialled numbers join when they are not leads yet.
MANUAL_LIST = "manual dials"
LOGIN_PAUSE = "LOGIN"


class AgentError(ValueError):
    """What an agent asked cannot be done now; the message says why, for the agent.
    `reason` is the compliance gate's stable code when the gate refused a dial."""

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


def _session(session: Session, user_id: int) -> AgentSession:
    row = session.get(AgentSession, user_id, populate_existing=True)
    if row is None:
        raise AgentError("you are not logged in to a campaign")
    return row


def _move(session: Session, user_id: int, leaving: tuple[str, ...], **values: Any) -> bool:
    """One conditional move of the session out of one of `leaving`: False when its state had
    changed meanwhile (the node reserved the agent, say)."""
    now = utcnow()
    values.setdefault("updated_at", now)
    if "state" in values:
        values.setdefault("state_since", now)
    result = session.execute(
        update(AgentSession)
        .where(AgentSession.user_id == user_id, AgentSession.state.in_(leaving))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def may_work(session: Session, user_id: int, campaign_id: int) -> bool:
    """An agent works the campaigns of their groups."""
    return (
        session.scalar(
            select(func.count())
            .select_from(AgentGroupMember)
            .join(
                CampaignAgentGroup,
                CampaignAgentGroup.group_id == AgentGroupMember.group_id,
            )
            .where(
                AgentGroupMember.user_id == user_id, CampaignAgentGroup.campaign_id == campaign_id
            )
        )
        or 0
    ) > 0


def add_to_campaign(session: Session, user_id: int, campaign: Campaign) -> AgentGroup:
    """Puts an agent in the campaign's own group (created on first use); the caller commits."""
    name = f"{campaign.name} agents"
    group = session.scalar(select(AgentGroup).where(AgentGroup.name == name))
    if group is None:
        group = AgentGroup(name=name)
        session.add(group)
        session.flush()
        session.add(CampaignAgentGroup(campaign_id=campaign.id, group_id=group.id))
    member = session.get(AgentGroupMember, (group.id, user_id))
    if member is None:
        session.add(AgentGroupMember(group_id=group.id, user_id=user_id))
    return group


# -- the agent's own moves


def login(
    session: Session, user_id: int, campaign_id: int, *, phone_uri: str | None = None
) -> AgentSession:
    """Into `campaign_id`, paused (LOGIN): the agent goes ready when they are."""
    _write(session)
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise AgentError(f"user {user_id} does not exist or is not active")
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise AgentError(f"no campaign with id {campaign_id}")
    if not may_work(session, user_id, campaign_id):
        raise AgentError(f"{user.username} is not in an agent group of campaign {campaign.name!r}")
    phone = phone_uri or user.sip_uri
    if not phone or not phone.startswith(("sip:", "sips:")):
        raise AgentError(
            f"{user.username} has no SIP phone (got {phone!r}; expected sip:user@host[:port])"
        )
    row = session.get(AgentSession, user_id)
    now = utcnow()
    if row is None:
        row = AgentSession(user_id=user_id, state="logged_out")
        session.add(row)
    elif row.state in IN_CALL:
        raise AgentError("finish the current call before logging in again")
    row.campaign_id = campaign_id
    row.node = None  # a node running the campaign takes the session
    row.state, row.state_since, row.pause_code = "paused", now, LOGIN_PAUSE
    row.pause_after_call = None
    row.phone_uri = phone
    row.current_attempt_id = None
    row.screen_pop = {}
    row.wrap_deadline = None
    row.logged_in_at = now
    row.updated_at = now
    live.commit_and_wake(session)
    return row


def ready(session: Session, user_id: int) -> None:
    _write(session)
    row = _session(session, user_id)
    if row.state == "wrap_up":
        raise AgentError("disposition the last call first")
    if not _move(session, user_id, ("paused", "ready"), state="ready", pause_code=None):
        raise AgentError(f"you cannot go ready while {row.state.replace('_', ' ')}")
    session.execute(
        update(AgentSession).where(AgentSession.user_id == user_id).values(pause_after_call=None)
    )
    live.commit_and_wake(session)


def pause(session: Session, user_id: int, code: str) -> str:
    """Pauses now, or after the current call; returns which ("paused" / "after call")."""
    _write(session)
    row = _session(session, user_id)
    if row.state == "logged_out":
        raise AgentError("you are not logged in to a campaign")
    campaign = session.get_one(Campaign, row.campaign_id)
    allowed = [*campaign.pause_codes, LOGIN_PAUSE]
    if code not in allowed:
        raise AgentError(f"pause code {code!r} is not one of {', '.join(campaign.pause_codes)}")
    if _move(session, user_id, ("ready", "paused"), state="paused", pause_code=code):
        live.commit_and_wake(session)
        return "paused"
    _move(session, user_id, IN_CALL, pause_after_call=code)
    live.commit_and_wake(session)
    return "after call"


def logout(session: Session, user_id: int) -> None:
    _write(session)
    row = _session(session, user_id)
    if row.state == "logged_out":
        return
    preview = (row.screen_pop or {}).get("preview_lead_id")
    if not _move(
        session,
        user_id,
        ("ready", "paused") if preview is None else ("reserved",),
        state="logged_out",
        node=None,
        pause_code=None,
        screen_pop={},
    ):
        raise AgentError("finish the current call before logging out")
    live.commit_and_wake(session)
    if preview is not None:
        hopper.release(session.get_bind(), [preview])  # type: ignore[arg-type]


@dataclass(frozen=True)
class CallView:
    """What an agent's screen shows: their state and, on a call, the screen pop."""

    state: str
    since: dt.datetime
    campaign_id: int | None
    pause_code: str | None
    pause_after_call: str | None
    attempt_id: int | None
    screen_pop: dict[str, Any]
    dispositions: tuple[tuple[str, str], ...]


def current(session: Session, user_id: int) -> CallView:
    row = session.get(AgentSession, user_id, populate_existing=True)
    if row is None:
        return CallView("logged_out", utcnow(), None, None, None, None, {}, ())
    codes: tuple[tuple[str, str], ...] = ()
    if row.campaign_id is not None:
        codes = tuple(
            session.execute(
                select(DispositionCode.code, DispositionCode.label)
                .where(DispositionCode.campaign_id == row.campaign_id)
                .order_by(DispositionCode.id)
            )
        )
    return CallView(
        row.state,
        row.state_since,
        row.campaign_id,
        row.pause_code,
        row.pause_after_call,
        row.current_attempt_id,
        dict(row.screen_pop or {}),
        codes,
    )


def disposition(
    session: Session,
    user_id: int,
    code: str,
    *,
    notes: str = "",
    callback_at: dt.datetime | None = None,
    personal_callback: bool = False,
    promise_amount: Decimal | None = None,
    promise_date: dt.date | None = None,
    appointment_slot: int | None = None,
    survey_answers: Mapping[str, str] | None = None,
    party: str | None = None,
) -> None:
    """Records what came of the agent's last call, decides its lead's fate (a callback, an
    opt-out, a retry, done) and makes the agent ready, or paused if they asked during the call.

    The kind's data goes with it, in the same transaction: an appointment campaign's BOOKED
    takes `appointment_slot` (refused when the slot is full); a survey read by the agent keeps
    `survey_answers` (question key -> digit), checked against the campaign's survey; a
    collections agent's `party` (who they spoke with) is refused with a code only the debtor
    can be given (a promise to pay from a third party, say)."""
    _write(session)
    row = _session(session, user_id)
    if row.state != "wrap_up" or row.current_attempt_id is None:
        raise AgentError("there is no ended call to disposition")
    known = session.scalar(
        select(DispositionCode.code).where(
            DispositionCode.campaign_id == row.campaign_id, DispositionCode.code == code
        )
    )
    if known is None:
        raise AgentError(f"{code!r} is not a disposition of this campaign")
    if code == "PTP":
        if promise_amount is None or promise_amount <= 0:
            raise AgentError("a promise to pay needs an amount above 0")
        if promise_date is None or promise_date < dt.datetime.now(dt.UTC).date():
            raise AgentError("a promise to pay needs a date, today or later")
    if code == "CALLBACK" and callback_at is not None and callback_at <= utcnow():
        raise AgentError(f"callback time {callback_at.isoformat()} is in the past")
    attempt = session.get_one(CallAttempt, row.current_attempt_id)
    _kind_data(session, attempt, user_id, code, appointment_slot, survey_answers)
    try:
        record_disposition(
            session,
            attempt,
            code,
            agent_id=user_id,
            notes=notes,
            callback_at=callback_at,
            promise_amount=promise_amount,
            promise_date=promise_date,
            personal_callback=personal_callback,
            party=party,
        )
    except DispositionError as error:
        session.rollback()
        raise AgentError(str(error)) from None
    _finish_wrap_up(session, row, attempt.id)
    live.commit_and_wake(session)


def _kind_data(
    session: Session,
    attempt: CallAttempt,
    user_id: int,
    code: str,
    slot: int | None,
    answers: Mapping[str, str] | None,
) -> None:
    """What a disposition carries for its campaign's kind, stored with it (the caller
    commits, or rolls back when the disposition is refused)."""
    if code == "BOOKED":
        if slot is None:
            raise AgentError("choose the appointment's time (a slot of the calendar) to book it")
        try:
            appointments.book(
                session, attempt.campaign_id, attempt.lead_id, slot, agent_id=user_id,
                attempt_id=attempt.id,
            )  # fmt: skip
        except appointments.AppointmentError as error:
            session.rollback()
            raise AgentError(str(error)) from None
    if answers:
        survey = surveys.load(session, attempt.campaign_id)
        if survey is None:
            raise AgentError("this campaign has no survey to answer")
        try:
            checked = surveys.agent_answers(survey, answers)
        except surveys.SurveyError as error:
            raise AgentError(str(error)) from None
        for question, digit in checked.items():
            surveys.record_answer(session, attempt, question, digit, source="agent")


def _finish_wrap_up(session: Session, row: AgentSession, attempt_id: int) -> None:
    after = row.pause_after_call
    moved = session.execute(
        update(AgentSession)
        .where(
            AgentSession.user_id == row.user_id,
            AgentSession.state == "wrap_up",
            AgentSession.current_attempt_id == attempt_id,
        )
        .values(
            state="paused" if after else "ready",
            pause_code=after,
            pause_after_call=None,
            state_since=utcnow(),
            current_attempt_id=None,
            screen_pop={},
            wrap_deadline=None,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        session.rollback()
        raise AgentError("that call was dispositioned already (the wrap-up timed out)")


def expire_wrap_up(session: Session, user_id: int, attempt_id: int) -> bool:
    """The wrap-up timed out: the campaign's default disposition, and the agent ready again
    (or paused if asked). The caller commits; False if the agent dispositioned meanwhile."""
    row = session.get(AgentSession, user_id, populate_existing=True)
    if row is None or row.state != "wrap_up" or row.current_attempt_id != attempt_id:
        return False
    attempt = session.get_one(CallAttempt, attempt_id)
    campaign = session.get_one(Campaign, attempt.campaign_id)
    record_disposition(
        session, attempt, campaign.default_disposition, notes="the wrap-up timed out"
    )
    _finish_wrap_up(session, row, attempt_id)
    return True


# -- dials an agent asks for


def _command(session: Session, row: AgentSession, what: str, **args: Any) -> NodeCommand:
    if row.node is None:
        raise AgentError("no dialer node has taken your session yet: try again in a second")
    command = NodeCommand(
        node=row.node, agent_id=row.user_id, campaign_id=row.campaign_id, kind=what, args=args
    )
    session.add(command)
    return command


def _refused(verdict: Verdict) -> AgentError:
    return AgentError(f"the compliance gate refused the dial: {verdict.detail}", verdict.reason)


def _claimant(user_id: int) -> str:
    return f"agent:{user_id}"


def _engine(session: Session) -> Engine:
    bind = session.get_bind()
    assert isinstance(bind, Engine)
    return bind


def preview_next(session: Session, user_id: int) -> dict[str, Any] | None:
    """The next lead for the agent to look at before dialing (or skipping) it: claimed for them,
    so nobody else dials it meanwhile, and they get no other call. None when none is due."""
    _write(session)
    row = _session(session, user_id)
    if row.state not in ("ready", "paused"):
        raise AgentError(f"you cannot preview a lead while {row.state.replace('_', ' ')}")
    session.commit()  # the claim takes SQLite's write lock on a connection of its own
    claimed = hopper.claim(
        _engine(session), row.campaign_id, 1, _claimant(user_id), utcnow(), "preview"
    )
    if not claimed:
        return None
    lead = session.get_one(Lead, claimed[0].id)
    campaign = session.get_one(Campaign, row.campaign_id)
    pop = screen_pop(lead, campaign, reason_for(lead, claimed[0].is_callback), agent=None)
    pop["preview_lead_id"] = lead.id
    _write(session)
    if not _move(session, user_id, ("ready", "paused"), state="reserved", screen_pop=pop):
        session.rollback()
        hopper.release(_engine(session), [lead.id])
        raise AgentError("your state changed meanwhile: a call was connected to you")
    live.commit_and_wake(session)
    return pop


def preview_skip(session: Session, user_id: int) -> None:
    _write(session)
    row = _session(session, user_id)
    lead_id = (row.screen_pop or {}).get("preview_lead_id")
    if row.state != "reserved" or lead_id is None:
        raise AgentError("you are not previewing a lead")
    _move(session, user_id, ("reserved",), state="ready", screen_pop={})
    live.commit_and_wake(session)
    hopper.release(_engine(session), [lead_id])


def preview_dial(session: Session, user_id: int) -> None:
    _write(session)
    row = _session(session, user_id)
    lead_id = (row.screen_pop or {}).get("preview_lead_id")
    if row.state != "reserved" or lead_id is None:
        raise AgentError("you are not previewing a lead")
    _command(session, row, "dial", lead_id=lead_id, kind="preview")
    live.commit_and_wake(session)


def manual_dial(session: Session, user_id: int, number: str, region: str = "US") -> int:
    """Dials a number for the agent, through the gate: refused with the gate's reason (a
    number on a do-not-call list, outside its calling hours ...). A number that is not a lead
    of the campaign yet becomes one, in the campaign's manual-dial list. Returns the lead id."""
    _write(session)
    row = _session(session, user_id)
    if row.state not in ("ready", "paused"):
        raise AgentError(f"you cannot dial while {row.state.replace('_', ' ')}")
    if row.node is None:
        raise AgentError("no dialer node has taken your session yet: try again in a second")
    facts = PhoneAnalyzer(region).analyse(number)
    if isinstance(facts, str):
        raise AgentError(f"{number!r} cannot be dialled: {facts}")
    campaign = session.get_one(Campaign, row.campaign_id)
    lead = session.scalar(
        select(Lead).where(Lead.campaign_id == campaign.id, Lead.phone_e164 == facts.e164)
    )
    if lead is None:
        manual = session.scalar(
            select(LeadList).where(
                LeadList.campaign_id == campaign.id, LeadList.name == MANUAL_LIST
            )
        )
        if manual is None:
            manual = LeadList(campaign_id=campaign.id, name=MANUAL_LIST)
            session.add(manual)
            session.flush()
        lead = Lead(
            campaign_id=campaign.id,
            list_id=manual.id,
            phone_e164=facts.e164,
            phone_type=facts.phone_type,
            region=facts.region,
            state=facts.state,
            time_zones=list(facts.time_zones),
        )
        session.add(lead)
    session.commit()
    _dial_for(session, user_id, campaign, lead, "manual")
    return lead.id


def _dial_for(
    session: Session, user_id: int, campaign: Campaign, lead: Lead, kind: DialKind
) -> None:
    verdict = hopper.claim_lead(
        _engine(session), campaign.id, lead.id, _claimant(user_id), utcnow(), kind
    )
    if isinstance(verdict, Verdict):
        raise _refused(verdict)
    _write(session)
    session.refresh(lead)
    pop = screen_pop(lead, campaign, kind, agent=None)
    row = _session(session, user_id)
    if not _move(session, user_id, ("ready", "paused"), state="reserved", screen_pop=pop):
        session.rollback()
        hopper.release(_engine(session), [lead.id])
        raise AgentError("your state changed meanwhile: a call was connected to you")
    _command(session, row, "dial", lead_id=lead.id, kind=kind)
    live.commit_and_wake(session)


def hangup(session: Session, user_id: int) -> None:
    _write(session)
    row = _session(session, user_id)
    if row.state not in ("reserved", "on_call") or row.current_attempt_id is None:
        raise AgentError("you have no call to hang up")
    _command(session, row, "hangup", attempt_id=row.current_attempt_id)
    live.commit_and_wake(session)


def transfer(session: Session, user_id: int, target: str, region: str = "US") -> str:
    """Blind transfer of the agent's call to another agent (by user name, who must be ready in
    the same campaign) or an outside number. Returns what the call goes to."""
    _write(session)
    row = _session(session, user_id)
    if row.state != "on_call" or row.current_attempt_id is None:
        raise AgentError("you have no connected call to transfer")
    other = session.scalar(select(User).where(User.username == target))
    if other is not None:
        _command(session, row, "transfer", attempt_id=row.current_attempt_id, agent_id=other.id)
        live.commit_and_wake(session)
        return f"agent {other.username}"
    try:
        number = dnc.normalise(target, region)
    except dnc.DncError as error:
        raise AgentError(
            f"transfer target {target!r} is neither an agent nor a number: {error}"
        ) from None
    _command(session, row, "transfer", attempt_id=row.current_attempt_id, number=number)
    live.commit_and_wake(session)
    return number


# -- the screen pop


def reason_for(lead: Lead, is_callback: bool) -> str:
    if is_callback or lead.status == "callback":
        return "callback"
    return "recycled" if lead.attempts > 0 else "new"


def screen_pop(lead: Lead, campaign: Campaign, reason: str, *, agent: str | None) -> dict[str, Any]:
    """Everything the agent's screen shows the moment a call is theirs: the lead's fields, its
    time zones (the desktop shows the lead's local time), why it was dialled, and the
    campaign's script with the fields filled in. JSON-ready."""
    fields = scripts.lead_fields(lead, agent=agent, seller=campaign.seller_name)
    return {
        "lead_id": lead.id,
        "campaign": campaign.name,
        "kind": campaign.kind,
        "reason": reason,
        "attempts": lead.attempts,
        "phone": lead.phone_e164,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "email": lead.email,
        "account_ref": lead.account_ref,
        "balance": None if lead.balance is None else str(lead.balance),
        "due_date": None if lead.due_date is None else lead.due_date.isoformat(),
        "state": lead.state,
        "time_zones": list(lead.time_zones or []),
        "custom_fields": dict(lead.custom_fields or {}),
        "script": scripts.render(campaign.script or "", fields),
    }


@dataclass(frozen=True)
class DebtCalls:
    """Regulation F's counters for the debt a collections call is about (12 CFR 1006.14(b)):
    calls about it in the last 7 days, the current one included, and its last conversation."""

    week: int
    last_conversation: dt.datetime | None


def debt_calls(session: Session, lead_id: int, now: dt.datetime) -> DebtCalls:
    """The counters of the lead's debt: its account in every campaign, or its number when it
    has none (as the hopper counts them), read from the week's attempts (`ix_call_attempts_debt`);
    a conversation older than the week is looked for among the lead's own calls."""
    lead = session.get_one(Lead, lead_id)
    if lead.account_ref:
        debt = CallAttempt.account_ref == lead.account_ref
    else:
        debt = and_(CallAttempt.account_ref.is_(None), CallAttempt.phone_e164 == lead.phone_e164)
    week, talked = session.execute(
        select(
            func.count(),
            func.max(case((CallAttempt.conversation, CallAttempt.started_at))),
        ).where(debt, CallAttempt.started_at >= now - REG_F_WINDOW, CallAttempt.started_at <= now)
    ).one()
    if talked is None:
        talked = session.scalar(
            select(func.max(CallAttempt.started_at)).where(
                CallAttempt.lead_id == lead.id, CallAttempt.conversation
            )
        )
    return DebtCalls(int(week), talked)


# -- the owning node's moves


def reserve_for_call(
    session: Session,
    user_id: int,
    attempt_id: int,
    pop: dict[str, Any],
    leaving: tuple[str, ...] = ("ready",),
) -> str | None:
    """Reserves the agent for a call with its screen pop, if they are still in one of
    `leaving` (ready, for a live answer; also reserved or paused for a dial they asked for):
    their phone URI, or None. The caller commits."""
    now = utcnow()
    moved = session.execute(
        update(AgentSession)
        .where(AgentSession.user_id == user_id, AgentSession.state.in_(leaving))
        .values(
            state="reserved",
            state_since=now,
            current_attempt_id=attempt_id,
            screen_pop=pop,
            updated_at=now,
        )
        .returning(AgentSession.phone_uri)
        .execution_options(synchronize_session=False)
    ).first()
    if moved is None or not moved[0]:
        return None
    session.execute(
        update(CallAttempt).where(CallAttempt.id == attempt_id).values(agent_id=user_id)
    )
    return moved[0]


def cancel_reservation(session: Session, user_id: int) -> None:
    """A dial the agent asked for did not happen: back to ready. The caller commits."""
    _move(session, user_id, ("reserved",), state="ready", screen_pop={}, current_attempt_id=None)


def bridged(session: Session, user_id: int, attempt_id: int, at: dt.datetime) -> None:
    """The agent and the customer hear each other. The caller commits."""
    session.execute(
        update(AgentSession)
        .where(
            AgentSession.user_id == user_id,
            AgentSession.state == "reserved",
            AgentSession.current_attempt_id == attempt_id,
        )
        .values(state="on_call", state_since=at, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def call_ended(
    session: Session, user_id: int, attempt_id: int, *, connected: bool, at: dt.datetime
) -> None:
    """The agent's call is over: to wrap-up until their disposition (or its timeout) after a
    conversation; straight back to ready (or the pause they asked for) when it never
    connected. The caller commits."""
    row = session.get(AgentSession, user_id, populate_existing=True)
    if row is None or row.current_attempt_id != attempt_id:
        return
    if connected:
        campaign = session.get_one(Campaign, row.campaign_id)
        values: dict[str, Any] = {
            "state": "wrap_up",
            "wrap_deadline": at + dt.timedelta(seconds=campaign.wrapup_timeout_s),
            "calls_taken": AgentSession.calls_taken + 1,
        }
    else:
        after = row.pause_after_call
        values = {
            "state": "paused" if after else "ready",
            "pause_code": after,
            "pause_after_call": None,
            "current_attempt_id": None,
            "screen_pop": {},
        }
    session.execute(
        update(AgentSession)
        .where(
            AgentSession.user_id == user_id,
            AgentSession.state.in_(("reserved", "on_call")),
            AgentSession.current_attempt_id == attempt_id,
        )
        .values(state_since=at, updated_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )


def due_personal_callbacks(
    session: Session, campaign_id: int, agent_ids: list[int], now: dt.datetime
) -> list[tuple[int, int]]:
    """(lead, agent) for the personal callbacks now due for these agents, oldest first."""
    if not agent_ids:
        return []
    rows = session.execute(
        select(Lead.id, Lead.callback_agent_id)
        .where(
            Lead.campaign_id == campaign_id,
            Lead.status == "callback",
            Lead.next_dial_at <= now,
            Lead.callback_agent_id.in_(agent_ids),
        )
        .order_by(Lead.next_dial_at)
    )
    return [(lead_id, agent_id) for lead_id, agent_id in rows if agent_id is not None]


def close_callbacks(session: Session, lead_id: int) -> None:
    """The lead is being dialled: its pending callbacks are done. The caller commits."""
    session.execute(
        update(Callback)
        .where(and_(Callback.lead_id == lead_id, Callback.status == "pending"))
        .values(status="done")
    )
