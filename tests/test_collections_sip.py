"""A collections campaign through the node, against the simulated carrier's people and the
agents' SIPp phones: Regulation F (12 CFR 1006.14(b)(2)) decides which numbers reach the
carrier, and the promises to pay the agents take are stored and reported.

- A debt called six times this week, with three numbers, gets its seventh call, and only one
  (two of its numbers come first in the same claim).
- A debt talked about three days ago gets none.
- A debt with no history is called.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from campaigns import db
from campaigns.manage import add_agent, create_campaign, steer
from campaigns.models import CallAttempt, Campaign, Disposition, Lead, utcnow
from campaigns.reports import campaign_report
from campaigns.why import why
from dialer.demo import agents as simulated
from dialer.demo.carrier import SimulatedCarrier
from dialer.demo.mix import CarrierTimings
from dialer.demo.phones import AgentPhones
from sip_config import loads
from tests.node_harness import add_leads, agents_at_work, node_in_thread, zone_in_hours

pytestmark = pytest.mark.sip

CAPPED = ["+12125550001", "+12125550002", "+12125550003"]  # six calls this week
TALKED = ["+12125550011", "+12125550012"]  # a conversation three days ago
FRESH = ["+12125550021"]


def test_regulation_f_decides_what_reaches_the_carrier_and_promises_are_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every conversation ends in a promise to pay (amount and date drawn by the bot).
    monkeypatch.setitem(simulated.DISPOSITION_MIX, "collections", (("PTP", 1.0),))
    url = f"sqlite:///{tmp_path / 'dialer.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    now = utcnow()
    with (
        SimulatedCarrier("human=1", timings=CarrierTimings.quick()) as carrier,
        AgentPhones() as phones,
    ):
        config = loads(carrier.trunk_table("carrier", max_channels=10, max_cps=10))
        with db.session_factory(engine)() as session:
            campaign = create_campaign(
                session,
                "Recovery",
                "collections",
                dial_mode="progressive",
                trunk_name="carrier",
                seller_name="Acme Recoveries",
                callback_number="+12125550199",
                calling_days=list(range(7)),
                calling_start="08:00",
                calling_end="21:00",
            )
            # Two agents: the hopper claims two leads at a time, the first two of one debt.
            for i in range(2):
                add_agent(session, f"agent{i}", phones.uri(f"agent{i}"), campaign)
            campaign_id, list_id = campaign.id, campaign.lists[0].id
        zone = zone_in_hours()
        # By priority: the capped debt's numbers first, then the talked-about debt's.
        add_leads(engine, campaign_id, list_id, CAPPED, zone, account_ref="CAPPED", priority=9)
        add_leads(engine, campaign_id, list_id, TALKED, zone, account_ref="TALKED", priority=8)
        add_leads(engine, campaign_id, list_id, FRESH, zone, account_ref="FRESH")
        # Closed leads of the same debts, whose calls make up the debts' week.
        for phone, debt in (("+12125550031", "CAPPED"), ("+12125550041", "TALKED")):
            add_leads(engine, campaign_id, list_id, [phone], zone, account_ref=debt, status="done")
        with engine.begin() as connection:
            lead_ids = {
                phone: id_ for phone, id_ in connection.execute(select(Lead.phone_e164, Lead.id))
            }

            def call(
                phone: str, debt: str, ago: dt.timedelta, conversation: bool
            ) -> dict[str, Any]:
                return {
                    "lead_id": lead_ids[phone],
                    "campaign_id": campaign_id,
                    "phone_e164": phone,
                    "account_ref": debt,
                    "started_at": now - ago,
                    "ended_at": now - ago + dt.timedelta(minutes=1),
                    "outcome": "human" if conversation else "no_answer",
                    "conversation": conversation,
                }

            week = [
                call("+12125550031", "CAPPED", dt.timedelta(hours=5 + 20 * i), False)
                for i in range(6)
            ]
            week.append(call("+12125550041", "TALKED", dt.timedelta(days=3), True))
            connection.execute(insert(CallAttempt), week)
        with db.session_factory(engine)() as session:
            steer(session, session.get_one(Campaign, campaign_id), "start")

        with (
            agents_at_work(
                engine, campaign_id, talk=simulated.Range(0.5, 1.0), wrap=simulated.Range(0.3, 0.6)
            ),
            node_in_thread(engine, config, workers=2, until_idle=True, name="collections-test") as (
                _,
                node_thread,
            ),
        ):
            node_thread.join(timeout=180)
            assert not node_thread.is_alive(), "the campaign ran out of dialable leads"
        dialled = sorted(invite.number for invite in carrier.invites())

    assert len(set(CAPPED) & set(dialled)) == 1, f"the capped debt's calls: {dialled}"
    assert sorted(set(dialled) - set(CAPPED)) == FRESH, dialled
    with db.session_factory(engine)() as session:
        run = session.scalars(select(CallAttempt).where(CallAttempt.id > len(week))).all()
        promises = session.execute(
            select(Disposition.code, Disposition.promise_amount, Disposition.promise_date)
        ).all()
    assert sorted(a.phone_e164 for a in run) == dialled, "one attempt row per INVITE"
    assert all(a.outcome == "human" and a.bridged_at is not None for a in run)
    assert len(promises) == 2
    for code, amount, date in promises:
        assert code == "PTP" and amount > 0 and date > now.date()
    report = campaign_report(engine, "Recovery", utcnow()).as_json()
    assert report["today"]["promises_to_pay"] == {
        "count": 2,
        "amount": str(sum((amount for _, amount, _ in promises), Decimal(0))),
    }
    # Nothing is dialable: the capped debt's other numbers (talked about now too) and the
    # debt talked about three days ago were put off by the gate; the first of them is due
    # when that conversation is seven days old.
    explanation = why(engine, "Recovery", utcnow())
    assert explanation.dialable == 0
    [waiting] = [r for r in explanation.refused if r.reason == "not_due"]
    assert waiting.leads == 4
    assert waiting.next_at is not None
    assert abs(waiting.next_at - (now + dt.timedelta(days=4))) < dt.timedelta(minutes=1)
    engine.dispose()
