"""`dialer bench amd`: the detector over the generated greeting corpus, frame by frame."""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dialer.amd import AmdSettings, Verdict, detect
from dialer.bench.amd_corpus import Greeting, generate, read_wav

KINDS = ("human", "machine", "notsure")


@dataclass(frozen=True, slots=True)
class Outcome:
    greeting: Greeting
    verdict: Verdict

    @property
    def correct(self) -> bool:
        # The live dialer connects "notsure" to an agent, exactly as a human.
        said_human = self.verdict.kind in ("human", "notsure")
        return said_human == (self.greeting.plan.truth == "human")


def classify(greetings: list[Greeting], settings: AmdSettings | None = None) -> list[Outcome]:
    return [Outcome(g, detect(read_wav(g.path).tobytes(), settings)) for g in greetings]


def _percentile(values: list[int], share: float) -> int | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def figures(outcomes: list[Outcome]) -> dict[str, Any]:
    """Confusion matrix, accuracy, humans taken for machines and decision times."""
    confusion = {truth: {kind: 0 for kind in KINDS} for truth in ("human", "machine")}
    for outcome in outcomes:
        confusion[outcome.greeting.plan.truth][outcome.verdict.kind] += 1
    humans = sum(confusion["human"].values())
    result: dict[str, Any] = {
        "greetings": len(outcomes),
        "confusion": confusion,
        "accuracy_pct": round(100 * sum(o.correct for o in outcomes) / max(1, len(outcomes)), 2),
        "humans_as_machine_pct": round(100 * confusion["human"]["machine"] / max(1, humans), 2),
        "reasons": dict(Counter(f"{o.verdict.kind}: {o.verdict.reason}" for o in outcomes)),
    }
    for truth in ("human", "machine"):
        times = [o.verdict.after_ms for o in outcomes if o.greeting.plan.truth == truth]
        median = statistics.median(times) if times else None
        result[f"{truth}_decision_ms"] = {"median": median, "p95": _percentile(times, 0.95)}
    return result


def table(result: dict[str, Any]) -> str:
    confusion = result["confusion"]
    transport = result.get("transport", "offline")
    lines = [
        f"greetings: {result['greetings']}  seed: {result.get('seed')}  ({transport})",
        f"{'truth/verdict':<16}" + "".join(f"{kind:>9}" for kind in KINDS),
    ]
    for truth in ("human", "machine"):
        lines.append(f"{truth:<16}" + "".join(f"{confusion[truth][k]:>9}" for k in KINDS))
    lines.append(f"accuracy (notsure counted as human): {result['accuracy_pct']}%")
    lines.append(f"humans classified as machine: {result['humans_as_machine_pct']}%")
    for truth in ("human", "machine"):
        times = result[f"{truth}_decision_ms"]
        lines.append(f"{truth} decision: median {times['median']} ms, p95 {times['p95']} ms")
    lines.append("verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(result["reasons"].items())))
    if transport == "sip":
        lines.append(
            f"same verdict as offline: {result['same_verdict_as_offline']}, "
            f"failed calls: {len(result['failed_calls'])}"
        )
        shift = result["decision_shift_ms"]
        lines.append(
            f"decision time through SIP minus offline: |median| {shift['median']} ms, "
            f"|p95| {shift['p95']} ms, largest {shift['largest']}"
        )
    return "\n".join(lines)


def run(
    count: int, seed: int, cache_dir: Path | None = None, settings: AmdSettings | None = None
) -> dict[str, Any]:
    outcomes = classify(generate(count, seed, cache_dir), settings)
    return {"seed": seed, **figures(outcomes)}


def run_sip(
    count: int, seed: int, cache_dir: Path | None = None, concurrency: int = 3
) -> dict[str, Any]:
    """The same corpus played by SIPp through real calls placed by the line pool; figures plus
    agreement with offline."""
    from dialer.bench.amd_sip import classify_over_sip

    greetings = generate(count, seed, cache_dir)
    offline = {o.greeting.path.stem: o.verdict for o in classify(greetings)}
    sip = classify_over_sip([(g.path.stem, g.path) for g in greetings], concurrency)
    outcomes, failed, same_kind, shifts = [], [], 0, {}
    for greeting in greetings:
        name = greeting.path.stem
        verdict = sip[name].verdict if name in sip else None
        if verdict is None:
            failed.append(name)
            continue
        outcomes.append(Outcome(greeting, verdict))
        same_kind += verdict.kind == offline[name].kind
        shifts[name] = verdict.after_ms - offline[name].after_ms
    return {
        "seed": seed,
        "transport": "sip",
        **figures(outcomes),
        "failed_calls": failed,
        "same_verdict_as_offline": f"{same_kind}/{len(outcomes)}",
        "decision_shift_ms": {
            "median": statistics.median(map(abs, shifts.values())) if shifts else None,
            "p95": _percentile([abs(v) for v in shifts.values()], 0.95),
            "largest": dict(sorted(shifts.items(), key=lambda item: -abs(item[1]))[:3]),
        },
    }
