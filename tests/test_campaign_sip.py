"""A telemarketing campaign of 300 leads and 4 agents runs to completion through the node,
against the simulated carrier (people, voicemail, busy, no answer, dead numbers) and the
agents' SIPp phones, with simulated agents working the calls: every lead ends in a final
state or a scheduled retry, the abandon rate stays under 3%, no do-not-call number (listed
before or during the run) and no number outside its calling hours reaches the carrier, and
the carrier saw exactly one INVITE per attempt row."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from campaigns import db, dnc
from campaigns.manage import add_agent, create_campaign, steer
from campaigns.models import CallAttempt, Campaign, Lead, utcnow
from dialer.demo.agents import Range
from dialer.demo.carrier import SimulatedCarrier
from dialer.demo.mix import CarrierTimings
from dialer.demo.phones import AgentPhones
from sip_config import loads
from tests.node_harness import agents_at_work, node_in_thread, zone_in_hours, zone_out_of_hours

pytestmark = pytest.mark.sip

# Unanswered calls ring the regulatory 15 s: fewer of them keeps the test short.
MIX = "human=.3,machine=.2,busy=.15,no_answer=.15,invalid=.2"
LEADS = 300
AGENTS = 4
FINAL = {"done", "dnc", "invalid"}
LATER = {"recycled", "callback"}


def leads(campaign_id: int, list_id: int, start: int, count: int, zone: str, priority: int = 0):  # type: ignore[no-untyped-def]
    return [
        {
            "campaign_id": campaign_id,
            "list_id": list_id,
            "phone_e164": f"+1212{2000000 + i:07d}",
            "phone_type": "fixed_line",
            "region": "US",
            "time_zones": [zone],
            "first_name": f"Lead{i}",
            "custom_fields": {},
            "status": "new",
            "priority": priority,
        }
        for i in range(start, start + count)
    ]


def test_a_campaign_of_300_leads_and_4_agents_runs_to_completion(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dialer.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    with (
        SimulatedCarrier(MIX, timings=CarrierTimings.quick()) as carrier,
        AgentPhones() as phones,
    ):
        config = loads(carrier.trunk_table("carrier", max_channels=40, max_cps=20))
        with db.session_factory(engine)() as session:
            campaign = create_campaign(
                session,
                "Spring sale",
                "telemarketing",
                dial_mode="predictive",
                trunk_name="carrier",
                seller_name="Acme",
                callback_number="+12125550199",
                calling_days=list(range(7)),
                calling_start="08:00",
                calling_end="21:00",
                ring_timeout_s=15,
                # Unanswered calls ring 15 s: lines, not agents, would set the pace at 4 each.
                max_lines=40,
            )
            for i in range(AGENTS):
                add_agent(session, f"agent{i}", phones.uri(f"agent{i}"), campaign)
            campaign_id, list_id = campaign.id, campaign.lists[0].id
        # 300 leads to dial; 10 on the do-not-call list already; 10 listed during the run
        # (dialled last, by priority); 10 in a time zone where it is night now.
        in_hours, late = zone_in_hours(), zone_out_of_hours()
        with engine.begin() as connection:
            connection.execute(insert(Lead), leads(campaign_id, list_id, 0, LEADS, in_hours))
            connection.execute(insert(Lead), leads(campaign_id, list_id, LEADS, 10, in_hours))
            connection.execute(
                insert(Lead), leads(campaign_id, list_id, LEADS + 10, 10, in_hours, -1)
            )
            connection.execute(insert(Lead), leads(campaign_id, list_id, LEADS + 20, 10, late))
        listed = [f"+1212{2000000 + i:07d}" for i in range(LEADS, LEADS + 10)]
        listed_later = [f"+1212{2000000 + i:07d}" for i in range(LEADS + 10, LEADS + 20)]
        night = {f"+1212{2000000 + i:07d}" for i in range(LEADS + 20, LEADS + 30)}
        with db.session_factory(engine)() as session:
            for number in listed:
                dnc.add(session, number, reason="listed before the run")
            session.commit()
            steer(session, session.get_one(Campaign, campaign_id), "start")

        with (
            agents_at_work(engine, campaign_id, talk=Range(0.5, 1.5), wrap=Range(0.3, 0.8)),
            node_in_thread(engine, config, workers=10, until_idle=True, name="campaign-test") as (
                _,
                node_thread,
            ),
        ):
            time.sleep(5.0)
            with db.session_factory(engine)() as session:
                # The write lock first: the dnc.add reads, and the running node commits between
                # a deferred transaction's read and its write (SQLite then fails at once).
                db.begin_write(session)
                for number in listed_later:
                    dnc.add(session, number, campaign_id=campaign_id, reason="asked meanwhile")
                session.commit()
            node_thread.join(timeout=420)
            assert not node_thread.is_alive(), "the campaign ran to completion"
        time.sleep(0.5)  # SIPp logs the last calls' ends
        invites = carrier.invites()
    now = utcnow()
    with db.session_factory(engine)() as session:
        attempts = session.scalars(select(CallAttempt)).all()
        statuses = session.execute(select(Lead.phone_e164, Lead.status, Lead.next_dial_at)).all()
    engine.dispose()

    dialled = [invite.number for invite in invites]
    assert len(dialled) == len(attempts), "one INVITE per attempt row"
    assert sorted(dialled) == sorted(a.phone_e164 for a in attempts)
    assert not set(dialled) & set(listed), "a do-not-call number reached the carrier"
    assert not set(dialled) & set(listed_later), "a number listed during the run was dialled"
    assert not set(dialled) & night, "a number outside its calling hours was dialled"
    for attempt in attempts:
        assert attempt.ended_at is not None and attempt.outcome is not None, attempt.id
        assert attempt.sip_code is not None and attempt.started_at is not None
        if attempt.bridged_at is not None:
            assert attempt.agent_id is not None and attempt.connect_delay_ms is not None
    live = [a for a in attempts if a.outcome == "human" or a.abandoned]
    abandoned = sum(a.abandoned for a in attempts)
    assert live and abandoned / len(live) <= 0.03, (abandoned, len(live))
    assert sum(a.bridged_at is not None for a in attempts) >= 0.5 * len(live)
    for phone, status, next_dial_at in statuses:
        if phone in night:
            assert status == "new" or (status in LATER and next_dial_at > now), phone
            continue
        assert status in FINAL or (status in LATER and next_dial_at > now), (phone, status)
    assert set(a.outcome for a in attempts) >= {"human", "machine", "busy", "no_answer"}
