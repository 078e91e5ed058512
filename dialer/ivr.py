"""IVR digit collection: a pure state machine fed with DTMF digits and clock ticks.

No clock or socket inside: the shell passes every time in (seconds on one monotonic clock),
so a flow can be replayed and tested exactly."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

DTMF_DIGITS = "0123456789*#ABCD"

Reason = Literal["complete", "terminator", "timeout", "no_input"]


@dataclass(frozen=True)
class Collected:
    """What the caller keyed. `digits` never holds the terminator.

    reason: "complete" (max_digits reached), "terminator" (the terminator was pressed),
    "timeout" (some digits, then silence past the inter-digit timeout) or "no_input" (no digit
    before the first-digit timeout)."""

    digits: str
    reason: Reason


class DigitCollector:
    """Collects up to `max_digits` digits; gives exactly one `Collected`, from `press` or `tick`.

    The first-digit timeout runs from `started_at` (normally when the prompt finished playing),
    the inter-digit timeout from the last digit. A deadline is reached at the instant it falls
    due: a digit pressed exactly then is too late, as the caller has been timed out already."""

    def __init__(
        self,
        max_digits: int,
        terminator: str | None = "#",
        *,
        first_digit_timeout_s: float,
        inter_digit_timeout_s: float,
        started_at: float,
    ) -> None:
        if isinstance(max_digits, bool) or not isinstance(max_digits, int) or max_digits < 1:
            raise ValueError(f"max_digits={max_digits!r}: expected an integer of at least 1")
        if terminator is not None and (len(terminator) != 1 or terminator not in DTMF_DIGITS):
            raise ValueError(
                f"terminator={terminator!r}: expected one of {DTMF_DIGITS!r}, or None for none"
            )
        for name, value in (
            ("first_digit_timeout_s", first_digit_timeout_s),
            ("inter_digit_timeout_s", inter_digit_timeout_s),
        ):
            if not _positive_seconds(value):
                raise ValueError(f"{name}={value!r}: expected a finite number of seconds above 0")
        if not _finite(started_at):
            raise ValueError(f"started_at={started_at!r}: expected a finite time in seconds")
        self.max_digits = max_digits
        self.terminator = terminator
        self.first_digit_timeout_s = float(first_digit_timeout_s)
        self.inter_digit_timeout_s = float(inter_digit_timeout_s)
        self._digits = ""
        self._last_at = float(started_at)
        self._deadline = self._last_at + self.first_digit_timeout_s
        self.result: Collected | None = None

    @property
    def digits(self) -> str:
        """The digits so far (the final ones once `result` is set)."""
        return self._digits

    def press(self, digit: str, at: float) -> Collected | None:
        """A digit keyed at `at`. Returns the result if this press ends collection (or if the
        caller had already timed out by `at`); None while collecting or once a result was given."""
        if len(digit) != 1 or digit not in DTMF_DIGITS:
            raise ValueError(f"digit={digit!r}: expected one of {DTMF_DIGITS!r}")
        self._advance(at)
        if self.result is not None:
            return None
        timed_out = self._time_out(at)
        if timed_out is not None:
            return timed_out
        if digit == self.terminator:
            return self._finish("terminator")
        self._digits += digit
        if len(self._digits) == self.max_digits:
            return self._finish("complete")
        self._deadline = at + self.inter_digit_timeout_s
        return None

    def tick(self, at: float) -> Collected | None:
        """The clock read `at`: returns the result if a timeout has fallen due, else None."""
        self._advance(at)
        if self.result is not None:
            return None
        return self._time_out(at)

    def _advance(self, at: float) -> None:
        # A time running backwards means the shell mixed clocks (time.time with monotonic):
        # every deadline would be wrong, so refuse rather than collect nonsense.
        if not _finite(at) or at < self._last_at:
            raise ValueError(f"at={at!r}: expected a finite time not before {self._last_at!r}")
        self._last_at = float(at)

    def _time_out(self, at: float) -> Collected | None:
        if at < self._deadline:
            return None
        return self._finish("timeout" if self._digits else "no_input")

    def _finish(self, reason: Reason) -> Collected:
        self.result = Collected(self._digits, reason)
        return self.result


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive_seconds(value: float) -> bool:
    return _finite(value) and value > 0
