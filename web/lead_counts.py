"""Leads counted per campaign, list and status, shared by the pages that show them.

Counting reads the campaign's whole (campaign, list, status) index: 15-60 ms at a million
leads, several times that while an import adds to it (`dialer bench console`). The pages
managers open all day (campaigns, a campaign, its lists) share one count per console process,
counted again in the background once COUNTS_MAX_AGE old (the campaigns list, every campaign
at once, BY_CAMPAIGN_MAX_AGE). What this process changes (an import ended, a list recycled or
reset) is counted again before the next view.
"""

from __future__ import annotations

from flask import Flask, current_app
from sqlalchemy import func, select

from campaigns.models import Lead
from web import db
from web.streams import forget, kept_fresh

COUNTS_MAX_AGE = 5.0
BY_CAMPAIGN_MAX_AGE = 15.0
KEY = "dialer.lead_counts:"


def by_campaign() -> dict[int, int]:
    """Leads per campaign id."""
    sessions = db.sessions()

    def read() -> dict[int, int]:
        with sessions() as session:
            query = select(Lead.campaign_id, func.count()).group_by(Lead.campaign_id)
            return {campaign_id: int(count) for campaign_id, count in session.execute(query)}

    return kept_fresh(f"{KEY}all", read, BY_CAMPAIGN_MAX_AGE)


def by_list(campaign_id: int) -> dict[int, dict[str, int]]:
    """The campaign's leads per list id and status."""
    sessions = db.sessions()

    def read() -> dict[int, dict[str, int]]:
        counts: dict[int, dict[str, int]] = {}
        with sessions() as session:
            for list_id, status, count in session.execute(
                select(Lead.list_id, Lead.status, func.count())
                .where(Lead.campaign_id == campaign_id)
                .group_by(Lead.list_id, Lead.status)
            ):
                counts.setdefault(list_id, {})[status] = int(count)
        return counts

    return kept_fresh(_key(campaign_id), read, COUNTS_MAX_AGE)


def by_status(campaign_id: int) -> dict[str, int]:
    """The campaign's leads per status."""
    totals: dict[str, int] = {}
    for counts in by_list(campaign_id).values():
        for status, count in counts.items():
            totals[status] = totals.get(status, 0) + count
    return totals


def recount(campaign_id: int | None = None, app: Flask | None = None) -> None:
    """The campaign's counts (every campaign's with None) are read again when next shown."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    forget(app, KEY if campaign_id is None else _key(campaign_id))


def _key(campaign_id: int) -> str:
    return f"{KEY}{campaign_id}."
