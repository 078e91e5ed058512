"""The supervisor against real workers and SIPp: a worker that stops answering is found by its
missing heartbeats, killed and replaced, and its calls end as failed with the reason."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from dialer.lines import Answered, Event, LinePool
from sip_config import loads
from tests.sipp_uas import Carrier
from tests.test_lines import NUMBER, ended, hang_up_after, run_until_ended, trunk_table

pytestmark = pytest.mark.sip


def test_a_stopped_worker_is_killed_and_replaced_and_its_call_fails(tmp_path: Path) -> None:
    carrier = Carrier(tmp_path, "hung").start("answer", calls=2, timeout=40)
    config = loads(trunk_table("hung", carrier.port))
    try:
        with LinePool(config, workers=1, hung_after=2.0) as pool:
            pid = pool.worker_pids()[0]
            stopped: list[float] = []

            def stop_when_answered(event: Event) -> None:
                if isinstance(event, Answered):
                    # Alive but silent, as a worker stuck inside a pjsua call would be.
                    os.kill(pid, signal.SIGSTOP)
                    stopped.append(time.monotonic())

            pool.originate("a-stuck", "hung", NUMBER)
            result = ended(run_until_ended(pool, "a-stuck", on_event=stop_when_answered))
            assert stopped, "the call was never answered"
            assert result.outcome == "failed"
            assert result.reason.startswith("line worker 0 stopped answering (")
            assert result.reason.endswith("s without a heartbeat), killed")
            assert result.timings.answered_at is None  # the supervisor never heard the answer
            assert (pool.restarts, pool.hung_kills) == (1, 1)

            pool.originate("a-after", "hung", NUMBER)
            events = run_until_ended(pool, "a-after", on_event=hang_up_after(pool, "a-after", 0.2))
            assert ended(events).outcome == "human"
            assert pool.worker_pids()[0] != pid
        assert pool.exits == [(0, -signal.SIGKILL), (0, 0)]
    finally:
        carrier.stop()


def test_a_busy_but_answering_worker_is_left_alone(tmp_path: Path) -> None:
    """Heartbeats keep coming while calls come and go: no worker is taken for hung."""
    carrier = Carrier(tmp_path, "busy").start(
        "reject", calls=20, timeout=30, CODE="486", REASON="Busy Here"
    )
    config = loads(trunk_table("busy", carrier.port))
    try:
        with LinePool(config, workers=1, hung_after=2.0) as pool:
            deadline = time.monotonic() + 4.0
            n = 0
            while time.monotonic() < deadline and n < 15:
                pool.originate(f"b-{n}", "busy", NUMBER)
                assert ended(run_until_ended(pool, f"b-{n}")).outcome == "busy"
                n += 1
                time.sleep(0.2)
            time.sleep(2.5)  # idle for longer than hung_after: the heartbeat alone must do
            assert (pool.restarts, pool.hung_kills) == (0, 0)
        assert pool.exits == [(0, 0)]
    finally:
        carrier.stop()


def test_hung_after_must_leave_room_for_a_missed_heartbeat() -> None:
    config = loads(trunk_table("any", 5060))
    with pytest.raises(ValueError, match=r"hung_after=1 s: at least 2 s"):
        LinePool(config, workers=1, hung_after=1.0)
