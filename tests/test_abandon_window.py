"""The gate's 30-day abandon window read from `campaign_answer_hours` (kept by triggers) and the
window's first hour equals counting every call of the 30 days, whatever the calls are written,
rewritten and deleted as (on SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, func, insert, select, update

from campaigns.compliance import ABANDON_WINDOW
from campaigns.hopper import abandon_window
from campaigns.models import (
    ABANDONED,
    LIVE_ANSWER,
    CallAttempt,
    Campaign,
    CampaignAnswerHour,
    Lead,
)
from tests.conftest import make_campaign

NOW = dt.datetime(2026, 6, 10, 16, 20, 30, 250_000, tzinfo=dt.UTC)
EDGE = NOW - ABANDON_WINDOW
OUTCOMES = (None, "human", "machine", "busy", "failed")

# When calls started: most around the window's first hour, where it is counted call by call,
# and exactly on its bounds.
starts = st.one_of(
    st.integers(-3 * 3600, 3 * 3600).map(lambda s: EDGE + dt.timedelta(seconds=s)),
    st.sampled_from([EDGE, EDGE.replace(minute=0, second=0, microsecond=0), NOW]),
    st.integers(0, 31 * 24).map(lambda h: NOW - dt.timedelta(hours=h, minutes=7)),
)
calls = st.tuples(starts, st.sampled_from(OUTCOMES), st.booleans())
# What happens to a call written before: some of its columns set (its outcome, its start
# moved), or the call deleted.
rewrites = st.fixed_dictionaries(
    {},
    optional={
        "started_at": starts,
        "outcome": st.sampled_from(OUTCOMES),
        "abandoned": st.booleans(),
    },
).filter(bool)
changes = st.lists(st.tuples(st.integers(0, 1000), st.one_of(rewrites, st.none())), max_size=12)


def _exact(engine: Engine, campaign_id: int) -> tuple[int, int]:
    with engine.connect() as connection:
        live, abandoned = connection.execute(
            select(func.count().filter(LIVE_ANSWER), func.count().filter(ABANDONED)).where(
                CallAttempt.campaign_id == campaign_id, CallAttempt.started_at > EDGE
            )
        ).one()
    return live, abandoned


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(written=st.lists(calls, max_size=25), changed=changes)
def test_the_window_from_hours_counts_every_call_of_the_30_days(  # type: ignore[no-untyped-def]
    engine: Engine, session, written, changed
) -> None:
    campaign = session.scalar(select(Campaign))
    if campaign is None:
        campaign = make_campaign(session, "Window")
        list_id = campaign.lists[0].id
        session.add(
            Lead(
                campaign_id=campaign.id,
                list_id=list_id,
                phone_e164="+12125550100",
                phone_type="fixed_line",
                region="US",
            )
        )
        session.commit()
    lead = session.scalar(select(Lead))
    with engine.begin() as connection:
        connection.execute(delete(CallAttempt))
        ids = []
        for started, outcome, abandoned in written:
            ids.append(
                connection.scalar(
                    insert(CallAttempt).returning(CallAttempt.id),
                    {
                        "lead_id": lead.id,
                        "campaign_id": campaign.id,
                        "phone_e164": lead.phone_e164,
                        "started_at": started,
                        "outcome": outcome,
                        "abandoned": abandoned,
                    },
                )
            )
    with engine.begin() as connection:
        for index, change in changed:
            if not ids:
                break
            row_id = ids[index % len(ids)]
            if change is None:
                connection.execute(delete(CallAttempt).where(CallAttempt.id == row_id))
                ids.remove(row_id)
                continue
            connection.execute(update(CallAttempt).where(CallAttempt.id == row_id).values(**change))
    with engine.connect() as connection:
        assert abandon_window(connection, campaign.id, NOW) == _exact(engine, campaign.id)
        # Every call gone leaves nothing counted in any hour.
        if not ids:
            counted = select(func.count()).where(
                (CampaignAnswerHour.live != 0) | (CampaignAnswerHour.abandoned != 0)
            )
            assert connection.scalar(counted) == 0
