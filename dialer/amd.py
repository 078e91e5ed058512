"""Answering-machine detection: pure DSP over the 20 ms frames a call's audio tap delivers.

One `AmdDetector` per answered call. The shell feeds it every 320-byte frame (8 kHz, 16-bit
signed little-endian mono, exactly what a pjsua2 `AudioMediaPort` receives) from the moment of
answer; `feed` returns `None` until it reaches its one verdict. Time is counted in frames, never
read from a clock, so the same audio always gives the same verdict at the same millisecond.

The rules follow what people and machines do when they pick up: a person says a short "Hello?"
and waits for an answer; a voicemail plays a long greeting of many words, often ending in a
beep. A human classified as machine is a customer hung up on, so every doubtful case ends as
"notsure", which the live dialer treats as human.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import webrtcvad

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * 2

Kind = Literal["human", "machine", "notsure"]

# Frame levels are dBFS: 0 dB is a square wave at full 16-bit scale.
_FULL_SCALE_POWER = 32768.0**2
# Telephone band: energy outside it is hum, DC or resampling debris, never speech or a beep.
_BAND_LOW_HZ = 300.0
_BAND_HIGH_HZ = 3400.0
# Beeps are judged over two frames (40 ms): one frame resolves only 50 Hz, too coarse to tell a
# pure tone from a voiced vowel's strongest harmonic.
_BEEP_WINDOW = 2 * FRAME_SAMPLES
_BEEP_FFT = 1024
_BEEP_PEAK_HALF_WIDTH_HZ = 60.0
# A beep's pitch is steady; a voice's pitch glides by more than this between 20 ms frames.
_BEEP_MAX_DRIFT_HZ = 12.0
# Voice this short does not make a word, but it shows someone is still talking.
_TALKING_FRAMES = 2


@dataclass(frozen=True, slots=True)
class AmdSettings:
    """Per-campaign AMD parameters; the defaults were tuned on the generated corpus (seed 1)."""

    initial_silence_ms: int = 3000  # nobody spoke since answer: give up ("notsure")
    # From the first word to the latest voice, pauses shorter than the after-greeting silence
    # included: a greeting longer than this is recorded.
    greeting_max_ms: int = 2500
    after_greeting_silence_ms: int = 800  # silence after a short utterance: a person waiting
    min_word_ms: int = 100  # voice shorter than this is a click or noise, not a word
    between_words_silence_ms: int = 150  # silence that separates two words
    max_words: int = 5  # more words than this before any long pause: a machine
    total_analysis_ms: int = 5000  # no verdict by then: "notsure"
    beep_detection: bool = True
    beep_min_ms: int = 150  # a pure tone this long is the "leave a message after the tone" beep
    beep_min_hz: float = 400.0
    beep_max_hz: float = 2000.0
    # Share of the band's energy in the tone's peak: a beep scores above 0.99 even in noise, a
    # high voice's fundamental up to 0.96.
    beep_purity: float = 0.98
    vad_aggressiveness: int = 2  # webrtcvad mode 0 (lenient) .. 3 (strict)
    voice_min_dbfs: float = -50.0  # quieter frames are silence whatever the VAD says
    voice_above_noise_db: float = 8.0  # a voice starts this far above the noise floor ...
    voice_hold_above_noise_db: float = 4.0  # ... and goes on while this far above it
    noise_floor_window_ms: int = 3000  # the floor is the quietest frame over this window

    def __post_init__(self) -> None:
        if not 0 <= self.vad_aggressiveness <= 3:
            raise ValueError(f"vad_aggressiveness={self.vad_aggressiveness}: expected 0..3")
        for name in (
            "initial_silence_ms",
            "greeting_max_ms",
            "after_greeting_silence_ms",
            "min_word_ms",
            "between_words_silence_ms",
            "total_analysis_ms",
            "beep_min_ms",
            "noise_floor_window_ms",
        ):
            value = getattr(self, name)
            if value < FRAME_MS:
                raise ValueError(f"{name}={value}: expected at least one frame ({FRAME_MS} ms)")
        if self.max_words < 1:
            raise ValueError(f"max_words={self.max_words}: expected at least 1")
        if not 0 < self.beep_min_hz < self.beep_max_hz < SAMPLE_RATE / 2:
            raise ValueError(
                f"beep band {self.beep_min_hz}-{self.beep_max_hz} Hz: expected "
                f"0 < min < max < {SAMPLE_RATE // 2}"
            )


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Kind
    reason: str  # "long greeting", "many words", "beep", "silence after greeting", ...
    after_ms: int  # decision time since answer (frames fed × 20 ms)


def _frames(milliseconds: int) -> int:
    return max(1, math.ceil(milliseconds / FRAME_MS))


def _power_db(samples: np.ndarray) -> float:
    power = float(np.mean(samples * samples)) / _FULL_SCALE_POWER
    return 10.0 * math.log10(power + 1e-12)


class FrameMeter:
    """Whether a frame is loud (above the line's noise floor) and voiced (the VAD agrees), for
    every detector that listens to a call's greeting."""

    def __init__(self, settings: AmdSettings) -> None:
        self._settings = settings
        self._vad = webrtcvad.Vad(settings.vad_aggressiveness)
        # No prior floor: a guessed one makes a noisy line's first frames look like a word
        # before the VAD has adapted; the first frame is taken as silence instead.
        self._recent_db: deque[float] = deque(maxlen=_frames(settings.noise_floor_window_ms))

    def level(self, frame: bytes, holding: bool) -> tuple[np.ndarray, float, bool]:
        """The frame's samples, its level (dBFS) and whether it is loud; `holding`: a voice is
        going on."""
        if len(frame) != FRAME_BYTES:
            raise ValueError(
                f"frame of {len(frame)} bytes: expected {FRAME_BYTES} (20 ms at 8 kHz)"
            )
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float64)
        level_db = _power_db(samples)
        noise_floor_db = min(self._recent_db, default=level_db)
        self._recent_db.append(level_db)
        s = self._settings
        # Hysteresis: the weak consonants inside a word must not split it into blips.
        margin_db = s.voice_hold_above_noise_db if holding else s.voice_above_noise_db
        loud = level_db >= s.voice_min_dbfs and level_db >= noise_floor_db + margin_db
        return samples, level_db, loud

    def voiced(self, frame: bytes, loud: bool) -> bool:
        # The VAD must hear every frame, silence included, to keep its noise model current.
        return self._vad.is_speech(frame, SAMPLE_RATE) and loud


class BeepDetector:
    """Counts consecutive frames holding one steady, narrow spectral peak in the beep band."""

    def __init__(self, settings: AmdSettings) -> None:
        self._settings = settings
        self._window = np.hanning(_BEEP_WINDOW)
        freqs = np.fft.rfftfreq(_BEEP_FFT, 1.0 / SAMPLE_RATE)
        self._freqs = freqs
        self._band = (freqs >= _BAND_LOW_HZ) & (freqs <= _BAND_HIGH_HZ)
        self._beep_band = (freqs >= settings.beep_min_hz) & (freqs <= settings.beep_max_hz)
        self._bin_hz = float(freqs[1])
        self._previous = np.zeros(FRAME_SAMPLES)
        self._tone_frames = 0
        self._tone_hz = 0.0
        self.frames_needed = _frames(settings.beep_min_ms)

    def tone_hz(self, samples: np.ndarray) -> float | None:
        """The frequency of a pure tone filling the last 40 ms, or None."""
        window = np.concatenate((self._previous, samples)) * self._window
        self._previous = samples
        power = np.abs(np.fft.rfft(window, _BEEP_FFT)) ** 2
        band_power = float(power[self._band].sum())
        if band_power <= 0.0:
            return None
        peak = int(np.argmax(np.where(self._beep_band, power, 0.0)))
        half_width = int(_BEEP_PEAK_HALF_WIDTH_HZ / self._bin_hz)
        peak_power = float(power[max(0, peak - half_width) : peak + half_width + 1].sum())
        if peak_power < self._settings.beep_purity * band_power:
            return None
        return float(self._freqs[peak])

    def feed(self, samples: np.ndarray, loud: bool) -> bool:
        """True once a steady tone has lasted `beep_min_ms`."""
        hz = self.tone_hz(samples) if loud else None
        if hz is None:
            self._tone_frames = 0
        elif self._tone_frames and abs(hz - self._tone_hz) <= _BEEP_MAX_DRIFT_HZ:
            self._tone_frames += 1
        else:
            self._tone_frames = 1
        if hz is not None:
            self._tone_hz = hz
        return self._tone_frames >= self.frames_needed


class AmdDetector:
    """Answering-machine detection for one call; feed it every frame from answer on."""

    def __init__(self, settings: AmdSettings | None = None) -> None:
        self.settings = settings or AmdSettings()
        s = self.settings
        self._meter = FrameMeter(s)
        self._beeps = BeepDetector(s) if s.beep_detection else None
        self._initial_silence = _frames(s.initial_silence_ms)
        self._greeting_max = _frames(s.greeting_max_ms)
        self._after_greeting_silence = _frames(s.after_greeting_silence_ms)
        self._min_word = _frames(s.min_word_ms)
        self._between_words = _frames(s.between_words_silence_ms)
        self._total = _frames(s.total_analysis_ms)
        self.frames = 0
        self.words = 0
        self._voiced_run = 0
        self._silence_run = 0
        self._in_word = False
        self._greeting_start: int | None = None
        self._last_voice = 0
        self.verdict: Verdict | None = None

    def feed(self, frame: bytes) -> Verdict | None:
        """Analyse one 20 ms frame; the verdict is returned once, on the frame that decides it."""
        if self.verdict is not None:
            return None
        self.frames += 1
        samples, _, loud = self._meter.level(frame, holding=self._voiced_run > 0)
        if self._beeps is not None and self._beeps.feed(samples, loud):
            return self._decide("machine", "beep")
        self._count_words(self._meter.voiced(frame, loud))
        return self._rules()

    def _count_words(self, voiced: bool) -> None:
        if voiced:
            self._voiced_run += 1
            if not self._in_word and self._voiced_run >= self._min_word:
                self._in_word = True
                self.words += 1
                if self._greeting_start is None:
                    self._greeting_start = self.frames - self._voiced_run
            if self._in_word:
                self._silence_run = 0
                self._last_voice = self.frames
            elif self._voiced_run >= _TALKING_FRAMES:
                # A fast speaker's short syllables are not words yet, but the greeting goes on.
                self._silence_run = 0
            else:
                self._silence_run += 1
        else:
            self._voiced_run = 0
            self._silence_run += 1
            if self._in_word and self._silence_run >= self._between_words:
                self._in_word = False

    def _rules(self) -> Verdict | None:
        if self._greeting_start is None:
            if self.frames >= self._initial_silence:
                return self._decide("notsure", "initial silence")
        else:
            if self._last_voice - self._greeting_start >= self._greeting_max:
                return self._decide("machine", "long greeting")
            if self.words > self.settings.max_words:
                return self._decide("machine", "many words")
            if self._silence_run >= self._after_greeting_silence:
                return self._decide("human", "silence after greeting")
        if self.frames >= self._total:
            return self._decide("notsure", "timeout")
        return None

    def _decide(self, kind: Kind, reason: str) -> Verdict:
        self.verdict = Verdict(kind, reason, self.frames * FRAME_MS)
        return self.verdict


class GreetingEndDetector:
    """After AMD has said "machine": when the voicemail starts recording, so that a message
    left now is on the tape. That is the end of its beep (a message started during the tone
    loses its first words), or, for a machine that does not beep, the end of its greeting: no
    voice for `end_silence_ms`. Fed from its attachment on (mid-greeting, or mid-beep when AMD
    decided on the beep); the verdict is "machine" again, with the reason "beep" or "end of
    greeting", so that the attempt's AMD verdict stays what it was."""

    def __init__(self, settings: AmdSettings | None = None, end_silence_ms: int = 1200) -> None:
        self.settings = settings or AmdSettings()
        if end_silence_ms < FRAME_MS:
            raise ValueError(
                f"end_silence_ms={end_silence_ms}: expected at least one frame ({FRAME_MS} ms)"
            )
        self._meter = FrameMeter(self.settings)
        self._beeps = BeepDetector(self.settings)
        self._end_silence = _frames(end_silence_ms)
        self._voiced_run = 0
        self._silence_run = 0
        self._in_beep = False
        self.frames = 0
        self.verdict: Verdict | None = None

    def feed(self, frame: bytes) -> Verdict | None:
        if self.verdict is not None:
            return None
        self.frames += 1
        samples, level_db, loud = self._meter.level(frame, holding=self._voiced_run > 0)
        # A tap attached mid-beep takes the tone for the line's noise floor: a beep only has
        # to be audible (its purity tells it from noise and voice).
        audible = loud or level_db >= self.settings.voice_min_dbfs
        if self._beeps.feed(samples, audible):
            self._in_beep = True
            return None
        if self._in_beep:  # the tone has just stopped: the machine records from now on
            return self._decide("beep")
        if self._meter.voiced(frame, loud):
            self._voiced_run += 1
            if self._voiced_run >= _TALKING_FRAMES:
                self._silence_run = 0
        else:
            self._voiced_run = 0
            self._silence_run += 1
        if self._silence_run >= self._end_silence:
            return self._decide("end of greeting")
        return None

    def _decide(self, reason: str) -> Verdict:
        self.verdict = Verdict("machine", reason, self.frames * FRAME_MS)
        return self.verdict


def detect(pcm: bytes, settings: AmdSettings | None = None) -> Verdict:
    """The verdict for a whole recording (8 kHz 16-bit mono); "notsure" if it ends undecided."""
    detector = AmdDetector(settings)
    for start in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES):
        verdict = detector.feed(pcm[start : start + FRAME_BYTES])
        if verdict is not None:
            return verdict
    return Verdict("notsure", "end of audio", detector.frames * FRAME_MS)


def tap_factory(**settings: Any) -> AmdDetector:
    """Build a detector inside a line worker from a campaign's `AmdSettings` as a dict (the
    options of a `TapSpec("dialer.amd:tap_factory", ...)`, which must cross a process pipe)."""
    return AmdDetector(AmdSettings(**settings))


def greeting_end_factory(end_silence_ms: int, **settings: Any) -> GreetingEndDetector:
    """A `GreetingEndDetector` inside a line worker (`TapSpec("dialer.amd:greeting_end_factory",
    {"end_silence_ms": ..., **AmdSettings as a dict})`)."""
    return GreetingEndDetector(AmdSettings(**settings), end_silence_ms)
