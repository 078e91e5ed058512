"""`dialer bench pacing`: every pacing mode over the workloads, seeds in parallel processes."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
from typing import Any

from dialer.pacing import make_pacer
from dialer.simulate import Result, clairvoyant, load_workloads, simulate, workloads

# Each mode with its one setting for every workload; clairvoyant is the bound, not a pacer.
MODES: dict[str, dict[str, float]] = {
    "progressive": {},
    "power": {"ratio": 2.0},
    "predictive": {},
    "clairvoyant": {},
}


def _run_one(args: tuple[str | None, str, str, int, float]) -> Result:
    path, workload_name, mode, seed, hours = args
    workload = next(w for w in workloads(path) if w.name == workload_name)
    workload = dataclasses.replace(workload, hours=hours)
    if mode == "clairvoyant":
        return clairvoyant(workload, seed)
    return simulate(workload, make_pacer(mode, **MODES[mode]), seed, mode)


def run(path: str | None, seeds: list[int], hours: float, modes: list[str]) -> list[dict[str, Any]]:
    """One row per workload and mode: figures pooled over seeds, plus the worst seed."""
    # The bound is always run: every row is measured against it.
    runs = modes if "clairvoyant" in modes else [*modes, "clairvoyant"]
    agents = {w.name: w.agents for w in workloads(path)}
    # The slowest jobs (large teams, the predictive model) first, so no core idles at the end.
    jobs = sorted(
        ((path, name, mode, seed, hours) for name in agents for mode in runs for seed in seeds),
        key=lambda job: -agents[job[1]] * (4 if job[2] == "predictive" else 1),
    )
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(os.cpu_count() or 1, mp_context=context) as pool:
        results = list(pool.map(_run_one, jobs, chunksize=1))
    reference = load_workloads(path).get("reference_results", {})
    rows = []
    for w in workloads(path):
        bound = [r for r in results if r.workload == w.name and r.mode == "clairvoyant"]
        bound_utilisation = sum(r.talk_time for r in bound) / sum(r.logged_in for r in bound)
        for mode in modes:
            mine = [r for r in results if r.workload == w.name and r.mode == mode]
            talk = sum(r.talk_time for r in mine)
            logged_in = sum(r.logged_in for r in mine)
            live = sum(r.live_answers for r in mine)
            utilisation = talk / logged_in
            short = w.name.split("-")[0]
            rows.append(
                {
                    "workload": w.name,
                    "mode": mode,
                    "seeds": len(mine),
                    "utilisation": round(utilisation, 3),
                    "connects_per_agent_hour": round(
                        sum(r.connects for r in mine) / (logged_in / 3600), 2
                    ),
                    "abandon_pooled": round(
                        sum(r.abandoned for r in mine) / live if live else 0, 4
                    ),
                    "abandon_worst_seed": round(max(r.abandon_rate for r in mine), 4),
                    "abandon_per_seed": [round(r.abandon_rate, 4) for r in mine],
                    "mean_wait_s": round(sum(r.mean_wait for r in mine) / len(mine), 1),
                    "ratio_to_bound": round(utilisation / bound_utilisation, 3),
                    "best_in_hindsight": reference.get("best_in_hindsight", {}).get(short),
                }
            )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'workload':26} {'mode':12} {'util':>6} {'conn/ah':>8} {'aband':>7} "
        f"{'worst':>7} {'wait s':>7} {'/bound':>7} {'hindsight':>9}  abandon % per seed"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['workload']:26} {r['mode']:12} {r['utilisation']:6.3f} "
            f"{r['connects_per_agent_hour']:8.2f} {r['abandon_pooled']:7.2%} "
            f"{r['abandon_worst_seed']:7.2%} {r['mean_wait_s']:7.1f} {r['ratio_to_bound']:7.3f} "
            f"{r['best_in_hindsight'] or '':>9}  "
            + " ".join(f"{rate * 100:.1f}" for rate in r["abandon_per_seed"])
        )
    return "\n".join(lines)
