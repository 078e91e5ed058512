"""`dialer bench connect`: how long a human answer waits for its agent, through real SIP.

N customer calls go to a SIPp carrier that answers and echoes; a tap that declares every answer
human at its first frame takes AMD's listening time out of the figure, so what is measured is
the connector's work alone: verdict event, agent INVITE in the customer's worker (`near=`),
auto-answer by a SIPp agent phone, bridge. The connect delay is read on the worker's monotonic
clock, from the tap's decision to the bridge. Figures, never asserts.
"""

from __future__ import annotations

import contextlib
import math
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from dialer.bench.sip import LOOPBACK, NUMBER, _cpu_seconds
from dialer.connect import Connector, ConnectOutcome, ConnectSettings, amd_tap
from dialer.lines import Bridged, Ended, LinePool, TapSpec


class DeclareHuman:
    """A frame tap that says "human" on the first frame after the answer."""

    def feed(self, frame: bytes) -> str:
        return "human"


def run(
    calls: int,
    workers: int,
    hold: float = 1.0,
    amd: bool = False,
    greeting: Path | None = None,
    agent_answers: bool = True,
) -> dict[str, Any]:
    """Place `calls` customer calls, at most two per worker at once (each keeps a slot for its
    agent leg), connect each to the SIPp agent phone, hold `hold` s, hang up. With
    `agent_answers` False the agent's phone only rings: every call is abandoned and the figures
    say when the safe-harbor prompt started, after the greeting's end."""
    from dialer.bench.amd_corpus import write_wav
    from dialer.bench.rtp_pcap import wav_to_rtp_pcap
    from dialer.bench.sip import _Carrier, _config, started_pool, unclean_exits

    with tempfile.TemporaryDirectory() as folder:
        customer_dir, agent_dir = Path(folder) / "customers", Path(folder) / "agent"
        customer_dir.mkdir()
        agent_dir.mkdir()
        timeout = calls * (hold + 10) / max(1, workers) + 120
        if greeting is not None:
            pcap = customer_dir / "greeting.pcap"
            wav_to_rtp_pcap(greeting, pcap)
            customers = _Carrier(customer_dir, "answer", calls, timeout, PCAP=str(pcap))
        else:
            customers = _Carrier(customer_dir, "echo", calls, timeout)
        if agent_answers:
            agent = _Carrier(agent_dir, "agent_autoanswer", calls, timeout, MEDIA="")
        else:
            agent = _Carrier(agent_dir, "ring", calls, timeout)
        # A stand-in safe-harbor prompt: 1 s of a quiet 440 Hz tone.
        prompt = Path(folder) / "safe-harbor.wav"
        write_wav(prompt, 3000 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000))
        try:
            with started_pool(_config([customers.port], 50.0, calls), workers) as pool:
                tap = amd_tap() if amd else TapSpec("dialer.bench.connect:DeclareHuman")
                agent_uri = f"sip:agent@{LOOPBACK}:{agent.port}"
                figures = _run(pool, calls, workers, hold, tap, agent_uri, prompt)
            figures["worker_exits_not_clean"] = unclean_exits(pool)
            return figures
        finally:
            customers.stop()
            agent.stop()


def _run(
    pool: LinePool,
    calls: int,
    workers: int,
    hold: float,
    tap: TapSpec,
    agent_uri: str,
    prompt: Path,
) -> dict[str, Any]:
    settings = ConnectSettings(safe_harbor_prompt=str(prompt))
    connector = Connector(pool, settings, lambda customer: agent_uri)
    pids = pool.worker_pids()
    cpu_before = sum(_cpu_seconds(pid) for pid in pids)
    started = time.monotonic()
    placed = 0
    live: set[str] = set()
    hangups: dict[str, float] = {}  # customer -> when to hang up (monotonic)
    outcomes: list[ConnectOutcome] = []
    ended: Counter[str] = Counter()
    deadline = started + calls * (hold + 10) / max(1, workers) + 60
    while sum(ended.values()) < calls and time.monotonic() < deadline:
        while placed < calls and len(live) < 2 * workers:
            attempt_id = f"c-{placed}"
            pool.originate(attempt_id, "bench0", NUMBER, tap=tap, reserve_agent_slot=True)
            live.add(attempt_id)
            placed += 1
        now = time.monotonic()
        for customer, when in list(hangups.items()):
            if when <= now:
                del hangups[customer]
                with contextlib.suppress(KeyError):
                    pool.hangup(customer)
        event = pool.next_event(0.005)
        connector.tick()
        if event is None:
            continue
        outcome = connector.handle(event)
        if outcome is not None:
            outcomes.append(outcome)
        if isinstance(event, Bridged):
            hangups[event.attempt_id] = time.monotonic() + hold
        elif isinstance(event, Ended) and event.attempt_id in live:
            live.discard(event.attempt_id)
            ended[event.outcome] += 1
    elapsed = time.monotonic() - started
    cpu = sum(_cpu_seconds(pid) for pid in pool.worker_pids()) - cpu_before
    delays = sorted(o.connect_delay_ms for o in outcomes if o.connect_delay_ms is not None)
    # When the prompt started after the greeting's end (the rule allows 2 s).
    prompt_starts = sorted(
        1000 * o.safe_harbor_after_greeting_s
        for o in outcomes
        if o.safe_harbor_after_greeting_s is not None
    )
    return {
        "run": "connect",
        "calls": calls,
        "workers": workers,
        "tap": tap.factory,
        "connected": len(delays),
        "abandoned": sum(o.abandoned for o in outcomes),
        "abandon_reasons": dict(Counter(o.reason for o in outcomes if o.abandoned)),
        "outcomes": dict(ended),
        "connect_delay_ms_median": _percentile(delays, 50),
        "connect_delay_ms_p99": _percentile(delays, 99),
        "connect_delay_ms_max": round(delays[-1], 1) if delays else None,
        "safe_harbor_played": sum(o.safe_harbor_played for o in outcomes),
        "safe_harbor_start_ms_after_greeting_median": _percentile(prompt_starts, 50),
        "safe_harbor_start_ms_after_greeting_max": _percentile(prompt_starts, 100),
        "elapsed_s": round(elapsed, 1),
        "cpu_ms_per_call": round(1000 * cpu / max(1, calls), 1),
        "worker_restarts": pool.restarts,
        "uptime": _uptime(),
    }


def _percentile(values: list[float], percent: float) -> float | None:
    """Nearest-rank percentile: with 100 values p99 is the 99th, not an interpolation."""
    if not values:
        return None
    rank = max(1, math.ceil(percent / 100 * len(values)))
    return round(values[rank - 1], 1)


def _uptime() -> str:
    done = subprocess.run(["uptime"], capture_output=True, text=True, check=False)
    return done.stdout.strip()
