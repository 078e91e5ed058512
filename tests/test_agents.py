"""The agent service on the database alone (SQLite and PostgreSQL): what an agent may do in
each state, what the node's moves do to a session, the screen pop, the state history, and
the gate's refusals counted for the compliance report."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from campaigns import agents, dnc
from campaigns.manage import add_agent
from campaigns.models import (
    AgentSession,
    AgentStateChange,
    CallAttempt,
    Campaign,
    GateRefusal,
    Lead,
    NodeCommand,
    utcnow,
)
from tests.conftest import make_campaign
from tests.node_harness import zone_in_hours


def agent_on(session: Session, campaign: Campaign, name: str = "ana") -> int:
    return add_agent(session, name, f"sip:{name}@127.0.0.1:5090", campaign).id


def logged_in(session: Session, campaign: Campaign, node: str = "node-1") -> int:
    user_id = agent_on(session, campaign)
    agents.login(session, user_id, campaign.id)
    session.execute(
        AgentSession.__table__.update().where(AgentSession.user_id == user_id).values(node=node)
    )
    session.commit()
    return user_id


def state(session: Session, user_id: int) -> AgentSession:
    session.rollback()
    session.expire_all()
    return session.get_one(AgentSession, user_id)


def a_lead(session: Session, campaign: Campaign, phone: str = "+12125550100") -> Lead:
    lead = Lead(
        campaign_id=campaign.id,
        list_id=campaign.lists[0].id,
        phone_e164=phone,
        phone_type="fixed_line",
        region="US",
        time_zones=[zone_in_hours()],
        first_name="Grace",
        custom_fields={"Plan": "Gold"},
    )
    session.add(lead)
    session.commit()
    return lead


def test_an_agent_logs_in_paused_goes_ready_pauses_and_logs_out(session: Session) -> None:
    campaign = make_campaign(session)
    other = make_campaign(session, "Other")
    user_id = agent_on(session, campaign)
    with pytest.raises(agents.AgentError, match="not in an agent group of campaign 'Other'"):
        agents.login(session, user_id, other.id)
    agents.login(session, user_id, campaign.id)
    row = state(session, user_id)
    assert (row.state, row.pause_code, row.node) == ("paused", "LOGIN", None)
    agents.ready(session, user_id)
    assert state(session, user_id).state == "ready"
    with pytest.raises(agents.AgentError, match="not one of BREAK"):
        agents.pause(session, user_id, "NAP")
    assert agents.pause(session, user_id, "LUNCH") == "paused"
    assert state(session, user_id).pause_code == "LUNCH"
    agents.logout(session, user_id)
    assert state(session, user_id).state == "logged_out"
    history = session.scalars(select(AgentStateChange.state).order_by(AgentStateChange.id)).all()
    assert history == ["paused", "ready", "paused", "logged_out"]


def test_a_pause_asked_during_a_call_is_taken_after_its_disposition(session: Session) -> None:
    campaign = make_campaign(session)
    user_id = logged_in(session, campaign)
    agents.ready(session, user_id)
    lead = a_lead(session, campaign)
    attempt = CallAttempt(lead_id=lead.id, campaign_id=campaign.id, phone_e164=lead.phone_e164)
    session.add(attempt)
    session.commit()
    pop = agents.screen_pop(lead, campaign, "new", agent="ana")
    assert agents.reserve_for_call(session, user_id, attempt.id, pop) == "sip:ana@127.0.0.1:5090"
    session.commit()
    assert agents.pause(session, user_id, "BREAK") == "after call"
    agents.bridged(session, user_id, attempt.id, utcnow())
    session.commit()
    with pytest.raises(agents.AgentError, match="cannot go ready while on call"):
        agents.ready(session, user_id)
    with pytest.raises(agents.AgentError, match="no ended call"):
        agents.disposition(session, user_id, "SALE")
    agents.call_ended(session, user_id, attempt.id, connected=True, at=utcnow())
    session.commit()
    row = state(session, user_id)
    assert row.state == "wrap_up" and row.wrap_deadline is not None
    with pytest.raises(agents.AgentError, match="disposition the last call first"):
        agents.ready(session, user_id)
    with pytest.raises(agents.AgentError, match="'PTP' is not a disposition"):
        agents.disposition(session, user_id, "PTP", promise_amount=None)
    agents.disposition(session, user_id, "SALE")
    row = state(session, user_id)
    assert (row.state, row.pause_code, row.current_attempt_id) == ("paused", "BREAK", None)


def test_the_screen_pop_fills_the_script_and_keeps_unknown_fields_visible(
    session: Session,
) -> None:
    campaign = make_campaign(
        session, script="Hi {first_name}, {agent} for {seller}: your {Plan} plan. {nickname}?"
    )
    campaign.seller_name = "Acme"
    lead = a_lead(session, campaign)
    pop = agents.screen_pop(lead, campaign, "recycled", agent="ana")
    assert pop["script"] == "Hi Grace, ana for Acme: your Gold plan. {nickname}?"
    assert (pop["reason"], pop["time_zones"], pop["phone"]) == (
        "recycled",
        lead.time_zones,
        "+12125550100",
    )


def test_a_manual_dial_the_gate_refuses_says_why_and_is_counted(
    engine: Engine, session: Session
) -> None:
    campaign = make_campaign(session, calling_days=list(range(7)))
    user_id = logged_in(session, campaign)
    dnc.add(session, "+12125559999", reason="asked")
    session.commit()
    with pytest.raises(agents.AgentError) as refused:
        agents.manual_dial(session, user_id, "(212) 555-9999")
    assert refused.value.reason == "dnc"
    with pytest.raises(agents.AgentError, match="cannot be dialled"):
        agents.manual_dial(session, user_id, "12")
    assert session.scalars(select(NodeCommand)).all() == []
    assert state(session, user_id).state == "paused", "the agent's state is untouched"
    counted = session.scalars(select(GateRefusal)).one()
    assert (counted.reason, counted.count) == ("dnc", 1)


def test_a_preview_claims_the_lead_for_the_agent_and_a_skip_gives_it_back(
    engine: Engine, session: Session
) -> None:
    campaign = make_campaign(session, dial_mode="preview", calling_days=list(range(7)))
    user_id = logged_in(session, campaign)
    lead = a_lead(session, campaign)
    pop = agents.preview_next(session, user_id)
    assert pop is not None and pop["lead_id"] == lead.id
    row = state(session, user_id)
    assert row.state == "reserved" and row.screen_pop["preview_lead_id"] == lead.id
    assert session.get_one(Lead, lead.id).claimed_by == f"agent:{user_id}"
    agents.preview_skip(session, user_id)
    assert state(session, user_id).state == "ready"
    assert session.get_one(Lead, lead.id).status == "new"
