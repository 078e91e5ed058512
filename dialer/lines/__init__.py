"""The line pool: pjsua2 line-worker processes (4 calls each) under one supervisor."""

from dialer.lines.events import (
    AmdVerdict,
    Answered,
    Bridged,
    CommandFailed,
    DtmfReceived,
    Ended,
    Event,
    Progress,
    PromptFinished,
    Registration,
    TapSpec,
    Timings,
)
from dialer.lines.outcome import OUTCOMES, classify
from dialer.lines.pool import LinePool, NoSuchAttempt
from dialer.lines.protocol import Lines

__all__ = [
    "OUTCOMES",
    "AmdVerdict",
    "Answered",
    "Bridged",
    "CommandFailed",
    "DtmfReceived",
    "Ended",
    "Event",
    "LinePool",
    "Lines",
    "NoSuchAttempt",
    "Progress",
    "PromptFinished",
    "Registration",
    "TapSpec",
    "Timings",
    "classify",
]
