"""Special information tones (SIT): pure DSP over the 20 ms frames of a call's audio.

A carrier that cannot complete a call often says why in band, before its recorded
announcement ("the number you have dialed is not in service"): three rising tone segments whose
frequencies and lengths encode the reason (Telcordia/ANSI North American SIT):

    segment 1: 913.8 Hz (low) or 985.2 Hz (high), 274 ms (short) or 380 ms (long)
    segment 2: 1370.6 Hz (low) or 1428.5 Hz (high), short or long
    segment 3: 1776.7 Hz, long

Heard in early media (183) or right after a carrier's announcement machine answers, a SIT
means the number is bad (vacant code, intercept) or the network is busy (no circuit, reorder):
neither is a person nor a voicemail, and each calls for a different recycling of the lead.

Each frame's power at the five frequencies is measured with the Goertzel single-bin DFT,
computed as one matrix product (the same figure as the per-sample recurrence, but one numpy call
per frame instead of 800 Python steps: the tap runs on every call's media thread). A frame
whose power sits mostly at one SIT frequency is labelled with it; runs of labelled frames are the
segments, and three adjacent segments in the right frequency order and lengths are a SIT. Time
is counted in frames, never read from a clock.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from dialer.amd import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, AmdDetector, AmdSettings
from dialer.lines.events import TapSpec

LOW_1, HIGH_1 = 913.8, 985.2
LOW_2, HIGH_2 = 1370.6, 1428.5
THIRD = 1776.7
FREQUENCIES = (LOW_1, HIGH_1, LOW_2, HIGH_2, THIRD)
SHORT_MS, LONG_MS = 274, 380
LENGTH_MS = {"short": SHORT_MS, "long": LONG_MS}

# What each code means, keyed by (first Hz, first length, second Hz, second length); the third
# segment is always 1776.7 Hz long. Verdict names fit CallAttempt.amd_verdict (20 characters).
SIT_CODES: dict[tuple[float, str, float, str], tuple[str, str]] = {
    (LOW_1, "short", LOW_2, "short"): ("sit_intercept", "intercept (IC)"),
    (HIGH_1, "long", LOW_2, "short"): ("sit_vacant", "vacant code (VC)"),
    (LOW_1, "short", HIGH_2, "long"): ("sit_reorder", "reorder (RO, intra-LATA)"),
    (HIGH_1, "short", LOW_2, "long"): ("sit_reorder", "reorder (RO', inter-LATA)"),
    (HIGH_1, "long", HIGH_2, "long"): ("sit_no_circuit", "no circuit (NC, intra-LATA)"),
    (LOW_1, "long", LOW_2, "long"): ("sit_no_circuit", "no circuit (NC', inter-LATA)"),
    (LOW_1, "long", HIGH_2, "short"): ("sit_other", "ineffective other (IO)"),
    (HIGH_1, "short", HIGH_2, "short"): ("sit_other", "reserved code"),
}

_FULL_SCALE_POWER = 32768.0**2


@dataclass(frozen=True, slots=True)
class SitSettings:
    # A SIT is sent at about -24 dBm0 (-27 dBFS); quieter frames are line noise.
    min_level_dbfs: float = -45.0
    # Share of the frame's energy at one SIT frequency: a clean tone scores ~1.0, a tone 3 dB
    # over white noise ~0.67. Of the AMD corpus's loud frames (240 greetings) 0.9 % reach 0.5,
    # nearly all of them beeps and jingle notes, which the segment rules then turn down.
    min_purity: float = 0.5
    # A segment lasts 274 ms (13-14 frames) or 380 ms (19 frames); a run of one tone outside
    # these bounds is no SIT segment (a beep, a dial tone, a note of music). The bounds leave
    # room for boundary frames, jitter-buffer slips and noise.
    min_frames: int = 9
    max_frames: int = 25
    # Unlabelled frames a segment may contain (noise bursts, a frame straddling two tones), and
    # the most that may separate two segments (the standard allows 4 ms of silence).
    max_gap_frames: int = 2
    # The third segment decides once it has lasted this long: no need to hear it end.
    third_decides_frames: int = 10

    def __post_init__(self) -> None:
        if not 0 < self.min_purity <= 1:
            raise ValueError(f"min_purity={self.min_purity}: expected 0 < purity <= 1")
        if not 0 < self.min_frames < self.max_frames:
            raise ValueError(
                f"min_frames={self.min_frames}, max_frames={self.max_frames}: "
                "expected 0 < min_frames < max_frames"
            )


@dataclass(frozen=True, slots=True)
class SitVerdict:
    kind: str  # "sit_intercept", "sit_vacant", "sit_no_circuit", "sit_reorder", "sit_other"
    reason: str  # "vacant code (VC): 985.2 Hz long, 1370.6 Hz short, 1776.7 Hz"
    # Frames fed until the decision x 20 ms: counted from the tap's first frame, which is the
    # first frame of early media when there is any, else the answer.
    after_ms: int


def _goertzel_basis() -> np.ndarray:
    n = np.arange(FRAME_SAMPLES)
    omegas = 2 * np.pi * np.asarray(FREQUENCIES) / SAMPLE_RATE
    return np.concatenate((np.cos(np.outer(omegas, n)), np.sin(np.outer(omegas, n))))


_BASIS = _goertzel_basis()


def tone_purities(samples: np.ndarray) -> np.ndarray:
    """For each SIT frequency, its share of the frame's energy: |X(f)|^2 / (N/2 * sum x^2),
    which is 1.0 for a pure tone at f and about 2/N for white noise."""
    projections = _BASIS @ samples
    count = len(FREQUENCIES)
    powers = projections[:count] ** 2 + projections[count:] ** 2
    energy = float(samples @ samples)
    if energy <= 0.0:
        return np.zeros(count)
    return powers / (energy * FRAME_SAMPLES / 2)


@dataclass(slots=True)
class _Segment:
    tone: int  # index into FREQUENCIES
    first: int  # frame numbers, inclusive
    last: int


class SitDetector:
    """Feed every 20 ms frame; `feed` returns a `SitVerdict` once, when a SIT is heard."""

    def __init__(self, settings: SitSettings | None = None) -> None:
        self.settings = settings or SitSettings()
        self.frames = 0
        self.verdict: SitVerdict | None = None
        self._min_power = 10 ** (self.settings.min_level_dbfs / 10) * _FULL_SCALE_POWER
        self._done: list[_Segment] = []  # the last two finished segments
        self._current: _Segment | None = None

    @property
    def in_progress(self) -> bool:
        """True while the tones heard so far could still be the start of a SIT."""
        current = self._current
        if current is None or self.verdict is not None:
            return False
        if self._frames_of(current) > self.settings.max_frames:
            return False  # too long for any segment: a beep, a dial tone
        if current.tone in (0, 1):
            return True
        if current.tone in (2, 3):
            return self._follows(self._done[-1:], current)
        return self._prefix_ok(current)

    def feed(self, frame: bytes) -> SitVerdict | None:
        if self.verdict is not None:
            return None
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float64)
        self.frames += 1
        tone = self._label(samples)
        current = self._current
        if current is not None and tone == current.tone:
            current.last = self.frames
        elif tone is not None:
            self._close()
            self._current = _Segment(tone, self.frames, self.frames)
        elif current is not None and self.frames - current.last > self.settings.max_gap_frames:
            self._close()
        current = self._current
        if (
            current is not None
            and current.tone == 4
            and self._frames_of(current) >= self.settings.third_decides_frames
            and self._prefix_ok(current)
        ):
            self.verdict = self._verdict()
            return self.verdict
        return None

    def _label(self, samples: np.ndarray) -> int | None:
        if float(np.mean(samples * samples)) < self._min_power:
            return None
        purities = tone_purities(samples)
        best = int(np.argmax(purities))
        return best if purities[best] >= self.settings.min_purity else None

    def _close(self) -> None:
        if self._current is not None:
            self._done = [*self._done[-1:], self._current]
            self._current = None

    @staticmethod
    def _frames_of(segment: _Segment) -> int:
        return segment.last - segment.first + 1

    def _span(self, segment: _Segment, following: _Segment) -> int | None:
        """The segment's length in frames, from its start to the next one's (segments follow
        each other without a pause, and noise or a jitter-buffer discard blurs a tone's last
        frames more than the next one's first); None when no SIT segment is that long."""
        frames = following.first - segment.first
        if self.settings.min_frames <= frames <= self.settings.max_frames:
            return frames
        return None

    def _adjacent(self, before: _Segment, after: _Segment) -> bool:
        return after.first - before.last - 1 <= self.settings.max_gap_frames

    def _follows(self, previous: list[_Segment], second: _Segment) -> bool:
        if not previous:
            return False
        first = previous[0]
        return (
            first.tone in (0, 1)
            and self._span(first, second) is not None
            and self._adjacent(first, second)
        )

    def _prefix_ok(self, third: _Segment) -> bool:
        if len(self._done) < 2:
            return False
        first, second = self._done
        return (
            self._follows([first], second)
            and second.tone in (2, 3)
            and self._span(second, third) is not None
            and self._adjacent(second, third)
        )

    def _verdict(self) -> SitVerdict:
        """The code nearest in timing among the two that share the heard frequencies. Each
        frequency pair has exactly two codes and they differ in both lengths (IC short-short,
        NC' long-long; VC long-short, RO' short-long ...), so one segment mistimed by a lost
        frame or a noise burst can never turn one code into another."""
        first, second = self._done
        third = self._current
        assert third is not None
        first_ms = FRAME_MS * (second.first - first.first)
        second_ms = FRAME_MS * (third.first - second.first)
        first_hz, second_hz = FREQUENCIES[first.tone], FREQUENCIES[second.tone]
        candidates = [
            (abs(first_ms - LENGTH_MS[a]) + abs(second_ms - LENGTH_MS[b]), a, b)
            for (hz_1, a, hz_2, b) in SIT_CODES
            if (hz_1, hz_2) == (first_hz, second_hz)
        ]
        _, first_length, second_length = min(candidates)
        kind, meaning = SIT_CODES[(first_hz, first_length, second_hz, second_length)]
        reason = (
            f"{meaning}: {first_hz} Hz {first_length} ({first_ms} ms), "
            f"{second_hz} Hz {second_length} ({second_ms} ms), {THIRD} Hz"
        )
        return SitVerdict(kind, reason, self.frames * FRAME_MS)


class CallAnalysis:
    """SIT detection from the first frame of early media, and AMD from the answer on, in one
    frame tap (a worker runs one tap per call). Build it with `from_answer=False` so it hears
    early media; the worker calls `on_answer()` (on the media thread, before the first frame
    after the answer) and only then does AMD start counting.

    An AMD verdict is held while the tones heard so far could still be a SIT: AMD's beep rule
    would otherwise call a SIT's first segment a voicemail beep. A SIT verdict wins.

    Early media is heard for its first `early_media_ms` only, then the tap is `idle` until the
    answer: an intercept plays its SIT as soon as the 183 comes, while a ringback can last the
    whole ring timeout, and a listening tap costs its worker ~35 ms of CPU per call-second
    (copying each frame out of pjsua), against ~4 ms for an idle one."""

    def __init__(
        self, amd: AmdSettings | None, sit: SitSettings | None = None, early_media_ms: int = 5000
    ) -> None:
        self.sit = SitDetector(sit)
        self.amd = AmdDetector(amd) if amd is not None else None
        self.early_media_frames = early_media_ms // FRAME_MS
        self.answered = False
        self.held: Any = None

    @property
    def idle(self) -> bool:
        return (
            not self.answered
            and self.sit.frames >= self.early_media_frames
            and not self.sit.in_progress
        )

    def on_answer(self) -> None:
        self.answered = True

    def feed(self, frame: bytes) -> Any:
        sit_verdict = self.sit.feed(frame)
        if sit_verdict is not None:
            return sit_verdict
        if self.held is None and self.answered and self.amd is not None:
            self.held = self.amd.feed(frame)
        if self.held is not None and not self.sit.in_progress:
            verdict, self.held = self.held, None
            return verdict
        return None


def sit_tap(settings: SitSettings | None = None) -> TapSpec:
    """A tap that only listens for SITs, from the first frame of early media (no AMD); with
    AMD, use `dialer.connect.amd_tap`."""
    return TapSpec("dialer.sit:tap_factory", asdict(settings or SitSettings()), from_answer=False)


def tap_factory(
    amd: dict[str, Any] | None = None, early_media_ms: int = 5000, **sit: Any
) -> CallAnalysis:
    """Build the call-analysis tap inside a line worker (`TapSpec("dialer.sit:tap_factory",
    {"amd": asdict(AmdSettings()), ...SitSettings fields...}, from_answer=False)`)."""
    amd_settings = AmdSettings(**amd) if amd is not None else None
    return CallAnalysis(amd_settings, SitSettings(**sit), early_media_ms)


def detect(pcm: bytes, settings: SitSettings | None = None) -> SitVerdict | None:
    """The SIT in a whole recording of 8 kHz 16-bit mono PCM, if any (offline use, tests)."""
    detector = SitDetector(settings)
    frame_bytes = FRAME_SAMPLES * 2
    for offset in range(0, len(pcm) - frame_bytes + 1, frame_bytes):
        verdict = detector.feed(pcm[offset : offset + frame_bytes])
        if verdict is not None:
            return verdict
    return None


def sit_samples(
    first: tuple[float, int], second: tuple[float, int], level_dbfs: float = -20.0
) -> np.ndarray:
    """A SIT as 8 kHz samples: (Hz, ms) for the first two segments, then 1776.7 Hz for 380 ms,
    phase-continuous, as the carriers' tone generators send it."""
    amplitude = 32767 * 10 ** (level_dbfs / 20) * math.sqrt(2)
    parts = []
    phase = 0.0
    for hz, ms in (first, second, (THIRD, LONG_MS)):
        count = round(ms * SAMPLE_RATE / 1000)
        steps = phase + 2 * np.pi * hz * np.arange(count) / SAMPLE_RATE
        parts.append(amplitude * np.sin(steps))
        phase = float(steps[-1] + 2 * np.pi * hz / SAMPLE_RATE)
    return np.concatenate(parts)
