"""A frame-tap detector for the line-pool tests, built inside the line worker by name.

It stands where `dialer/amd` will plug in: `feed(frame) -> verdict | None` on 320-byte frames.
It says "machine" after enough loud frames, which proves real far-end audio reached it."""

from __future__ import annotations

import array
import math


class LoudFrames:
    def __init__(self, frames: int = 25, threshold: float = 300.0) -> None:
        self.frames = frames
        self.threshold = threshold
        self.loud = 0

    def feed(self, frame: bytes) -> str | None:
        samples = array.array("h", frame)
        rms = math.sqrt(sum(s * s for s in samples) / len(samples))
        if rms >= self.threshold:
            self.loud += 1
        return "machine" if self.loud >= self.frames else None
