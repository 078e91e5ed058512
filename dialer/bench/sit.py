"""`dialer bench sit`: how well and how cheaply special information tones are detected.

Detection: every SIT code, at several signal-to-noise ratios and frequency offsets, with the
tone starting at random points of a frame. False SITs and AMD agreement: the AMD corpus of
people and voicemail greetings (`dialer.bench.amd_corpus`), run through the SIT detector alone
and through `CallAnalysis` (SIT + AMD), whose verdicts must equal AMD's alone. Cost: CPU
microseconds per 20 ms frame for each detector, the figure that matters on a worker's media
thread (ARCHITECTURE §6: 256 calls with a Python tap use most of a core).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dialer.amd import FRAME_BYTES, AmdDetector, AmdSettings
from dialer.bench.amd_corpus import generate, read_wav
from dialer.sit import LENGTH_MS, SIT_CODES, CallAnalysis, SitDetector, sit_samples

SIGNAL_DBFS = -20.0


def _pcm(samples: np.ndarray) -> bytes:
    return np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()


def _frames(pcm: bytes) -> list[bytes]:
    return [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES)]


def _first_verdict(feed: Callable[[bytes], Any], frames: list[bytes]) -> Any:
    for frame in frames:
        verdict = feed(frame)
        if verdict is not None:
            return verdict
    return None


def detection(snrs: list[float | None], trials: int, seed: int) -> list[dict[str, Any]]:
    """Per SNR: the share of SITs detected with the right code, and of SITs missed."""
    rng = np.random.default_rng(seed)
    rows = []
    signal_rms = 32767 * 10 ** (SIGNAL_DBFS / 20)
    for snr in snrs:
        right = wrong = missed = 0
        for _ in range(trials):
            for (first_hz, first_len, second_hz, second_len), (kind, _) in SIT_CODES.items():
                scale = 1 + rng.uniform(-0.005, 0.005)
                tones = sit_samples(
                    (first_hz * scale, LENGTH_MS[first_len]),
                    (second_hz * scale, LENGTH_MS[second_len]),
                    level_dbfs=SIGNAL_DBFS,
                )
                audio = np.concatenate(
                    (np.zeros(int(rng.integers(0, 4000))), tones, np.zeros(4000))
                )
                if snr is not None:
                    audio = audio + rng.normal(0, signal_rms * 10 ** (-snr / 20), len(audio))
                verdict = _first_verdict(SitDetector().feed, _frames(_pcm(audio)))
                if verdict is None:
                    missed += 1
                elif verdict.kind == kind:
                    right += 1
                else:
                    wrong += 1
        total = right + wrong + missed
        rows.append(
            {
                "snr_db": "clean" if snr is None else snr,
                "sits": total,
                "right_code": round(right / total, 4),
                "wrong_code": round(wrong / total, 4),
                "missed": round(missed / total, 4),
            }
        )
    return rows


def _timed(feed: Callable[[bytes], Any], frames: list[bytes]) -> tuple[Any, int, float]:
    """(first verdict, frames fed until it, CPU seconds spent) for one recording."""
    started = time.process_time()
    fed = 0
    verdict = None
    for frame in frames:
        fed += 1
        verdict = feed(frame)
        if verdict is not None:
            break
    return verdict, fed, time.process_time() - started


def corpus(count: int, seed: int, cache_dir: Path | None) -> dict[str, Any]:
    """False SITs on greetings, CallAnalysis against AMD alone, and CPU per frame fed (each
    detector is fed until its verdict, as in a call)."""
    greetings = generate(count, seed, cache_dir)
    false_sits = disagreements = 0
    cpu = dict.fromkeys(("sit", "amd", "sit_and_amd"), 0.0)
    fed = dict.fromkeys(cpu, 0)
    for greeting in greetings:
        frames = _frames(read_wav(greeting.path).tobytes())
        sit_verdict, count_sit, seconds = _timed(SitDetector().feed, frames)
        false_sits += sit_verdict is not None
        cpu["sit"] += seconds
        fed["sit"] += count_sit
        amd_verdict, count_amd, seconds = _timed(AmdDetector(AmdSettings()).feed, frames)
        cpu["amd"] += seconds
        fed["amd"] += count_amd
        analysis = CallAnalysis(AmdSettings())
        analysis.on_answer()
        verdict, count_both, seconds = _timed(analysis.feed, frames)
        cpu["sit_and_amd"] += seconds
        fed["sit_and_amd"] += count_both
        same = (verdict is None and amd_verdict is None) or (
            verdict is not None
            and amd_verdict is not None
            and (verdict.kind, verdict.after_ms) == (amd_verdict.kind, amd_verdict.after_ms)
        )
        disagreements += not same
    figures: dict[str, Any] = {
        "greetings": len(greetings),
        "false_sits": false_sits,
        "verdicts_differing_from_amd_alone": disagreements,
    }
    for name, seconds in cpu.items():
        figures[f"cpu_us_per_frame_{name}"] = round(1e6 * seconds / max(1, fed[name]), 1)
    return figures


def through_sip(trials: int, snr_db: float, seed: int, concurrency: int) -> dict[str, Any]:
    """Every SIT code played by SIPp right after it answers, through the line pool's call
    analysis tap (the campaign's `amd_tap()`): right codes, outcomes, decision times."""
    from dialer.bench.amd_corpus import write_wav
    from dialer.bench.amd_sip import classify_over_sip

    rng = np.random.default_rng(seed)
    signal_rms = 32767 * 10 ** (SIGNAL_DBFS / 20)
    expected: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="sit-sip-") as folder:
        wavs = []
        for trial in range(trials):
            for number, (key, (kind, _)) in enumerate(SIT_CODES.items()):
                first_hz, first_len, second_hz, second_len = key
                tones = sit_samples(
                    (first_hz, LENGTH_MS[first_len]),
                    (second_hz, LENGTH_MS[second_len]),
                    level_dbfs=SIGNAL_DBFS,
                )
                lead = np.zeros(int(rng.integers(0, 4000)))
                audio = np.concatenate((lead, tones, np.zeros(16000)))
                audio = audio + rng.normal(0, signal_rms * 10 ** (-snr_db / 20), len(audio))
                name = f"{trial:03d}-{number}-{kind}"
                path = Path(folder) / f"{name}.wav"
                write_wav(path, audio)
                wavs.append((name, path))
                expected[name] = kind
        results = classify_over_sip(wavs, concurrency)
    right = sum(1 for name, r in results.items() if r.verdict and r.verdict.kind == expected[name])
    outcomes: dict[str, int] = {}
    for result in results.values():
        key = str(result.outcome)
        outcomes[key] = outcomes.get(key, 0) + 1
    decided = sorted(r.verdict.after_ms for r in results.values() if r.verdict is not None)
    return {
        "sip_calls": len(results),
        "sip_snr_db": snr_db,
        "sip_right_code": round(right / max(1, len(results)), 4),
        "sip_outcomes": outcomes,
        "sip_failed_calls": sum(1 for r in results.values() if r.error is not None),
        "sip_decision_ms_median": decided[len(decided) // 2] if decided else None,
    }
