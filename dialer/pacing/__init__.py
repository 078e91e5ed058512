"""The pacing engine: one protocol (ARCHITECTURE §8) for the live node, the simulator and any
outside harness, and the pacers behind it."""

from __future__ import annotations

from dialer.pacing.predictive import PredictivePacer, PredictiveSettings
from dialer.pacing.protocol import (
    AGENT_STATES,
    OUTCOMES,
    Abandoned,
    AgentView,
    Connected,
    Event,
    Pacer,
    PacingView,
    Resolved,
    TalkEnded,
    WrapEnded,
)
from dialer.pacing.ratio import PreviewPacer, RatioPacer

MODES = ("preview", "progressive", "power", "predictive")

__all__ = [
    "AGENT_STATES",
    "MODES",
    "OUTCOMES",
    "Abandoned",
    "AgentView",
    "Connected",
    "Event",
    "Pacer",
    "PacingView",
    "PredictivePacer",
    "PredictiveSettings",
    "PreviewPacer",
    "RatioPacer",
    "Resolved",
    "TalkEnded",
    "WrapEnded",
    "make_pacer",
]


def make_pacer(mode: str, **settings: float) -> Pacer:
    if mode == "preview":
        return PreviewPacer()
    if mode == "progressive":
        return RatioPacer(1.0)
    if mode == "power":
        return RatioPacer(float(settings.get("ratio", 2.0)))
    if mode == "predictive":
        return PredictivePacer(PredictiveSettings.from_settings(settings))
    raise ValueError(f"pacing mode {mode!r} is not one of {', '.join(MODES)}")
