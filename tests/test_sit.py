"""Special information tone detection on generated tones (clean, noisy, off-frequency, quiet)
and on speech, beeps and call-progress tones that must never be taken for a SIT."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from dialer.amd import AmdDetector, AmdSettings
from dialer.amd import detect as amd_detect
from dialer.bench.amd_corpus import generate, read_wav
from dialer.lines.outcome import SIT_OUTCOMES, classify
from dialer.sit import (
    FREQUENCIES,
    LONG_MS,
    SHORT_MS,
    SIT_CODES,
    THIRD,
    CallAnalysis,
    detect,
    sit_samples,
    tap_factory,
    tone_purities,
)

RATE = 8000
LENGTH_MS = {"short": SHORT_MS, "long": LONG_MS}
CODES = sorted(SIT_CODES.items())


def pcm(samples: np.ndarray) -> bytes:
    return np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()


def tone(hz: float, ms: float, level_dbfs: float = -20.0) -> np.ndarray:
    amplitude = 32767 * 10 ** (level_dbfs / 20) * math.sqrt(2)
    return amplitude * np.sin(2 * np.pi * hz * np.arange(round(ms * RATE / 1000)) / RATE)


def silence(ms: float) -> np.ndarray:
    return np.zeros(round(ms * RATE / 1000))


def sit_for(key: tuple[float, str, float, str], scale: float = 1.0, **options: float):
    first_hz, first_len, second_hz, second_len = key
    return sit_samples(
        (first_hz * scale, LENGTH_MS[first_len]), (second_hz * scale, LENGTH_MS[second_len]),
        **options,
    )  # fmt: skip


def with_noise(samples: np.ndarray, snr_db: float, seed: int, level_dbfs: float = -20.0):
    rng = np.random.default_rng(seed)
    signal_rms = 32767 * 10 ** (level_dbfs / 20)
    return samples + rng.normal(0.0, signal_rms * 10 ** (-snr_db / 20), len(samples))


def goertzel_power(samples: np.ndarray, hz: float) -> float:
    """The textbook recurrence, to check the matrix form against."""
    coefficient = 2 * math.cos(2 * math.pi * hz / RATE)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coefficient * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coefficient * s1 * s2


def test_the_purities_are_the_goertzel_powers_normalised_by_the_frame_energy() -> None:
    rng = np.random.default_rng(0)
    frame = tone(985.2, 20) + rng.normal(0, 300, 160)
    energy = float(frame @ frame)
    expected = [goertzel_power(frame, hz) / (energy * 80) for hz in FREQUENCIES]
    assert np.allclose(tone_purities(frame), expected, rtol=1e-9)
    assert tone_purities(tone(985.2, 20))[1] > 0.98


def test_every_sit_code_has_an_outcome() -> None:
    assert {kind for kind, _ in SIT_CODES.values()} == set(SIT_OUTCOMES)
    assert all(len(kind) <= 20 for kind in SIT_OUTCOMES)  # CallAttempt.amd_verdict


@pytest.mark.parametrize(("key", "meaning"), CODES, ids=[m for _, (_, m) in CODES])
@pytest.mark.parametrize("snr_db", [None, 15.0, 6.0])
@pytest.mark.parametrize("scale", [0.995, 1.0, 1.005])  # carriers' tones are within 0.5 %
def test_each_sit_is_told_apart_in_noise_and_off_frequency(
    key: tuple[float, str, float, str], meaning: tuple[str, str], snr_db: float | None,
    scale: float,
) -> None:  # fmt: skip
    kind, description = meaning
    # The tones start at an arbitrary point of a frame, after ringback-free silence.
    audio = np.concatenate((silence(437), sit_for(key, scale), silence(1000)))
    if snr_db is not None:
        audio = with_noise(audio, snr_db, seed=int(key[0] + key[2]))
    verdict = detect(pcm(audio))
    assert verdict is not None
    assert verdict.kind == kind
    assert verdict.reason.startswith(description)
    # Decided during the third segment, before it ends.
    sit_end_ms = 437 + LENGTH_MS[key[1]] + LENGTH_MS[key[3]] + LONG_MS
    assert sit_end_ms - LONG_MS < verdict.after_ms <= sit_end_ms


@pytest.mark.parametrize("level_dbfs", [-40.0, -10.0])
def test_quiet_and_loud_sits_are_heard(level_dbfs: float) -> None:
    key = (985.2, "long", 1370.6, "short")
    verdict = detect(pcm(sit_for(key, level_dbfs=level_dbfs)))
    assert verdict is not None and verdict.kind == "sit_vacant"


def test_a_sit_inside_an_announcement_is_heard() -> None:
    """Ringback, then the SIT, then the recording: the usual intercept."""
    ringback = tone(440, 2000, -26) + tone(480, 2000, -26)
    key = (913.8, "short", 1370.6, "short")
    announcement = with_noise(silence(3000), 0, seed=2)  # speech-like noise at -20 dBFS
    audio = np.concatenate((ringback, silence(4000), sit_for(key), silence(200), announcement))
    verdict = detect(pcm(audio))
    assert verdict is not None and verdict.kind == "sit_intercept"


@pytest.mark.parametrize("first_ms", [310, 340])  # a 380 ms tone 2-3 frames short
def test_one_mistimed_segment_never_turns_a_code_into_another(first_ms: int) -> None:
    """Frames lost in a jitter buffer make a long segment look short; the code that shares the
    frequencies differs in both lengths, so the nearest code is still the right one."""
    verdict = detect(pcm(sit_samples((985.2, first_ms), (1370.6, SHORT_MS))))
    assert verdict is not None and verdict.kind == "sit_vacant", verdict


def test_the_right_tones_in_the_wrong_order_or_lengths_are_no_sit() -> None:
    reversed_order = np.concatenate(
        (tone(THIRD, LONG_MS), tone(1370.6, SHORT_MS), tone(913.8, SHORT_MS))
    )
    too_long = np.concatenate((tone(913.8, 700), tone(1370.6, SHORT_MS), tone(THIRD, LONG_MS)))
    too_short = np.concatenate((tone(913.8, 100), tone(1370.6, SHORT_MS), tone(THIRD, LONG_MS)))
    gap = np.concatenate(
        (tone(913.8, SHORT_MS), silence(200), tone(1370.6, SHORT_MS), tone(THIRD, LONG_MS))
    )
    for audio in (reversed_order, too_long, too_short, gap):
        assert detect(pcm(np.concatenate((audio, silence(500))))) is None


@pytest.mark.parametrize(
    "audio",
    [
        tone(1000, 600),  # a voicemail beep
        np.concatenate((tone(985, 400), silence(100), tone(1400, 400), silence(100))),
        np.tile(np.concatenate((tone(480, 500) + tone(620, 500), silence(500))), 4),  # busy
        np.concatenate([tone(697, 100) + tone(1209, 100), silence(100)] * 5),  # DTMF 1
        np.tile(tone(440, 2000, -26) + tone(480, 2000, -26), 2),  # ringback
    ],
    ids=["beep", "two_tones", "busy_tone", "dtmf", "ringback"],
)
def test_call_progress_tones_and_beeps_are_no_sit(audio: np.ndarray) -> None:
    assert detect(pcm(np.concatenate((audio, silence(500))))) is None


@pytest.fixture(scope="module")
def greetings(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("needs espeak-ng and sox")
    corpus = generate(48, seed=11, cache_dir=tmp_path_factory.mktemp("corpus"))
    return [greeting.path for greeting in corpus]


def test_speech_and_voicemail_greetings_are_no_sit(greetings: list[Path]) -> None:
    """People's hellos and voicemail greetings, many ending in a beep, some noisy."""
    false_sits = [path.name for path in greetings if detect(read_wav(path).tobytes())]
    assert false_sits == []


def feed_all(analysis: CallAnalysis, audio: bytes, answer_at_frame: int = 0):  # type: ignore[no-untyped-def]
    for index, offset in enumerate(range(0, len(audio) - 319, 320)):
        if index == answer_at_frame:
            analysis.on_answer()
        verdict = analysis.feed(audio[offset : offset + 320])
        if verdict is not None:
            return verdict
    return None


def test_call_analysis_gives_the_amd_verdict_on_speech(greetings: list[Path]) -> None:
    """Same verdict and decision time as AMD alone, measured from the answer."""
    for path in greetings[:16]:
        audio = read_wav(path).tobytes()
        expected = amd_detect(audio)
        early_media = pcm(with_noise(silence(1000), 30, seed=5, level_dbfs=-50))
        verdict = feed_all(CallAnalysis(AmdSettings()), early_media + audio, answer_at_frame=50)
        if verdict is None:
            assert expected.reason == "end of audio"
            continue
        assert (verdict.kind, verdict.reason, verdict.after_ms) == (
            expected.kind,
            expected.reason,
            expected.after_ms,
        )


def test_a_sit_after_the_answer_is_a_sit_not_a_beeping_machine() -> None:
    key = (985.2, "long", 1428.5, "long")
    audio = pcm(np.concatenate((silence(300), sit_for(key), silence(2000))))
    amd_alone = AmdDetector(AmdSettings())
    frames = [audio[i : i + 320] for i in range(0, len(audio) - 319, 320)]
    assert next(v for v in map(amd_alone.feed, frames) if v is not None).kind == "machine"
    verdict = feed_all(tap_factory(amd={}), audio)
    assert verdict is not None and verdict.kind == "sit_no_circuit"
    assert classify(200, answered=True, amd_verdict=verdict.kind) == "congestion"


def test_a_sit_in_early_media_is_heard_before_any_answer() -> None:
    key = (913.8, "short", 1370.6, "short")
    verdict = feed_all(tap_factory(amd=None), pcm(sit_for(key)), answer_at_frame=-1)
    assert verdict is not None and verdict.kind == "sit_intercept"
    assert classify(480, answered=False, amd_verdict=verdict.kind) == "invalid"
    assert classify(487, answered=False, ring_timed_out=True, amd_verdict="sit_reorder") == (
        "congestion"
    )


def test_bench_sit_counts_every_code_right_in_moderate_noise() -> None:
    from dialer.bench.sit import detection

    rows = detection([None, 6.0], trials=1, seed=0)
    assert [(row["snr_db"], row["sits"], row["right_code"]) for row in rows] == [
        ("clean", 8, 1.0),
        (6.0, 8, 1.0),
    ]


def test_early_media_is_heard_for_its_first_seconds_only_then_again_from_the_answer() -> None:
    """A ringback can last the whole ring timeout; the tap idles (no frame copied out of pj)
    after `early_media_ms` unless a SIT is under way, and wakes at the answer."""
    analysis = CallAnalysis(AmdSettings(), early_media_ms=1000)
    ringback = _frames_of(pcm(tone(440, 1000, -26) + tone(480, 1000, -26)))
    assert all(analysis.feed(frame) is None for frame in ringback)
    assert analysis.idle
    late = CallAnalysis(None, early_media_ms=1000)
    key = (985.2, "long", 1370.6, "short")
    frames = _frames_of(pcm(np.concatenate((silence(800), sit_for(key)))))
    verdicts = []
    for frame in frames:
        if late.idle:
            break
        verdicts.append(late.feed(frame))
    assert verdicts[-1] is not None and verdicts[-1].kind == "sit_vacant"  # heard to its end
    analysis.on_answer()
    assert not analysis.idle


def _frames_of(audio: bytes) -> list[bytes]:
    return [audio[i : i + 320] for i in range(0, len(audio) - 319, 320)]
