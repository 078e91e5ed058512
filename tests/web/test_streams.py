"""The value every live page of a process shares: read again when it is old, but a slow read
(a busy console) is not followed at once by the next."""

from __future__ import annotations

import threading
import time

from web.streams import Refreshed, Shared


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


def test_a_forgotten_value_is_read_again_and_a_read_begun_before_is_not_kept() -> None:
    started: list[int] = []
    let_go = threading.Event()

    def read() -> int:
        started.append(len(started) + 1)
        number = started[-1]
        if number == 2:  # the background read, begun before the change
            let_go.wait(5)
        return number

    value = Refreshed(read, every=0.0, wait_first=True)
    assert value.get() == 1  # read by the first asker
    assert value.get() == 1  # and again in the background (read 2, held)
    value.forget()
    assert value.get() == 3  # read at once, not waiting for read 2
    let_go.set()
    deadline = time.monotonic() + 5
    while value._reading and time.monotonic() < deadline:
        time.sleep(0.01)
    assert value.get() == 3, "read 2 began before the change: its value is dropped"
