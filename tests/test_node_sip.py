"""The node runs campaigns end to end against SIPp as the carrier and as the agents' phones,
with simulated agents working the calls through the agent service."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from campaigns.models import AgentSession, CallAttempt, Disposition, Lead
from tests.node_harness import (
    add_leads,
    number,
    running_node,
    start,
    working_agents,
    world,
    zone_in_hours,
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
                    return session.scalar(
                        select(func.count()).select_from(Disposition)
                    ) == leads

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
