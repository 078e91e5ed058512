"""The dialer node: the loop that owns the line pool, the campaign runners, the agent board,
the attempt ledger and the scheduler's jobs (ARCHITECTURE §3a)."""

from dialer.node.node import Node, default_node_name

__all__ = ["Node", "default_node_name"]
