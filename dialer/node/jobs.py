"""The APScheduler jobs a running dialer keeps: housekeeping that must happen on time."""

from __future__ import annotations

import datetime as dt
import logging

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from campaigns.hopper import release_stale
from campaigns.models import utcnow

log = logging.getLogger(__name__)
# A node renews its claims by dialing them within seconds; one held this long is orphaned.
STALE_CLAIM = dt.timedelta(minutes=10)


def release_orphaned_claims(engine: Engine) -> int:
    released = release_stale(engine, utcnow(), STALE_CLAIM)
    if released:
        log.warning("released %d leads claimed more than %s ago", released, STALE_CLAIM)
    return released


def build_scheduler(engine: Engine) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=dt.UTC)
    scheduler.add_job(
        release_orphaned_claims,
        "interval",
        args=[engine],
        minutes=1,
        id="release_orphaned_claims",
        max_instances=1,
        coalesce=True,
        next_run_time=utcnow(),
    )
    return scheduler
