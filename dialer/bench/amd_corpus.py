"""A generated corpus of answered-call greetings for AMD: people and voicemail, as telephone audio.

Each greeting is planned from a seed (text, voice, speed, pitch, level, noise, leading silence,
beep, music), spoken by `espeak-ng`, resampled by `sox` to 8 kHz mono 16-bit, assembled with
silences, tones and noise in numpy, and band-passed by `sox` to the telephone band. The same seed
and count give the same plans and the same audio, so the WAVs are a cache, never committed.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import random
import subprocess
import tempfile
import wave
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from dialer.amd import SAMPLE_RATE

# Bump when the synthesis changes so that cached WAVs of the old recipe are not reused.
RECIPE_VERSION = 4

Truth = Literal["human", "machine"]

VOICES = (
    "en-us",
    "en-gb",
    "en-us+f3",
    "en-us+m3",
    "en-gb+f2",
    "en-gb+m1",
    "en-gb-scotland",
    "en-029+f4",
    "en-us+f1",
    "en-gb-x-rp+m2",
)

HUMAN_PHRASES = (
    "Hello?",
    "Yes?",
    "Hello, who is this?",
    "Yeah, hello.",
    "Hi, this is Mark.",
    "Speaking.",
    "Hello?",
    "Hi?",
    "Yes, hello?",
    "Hello, Susan speaking.",
    "Good morning.",
    "Who's calling?",
    "Hello, yes?",
    "Yeah?",
    "Hi there.",
    "This is Dave.",
    "Hello, Smith residence.",
    "Yeah, hi, who's this?",
    "Good afternoon, Patel speaking.",
    "Hello? Hello?",
)
SECOND_HELLOS = ("Hello?", "Hello? Anyone there?", "Hello?", "Hi?")

NAMES = ("John Smith", "Maria", "Dr. Patel", "the Johnson family", "Kevin", "Sarah Miller")
COMPANIES = ("Acme Insurance", "Bright Dental", "City Plumbing", "North Star Realty")
MACHINE_OPENERS = (
    "Hi, you've reached {name}.",
    "Hello, you have reached the voicemail of {name}.",
    "Thank you for calling {company}.",
    "The person you are calling is not available.",
    "Hey, this is {name}.",
    "Hi there, you've reached {name}'s phone.",
    "Your call has been forwarded to an automated voice messaging system.",
)
MACHINE_SENTENCES = (
    "I'm not able to take your call right now.",
    "Sorry I missed your call.",
    "I am away from my phone at the moment.",
    "Our office is currently closed.",
    "Our business hours are Monday to Friday, nine to five.",
    "Please leave your name, your number and a short message after the tone.",
    "Leave a message and I will get back to you as soon as I can.",
    "If this is urgent, please try my mobile number instead.",
    "I check my messages regularly, so I will call you back soon.",
    "Please speak clearly after the beep.",
    "When you have finished recording, you may hang up.",
    "Thanks for calling, and have a great day.",
)


@dataclass(frozen=True, slots=True)
class GreetingPlan:
    """Everything that decides one greeting's audio."""

    index: int
    truth: Truth
    text: str
    voice: str
    wpm: int
    pitch: int  # espeak-ng 0..99
    level_db: float  # speech peak level, dBFS
    snr_db: float | None  # white noise below the active speech level; None: a clean line
    lead_silence_s: float
    second_text: str | None = None  # a person's second "Hello?" after 2 s of silence
    beep_hz: float | None = None
    beep_s: float = 0.0
    gap_before_beep_s: float = 0.0
    jingle: tuple[tuple[float, float], ...] = ()  # music-like notes (Hz, s) before the greeting
    total_s: float = 0.0  # pad with silence up to this length
    # Some voicemail owners pause after "Hi, this is Kevin.": the classic machine taken for a
    # person, kept in the corpus so that the figures show it.
    opener_pause_s: float = 0.0

    @property
    def key(self) -> str:
        plan = json.dumps(asdict(self), sort_keys=True) + f"/v{RECIPE_VERSION}"
        return hashlib.sha256(plan.encode()).hexdigest()[:12]

    @property
    def file_name(self) -> str:
        return f"{self.index:04d}-{self.truth}-{self.key}.wav"


@dataclass(frozen=True, slots=True)
class Greeting:
    plan: GreetingPlan
    path: Path


def _machine_text(rng: random.Random, words_wanted: int) -> str:
    opener = rng.choice(MACHINE_OPENERS).format(
        name=rng.choice(NAMES), company=rng.choice(COMPANIES)
    )
    sentences = [opener]
    pool = list(MACHINE_SENTENCES)
    rng.shuffle(pool)
    while sum(len(s.split()) for s in sentences) < words_wanted and pool:
        sentences.append(pool.pop())
    return " ".join(sentences)


def plan_corpus(count: int, seed: int) -> list[GreetingPlan]:
    """`count` greetings, half people and half voicemail, in a seed-determined mix."""
    rng = random.Random(seed)
    plans = []
    for index in range(count):
        truth: Truth = "human" if index % 2 == 0 else "machine"
        voice = rng.choice(VOICES)
        wpm = rng.randint(130, 200)
        pitch = rng.randint(25, 75)
        level_db = rng.uniform(-26.0, -3.0)
        snr_db = rng.choice((None, 40.0, 30.0, 25.0, 20.0, 15.0))
        lead_silence_s = round(rng.uniform(0.0, 1.0), 2)
        if truth == "human":
            second = rng.choice(SECOND_HELLOS) if rng.random() < 0.35 else None
            plans.append(
                GreetingPlan(
                    index=index,
                    truth=truth,
                    text=rng.choice(HUMAN_PHRASES),
                    voice=voice,
                    wpm=wpm,
                    pitch=pitch,
                    level_db=level_db,
                    snr_db=snr_db,
                    lead_silence_s=lead_silence_s,
                    second_text=second,
                    total_s=7.0,
                )
            )
            continue
        seconds_wanted = rng.uniform(6.0, 10.0)
        text = _machine_text(rng, round(wpm * seconds_wanted / 60))
        ending = rng.random()
        beep_hz, beep_s, jingle = None, 0.0, ()
        if ending < 0.8:
            beep_hz = float(rng.randint(440, 1400))
            beep_s = round(rng.uniform(0.2, 1.0), 2)
        if 0.7 <= ending < 0.9:
            notes = (262.0, 330.0, 392.0, 523.0, 659.0, 784.0, 880.0)
            jingle = tuple(
                (rng.choice(notes), round(rng.uniform(0.12, 0.3), 2))
                for _ in range(rng.randint(3, 5))
            )
        plans.append(
            GreetingPlan(
                index=index,
                truth=truth,
                text=text,
                voice=voice,
                wpm=wpm,
                pitch=pitch,
                level_db=level_db,
                snr_db=snr_db,
                lead_silence_s=lead_silence_s,
                beep_hz=beep_hz,
                beep_s=beep_s,
                gap_before_beep_s=round(rng.uniform(0.2, 0.8), 2),
                jingle=jingle,
                opener_pause_s=round(rng.uniform(0.4, 1.2), 2) if rng.random() < 0.08 else 0.0,
            )
        )
    return plans


def _speak(text: str, voice: str, wpm: int, pitch: int, workdir: Path) -> np.ndarray:
    """espeak-ng speech at 8 kHz mono, peak-normalised to 1.0, edge silence trimmed."""
    raw = workdir / "espeak.wav"
    resampled = workdir / "speech8k.wav"
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(wpm), "-p", str(pitch), "-w", str(raw), text],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["sox", "-D", str(raw), "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16", str(resampled)],
        check=True,
        capture_output=True,
    )
    speech = read_wav(resampled).astype(np.float64)
    # espeak-ng pads its output with silence: trim it so the plan's silences are the real ones.
    loud = np.flatnonzero(np.abs(speech) > 0.01 * np.abs(speech).max())
    speech = speech[loud[0] : loud[-1] + 1]
    return speech / np.abs(speech).max()


def _tone(hz: float, seconds: float, harmonics: int = 1) -> np.ndarray:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    tone = sum(np.sin(2 * np.pi * hz * k * t) / k for k in range(1, harmonics + 1))
    tone = np.asarray(tone, dtype=np.float64)
    ramp = min(len(tone) // 2, SAMPLE_RATE // 200)  # 5 ms fades: real beeps do not click
    if ramp:
        fade = np.linspace(0.0, 1.0, ramp)
        tone[:ramp] *= fade
        tone[-ramp:] *= fade[::-1]
    return tone / np.abs(tone).max()


def _active_rms(speech: np.ndarray) -> float:
    """RMS over the 20 ms frames within 30 dB of the loudest: the speech level, pauses aside."""
    usable = len(speech) // 160 * 160
    frame_rms = np.sqrt(np.mean(speech[:usable].reshape(-1, 160) ** 2, axis=1))
    active = frame_rms[frame_rms >= frame_rms.max() * 10 ** (-30 / 20)]
    return float(np.sqrt(np.mean(active**2)))


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE))


def synthesise(plan: GreetingPlan, path: Path) -> None:
    """Write the plan's greeting as an 8 kHz mono 16-bit WAV at `path`."""
    rng = np.random.default_rng(int(plan.key, 16))
    with tempfile.TemporaryDirectory(prefix="amd-") as tmp:
        workdir = Path(tmp)
        parts = [_silence(plan.lead_silence_s)]
        for hz, seconds in plan.jingle:
            parts.append(0.7 * _tone(hz, seconds, harmonics=3))
        if plan.jingle:
            parts.append(_silence(0.3))
        if plan.opener_pause_s:
            opener, _, rest = plan.text.partition(". ")
            opener_speech = _speak(opener + ".", plan.voice, plan.wpm, plan.pitch, workdir)
            speech = _speak(rest, plan.voice, plan.wpm, plan.pitch, workdir)
            parts.extend((opener_speech, _silence(plan.opener_pause_s), speech))
        else:
            speech = _speak(plan.text, plan.voice, plan.wpm, plan.pitch, workdir)
            parts.append(speech)
        if plan.second_text is not None:
            parts.append(_silence(2.0))
            parts.append(_speak(plan.second_text, plan.voice, plan.wpm, plan.pitch, workdir))
        if plan.beep_hz is not None:
            parts.append(_silence(plan.gap_before_beep_s))
            parts.append(0.8 * _tone(plan.beep_hz, plan.beep_s))
        parts.append(_silence(1.0))
        speech_rms = _active_rms(speech)
        signal = np.concatenate(parts)
        if len(signal) < plan.total_s * SAMPLE_RATE:
            signal = np.concatenate((signal, _silence(plan.total_s - len(signal) / SAMPLE_RATE)))
        signal *= 10 ** (plan.level_db / 20) * 32767
        if plan.snr_db is not None:
            noise_rms = speech_rms * 10 ** ((plan.level_db - plan.snr_db) / 20) * 32767
            signal += rng.normal(0.0, noise_rms, len(signal))
        else:
            # A digital line is never all zeros: a little dither keeps the VAD honest.
            signal += rng.normal(0.0, 2.0, len(signal))
        assembled = workdir / "assembled.wav"
        write_wav(assembled, signal)
        # The telephone channel: only 300-3400 Hz survives, for the noise as for the voice.
        subprocess.run(
            ["sox", "-D", str(assembled), str(path) + ".part.wav", "sinc", "300-3400"],
            check=True,
            capture_output=True,
        )
        os.replace(str(path) + ".part.wav", path)


def read_wav(path: Path) -> np.ndarray:
    """The samples of an 8 kHz mono 16-bit WAV, as int16."""
    with wave.open(str(path), "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            raise ValueError(
                f"{path}: {wav.getframerate()} Hz, {wav.getnchannels()} channel(s), "
                f"{8 * wav.getsampwidth()} bits; expected {SAMPLE_RATE} Hz mono 16-bit"
            )
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def write_wav(path: Path, samples: np.ndarray) -> None:
    pcm = np.clip(np.round(samples), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(pcm.tobytes())


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dialer" / "amd-corpus"


def generate(
    count: int, seed: int, cache_dir: Path | None = None, workers: int = 2
) -> list[Greeting]:
    """The corpus for (count, seed), synthesising only the WAVs not already in the cache."""
    directory = (cache_dir or default_cache_dir()) / f"seed-{seed}"
    directory.mkdir(parents=True, exist_ok=True)
    greetings = [Greeting(plan, directory / plan.file_name) for plan in plan_corpus(count, seed)]
    missing = [g for g in greetings if not g.path.exists()]
    with concurrent.futures.ThreadPoolExecutor(max(1, workers)) as pool:
        list(pool.map(lambda g: synthesise(g.plan, g.path), missing))
    return greetings
