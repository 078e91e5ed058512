"""The node runs campaigns end to end against SIPp as the carrier and as the agents' phones,
with simulated agents working the calls through the agent service."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from campaigns import agents, dnc
from campaigns.models import AgentSession, CallAttempt, Callback, Disposition, Lead
from dialer.node.ledger import ORPHAN_REASON
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
        add_leads(
            w.engine, w.campaign_id, w.list_id, [number(i) for i in range(leads)], zone_in_hours()
        )
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


def test_the_node_launches_no_more_calls_a_second_than_the_trunk_takes(tmp_path: Path) -> None:
    """Ten idle agents want ten calls at once; a trunk of 2 calls/s gets them 3 at first (its
    rate and a call more, for the fraction a step may carry), then 2 a second: the rest are
    launched later, not queued in the line pool while the pacer counts them ringing."""
    leads = 10
    with world(tmp_path, agents=leads, calls=leads) as w:
        w.trunk_toml = w.trunk_toml.replace("max_cps = 50", "max_cps = 2")
        add_leads(
            w.engine, w.campaign_id, w.list_id, [number(i) for i in range(leads)], zone_in_hours()
        )
        with working_agents(w, talk="2-3"):

            def all_ready() -> bool:
                with w.session() as session:
                    return (
                        session.scalar(select(func.count()).where(AgentSession.state == "ready"))
                        == leads
                    )

            assert wait_for(all_ready, 30)
            start(w)
            # A row's start is the node's launch until the call ends, then the INVITE's.
            launched: dict[int, dt.datetime] = {}
            with running_node(w):
                deadline = time.monotonic() + 60
                while len(launched) < leads and time.monotonic() < deadline:
                    with w.session() as session:
                        rows = session.execute(select(CallAttempt.id, CallAttempt.started_at))
                        for attempt_id, started_at in rows:
                            launched.setdefault(attempt_id, started_at)
                    time.sleep(0.02)
    assert len(launched) == leads, "every lead dialled"
    started = sorted(launched.values())
    # Between any two launches: at most the 3 a step may start with, and 2 a second more.
    for i, first in enumerate(started):
        for j in range(i, len(started)):
            span = (started[j] - first).total_seconds()
            assert j - i + 1 <= 3 + 2 * (span + 0.05), [str(t - started[0]) for t in started]


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


def test_a_blind_transfer_hands_the_call_to_another_ready_agent(tmp_path: Path) -> None:
    with world(tmp_path, agents=2, calls=4, dial_mode="preview") as w:
        zone = zone_in_hours()
        start(w)
        first, second = w.agent_ids
        with running_node(w, name="node-transfer") as node, w.session() as session:
            for agent in (first, second):
                agents.login(session, agent, w.campaign_id)
                agents.ready(session, agent)
            assert wait_for(lambda: agent_state(w, second).node == node.name, 5)
            agents.manual_dial(session, first, NUMBER_IN_ZONE[zone], region="US")
            assert wait_for(lambda: agent_state(w, first).state == "on_call", 20)
            with pytest.raises(agents.AgentError, match="neither an agent nor a number"):
                agents.transfer(session, first, "nobody-by-that-name")
            assert agents.transfer(session, first, "agent1") == "agent agent1"
            assert wait_for(lambda: agent_state(w, second).state == "on_call", 20)
            assert agent_state(w, first).state == "ready", "the first agent is free at once"
            assert agent_state(w, second).screen_pop["reason"] == "transfer"
            agents.hangup(session, second)
            assert wait_for(lambda: agent_state(w, second).state == "wrap_up", 10)
            agents.disposition(session, second, "SALE")
        with w.session() as session:
            attempt = session.scalars(select(CallAttempt)).one()
            assert attempt.agent_id == second and attempt.ended_at is not None
            disposition = session.scalars(select(Disposition)).one()
            assert (disposition.agent_id, disposition.code) == (second, "SALE")


def node_process(w, tmp_path: Path, name: str, *extra: str) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    config = tmp_path / "trunks.toml"
    config.write_text(w.trunk_toml)
    env = {
        **os.environ,
        "DATABASE_URL": str(w.engine.url.render_as_string(hide_password=False)),
        "DIALER_SIP_CONFIG": str(config),
    }
    log = (tmp_path / f"{name}.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "dialer", "node", "--name", name, "--workers", "3", *extra],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).parent.parent,
    )


def window(w) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with w.session() as session:
        live = session.scalar(
            select(func.count()).where(
                (CallAttempt.outcome == "human") | CallAttempt.abandoned.is_(True)
            )
        )
        abandoned = session.scalar(select(func.count()).where(CallAttempt.abandoned.is_(True)))
    return int(live or 0), int(abandoned or 0)


def open_attempts(w) -> int:  # type: ignore[no-untyped-def]
    with w.session() as session:
        return int(session.scalar(select(func.count()).where(CallAttempt.ended_at.is_(None))) or 0)


def assert_no_lead_dialled_twice_at_once(w) -> None:  # type: ignore[no-untyped-def]
    with w.session() as session:
        rows = session.execute(
            select(CallAttempt.lead_id, CallAttempt.started_at, CallAttempt.ended_at).order_by(
                CallAttempt.lead_id, CallAttempt.started_at
            )
        ).all()
    for (lead, _, ended), (next_lead, started, _) in itertools.pairwise(rows):
        if lead == next_lead:
            assert ended is not None and ended <= started, f"lead {lead} dialled twice at once"


def test_a_node_killed_mid_campaign_loses_no_attempt_when_it_comes_back(tmp_path: Path) -> None:
    leads = 16
    with world(tmp_path, agents=3, calls=4 * leads) as w:
        add_leads(
            w.engine, w.campaign_id, w.list_id, [number(i) for i in range(leads)], zone_in_hours()
        )
        start(w)
        with working_agents(w, talk="2-4"):
            node = node_process(w, tmp_path, "node-kill")
            try:
                assert wait_for(lambda: open_attempts(w) >= 2, 30), "calls are up"
                before = window(w)
                node.send_signal(signal.SIGKILL)
                node.wait(10)
            finally:
                node.kill()
            assert open_attempts(w) >= 1, "the killed node left calls open"
            again = node_process(w, tmp_path, "node-kill", "--until-idle")
            try:
                assert again.wait(180) == 0
            finally:
                again.kill()
        assert open_attempts(w) == 0
        with w.session() as session:
            orphans = session.scalars(
                select(CallAttempt).where(CallAttempt.failure_reason == ORPHAN_REASON)
            ).all()
            assert orphans and all(a.outcome == "failed" for a in orphans)
            assert session.scalar(select(func.count()).where(Lead.status == "dialing")) == 0
        assert_no_lead_dialled_twice_at_once(w)
        live, abandoned = window(w)
        assert live >= before[0] and abandoned >= before[1], "nothing of the 30 days was lost"


def test_sigterm_lets_live_calls_finish_and_exits_0(tmp_path: Path) -> None:
    leads = 6
    with world(tmp_path, agents=2, calls=4 * leads) as w:
        add_leads(
            w.engine, w.campaign_id, w.list_id, [number(i) for i in range(leads)], zone_in_hours()
        )
        start(w)
        with working_agents(w, talk="1-2"):
            node = node_process(w, tmp_path, "node-term", "--grace", "20")
            try:
                assert wait_for(lambda: open_attempts(w) >= 1, 30), "calls are up"
                node.send_signal(signal.SIGTERM)
                assert node.wait(60) == 0
            finally:
                node.kill()
        assert open_attempts(w) == 0
        with w.session() as session:
            attempts = session.scalars(select(CallAttempt)).all()
            assert attempts and all(a.failure_reason != ORPHAN_REASON for a in attempts)
