"""`dialer bench why`: "why is nothing dialing?" on a campaign of a million leads, in SQLite and
PostgreSQL, at midday (most leads dialable) and at night (none: every window closed)."""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from campaigns import db
from campaigns.dispositions import install_catalogue
from campaigns.models import Campaign, LeadList
from campaigns.why import why
from dialer.bench.hopper import _settle

# A Wednesday: 16:00 UTC is noon in New York and 09:00 in Los Angeles (the campaign's hours
# are 09:00-20:00), 06:00 in Honolulu; 03:00 UTC is night in every US zone.
MIDDAY = dt.datetime(2026, 6, 10, 16, tzinfo=dt.UTC)
NIGHT = dt.datetime(2026, 6, 10, 3, tzinfo=dt.UTC)
BENCH_CAMPAIGN = "bench-why"
# (zones, share in 1,000) as a US list spreads: New York and Chicago time most, a few numbers
# whose area code spans two zones, and Hawaii and Alaska.
ZONE_SETS = (
    ('["America/New_York"]', 420),
    ('["America/Chicago"]', 260),
    ('["America/Denver"]', 50),
    ('["America/Phoenix"]', 30),
    ('["America/Los_Angeles"]', 200),
    ('["America/Chicago", "America/New_York"]', 20),
    ('["Pacific/Honolulu"]', 10),
    ('["America/Anchorage"]', 10),
)


class _Dialect:
    """What differs between the two databases in the generating statements."""

    def __init__(self, name: str) -> None:
        self.sqlite = name == "sqlite"

    def series(self, rows: int) -> tuple[str, str]:
        """A WITH clause (SQLite) and a FROM item numbering rows 1..rows as `i`."""
        if self.sqlite:
            return (
                f"WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {rows})",
                "s",
            )
        return "", f"generate_series(1, {rows}) AS s(i)"

    def moment(self, at: dt.datetime, minutes: str = "0") -> str:
        """`at` moved by an SQL expression of minutes, written as SQLAlchemy writes instants
        (SQLite compares them as text)."""
        if self.sqlite:
            moved = f"datetime('{at:%Y-%m-%d %H:%M:%S}', ({minutes}) || ' minutes')"
            return f"({moved} || '.000000')"
        return f"('{at.isoformat()}'::timestamptz + ({minutes}) * interval '1 minute')"

    def json(self, text: str) -> str:
        return f"'{text}'" if self.sqlite else f"'{text}'::json"

    def truth(self, condition: str) -> str:
        return f"({condition})" if self.sqlite else f"({condition})::boolean"


def _zone(d: _Dialect) -> str:
    cases, upto = [], 0
    for zones, share in ZONE_SETS:
        upto += share
        cases.append(f"WHEN i % 1000 < {upto} THEN {d.json(zones)}")
    return "CASE " + " ".join(cases) + " END"


def _leads_sql(d: _Dialect, campaign_id: int, list_id: int, leads: int, collections: bool) -> str:
    """A working list: 60% new (one in twenty put off 15 minutes by the hopper), 20% recycled
    (due within three days either way, a few at the attempt limit), 20% closed (done, dnc,
    invalid), one lead in 2,000 a callback; FL 7% and OK 1% of the numbers; 85% of numbers of a
    type that may be mobile, 80% with consent to automated calls."""
    with_, source = d.series(leads)
    account = "'ACC-' || i" if collections else "NULL"
    return f"""
        {with_}
        INSERT INTO leads (campaign_id, list_id, phone_e164, phone_type, region, state,
            time_zones, custom_fields, status, attempts, next_dial_at, priority,
            consent_automated, account_ref, created_at)
        SELECT {campaign_id}, {list_id}, '+1' || (2000000000 + i),
            CASE WHEN i % 20 < 17 THEN 'fixed_line_or_mobile' WHEN i % 20 < 19 THEN 'fixed_line'
                 ELSE 'voip' END,
            'US',
            CASE WHEN i % 97 < 7 THEN 'FL' WHEN i % 97 = 7 THEN 'OK' WHEN i % 97 < 30 THEN 'NY'
                 WHEN i % 97 < 50 THEN 'TX' WHEN i % 97 < 70 THEN 'CA' ELSE 'IL' END,
            {_zone(d)}, {d.json("{}")},
            CASE WHEN i % 2000 = 1999 THEN 'callback' WHEN i % 20 < 12 THEN 'new'
                 WHEN i % 20 < 16 THEN 'recycled' WHEN i % 20 = 16 THEN 'dnc'
                 WHEN i % 20 = 17 THEN 'invalid' ELSE 'done' END,
            CASE WHEN i % 20 < 12 THEN 0 WHEN i % 200 = 13 THEN 6 ELSE 1 + i % 5 END,
            CASE WHEN i % 2000 = 1999 THEN {d.moment(MIDDAY, "(i % 7 - 3) * 1440 + i % 600")}
                 WHEN i % 20 < 12 AND i % 240 = 7 THEN {d.moment(MIDDAY, "15")}
                 WHEN i % 20 < 12 THEN NULL
                 WHEN i % 20 < 16 THEN {d.moment(MIDDAY, "(i % 7 - 3) * 1440 + i % 600")}
                 ELSE NULL END,
            i % 10, {d.truth("i % 5 < 4")}, {account}, {d.moment(MIDDAY, "-20000")}
        FROM {source}
    """


def _dnc_sql(d: _Dialect, leads: int) -> str:
    """A global do-not-call list of one number per 20 leads, half of them numbers of the
    campaign (put on the list after the import, which leaves listed numbers out)."""
    entries = max(1, leads // 20)
    with_, source = d.series(entries)
    return f"""
        {with_}
        INSERT INTO dnc_entries (phone_e164, scope, source, reason, created_at)
        SELECT '+1' || (2000000000 + i * 40 + 3 * (i % 2)), 'global', 'import', '',
            {d.moment(MIDDAY, "-43200")}
        FROM {source}
    """


def _attempts_sql(d: _Dialect, campaign_id: int, leads: int, collections: bool) -> str:
    """Each recycled or closed lead dialled once in the last 7 days (no answer, machine, busy,
    a person; one live answer in 47 abandoned, one in 3 a conversation); one recycled FL or OK
    lead in 7 three times in the last 24 hours (its state's cap); for collections one debt in
    500 seven times in 7 days."""
    with_, source = d.series(leads)
    account = "'ACC-' || l_i" if collections else "NULL"
    outcome = (
        "CASE WHEN p.i % 23 < 10 THEN 'no_answer' WHEN p.i % 23 < 15 THEN 'machine' "
        "WHEN p.i % 23 < 17 THEN 'busy' ELSE 'human' END"
    )
    human = "p.i % 23 >= 17"
    picked = f"""
        SELECT i AS l_i, i AS i, {d.moment(MIDDAY, "-(i % 10080)")} AS started
        FROM {source} WHERE i % 20 >= 12
        UNION ALL
        SELECT i, i * 7 + k, {d.moment(MIDDAY, "-(k * 400 + i % 300)")}
        FROM {source}, (SELECT 0 AS k UNION ALL SELECT 1 UNION ALL SELECT 2) AS three
        WHERE i % 97 < 8 AND i % 20 BETWEEN 12 AND 15 AND i % 7 = 0
    """
    if collections:
        picked += f"""
        UNION ALL
        SELECT i, i * 11 + k, {d.moment(MIDDAY, "-(k * 1300 + 30 + i % 60)")}
        FROM {source}, (SELECT 0 AS k UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3
            UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6) AS seven
        WHERE i % 500 = 13
        """
    return f"""
        {with_}
        INSERT INTO call_attempts (lead_id, campaign_id, phone_e164, account_ref, dial_mode,
            started_at, outcome, abandoned, safe_harbor_played, conversation)
        SELECT l.id, {campaign_id}, l.phone_e164, {account}, 'automatic', p.started,
            {outcome},
            {d.truth(f"{human} AND p.i % 47 = 5")}, {d.truth(f"{human} AND p.i % 47 = 5")},
            {d.truth(f"{human} AND p.i % 3 = 0")}
        FROM ({picked}) AS p
        JOIN leads l
            ON l.campaign_id = {campaign_id} AND l.phone_e164 = '+1' || (2000000000 + p.l_i)
    """


def _fill(engine: Engine, leads: int, kind: str) -> None:
    with Session(engine) as session:
        campaign = Campaign(name=BENCH_CAMPAIGN, kind=kind, dial_mode="predictive", status="active")
        campaign.lists.append(LeadList(name="bench"))
        session.add(campaign)
        session.flush()
        install_catalogue(session, campaign)
        session.commit()
        campaign_id, list_id = campaign.id, campaign.lists[0].id
    d = _Dialect(engine.dialect.name)
    collections = kind == "collections"
    with engine.begin() as connection:
        for statement in (
            _leads_sql(d, campaign_id, list_id, leads, collections),
            _dnc_sql(d, leads),
            _attempts_sql(d, campaign_id, leads, collections),
        ):
            if not d.sqlite:
                statement = statement.replace("%", "%%")  # psycopg reads % as a placeholder
            connection.exec_driver_sql(statement)
        if d.sqlite:
            connection.exec_driver_sql("ANALYZE")
    if not d.sqlite:
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT")
            for table in ("dnc_entries", "call_attempts"):
                connection.exec_driver_sql(f"VACUUM ANALYZE {table}")


def _measure(engine: Engine, leads: int, kind: str, runs: int) -> list[dict[str, Any]]:
    started = time.perf_counter()
    _fill(engine, leads, kind)
    _settle(engine)
    loaded = round(time.perf_counter() - started, 1)
    results = []
    for at in (MIDDAY, NIGHT):
        timings = []
        # This process's CPU (with SQLite, the database's work too): the load hardly moves it.
        cpu_started = time.process_time()
        for _ in range(runs):
            started = time.perf_counter()
            explanation = why(engine, BENCH_CAMPAIGN, at)
            timings.append(time.perf_counter() - started)
        results.append(
            {
                "leads": leads,
                "kind": kind,
                "load_s": loaded,
                "at": at.isoformat(),
                "best_s": round(min(timings), 3),
                "median_s": round(sorted(timings)[len(timings) // 2], 3),
                "worst_s": round(max(timings), 3),
                "cpu_s": round((time.process_time() - cpu_started) / runs, 3),
                "runs": runs,
                "explanation": replace(explanation, elapsed_s=min(timings)),
            }
        )
    return results


def run_sqlite(leads: int, kind: str, runs: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="dialer-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'why.db'}"
        db.upgrade(url)
        engine = db.make_engine(url)
        try:
            return _measure(engine, leads, kind, runs)
        finally:
            engine.dispose()


def run_postgres(url: str, leads: int, kind: str, runs: int) -> list[dict[str, Any]]:
    with db.migrated_schema(url, "bench_why") as scoped:
        engine = db.make_engine(scoped)
        try:
            return _measure(engine, leads, kind, runs)
        finally:
            engine.dispose()
