"""Token bucket without catch-up: pjsua aborts a process past ~55 new calls/s (its 64-slot
select ioqueue keeps closed sockets reserved for 500 ms), so an idle spell must not bank
tokens that a burst could spend later."""

from __future__ import annotations


class TokenBucket:
    def __init__(self, rate: float, burst: float = 1.0) -> None:
        if rate <= 0:
            raise ValueError(f"rate {rate!r} is not a positive number of calls per second")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at: float | None = None

    def take(self, now: float) -> bool:
        """Spend one token at monotonic time `now` if there is one."""
        self._refill(now)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False

    def room(self, now: float) -> int:
        """Whole tokens at `now`, none spent."""
        self._refill(now)
        return max(0, int(self._tokens + 1e-9))

    def spend(self, count: int, now: float) -> None:
        """Spends `count` tokens whether there are or not: a debt the next ones pay first."""
        self._refill(now)
        self._tokens -= count

    def _refill(self, now: float) -> None:
        if self._at is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
