"""The scheduler's jobs (APScheduler 3): housekeeping that must happen on time, whatever the
nodes are doing.

- claims a stopped node left behind go back to the hopper;
- personal callbacks their agent does not take within a grace go to the whole campaign;
- calls whose agent never dispositioned them, and whose session is gone, get the campaign's
  default disposition (a node crashed during the wrap-up): no lead stays "dialing" for ever;
- each campaign's attempts are summed per hour (reports and the 30-day figures read these);
- campaigns on an automatic schedule start when their calling window opens and pause when it
  has closed everywhere;
- recordings older than the retention are deleted, and expired do-not-call entries removed.

With several nodes on one PostgreSQL, every node runs a scheduler but only the holder of an
advisory lock runs the jobs: APScheduler 3 cannot share a job store between schedulers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import (
    Connection,
    Engine,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import aliased
from sqlalchemy.types import String

from campaigns import agents, db, rollups
from campaigns.compliance import LeadFacts, local_window
from campaigns.dispositions import record_disposition
from campaigns.hopper import campaign_rules, release_stale
from campaigns.models import (
    LIVE_ANSWER,
    OUTCOME_COLUMNS,
    AgentSession,
    CallAttempt,
    Campaign,
    CampaignHour,
    Disposition,
    DncEntry,
    Lead,
    User,
    utcnow,
)

log = logging.getLogger(__name__)
# A node renews its claims by dialing them within seconds; one held this long is orphaned.
STALE_CLAIM = dt.timedelta(minutes=10)
# A personal callback waits this long past its time for its agent, then anyone may take it.
PERSONAL_CALLBACK_GRACE = dt.timedelta(minutes=30)
# Hours summed again at each run: an attempt counts in the hour it started, and ends later.
ROLLUP_REDO = dt.timedelta(hours=2)
ROLLUP_HISTORY = dt.timedelta(days=31)
RETENTION_ENV = "DIALER_RECORDING_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 90
# Any fixed number: the PostgreSQL advisory lock that makes one scheduler the jobs' runner.
JOBS_LOCK = 0x6469616C  # "dial"


def release_orphaned_claims(engine: Engine) -> int:
    released = release_stale(engine, utcnow(), STALE_CLAIM)
    if released:
        log.warning("released %d leads claimed more than %s ago", released, STALE_CLAIM)
    return released


def hand_over_callbacks(engine: Engine, now: dt.datetime | None = None) -> int:
    """Personal callbacks long past due, or whose agent is no longer active, become the
    campaign's: the hopper dials them first, to any agent."""
    now = now or utcnow()
    inactive = select(User.id).where(~User.active)
    with db.session_factory(db.writer(engine))() as session:
        moved = session.execute(
            update(Lead)
            .where(
                Lead.status == "callback",
                Lead.callback_agent_id.is_not(None),
                or_(
                    Lead.next_dial_at < now - PERSONAL_CALLBACK_GRACE,
                    Lead.callback_agent_id.in_(inactive),
                ),
            )
            .values(callback_agent_id=None)
        ).rowcount
        session.commit()
    if moved:
        log.info("%d personal callbacks handed to their whole campaign", moved)
    return moved


def settle_forgotten_wrap_ups(engine: Engine, now: dt.datetime | None = None) -> int:
    """Leads still waiting for the disposition of a call that ended more than the campaign's
    wrap-up timeout ago (a minute of margin): their agent's session is freed with the default
    disposition, or the lead gets it directly when no session holds the call any more."""
    now = now or utcnow()
    settled = 0
    with db.session_factory(db.writer(engine))() as session:
        other = aliased(CallAttempt)
        latest = (
            select(other.id)
            .where(other.lead_id == Lead.id)
            .order_by(other.started_at.desc())
            .limit(1)
            .correlate(Lead)
            .scalar_subquery()
        )
        rows = session.execute(
            select(CallAttempt, Campaign.wrapup_timeout_s, Campaign.default_disposition)
            .join(Lead, Lead.id == CallAttempt.lead_id)
            .join(Campaign, Campaign.id == CallAttempt.campaign_id)
            .where(
                Lead.status == "dialing",
                CallAttempt.id == latest,
                CallAttempt.ended_at.is_not(None),
                ~exists().where(Disposition.attempt_id == CallAttempt.id),
            )
        ).all()
        for attempt, timeout_s, default in rows:
            assert attempt.ended_at is not None
            if now - attempt.ended_at < dt.timedelta(seconds=timeout_s + 60):
                continue
            holder = session.scalar(
                select(AgentSession.user_id).where(
                    AgentSession.current_attempt_id == attempt.id,
                    AgentSession.state == "wrap_up",
                )
            )
            if holder is None or not agents.expire_wrap_up(session, holder, attempt.id):
                record_disposition(session, attempt, default, notes="the wrap-up timed out")
            settled += 1
        session.commit()
    if settled:
        log.warning("%d calls given their campaign's default disposition", settled)
    return settled


def _hour(connection: Connection) -> Any:
    if connection.dialect.name == "postgresql":
        # In UTC whatever the session's zone (a zone half an hour off would shift the hours).
        return func.date_trunc("hour", func.timezone("UTC", CallAttempt.started_at))
    return func.strftime("%Y-%m-%d %H:00:00", CallAttempt.started_at)


def roll_up_hours(engine: Engine, now: dt.datetime | None = None) -> int:
    """Sums each campaign's attempts per hour (UTC) from the last hours rolled up (or 31 days
    back on the first run) to now, replacing those hours' rows."""
    now = now or utcnow()
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            connection.execution_options(sqlite_begin="BEGIN IMMEDIATE")
        with connection.begin():
            last = connection.scalar(select(func.max(CampaignHour.hour)))
            since = (last - ROLLUP_REDO) if last is not None else now - ROLLUP_HISTORY
            since = since.replace(minute=0, second=0, microsecond=0)
            hour = _hour(connection).label("hour")
            outcome = CallAttempt.outcome
            live = LIVE_ANSWER

            def count(condition: Any) -> Any:
                return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

            talk = func.coalesce(
                func.sum(
                    case(
                        (
                            CallAttempt.bridged_at.is_not(None),
                            rollups.seconds_between(
                                connection, CallAttempt.bridged_at, CallAttempt.ended_at
                            ),
                        ),
                        else_=0.0,
                    )
                ),
                0.0,
            )
            rows = connection.execute(
                select(
                    CallAttempt.campaign_id,
                    hour,
                    func.count(),
                    *(count(outcome == name) for name in OUTCOME_COLUMNS),
                    count(live),
                    count(CallAttempt.abandoned),
                    count(CallAttempt.bridged_at.is_not(None)),
                    talk,
                )
                .where(CallAttempt.started_at >= since, CallAttempt.ended_at.is_not(None))
                .group_by(CallAttempt.campaign_id, hour)
            ).all()
            connection.execute(delete(CampaignHour).where(CampaignHour.hour >= since))
            if rows:
                connection.execute(
                    CampaignHour.__table__.insert(),
                    [_hour_row(row) for row in rows],
                )
    return len(rows)


def _hour_row(row: Any) -> dict[str, Any]:
    campaign_id, hour, attempts, *counts, live, abandoned, connected, talk = row
    if isinstance(hour, str):  # SQLite's strftime
        hour = dt.datetime.fromisoformat(hour)
    hour = hour.replace(tzinfo=dt.UTC)
    values = dict(zip(OUTCOME_COLUMNS, (int(c) for c in counts), strict=True))
    return {
        "campaign_id": campaign_id,
        "hour": hour,
        "attempts": attempts,
        **values,
        "live": int(live),
        "abandoned": int(abandoned),
        "connected": int(connected),
        "talk_s": float(talk or 0.0),
    }


def window_open(rules: Any, zones: set[str], now: dt.datetime) -> bool:
    """Whether the campaign's calling window (its days and hours, clipped to the law) is open
    now in at least one of these zones."""
    for zone in zones:
        try:
            local = now.astimezone(ZoneInfo(zone))
        except (KeyError, ValueError):
            continue
        start, end = local_window(LeadFacts("", "", (zone,)), rules)
        if (
            local.weekday() in rules.calling_days
            and local.date() not in rules.holidays
            and start <= local.time() < end
        ):
            return True
    return False


def apply_schedules(engine: Engine, now: dt.datetime | None = None) -> int:
    """Campaigns on an automatic schedule: started when their calling window opens in one of
    their leads' time zones, paused when it has closed in all of them. A campaign a manager
    paused by hand stays paused."""
    now = now or utcnow()
    changed = 0
    with db.session_factory(db.writer(engine))() as session:
        campaigns = session.scalars(
            select(Campaign).where(
                Campaign.auto_schedule,
                or_(
                    Campaign.status == "active",
                    and_(Campaign.status == "paused", Campaign.schedule_paused),
                ),
            )
        ).all()
        for campaign in campaigns:
            zone_sets = session.scalars(
                select(cast(Lead.time_zones, String))
                .where(Lead.campaign_id == campaign.id, Lead.status.in_(DIALABLE_LATER))
                .distinct()
            ).all()
            zones = {zone for text_ in zone_sets for zone in _zones(text_)}
            is_open = window_open(campaign_rules(campaign), zones, now)
            if is_open and campaign.status == "paused":
                campaign.status, campaign.schedule_paused = "active", False
            elif not is_open and campaign.status == "active":
                campaign.status, campaign.schedule_paused = "paused", True
            else:
                continue
            campaign.updated_at = now
            changed += 1
            log.info("campaign %r: %s by its schedule", campaign.name, campaign.status)
        session.commit()
    return changed


DIALABLE_LATER = ("new", "recycled", "callback", "claimed", "dialing")


def _zones(value: str) -> list[str]:
    try:
        return [str(zone) for zone in json.loads(value)]
    except (TypeError, ValueError):
        return []


def recording_retention() -> dt.timedelta:
    days = os.environ.get(RETENTION_ENV, str(DEFAULT_RETENTION_DAYS))
    if not days.isdigit() or int(days) < 1:
        raise ValueError(f"{RETENTION_ENV}={days!r}: expected a whole number of days, at least 1")
    return dt.timedelta(days=int(days))


def expire_recordings(engine: Engine, now: dt.datetime | None = None) -> int:
    """Deletes recordings older than the retention ($DIALER_RECORDING_RETENTION_DAYS, default
    90) and clears their attempts' paths."""
    now = now or utcnow()
    cutoff = now - recording_retention()
    with db.session_factory(db.writer(engine))() as session:
        old = session.execute(
            select(CallAttempt.id, CallAttempt.recording_path).where(
                CallAttempt.recording_path.is_not(None), CallAttempt.started_at < cutoff
            )
        ).all()
        for _, path in old:
            with contextlib.suppress(OSError):
                Path(path).unlink(missing_ok=True)
        if old:
            session.execute(
                update(CallAttempt)
                .where(CallAttempt.id.in_([attempt_id for attempt_id, _ in old]))
                .values(recording_path=None)
            )
        session.commit()
    if old:
        log.info("deleted %d recordings older than %s", len(old), cutoff.date())
    return len(old)


def expire_dnc(engine: Engine, now: dt.datetime | None = None) -> int:
    """Removes do-not-call entries whose expiry has passed (the gate already ignores them)."""
    now = now or utcnow()
    with db.session_factory(db.writer(engine))() as session:
        removed = session.execute(
            delete(DncEntry).where(DncEntry.expires_at.is_not(None), DncEntry.expires_at <= now)
        ).rowcount
        session.commit()
    if removed:
        log.info("removed %d expired do-not-call entries", removed)
    return removed


class JobLeader:
    """Only one scheduler runs the jobs: on PostgreSQL the one whose connection holds the
    advisory lock (taken at its first job, kept while it lives; another node's scheduler
    takes it over when that connection goes); on SQLite there is one process anyway."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.connection: Connection | None = None

    def leads(self) -> bool:
        if self.engine.dialect.name != "postgresql":
            return True
        if self.connection is not None:
            try:
                self.connection.exec_driver_sql("SELECT 1")
                return True
            except Exception:  # the server or the connection is gone: try again
                self.close()
        connection = self.engine.connect()
        got = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": JOBS_LOCK})
        if got.scalar():
            connection.commit()
            self.connection = connection
            return True
        connection.rollback()
        connection.close()
        return False

    def close(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                # Not back to the pool: the server session, and so the lock, must end.
                self.connection.invalidate()
                self.connection.close()
            self.connection = None


JOBS: tuple[tuple[str, Callable[[Engine], int], dict[str, int]], ...] = (
    ("release_orphaned_claims", release_orphaned_claims, {"minutes": 1}),
    ("hand_over_callbacks", hand_over_callbacks, {"minutes": 1}),
    ("settle_forgotten_wrap_ups", settle_forgotten_wrap_ups, {"minutes": 1}),
    ("roll_up_hours", roll_up_hours, {"minutes": 1}),
    ("roll_up_reports", rollups.catch_up, {"minutes": 5}),
    ("apply_schedules", apply_schedules, {"minutes": 1}),
    ("expire_recordings", expire_recordings, {"hours": 1}),
    ("expire_dnc", expire_dnc, {"hours": 1}),
)


def build_scheduler(engine: Engine, leader: JobLeader | None = None) -> BackgroundScheduler:
    leader = leader or JobLeader(engine)
    scheduler = BackgroundScheduler(timezone=dt.UTC)

    def led(job: Callable[[Engine], int], name: str) -> Callable[[], None]:
        def run() -> None:
            if not leader.leads():
                return
            try:
                job(engine)
            except Exception:
                log.exception("job %s failed", name)

        return run

    for name, job, every in JOBS:
        scheduler.add_job(
            led(job, name),
            "interval",
            id=name,
            max_instances=1,
            coalesce=True,
            next_run_time=utcnow(),
            **every,
        )
    return scheduler
