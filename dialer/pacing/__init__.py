"""The pacing protocol: one engine for the live node, the simulator and any outside harness.

A pacer sees a `PacingView` of the campaign now and answers how many new calls to launch; it
learns from the events the caller reports as they happen. Times are seconds, monotonic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

AGENT_STATES = ("idle", "talk", "wrap")
OUTCOMES = ("human", "machine", "busy", "no_answer", "failed")


@dataclass(frozen=True, slots=True)
class AgentView:
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
        return sum(1 for agent in self.agents if agent.state == "idle")

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


class PreviewPacer:
    """Never dials on its own: the agent previews the lead and asks for the call."""

    def decide(self, view: PacingView) -> int:
        return 0

    def observe(self, event: Event) -> None:
        return None


class RatioPacer:
    """`ratio` attempts in flight per idle agent (progressive is ratio 1: no abandons by
    design, as every answer has an agent waiting for it)."""

    def __init__(self, ratio: float = 1.0) -> None:
        if not 1.0 <= ratio <= 10.0:
            raise ValueError(f"ratio {ratio!r} must be between 1 and 10")
        self.ratio = ratio

    def decide(self, view: PacingView) -> int:
        wanted = int(self.ratio * view.idle + 1e-9) - len(view.dialing) - view.waiting
        return max(0, min(wanted, view.free_lines))

    def observe(self, event: Event) -> None:
        return None


def make_pacer(mode: str, **settings: float) -> Pacer:
    if mode == "preview":
        return PreviewPacer()
    if mode == "progressive":
        return RatioPacer(1.0)
    if mode == "power":
        return RatioPacer(float(settings.get("ratio", 2.0)))
    raise ValueError(f"pacing mode {mode!r} is not one of preview, progressive, power")
