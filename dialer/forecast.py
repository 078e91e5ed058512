"""The campaign forecaster: a campaign's observed statistics run through the simulator under
every dial mode and ratio, so a manager sees contacts per hour, utilisation and abandon rate
before choosing. Pure given the statistics; `observed_stats` is the one database reader."""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.models import MAX_ABANDON_TARGET, CallAttempt, Campaign, Disposition
from dialer.pacing import make_pacer
from dialer.simulate import Workload, load_workloads, simulate

# What each forecast row runs: a label, the mode and its settings.
CHOICES: tuple[tuple[str, str, dict[str, float]], ...] = (
    ("progressive", "progressive", {}),
    ("power 1.5", "power", {"ratio": 1.5}),
    ("power 2", "power", {"ratio": 2.0}),
    ("power 2.5", "power", {"ratio": 2.5}),
    ("power 3", "power", {"ratio": 3.0}),
    ("predictive", "predictive", {}),
)
# Below this many attempts the campaign's own shares are noise: the forecast says so.
MIN_ATTEMPTS = 200


@dataclass(frozen=True)
class CampaignStats:
    agents: int
    live_rate: float
    machine_rate: float
    busy_rate: float
    sit_rate: float
    talk_mean: float
    talk_cv: float
    wrap_mean: float
    attempts: int = 0  # attempts the shares come from; 0 means the defaults below
    # How long persons and machines ring before they answer, how long the campaign rings
    # before giving up, and how wrap-ups vary: measured when there are enough calls, else the
    # simulator's defaults (workloads.json).
    live_pickup_median: float = 9.0
    machine_pickup_median: float = 17.0
    ring_timeout: float = 25.0
    wrap_cv: float = 0.5
    # The campaign's lines per agent (its max_lines shared by its agents; 4 when it sets none).
    lines_per_agent: float = 4
    # Its trunk's calls per second, when known: a cold start's burst leaves at that rate.
    calls_per_second: float | None = None
    # AMD's mistakes: persons hung up on as machines (abandons nobody sees), machines put
    # through to agents. A campaign's records cannot show them; a rehearsal against the
    # simulated carrier, which knows who answered, can (`dialer bench node`).
    amd_false_machine: float = 0.005
    amd_false_human: float = 0.10

    def __post_init__(self) -> None:
        if self.agents < 1:
            raise ValueError(f"agents {self.agents!r} must be at least 1")
        shares = (self.live_rate, self.machine_rate, self.busy_rate, self.sit_rate)
        if any(not 0.0 <= share <= 1.0 for share in shares) or sum(shares) > 1.0:
            raise ValueError(f"outcome shares {shares!r} must be in [0, 1] and sum to <= 1")
        if self.live_rate <= 0:
            raise ValueError("live_rate must be above 0: no call would ever reach an agent")
        if self.talk_mean <= 0 or self.wrap_mean < 0 or self.talk_cv <= 0:
            raise ValueError("talk_mean and talk_cv must be above 0, wrap_mean at least 0")

    @classmethod
    def typical(cls, agents: int) -> CampaignStats:
        """An average campaign (workload W3's figures): the forecast before any history."""
        spec = next(w for w in load_workloads()["workloads"] if w["name"].startswith("W3"))
        return cls(
            agents,
            spec["live_rate"],
            spec["machine_rate"],
            spec["busy_rate"],
            spec["sit_rate"],
            spec["talk_mean"],
            spec["talk_cv"],
            spec["wrap_mean"],
        )

    def workload(self, hours: float) -> Workload:
        defaults = load_workloads()["defaults"]
        fields = {f.name for f in dataclasses.fields(self)} - {"attempts"}
        spec = {name: getattr(self, name) for name in fields}
        return Workload.from_spec({"name": "forecast", **spec, "hours": hours}, defaults)


def observed_stats(
    session: Session,
    campaign_id: int,
    agents: int,
    days: int = 30,
    now: dt.datetime | None = None,
    latest: int | None = None,
) -> CampaignStats:
    """The campaign's outcome shares, talk and wrap-up times over the last `days` days (only
    its `latest` attempts, if given: enough for the shares, and a bounded read)."""
    since = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=days)
    ring, max_lines = session.execute(
        select(Campaign.ring_timeout_s, Campaign.max_lines).where(Campaign.id == campaign_id)
    ).one()
    ring_timeout = float(ring)
    lines_per_agent = max_lines / agents if max_lines else 4
    query = (
        select(
            CallAttempt.outcome,
            CallAttempt.answered_at,
            CallAttempt.ended_at,
            CallAttempt.id,
            CallAttempt.started_at,
            CallAttempt.bridged_at,
        )
        .where(CallAttempt.campaign_id == campaign_id, CallAttempt.started_at >= since)
        .where(CallAttempt.dial_mode == "automatic", CallAttempt.outcome.is_not(None))
    )
    if latest is not None:
        query = query.order_by(CallAttempt.started_at.desc()).limit(latest)
    rows = session.execute(query).all()
    if len(rows) < MIN_ATTEMPTS:
        typical = CampaignStats.typical(agents)
        return dataclasses.replace(
            typical, attempts=len(rows), ring_timeout=ring_timeout, lines_per_agent=lines_per_agent
        )
    counts: dict[str, int] = {}
    for outcome, *_ in rows:
        counts[outcome] = counts.get(outcome, 0) + 1
    total = len(rows)
    # Talk time runs from the bridge to an agent (the greeting and AMD are not talk); rows
    # from before bridges were recorded count from the answer.
    bridges = any(row.bridged_at is not None for row in rows)
    talks = [
        (ended - (bridged or answered)).total_seconds()
        for outcome, answered, ended, _, _, bridged in rows
        if outcome == "human"
        and answered
        and ended
        and ended > (bridged or answered)
        and (bridged is not None or not bridges)
    ]
    pickups: dict[str, list[float]] = {"human": [], "machine": []}
    for outcome, answered, _, _, started, _ in rows:
        if outcome in pickups and answered is not None and started is not None:
            pickups[outcome].append((answered - started).total_seconds())
    ends = {
        attempt: ended for outcome, _, ended, attempt, *_ in rows if outcome == "human" and ended
    }
    wraps = [
        (created - ends[attempt]).total_seconds()
        for attempt, created in session.execute(
            select(Disposition.attempt_id, Disposition.created_at).where(
                Disposition.attempt_id.in_(list(ends))
            )
        ).all()
        if attempt in ends and created >= ends[attempt]
    ]
    typical = CampaignStats.typical(agents)
    talk_mean = statistics.fmean(talks) if len(talks) >= 20 else typical.talk_mean
    talk_cv = (
        statistics.stdev(talks) / talk_mean if len(talks) >= 20 and talk_mean else typical.talk_cv
    )
    wrap_mean = statistics.fmean(wraps) if len(wraps) >= 20 else typical.wrap_mean
    wrap_cv = (
        statistics.stdev(wraps) / wrap_mean if len(wraps) >= 20 and wrap_mean else typical.wrap_cv
    )

    def pickup(outcome: str, default: float) -> float:
        found = pickups[outcome]
        return statistics.median(found) if len(found) >= 20 else default

    return CampaignStats(
        agents=agents,
        live_rate=(counts.get("human", 0) + counts.get("abandoned", 0)) / total,
        machine_rate=counts.get("machine", 0) / total,
        busy_rate=counts.get("busy", 0) / total,
        sit_rate=(counts.get("invalid", 0) + counts.get("congestion", 0)) / total,
        talk_mean=talk_mean,
        talk_cv=max(0.1, talk_cv),
        wrap_mean=wrap_mean,
        attempts=total,
        live_pickup_median=pickup("human", typical.live_pickup_median),
        machine_pickup_median=pickup("machine", typical.machine_pickup_median),
        ring_timeout=ring_timeout,
        wrap_cv=max(0.1, wrap_cv),
        lines_per_agent=lines_per_agent,
    )


def forecast(
    stats: CampaignStats,
    hours: float = 1.0,
    seeds: tuple[int, ...] = (0, 1, 2),
    abandon_cap: float | None = MAX_ABANDON_TARGET,
) -> list[dict[str, Any]]:
    """One row per dial mode and ratio: contacts per hour, utilisation, abandon rate."""
    workload = stats.workload(hours)
    rows = []
    for label, mode, settings in CHOICES:
        # The gate's 30-day cap as the node meets it: over it, one call per free agent.
        results = [
            simulate(workload, make_pacer(mode, **settings), seed, abandon_cap=abandon_cap)
            for seed in seeds
        ]
        logged_in = sum(r.logged_in for r in results)
        live = sum(r.live_answers for r in results)
        rows.append(
            {
                "mode": label,
                "contacts_per_hour": round(
                    sum(r.connects for r in results) / (hours * len(seeds)), 1
                ),
                "utilisation": round(sum(r.talk_time for r in results) / logged_in, 3),
                "abandon_rate": round(sum(r.abandoned for r in results) / live if live else 0.0, 4),
                "compliant": not live or sum(r.abandoned for r in results) / live <= 0.03,
                # What one shift of this length may give by chance: the 10th and 90th
                # percentiles of the seeds' own figures (a short run holds few abandons).
                "utilisation_range": _middle_80([r.utilisation for r in results], 3),
                "abandon_rate_range": _middle_80([r.abandon_rate for r in results], 4),
            }
        )
    return rows


def _middle_80(values: list[float], digits: int) -> tuple[float, float]:
    if len(values) < 2:
        return (round(values[0], digits),) * 2 if values else (0.0, 0.0)
    deciles = statistics.quantiles(values, n=10, method="inclusive")
    return round(deciles[0], digits), round(deciles[-1], digits)
