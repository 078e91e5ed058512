"""Pacers that need no model: preview and fixed-ratio (progressive is ratio 1, power any other)."""

from __future__ import annotations

from dialer.pacing.protocol import Event, PacingView


class PreviewPacer:
    """Never dials on its own: the agent previews the lead and asks for the call."""

    def decide(self, view: PacingView) -> int:
        return 0

    def observe(self, event: Event) -> None:
        return None


class RatioPacer:
    """`ratio` attempts in flight per idle agent (progressive is ratio 1: no abandons by
    design, as every answer has an agent waiting for it)."""

    def __init__(self, ratio: float = 1.0) -> None:
        if not 1.0 <= ratio <= 10.0:
            raise ValueError(f"ratio {ratio!r} must be between 1 and 10")
        self.ratio = ratio

    def decide(self, view: PacingView) -> int:
        wanted = int(self.ratio * view.idle + 1e-9) - len(view.dialing) - view.waiting
        return max(0, min(wanted, view.free_lines))

    def observe(self, event: Event) -> None:
        return None
