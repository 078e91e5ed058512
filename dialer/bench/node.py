"""`dialer bench node`: a whole campaign on this machine, for real. SIPp is the carrier (the
demo's weighted mix of people, voicemail, busy, no answer and dead numbers, with the pacing
workloads' pickup times) and the agents' phones; simulated agents log in and work the calls
through the agent service; one node dials a predictive campaign for `minutes`.

Printed: the decision loop's time per decision (median, p99), calls per second, live answers,
abandon rate, agent utilisation, CPU per call (node with its workers and bots; SIPp apart),
screen-pop latency (the bridge to the agent's state and screen pop on record), worker exits,
and the reconciliation of attempt rows against the INVITEs SIPp received. Then the same
campaign's statistics, as recorded, through `dialer forecast`, side by side with what the
node did. Figures, never asserts.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import datetime as dt
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

from sqlalchemy import insert, select

from campaigns import db
from campaigns.manage import add_agent, create_campaign, steer
from campaigns.models import AgentStateChange, CallAttempt, Campaign, Lead, utcnow
from dialer.bench.connect import _percentile, _uptime
from dialer.bench.sip import _cpu_seconds
from dialer.demo.agents import Range
from dialer.demo.carrier import SimulatedCarrier
from dialer.demo.mix import DEFAULT_MIX, Mix
from dialer.demo.phones import AgentPhones
from dialer.demo.seed import numbers_in_hours
from dialer.forecast import forecast, observed_stats
from dialer.node.launch import build_node
from dialer.node.ledger import CANCELLED_REASON
from sip_config import loads

TRUNK = "bench"
LINES_PER_AGENT = 2.5
TRUNK_CPS = 50
# Calls in flight drain this long at most once the campaign is paused (talk is 90 s at most).
DRAIN_S = 120.0


def run(
    agents: int,
    minutes: float,
    *,
    mix: str = DEFAULT_MIX,
    talk: str = "20-90",
    wrap: str = "5-15",
    workers: int | None = None,
    seed: int = 1,
    forecast_seeds: int = 20,
    database_url: str | None = None,
) -> dict[str, Any]:
    """`database_url`: a PostgreSQL database, in a new schema dropped afterwards (the multi-node
    mode's database); default a temporary SQLite file (the product's default)."""
    # The simulated agents' log is read if they die.
    with (
        tempfile.TemporaryDirectory(prefix="bench-node-") as folder,
        tempfile.TemporaryFile() as bots_log,
        contextlib.ExitStack() as stack,
    ):
        if database_url:
            url = stack.enter_context(db.migrated_schema(database_url, "bench_node"))
        else:
            url = f"sqlite:///{Path(folder) / 'bench.db'}"
            db.upgrade(url)
        engine = db.make_engine(url)
        carrier = SimulatedCarrier(mix)
        phones = AgentPhones()
        carrier.start()
        phones.start()
        try:
            return _run(
                engine,
                carrier,
                phones,
                bots_log,
                agents,
                minutes,
                talk,
                wrap,
                workers,
                seed,
                forecast_seeds,
            )
        finally:
            carrier.stop()
            phones.stop()
            engine.dispose()


def _run(
    engine: Any,
    carrier: SimulatedCarrier,
    phones: AgentPhones,
    bots_log: IO[bytes],
    agents: int,
    minutes: float,
    talk: str,
    wrap: str,
    workers: int | None,
    seed: int,
    forecast_seeds: int,
) -> dict[str, Any]:
    # Lines: room for the calls a predictive campaign keeps up at this mix (a call holds its
    # line ~30 s on average: 9 s to a person's answer and the talk, 25 s unanswered ...),
    # each with a second worker slot for its agent leg.
    lines = math.ceil(LINES_PER_AGENT * agents)
    config = loads(
        carrier.trunk_table(TRUNK, max_channels=lines, max_cps=TRUNK_CPS, ring_timeout=25)
    )
    sessions = db.session_factory(engine)
    with sessions() as session:
        campaign = create_campaign(
            session,
            "Bench",
            "telemarketing",
            dial_mode="predictive",
            max_lines=lines,
            trunk_name=TRUNK,
            seller_name="Bench Sales",
            callback_number="+12125550199",
            calling_days=list(range(7)),
            calling_start="08:00",
            calling_end="21:00",
            ring_timeout_s=25,
        )
        campaign_id, list_id = campaign.id, campaign.lists[0].id
        for i in range(agents):
            add_agent(session, f"bench{i:03d}", phones.uri(f"bench{i:03d}"), campaign)
    # Enough leads for the run several times over, in the zones inside calling hours now.
    leads = max(1000, agents * math.ceil(minutes) * 12)
    with engine.begin() as connection:
        connection.execute(
            insert(Lead),
            [
                {
                    "campaign_id": campaign_id,
                    "list_id": list_id,
                    "phone_e164": phone,
                    "phone_type": "fixed_line",
                    "region": region,
                    "time_zones": [zone],
                    "custom_fields": {},
                    "status": "new",
                }
                for phone, region, zone in numbers_in_hours(leads, utcnow())
            ],
        )
    for seconds in (talk, wrap):
        Range.parse(seconds)  # a bad range is refused here, not in the agents' process
    node = build_node(engine, config, name="bench", workers=workers or _workers(lines))
    node_thread = threading.Thread(target=node.run, name="node", daemon=True)
    node_thread.start()
    # The agents work in a process of their own, as people at their desktops do through the
    # console: their work does not share the node's interpreter.
    bots = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dialer",
            "simulate",
            "agents",
            "--campaign",
            "Bench",
            "--talk",
            talk,
            "--wrap",
            wrap,
            "--seed",
            str(seed),
        ],
        env={**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False)},
        stdout=subprocess.DEVNULL,
        stderr=bots_log,
    )
    try:
        pool = node.lines
        while not all(pool.worker_pids()):  # type: ignore[attr-defined]
            if not node_thread.is_alive():
                raise RuntimeError("the node stopped while starting (see the log above)")
            time.sleep(0.1)
        with sessions() as session:
            steer(session, session.get_one(Campaign, campaign_id), "start")
        started_wall, started = utcnow(), time.monotonic()
        cpu_before = _cpu(pool.worker_pids())  # type: ignore[attr-defined]
        sipp_before = _sipp_cpu(carrier, phones)
        samples = _sample(node, campaign_id, minutes * 60, bots, bots_log)
        ended_wall = utcnow()
        cpu_after = _cpu(pool.worker_pids())  # type: ignore[attr-defined]
        sipp_after = _sipp_cpu(carrier, phones)
        elapsed = time.monotonic() - started
        # Paused, not stopped: a stop also withdraws the calls the pool holds back for the
        # trunk's calls per second, whose rows then have no INVITE. Every call dialled runs its
        # course.
        with sessions() as session:
            steer(session, session.get_one(Campaign, campaign_id), "pause")
        drain_until = time.monotonic() + DRAIN_S
        while node.calls and time.monotonic() < drain_until:
            time.sleep(0.5)
    finally:
        node.request_stop()
        node_thread.join(60)
        bots.terminate()
        bots.wait(10)
    time.sleep(1.0)  # SIPp writes its last lines
    figures = _figures(
        engine, campaign_id, agents, started_wall, ended_wall, elapsed, node, carrier
    )
    figures["timeline"] = samples
    # The node's write transactions (SQLite) waiting for the write lock another held: while
    # the campaign runs, the simulated agents' process. The step's claim and dial are two.
    waits = sorted(1000 * s for tid, s in list(db.WRITE_LOCK_WAITS) if tid == node_thread.ident)
    figures["node_writes_waiting_over_1ms"] = (sum(w > 1 for w in waits), len(waits))
    figures["node_write_lock_wait_ms_p99_max"] = (
        _percentile(waits, 99),
        round(waits[-1], 1) if waits else None,
    )
    attempts = figures["attempts"]
    figures["cpu_ms_per_call"] = round(1000 * (cpu_after - cpu_before) / max(1, attempts), 1)
    figures["sipp_cpu_ms_per_call"] = round(1000 * (sipp_after - sipp_before) / max(1, attempts), 1)
    figures["worker_restarts"] = pool.restarts  # type: ignore[attr-defined]
    figures["worker_exits_not_clean"] = [
        code
        for _, code in pool.exits
        if code not in (0, None)  # type: ignore[attr-defined]
    ]
    figures.update(
        _forecast(engine, campaign_id, agents, minutes, forecast_seeds, figures, carrier.mix)
    )
    figures["uptime"] = _uptime()
    return figures


def _sample(
    node: Any,
    campaign_id: int,
    seconds: float,
    bots: subprocess.Popen[bytes],
    bots_log: IO[bytes],
    every: float = 30.0,
) -> list[str]:
    """What the campaign looked like every `every` seconds: agents idle/talk/wrap, calls
    dialing, up, and people waiting for an agent. A run whose agents died means nothing."""
    samples = []
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        time.sleep(min(every, seconds - elapsed))
        if bots.poll() is not None:
            bots_log.seek(0)
            error = bots_log.read().decode(errors="replace")[-2000:]
            raise RuntimeError(f"the simulated agents stopped (exit {bots.returncode}):\n{error}")
        runner = node.runners.get(campaign_id)
        if runner is None or runner.connector is None:
            continue
        try:  # the node's thread changes what is read here: a sample may be skipped
            view = runner.view(time.monotonic())
            up = len(runner.calls) - len(view.dialing)
        except RuntimeError:
            continue
        states = Counter(state for state, _ in view.agents)
        samples.append(
            f"{time.monotonic() - started:4.0f}s idle/talk/wrap "
            f"{states['idle']}/{states['talk']}/{states['wrap']} dialing {len(view.dialing)} "
            f"up {up} waiting {view.waiting}"
        )
    return samples


def _next_ready(abandoned: list[CallAttempt], readies: list[dt.datetime]) -> list[float]:
    delays = []
    for row in abandoned:
        if row.answered_at is None:
            continue
        verdict = row.answered_at + dt.timedelta(milliseconds=row.amd_ms or 0)
        later = bisect.bisect_left(readies, verdict)
        if later < len(readies):
            delays.append(round((readies[later] - verdict).total_seconds(), 2))
    return sorted(delays)


def _workers(lines: int) -> int:
    # Each customer call keeps a second slot for its agent leg; 4 slots a worker.
    return max(2, math.ceil(2 * lines / 4))


def _cpu(worker_pids: list[int]) -> float:
    """This process (node, bots, SQLite) and its line workers, in CPU-seconds."""
    return _cpu_seconds(os.getpid()) + sum(_cpu_seconds(pid) for pid in worker_pids if pid)


def _sipp_cpu(*peers: Any) -> float:
    return sum(_cpu_seconds(peer.pid) for peer in peers if peer.pid)


def _figures(
    engine: Any,
    campaign_id: int,
    agents: int,
    start: dt.datetime,
    end: dt.datetime,
    elapsed: float,
    node: Any,
    carrier: SimulatedCarrier,
) -> dict[str, Any]:
    with db.session_factory(engine)() as session:
        rows = session.scalars(
            select(CallAttempt).where(CallAttempt.campaign_id == campaign_id)
        ).all()
        readies = sorted(
            session.scalars(
                select(AgentStateChange.at).where(
                    AgentStateChange.campaign_id == campaign_id, AgentStateChange.state == "ready"
                )
            )
        )
    invites = carrier.invites()
    numbers = Counter(invite.number for invite in invites)
    dialled = Counter(row.phone_e164 for row in rows)
    # Who answered each call, as the carrier knows it (each number is dialled once here).
    branch = {invite.number: invite.branch for invite in invites}
    # Calls the node cancelled when the run ended are not the campaign's: left out.
    window = [
        row for row in rows if row.started_at < end and row.failure_reason != CANCELLED_REASON
    ]
    judged = Counter(f"{branch.get(row.phone_e164, '?')}->{row.outcome}" for row in window)
    live = [row for row in window if row.outcome == "human" or row.abandoned]
    abandoned = sum(row.abandoned for row in window)
    persons = [r for r in window if branch.get(r.phone_e164) == "human" and r.answered_at]
    machines = [r for r in window if branch.get(r.phone_e164) == "machine" and r.answered_at]
    hung_up_on = sum(r.outcome == "machine" for r in persons)  # abandons nobody sees
    # Talk is conversations with people: a machine AMD put through to an agent is no talk.
    talk = sum(
        (min(row.ended_at or end, end) - row.bridged_at).total_seconds()
        for row in rows
        if row.bridged_at is not None
        and row.bridged_at < end
        and branch.get(row.phone_e164) == "human"
    )
    runner = node.runners.get(campaign_id)
    decisions = sorted(1000 * d for d in (runner.figures.decisions if runner else []))
    pops = sorted(1000 * d for d in node.figures.screen_pop_latency)
    true_abandoned = sum(r.abandoned for r in persons) + hung_up_on
    return {
        "run": "node",
        "agents": agents,
        "minutes": round(elapsed / 60, 2),
        "attempts": len(window),
        "calls_per_second": round(len(window) / elapsed, 2),
        "outcomes": dict(Counter(row.outcome for row in window)),
        "carrier_branch_to_outcome": dict(sorted(judged.items())),
        "failure_reasons": dict(
            Counter(row.failure_reason for row in window if row.failure_reason)
        ),
        "live_answers": len(live),
        "connected": sum(row.bridged_at is not None for row in window),
        "abandoned": abandoned,
        "abandon_rate": round(abandoned / len(live), 4) if live else 0.0,
        # With what the carrier knows: people AMD took for machines were hung up on unheard.
        "persons_answered": len(persons),
        "abandon_rate_with_amd_misses": round(true_abandoned / len(persons), 4) if persons else 0,
        "amd_false_machine": round(hung_up_on / len(persons), 4) if persons else 0.0,
        "amd_false_human": round(sum(r.outcome == "human" for r in machines) / len(machines), 4)
        if machines
        else 0.0,
        "utilisation": round(talk / (agents * (end - start).total_seconds()), 3),
        "decisions": len(decisions),
        "decision_ms_median": _percentile(decisions, 50),
        "decision_ms_p99": _percentile(decisions, 99),
        **{
            f"{part}_ms_median_p99": (_percentile(times, 50), _percentile(times, 99))
            for part in ("decided", "claimed", "dialled")
            for times in (
                sorted(1000 * d for d in (getattr(runner.figures, part) if runner else [])),
            )
        },
        "screen_pop_ms_median": _percentile(pops, 50),
        "screen_pop_ms_p99": _percentile(pops, 99),
        # For each abandon: seconds from the AMD verdict to the next agent of the campaign going
        # ready. Within the node's window (0.85 s) it was a near miss; seconds later, a call
        # the pacer launched too early.
        "abandons_next_ready_s": _next_ready([row for row in window if row.abandoned], readies),
        "attempt_rows": len(rows),
        "invites_received": len(invites),
        "attempts_without_invite": sum((dialled - numbers).values()),
        # A dial withdrawn before its INVITE left (the node stopped at the drain's end) has a
        # row and no INVITE.
        "why_without_invite": dict(
            Counter(
                row.failure_reason or row.outcome
                for row in rows
                if dialled[row.phone_e164] > numbers[row.phone_e164]
            )
        ),
        "invites_without_attempt": sum((numbers - dialled).values()),
        "attempts_open": sum(row.ended_at is None for row in rows),
    }


def _forecast(
    engine: Any,
    campaign_id: int,
    agents: int,
    minutes: float,
    seeds: int,
    measured: dict[str, Any],
    mix: Mix,
) -> dict[str, Any]:
    """What `dialer forecast` predicts for this campaign, beside what the node did: the
    campaign's recorded talk, wrap-up and pickup times, and the carrier's mix and AMD's
    mistakes as the carrier knows them (a campaign's records cannot tell a person who hung up
    at the greeting from one AMD took for a machine), for a run as long as this one, the
    pacer starting cold as the node's did."""
    with db.session_factory(engine)() as session:
        recorded = observed_stats(session, campaign_id, agents, days=1)
    stats = dataclasses.replace(
        recorded,
        live_rate=mix.share("human") + mix.share("survey"),
        machine_rate=mix.share("machine"),
        busy_rate=mix.share("busy"),
        sit_rate=mix.share("invalid"),
        amd_false_machine=measured["amd_false_machine"],
        amd_false_human=measured["amd_false_human"],
        calls_per_second=TRUNK_CPS,
    )
    rows = forecast(stats, minutes / 60, tuple(range(seeds)))
    predicted = next(row for row in rows if row["mode"] == "predictive")
    utilisation, abandon = predicted["utilisation"], predicted["abandon_rate"]
    return {
        "forecast_utilisation": utilisation,
        "forecast_abandon_rate": abandon,
        "utilisation_vs_forecast": round(measured["utilisation"] / utilisation - 1, 3)
        if utilisation
        else None,
        "abandon_points_vs_forecast": round(
            100 * (measured["abandon_rate_with_amd_misses"] - abandon), 2
        ),
        # Where 8 in 10 simulated runs of this length fall: a run's distance from the forecast
        # inside it is chance.
        "forecast_utilisation_range": predicted["utilisation_range"],
        "forecast_abandon_rate_range": predicted["abandon_rate_range"],
        "forecast_inputs": {
            key: round(value, 3) if isinstance(value, float) else value
            for key, value in stats.__dict__.items()
        },
    }
