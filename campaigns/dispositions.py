"""What happens to a lead after a call: recycling rules per outcome and disposition.

`next_state` is pure; `record_outcome` and `record_disposition` apply it in the caller's
transaction, and an opt-out reaches the do-not-call list in that same transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import dnc
from campaigns.models import (
    PARTIES,
    CallAttempt,
    Callback,
    Campaign,
    Disposition,
    DispositionCode,
    Lead,
    utcnow,
)


@dataclass(frozen=True)
class Rule:
    """After this outcome or disposition: retry after `retry_after` (None: the lead is
    finished with `final_status`), at most `max_attempts` attempts in all."""

    retry_after: dt.timedelta | None
    max_attempts: int | None = None
    final_status: str = "done"


HOUR = dt.timedelta(hours=1)
MESSAGE_LEFT = "machine_message"
DEFAULT_RULES: dict[str, Rule] = {
    # Outcomes the line reports.
    "busy": Rule(dt.timedelta(minutes=15)),
    "no_answer": Rule(2 * HOUR),
    "machine": Rule(4 * HOUR),
    "abandoned": Rule(dt.timedelta(hours=24)),  # not before the UK 72 h rule allows, see gate
    "congestion": Rule(dt.timedelta(minutes=10)),
    "failed": Rule(dt.timedelta(minutes=30)),
    "invalid": Rule(None, final_status="invalid"),
    # Answered, never connected nor abandoned: the person hung up during the greeting. (A
    # connected call is decided by its agent's disposition, an abandoned one by "abandoned".)
    "human": Rule(2 * HOUR),
    # What an agentless IVR flow made of a live answer (`call_attempts.ivr_result`).
    "completed": Rule(None),  # survey: every question on its path answered
    "partial": Rule(dt.timedelta(hours=24)),  # hung up half way: answers kept, asked again
    "hung_up": Rule(4 * HOUR),  # hung up before answering anything
    "no_input": Rule(dt.timedelta(hours=24)),  # no valid key after the tries
    "confirmed": Rule(None),
    "cancelled": Rule(None),
    "rescheduled": Rule(None),
    "reschedule_refused": Rule(2 * HOUR),  # the slot chosen filled meanwhile
    "no_free_slot": Rule(dt.timedelta(hours=24)),
    "no_appointment": Rule(None),
    "agent": Rule(2 * HOUR),  # asked for someone, the call ended before an agent or message
    # Agent dispositions.
    "SALE": Rule(None),
    "NO_SALE": Rule(None),
    "NOT_INTERESTED": Rule(None),
    "CALLBACK": Rule(dt.timedelta(hours=24)),
    "DNC": Rule(None, final_status="dnc"),
    "WRONG_NUMBER": Rule(None, final_status="invalid"),
    "RPC": Rule(dt.timedelta(days=7)),  # right-party contact: Regulation F's 7 days
    "PTP": Rule(None),  # promise to pay
    "REFUSED": Rule(dt.timedelta(days=7)),
    "COMPLETED": Rule(None),
    "BOOKED": Rule(None),
    # A connected call its agent never dispositioned (the wrap-up timed out): the person was
    # reached but nobody recorded what was said, so the lead is tried again the next day.
    "NO_DISPOSITION": Rule(dt.timedelta(hours=24)),
}
# In every campaign's catalogue: what the wrap-up timeout records (Campaign.default_disposition).
NO_DISPOSITION = ("NO_DISPOSITION", "No disposition (wrap-up timed out)", True, False)
# Per campaign kind: the catalogue an agent picks from (code, label, conversation, opt-out).
CATALOGUES: dict[str, tuple[tuple[str, str, bool, bool], ...]] = {
    "telemarketing": (
        ("SALE", "Sale", True, False),
        ("NO_SALE", "No sale", True, False),
        ("NOT_INTERESTED", "Not interested", True, False),
        ("CALLBACK", "Call back", True, False),
        ("DNC", "Do not call", True, True),
        ("WRONG_NUMBER", "Wrong number", False, False),
    ),
    "collections": (
        ("RPC", "Right-party contact", True, False),
        ("PTP", "Promise to pay", True, False),
        ("REFUSED", "Refused to pay", True, False),
        ("CALLBACK", "Call back", True, False),
        ("DNC", "Cease communication", True, True),
        ("WRONG_NUMBER", "Wrong party", False, False),
    ),
    "survey": (
        ("COMPLETED", "Survey completed", True, False),
        ("REFUSED", "Refused", True, False),
        ("CALLBACK", "Call back", True, False),
        ("DNC", "Do not call", True, True),
    ),
    "appointment": (
        ("BOOKED", "Appointment booked", True, False),
        ("NOT_INTERESTED", "Not interested", True, False),
        ("CALLBACK", "Call back", True, False),
        ("DNC", "Do not call", True, True),
    ),
}

# Collections: who the agent is speaking with, asked before the debt is discussed (a debt is
# discussed with the debtor alone, 15 U.S.C. 1692c(b)), as the agent desktop offers it.
PARTY_LABELS = {"right": "Right party confirmed", "wrong": "Wrong party", "third": "Third party"}
# Codes that say the debt was discussed with the debtor: never with another party.
RIGHT_PARTY_CODES = frozenset({"RPC", "PTP", "REFUSED"})


class DispositionError(ValueError):
    pass


def rules_for(campaign_rules: dict[str, Any]) -> dict[str, Rule]:
    """The defaults overlaid with a campaign's own rules, e.g. {"busy": {"retry_minutes": 5}}."""
    rules = dict(DEFAULT_RULES)
    for key, spec in campaign_rules.items():
        minutes = spec.get("retry_minutes")
        if minutes is not None and (not isinstance(minutes, int | float) or minutes < 0):
            raise DispositionError(f"recycling rule {key}: retry_minutes {minutes!r} is not >= 0")
        rules[key] = Rule(
            dt.timedelta(minutes=minutes) if minutes is not None else None,
            spec.get("max_attempts"),
            spec.get("final_status", "done"),
        )
    # A machine that took the voicemail message is still a machine: its lead is retried as the
    # campaign retries machines, unless the campaign has a rule of its own for it.
    rules.setdefault(MESSAGE_LEFT, rules["machine"])
    return rules


@dataclass(frozen=True)
class LeadState:
    status: str
    attempts: int
    next_dial_at: dt.datetime | None


def next_state(
    attempts: int,
    result: str,
    rules: dict[str, Rule],
    campaign_max_attempts: int,
    now: dt.datetime,
) -> LeadState:
    """The lead's state after an attempt (already counted in `attempts`) ended in `result`."""
    rule = rules.get(result)
    if rule is None:
        raise DispositionError(f"no recycling rule for {result!r}")
    limit = min(campaign_max_attempts, rule.max_attempts or campaign_max_attempts)
    if rule.retry_after is None:
        return LeadState(rule.final_status, attempts, None)
    if attempts >= limit:
        return LeadState("done", attempts, None)
    status = "callback" if result == "CALLBACK" else "recycled"
    return LeadState(status, attempts, now + rule.retry_after)


def party_problem(code: str, party: str | None) -> str | None:
    """Why `code` cannot be recorded with `party` (None when it can); no party is no claim."""
    if party is None:
        return None
    if party not in PARTIES:
        return f"party {party!r} is not one of {', '.join(PARTIES)}"
    if party != "right" and code in RIGHT_PARTY_CODES:
        return f"{code} needs the right party (the debtor); the agent recorded {party} party"
    return None


def install_catalogue(session: Session, campaign: Campaign) -> None:
    for code, label, conversation, opt_out in (*CATALOGUES[campaign.kind], NO_DISPOSITION):
        session.add(
            DispositionCode(
                campaign_id=campaign.id,
                code=code,
                label=label,
                is_conversation=conversation,
                is_opt_out=opt_out,
                final_status="dnc" if opt_out else None,
            )
        )


def line_result(attempt: CallAttempt) -> str:
    """The recycling rule a finished line calls for: an abandoned live answer is retried by the
    `abandoned` rule (24 h; the gate adds the UK's 72 h), not closed as a conversation."""
    if attempt.abandoned:
        return "abandoned"
    if attempt.ivr_result is not None and attempt.ivr_result in DEFAULT_RULES:
        return attempt.ivr_result
    return attempt.outcome or "failed"


def record_outcome(
    session: Session,
    attempt: CallAttempt,
    now: dt.datetime,
    *,
    awaiting_disposition: bool = False,
) -> LeadState | None:
    """Counts a finished attempt against its lead and decides the lead's next state from the
    line's outcome and the connect result (abandoned, opted out) stored on the attempt. A call
    that reached an agent (`awaiting_disposition`) leaves the lead "dialing" until the agent's
    disposition, or the wrap-up timeout's default, decides (`record_disposition`)."""
    lead = session.get_one(Lead, attempt.lead_id)
    campaign = session.get_one(Campaign, attempt.campaign_id)
    lead.attempts += 1
    lead.last_dialed_at = attempt.started_at
    lead.last_outcome = attempt.outcome
    lead.claimed_by = lead.claimed_at = None
    # An opt-out is final: an attempt that ends after it (closed as an orphan) never reopens it.
    if lead.status == "dnc":
        return None
    if awaiting_disposition:
        decided = session.scalar(select(Disposition.id).where(Disposition.attempt_id == attempt.id))
        if decided is None:  # else the agent dispositioned during the call (a transfer)
            lead.status, lead.next_dial_at = "dialing", None
        return None
    state = next_state(
        lead.attempts,
        line_result(attempt),
        rules_for(campaign.recycling_rules),
        campaign.max_attempts,
        now,
    )
    lead.status, lead.next_dial_at = state.status, state.next_dial_at
    return state


def opt_out(session: Session, lead: Lead, campaign_id: int, source: str, reason: str) -> None:
    """The number joins the campaign's do-not-call list at once and the lead is never dialled
    again; the caller commits."""
    dnc.add(session, lead.phone_e164, campaign_id=campaign_id, source=source, reason=reason)
    lead.status, lead.next_dial_at = "dnc", None


def record_disposition(
    session: Session,
    attempt: CallAttempt,
    code: str,
    *,
    agent_id: int | None = None,
    notes: str = "",
    callback_at: dt.datetime | None = None,
    promise_amount: Decimal | None = None,
    promise_date: dt.date | None = None,
    personal_callback: bool = False,
    party: str | None = None,
) -> Disposition:
    """An agent's disposition: recycles the lead, books a callback (for this agent alone with
    `personal_callback`), and for an opt-out adds the number to the campaign's do-not-call list
    at once. A collections agent's `party` goes with it. The caller commits."""
    campaign = session.get_one(Campaign, attempt.campaign_id)
    lead = session.get_one(Lead, attempt.lead_id)
    known = session.scalars(
        select(DispositionCode).where(
            DispositionCode.campaign_id == campaign.id, DispositionCode.code == code
        )
    ).first()
    if known is None:
        raise DispositionError(f"{code!r} is not a disposition of campaign {campaign.name!r}")
    problem = party_problem(code, party)
    if problem is not None:
        raise DispositionError(problem)
    now = utcnow()
    disposition = Disposition(
        attempt_id=attempt.id,
        lead_id=lead.id,
        agent_id=agent_id,
        code=code,
        notes=notes,
        promise_amount=promise_amount,
        promise_date=promise_date,
        party=party,
    )
    session.add(disposition)
    # Regulation F's 7 quiet days follow a conversation with the debtor (12 CFR
    # 1006.14(b)(2)(ii)), not one with a wrong or third party.
    attempt.conversation = known.is_conversation and party in (None, "right")
    if known.is_opt_out:
        opt_out(session, lead, campaign.id, "disposition", f"{code} by agent {agent_id}")
        return disposition
    state = next_state(
        lead.attempts, code, rules_for(campaign.recycling_rules), campaign.max_attempts, now
    )
    if code == "CALLBACK":
        due = callback_at or state.next_dial_at or now
        owner = agent_id if personal_callback else None
        if personal_callback and agent_id is None:
            raise DispositionError("a personal callback needs the agent who takes it")
        session.add(Callback(lead_id=lead.id, campaign_id=campaign.id, agent_id=owner, due_at=due))
        lead.status, lead.next_dial_at, lead.callback_agent_id = "callback", due, owner
    else:
        lead.status, lead.next_dial_at = state.status, state.next_dial_at
    return disposition
