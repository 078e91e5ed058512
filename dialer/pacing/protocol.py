"""The pacing protocol (ARCHITECTURE §8): the view a pacer decides on and the events it learns
from. Times are seconds, monotonic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

AGENT_STATES = ("idle", "talk", "wrap")
OUTCOMES = ("human", "machine", "busy", "no_answer", "failed")


class AgentView(NamedTuple):
    """A named tuple, not a dataclass: the node builds one per agent at every decision."""

    state: str  # "idle" | "talk" | "wrap"
    since: float  # seconds in that state


@dataclass(frozen=True, slots=True)
class PacingView:
    now: float
    agents: tuple[AgentView, ...]  # logged-in, not paused agents
    dialing: tuple[float, ...]  # age of each attempt not yet classified
    waiting: int  # human answers waiting for an agent
    max_lines: int

    @property
    def idle(self) -> int:
        return sum(1 for state, _ in self.agents if state == "idle")

    def agents_by_state(self, state: str) -> tuple[float, ...]:
        """Seconds in state of every agent in `state`."""
        return tuple(since for each, since in self.agents if each == state)

    @property
    def free_lines(self) -> int:
        return max(0, self.max_lines - len(self.dialing))


@dataclass(frozen=True, slots=True)
class Resolved:
    outcome: str  # "human" | "machine" | "busy" | "no_answer" | "failed"
    after: float  # seconds since dial


@dataclass(frozen=True, slots=True)
class Connected:
    waited: float


@dataclass(frozen=True, slots=True)
class Abandoned:
    pass


@dataclass(frozen=True, slots=True)
class TalkEnded:
    duration: float


@dataclass(frozen=True, slots=True)
class WrapEnded:
    duration: float


Event = Resolved | Connected | Abandoned | TalkEnded | WrapEnded


class Pacer(Protocol):
    def decide(self, view: PacingView) -> int: ...

    def observe(self, event: Event) -> None: ...
