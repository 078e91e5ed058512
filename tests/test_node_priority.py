"""The node's priority: asked for through DIALER_NODE_NICE, applied to the node's thread only."""

from __future__ import annotations

import os
import threading

import pytest

from dialer.node.node import DEFAULT_NICE, NICE_VARIABLE, node_nice, raise_priority


def test_the_default_and_a_chosen_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NICE_VARIABLE, raising=False)
    assert node_nice() == DEFAULT_NICE
    monkeypatch.setenv(NICE_VARIABLE, " 5 ")
    assert node_nice() == 5
    monkeypatch.setenv(NICE_VARIABLE, "0")
    assert node_nice() == 0


@pytest.mark.parametrize("raw", ["high", "-21", "20", "1.5"])
def test_a_value_out_of_range_is_named(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(NICE_VARIABLE, raw)
    with pytest.raises(ValueError, match=f"{NICE_VARIABLE}='{raw}'.*-20 to 19"):
        node_nice()


def _nice_after(nice: int) -> tuple[int, int]:
    """(before, after) of a new thread asking for `nice`."""
    seen: list[int] = []

    def ask() -> None:
        thread = threading.get_native_id()
        seen.append(os.getpriority(os.PRIO_PROCESS, thread))
        raise_priority(nice)
        seen.append(os.getpriority(os.PRIO_PROCESS, thread))

    worker = threading.Thread(target=ask)
    worker.start()
    worker.join()
    return seen[0], seen[1]


def test_only_the_calling_thread_is_raised() -> None:
    process_before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    wanted = process_before - 3
    before, after = _nice_after(wanted)
    if os.geteuid() == 0:
        assert after == wanted
    else:  # no permission: the node runs as started, and says so in its log
        assert after == before
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == process_before


def test_a_lower_priority_is_never_taken() -> None:
    before, after = _nice_after(19)
    assert after == before


@pytest.mark.sip
@pytest.mark.skipif(os.geteuid() != 0, reason="raising a thread's priority needs root")
def test_line_workers_keep_the_pool_makers_priority() -> None:
    """The node's loop raises itself before it starts the pool: its workers, which carry the
    media, go back to the level of the thread that made the pool."""
    from dialer.lines import LinePool
    from sip_config import loads
    from tests.test_lines import trunk_table

    pool = LinePool(loads(trunk_table("carrier1", 5999)), workers=1)
    maker = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[int] = []

    def start_raised() -> None:
        raise_priority(maker - 5)
        pool.start()
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    starter = threading.Thread(target=start_raised)
    starter.start()
    starter.join()
    try:
        [worker] = pool.worker_pids()
        assert seen == [maker - 5]
        assert os.getpriority(os.PRIO_PROCESS, worker) == maker
    finally:
        pool.stop()
