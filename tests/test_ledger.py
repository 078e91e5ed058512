"""The attempt ledger: a row from before the dial to after the hang-up, written from the line
pool's events, on SQLite and PostgreSQL; and through a real pool whose worker is killed."""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from campaigns import dnc
from campaigns.hopper import ClaimedLead
from campaigns.models import LIVE_ANSWER, CallAttempt, Lead
from dialer.connect import ConnectOutcome
from dialer.lines import LinePool
from dialer.lines.events import AmdVerdict, Answered, Bridged, Ended, Timings
from dialer.node.ledger import ORPHAN_REASON, AttemptLedger
from sip_config import loads
from tests.conftest import make_campaign
from tests.sipp_uas import Carrier
from tests.test_lines import NUMBER, run_until_ended, trunk_table


def a_lead(session: Session) -> tuple[int, int]:
    campaign = make_campaign(session)
    lead = Lead(
        campaign_id=campaign.id,
        list_id=campaign.lists[0].id,
        phone_e164=NUMBER,
        phone_type="fixed_line",
        region="US",
        status="claimed",
        claimed_by="node-1",
    )
    session.add(lead)
    session.commit()
    return campaign.id, lead.id


def opened(ledger: AttemptLedger, campaign_id: int, lead_id: int) -> str:
    lead = ClaimedLead(lead_id, campaign_id, NUMBER, None, None, None, 0, False)
    [attempt] = ledger.open([lead], trunk="carrier1")
    return attempt.attempt_id


def test_a_connected_call_is_stored_with_its_timings_verdict_and_connect_delay(
    engine: Engine, session: Session
) -> None:
    campaign_id, lead_id = a_lead(session)
    ledger = AttemptLedger(engine, "node-1")
    attempt_id = opened(ledger, campaign_id, lead_id)
    assert session.get_one(CallAttempt, int(attempt_id)).ended_at is None, "on record at once"
    assert session.get_one(Lead, lead_id).status == "dialing"
    dialed = time.time()
    timings = Timings(dialed, dialed + 1.0, dialed + 4.0, dialed + 60.0)
    ledger.observe(Answered(attempt_id, dialed + 4.0))
    ledger.observe(AmdVerdict(attempt_id, "human", dialed + 6.1, "silence after greeting", 2100))
    ledger.bridged(Bridged(attempt_id, "agent-leg-1", dialed + 6.2, 42.6, "/rec/1.wav"), None)
    session.rollback()  # a new read: SQLite's snapshot of this session's last one is older
    # A live answer of the 30-day window from the bridge on, not from the hang-up.
    live = select(func.count()).where(CallAttempt.campaign_id == campaign_id, LIVE_ANSWER)
    assert session.scalar(live) == 1
    assert session.get_one(CallAttempt, int(attempt_id)).ended_at is None
    flow = ConnectOutcome(
        attempt_id,
        "human",
        "agent-leg-1",
        "sip:agent@127.0.0.1",
        42.6,
        False,
        "bridged",
        False,
        None,
        "/rec/1.wav",
    )
    settled = ledger.end(
        Ended(attempt_id, 200, "hung up by the dialer", "human", timings, "human"), flow
    )
    assert settled is not None and settled.awaiting_disposition
    # An agent leg is no attempt of the ledger's: ignored.
    assert ledger.end(Ended("agent-leg-1", 200, "far end hung up", "human", timings), None) is None
    session.rollback()  # a new transaction sees what the ledger committed
    row = session.get_one(CallAttempt, int(attempt_id))
    assert (row.outcome, row.sip_code, row.sip_reason) == ("human", 200, "hung up by the dialer")
    assert (row.amd_verdict, row.amd_ms, row.connect_delay_ms) == ("human", 2100, 43)
    assert row.recording_path == "/rec/1.wav" and not row.abandoned and row.node == "node-1"
    assert row.answered_at is not None and row.ended_at is not None
    assert row.bridged_at is not None
    assert (row.ended_at - row.answered_at).total_seconds() == pytest.approx(56.0, abs=0.01)
    assert row.failure_reason is None
    lead = session.get_one(Lead, lead_id)
    assert (lead.attempts, lead.last_outcome, lead.claimed_by) == (1, "human", None)
    assert lead.status == "dialing", "the agent's disposition decides what comes next"


def test_an_abandoned_answer_is_retried_by_the_abandoned_rule_not_closed(
    engine: Engine, session: Session
) -> None:
    campaign_id, lead_id = a_lead(session)
    ledger = AttemptLedger(engine, "node-1")
    attempt_id = opened(ledger, campaign_id, lead_id)
    now = time.time()
    flow = ConnectOutcome(attempt_id, "human", None, None, None, True, "no agent free", True, 1.8)
    ledger.end(Ended(attempt_id, 200, "hung up by the dialer", "human",
                     Timings(now, None, now, now + 14)), flow)  # fmt: skip
    session.rollback()
    lead = session.get_one(Lead, lead_id)
    assert lead.status == "recycled" and lead.next_dial_at is not None
    wait = lead.next_dial_at - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=23) < wait <= dt.timedelta(hours=24), "the abandoned rule: 24 h"
    assert session.get_one(CallAttempt, int(attempt_id)).abandoned


def test_an_opt_out_and_a_node_that_stopped_mid_call_are_on_record(
    engine: Engine, session: Session
) -> None:
    campaign_id, lead_id = a_lead(session)
    ledger = AttemptLedger(engine, "node-1")
    abandoned = opened(ledger, campaign_id, lead_id)
    now = time.time()
    ledger.end(
        Ended(abandoned, 200, "hung up by the dialer", "human", Timings(now, None, now, now + 9)),
        ConnectOutcome(
            abandoned,
            "human",
            None,
            None,
            None,
            True,
            "no agent within 2 s",
            True,
            1.5,
            opted_out=True,
        ),
    )
    # The key-press opt-out put the number on the campaign's do-not-call list at once.
    session.rollback()
    assert dnc.blocking_entry(session, NUMBER, campaign_id, dt.datetime.now(dt.UTC)) is not None
    assert session.get_one(Lead, lead_id).status == "dnc"
    orphan = opened(ledger, campaign_id, lead_id)
    # The node dies here; its successor closes what it left open.
    closed = AttemptLedger(engine, "node-1").close_orphans(dt.datetime.now(dt.UTC))
    assert closed == 1
    session.rollback()  # a new transaction sees what the ledger committed
    row = session.get_one(CallAttempt, int(abandoned))
    assert row.abandoned and row.safe_harbor_played
    row = session.get_one(CallAttempt, int(orphan))
    assert (row.outcome, row.failure_reason) == ("failed", ORPHAN_REASON)
    assert row.ended_at is not None
    lead = session.get_one(Lead, lead_id)
    assert lead.attempts == 2 and lead.status == "dnc", "an opt-out is never reopened"


@pytest.mark.sip
def test_a_call_whose_worker_is_killed_is_stored_as_failed_saying_why(
    engine: Engine, session: Session, tmp_path: Path
) -> None:
    campaign_id, lead_id = a_lead(session)
    ledger = AttemptLedger(engine, "node-1")
    carrier = Carrier(tmp_path, "ledger").start("answer", calls=1, timeout=30)
    try:
        with LinePool(loads(trunk_table("carrier1", carrier.port)), workers=1) as pool:
            pid = pool.worker_pids()[0]
            attempt_id = opened(ledger, campaign_id, lead_id)

            def kill_when_answered(event: object) -> None:
                ledger.observe(event)  # type: ignore[arg-type]
                if isinstance(event, Answered):
                    os.kill(pid, signal.SIGKILL)
                if isinstance(event, Ended):
                    ledger.end(event, None)

            pool.originate(attempt_id, "carrier1", NUMBER)
            run_until_ended(pool, attempt_id, on_event=kill_when_answered)
    finally:
        carrier.stop()
    session.rollback()  # a new transaction sees what the ledger committed
    row = session.scalars(select(CallAttempt)).one()
    assert (row.outcome, row.failure_reason) == ("failed", "line worker 0 died (signal 9)")
    assert row.answered_at is not None and row.ended_at is not None
    assert session.get_one(Lead, lead_id).last_outcome == "failed"
