"""Special information tones through real calls: SIPp as the carrier plays a SIT in early media
and rejects the call, or answers and plays one; the pool reports invalid or congestion, not
no_answer or a machine."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from dialer.bench.rtp_pcap import write_rtp_pcap
from dialer.connect import Connector, ConnectOutcome, ConnectSettings, amd_tap
from dialer.lines import AmdVerdict, Answered, Ended, Event, LinePool, Progress
from dialer.sit import LONG_MS, SHORT_MS, sit_samples
from sip_config import loads
from tests.sipp_uas import Carrier
from tests.test_lines import trunk_table

pytestmark = [
    pytest.mark.sip,
    pytest.mark.skipif(shutil.which("sipp") is None, reason="needs sipp"),
]

NUMBER = "+12125550199"
TRUNKS = ("intercept", "no_circuit")


@pytest.fixture(scope="module")
def carriers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Carrier]]:
    workdir = tmp_path_factory.mktemp("sipp")
    carriers = {name: Carrier(workdir, name) for name in TRUNKS}
    yield carriers
    for carrier in carriers.values():
        carrier.stop()


@pytest.fixture(scope="module")
def pool(carriers: dict[str, Carrier]) -> Iterator[LinePool]:
    tables = "".join(trunk_table(name, carriers[name].port) for name in TRUNKS)
    with LinePool(loads(tables), workers=1) as line_pool:
        yield line_pool
    assert line_pool.exits == [(0, 0)]  # no abort at shutdown


def sit_pcap(path: Path, first: tuple[float, int], second: tuple[float, int]) -> Path:
    """Half a second of line noise, the SIT, then a noisy stand-in for the announcement."""
    rng = np.random.default_rng(7)
    audio = np.concatenate(
        (rng.normal(0, 30, 4000), sit_samples(first, second), rng.normal(0, 2000, 16000))
    )
    write_rtp_pcap(path, audio)
    return path


def events_until_ended(
    pool: LinePool, attempt_id: str, connector: Connector | None = None, timeout: float = 20.0
) -> tuple[list[Event], ConnectOutcome | None]:
    seen: list[Event] = []
    outcome = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = pool.next_event(0.01)
        if connector is not None:
            connector.tick()
        if event is None:
            continue
        if connector is not None:
            outcome = connector.handle(event) or outcome
        if getattr(event, "attempt_id", None) != attempt_id:
            continue
        seen.append(event)
        if isinstance(event, Ended):
            return seen, outcome
    raise AssertionError(f"no Ended for {attempt_id} in {timeout} s; saw {seen}")


def test_a_vacant_code_sit_in_early_media_makes_a_rejected_call_invalid(
    pool: LinePool, carriers: dict[str, Carrier], tmp_path: Path
) -> None:
    """480 alone would be no_answer (retry later); the tone says the number does not exist."""
    pcap = sit_pcap(tmp_path / "vacant.pcap", (985.2, LONG_MS), (1370.6, SHORT_MS))
    carrier = carriers["intercept"].start(
        "intercept",
        PCAP=str(pcap),
        PAUSE_MS="3000",
        CANCEL_DELAY_MS="0",
        CODE="480",
        REASON="Temporarily Unavailable",
    )
    pool.originate("sit-early", "intercept", NUMBER, tap=amd_tap())
    events, _ = events_until_ended(pool, "sit-early")
    assert [e.sip_code for e in events if isinstance(e, Progress)] == [183]
    assert not [e for e in events if isinstance(e, Answered)]
    verdicts = [e for e in events if isinstance(e, AmdVerdict)]
    assert len(verdicts) == 1, events
    (verdict,) = verdicts
    assert verdict.verdict == "sit_vacant", verdict
    assert verdict.reason is not None and verdict.reason.startswith("vacant code (VC)")
    result = events[-1]
    assert isinstance(result, Ended)
    assert (result.sip_code, result.outcome, result.amd_verdict) == (480, "invalid", "sit_vacant")
    assert carrier.wait() == 0, carrier.errors()


def test_a_no_circuit_sit_after_the_answer_is_congestion_and_hung_up(
    pool: LinePool, carriers: dict[str, Carrier], tmp_path: Path
) -> None:
    """An announcement machine that answers: AMD alone calls the first tone a voicemail beep;
    with the SIT heard the connector hangs up at once and dials no agent."""
    pcap = sit_pcap(tmp_path / "no-circuit.pcap", (985.2, LONG_MS), (1428.5, LONG_MS))
    carrier = carriers["no_circuit"].start("answer", PCAP=str(pcap))
    asked_for_agent: list[str] = []

    def pick_agent(customer: str) -> str | None:
        asked_for_agent.append(customer)
        return None

    connector = Connector(pool, ConnectSettings("/nonexistent.wav"), pick_agent)
    pool.originate("sit-answered", "no_circuit", NUMBER, tap=amd_tap())
    events, outcome = events_until_ended(pool, "sit-answered", connector)
    (answered,) = [e for e in events if isinstance(e, Answered)]
    (verdict,) = [e for e in events if isinstance(e, AmdVerdict)]
    assert verdict.verdict == "sit_no_circuit"
    # The SIT lasts 1.14 s after half a second of noise; decided in its third segment.
    assert verdict.after_ms is not None and 1000 <= verdict.after_ms <= 2000
    result = events[-1]
    assert isinstance(result, Ended)
    assert (result.outcome, result.amd_verdict) == ("congestion", "sit_no_circuit")
    assert result.reason == "hung up by the dialer"
    assert result.timings.ended_at - answered.at < 3.0
    assert asked_for_agent == []
    assert outcome is not None and not outcome.abandoned and outcome.verdict == "sit_no_circuit"
    assert carrier.wait() == 0, carrier.errors()


def test_dialer_call_hangs_up_on_an_intercept_tone_and_says_the_number_is_invalid(
    tmp_path: Path,
) -> None:
    """The carrier would play its announcement for 10 s; the dialer cancels once it has heard
    the tone, and the outcome comes from the tone, not from the 487 of the CANCEL. The carrier
    answers the CANCEL late, as a loaded one does: the dialer still ACKs its 487 before exiting."""
    carrier = Carrier(tmp_path, "cli")
    config = tmp_path / "sip.toml"
    config.write_text(
        f'[trunks.carrier1]\nhost = "127.0.0.1"\nport = {carrier.port}\n'
        'caller_id = "+12125550100"\nring_timeout = 15\nno_response_timeout = 5\n'
    )
    pcap = sit_pcap(tmp_path / "intercept.pcap", (913.8, SHORT_MS), (1370.6, SHORT_MS))
    carrier.start(
        "intercept",
        PCAP=str(pcap),
        PAUSE_MS="10000",
        CANCEL_DELAY_MS="1000",
        CODE="404",
        REASON="Not Found",
    )
    try:
        dialer = Path(sys.executable).parent / "dialer"
        result = subprocess.run(
            [str(dialer), "call", NUMBER, "--trunk", "carrier1", "--json"],
            env={**os.environ, "DIALER_SIP_CONFIG": str(config)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        sipp_status = carrier.wait(15)
    assert result.returncode == 0, result.stdout + result.stderr
    *progress, last = result.stdout.splitlines()
    assert any("special information tone: intercept (IC)" in line for line in progress), progress
    summary = json.loads(last)
    assert (summary["outcome"], summary["sip_code"], summary["amd_verdict"]) == (
        "invalid",
        487,
        "sit_intercept",
    )
    assert summary["timings"]["ended_at"] - summary["timings"]["dialed_at"] < 5.0
    assert sipp_status == 0, carrier.errors()
