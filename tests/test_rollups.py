"""Hourly sums for the reports: agent time split by hour (pure, for all inputs), and the roll-up
against the rows it sums, on SQLite and PostgreSQL (agent time reaches agent_state_changes
through the real trigger on agent_sessions)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from campaigns import reporting, rollups
from campaigns.models import (
    AgentSession,
    AgentStateHour,
    CallAttempt,
    Disposition,
    DispositionHour,
    Lead,
    RollupMark,
    User,
)
from tests.conftest import make_campaign

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
STATES = ("ready", "on_call", "wrap_up", "paused", "logged_out", "reserved")

instants = st.integers(0, 3 * 24 * 3600).map(lambda s: T0 + dt.timedelta(seconds=s))


@given(instants, st.integers(0, 5 * 24 * 3600))
def test_an_interval_split_by_hour_keeps_its_length_in_aligned_hours(
    start: dt.datetime, length: int
) -> None:
    end = start + dt.timedelta(seconds=length)
    parts = list(rollups.split_by_hour(start, end))
    assert sum(seconds for _, seconds in parts) == length
    for hour, seconds in parts:
        assert hour.minute == hour.second == hour.microsecond == 0
        assert 0 < seconds <= 3600
    hours = [hour for hour, _ in parts]
    assert hours == sorted(set(hours))


changes = st.lists(
    st.tuples(
        st.integers(1, 3),
        st.sampled_from(STATES),
        st.sampled_from([None, "LUNCH", "BREAK"]),
        instants,
        st.sampled_from([1, 2, None]),
    ),
    max_size=30,
)


def _changes(raw: list[tuple[int, str, str | None, dt.datetime, int | None]]) -> list:  # type: ignore[type-arg]
    return [rollups.StateChange(u, c, s, p, at) for u, s, p, at, c in raw]


def _working_seconds(timeline: list[rollups.StateChange], start: dt.datetime, end: dt.datetime):  # type: ignore[no-untyped-def]
    """The rule restated: each change's state lasts until the agent's next change."""
    total = 0.0
    ordered = sorted(timeline, key=lambda c: c.at)
    for i, change in enumerate(ordered):
        until = ordered[i + 1].at if i + 1 < len(ordered) else end
        if change.state == "logged_out" or change.campaign_id is None:
            continue
        overlap = (min(until, end) - max(change.at, start)).total_seconds()
        total += max(0.0, overlap)
    return total


def _heads_and_window(all_changes: list, start: dt.datetime, end: dt.datetime):  # type: ignore[no-untyped-def,type-arg]
    heads: dict[int, rollups.StateChange] = {}
    for change in sorted(all_changes, key=lambda c: c.at):
        if change.at < start:
            heads[change.user_id] = change
    window = [c for c in all_changes if start <= c.at < end]
    return heads, window


@settings(max_examples=300, deadline=None)
@given(changes, st.integers(0, 72), st.integers(1, 72))
def test_agent_time_counts_each_state_until_the_next_change_and_sums_across_any_split(
    raw: list, start_h: int, hours: int
) -> None:  # type: ignore[type-arg]
    everything = _changes(raw)
    start = T0 + dt.timedelta(hours=start_h)
    end = start + dt.timedelta(hours=hours)
    heads, window = _heads_and_window(everything, start, end)
    whole = rollups.agent_time(heads, window, start, end)
    for user in (1, 2, 3):
        timeline = [c for c in everything if c.user_id == user and c.at < end]
        expected = _working_seconds(timeline, start, end)
        got = sum(t.seconds for k, t in whole.items() if k[0] == user)
        assert abs(got - expected) < 1e-6
    # Summed in two parts (the roll-up's hours, then the rows after the mark) it is the same.
    middle = start + dt.timedelta(hours=hours // 2)
    first = rollups.agent_time(*_heads_and_window(everything, start, middle), start, middle)
    second = rollups.agent_time(*_heads_and_window(everything, middle, end), middle, end)
    for key in whole.keys() | first.keys() | second.keys():
        parts = [part[key] for part in (first, second) if key in part]
        assert abs(sum(p.seconds for p in parts) - whole[key].seconds) < 1e-6
        assert sum(p.entries for p in parts) == whole[key].entries
    # Entries: each change into a working state inside the window, in its hour.
    entered = [c for c in window if c.state != "logged_out" and c.campaign_id is not None]
    assert sum(t.entries for t in whole.values()) == len(entered)


def test_segments_read_whole_rolled_hours_and_the_edges_raw() -> None:
    start = dt.datetime(2026, 3, 1, 5, 30, tzinfo=dt.UTC)  # a half-hour zone's midnight
    end = dt.datetime(2026, 3, 3, 5, 30, tzinfo=dt.UTC)
    mark = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
    rolled, raw = reporting.segments(start, end, mark)
    assert rolled == (dt.datetime(2026, 3, 1, 6, tzinfo=dt.UTC), mark)
    assert raw == [(start, dt.datetime(2026, 3, 1, 6, tzinfo=dt.UTC)), (mark, end)]
    assert reporting.segments(start, end, None) == (None, [(start, end)])
    assert reporting.segments(end, start, mark) == (None, [])


def _move(
    session: Session,
    user_id: int,
    campaign_id: int,
    state: str,
    at: dt.datetime,
    code: str | None = None,
) -> None:
    session.execute(
        update(AgentSession)
        .where(AgentSession.user_id == user_id)
        .values(state=state, state_since=at, pause_code=code, campaign_id=campaign_id)
    )
    session.commit()


def test_the_roll_up_sums_agent_time_and_dispositions_as_the_rows_do(
    engine: Engine, session: Session
) -> None:
    campaign = make_campaign(session, kind="collections")
    agent = User(username="ann", password_hash="!", role="agent")
    session.add(agent)
    session.flush()
    lead = Lead(
        campaign_id=campaign.id,
        list_id=campaign.lists[0].id,
        phone_e164="+12125550100",
        phone_type="fixed_line",
        region="US",
    )
    session.add(lead)
    session.flush()
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    session.add(
        AgentSession(
            user_id=agent.id,
            campaign_id=campaign.id,
            state="paused",
            state_since=start,
            pause_code="LOGIN",
        )
    )
    session.commit()
    # Ready 9:00:10, a call 9:30-10:15 (45 min across the hour), wrap-up 5 min, lunch, out.
    _move(session, agent.id, campaign.id, "ready", start + dt.timedelta(seconds=10))
    _move(session, agent.id, campaign.id, "on_call", start + dt.timedelta(minutes=30))
    _move(session, agent.id, campaign.id, "wrap_up", start + dt.timedelta(minutes=75))
    _move(session, agent.id, campaign.id, "paused", start + dt.timedelta(minutes=80), "LUNCH")
    _move(session, agent.id, campaign.id, "logged_out", start + dt.timedelta(minutes=140))
    for i, (code, amount) in enumerate([("PTP", Decimal("120.50")), ("RPC", None), ("PTP", None)]):
        attempt = CallAttempt(
            lead_id=lead.id,
            campaign_id=campaign.id,
            phone_e164=lead.phone_e164,
            started_at=start + dt.timedelta(minutes=20 * i),
        )
        session.add(attempt)
        session.flush()
        session.add(
            Disposition(
                attempt_id=attempt.id,
                lead_id=lead.id,
                code=code,
                promise_amount=amount,
                created_at=start + dt.timedelta(minutes=50 * i),
            )
        )
    session.commit()

    now = dt.datetime(2026, 3, 2, 12, 3, tzinfo=dt.UTC)
    period = (start - dt.timedelta(hours=1), now)
    before = reporting.agent_performance(session, *period)
    assert rollups.catch_up(engine, now) > 0
    # 12:03 is within LAG of 12:00: hours up to 11:00 are summed.
    with engine.connect() as connection:
        assert rollups.marks(connection) == {
            rollups.AGENT_STATES: dt.datetime(2026, 3, 2, 11, tzinfo=dt.UTC),
            rollups.DISPOSITIONS: dt.datetime(2026, 3, 2, 11, tzinfo=dt.UTC),
        }
    assert rollups.catch_up(engine, now) == 0
    session.commit()  # a new transaction: SQLite's reads see the snapshot they began with
    [after] = reporting.agent_performance(session, *period)
    assert [f.as_json() for f in before] == [after.as_json()]
    assert after.talk_s == 45 * 60 and after.wrap_s == 5 * 60 and after.calls == 1
    assert after.pause_by_code == {"LOGIN": 10.0, "LUNCH": 60 * 60.0}
    assert after.ready_s == 30 * 60 - 10
    rows = session.scalars(select(AgentStateHour).where(AgentStateHour.state == "on_call")).all()
    assert sorted((r.hour.hour, r.seconds, r.entries) for r in rows) == [
        (9, 30 * 60.0, 1),
        (10, 15 * 60.0, 0),
    ]

    totals = reporting.disposition_totals(session, [campaign.id], *period)[campaign.id]
    assert totals["PTP"].count == 2 and totals["PTP"].promises == 1
    assert totals["PTP"].promised == Decimal("120.50") and totals["RPC"].count == 1
    assert sum(r.count for r in session.scalars(select(DispositionHour))) == 3
    # A period that starts inside an hour reads that hour's edge from the rows.
    late = reporting.disposition_totals(
        session, [campaign.id], start + dt.timedelta(minutes=45), now
    )[campaign.id]
    assert {code: f.count for code, f in late.items()} == {"PTP": 1, "RPC": 1}
    assert session.scalar(select(RollupMark.done_until).where(RollupMark.name == "x")) is None
