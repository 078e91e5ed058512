"""The node's priority on the machine: its loop and the line pool's supervisor run ahead of
everything else there (reports, an import, the line workers' media), so that a dialing step,
a bridge or a screen pop does not wait for a core.

As Asterisk's `highpriority` does on Linux: real-time round-robin (`SCHED_RR`) at priority 10,
and where that is refused, nice -10. Both threads are light (at 100 agents the loop is idle
three quarters of its time, the supervisor more), and the kernel keeps 5% of every second for
other work whatever a real-time thread does (`kernel.sched_rt_runtime_us`). Threads and
processes a raised thread starts are not raised (`SCHED_RESET_ON_FORK`): the line workers,
which carry the media and most of the CPU, stay at the level of the thread that made the pool.
Raising needs root or CAP_SYS_NICE (systemd: `AmbientCapabilities=CAP_SYS_NICE`; real-time
without either: `LimitRTPRIO=10`); without, the node runs as started and says so in its log.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

log = logging.getLogger(__name__)

DEFAULT_REALTIME = 10
DEFAULT_NICE = -10
REALTIME_VARIABLE = "DIALER_NODE_REALTIME"
NICE_VARIABLE = "DIALER_NODE_NICE"


@dataclass(frozen=True)
class NodePriority:
    # The SCHED_RR priority (1-99), or 0 for none: then `nice` alone.
    realtime: int = DEFAULT_REALTIME
    nice: int = DEFAULT_NICE


def _whole_number(variable: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    problem = f"{variable}={raw!r}: expected a whole number from {low} to {high}"
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(problem) from None
    if not low <= value <= high:
        raise ValueError(problem)
    return value


def node_priority() -> NodePriority:
    """The priority the node asks for: `DIALER_NODE_REALTIME` (0 for none, else 10) and
    `DIALER_NODE_NICE` (else -10, for when real time is refused or not asked for)."""
    return NodePriority(
        realtime=_whole_number(REALTIME_VARIABLE, DEFAULT_REALTIME, 0, 99),
        nice=_whole_number(NICE_VARIABLE, DEFAULT_NICE, -20, 19),
    )


def raise_priority(priority: NodePriority) -> None:
    """Raises the calling thread (on Linux a thread's own) to `priority`: real time if asked
    and allowed, else its nice value when that is higher than the thread has."""
    thread = threading.get_native_id()
    if priority.realtime:
        try:
            os.sched_setscheduler(
                thread,
                os.SCHED_RR | os.SCHED_RESET_ON_FORK,
                os.sched_param(priority.realtime),
            )
        except PermissionError:
            log.info(
                "real-time priority %d refused (needs root, CAP_SYS_NICE or an RLIMIT_RTPRIO):"
                " nice %d instead",
                priority.realtime,
                priority.nice,
            )
        else:
            log.info("node loop at real-time priority %d", priority.realtime)
            return
    if priority.nice >= os.getpriority(os.PRIO_PROCESS, thread):
        return
    try:
        os.setpriority(os.PRIO_PROCESS, thread, priority.nice)
    except PermissionError:
        log.info("node at normal priority: nice %d needs root or CAP_SYS_NICE", priority.nice)
