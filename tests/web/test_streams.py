"""The value every live page of a process shares: read again when it is old, but a slow read
(a busy console) is not followed at once by the next."""

from __future__ import annotations

import time

from web.streams import Shared


def test_a_slow_read_is_not_followed_at_once_by_another() -> None:
    reads: list[float] = []

    def read() -> int:
        reads.append(time.monotonic())
        time.sleep(0.1)
        return len(reads)

    shared = Shared(read, max_age=0.01)
    assert shared.get() == 1
    # Older than max_age, but the read took 0.1 s: the next waits until 0.3 s after it began.
    assert shared.get() == 1
    time.sleep(0.25)
    assert shared.get() == 2
    # A fast read keeps max_age.
    fast = Shared(lambda: time.monotonic(), max_age=0.05)
    first = fast.get()
    time.sleep(0.06)
    assert fast.get() > first
