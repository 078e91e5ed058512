"""From what SIP said to the attempt's outcome: a pure function the worker and tests share.

Outcomes: human | machine (answered; the AMD verdict, "human" without AMD), busy, no_answer,
invalid (the number does not exist), congestion (the carrier is overloaded: retry later, not
the lead's fault), failed (anything else, our own faults included).

One attempt's 480 is a no-answer; a 480 storm across a trunk's attempts is congestion, which
one attempt cannot see: `StormWatch` judges it where every attempt's end passes (the pool).
A special information tone (SIT, `dialer.sit`) heard by the call's tap outranks the SIP code
and the answer: carriers play their "not in service" or "all circuits are busy" announcements
in early media and then end with any code, or answer first and play them.
"""

from __future__ import annotations

from collections import deque

OUTCOMES = ("human", "machine", "busy", "no_answer", "invalid", "congestion", "failed")

BUSY = frozenset({486, 600})
NO_ANSWER = frozenset({408, 480})
INVALID = frozenset({404, 410, 484, 604})
CONGESTION = frozenset({503})
# The tap's SIT verdicts (dialer.sit.SIT_CODES): a bad number, a busy network, or neither.
SIT_OUTCOMES = {
    "sit_intercept": "invalid",
    "sit_vacant": "invalid",
    "sit_no_circuit": "congestion",
    "sit_reorder": "congestion",
    "sit_other": "failed",
}


def classify(
    sip_code: int,
    *,
    answered: bool,
    ring_timed_out: bool = False,
    amd_verdict: str | None = None,
) -> str:
    if amd_verdict in SIT_OUTCOMES:
        return SIT_OUTCOMES[amd_verdict]
    if answered:
        return amd_verdict if amd_verdict in ("human", "machine") else "human"
    if ring_timed_out:
        return "no_answer"
    if sip_code in BUSY:
        return "busy"
    if sip_code in NO_ANSWER:
        return "no_answer"
    if sip_code in INVALID:
        return "invalid"
    if sip_code in CONGESTION:
        return "congestion"
    return "failed"


class StormWatch:
    """A carrier short of capacity answers 480 Temporarily Unavailable to many calls at once,
    where one person's phone gives it alone. When at least `share` of a trunk's last `window`
    unanswered attempts, ended within `seconds`, were 480s, a 480 on that trunk is congestion
    (retry the lead later, and the node may slow the trunk), not the lead's no-answer."""

    def __init__(self, window: int = 20, share: float = 0.5, seconds: float = 10.0) -> None:
        self.window, self.share, self.seconds = window, share, seconds
        self.recent: dict[str, deque[tuple[float, bool]]] = {}

    def outcome(self, trunk: str, sip_code: int, outcome: str, now: float) -> str:
        """`outcome` as classified for the attempt alone, or congestion in a 480 storm.
        `now` is on a monotonic clock; every unanswered attempt's end must be passed in."""
        if outcome not in ("no_answer", "busy", "invalid", "congestion", "failed"):
            return outcome
        recent = self.recent.setdefault(trunk, deque(maxlen=self.window))
        recent.append((now, sip_code == 480))
        if sip_code != 480:
            return outcome
        storm = sum(1 for at, was_480 in recent if was_480 and now - at <= self.seconds)
        return "congestion" if storm >= self.share * self.window else outcome
