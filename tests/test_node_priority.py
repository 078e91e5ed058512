"""The node's priority: real time (DIALER_NODE_REALTIME) or a nice value (DIALER_NODE_NICE),
applied to the node's thread and the line pool's supervisor only, never to what they start."""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable

import pytest

from dialer.node.priority import (
    DEFAULT_NICE,
    DEFAULT_REALTIME,
    NICE_VARIABLE,
    REALTIME_VARIABLE,
    NodePriority,
    node_priority,
    raise_priority,
)

ROOT = os.geteuid() == 0
NICE_ONLY = 0  # NodePriority.realtime for none


def _scheduling() -> tuple[int, int, int]:
    """The calling thread's (policy without flags, real-time priority, nice)."""
    thread = threading.get_native_id()
    return (
        os.sched_getscheduler(thread) & ~os.SCHED_RESET_ON_FORK,
        os.sched_getparam(thread).sched_priority,
        os.getpriority(os.PRIO_PROCESS, thread),
    )


def _in_a_thread(action: Callable[[], object]) -> object:
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(action()))
    thread.start()
    thread.join()
    return result[0]


def test_the_defaults_and_chosen_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NICE_VARIABLE, raising=False)
    monkeypatch.delenv(REALTIME_VARIABLE, raising=False)
    assert node_priority() == NodePriority(DEFAULT_REALTIME, DEFAULT_NICE) == NodePriority(10, -10)
    monkeypatch.setenv(NICE_VARIABLE, " 5 ")
    monkeypatch.setenv(REALTIME_VARIABLE, "0")
    assert node_priority() == NodePriority(realtime=0, nice=5)
    monkeypatch.setenv(REALTIME_VARIABLE, "99")
    assert node_priority().realtime == 99


@pytest.mark.parametrize(
    ("variable", "raw", "bounds"),
    [
        (NICE_VARIABLE, "high", "-20 to 19"),
        (NICE_VARIABLE, "-21", "-20 to 19"),
        (NICE_VARIABLE, "20", "-20 to 19"),
        (NICE_VARIABLE, "1.5", "-20 to 19"),
        (REALTIME_VARIABLE, "-1", "0 to 99"),
        (REALTIME_VARIABLE, "100", "0 to 99"),
        (REALTIME_VARIABLE, "rr", "0 to 99"),
    ],
)
def test_a_value_out_of_range_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, raw: str, bounds: str
) -> None:
    monkeypatch.setenv(variable, raw)
    with pytest.raises(ValueError, match=f"{variable}='{raw}'.*{bounds}"):
        node_priority()


def _raised_then(priority: NodePriority) -> dict[str, object]:
    """A new thread raises itself to `priority`, then starts a thread and a process: the
    scheduling of each."""

    def raise_and_start() -> dict[str, object]:
        before = _scheduling()
        raise_priority(priority)
        after = _scheduling()
        started = _in_a_thread(_scheduling)
        process = mp.get_context("spawn").Process(target=_sleep)
        process.start()
        try:
            child = (
                os.sched_getscheduler(process.pid) & ~os.SCHED_RESET_ON_FORK,
                os.sched_getparam(process.pid).sched_priority,
                os.getpriority(os.PRIO_PROCESS, process.pid),
            )
        finally:
            process.terminate()
            process.join()
        return {"before": before, "after": after, "thread": started, "process": child}

    return _in_a_thread(raise_and_start)  # type: ignore[return-value]


def _sleep() -> None:
    threading.Event().wait(30)


@pytest.mark.skipif(not ROOT, reason="real-time scheduling needs root or CAP_SYS_NICE")
def test_real_time_for_the_calling_thread_only_and_not_for_what_it_starts() -> None:
    main_before = _scheduling()
    seen = _raised_then(NodePriority(realtime=10, nice=-10))
    assert seen["after"] == (os.SCHED_RR, 10, main_before[2])
    # What the raised thread starts runs at normal priority: the line workers carry the
    # media, and the machine's other work must not wait behind them.
    assert seen["thread"] == (os.SCHED_OTHER, 0, 0)
    assert seen["process"] == (os.SCHED_OTHER, 0, 0)
    assert _scheduling() == main_before


def test_nice_when_real_time_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    process_before = _scheduling()
    wanted = process_before[2] - 3
    seen = _raised_then(NodePriority(realtime=10, nice=wanted))
    if ROOT:
        assert seen["after"] == (os.SCHED_OTHER, 0, wanted)
    else:  # no permission for either: the node runs as started, and says so in its log
        assert seen["after"] == seen["before"]
    assert _scheduling() == process_before


def test_nice_alone_when_real_time_is_not_asked_for() -> None:
    process_before = _scheduling()
    wanted = process_before[2] - 3
    seen = _raised_then(NodePriority(realtime=NICE_ONLY, nice=wanted))
    assert seen["after"] == ((os.SCHED_OTHER, 0, wanted) if ROOT else seen["before"])


def test_a_lower_priority_is_never_taken() -> None:
    seen = _raised_then(NodePriority(realtime=NICE_ONLY, nice=19))
    assert seen["after"] == seen["before"]


@pytest.mark.sip
@pytest.mark.skipif(not ROOT, reason="raising a thread's priority needs root")
@pytest.mark.parametrize("priority", [NodePriority(10, -10), NodePriority(NICE_ONLY, -5)])
def test_the_supervisor_runs_as_its_starter_and_the_workers_as_the_pool_maker(
    priority: NodePriority,
) -> None:
    """The node's loop raises itself before it starts the pool: the pool's supervisor runs as
    the loop does, and its workers, which carry the media, at the level of the thread that
    made the pool."""
    from dialer.lines import LinePool
    from sip_config import loads
    from tests.test_lines import trunk_table

    pool = LinePool(loads(trunk_table("carrier1", 5999)), workers=1)
    maker = _scheduling()
    seen: list[tuple[int, int, int]] = []

    def start_raised() -> None:
        raise_priority(priority)
        seen.append(_scheduling())
        pool.start()

    starter = threading.Thread(target=start_raised)
    starter.start()
    starter.join()
    try:
        [worker] = pool.worker_pids()
        supervisor = pool._thread.native_id  # type: ignore[union-attr]
        assert supervisor is not None

        def supervisor_scheduling() -> tuple[int, int, int]:
            return (
                os.sched_getscheduler(supervisor) & ~os.SCHED_RESET_ON_FORK,
                os.sched_getparam(supervisor).sched_priority,
                os.getpriority(os.PRIO_PROCESS, supervisor),
            )

        deadline = time.monotonic() + 5  # the supervisor raises itself as it begins
        while supervisor_scheduling() != seen[0] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert supervisor_scheduling() == seen[0]
        assert (
            os.sched_getscheduler(worker),
            os.getpriority(os.PRIO_PROCESS, worker),
        ) == (os.SCHED_OTHER, maker[2])
    finally:
        pool.stop()
