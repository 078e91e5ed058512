"""The hopper against real databases: order, the gate, and no lead handed out twice."""

import datetime as dt
import multiprocessing
import threading
import time

import pytest
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from campaigns import db, dnc
from campaigns.hopper import claim, release, release_stale
from campaigns.models import CallAttempt, Callback, ImportRun, Lead, LeadList
from tests.conftest import make_campaign

NOON_NY = dt.datetime(2026, 6, 10, 16, tzinfo=dt.UTC)


def add_leads(engine: Engine, campaign_id: int, list_id: int, count: int, **fields: object) -> None:
    start = fields.pop("start", 0)
    rows = [
        {
            "campaign_id": campaign_id,
            "list_id": list_id,
            "phone_e164": f"+1212555{i:04d}",
            "phone_type": "fixed_line",
            "region": "US",
            "state": "NY",
            "time_zones": ["America/New_York"],
            "status": "new",
            "priority": 0,
            "custom_fields": {},
            **fields,
        }
        for i in range(start, start + count)
    ]
    with engine.begin() as connection:
        connection.execute(insert(Lead), rows)


@pytest.fixture
def campaign(session: Session):  # type: ignore[no-untyped-def]
    return make_campaign(session, recycled_mix=0.0)


def test_callbacks_first_then_priority_and_each_lead_once(
    engine: Engine, session: Session, campaign
) -> None:  # type: ignore[no-untyped-def]
    list_id = campaign.lists[0].id
    add_leads(engine, campaign.id, list_id, 5)
    add_leads(engine, campaign.id, list_id, 1, start=100, priority=9)
    add_leads(
        engine,
        campaign.id,
        list_id,
        1,
        start=200,
        status="callback",
        next_dial_at=NOON_NY - dt.timedelta(minutes=1),
    )
    first = claim(engine, campaign.id, 3, "node-a", NOON_NY)
    assert [c.phone_e164 for c in first[:2]] == ["+12125550200", "+12125550100"]
    assert first[0].is_callback
    rest = claim(engine, campaign.id, 10, "node-b", NOON_NY)
    assert len(first) + len(rest) == 7
    assert not {c.id for c in first} & {c.id for c in rest}
    assert claim(engine, campaign.id, 10, "node-c", NOON_NY) == []


def test_recycled_and_new_leads_mix_as_the_campaign_says(engine: Engine, session: Session) -> None:
    campaign = make_campaign(session, recycled_mix=0.5)
    list_id = campaign.lists[0].id
    earlier = NOON_NY - dt.timedelta(hours=1)
    add_leads(engine, campaign.id, list_id, 20, status="recycled", attempts=1, next_dial_at=earlier)
    add_leads(engine, campaign.id, list_id, 10, start=100)
    kinds = [
        [
            "recycled" if c.attempts else "new"
            for c in claim(engine, campaign.id, 8, "node", NOON_NY)
        ]
        for _ in range(3)
    ]
    assert kinds[0] == kinds[1] == ["recycled", "new"] * 4
    # Two new leads left: recycled ones make up the batch.
    assert kinds[2] == ["recycled", "new"] * 2 + ["recycled"] * 4


def test_gate_closes_dnc_leads_and_defers_out_of_hours(
    engine: Engine, session: Session, campaign
) -> None:  # type: ignore[no-untyped-def]
    list_id = campaign.lists[0].id
    add_leads(engine, campaign.id, list_id, 1)
    add_leads(engine, campaign.id, list_id, 1, start=1, time_zones=["Pacific/Honolulu"])
    add_leads(engine, campaign.id, list_id, 1, start=2, phone_type="mobile")
    dnc.add(session, "+12125550000")
    session.commit()
    assert claim(engine, campaign.id, 5, "node", NOON_NY) == []  # 06:00 in Honolulu
    session.expire_all()
    by_phone = {lead.phone_e164: lead for lead in session.scalars(select(Lead))}
    assert by_phone["+12125550000"].status == "dnc"
    # Looked at again when its calling window opens (09:00 in Honolulu), not all night long.
    assert by_phone["+12125550001"].next_dial_at == dt.datetime(2026, 6, 10, 19, tzinfo=dt.UTC)
    assert by_phone["+12125550002"].status == "new", "a mobile lead waits for preview dialing"
    assert [c.phone_e164 for c in claim(engine, campaign.id, 5, "n", NOON_NY, "preview")] == [
        "+12125550002"
    ]


def test_a_batch_the_gate_thins_out_is_topped_up_from_the_next_leads(
    engine: Engine, session: Session, campaign
) -> None:  # type: ignore[no-untyped-def]
    list_id = campaign.lists[0].id
    # The best leads are out of hours (06:00 in Honolulu): the hopper looks further down.
    add_leads(engine, campaign.id, list_id, 6, priority=9, time_zones=["Pacific/Honolulu"])
    add_leads(engine, campaign.id, list_id, 5, start=100)
    claimed = claim(engine, campaign.id, 4, "node", NOON_NY)
    assert [c.phone_e164 for c in claimed] == [f"+121255501{i:02d}" for i in range(4)]
    deferred = session.execute(
        select(Lead.next_dial_at, Lead.status, Lead.claimed_by).where(Lead.priority == 9)
    ).all()
    opens = dt.datetime(2026, 6, 10, 19, tzinfo=dt.UTC)  # 09:00 in Honolulu
    assert deferred == [(opens, "new", None)] * 6
    assert len(claim(engine, campaign.id, 4, "node", NOON_NY)) == 1


def test_over_the_abandon_cap_predictive_claims_nothing_and_leaves_leads_as_they_were(
    engine: Engine, session: Session, campaign
) -> None:  # type: ignore[no-untyped-def]
    list_id = campaign.lists[0].id
    add_leads(engine, campaign.id, list_id, 2)
    due = NOON_NY - dt.timedelta(minutes=1)
    add_leads(engine, campaign.id, list_id, 1, start=10, status="callback", next_dial_at=due)
    first = session.scalars(select(Lead.id).order_by(Lead.id)).first()
    # One abandoned call in the 30-day window out of one live answer: 100% abandoned.
    session.add(
        CallAttempt(
            lead_id=first,
            campaign_id=campaign.id,
            phone_e164="+12125550000",
            started_at=NOON_NY - dt.timedelta(days=1),
            outcome="human",
            abandoned=True,
        )
    )
    session.commit()
    assert claim(engine, campaign.id, 3, "node", NOON_NY) == []
    leads = session.execute(
        select(Lead.status, Lead.claimed_by, Lead.next_dial_at).order_by(Lead.id)
    ).all()
    assert leads == [("new", None, None), ("new", None, None), ("callback", None, due)]
    assert len(claim(engine, campaign.id, 3, "node", NOON_NY, "progressive")) == 3


def test_one_batch_calls_a_debt_no_more_than_regulation_f_allows(
    engine: Engine, session: Session
) -> None:
    """A debt with six calls this week and three numbers gets one call, however many of its
    numbers one claim meets; a debt talked about three days ago none; one with no history
    every number. 12 CFR 1006.14(b)(2)."""
    campaign = make_campaign(session, kind="collections", dial_mode="progressive")
    list_id = campaign.lists[0].id
    add_leads(engine, campaign.id, list_id, 3, account_ref="CAPPED")
    add_leads(engine, campaign.id, list_id, 2, start=10, account_ref="TALKED")
    add_leads(engine, campaign.id, list_id, 2, start=20, account_ref="FRESH")
    add_leads(engine, campaign.id, list_id, 2, start=30, account_ref="CAPPED", status="done")
    add_leads(engine, campaign.id, list_id, 1, start=40, account_ref="TALKED", status="done")
    closed = {lead.phone_e164: lead for lead in session.scalars(select(Lead)) if lead.attempts == 0}
    history = [(closed[f"+121255500{30 + i % 2}"], "CAPPED", i + 1, False) for i in range(6)]
    history.append((closed["+12125550040"], "TALKED", 72, True))
    with engine.begin() as connection:
        connection.execute(
            insert(CallAttempt),
            [
                {
                    "lead_id": lead.id,
                    "campaign_id": campaign.id,
                    "phone_e164": lead.phone_e164,
                    "account_ref": debt,
                    "started_at": NOON_NY - dt.timedelta(hours=hours_ago),
                    "ended_at": NOON_NY - dt.timedelta(hours=hours_ago) + dt.timedelta(minutes=1),
                    "outcome": "human" if conversation else "no_answer",
                    "conversation": conversation,
                }
                for lead, debt, hours_ago, conversation in history
            ],
        )
    # Two at a time first: the gate thins the batch out and the claim tops it up from the next
    # candidates, another of the capped debt's numbers among them.
    claimed = claim(engine, campaign.id, 2, "node", NOON_NY)
    claimed += claim(engine, campaign.id, 10, "node", NOON_NY)
    debts = sorted(lead.account_ref or "" for lead in claimed)
    assert debts == ["CAPPED", "FRESH", "FRESH"]
    session.rollback()  # a new snapshot: SQLite's read began before the claim
    waiting = session.execute(
        select(Lead.account_ref, Lead.status).where(Lead.status.not_in(["claimed", "done"]))
    ).all()
    assert sorted(waiting) == [
        ("CAPPED", "new"),
        ("CAPPED", "new"),
        ("TALKED", "new"),
        ("TALKED", "new"),
    ]


def test_leads_of_an_unfinished_import_are_not_dialed(
    engine: Engine, session: Session, campaign
) -> None:  # type: ignore[no-untyped-def]
    run = ImportRun(campaign_id=campaign.id, list_id=campaign.lists[0].id, filename="x.csv")
    session.add(run)
    session.commit()
    add_leads(engine, campaign.id, campaign.lists[0].id, 3, import_id=run.id)
    assert claim(engine, campaign.id, 5, "node", NOON_NY) == []
    run.status = "completed"
    session.commit()
    assert len(claim(engine, campaign.id, 5, "node", NOON_NY)) == 3


def test_leads_of_a_disabled_list_are_not_dialed(
    engine: Engine, session: Session, campaign
) -> None:  # type: ignore[no-untyped-def]
    paused = LeadList(campaign_id=campaign.id, name="paused", active=False)
    session.add(paused)
    session.commit()
    add_leads(engine, campaign.id, paused.id, 3)
    add_leads(engine, campaign.id, campaign.lists[0].id, 1, start=10)
    assert [c.phone_e164 for c in claim(engine, campaign.id, 5, "node", NOON_NY)] == [
        "+12125550010"
    ]
    paused.active = True
    session.commit()
    assert len(claim(engine, campaign.id, 5, "node", NOON_NY)) == 3


def test_release_and_stale_sweep_give_leads_back(
    engine: Engine, session: Session, campaign
) -> None:  # type: ignore[no-untyped-def]
    add_leads(engine, campaign.id, campaign.lists[0].id, 3)
    claimed = claim(engine, campaign.id, 3, "node", NOON_NY)
    lead_id = claimed[0].id
    session.add(Callback(lead_id=lead_id, campaign_id=campaign.id, due_at=NOON_NY))
    session.commit()
    assert release(engine, [lead_id]) == 1
    assert session.scalar(select(Lead.status).where(Lead.id == lead_id)) == "callback"
    later = NOON_NY + dt.timedelta(minutes=30)
    assert release_stale(engine, later, dt.timedelta(minutes=10)) == 2
    again = claim(engine, campaign.id, 5, "other", later)
    assert len(again) == 3 and again[0].is_callback


def test_a_claim_outlives_a_connection_the_server_closed(
    db_url: str, engine: Engine, campaign
) -> None:  # type: ignore[no-untyped-def]
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to lose")
    add_leads(engine, campaign.id, campaign.lists[0].id, 4)
    assert len(claim(engine, campaign.id, 2, "node", NOON_NY)) == 2
    with engine.connect() as connection:
        backend = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    # The pooled connection was used a moment ago: the pool hands it out without a ping.
    admin = db.make_engine(db_url)
    with admin.connect() as connection:
        connection.exec_driver_sql(f"SELECT pg_terminate_backend({backend})")
    admin.dispose()
    assert len(claim(engine, campaign.id, 2, "node", NOON_NY)) == 2


def _claim_all(url: str, campaign_id: int, node: str, out, start_at: float) -> None:  # type: ignore[no-untyped-def]
    engine = db.make_engine(url)
    mine: list[int] = []
    # Everyone starts at the same instant, so the claims really overlap.
    time.sleep(max(0.0, start_at - time.time()))
    while batch := claim(engine, campaign_id, 7, node, NOON_NY):
        mine.extend(c.id for c in batch)
        time.sleep(0.002)  # a node dials its batch before it claims again
    engine.dispose()
    out.put(mine) if hasattr(out, "put") else out.extend(mine)


def test_concurrent_claimers_never_share_a_lead(db_url: str, engine: Engine, campaign) -> None:  # type: ignore[no-untyped-def]
    add_leads(engine, campaign.id, campaign.lists[0].id, 600)
    postgres = engine.dialect.name == "postgresql"
    start_at = time.time() + (4.0 if postgres else 0.5)
    results: list[list[int]] = [[] for _ in range(4)]
    threads = [
        threading.Thread(
            target=_claim_all, args=(db_url, campaign.id, f"t{i}", results[i], start_at)
        )
        for i in range(4)
    ]
    for thread in threads:
        thread.start()
    claimed = []
    if postgres:
        queue = multiprocessing.get_context("spawn").Queue()
        processes = [
            multiprocessing.get_context("spawn").Process(
                target=_claim_all, args=(db_url, campaign.id, f"p{i}", queue, start_at)
            )
            for i in range(3)
        ]
        for process in processes:
            process.start()
        for _ in processes:
            claimed.extend(queue.get(timeout=120))
        for process in processes:
            process.join(timeout=60)
            assert process.exitcode == 0
    for thread in threads:
        thread.join(timeout=120)
    for part in results:
        claimed.extend(part)
    assert len(claimed) == 600 and len(set(claimed)) == 600
    assert sum(1 for part in results if part) >= 2, "the claimers did not overlap"
