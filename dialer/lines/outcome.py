"""From what SIP said to the attempt's outcome: a pure function the worker and tests share.

Outcomes: human | machine (answered; the AMD verdict, "human" without AMD), busy, no_answer,
invalid (the number does not exist), congestion (the carrier is overloaded: retry later, not
the lead's fault), failed (anything else, our own faults included).

Kept deliberately simple: a 480 storm across many attempts is congestion in truth, but one
attempt cannot see a storm; the node that sees all outcomes is the place to detect it.
A special information tone (SIT, `dialer.sit`) heard by the call's tap outranks the SIP code
and the answer: carriers play their "not in service" or "all circuits are busy" announcements
in early media and then end with any code, or answer first and play them.
"""

from __future__ import annotations

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
