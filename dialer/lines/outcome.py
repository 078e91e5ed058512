"""From what SIP said to the attempt's outcome: a pure function the worker and tests share.

Outcomes: human | machine (answered; the AMD verdict, "human" without AMD), busy, no_answer,
invalid (the number does not exist), congestion (the carrier is overloaded: retry later, not
the lead's fault), failed (anything else, our own faults included).

Kept deliberately simple: a 480 storm across many attempts is congestion in truth, but one
attempt cannot see a storm; the node that sees all outcomes is the place to detect it.
Special information tones (SIT) in early media are not detected yet, so an intercept that
answers 183 then ends with 404/410 is invalid, one that ends otherwise is failed.
"""

from __future__ import annotations

OUTCOMES = ("human", "machine", "busy", "no_answer", "invalid", "congestion", "failed")

BUSY = frozenset({486, 600})
NO_ANSWER = frozenset({408, 480})
INVALID = frozenset({404, 410, 484, 604})
CONGESTION = frozenset({503})


def classify(
    sip_code: int,
    *,
    answered: bool,
    ring_timed_out: bool = False,
    amd_verdict: str | None = None,
) -> str:
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
