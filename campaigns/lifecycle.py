"""Start, pause and stop: the campaign statuses a manager moves between. The node dials the
leads of active campaigns only, and acts on a change at its next look at the table."""

from __future__ import annotations

ACTIONS = ("start", "pause", "stop")
# action -> (statuses it applies to, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "start": (frozenset({"draft", "paused", "finished"}), "active"),
    "pause": (frozenset({"active"}), "paused"),
    "stop": (frozenset({"active", "paused"}), "finished"),
}


class LifecycleError(ValueError):
    pass


def next_status(status: str, action: str) -> str:
    """The status after `action`, or LifecycleError saying which actions the status allows."""
    if action not in TRANSITIONS:
        raise LifecycleError(f"{action!r} is not an action (accepted: {', '.join(ACTIONS)})")
    sources, target = TRANSITIONS[action]
    if status not in sources:
        allowed = available(status)
        raise LifecycleError(
            f"a {status} campaign cannot {action} "
            f"(it can: {', '.join(allowed) if allowed else 'nothing'})"
        )
    return target


def available(status: str) -> tuple[str, ...]:
    """The actions a campaign in `status` offers, in button order."""
    return tuple(a for a in ACTIONS if status in TRANSITIONS[a][0])
