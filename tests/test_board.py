"""The node's agent board on the database alone (SQLite and PostgreSQL): which sessions a node
takes, the agents it sees, and the wrap-ups it reports ended."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from campaigns import agents
from campaigns.manage import add_agent
from campaigns.models import AgentSession, Node, utcnow
from dialer.node.board import NODE_GONE_AFTER, AgentBoard
from tests.conftest import make_campaign


def node_row(session: Session, name: str, heartbeat_at: dt.datetime) -> None:
    session.add(Node(name=name, host="localhost", pid=1, version="test", heartbeat_at=heartbeat_at))
    session.commit()


def test_a_node_takes_new_sessions_and_those_of_a_node_gone_silent(
    engine: Engine, session: Session
) -> None:
    campaign = make_campaign(session)
    ana, bob, cy = (
        add_agent(session, name, f"sip:{name}@127.0.0.1:5090", campaign).id
        for name in ("ana", "bob", "cy")
    )
    now = utcnow()
    node_row(session, "node-a", now)
    node_row(session, "node-b", now)
    for user_id in (ana, bob, cy):
        agents.login(session, user_id, campaign.id)
    agents.logout(session, cy)
    session.commit()
    first, second = AgentBoard(engine, "node-a"), AgentBoard(engine, "node-b")
    first.sync(now)
    assert sorted(first.agents) == [ana, bob]  # a logged-out session is nobody's
    second.sync(now)
    assert second.agents == {}  # node-a is alive: its agents stay with it
    assert first.agents[ana].state == "paused" and first.agents[ana].username == "ana"

    later = now + NODE_GONE_AFTER + dt.timedelta(seconds=1)
    second.sync(later)
    assert sorted(second.agents) == [ana, bob]
    session.expire_all()
    owners = {session.get_one(AgentSession, u).node for u in (ana, bob)}
    assert owners == {"node-b"}


def test_the_board_reports_each_wrap_up_that_ended_with_its_length(
    engine: Engine, session: Session
) -> None:
    campaign = make_campaign(session)
    ana = add_agent(session, "ana", "sip:ana@127.0.0.1:5090", campaign).id
    now = utcnow()
    node_row(session, "node-a", now)
    agents.login(session, ana, campaign.id)
    session.commit()
    board = AgentBoard(engine, "node-a")
    wrapping_since = now - dt.timedelta(seconds=12)
    session.execute(
        update(AgentSession)
        .where(AgentSession.user_id == ana)
        .values(state="wrap_up", state_since=wrapping_since)
    )
    session.commit()
    assert board.sync(now) == []
    assert board.pacing_agents(campaign.id, now)[0].state == "wrap"
    session.execute(
        update(AgentSession)
        .where(AgentSession.user_id == ana)
        .values(state="ready", state_since=now)
    )
    session.commit()
    [ended] = board.sync(now)
    assert (ended.user_id, ended.campaign_id, ended.duration) == (ana, campaign.id, 12.0)
    assert board.any_ready(campaign.id) and board.sync(now) == []
