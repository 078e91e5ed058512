"""A deterministic discrete-event simulator of an outbound campaign, driving any pacer only
through the pacing protocol. The model is the one `workloads.json` describes: outcome classes
drawn at dial time, lognormal pickups, the greeting, AMD delays and errors, the 2-second rule,
lognormal talk and wrap-up, and the trunk's line cap. Same seed, same numbers; and under any
pacer the same leads, so that modes differ by their decisions alone."""

from __future__ import annotations

import heapq
import itertools
import json
import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from dialer.connect import ConnectSettings
from dialer.lines.bucket import TokenBucket
from dialer.pacing import (
    Abandoned,
    AgentView,
    Connected,
    Pacer,
    PacingView,
    RatioPacer,
    Resolved,
    TalkEnded,
    WrapEnded,
)

# 47 CFR 64.1200(a)(7): a live answer must reach an agent within 2 s of the greeting's end. The
# node offers a waiting person an agent freed up to the end of its window (the 2 s less the
# safe-harbor message's lead and the agent phone's answer), and sees an agent free in the
# database half a read later on average (it reads its agents every 50 ms while a person
# waits): a simulated full 2 s forecast 0.2 points fewer abandons than this window for 100
# agents.
AGENT_SEEN_AFTER = 0.025  # half of dialer.node.node.AGENTS_READ_WHILE_WAITING
CONNECT_DEADLINE = ConnectSettings(safe_harbor_prompt="").offer_window_s - AGENT_SEEN_AFTER
AMD_AFTER_GREETING = 0.8
TICK = 1.0
_new_tuple = tuple.__new__


def load_workloads(path: str | None = None) -> dict[str, Any]:
    if path is None:
        text = resources.files("dialer").joinpath("workloads.json").read_text(encoding="utf-8")
    else:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    return json.loads(text)


@dataclass(frozen=True)
class Workload:
    name: str
    agents: int
    live_rate: float | tuple[tuple[float, float], ...]
    machine_rate: float
    busy_rate: float
    sit_rate: float
    talk_mean: float
    talk_cv: float
    wrap_mean: float
    wrap_cv: float = 0.5
    hours: float = 8.0
    ring_timeout: float = 25.0
    live_pickup_median: float = 9.0
    live_pickup_sigma: float = 0.45
    machine_pickup_median: float = 17.0
    machine_pickup_sigma: float = 0.25
    amd_false_machine: float = 0.005
    amd_false_human: float = 0.10
    lines_per_agent: float = 4
    # The trunk's calls per second (None: as many as the pacer asks for at once). The node
    # launches no more a second and the line pool sends them evenly within it.
    calls_per_second: float | None = None

    @classmethod
    def from_spec(cls, spec: dict[str, Any], defaults: dict[str, Any]) -> Workload:
        merged = {**defaults, **spec}
        live = merged["live_rate"]
        if isinstance(live, list):
            merged["live_rate"] = tuple((float(h), float(r)) for h, r in live)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in merged.items() if k in known})

    def live_at(self, hour: float) -> float:
        if not isinstance(self.live_rate, tuple):
            return self.live_rate
        points = self.live_rate
        if hour <= points[0][0]:
            return points[0][1]
        for (h0, r0), (h1, r1) in itertools.pairwise(points):
            if hour <= h1:
                return r0 + (r1 - r0) * (hour - h0) / (h1 - h0)
        return points[-1][1]

    @property
    def upper_bound(self) -> float:
        return self.talk_mean / (self.talk_mean + self.wrap_mean)


def workloads(path: str | None = None) -> list[Workload]:
    data = load_workloads(path)
    return [Workload.from_spec(spec, data["defaults"]) for spec in data["workloads"]]


def _lognormal_params(mean: float, cv: float) -> tuple[float, float]:
    sigma2 = math.log(1 + cv * cv)
    return math.log(mean) - sigma2 / 2, math.sqrt(sigma2)


@dataclass
class Result:
    workload: str
    seed: int
    mode: str = ""
    talk_time: float = 0.0
    logged_in: float = 0.0
    connects: int = 0
    live_answers: int = 0
    abandoned: int = 0
    dials: int = 0
    idle_gaps: list[float] = field(default_factory=list)

    @property
    def utilisation(self) -> float:
        return self.talk_time / self.logged_in if self.logged_in else 0.0

    @property
    def abandon_rate(self) -> float:
        return self.abandoned / self.live_answers if self.live_answers else 0.0

    @property
    def mean_wait(self) -> float:
        return sum(self.idle_gaps) / len(self.idle_gaps) if self.idle_gaps else 0.0


# Event kinds, ordered so that at equal times agents free up before answers look for them.
WRAP_END, TALK_END, VERDICT, DEADLINE, RESOLVE = range(5)


class _Agent:
    __slots__ = ("busy_with", "since", "state", "wrap")

    def __init__(self) -> None:
        self.state = "idle"
        self.since = 0.0
        self.busy_with: int | None = None
        self.wrap = 0.0  # seconds of wrap-up once this call ends


class _Draws:
    """Random numbers in rows, one row per lead dialled or per call connected, from a stream of
    their own: under any pacer the n-th lead dialled is the same lead (outcome, pickup, greeting,
    AMD error) and the n-th call connected lasts as long, so modes are compared on the same
    campaign rather than on different luck."""

    def __init__(self, seed: int, stream: int, normals: int, uniforms: int) -> None:
        self.rng = np.random.default_rng([seed, stream])
        self.normals, self.uniforms = normals, uniforms
        self.rows: list[list[float]] = []

    def next(self) -> list[float]:
        if not self.rows:
            block = np.concatenate(
                (
                    self.rng.standard_normal((1024, self.normals)),
                    self.rng.random((1024, self.uniforms)),
                ),
                axis=1,
            )
            self.rows = block.tolist()[::-1]
        return self.rows.pop()


class Simulation:
    """One campaign shift under one pacer. With `abandon_cap`, the compliance gate's rule as
    the live node meets it: while the abandons seen so far reach that share of the live
    answers seen (the campaign's rolling 30 days, which a fresh campaign's shift is), calls
    are launched one per free agent, as the gate refuses any placed ahead of one."""

    def __init__(
        self, workload: Workload, pacer: Pacer, seed: int, abandon_cap: float | None = None
    ) -> None:
        self.w = workload
        self.pacer = pacer
        self.abandon_cap = abandon_cap
        self.progressive = RatioPacer(1.0)
        self.seen_live = 0
        self.seen_abandoned = 0
        # Per lead: pickup (normal), then outcome, greeting or delay, AMD error (uniform).
        self.leads = _Draws(seed, 1, 1, 3)
        # Per connected call: talk, wrap-up (normal), then the time a machine costs (uniform).
        self.calls = _Draws(seed, 2, 2, 1)
        self.result = Result(workload.name, seed)
        self.talk_mu, self.talk_sigma = _lognormal_params(workload.talk_mean, workload.talk_cv)
        self.wrap_mu, self.wrap_sigma = _lognormal_params(workload.wrap_mean, workload.wrap_cv)
        self.agents = [_Agent() for _ in range(workload.agents)]
        self.events: list[tuple[float, int, int, int]] = []
        self.seq = 0
        self.dialing: dict[int, float] = {}  # attempt -> dial time, until classified
        self.queue: list[int] = []  # human answers waiting for an agent, in arrival order
        self.deadlines: dict[int, float] = {}
        self.false_human: set[int] = set()
        self.outcomes: dict[int, str] = {}  # attempt -> outcome it resolves to
        self.queued_at: dict[int, float] = {}
        self.next_attempt = 0
        cps = workload.calls_per_second
        # As the node spends its trunk's calls per second (dialer.node), and as the line pool
        # then sends them: one every 1/cps seconds.
        self.launches = TokenBucket(cps, burst=cps * TICK + 1.0) if cps else None
        self.next_send = 0.0

    def _push(self, when: float, kind: int, attempt: int) -> None:
        self.seq += 1
        heapq.heappush(self.events, (when, kind, self.seq, attempt))

    def run(self) -> Result:
        end = self.w.hours * 3600.0
        now = 0.0
        while now < end:
            while self.events and self.events[0][0] <= now:
                when, kind, _, attempt = heapq.heappop(self.events)
                self._handle(when, kind, attempt)
                # A line or an agent came free: the node decides at once, not at the next tick.
                if kind in (RESOLVE, WRAP_END) and not (self.events and self.events[0][0] == when):
                    self._launch(when)
            self._launch(now)
            now += TICK
        for agent in self.agents:
            if agent.state == "talk":
                self.result.talk_time += end - agent.since
        self.result.logged_in = end * self.w.agents
        return self.result

    def _view(self, now: float) -> PacingView:
        return PacingView(
            now,
            # tuple.__new__ skips the named tuple's Python-level constructor: views are built at
            # every event of a long simulation and this halves their cost.
            tuple([_new_tuple(AgentView, (a.state, now - a.since)) for a in self.agents]),
            tuple(now - t for t in self.dialing.values()),
            len(self.queue),
            int(self.w.lines_per_agent * self.w.agents + 1e-9),
        )

    def _launch(self, now: float) -> None:
        view = self._view(now)
        capped = (
            self.abandon_cap is not None
            and self.seen_live > 0
            and self.seen_abandoned >= self.abandon_cap * self.seen_live
        )
        pacer = self.progressive if capped else self.pacer
        count = min(pacer.decide(view), view.free_lines)
        if self.launches is not None:
            count = min(count, self.launches.room(now))
            self.launches.spend(max(0, count), now)
        for _ in range(max(0, count)):
            self._dial(now)

    def _dial(self, now: float) -> None:
        w = self.w
        attempt = self.next_attempt
        self.next_attempt += 1
        self.result.dials += 1
        self.dialing[attempt] = now  # the pacer counts a call from its launch
        sent = now
        if self.w.calls_per_second:
            sent = max(now, self.next_send)
            self.next_send = sent + 1.0 / self.w.calls_per_second
        pickup_z, draw, delay, amd = self.leads.next()
        live = w.live_at(now / 3600.0)
        if draw < live:
            pickup = w.live_pickup_median * math.exp(w.live_pickup_sigma * pickup_z)
            if pickup > w.ring_timeout:
                self._resolve_later(sent + w.ring_timeout, attempt, "no_answer")
                return
            greeting_end = sent + pickup + 0.8 + 1.2 * delay
            self.result.live_answers += 1
            if amd < w.amd_false_machine:
                # Hung up on a person: an abandoned call.
                self.result.abandoned += 1
                self._resolve_later(greeting_end + AMD_AFTER_GREETING, attempt, "machine")
                return
            self.deadlines[attempt] = greeting_end + CONNECT_DEADLINE
            self._push(greeting_end + AMD_AFTER_GREETING, VERDICT, attempt)
        elif draw < live + w.machine_rate:
            pickup = w.machine_pickup_median * math.exp(w.machine_pickup_sigma * pickup_z)
            if pickup > w.ring_timeout:
                self._resolve_later(sent + w.ring_timeout, attempt, "no_answer")
                return
            detected = sent + pickup + 2.0 + 2.0 * delay
            if amd < w.amd_false_human:
                self.false_human.add(attempt)
                self.deadlines[attempt] = detected + CONNECT_DEADLINE - AMD_AFTER_GREETING
                self._push(detected, VERDICT, attempt)
            else:
                self._resolve_later(detected, attempt, "machine")
        elif draw < live + w.machine_rate + w.busy_rate:
            self._resolve_later(sent + 2.0 + 4.0 * delay, attempt, "busy")
        elif draw < live + w.machine_rate + w.busy_rate + w.sit_rate:
            self._resolve_later(sent + 1.0 + 3.0 * delay, attempt, "failed")
        else:
            self._resolve_later(sent + w.ring_timeout, attempt, "no_answer")

    def _resolve_later(self, when: float, attempt: int, outcome: str) -> None:
        self.outcomes[attempt] = outcome
        self._push(when, RESOLVE, attempt)

    def _handle(self, now: float, kind: int, attempt: int) -> None:
        if kind == RESOLVE:
            started = self.dialing.pop(attempt)
            self.pacer.observe(Resolved(self.outcomes.pop(attempt), now - started))
        elif kind == VERDICT:
            started = self.dialing.pop(attempt)
            self.pacer.observe(Resolved("human", now - started))
            # The node counts what AMD calls a person: a machine it put through too.
            self.seen_live += 1
            self.queue.append(attempt)
            self.queued_at[attempt] = now
            self._push(self.deadlines[attempt], DEADLINE, attempt)
            self._serve_queue(now)
        elif kind == DEADLINE:
            if attempt in self.deadlines and attempt in self.queue:
                self.queue.remove(attempt)
                del self.deadlines[attempt]
                del self.queued_at[attempt]
                self.seen_abandoned += 1  # the node hears no difference: an abandon
                if attempt in self.false_human:
                    self.false_human.discard(attempt)
                else:
                    self.result.abandoned += 1
                    self.pacer.observe(Abandoned())
        elif kind == TALK_END:
            agent = self.agents[attempt]
            duration = now - agent.since
            if agent.busy_with is not None and agent.busy_with >= 0:
                self.result.talk_time += duration
            # The node sees every agent call end, a machine's too (it is no conversation, so it
            # is not talk time); the pacer learns that some calls end within seconds.
            self.pacer.observe(TalkEnded(duration))
            agent.state, agent.since = "wrap", now
            self._push(now + agent.wrap, WRAP_END, attempt)
        elif kind == WRAP_END:
            agent = self.agents[attempt]
            self.pacer.observe(WrapEnded(now - agent.since))
            agent.state, agent.since, agent.busy_with = "idle", now, None
            self._serve_queue(now)

    def _serve_queue(self, now: float) -> None:
        while self.queue:
            idle = [i for i, a in enumerate(self.agents) if a.state == "idle"]
            if not idle:
                return
            # The agent idle longest takes the call (fair distribution).
            index = min(idle, key=lambda i: self.agents[i].since)
            agent = self.agents[index]
            attempt = self.queue.pop(0)
            del self.deadlines[attempt]
            waited = now - self.queued_at.pop(attempt)
            self.result.idle_gaps.append(now - agent.since)
            agent.state, agent.since = "talk", now
            talk_z, wrap_z, lost = self.calls.next()
            if attempt in self.false_human:
                # An answering machine routed to an agent: 3-12 s lost, no conversation.
                self.false_human.discard(attempt)
                agent.busy_with, agent.wrap = -1, 0.0
                self._push(now + 3.0 + 9.0 * lost, TALK_END, index)
                continue
            agent.busy_with = attempt
            self.result.connects += 1
            self.pacer.observe(Connected(waited))
            agent.wrap = math.exp(self.wrap_mu + self.wrap_sigma * wrap_z)
            self._push(now + math.exp(self.talk_mu + self.talk_sigma * talk_z), TALK_END, index)


def simulate(
    workload: Workload,
    pacer: Pacer,
    seed: int,
    mode: str = "",
    abandon_cap: float | None = None,
) -> Result:
    result = Simulation(workload, pacer, seed, abandon_cap).run()
    result.mode = mode
    return result


def clairvoyant(workload: Workload, seed: int) -> Result:
    """The upper bound: a dialer that knows which numbers answer as persons and when, and so
    rings each one to be answered the instant an agent is free. No wasted dial, no abandon,
    no AMD error; agents only talk and wrap up."""
    rng = np.random.default_rng(seed)
    talk_mu, talk_sigma = _lognormal_params(workload.talk_mean, workload.talk_cv)
    wrap_mu, wrap_sigma = _lognormal_params(workload.wrap_mean, workload.wrap_cv)
    end = workload.hours * 3600.0
    result = Result(workload.name, seed, "clairvoyant", logged_in=end * workload.agents)
    for _ in range(workload.agents):
        now = 0.0
        while now < end:
            talk = math.exp(talk_mu + talk_sigma * rng.standard_normal())
            result.talk_time += min(talk, end - now)
            result.connects += 1
            result.live_answers += 1
            result.idle_gaps.append(0.0)
            now += talk + math.exp(wrap_mu + wrap_sigma * rng.standard_normal())
    result.dials = result.connects
    return result
