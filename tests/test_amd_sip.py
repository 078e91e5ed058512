"""AMD through real SIP: SIPp plays generated greetings as A-law RTP to calls the line pool
places with the AMD tap, as a campaign's calls are."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dialer.amd import detect
from dialer.bench.amd_corpus import generate, read_wav
from dialer.bench.amd_sip import classify_over_sip

pytestmark = [
    pytest.mark.sip,
    pytest.mark.skipif(
        not all(shutil.which(tool) for tool in ("sipp", "espeak-ng", "sox")),
        reason="needs sipp, espeak-ng and sox",
    ),
]

# Frames reach the tap through pjsua's jitter buffer, and SIPp starts playing on the ACK:
# the same frames, shifted by a few.
TIME_TOLERANCE_MS = 200


def test_verdicts_through_sip_match_the_offline_ones(tmp_path: Path) -> None:
    greetings = generate(6, seed=2, cache_dir=tmp_path / "corpus")
    outcomes = classify_over_sip([(g.path.stem, g.path) for g in greetings], concurrency=3)
    assert sorted(outcomes) == sorted(g.path.stem for g in greetings)
    for greeting in greetings:
        outcome = outcomes[greeting.path.stem]
        offline = detect(read_wav(greeting.path).tobytes())
        through_sip = outcome.verdict
        assert outcome.error is None and outcome.sip_code == 200, outcome
        assert outcome.sipp_exit == 0, outcome  # SIPp accepted the pcap and played its call
        assert through_sip is not None, outcome
        assert (through_sip.kind, through_sip.reason) == (offline.kind, offline.reason), outcome
        assert abs(through_sip.after_ms - offline.after_ms) <= TIME_TOLERANCE_MS, outcome
        # The attempt's outcome follows the verdict; "notsure" goes to an agent, as a human.
        assert outcome.outcome == ("machine" if offline.kind == "machine" else "human"), outcome
    assert {g.plan.truth for g in greetings} == {"human", "machine"}
