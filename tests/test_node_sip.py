"""The node runs campaigns end to end against SIPp as the carrier and as the agents' phones,
with simulated agents working the calls through the agent service."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from campaigns import agents, dnc
from campaigns.models import AgentSession, CallAttempt, Callback, Disposition, Lead
from tests.node_harness import (
    NUMBER_IN_ZONE,
    add_leads,
    number,
    running_node,
    start,
    working_agents,
    world,
    zone_in_hours,
    zone_out_of_hours,
)

pytestmark = pytest.mark.sip


def wait_for(condition, timeout: float, every: float = 0.2) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


def test_a_progressive_campaign_connects_every_answer_to_an_agent(tmp_path: Path) -> None:
    leads = 8
    with world(tmp_path, agents=2, calls=leads) as w:
        add_leads(w.engine, w.campaign_id, w.list_id, [number(i) for i in range(leads)],
                  zone_in_hours())  # fmt: skip
        start(w)
        with running_node(w), working_agents(w):

            def settled() -> bool:
                with w.session() as session:
                    return session.scalar(select(func.count()).select_from(Disposition)) == leads

            assert wait_for(settled, 90), "every call dispositioned"
        with w.session() as session:
            attempts = session.scalars(select(CallAttempt)).all()
            assert len(attempts) == leads
            assert all(a.ended_at is not None and a.outcome == "human" for a in attempts)
            assert not any(a.abandoned for a in attempts)
            assert all(a.agent_id is not None and a.bridged_at is not None for a in attempts)
            statuses = session.scalars(select(Lead.status)).all()
            assert set(statuses) <= {"done", "callback", "recycled"}
            sessions = session.scalars(select(AgentSession)).all()
            assert {s.state for s in sessions} <= {"ready", "paused"}


def agent_state(w, agent_id: int) -> AgentSession:  # type: ignore[no-untyped-def]
    with w.session() as session:
        return session.get_one(AgentSession, agent_id)


def test_preview_manual_and_callback_dials_pass_the_gate_and_reach_their_agent(
    tmp_path: Path,
) -> None:
    with world(tmp_path, agents=1, calls=6, dial_mode="preview") as w:
        zone = zone_in_hours()
        add_leads(w.engine, w.campaign_id, w.list_id, [number(1)], zone)
        with w.session() as session:
            dnc.add(session, "+12125559999", reason="asked")
            session.commit()
        start(w)
        agent = w.agent_ids[0]
        with running_node(w, name="node-agents") as node, w.session() as session:
            agents.login(session, agent, w.campaign_id)
            agents.ready(session, agent)
            assert wait_for(lambda: agent_state(w, agent).node == node.name, 5)

            # A number on a do-not-call list is refused with the gate's reason.
            with pytest.raises(agents.AgentError) as refused:
                agents.manual_dial(session, agent, "+1 212 555 9999")
            assert refused.value.reason == "dnc"
            # So is a number outside its calling hours, by its own time zone.
            late = NUMBER_IN_ZONE[zone_out_of_hours()]
            with pytest.raises(agents.AgentError) as refused:
                agents.manual_dial(session, agent, late, region="US")
            assert refused.value.reason == "outside_calling_hours"

            def talk_then(code: str, **extra) -> None:  # type: ignore[no-untyped-def]
                assert wait_for(lambda: agent_state(w, agent).state == "on_call", 20)
                pop = agent_state(w, agent).screen_pop
                assert pop["script"].startswith("Hello "), pop
                agents.hangup(session, agent)
                assert wait_for(lambda: agent_state(w, agent).state == "wrap_up", 10)
                agents.disposition(session, agent, code, **extra)

            # Preview: the agent sees the lead first, then dials it.
            pop = agents.preview_next(session, agent)
            assert pop is not None and pop["phone"] == number(1) and pop["reason"] == "new"
            agents.preview_dial(session, agent)
            talk_then(
                "CALLBACK",
                callback_at=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2),
                personal_callback=True,
            )
            # The callback comes due and is dialled for the agent who booked it.
            talk_then("SALE")
            # A number that is no lead yet becomes one, in the manual-dial list.
            agents.manual_dial(session, agent, NUMBER_IN_ZONE[zone], region="US")
            talk_then("NO_SALE")
        with w.session() as session:
            attempts = session.scalars(select(CallAttempt).order_by(CallAttempt.id)).all()
            assert [a.dial_mode for a in attempts] == ["preview", "callback", "manual"]
            assert all(a.agent_id == agent and a.bridged_at is not None for a in attempts)
            assert all(a.ended_at is not None for a in attempts)
            codes = session.scalars(select(Disposition.code).order_by(Disposition.id)).all()
            assert codes == ["CALLBACK", "SALE", "NO_SALE"]
            callback = session.scalars(select(Callback)).one()
            assert (callback.agent_id, callback.status) == (agent, "done")
            assert session.get_one(Lead, attempts[0].lead_id).status == "done"
