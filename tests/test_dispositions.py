import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import dnc
from campaigns.dispositions import (
    DEFAULT_RULES,
    DispositionError,
    next_state,
    record_disposition,
    record_outcome,
    rules_for,
)
from campaigns.models import CallAttempt, Callback, Lead
from tests.conftest import make_campaign

NOW = dt.datetime(2026, 6, 10, 16, tzinfo=dt.UTC)


def test_busy_is_retried_soon_until_the_attempt_limit() -> None:
    assert next_state(1, "busy", DEFAULT_RULES, 3, NOW).next_dial_at == NOW + dt.timedelta(
        minutes=15
    )
    assert next_state(3, "busy", DEFAULT_RULES, 3, NOW).status == "done"
    assert next_state(1, "invalid", DEFAULT_RULES, 3, NOW).status == "invalid"


def test_campaign_rules_override_defaults_and_are_validated() -> None:
    rules = rules_for({"busy": {"retry_minutes": 5, "max_attempts": 2}})
    assert next_state(1, "busy", rules, 6, NOW).next_dial_at == NOW + dt.timedelta(minutes=5)
    assert next_state(2, "busy", rules, 6, NOW).status == "done"
    with pytest.raises(DispositionError, match="retry_minutes -1"):
        rules_for({"busy": {"retry_minutes": -1}})


def dialed_lead(session: Session, kind: str = "telemarketing") -> CallAttempt:
    campaign = make_campaign(session, kind=kind)
    lead = Lead(
        campaign_id=campaign.id,
        list_id=campaign.lists[0].id,
        phone_e164="+12125550100",
        phone_type="fixed_line",
        region="US",
        status="claimed",
    )
    session.add(lead)
    session.flush()
    attempt = CallAttempt(
        lead_id=lead.id,
        campaign_id=campaign.id,
        phone_e164=lead.phone_e164,
        started_at=NOW,
        outcome="human",
    )
    session.add(attempt)
    session.commit()
    return attempt


def test_a_dnc_disposition_blocks_the_number_at_once(session: Session) -> None:
    attempt = dialed_lead(session)
    record_outcome(session, attempt, NOW)
    record_disposition(session, attempt, "DNC", notes="asked not to be called")
    session.commit()
    lead = session.get_one(Lead, attempt.lead_id)
    assert lead.status == "dnc" and lead.attempts == 1
    assert dnc.blocking_entry(session, "+12125550100", attempt.campaign_id, NOW) is not None


def test_a_callback_is_booked_and_a_conversation_is_marked(session: Session) -> None:
    attempt = dialed_lead(session, "collections")
    due = NOW + dt.timedelta(days=8)
    record_disposition(session, attempt, "CALLBACK", callback_at=due)
    session.commit()
    assert session.scalars(select(Callback.due_at)).one() == due
    assert session.get_one(Lead, attempt.lead_id).status == "callback"
    assert attempt.conversation, "Regulation F counts this conversation"
    with pytest.raises(DispositionError, match="'SALE' is not a disposition"):
        record_disposition(session, attempt, "SALE")
