"""Starting a node with its line pool: for `dialer node`, `dialer serve` and the benches."""

from __future__ import annotations

import math
import signal
import threading
from types import FrameType

from sqlalchemy import Engine

from dialer.lines import LinePool
from dialer.lines.worker import SLOTS
from dialer.node.node import DEFAULT_GRACE_S, Node
from dialer.node.priority import NodePriority
from sip_config import SipConfig

# A worker costs ~29 MB; a node that needs more lines than this is given them with --workers.
MAX_DEFAULT_WORKERS = 32


def workers_for(config: SipConfig) -> int:
    """Enough workers for every trunk's channels, each customer call keeping a second slot
    for its agent leg, within a sensible default."""
    channels = sum(trunk.max_channels for trunk in config.trunks.values())
    return max(2, min(MAX_DEFAULT_WORKERS, math.ceil(2 * channels / SLOTS)))


def build_node(
    engine: Engine,
    config: SipConfig,
    *,
    name: str | None = None,
    workers: int | None = None,
    grace_s: float = DEFAULT_GRACE_S,
    bind_address: str = "127.0.0.1",
    priority: NodePriority | None = None,
) -> Node:
    pool = LinePool(config, workers=workers or workers_for(config), bind_address=bind_address)
    return Node(engine, pool, config, name=name, grace_s=grace_s, priority=priority)


def stop_on_signals(node: Node) -> None:
    """SIGTERM and Ctrl-C stop the node the graceful way (a second Ctrl-C still waits for it)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def stop(_signum: int, _frame: FrameType | None) -> None:
        node.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
