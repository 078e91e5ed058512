"""The attempt ledger: each call the node places has its `call_attempts` row from before the
INVITE until after the hang-up, written from the line pool's events.

- `open` commits the rows before the dial (and moves their leads from claimed to dialing):
  whatever fails afterwards, the attempt is on record. Its id is the pool's attempt id. Each
  call's caller ID is chosen there from the campaign's pool (`campaigns.callerids`) and counted
  against the number's daily cap in the same transaction.
- `observe` records the answer, the AMD (or SIT) verdict and the bridge to an agent.
- `end` records the SIP result and the outcome together with what the call's flow decided
  (connected, abandoned, safe-harbor message played, a key-press opt-out, which puts the number
  on the campaign's do-not-call list at once, a message left on a machine: machine_message),
  and decides the lead's fate in the same transaction: by the line's outcome and the connect
  result, or, for a call that reached an agent, later by the agent's disposition
  (ARCHITECTURE §3a).
- `close_orphans` ends the rows a stopped node left open as failed, so no attempt stays
  "in progress" for ever and its lead is dialable again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, bindparam, insert, select, update

from campaigns import agents, appointments, callerids, db
from campaigns.dispositions import opt_out, record_outcome
from campaigns.hopper import ClaimedLead
from campaigns.models import Appointment, CallAttempt, Lead
from dialer.calls.flow import IvrOutcome
from dialer.calls.voicemail import VoicemailOutcome
from dialer.connect import ConnectOutcome
from dialer.lines.events import AmdVerdict, Answered, Bridged, Ended, Event

ORPHAN_REASON = "the dialer node stopped before the call ended"
INTERRUPTED_REASON = "interrupted: the dialer node was stopped during the call"
CANCELLED_REASON = "cancelled: the campaign was stopped before the call was answered"

# The statements of every dial, built once (building them cost as much as running them), on
# the tables: through the ORM a three-row insert cost twice as much as through Core.
_ATTEMPTS = CallAttempt.__table__
_ADD_ATTEMPTS = insert(_ATTEMPTS).returning(_ATTEMPTS.c.id, sort_by_parameter_order=True)
_LEADS = Lead.__table__
_NOW_DIALING = (
    update(_LEADS)
    # An opt-out that came meanwhile stays (the gate's second look saw it too).
    .where(_LEADS.c.id.in_(bindparam("lead_ids", expanding=True)), _LEADS.c.status != "dnc")
    .values(status="dialing")
)


def utc(epoch_seconds: float | None) -> dt.datetime | None:
    return None if epoch_seconds is None else dt.datetime.fromtimestamp(epoch_seconds, dt.UTC)


@dataclass(frozen=True)
class Opened:
    """An attempt on record, and the caller ID its INVITE carries."""

    attempt_id: str
    caller_id: str | None


@dataclass(frozen=True)
class Settled:
    """What `end` did: the attempt's outcome and whether its lead now waits for a disposition."""

    outcome: str
    awaiting_disposition: bool


class AttemptLedger:
    def __init__(self, engine: Engine, node: str) -> None:
        # Every ledger transaction writes: SQLite's write lock is taken at BEGIN.
        self.sessions = db.session_factory(db.writer(engine))
        self.node = node
        # Attempts this ledger opened and not yet ended: the pool's agent legs are not attempts.
        self.open_ids: set[int] = set()

    def open(
        self,
        leads: Sequence[ClaimedLead],
        *,
        trunk: str,
        dial_mode: str = "automatic",
        agent_id: int | None = None,
        screen_pop: dict[str, Any] | None = None,
        default_caller_id: str | None = None,
    ) -> list[Opened]:
        """The attempts' rows, committed in one transaction, their leads now "dialing" (a
        claim the node holds while the call lasts); the ids are what `originate` is given,
        with the caller ID chosen for each (the campaign's pool, else `default_caller_id`).
        All leads are of one campaign. With `agent_id` (one lead, dialled for that agent)
        the agent is reserved for the call in the same transaction, or nothing is opened when
        they are no longer there."""
        if not leads:
            return []
        campaign_id = leads[0].campaign_id
        now = dt.datetime.now(dt.UTC)
        with self.sessions() as session:
            connection = session.connection()
            numbers = callerids.pool_for_dialing(session, campaign_id, now)
            choices = callerids.choose_caller_ids(
                ((lead.phone_e164, lead.facts.state if lead.facts else None) for lead in leads),
                numbers,
                default_caller_id,
            )
            ids = connection.scalars(
                _ADD_ATTEMPTS,
                [
                    {
                        "lead_id": lead.id,
                        "campaign_id": campaign_id,
                        "phone_e164": lead.phone_e164,
                        "account_ref": lead.account_ref,
                        "node": self.node,
                        "trunk_name": trunk,
                        "dial_mode": dial_mode,
                        "started_at": now,
                        "caller_id": choice.caller_id,
                    }
                    for lead, choice in zip(leads, choices, strict=True)
                ],
            ).all()
            callerids.count_dials(session, campaign_id, (c.caller_id for c in choices), now)
            connection.execute(_NOW_DIALING, {"lead_ids": [lead.id for lead in leads]})
            for lead in leads:
                if lead.is_callback:
                    agents.close_callbacks(session, lead.id)
            if agent_id is not None:
                reserved = agents.reserve_for_call(
                    session,
                    agent_id,
                    ids[0],
                    screen_pop or {},
                    leaving=("ready", "paused", "reserved"),
                )
                if reserved is None:
                    session.rollback()
                    return []
            session.commit()
            opened = [
                Opened(str(id_), choice.caller_id) for id_, choice in zip(ids, choices, strict=True)
            ]
        self.open_ids.update(int(o.attempt_id) for o in opened)
        return opened

    def _ours(self, attempt_id: str) -> int | None:
        row_id = int(attempt_id) if attempt_id.isdigit() else None
        return row_id if row_id in self.open_ids else None

    def observe(self, event: Event) -> None:
        """The answer and the verdict of one of this ledger's attempts."""
        if not isinstance(event, Answered | AmdVerdict):
            return
        row_id = self._ours(event.attempt_id)
        if row_id is None:
            return
        values = (
            {"answered_at": utc(event.at)}
            if isinstance(event, Answered)
            else {"amd_verdict": event.verdict, "amd_ms": event.after_ms}
        )
        with self.sessions() as session:
            session.execute(update(CallAttempt).where(CallAttempt.id == row_id).values(**values))
            session.commit()

    def bridged(self, event: Bridged, agent_id: int | None) -> None:
        """The customer reached an agent: the attempt's connect figures and the agent's state
        (on call) in one transaction, so the screen pop written at the reservation is live."""
        row_id = self._ours(event.attempt_id)
        if row_id is None:
            return
        at = utc(event.at)
        assert at is not None
        with self.sessions() as session:
            attempt = session.get_one(CallAttempt, row_id)
            # A transfer bridges again: the call was connected at the first bridge.
            attempt.bridged_at = attempt.bridged_at or at
            # A person reached an agent: a live answer of the 30-day abandon rule from now, not
            # from the hang-up a talk later (the gate's count would lag by every call up). The
            # line's outcome replaces it at the end.
            attempt.outcome = attempt.outcome or "human"
            if event.connect_delay_ms is not None and attempt.connect_delay_ms is None:
                attempt.connect_delay_ms = round(event.connect_delay_ms)
            attempt.recording_path = event.recording_path or attempt.recording_path
            if agent_id is not None:
                attempt.agent_id = agent_id
                agents.bridged(session, agent_id, row_id, at)
            session.commit()

    def end(
        self,
        ended: Ended,
        flow: ConnectOutcome | None,
        *,
        agent_id: int | None = None,
        hung_up_because: str | None = None,
        ivr: IvrOutcome | None = None,
        voicemail: VoicemailOutcome | None = None,
    ) -> Settled | None:
        """The customer leg ended: the SIP result, the flow's result, the agent back to wrap-up
        (or ready when the call never reached them) and the lead's fate, in one transaction. A
        machine given the campaign's whole message ends machine_message."""
        row_id = self._ours(ended.attempt_id)
        if row_id is None:
            return None
        now = dt.datetime.now(dt.UTC)
        connected = flow is not None and flow.connect_delay_ms is not None
        with self.sessions() as session:
            attempt = session.get_one(CallAttempt, row_id)
            # The day the call counted against its caller ID's cap: when the row was opened.
            opened_at = attempt.started_at
            self._record_line(attempt, ended)
            if hung_up_because is not None:  # the node ended the call, not the line
                attempt.failure_reason = hung_up_because
            if voicemail is not None and voicemail.message_played and attempt.outcome == "machine":
                attempt.outcome = "machine_message"
            if flow is not None:
                attempt.abandoned = flow.abandoned
                if flow.abandoned:  # why the person never reached an agent, for reports
                    attempt.failure_reason = f"abandoned: {flow.reason}"
                attempt.safe_harbor_played = flow.safe_harbor_played
                if flow.connect_delay_ms is not None:
                    attempt.connect_delay_ms = round(flow.connect_delay_ms)
                attempt.recording_path = flow.recording_path or attempt.recording_path
                if flow.opted_out:
                    lead = session.get_one(Lead, attempt.lead_id)
                    why = "pressed the opt-out key after the safe-harbor message"
                    opt_out(session, lead, attempt.campaign_id, "opt_out_key", why)
            if ivr is not None:  # an agentless call's flow: its result recycles the lead
                attempt.ivr_result = ivr.result
                if ivr.appointment_id is not None:
                    appointment = session.get(Appointment, ivr.appointment_id)
                    if appointment is not None:
                        appointments.record_reminder(session, appointment, row_id, ivr.result)
            if agent_id is not None:
                ended_at = attempt.ended_at or now
                agents.call_ended(session, agent_id, row_id, connected=connected, at=ended_at)
            record_outcome(session, attempt, now, awaiting_disposition=connected)
            callerids.count_end(
                session, attempt.campaign_id, attempt.caller_id, opened_at, _live(attempt)
            )
            session.commit()
            outcome = attempt.outcome or "failed"
        self.open_ids.discard(row_id)
        return Settled(outcome, connected)

    def _record_line(self, attempt: CallAttempt, ended: Ended) -> None:
        attempt.started_at = utc(ended.timings.dialed_at) or attempt.started_at
        # A worker that died mid-call leaves the supervisor without the answer time: keep the
        # one `Answered` brought.
        attempt.answered_at = utc(ended.timings.answered_at) or attempt.answered_at
        attempt.ended_at = utc(ended.timings.ended_at)
        attempt.sip_code = ended.sip_code
        attempt.sip_reason = ended.reason[:120]
        attempt.outcome = ended.outcome
        attempt.amd_verdict = ended.amd_verdict or attempt.amd_verdict
        if ended.outcome == "failed":
            attempt.failure_reason = ended.reason

    def close_orphans(self, now: dt.datetime) -> int:
        """Ends this node's attempts that never got an `Ended` (the node crashed or was
        killed): failed, saying why, their leads recycled, their agents freed."""
        with self.sessions() as session:
            orphans = session.scalars(
                select(CallAttempt).where(
                    CallAttempt.node == self.node, CallAttempt.ended_at.is_(None)
                )
            ).all()
            for attempt in orphans:
                attempt.ended_at = now
                attempt.outcome = "failed"
                attempt.failure_reason = ORPHAN_REASON
                # A conversation that had begun still gets its agent's disposition.
                connected = attempt.bridged_at is not None
                if attempt.agent_id is not None:
                    agents.call_ended(
                        session, attempt.agent_id, attempt.id, connected=connected, at=now
                    )
                record_outcome(session, attempt, now, awaiting_disposition=connected)
                callerids.count_end(
                    session, attempt.campaign_id, attempt.caller_id, attempt.started_at, False
                )
            session.commit()
        return len(orphans)


def _live(attempt: CallAttempt) -> bool:
    """A live answer (47 CFR 64.1200(a)(7)), as `campaigns.models.LIVE_ANSWER` counts it."""
    return attempt.outcome == "human" or attempt.abandoned
