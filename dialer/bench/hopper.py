"""`dialer bench hopper`: claim latency with millions of leads, in SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session

from campaigns import db
from campaigns.dispositions import install_catalogue
from campaigns.hopper import claim
from campaigns.models import Campaign, Lead, LeadList

# A weekday at 12:00 in New York: every generated lead is inside calling hours.
NOW = dt.datetime(2026, 6, 10, 16, tzinfo=dt.UTC)
BENCH_CAMPAIGN = "bench"
ZONES = ('["America/New_York"]', '["America/Chicago"]', '["America/Los_Angeles"]')


def _fill_sql(dialect: str, campaign_id: int, list_id: int, leads: int) -> str:
    """One INSERT ... SELECT over a generated series: the database writes the rows itself.
    Mix: 60% new, 20% recycled (4 in 7 due), 20% done, and 1 lead in 2,000 a callback (4 in 7
    due), priority 0-9. Due callbacks are few, as in a real list: the first claims take them and
    the rest take recycled and new leads, the hopper's everyday path."""
    if dialect == "sqlite":
        series = (
            f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {leads})"
        )
        source, now, offset = (
            "s",
            f"'{NOW:%Y-%m-%d %H:%M:%S}'",
            "datetime({now}, (({i} % 7) - 3) || ' days')",
        )
        zone = f"CASE i % 3 WHEN 0 THEN '{ZONES[0]}' WHEN 1 THEN '{ZONES[1]}' ELSE '{ZONES[2]}' END"
        truth = "1"
    else:
        series = ""
        source = f"generate_series(1, {leads}) AS s(i)"
        now, offset = (
            f"'{NOW.isoformat()}'::timestamptz",
            "{now} + ((({i} % 7) - 3) * interval '1 day')",
        )
        zone = f"(ARRAY['{ZONES[0]}', '{ZONES[1]}', '{ZONES[2]}'])[i % 3 + 1]::json"
        truth = "true"
    due = offset.format(now=now, i="i")
    return f"""
        {series}
        INSERT INTO leads (campaign_id, list_id, phone_e164, phone_type, region, state, time_zones,
            custom_fields, status, attempts, next_dial_at, priority, consent_automated, created_at)
        SELECT {campaign_id}, {list_id}, '+1' || (2000000000 + i), 'fixed_line', 'US', 'NY', {zone},
            '{{}}',
            CASE WHEN i % 20 < 12 THEN 'new' WHEN i % 20 < 16 THEN 'recycled'
                 WHEN i % 2000 = 1999 THEN 'callback' ELSE 'done' END,
            CASE WHEN i % 20 < 12 THEN 0 ELSE 1 + i % 4 END,
            CASE WHEN i % 20 < 12 OR i % 20 = 18 THEN NULL ELSE {due} END,
            i % 10, {truth}, {now}
        FROM {source}
    """


def _fill(engine: Engine, leads: int) -> int:
    """A bench campaign with `leads` generated leads; returns its id."""
    with Session(engine) as session:
        campaign = Campaign(name=BENCH_CAMPAIGN, kind="telemarketing", recycled_mix=0.3)
        campaign.lists.append(LeadList(name="bench"))
        session.add(campaign)
        session.flush()
        install_catalogue(session, campaign)
        session.commit()
        campaign_id, list_id = campaign.id, campaign.lists[0].id
    with engine.begin() as connection:
        fill = _fill_sql(engine.dialect.name, campaign_id, list_id, leads)
        if engine.dialect.paramstyle != "qmark":
            fill = fill.replace("%", "%%")  # psycopg reads % as a placeholder
        connection.exec_driver_sql(fill)
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("ANALYZE")
    return campaign_id


def _settle(engine: Engine) -> None:
    """The database as it is some time after a load: no claim pays for the load's aftermath."""
    if engine.dialect.name == "postgresql":
        # What autovacuum does to a table after a bulk load: without it the first claims set
        # the hint bits of every tuple they visit, and the figures measure that, not the hopper.
        # The checkpoint writes out the load's gigabytes now rather than under the claims
        # (it needs a superuser or the pg_checkpoint role).
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            connection.exec_driver_sql("VACUUM ANALYZE leads")
            connection.exec_driver_sql("CHECKPOINT")
    else:
        # What SQLite does when an importing process closes the database: the load's log goes
        # into the database now, not under the claims.
        raw = engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()


def _measure(
    engine: Engine, leads: int, claims: int, batch: int, campaign_id: int | None = None
) -> dict[str, float]:
    """Fills a new bench campaign (or claims from `campaign_id`, filled earlier) and times
    `claims` claims of `batch` leads."""
    started = time.perf_counter()
    if campaign_id is None:
        campaign_id = _fill(engine, leads)
    _settle(engine)
    loaded = time.perf_counter() - started
    latencies = []
    # The bench's own CPU time (hopper, gate, driver): unlike wall time, it hardly moves with
    # what else runs on the machine.
    cpu_started = time.process_time()
    for i in range(claims):
        started = time.perf_counter()
        got = claim(engine, campaign_id, batch, f"bench-{i % 4}", NOW)
        latencies.append((time.perf_counter() - started) * 1000)
        assert len(got) == batch, f"claim {i} returned {len(got)} leads"
    client_cpu = (time.process_time() - cpu_started) / claims * 1000
    latencies.sort()
    return {
        "leads": leads,
        "load_s": round(loaded, 1),
        "claims": claims,
        "batch": batch,
        "median_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2),
        "max_ms": round(latencies[-1], 2),
        "client_cpu_ms": round(client_cpu, 2),
    }


def run_sqlite(leads: int, claims: int, batch: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="dialer-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'hopper.db'}"
        db.upgrade(url)
        engine = db.make_engine(url)
        try:
            return _measure(engine, leads, claims, batch)
        finally:
            engine.dispose()


def run_postgres(
    url: str, leads: int, claims: int, batch: int, keep_schema: str | None = None
) -> dict[str, float]:
    """In a temporary schema; or in `keep_schema`, filled on first use and kept, so that later
    runs (another version of the hopper, say) skip the fill and claim the next leads."""
    if keep_schema is None:
        with db.migrated_schema(url, "bench_hopper") as scoped:
            engine = db.make_engine(scoped)
            try:
                return _measure(engine, leads, claims, batch)
            finally:
                engine.dispose()
    scoped = db.schema_url(url, keep_schema)
    admin = create_engine(url)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {keep_schema}")
    finally:
        admin.dispose()
    db.upgrade(scoped)
    engine = db.make_engine(scoped)
    try:
        with Session(engine) as session:
            filled = session.scalar(select(Campaign.id).where(Campaign.name == BENCH_CAMPAIGN))
            if filled is not None:
                found = session.scalar(select(func.count()).where(Lead.campaign_id == filled))
                if found != leads:
                    raise ValueError(
                        f"schema {keep_schema} holds {found} bench leads, not {leads}: "
                        f"drop it or pass --leads {found}"
                    )
        return _measure(engine, leads, claims, batch, filled)
    finally:
        engine.dispose()
