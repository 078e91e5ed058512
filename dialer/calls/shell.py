"""The shell that runs an agentless campaign's IVR flows on `Lines`: it feeds each answered
customer call's flow the pool's events and carries out what the flow decides (play a prompt,
hang up, store an answer or an appointment change), and hands a call to the connector when the
flow asks for an agent (an appointment reminder's 0), after which the connector owns it.

AMD decides who gets a flow: a person (human, or notsure, which the dialer treats as a person)
hears the flow; an answering machine is hung up on. Call `handle` for every event of the
campaign's customer calls and `tick` at least every 20 ms (the connector's 2-s window, the
flows' key timeouts); the call's results come back from `handle` with its `Ended`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from dialer.calls.flow import (
    Action,
    ChangeAppointment,
    HangUp,
    IvrFlow,
    IvrOutcome,
    Play,
    SaveAnswer,
    Store,
    ToAgent,
)
from dialer.connect import CONNECTED_VERDICTS, Connector, ConnectOutcome
from dialer.lines.events import (
    AmdVerdict,
    CommandFailed,
    DtmfReceived,
    Ended,
    Event,
    PromptFinished,
)
from dialer.lines.protocol import Lines

log = logging.getLogger(__name__)

# A person whose flow is not ready (a reminder's prompts still rendering) hears nothing for at
# most this long; then the call ends as failed, saying why.
START_WITHIN_S = 4.0


@dataclass(frozen=True)
class IvrEnd:
    """A customer call's results at its end: the flow's, and the connector's when the flow
    handed the call to an agent."""

    ivr: IvrOutcome | None
    connect: ConnectOutcome | None


class FlowSource(Protocol):
    """Where the shell gets each call's flow and keeps what it stores (the node's
    `dialer.node.kinds.KindFlows`, with the campaign's survey or calendar behind it)."""

    def start(self, customer: str) -> IvrFlow | None:
        """The call's flow, or None while it is still being prepared."""

    def store(self, action: Store) -> bool:
        """Carries out a SaveAnswer or ChangeAppointment; False when it was refused."""

    def forget(self, customer: str) -> None:
        """The call has ended: whatever was prepared for it can go."""


class IvrFlows:
    def __init__(
        self,
        lines: Lines,
        connector: Connector,
        source: FlowSource,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lines = lines
        self.connector = connector
        self.source = source
        self.clock = clock
        self.flows: dict[str, IvrFlow] = {}
        self.starting: dict[str, float] = {}  # person answered, flow not ready: since when
        self.handed: set[str] = set()  # the connector owns these calls now

    def handle(self, event: Event) -> IvrEnd | None:
        customer = getattr(event, "attempt_id", None)
        if customer is None:
            return None
        if "/" in customer:  # an agent leg: the connector's
            self.connector.handle(event)
            return None
        now = self.clock()
        if customer in self.handed:
            connect = self.connector.handle(event)
            if isinstance(event, Ended):
                self.handed.discard(customer)
                self.source.forget(customer)
                flow = self.flows.pop(customer, None)
                return IvrEnd(None if flow is None else flow.outcome(), connect)
            return None
        if isinstance(event, AmdVerdict):
            if event.verdict in CONNECTED_VERDICTS:
                self.starting[customer] = now
                self._try_start(customer, now)
            else:
                self._carry_out(customer, [HangUp(customer)])
            return None
        flow = self.flows.get(customer)
        if isinstance(event, Ended):
            self.starting.pop(customer, None)
            self.source.forget(customer)
            if flow is None:
                return IvrEnd(None, None)
            flow.on_ended(now)
            del self.flows[customer]
            return IvrEnd(flow.outcome(), None)
        if flow is None:
            return None
        if isinstance(event, PromptFinished):
            self._carry_out(customer, flow.on_prompt_finished(now))
        elif isinstance(event, DtmfReceived):
            self._carry_out(customer, flow.on_digit(event.digit, now))
        elif isinstance(event, CommandFailed) and event.command == "Play":
            log.warning("call %s: a prompt did not play: %s", customer, event.reason)
            self._carry_out(customer, flow.on_prompt_failed(now))
        return None

    def tick(self) -> None:
        now = self.clock()
        for customer, since in list(self.starting.items()):
            if not self._try_start(customer, now) and now - since >= START_WITHIN_S:
                del self.starting[customer]
                log.error("call %s: its IVR flow was not ready in time: hanging up", customer)
                self._carry_out(customer, [HangUp(customer)])
        for customer, flow in list(self.flows.items()):
            if customer not in self.handed:
                self._carry_out(customer, flow.on_tick(now))
        self.connector.tick()

    @property
    def waiting(self) -> int:
        return self.connector.waiting

    def _try_start(self, customer: str, now: float) -> bool:
        try:
            flow = self.source.start(customer)
        except Exception:  # a script that could not be prepared: the call cannot go on
            log.exception("call %s: its IVR flow could not be prepared", customer)
            self.starting.pop(customer, None)
            self._carry_out(customer, [HangUp(customer)])
            return True
        if flow is None:
            return False
        self.starting.pop(customer, None)
        self.flows[customer] = flow
        self._carry_out(customer, flow.on_start(now))
        return True

    def _carry_out(self, customer: str, actions: list[Action]) -> None:
        while actions:
            action = actions.pop(0)
            try:
                if isinstance(action, Play):
                    self.lines.play(action.attempt_id, action.path)
                elif isinstance(action, HangUp):
                    self.lines.hangup(action.attempt_id)
                elif isinstance(action, ToAgent):
                    self.handed.add(customer)
                    self.connector.take(customer)
                elif isinstance(action, SaveAnswer | ChangeAppointment):
                    done = self._store(action)
                    flow = self.flows.get(customer)
                    if flow is not None:
                        actions.extend(flow.on_stored(action, done, self.clock()))
            except (KeyError, ValueError):
                # The call ended while the action was decided (NoSuchAttempt is a KeyError):
                # its Ended event is on its way and settles it.
                continue

    def _store(self, action: Store) -> bool:
        try:
            return self.source.store(action)
        except Exception:
            log.exception("call %s: %r could not be stored", action.attempt_id, action)
            return False
