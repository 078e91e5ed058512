"""The scheduler's jobs, on SQLite and PostgreSQL: hourly figures, callbacks handed over,
forgotten wrap-ups settled, automatic schedules, expiries, and one leader among schedulers."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from campaigns import db
from campaigns.models import (
    AgentSession,
    CallAttempt,
    Campaign,
    CampaignHour,
    Disposition,
    DncEntry,
    Lead,
    User,
)
from dialer.node import jobs
from tests.conftest import POSTGRES_URL, make_campaign

NOW = dt.datetime(2026, 12, 3, 15, 30, tzinfo=dt.UTC)


def fresh(session: Session) -> None:
    """What the job committed: a new transaction, and the objects read again."""
    session.rollback()
    session.expire_all()


def a_lead(session: Session, campaign: Campaign, phone: str = "+12125550100", **fields) -> Lead:  # type: ignore[no-untyped-def]
    fields.setdefault("time_zones", ["America/New_York"])
    lead = Lead(
        campaign_id=campaign.id,
        list_id=campaign.lists[0].id,
        phone_e164=phone,
        phone_type="fixed_line",
        region="US",
        **fields,
    )
    session.add(lead)
    session.flush()
    return lead


def an_attempt(session: Session, lead: Lead, started: dt.datetime, **fields) -> CallAttempt:  # type: ignore[no-untyped-def]
    attempt = CallAttempt(
        lead_id=lead.id,
        campaign_id=lead.campaign_id,
        phone_e164=lead.phone_e164,
        started_at=started,
        ended_at=started + dt.timedelta(seconds=fields.pop("seconds", 30)),
        **fields,
    )
    session.add(attempt)
    session.flush()
    return attempt


def test_attempts_are_summed_per_campaign_and_hour(engine: Engine, session: Session) -> None:
    campaign = make_campaign(session)
    lead = a_lead(session, campaign)
    hour = NOW.replace(minute=0)
    an_attempt(session, lead, hour + dt.timedelta(minutes=1), outcome="busy")
    an_attempt(session, lead, hour + dt.timedelta(minutes=2), outcome="human", abandoned=True)
    talk = an_attempt(session, lead, hour + dt.timedelta(minutes=5), outcome="human", seconds=90)
    talk.bridged_at = talk.started_at + dt.timedelta(seconds=30)
    an_attempt(session, lead, hour - dt.timedelta(minutes=10), outcome="machine")
    session.commit()
    assert jobs.roll_up_hours(engine, NOW) == 2
    rows = {row.hour: row for row in session.scalars(select(CampaignHour))}
    assert set(rows) == {hour, hour - dt.timedelta(hours=1)}
    this = rows[hour]
    assert (this.attempts, this.busy, this.human, this.live, this.abandoned) == (3, 1, 2, 2, 1)
    assert this.connected == 1 and this.talk_s == pytest.approx(60.0, abs=0.01)
    assert rows[hour - dt.timedelta(hours=1)].machine == 1
    # Run again with one more attempt: the recent hours are summed anew, not doubled.
    an_attempt(session, lead, hour + dt.timedelta(minutes=20), outcome="no_answer")
    session.commit()
    jobs.roll_up_hours(engine, NOW)
    fresh(session)
    again = session.get_one(CampaignHour, (campaign.id, hour))
    assert (again.attempts, again.no_answer) == (4, 1)


def test_personal_callbacks_go_to_the_campaign_when_their_agent_does_not_come(
    engine: Engine, session: Session
) -> None:
    campaign = make_campaign(session)
    agent = User(username="ana", password_hash="!", role="agent")
    gone = User(username="ben", password_hash="!", role="agent", active=False)
    session.add_all([agent, gone])
    session.flush()
    waiting = a_lead(
        session,
        campaign,
        "+12125550101",
        status="callback",
        next_dial_at=NOW - dt.timedelta(minutes=5),
        callback_agent_id=agent.id,
    )
    late = a_lead(
        session,
        campaign,
        "+12125550102",
        status="callback",
        next_dial_at=NOW - dt.timedelta(hours=1),
        callback_agent_id=agent.id,
    )
    orphan = a_lead(
        session,
        campaign,
        "+12125550103",
        status="callback",
        next_dial_at=NOW + dt.timedelta(hours=1),
        callback_agent_id=gone.id,
    )
    session.commit()
    assert jobs.hand_over_callbacks(engine, NOW) == 2
    fresh(session)
    assert waiting.callback_agent_id == agent.id
    assert late.callback_agent_id is None and orphan.callback_agent_id is None


def test_a_call_nobody_dispositioned_gets_the_campaigns_default(
    engine: Engine, session: Session
) -> None:
    campaign = make_campaign(session, wrapup_timeout_s=60)
    agent = User(username="ana", password_hash="!", role="agent")
    session.add(agent)
    lead = a_lead(session, campaign, status="dialing", attempts=1)
    attempt = an_attempt(session, lead, NOW - dt.timedelta(minutes=5), outcome="human")
    recent_lead = a_lead(session, campaign, "+12125550109", status="dialing", attempts=1)
    recent = an_attempt(session, recent_lead, NOW - dt.timedelta(seconds=40), outcome="human")
    session.flush()
    session.add(
        AgentSession(
            user_id=agent.id,
            campaign_id=campaign.id,
            state="wrap_up",
            current_attempt_id=attempt.id,
            node="gone",
        )
    )
    session.commit()
    assert jobs.settle_forgotten_wrap_ups(engine, NOW) == 1
    fresh(session)
    assert lead.status == "recycled" and lead.next_dial_at is not None
    code = session.scalars(select(Disposition.code).where(Disposition.attempt_id == attempt.id))
    assert list(code) == ["NO_DISPOSITION"]
    assert session.get_one(AgentSession, agent.id).state == "ready"
    assert recent_lead.status == "dialing", "its wrap-up is not over yet"
    assert recent.id


def test_an_automatic_schedule_starts_and_pauses_but_never_resumes_a_manual_pause(
    engine: Engine, session: Session
) -> None:
    scheduled = make_campaign(
        session,
        "Scheduled",
        auto_schedule=True,
        status="paused",
        schedule_paused=True,
        calling_days=list(range(7)),
    )
    manual = make_campaign(
        session, "Manual", auto_schedule=True, status="paused", calling_days=list(range(7))
    )
    for campaign in (scheduled, manual):
        a_lead(session, campaign, time_zones=["America/New_York"])
    session.commit()
    morning = dt.datetime(2026, 12, 3, 15, 0, tzinfo=dt.UTC)  # 10:00 in New York
    assert jobs.apply_schedules(engine, morning) == 1
    fresh(session)
    assert (scheduled.status, manual.status) == ("active", "paused")
    night = dt.datetime(2026, 12, 4, 3, 0, tzinfo=dt.UTC)  # 22:00 in New York
    assert jobs.apply_schedules(engine, night) == 1
    fresh(session)
    assert (scheduled.status, scheduled.schedule_paused) == ("paused", True)


def test_expired_dnc_entries_and_old_recordings_go(
    engine: Engine, session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = make_campaign(session)
    lead = a_lead(session, campaign)
    old = tmp_path / "old.wav"
    old.write_bytes(b"RIFF")
    new = tmp_path / "new.wav"
    new.write_bytes(b"RIFF")
    an_attempt(session, lead, NOW - dt.timedelta(days=40), recording_path=str(old))
    an_attempt(session, lead, NOW - dt.timedelta(days=1), recording_path=str(new))
    session.add_all(
        [
            DncEntry(phone_e164="+12125550111", expires_at=NOW - dt.timedelta(days=1)),
            DncEntry(phone_e164="+12125550112", expires_at=NOW + dt.timedelta(days=1)),
            DncEntry(phone_e164="+12125550113"),
        ]
    )
    session.commit()
    monkeypatch.setenv(jobs.RETENTION_ENV, "30")
    assert jobs.expire_recordings(engine, NOW) == 1
    assert not old.exists() and new.exists()
    assert jobs.expire_dnc(engine, NOW) == 1
    phones = set(session.scalars(select(DncEntry.phone_e164)))
    assert phones == {"+12125550112", "+12125550113"}
    monkeypatch.setenv(jobs.RETENTION_ENV, "forever")
    with pytest.raises(ValueError, match="whole number of days"):
        jobs.expire_recordings(engine, NOW)


@pytest.mark.postgres
def test_one_scheduler_leads_the_jobs_and_another_takes_over_when_it_goes() -> None:
    if not POSTGRES_URL:
        pytest.skip("TEST_POSTGRES_URL is not set")
    first_engine, second_engine = db.make_engine(POSTGRES_URL), db.make_engine(POSTGRES_URL)
    first, second = jobs.JobLeader(first_engine), jobs.JobLeader(second_engine)
    try:
        assert first.leads()
        assert first.leads(), "the leader keeps the lock"
        assert not second.leads()
        first.close()  # its node stopped
        assert second.leads()
    finally:
        first.close()
        second.close()
        first_engine.dispose()
        second_engine.dispose()
