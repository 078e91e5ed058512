"""The call detail export's rows, and a large export split into consecutive parts that several
processes write at once: put end to end they are the whole export, in its order."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from campaigns import reporting
from campaigns.models import CallAttempt, Lead
from tests.conftest import make_campaign

NOON = dt.datetime(2026, 6, 10, 12, tzinfo=dt.UTC)
SECOND = dt.timedelta(seconds=1)


@pytest.fixture
def wanted(engine: Engine, session: Session) -> reporting.CallFilter:
    """Ten calls of a campaign, three of them started at the same moment, and another
    campaign's call in the same hour."""
    mine, theirs = make_campaign(session, "Mine"), make_campaign(session, "Theirs")
    leads = [
        Lead(
            campaign_id=campaign.id,
            list_id=campaign.lists[0].id,
            phone_e164=f"+1212555{i:04d}",
            phone_type="fixed_line",
            region="US",
        )
        for i, campaign in enumerate([mine, theirs])
    ]
    session.add_all(leads)
    session.commit()
    starts = [NOON + n * SECOND for n in (0, 1, 2, 3, 4, 4, 4, 5, 6, 7)]
    rows = [
        {
            "lead_id": leads[0].id,
            "campaign_id": mine.id,
            "phone_e164": leads[0].phone_e164,
            "started_at": start,
            "outcome": "human",
            "bridged_at": start + 2 * SECOND,
            "ended_at": start + 2 * SECOND + dt.timedelta(seconds=35, milliseconds=260),
        }
        for start in starts
    ]
    rows.append({**rows[0], "lead_id": leads[1].id, "campaign_id": theirs.id})
    rows.append({**rows[0], "outcome": "no_answer", "bridged_at": None})
    with engine.begin() as connection:
        connection.execute(insert(CallAttempt), rows)
    return reporting.CallFilter(NOON, NOON + dt.timedelta(hours=1), (mine.id,))


def test_each_call_is_exported_with_its_talk_time(
    engine: Engine, wanted: reporting.CallFilter
) -> None:
    with engine.connect() as connection:
        rows = list(reporting.export_rows(connection, wanted))
    assert len(rows) == 11
    assert [row[0] for row in rows] == sorted((row[0] for row in rows), reverse=True)
    talk = [row[14] for row in rows]
    assert talk.count(35.3) == 10 and talk.count(None) == 1


@pytest.mark.parametrize("parts", [2, 3, 4])
def test_a_large_export_in_parts_is_the_whole_one_in_order(
    engine: Engine, wanted: reporting.CallFilter, monkeypatch: pytest.MonkeyPatch, parts: int
) -> None:
    monkeypatch.setattr(reporting, "SPLIT_LEAST", 1)
    with engine.connect() as connection:
        whole = list(reporting.export_rows(connection, wanted))
        split = reporting.split_calls(connection, wanted, parts)
        in_parts = [row for part in split for row in reporting.export_rows(connection, part)]
    assert 2 <= len(split) <= parts
    assert in_parts == whole
    # Consecutive periods, newest first, covering the whole one.
    assert split[0].end == wanted.end and split[-1].start == wanted.start
    assert all(newer.start == older.end for newer, older in itertools.pairwise(split))


def test_a_small_export_stays_whole(engine: Engine, wanted: reporting.CallFilter) -> None:
    with engine.connect() as connection:
        assert reporting.split_calls(connection, wanted, 2) == [wanted]
        empty = reporting.CallFilter(wanted.start, wanted.end, (-1,))
        assert reporting.split_calls(connection, empty, 2) == [empty]
