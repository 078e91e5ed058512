"""The node's view of its agents: the rows of `agent_sessions` it owns, read back at every
sync, so that building a pacing view or finding a free agent never waits on the database.
The database stays the truth (ARCHITECTURE §3a): every move is written there first (the node
through `campaigns.agents`, the agents through the same module) and the board follows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, bindparam, or_, select, update

from campaigns import db
from campaigns.models import AgentSession, Node, User
from dialer.pacing import AgentView

# The pacer's three agent states, from a session's state; paused and logged-out agents are
# not in the view at all.
PACING_STATE = {"ready": "idle", "reserved": "talk", "on_call": "talk", "wrap_up": "wrap"}
# A node silent this long is gone: another node takes its agents.
NODE_GONE_AFTER = dt.timedelta(seconds=15)


@dataclass(frozen=True)
class AgentState:
    user_id: int
    username: str
    campaign_id: int | None
    state: str
    since: dt.datetime
    phone_uri: str | None
    attempt_id: int | None
    wrap_deadline: dt.datetime | None


@dataclass(frozen=True)
class WrapEnd:
    """An agent left wrap-up (dispositioned, or timed out) after `duration` seconds."""

    user_id: int
    campaign_id: int
    duration: float


# Built once: a node reads its agents every quarter of a second, and every 50 ms while a
# person waits, where building these statements cost as much as running them.
_GONE_BEFORE = bindparam("gone_before", type_=Node.heartbeat_at.type)
_UNOWNED = or_(
    AgentSession.node.is_(None),
    AgentSession.node.in_(select(Node.name).where(Node.heartbeat_at < _GONE_BEFORE)),
)
_ANY_UNOWNED = (
    select(AgentSession.user_id).where(AgentSession.state != "logged_out", _UNOWNED).limit(1)
)
_TAKE_UNOWNED = (
    update(AgentSession)
    .where(AgentSession.state != "logged_out", _UNOWNED)
    .values(node=bindparam("node"))
)
_MINE = (
    select(
        AgentSession.user_id,
        User.username,
        AgentSession.campaign_id,
        AgentSession.state,
        AgentSession.state_since,
        AgentSession.phone_uri,
        AgentSession.current_attempt_id,
        AgentSession.wrap_deadline,
    )
    .join(User, User.id == AgentSession.user_id)
    .where(AgentSession.node == bindparam("node"), AgentSession.state != "logged_out")
)


class AgentBoard:
    def __init__(self, engine: Engine, node: str) -> None:
        self.engine = engine
        self.writer = db.writer(engine)
        self.node = node
        self.agents: dict[int, AgentState] = {}

    def sync(self, now: dt.datetime) -> list[WrapEnd]:
        """Takes the sessions nobody owns (an agent just logged in, or their node is gone),
        reads back this node's, and reports the wrap-ups that ended since the last sync."""
        gone_before = {"gone_before": now - NODE_GONE_AFTER}
        with self.engine.connect() as reading:
            if reading.scalar(_ANY_UNOWNED, gone_before) is not None:
                with self.writer.begin() as writing:
                    writing.execute(_TAKE_UNOWNED, {**gone_before, "node": self.node})
                reading.commit()  # a new snapshot, which sees the sessions just taken
            fresh = {
                row[0]: AgentState(*row) for row in reading.execute(_MINE, {"node": self.node})
            }
        ended = []
        for user_id, before in self.agents.items():
            after = fresh.get(user_id)
            if before.state != "wrap_up" or before.campaign_id is None:
                continue
            if after is not None and after.state == "wrap_up":
                continue
            left = after.since if after is not None else now
            duration = max(0.0, (left - before.since).total_seconds())
            ended.append(WrapEnd(user_id, before.campaign_id, duration))
        self.agents = fresh
        return ended

    def set(self, user_id: int, **changes: object) -> None:
        """The node moved an agent (written to the database already)."""
        agent = self.agents.get(user_id)
        if agent is not None:
            values = {**agent.__dict__, **changes}
            self.agents[user_id] = AgentState(**values)  # type: ignore[arg-type]

    def of_campaign(self, campaign_id: int) -> Iterable[AgentState]:
        return (agent for agent in self.agents.values() if agent.campaign_id == campaign_id)

    def pacing_agents(self, campaign_id: int, now: dt.datetime) -> tuple[AgentView, ...]:
        return tuple(
            AgentView(PACING_STATE[agent.state], max(0.0, (now - agent.since).total_seconds()))
            for agent in self.of_campaign(campaign_id)
            if agent.state in PACING_STATE
        )

    def any_ready(self, campaign_id: int) -> bool:
        return any(agent.state == "ready" for agent in self.of_campaign(campaign_id))

    def longest_idle(self, campaign_id: int) -> list[AgentState]:
        """The campaign's ready agents, the longest idle first: who takes the next answer."""
        ready = [agent for agent in self.of_campaign(campaign_id) if agent.state == "ready"]
        return sorted(ready, key=lambda agent: agent.since)

    def logged_in(self, campaign_id: int) -> int:
        return sum(1 for agent in self.of_campaign(campaign_id) if agent.state in PACING_STATE)

    def wrap_ups_due(self, now: dt.datetime) -> list[AgentState]:
        return [
            agent
            for agent in self.agents.values()
            if agent.state == "wrap_up"
            and agent.wrap_deadline is not None
            and agent.wrap_deadline <= now
            and agent.attempt_id is not None
        ]
