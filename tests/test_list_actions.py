"""A list recycled or reset (SQLite and PostgreSQL): which leads each changes, which it never
touches, in chunks, and that the hopper then dials them through the gate."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from campaigns import lists
from campaigns.hopper import claim
from campaigns.models import Lead, LeadList
from tests.conftest import make_campaign
from tests.test_hopper import NOON_NY, add_leads

LATER = NOON_NY + dt.timedelta(days=2)
# (phone suffix, fields) of one lead of each kind the actions must tell apart.
LEADS = {
    "new": {"status": "new"},
    "waiting": {"status": "recycled", "attempts": 1, "next_dial_at": LATER},
    "closed_busy": {"status": "done", "attempts": 2, "last_outcome": "busy"},
    "closed_at_max": {"status": "done", "attempts": 6, "last_outcome": "no_answer"},
    "sold": {"status": "done", "attempts": 1, "last_outcome": "human"},
    "dnc": {"status": "dnc", "attempts": 1, "last_outcome": "human"},
    "invalid": {"status": "invalid", "attempts": 1, "last_outcome": "invalid"},
    "callback": {"status": "callback", "attempts": 1, "next_dial_at": LATER},
    "on_a_call": {"status": "dialing", "attempts": 1, "claimed_by": "node-a"},
}


@pytest.fixture
def lead_list(engine: Engine, session: Session) -> LeadList:
    campaign = make_campaign(session, recycled_mix=0.5)
    first = campaign.lists[0]
    for index, fields in enumerate(LEADS.values()):
        add_leads(engine, campaign.id, first.id, 1, start=index, **fields)
    # Another list of the campaign: never touched by an action on the first.
    other = LeadList(campaign_id=campaign.id, name="other")
    session.add(other)
    session.commit()
    add_leads(engine, campaign.id, other.id, 1, start=100, **LEADS["waiting"])
    add_leads(engine, campaign.id, other.id, 1, start=101, **LEADS["closed_busy"])
    return first


def _leads(session: Session) -> dict[str, Lead]:
    session.expire_all()
    by_phone = {lead.phone_e164: lead for lead in session.scalars(select(Lead))}
    named = {name: by_phone[f"+1212555{i:04d}"] for i, name in enumerate(LEADS)}
    named["other_waiting"] = by_phone["+12125550100"]
    named["other_closed"] = by_phone["+12125550101"]
    return named


def _as_before(lead: Lead, name: str) -> bool:
    fields = LEADS.get(name) or LEADS["waiting" if name == "other_waiting" else "closed_busy"]
    return all(getattr(lead, key) == value for key, value in fields.items())


def test_recycle_makes_the_unreached_leads_due_and_keeps_their_attempts(
    engine: Engine, session: Session, lead_list: LeadList, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lists, "CHUNK", 3)  # several transactions, as a big list takes
    change = lists.apply(session, lead_list, "recycle", NOON_NY)
    assert change == lists.ListChange("recycle", 2, 7)
    leads = _leads(session)
    for name in ("waiting", "closed_busy"):
        lead = leads[name]
        assert (lead.status, lead.next_dial_at) == ("recycled", NOON_NY), name
    assert leads["waiting"].attempts == 1 and leads["closed_busy"].attempts == 2
    untouched = set(leads) - {"waiting", "closed_busy"}
    assert [name for name in sorted(untouched) if not _as_before(leads[name], name)] == []

    claimed = claim(engine, lead_list.campaign_id, 10, "node-b", NOON_NY)
    assert sorted(c.phone_e164 for c in claimed) == sorted(
        leads[name].phone_e164 for name in ("new", "waiting", "closed_busy")
    )


def test_reset_starts_the_list_over_but_never_reopens_what_must_stay_closed(
    engine: Engine, session: Session, lead_list: LeadList, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lists, "CHUNK", 2)
    assert lists.apply(session, lead_list, "reset", NOON_NY) == lists.ListChange("reset", 5, 4)
    leads = _leads(session)
    reset = ("new", "waiting", "closed_busy", "closed_at_max", "sold")
    for name in reset:
        lead = leads[name]
        assert (lead.status, lead.attempts, lead.next_dial_at) == ("new", 0, None), name
    untouched = set(leads) - set(reset)
    assert [name for name in sorted(untouched) if not _as_before(leads[name], name)] == []
    assert len(claim(engine, lead_list.campaign_id, 10, "node-b", NOON_NY)) == len(reset)


def test_an_empty_list_changes_nothing(session: Session) -> None:
    campaign = make_campaign(session)
    empty = campaign.lists[0]
    assert lists.apply(session, empty, "reset", NOON_NY) == lists.ListChange("reset", 0, 0)
    assert lists.apply(session, empty, "recycle", NOON_NY) == lists.ListChange("recycle", 0, 0)
