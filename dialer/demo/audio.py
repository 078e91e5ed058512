"""What the simulated called parties say, as the RTP captures SIPp plays: people's "Hello?",
voicemail greetings ending in a beep, intercepts (a special information tone, then "the number
you have dialed is not in service"), and survey answers keyed by RFC 2833.

Spoken by espeak-ng and shaped by sox (`dialer.bench.amd_corpus`, `dialer.prompts`), rendered
once and cached: a file's name holds a hash of everything that decides its content, so a cached
file is never stale and start-up after the first run reads no more than the folder's listing.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import random
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dialer.amd import SAMPLE_RATE
from dialer.bench import amd_corpus
from dialer.bench.amd_corpus import GreetingPlan, read_wav, synthesise
from dialer.bench.rtp_pcap import KEY_FRAMES, write_rtp_pcap
from dialer.demo.mix import CarrierTimings
from dialer.prompts import render
from dialer.sit import LOW_1, LOW_2, SHORT_MS, sit_samples

# Bump when the rendering changes: every cached capture is made again.
RECIPE_VERSION = 1


def _person(index: int, text: str, voice: str, wpm: int, pitch: int, level_db: float,
            lead_silence_s: float) -> GreetingPlan:  # fmt: skip
    # 5 s of audio: the greeting, then line noise while the person waits for an answer; the
    # detector decides within 2.5 s. After it the line is silent (no RTP) until the hang-up.
    return GreetingPlan(index=index, truth="human", text=text, voice=voice, wpm=wpm,
                        pitch=pitch, level_db=level_db, snr_db=35.0,
                        lead_silence_s=lead_silence_s, total_s=5.0)  # fmt: skip


def _voicemail(index: int, text: str, voice: str, wpm: int, beep_hz: float) -> GreetingPlan:
    return GreetingPlan(index=index, truth="machine", text=text, voice=voice, wpm=wpm, pitch=50,
                        level_db=-8.0, snr_db=40.0, lead_silence_s=0.3, beep_hz=beep_hz,
                        beep_s=0.5, gap_before_beep_s=0.4)  # fmt: skip


PEOPLE = {
    "hello": _person(0, "Hello?", "en-us", 160, 50, -10.0, 0.4),
    "yes-hello": _person(1, "Yes, hello?", "en-gb+f2", 170, 60, -12.0, 0.3),
    "who-is-this": _person(2, "Hello, who is this?", "en-us+m3", 185, 40, -9.0, 0.3),
}
VOICEMAILS = {
    "maria": _voicemail(
        0,
        "Hi, you've reached Maria. I'm not able to take your call right now. Please leave "
        "your name, your number and a short message after the tone.",
        "en-us+f3",
        165,
        1000.0,
    ),
    "plumbing": _voicemail(
        1,
        "Thank you for calling City Plumbing. Our business hours are Monday to Friday, nine "
        "to five. Please leave a message after the beep.",
        "en-gb",
        170,
        850.0,
    ),
    "unavailable": _voicemail(
        2,
        "The person you are calling is not available. Please leave a message after the tone. "
        "When you have finished recording, you may hang up.",
        "en-us",
        160,
        1400.0,
    ),
}
ANNOUNCEMENT = (
    "We're sorry. The number you have dialed is not in service. Please check the number and "
    "dial again."
)
# The intercept tone: (Hz, ms) of its first two segments (dialer.sit). Only the one whose
# segments are both short: the line pool's jitter buffer, on a loaded machine, sometimes drops
# a few frames of early media, and a vacant code's long first segment was then once heard short,
# as a reorder (congestion) tone; a short segment stays short.
INTERCEPTS = {"intercept": ((LOW_1, SHORT_MS), (LOW_2, SHORT_MS))}
SURVEY_VOICE = "hello"  # the person who answers the survey


@dataclass(frozen=True)
class SurveyAnswers:
    """One way a survey gets answered: `keys` are (seconds after the answer, digit)."""

    name: str
    keys: tuple[tuple[float, str], ...]

    @property
    def digits(self) -> str:
        return "".join(digit for _, digit in self.keys)


def survey_answers(timings: CarrierTimings) -> tuple[SurveyAnswers, ...]:
    """The survey patterns: each draws its digits and gaps from a stream of its own (or keys
    the fixed digits it was given, with drawn gaps)."""
    patterns = []
    fixed = timings.survey_fixed
    for index in range(len(fixed) if fixed else timings.survey_patterns):
        rng = random.Random(f"survey-{index}")
        at = timings.survey_first_key_s
        keys = []
        count = len(fixed[index]) if fixed else timings.survey_keys
        for position in range(count):
            digit = fixed[index][position] if fixed else rng.choice(timings.survey_digits)
            keys.append((round(at, 2), digit))
            at += rng.choice(timings.survey_key_gap.points)
        name = f"fixed{index}" if fixed else f"survey{index}"
        patterns.append(SurveyAnswers(name, tuple(keys)))
    return tuple(patterns)


def survey_hold_s(timings: CarrierTimings, answers: SurveyAnswers) -> float:
    """How long the person stays on after answering, unless the dialer hangs up first."""
    after = timings.survey_hangs_up_after_keys_s
    if after is None or not answers.keys:
        return timings.survey_hangs_up_s
    return answers.keys[-1][0] + after


@dataclass(frozen=True)
class CarrierAudio:
    """Each branch's captures by variant name."""

    human: dict[str, Path]
    machine: dict[str, Path]
    invalid: dict[str, Path]
    survey: dict[str, Path]
    answers: dict[str, SurveyAnswers]


def default_dir() -> Path:
    """$DIALER_DEMO_CACHE, else the user's cache (~/.cache/dialer/demo-carrier)."""
    configured = os.environ.get("DIALER_DEMO_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dialer" / "demo-carrier"


def _name(kind: str, variant: str, recipe: object) -> str:
    text = json.dumps([RECIPE_VERSION, amd_corpus.RECIPE_VERSION, recipe], sort_keys=True)
    return f"{kind}-{variant}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.pcap"


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Another process starting a carrier at the same time never sees half a file."""
    with tempfile.TemporaryDirectory(prefix="render-", dir=path.parent) as folder:
        part = Path(folder) / path.name
        write(part)
        os.replace(part, path)


def _greeting_samples(plan: GreetingPlan, folder: Path) -> np.ndarray:
    wav = folder / "greeting.wav"
    synthesise(plan, wav)
    return read_wav(wav)


def _render_greeting(plan: GreetingPlan, pcap: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="greeting-") as folder:
        write_rtp_pcap(pcap, _greeting_samples(plan, Path(folder)))


def _render_survey(plan: GreetingPlan, answers: SurveyAnswers, pcap: Path) -> None:
    """The person's greeting, line noise while the questions play, and the keyed answers."""
    with tempfile.TemporaryDirectory(prefix="survey-") as folder:
        greeting = _greeting_samples(plan, Path(folder)).astype(np.float64)
    last_key_s = answers.keys[-1][0] if answers.keys else 0.0
    total = round((last_key_s + KEY_FRAMES * 0.02 + 0.5) * SAMPLE_RATE)
    rng = np.random.default_rng(7)
    samples = rng.normal(0.0, 2.0, max(total, len(greeting)))
    samples[: len(greeting)] = greeting
    write_rtp_pcap(pcap, samples, keys=answers.keys)


def _render_intercept(tone: tuple[tuple[float, int], tuple[float, int]], pcap: Path) -> None:
    """Line noise, the special information tone, then the recorded announcement."""
    with tempfile.TemporaryDirectory(prefix="intercept-") as folder:
        wav = Path(folder) / "announcement.wav"
        render(ANNOUNCEMENT, wav)
        announcement = read_wav(wav).astype(np.float64) * 10 ** (-9 / 20)  # about -12 dBFS
    rng = np.random.default_rng(11)
    noise = rng.normal(0.0, 30.0, SAMPLE_RATE * 3 // 10)
    samples = np.concatenate((noise, sit_samples(*tone), np.zeros(SAMPLE_RATE // 5), announcement))
    write_rtp_pcap(pcap, samples)


def build_carrier_audio(
    timings: CarrierTimings | None = None, directory: Path | None = None, workers: int = 2
) -> CarrierAudio:
    """Every capture the carrier may play, rendered now unless already in the cache."""
    timings = timings or CarrierTimings()
    folder = directory or default_dir()
    folder.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[Path, Callable[[Path], None]]] = []

    def wanted(kind: str, variant: str, recipe: object, render_to: Callable[[Path], None]) -> Path:
        path = folder / _name(kind, variant, recipe)
        if not path.exists():
            jobs.append((path, render_to))
        return path

    human = {
        name: wanted("human", name, asdict(plan), lambda p, plan=plan: _render_greeting(plan, p))
        for name, plan in PEOPLE.items()
    }
    machine = {
        name: wanted("machine", name, asdict(plan), lambda p, plan=plan: _render_greeting(plan, p))
        for name, plan in VOICEMAILS.items()
    }
    invalid = {
        name: wanted(
            "invalid",
            name,
            [tone, ANNOUNCEMENT],
            lambda p, tone=tone: _render_intercept(tone, p),
        )
        for name, tone in INTERCEPTS.items()
    }
    answers = {pattern.name: pattern for pattern in survey_answers(timings)}
    person = PEOPLE[SURVEY_VOICE]
    survey = {
        name: wanted(
            "survey",
            name,
            [asdict(person), pattern.keys],
            lambda p, pattern=pattern: _render_survey(person, pattern, p),
        )
        for name, pattern in answers.items()
    }
    with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
        futures = [pool.submit(_write_atomically, path, render_to) for path, render_to in jobs]
        for future in futures:
            future.result()
    return CarrierAudio(human, machine, invalid, survey, answers)
