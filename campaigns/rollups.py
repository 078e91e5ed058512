"""Hourly sums for the reports: agent time per state and pause code (from agent_state_changes)
and dispositions per code (from dispositions), so a report over months reads a few rows per
hour instead of every change or disposition.

Each roll-up sums whole hours (UTC) up to `LAG` before now, and records how far it got in
`rollup_marks`; the hours after the mark are summed from the source rows when read (an hour
and a few minutes at most once `catch_up` ran). `LAG` leaves time for the transactions that
write a change stamped a little in the past (a node records a bridge at the moment it
happened) to commit before their hour is summed.

`agent_time` is pure: state changes in, seconds per hour out. `catch_up` is the shell that
reads and writes; the reports call it before they read (it does nothing until an hour has
passed), and a scheduler may call it too.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, case, delete, func, insert, select
from sqlalchemy.sql import ColumnElement

from campaigns.models import (
    AgentStateChange,
    AgentStateHour,
    Disposition,
    DispositionHour,
    Lead,
    RollupMark,
    User,
    utcnow,
)

HOUR = dt.timedelta(hours=1)
LAG = dt.timedelta(minutes=5)
AGENT_STATES = "agent_state_hours"
DISPOSITIONS = "disposition_hours"
# A first roll-up over a long history is summed a week per transaction, so it never holds
# SQLite's write lock for long.
CHUNK = dt.timedelta(days=7)
# Time in these states is not work: it is not summed.
NOT_WORKING = frozenset({"logged_out"})
# Any fixed number: the PostgreSQL advisory lock that makes one process roll up at a time.
ROLLUP_LOCK = 0x726F6C6C  # "roll"


def floor_hour(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def ceil_hour(moment: dt.datetime) -> dt.datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + HOUR


def split_by_hour(start: dt.datetime, end: dt.datetime) -> Iterator[tuple[dt.datetime, float]]:
    """(hour, seconds of [start, end) in that hour) for each UTC hour the interval touches."""
    hour = floor_hour(start)
    while hour < end:
        following = hour + HOUR
        seconds = (min(end, following) - max(start, hour)).total_seconds()
        if seconds > 0:
            yield hour, seconds
        hour = following


@dataclass(frozen=True)
class StateChange:
    """An agent entered `state` (with `pause_code`) in `campaign_id` at `at`."""

    user_id: int
    campaign_id: int | None
    state: str
    pause_code: str | None
    at: dt.datetime


# (user, campaign, state, pause code or "", hour)
AgentKey = tuple[int, int, str, str, dt.datetime]


@dataclass
class Time:
    seconds: float = 0.0
    entries: int = 0


def agent_time(
    heads: dict[int, StateChange],
    changes: Iterable[StateChange],
    start: dt.datetime,
    end: dt.datetime,
) -> dict[AgentKey, Time]:
    """Seconds each agent spent in each state between `start` and `end`, per hour, and how
    many times they entered it in that hour. `heads` holds each agent's last change before
    `start` (the state they were in then); `changes` are those from `start` to `end`, in any
    order. The last state of each agent lasts until `end`. Time logged out, or with no
    campaign, is not work and is left out."""
    by_user: dict[int, list[StateChange]] = defaultdict(list)
    for change in changes:
        by_user[change.user_id].append(change)
    totals: dict[AgentKey, Time] = defaultdict(Time)
    for user_id in by_user.keys() | heads.keys():
        mine = sorted(by_user.get(user_id, ()), key=lambda c: c.at)
        head = heads.get(user_id)
        timeline = ([head] if head is not None else []) + mine
        for current, following in zip(timeline, [*timeline[1:], None], strict=True):
            if current.state in NOT_WORKING or current.campaign_id is None:
                continue
            begin = max(current.at, start)
            until = min(following.at if following is not None else end, end)
            code = current.pause_code or ""
            for hour, seconds in split_by_hour(begin, until):
                key = (user_id, current.campaign_id, current.state, code, hour)
                totals[key].seconds += seconds
            if start <= current.at < end:
                entered = floor_hour(current.at)
                totals[(user_id, current.campaign_id, current.state, code, entered)].entries += 1
    return dict(totals)


# -- reading the source rows


def _change(row: Any) -> StateChange:
    return StateChange(row.user_id, row.campaign_id, row.state, row.pause_code, row.at)


def heads_at(connection: Connection, moment: dt.datetime) -> dict[int, StateChange]:
    """Each agent's last state change before `moment` (through the (user, at) index, one
    look-up per user)."""
    latest = (
        select(AgentStateChange.id)
        .where(AgentStateChange.user_id == User.id, AgentStateChange.at < moment)
        .order_by(AgentStateChange.at.desc(), AgentStateChange.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    ids = [i for i in connection.scalars(select(latest)) if i is not None]
    if not ids:
        return {}
    rows = connection.execute(select(AgentStateChange).where(AgentStateChange.id.in_(ids)))
    return {row.user_id: _change(row) for row in rows}


def changes_between(
    connection: Connection, start: dt.datetime, end: dt.datetime
) -> Iterator[StateChange]:
    rows = connection.execute(
        select(AgentStateChange)
        .where(AgentStateChange.at >= start, AgentStateChange.at < end)
        .execution_options(yield_per=10_000)
    )
    for row in rows:
        yield _change(row)


def agent_time_between(
    connection: Connection, start: dt.datetime, end: dt.datetime
) -> dict[AgentKey, Time]:
    """agent_time from the change rows themselves (a short window: the hours not rolled up)."""
    if end <= start:
        return {}
    return agent_time(
        heads_at(connection, start), changes_between(connection, start, end), start, end
    )


def _hour_of(connection: Connection, column: Any) -> Any:
    if connection.dialect.name == "postgresql":
        # In UTC whatever the session's zone (a zone half an hour off would shift the hours).
        return func.date_trunc("hour", func.timezone("UTC", column))
    return func.strftime("%Y-%m-%d %H:00:00", column)


def seconds_between(connection: Connection, start: Any, end: Any) -> Any:
    """The seconds from `start` to `end` (two timestamp columns), computed by the database."""
    if connection.dialect.name == "postgresql":
        return func.extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def _as_hour(value: Any) -> dt.datetime:
    if isinstance(value, str):  # SQLite's strftime
        value = dt.datetime.fromisoformat(value)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _promised() -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    promise = Disposition.promise_amount.is_not(None)
    return (
        func.coalesce(func.sum(case((promise, 1), else_=0)), 0),
        func.coalesce(func.sum(Disposition.promise_amount), 0),
    )


@dataclass
class DispositionCount:
    count: int = 0
    promises: int = 0
    promised: Decimal = Decimal(0)


def dispositions_between(
    connection: Connection, start: dt.datetime, end: dt.datetime, *, by_hour: bool = False
) -> dict[tuple[int, str, dt.datetime | None], DispositionCount]:
    """Dispositions recorded in [start, end) per (campaign, code[, hour])."""
    if end <= start:
        return {}
    promises, promised = _promised()
    hour = _hour_of(connection, Disposition.created_at).label("hour")
    columns: list[Any] = [Lead.campaign_id, Disposition.code]
    if by_hour:
        columns.append(hour)
    rows = connection.execute(
        select(*columns, func.count(), promises, promised)
        .join(Lead, Lead.id == Disposition.lead_id)
        .where(Disposition.created_at >= start, Disposition.created_at < end)
        .group_by(*columns)
    )
    found: dict[tuple[int, str, dt.datetime | None], DispositionCount] = {}
    for row in rows:
        if by_hour:
            campaign_id, code, at, count, promise_count, amount = row
            key = (campaign_id, code, _as_hour(at))
        else:
            campaign_id, code, count, promise_count, amount = row
            key = (campaign_id, code, None)
        found[key] = DispositionCount(int(count), int(promise_count), Decimal(str(amount or 0)))
    return found


# -- the roll-up


def marks(connection: Connection) -> dict[str, dt.datetime]:
    return dict(connection.execute(select(RollupMark.name, RollupMark.done_until)).all())


def _first_hour(connection: Connection, name: str) -> dt.datetime | None:
    column = AgentStateChange.at if name == AGENT_STATES else Disposition.created_at
    first = connection.scalar(select(func.min(column)))
    return None if first is None else floor_hour(first)


def _roll_up_agents(connection: Connection, start: dt.datetime, end: dt.datetime) -> None:
    connection.execute(
        delete(AgentStateHour).where(AgentStateHour.hour >= start, AgentStateHour.hour < end)
    )
    rows = [
        {
            "user_id": user_id,
            "campaign_id": campaign_id,
            "state": state,
            "pause_code": code,
            "hour": hour,
            "seconds": time.seconds,
            "entries": time.entries,
        }
        for (user_id, campaign_id, state, code, hour), time in agent_time_between(
            connection, start, end
        ).items()
    ]
    for at in range(0, len(rows), 5000):
        connection.execute(insert(AgentStateHour), rows[at : at + 5000])


def _roll_up_dispositions(connection: Connection, start: dt.datetime, end: dt.datetime) -> None:
    connection.execute(
        delete(DispositionHour).where(DispositionHour.hour >= start, DispositionHour.hour < end)
    )
    rows = [
        {
            "campaign_id": campaign_id,
            "code": code,
            "hour": hour,
            "count": counted.count,
            "promises": counted.promises,
            "promised": counted.promised,
        }
        for (campaign_id, code, hour), counted in dispositions_between(
            connection, start, end, by_hour=True
        ).items()
    ]
    for at in range(0, len(rows), 5000):
        connection.execute(insert(DispositionHour), rows[at : at + 5000])


ROLL_UPS = {AGENT_STATES: _roll_up_agents, DISPOSITIONS: _roll_up_dispositions}


def target_hour(now: dt.datetime) -> dt.datetime:
    """Hours before this one may be summed for good."""
    return floor_hour(now - LAG)


def catch_up(engine: Engine, now: dt.datetime | None = None) -> int:
    """Sums the hours each roll-up has not summed yet, up to `target_hour(now)`; returns how
    many hours it summed (0 when every roll-up is up to date: one read, no write)."""
    target = target_hour(now or utcnow())
    with engine.connect() as connection:
        done = marks(connection)
    if all(done.get(name, dt.datetime.min.replace(tzinfo=dt.UTC)) >= target for name in ROLL_UPS):
        return 0
    summed = 0
    for name, roll_up in ROLL_UPS.items():
        while True:
            with engine.connect() as connection:
                if connection.dialect.name == "sqlite":
                    # The write lock up front: two consoles summing at once take turns.
                    connection = connection.execution_options(sqlite_begin="BEGIN IMMEDIATE")
                with connection.begin():
                    if connection.dialect.name == "postgresql":
                        connection.execute(select(func.pg_advisory_xact_lock(ROLLUP_LOCK)))
                    start = marks(connection).get(name) or _first_hour(connection, name) or target
                    if start >= target:
                        break
                    end = min(target, start + CHUNK)
                    roll_up(connection, start, end)
                    mark = {"name": name, "done_until": end}
                    updated = connection.execute(
                        RollupMark.__table__.update()
                        .where(RollupMark.name == name)
                        .values(done_until=end)
                    )
                    if updated.rowcount == 0:
                        connection.execute(insert(RollupMark), [mark])
                    summed += round((end - start) / HOUR)
    return summed
