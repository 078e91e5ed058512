"""What goes into a line worker (commands) and what comes out (events): small frozen dataclasses
that cross the process boundary by pickling. Times are wall-clock seconds (time.time()), since
they end up in attempt records read on other machines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# How DTMF travels: RFC 2833 telephone-events in the RTP stream, or SIP INFO requests
# (application/dtmf-relay), which some carriers require because they transcode or drop the RTP.
DtmfMethod = Literal["rfc2833", "sip_info"]
DTMF_METHODS: tuple[DtmfMethod, ...] = ("rfc2833", "sip_info")


@dataclass(frozen=True)
class TapSpec:
    """A frame tap built inside the worker that holds the call, from an importable factory.

    `factory` is "package.module:name"; `factory(**options)` must return an object with
    `feed(frame: bytes) -> str | None` taking 320-byte frames (20 ms of 16-bit 8 kHz mono PCM)
    and returning a verdict once it has one: a string ("human" / "machine" / "notsure") or an
    object with `kind`, `reason` and `after_ms` such as `dialer.amd.Verdict`. Built from a name
    rather than pickled so a detector with numpy state never has to cross the pipe.

    With `from_answer` (the default) the tap hears nothing before the call is answered: early
    media (ringback, "the number you have dialled ...", a carrier's 183 announcement) would
    otherwise count as the called party's greeting and shift every AMD timing. Frames pjsua
    delivers without audio in them are fed as silence, since a detector counts time in frames.
    Set it False for taps that want early media (e.g. special information tones).
    """

    factory: str
    options: dict[str, Any] = field(default_factory=dict)
    from_answer: bool = True


# Commands (supervisor -> worker)


@dataclass(frozen=True)
class Originate:
    attempt_id: str
    trunk: str
    number: str
    ring_timeout: float
    no_response_timeout: float
    tap: TapSpec | None = None
    # An agent leg: dial this SIP URI directly (not through a trunk) with these extra INVITE
    # headers (auto-answer); `trunk` and `number` are then empty.
    uri: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    # The number the called party sees (E.164; `Trunk.caller_identity`); None: the trunk's.
    caller_id: str | None = None


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
    method: DtmfMethod = "rfc2833"


@dataclass(frozen=True)
class Bridge:
    attempt_id: str
    other_attempt_id: str
    # Record both parties, mixed, into one WAV at this path (the campaign records its calls).
    record_path: str | None = None


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
    method: DtmfMethod = "rfc2833"


@dataclass(frozen=True)
class PromptFinished:
    attempt_id: str
    path: str


@dataclass(frozen=True)
class AmdVerdict:
    """`after_ms` is the detector's decision time since answer (frames heard x 20 ms);
    `at_monotonic` is when the tap decided, on CLOCK_MONOTONIC, which every process of the
    machine shares: the node times the 2 s abandonment window from it."""

    attempt_id: str
    verdict: str
    at: float
    reason: str | None = None
    after_ms: int | None = None
    at_monotonic: float | None = None


@dataclass(frozen=True)
class Bridged:
    """Two legs hear each other. `connect_delay_ms`: from the AMD verdict on either leg to the
    bridge, both read on the worker's monotonic clock; None when neither leg had a verdict."""

    attempt_id: str
    other_attempt_id: str
    at: float
    connect_delay_ms: float | None = None
    # The mixed recording of both legs being written, for the attempt's recording_path; None
    # when none was asked for or it could not be opened (a CommandFailed "Record" says why).
    recording_path: str | None = None


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


@dataclass(frozen=True)
class Registration:
    """A worker's REGISTER for a trunk with `register = true` was answered, refreshed, or could
    not be made. `registered`: the worker's account is now bound at the registrar (calls on
    the trunk go out); otherwise they end as failed with this reason until a retry succeeds.
    `expires`: the lifetime the registrar granted, in seconds (pjsua re-registers before)."""

    trunk: str
    worker: int
    registered: bool
    sip_code: int
    reason: str
    expires: int | None = None


@dataclass(frozen=True)
class Heartbeat:
    """The worker's loop is still turning (the supervisor's own business: never forwarded)."""

    worker: int


Event = (
    Progress
    | Answered
    | DtmfReceived
    | PromptFinished
    | AmdVerdict
    | Bridged
    | CommandFailed
    | Ended
    | WorkerReady
    | Registration
    | Heartbeat
)
