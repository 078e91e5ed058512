"""AMD through real SIP: SIPp answers and plays each greeting, the line pool's AMD tap decides.

The calls go the way a campaign's do: `LinePool.originate(..., tap=amd_tap(settings))`, the
verdict arriving as an `AmdVerdict` event counted from the answer, the dialer hanging up on it.
Each greeting needs its own SIPp (a scenario plays one fixed pcap), so the pool has one trunk
per call in flight ("bench0", "bench1" ...), each pointing at a loopback SIP port on which a fresh
one-call SIPp is started for every greeting the trunk carries. Loopback only.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from dialer.amd import AmdSettings, Kind, Verdict
from dialer.bench.rtp_pcap import wav_to_rtp_pcap
from dialer.bench.sip import NUMBER, _Carrier, _config, _free_port, started_pool
from dialer.connect import amd_tap
from dialer.lines import AmdVerdict, Ended, Event, LinePool, NoSuchAttempt
from dialer.lines.worker import SLOTS

# No verdict by then is a broken call, not a "notsure": the detector decides within 5 s.
CALL_DEADLINE_S = 20.0
# SIPp exits once it has answered the BYE; one still running by then never got its call right.
SIPP_EXIT_GRACE_S = 5.0
# The scenario waits 20 s for the BYE; SIPp's own timeout only catches a call that never came.
SIPP_TIMEOUT_S = 60.0


@dataclass
class SipOutcome:
    name: str
    verdict: Verdict | None = None
    sip_code: int | None = None
    outcome: str | None = None
    error: str | None = None
    sipp_exit: int | None = None


@dataclass
class _Call:
    """A greeting on its way through one trunk: placed, then ended, then its SIPp gone."""

    outcome: SipOutcome
    trunk: str
    carrier: _Carrier
    deadline: float
    hung_up: bool = False
    ended: bool = False


def classify_over_sip(
    wavs: list[tuple[str, Path]],
    concurrency: int = 3,
    settings: AmdSettings | None = None,
) -> dict[str, SipOutcome]:
    """Verdicts for each named WAV played by SIPp through a real SIP call, by name."""
    concurrency = max(1, min(concurrency, len(wavs)))
    # A worker holds 4 calls; two workers at least, so that the calls cross the pool's dispatch.
    workers = max(2, math.ceil(concurrency / SLOTS))
    ports = [_free_port() for _ in range(concurrency)]
    with tempfile.TemporaryDirectory(prefix="amd-sip-") as folder:
        greetings: deque[tuple[str, Path]] = deque()
        for name, wav in wavs:
            workdir = Path(folder) / name
            workdir.mkdir()
            wav_to_rtp_pcap(wav, workdir / "greeting.pcap")
            greetings.append((name, workdir))
        with started_pool(_config(ports, 50.0, concurrency), workers) as pool:
            return _place(pool, ports, greetings, settings)


def _place(
    pool: LinePool,
    ports: list[int],
    greetings: deque[tuple[str, Path]],
    settings: AmdSettings | None,
) -> dict[str, SipOutcome]:
    # bench0, bench1 ... are the names `_config` gives the trunks, in the order of their ports.
    free = deque((f"bench{i}", port) for i, port in enumerate(ports))
    tap = amd_tap(settings)
    calls: dict[str, _Call] = {}
    outcomes: dict[str, SipOutcome] = {}
    try:
        while greetings or calls:
            while greetings and free:
                (name, workdir), (trunk, port) = greetings.popleft(), free.popleft()
                carrier = _Carrier(
                    workdir, "answer", 1, SIPP_TIMEOUT_S, port, PCAP=str(workdir / "greeting.pcap")
                )
                calls[name] = _Call(
                    SipOutcome(name), trunk, carrier, time.monotonic() + CALL_DEADLINE_S
                )
                pool.originate(name, trunk, NUMBER, tap=tap)
            _handle(pool, pool.next_event(0.01), calls)
            now = time.monotonic()
            for name, call in list(calls.items()):
                if not call.ended and not call.hung_up and now > call.deadline:
                    call.outcome.error = f"no verdict within {CALL_DEADLINE_S:g} s"
                    _hang_up(pool, call)
                if call.ended and _carrier_done(call, now):
                    # The trunk's port is free again only once this SIPp has exited.
                    del calls[name]
                    outcomes[name] = call.outcome
                    free.append((call.trunk, call.carrier.port))
    finally:
        for call in calls.values():
            call.carrier.stop()
    return outcomes


def _handle(pool: LinePool, event: Event | None, calls: dict[str, _Call]) -> None:
    call = calls.get(event.attempt_id) if isinstance(event, AmdVerdict | Ended) else None
    if call is None:
        return
    if isinstance(event, AmdVerdict):
        # `dialer.amd:tap_factory` returns a `Verdict`, so reason and after_ms are always set.
        kind = cast(Kind, event.verdict)
        call.outcome.verdict = Verdict(kind, event.reason or "", event.after_ms or 0)
        _hang_up(pool, call)
    elif isinstance(event, Ended):
        call.ended = True
        call.outcome.sip_code, call.outcome.outcome = event.sip_code, event.outcome
        call.deadline = time.monotonic() + SIPP_EXIT_GRACE_S
        if call.outcome.verdict is None and call.outcome.error is None:
            call.outcome.error = f"ended without a verdict: {event.sip_code} {event.reason}"


def _hang_up(pool: LinePool, call: _Call) -> None:
    call.hung_up = True
    # The far end may have hung up first: the attempt is then already gone.
    with contextlib.suppress(NoSuchAttempt):
        pool.hangup(call.outcome.name)


def _carrier_done(call: _Call, now: float) -> bool:
    """True once the call's SIPp has exited (its status recorded) or overstayed its grace."""
    exit_code = call.carrier.process.poll()
    if exit_code is None and now < call.deadline:
        return False
    call.carrier.stop()
    call.outcome.sipp_exit = exit_code
    if exit_code != 0 and call.outcome.error is None:
        log = Path(call.carrier.log.name).read_text(errors="replace")
        call.outcome.error = f"SIPp exit {exit_code}: {log[-400:]}"
    return True
