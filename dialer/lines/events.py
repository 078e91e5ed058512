"""What goes into a line worker (commands) and what comes out (events): small frozen dataclasses
that cross the process boundary by pickling. Times are wall-clock seconds (time.time()), since
they end up in attempt records read on other machines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TapSpec:
    """A frame tap built inside the worker that holds the call, from an importable factory.

    `factory` is "package.module:name"; `factory(**options)` must return an object with
    `feed(frame: bytes) -> str | None` taking 320-byte frames (20 ms of 16-bit 8 kHz mono PCM)
    and returning a verdict ("human" / "machine") once it has one. Built from a name rather
    than pickled so a detector with numpy state never has to cross the pipe.
    """

    factory: str
    options: dict[str, Any] = field(default_factory=dict)


# Commands (supervisor -> worker)


@dataclass(frozen=True)
class Originate:
    attempt_id: str
    trunk: str
    number: str
    ring_timeout: float
    no_response_timeout: float
    tap: TapSpec | None = None


@dataclass(frozen=True)
class Hangup:
    attempt_id: str


@dataclass(frozen=True)
class Play:
    attempt_id: str
    path: str


@dataclass(frozen=True)
class Record:
    attempt_id: str
    path: str


@dataclass(frozen=True)
class StopRecord:
    attempt_id: str


@dataclass(frozen=True)
class SendDtmf:
    attempt_id: str
    digits: str


@dataclass(frozen=True)
class Bridge:
    attempt_id: str
    other_attempt_id: str


@dataclass(frozen=True)
class AttachTap:
    attempt_id: str
    tap: TapSpec


@dataclass(frozen=True)
class Shutdown:
    pass


Command = Originate | Hangup | Play | Record | StopRecord | SendDtmf | Bridge | AttachTap | Shutdown


# Events (worker -> supervisor -> the node)


@dataclass(frozen=True)
class Timings:
    dialed_at: float
    ringing_at: float | None
    answered_at: float | None
    ended_at: float


@dataclass(frozen=True)
class Progress:
    """A provisional response: 180 Ringing or 183 Session Progress (early media)."""

    attempt_id: str
    sip_code: int
    at: float


@dataclass(frozen=True)
class Answered:
    attempt_id: str
    at: float


@dataclass(frozen=True)
class DtmfReceived:
    attempt_id: str
    digit: str


@dataclass(frozen=True)
class PromptFinished:
    attempt_id: str
    path: str


@dataclass(frozen=True)
class AmdVerdict:
    attempt_id: str
    verdict: str
    at: float


@dataclass(frozen=True)
class CommandFailed:
    """A command about a live attempt could not be carried out; the call itself goes on."""

    attempt_id: str
    command: str
    reason: str


@dataclass(frozen=True)
class Ended:
    """The one event every attempt gets, whatever happened (worker crashes included)."""

    attempt_id: str
    sip_code: int
    reason: str
    outcome: str
    timings: Timings
    amd_verdict: str | None = None
    # RTP packets received on the answered call and lost on the way (RTCP-style count), taken
    # just before the dialer hangs up; None when the far end hung up or there was no media.
    rtp_received: int | None = None
    rtp_lost: int | None = None


@dataclass(frozen=True)
class WorkerReady:
    worker: int
    pid: int
    sip_port: int


Event = (
    Progress
    | Answered
    | DtmfReceived
    | PromptFinished
    | AmdVerdict
    | CommandFailed
    | Ended
    | WorkerReady
)
