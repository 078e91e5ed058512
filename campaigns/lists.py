"""A lead list dialled again: recycled (its leads nobody has spoken with, due now) or reset
(from the start, as if just imported). What the console and the API do, in one place.

Recycle keeps each lead's attempts: the campaign's maximum still applies, and a lead that
reached it stays closed. Reset counts attempts from zero.

Neither takes a lead out of the gate's hands: the do-not-call lists, calling windows, the
frequency caps, Regulation F and the 72 hours after an abandoned call (UK) still judge every
dial, from the calls on record. Leads on a do-not-call list, with an invalid number, waiting
for a callback or on a call now are never touched.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from campaigns.db import begin_write
from campaigns.models import Lead, LeadList

ListAction = Literal["recycle", "reset"]
# Line outcomes in which nobody was spoken with: a lead a recycling rule closed after them is
# recycled. A "human" answer may have been a conversation, so it is not one of them.
NO_CONVERSATION = (
    "busy",
    "no_answer",
    "machine",
    "machine_message",
    "congestion",
    "failed",
    "abandoned",
)
# A reset list's leads: everything but what must never be dialled again or is in hand now.
RESETTABLE = ("new", "recycled", "done")
# Rows per transaction: a million-lead list does not hold SQLite's write lock (which the
# nodes wait for) for seconds at a time.
CHUNK = 20_000


@dataclass(frozen=True)
class ListChange:
    """What an action does (or did) to a list: leads changed, and leads it leaves alone."""

    action: ListAction
    changed: int
    untouched: int


def _changing(lead_list: LeadList, action: ListAction) -> ColumnElement[bool]:
    if action == "recycle":
        max_attempts = lead_list.campaign.max_attempts
        return or_(
            Lead.status == "recycled",
            and_(
                Lead.status == "done",
                Lead.last_outcome.in_(NO_CONVERSATION),
                Lead.attempts < max_attempts,
            ),
        )
    return Lead.status.in_(RESETTABLE)


def apply(
    session: Session, lead_list: LeadList, action: ListAction, now: dt.datetime
) -> ListChange:
    """Does `action` to the list, committing every CHUNK leads (a failure half way leaves a
    list partly done: doing it again finishes it). Recycle: leads waiting for a retry are due
    now, and leads a recycling rule closed after calls nobody answered in person are recycled,
    due now. Reset: every lead not excluded (see the module) is new again, its attempts
    counted from zero."""
    changing = _changing(lead_list, action)
    # A recycled lead is due at its dial time (the hopper reads them in that order).
    values: dict[str, object] = {"status": "recycled", "next_dial_at": now}
    if action == "reset":
        values = {"status": "new", "attempts": 0, "next_dial_at": None}
    first, last = session.execute(
        select(func.min(Lead.id), func.max(Lead.id)).where(Lead.list_id == lead_list.id)
    ).one()
    session.commit()
    changed = 0
    if first is not None:
        for start in range(first, last + 1, CHUNK):
            begin_write(session)
            result = session.execute(
                update(Lead)
                .where(
                    Lead.list_id == lead_list.id,
                    Lead.id >= start,
                    Lead.id < start + CHUNK,
                    changing,
                )
                .values(values)
                .execution_options(synchronize_session=False)
            )
            changed += result.rowcount  # type: ignore[attr-defined]
            session.commit()
    total = session.scalar(select(func.count()).where(Lead.list_id == lead_list.id)) or 0
    return ListChange(action, changed, int(total) - changed)
