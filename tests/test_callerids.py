"""Caller IDs: the pure choice (area code, then state, then the default; numbers at their
daily cap skipped; equal numbers shared out), and on SQLite and PostgreSQL the counts the
attempt ledger keeps, which the cap and the answer-rate report read."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, insert, select
from sqlalchemy.orm import Session

from campaigns import callerids
from campaigns.callerids import (
    CallerIdError,
    PoolNumber,
    area_code,
    choose_caller_id,
    choose_caller_ids,
    number_day,
    state_of,
)
from campaigns.hopper import ClaimedLead
from campaigns.models import CallAttempt, CallerIdDay, Campaign, Lead
from dialer.lines.events import Ended, Timings
from dialer.node.ledger import AttemptLedger
from tests.conftest import make_campaign

DEFAULT = "+18005550100"
# Area codes and their states: two in New York, two in California, one in Florida.
AREAS = {"212": "NY", "718": "NY", "213": "CA", "415": "CA", "305": "FL"}


def test_the_area_code_comes_first_then_the_state_then_the_default() -> None:
    pool = [PoolNumber("+12125550100"), PoolNumber("+14155550100")]
    by_area = choose_caller_id("+12125559876", None, pool, DEFAULT)
    assert (by_area.caller_id, by_area.match) == ("+12125550100", "area_code")
    # Los Angeles: no 213 number, but one of California.
    by_state = choose_caller_id("+12135559876", None, pool, DEFAULT)
    assert (by_state.caller_id, by_state.match) == ("+14155550100", "state")
    # Miami: nothing in Florida.
    fallback = choose_caller_id("+13055559876", None, pool, DEFAULT)
    assert (fallback.caller_id, fallback.match) == (DEFAULT, "default")
    assert "no number of area code 305 or state FL" in fallback.detail
    # The lead's own state (from its import) wins over its area code's.
    assert choose_caller_id("+13055559876", "CA", pool, DEFAULT).caller_id == "+14155550100"
    # Outside North America there is no area code to match.
    london = choose_caller_id("+442079460123", None, pool, None)
    assert (london.caller_id, london.match) == (None, "default")
    assert "not a North American number" in london.detail


def test_a_number_at_its_daily_cap_is_skipped_and_the_detail_says_so() -> None:
    full = PoolNumber("+12125550100", daily_cap=100, used_today=100)
    same_state = PoolNumber("+17185550100", daily_cap=100, used_today=99)
    choice = choose_caller_id("+12125559876", None, [full, same_state], DEFAULT)
    assert (choice.caller_id, choice.match) == ("+17185550100", "state")
    both_full = [full, PoolNumber("+17185550100", daily_cap=100, used_today=100)]
    choice = choose_caller_id("+12125559876", None, both_full, DEFAULT)
    assert choice.caller_id == DEFAULT
    assert "+12125550100, +17185550100 reached their daily cap" in choice.detail


pool_phones = st.builds(
    lambda area, line: f"+1{area}555{line:04d}", st.sampled_from(sorted(AREAS)), st.integers(0, 30)
)
numbers = st.builds(
    PoolNumber,
    pool_phones,
    st.one_of(st.none(), st.integers(1, 5)),
    st.integers(0, 6),
)
pools = st.lists(numbers, max_size=8, unique_by=lambda n: n.phone_e164)
leads = st.builds(
    lambda area, line: f"+1{area}555{line:04d}",
    st.sampled_from([*AREAS, "602"]),  # 602: Arizona, never in a pool
    st.integers(0, 9999),
)


def expected(lead: str, pool: list[PoolNumber]) -> tuple[str | None, str]:
    """The rule restated: the least used (then lowest) number with room, of the lead's area
    code, else of its state, else the default."""
    room = [n for n in pool if n.daily_cap is None or n.used_today < n.daily_cap]
    for match, same in (
        ("area_code", lambda n: n.phone_e164[2:5] == lead[2:5]),
        ("state", lambda n: AREAS[n.phone_e164[2:5]] == AREAS.get(lead[2:5])),
    ):
        fitting = sorted((n.used_today, n.phone_e164) for n in room if same(n))
        if fitting:
            return fitting[0][1], match
    return DEFAULT, "default"


@settings(max_examples=2000, deadline=None)
@given(leads, pools)
def test_every_choice_is_the_rule_restated(lead: str, pool: list[PoolNumber]) -> None:
    choice = choose_caller_id(lead, None, pool, DEFAULT)
    assert (choice.caller_id, choice.match) == expected(lead, pool)


@settings(max_examples=500, deadline=None)
@given(st.lists(leads, max_size=40), pools)
def test_a_batch_never_passes_a_cap_and_shares_equal_numbers_out(
    batch: list[str], pool: list[PoolNumber]
) -> None:
    choices = choose_caller_ids(((lead, None) for lead in batch), pool, DEFAULT)
    used = Counter(c.caller_id for c in choices if c.match != "default")
    for number in pool:
        total = number.used_today + used[number.phone_e164]
        assert number.daily_cap is None or total <= max(number.daily_cap, number.used_today)
    # Each choice is the one-call rule applied to the pool as the calls before it left it.
    state = {n.phone_e164: n for n in pool}
    for lead, choice in zip(batch, choices, strict=True):
        assert (choice.caller_id, choice.match) == expected(lead, list(state.values()))
        if choice.match != "default":
            chosen = state[choice.caller_id or ""]
            state[chosen.phone_e164] = PoolNumber(
                chosen.phone_e164, chosen.daily_cap, chosen.used_today + 1
            )


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6), st.integers(0, 60))
def test_calls_to_one_area_spread_evenly_over_its_numbers(count: int, calls: int) -> None:
    pool = [PoolNumber(f"+1212555{i:04d}") for i in range(count)]
    choices = choose_caller_ids([("+12125559999", None)] * calls, pool, DEFAULT)
    spread = Counter(c.caller_id for c in choices)
    shares = [spread[n.phone_e164] for n in pool]
    assert max(shares) - min(shares) <= 1


def test_area_codes_and_states_of_north_american_numbers_only() -> None:
    assert (area_code("+12125550100"), state_of("+12125550100")) == ("212", "NY")
    assert (area_code("+14165550100"), state_of("+14165550100")) == ("416", "ON")
    assert area_code("+442079460123") is None and state_of("+442079460123") is None


def test_a_numbers_day_is_its_own_calendar_day() -> None:
    # 03:00 UTC is still the evening before in New York and Los Angeles, already day in Tokyo.
    at = dt.datetime(2026, 6, 10, 3, 0, tzinfo=dt.UTC)
    assert number_day("+12125550100", at) == dt.date(2026, 6, 9)
    assert number_day("+13105550100", at) == dt.date(2026, 6, 9)
    assert number_day("+81312345678", at) == dt.date(2026, 6, 10)


def test_settings_are_refused_naming_the_field_and_value() -> None:
    with pytest.raises(CallerIdError, match="number: '12'"):
        callerids.parse_number("12")
    with pytest.raises(CallerIdError, match="daily_cap: '0' is not a number of calls"):
        callerids.parse_daily_cap("0")
    with pytest.raises(CallerIdError, match="daily_cap: 'ten'"):
        callerids.parse_daily_cap("ten")
    assert callerids.parse_daily_cap("") is None
    assert callerids.parse_daily_cap("150") == 150


# -- the counts, as the attempt ledger keeps them


def claimed_leads(session: Session, campaign: Campaign, phones: list[str]) -> list[ClaimedLead]:
    rows = session.execute(
        insert(Lead).returning(Lead.id, Lead.phone_e164),
        [
            {
                "campaign_id": campaign.id,
                "list_id": campaign.lists[0].id,
                "phone_e164": phone,
                "phone_type": "fixed_line",
                "region": "US",
                "status": "claimed",
                "custom_fields": {},
                "time_zones": [],
            }
            for phone in phones
        ],
    ).all()
    session.commit()
    return [ClaimedLead(i, campaign.id, phone, None, None, None, 0, False) for i, phone in rows]


def end(ledger: AttemptLedger, attempt_id: str, outcome: str) -> None:
    now = dt.datetime.now(dt.UTC).timestamp()
    answered = now if outcome in ("human", "machine") else None
    ledger.end(Ended(attempt_id, 200, "test", outcome, Timings(now, None, answered, now)), None)


def test_the_daily_cap_holds_across_a_node_restart(engine: Engine, session: Session) -> None:
    campaign = make_campaign(session, caller_id=DEFAULT)
    callerids.add(session, campaign, "+1 212 555 0100", "2")
    # Yesterday's calls (New York's yesterday) do not count against today's cap.
    yesterday = number_day("+12125550100", dt.datetime.now(dt.UTC)) - dt.timedelta(days=1)
    session.add(CallerIdDay(campaign_id=campaign.id, day=yesterday, phone_e164="+12125550100",
                            dials=5, ended=5, live=1))  # fmt: skip
    session.commit()
    first = AttemptLedger(engine, "node-1")
    lead = claimed_leads(session, campaign, ["+12125550001"])
    opened = first.open(lead, trunk="t", default_caller_id=DEFAULT)
    assert [o.caller_id for o in opened] == ["+12125550100"]
    # A new ledger (the node started again) reads today's count from the database.
    second = AttemptLedger(engine, "node-1")
    batch = claimed_leads(session, campaign, ["+12125550002", "+12125550003"])
    opened += second.open(batch, trunk="t", default_caller_id=DEFAULT)
    assert [o.caller_id for o in opened] == ["+12125550100", "+12125550100", DEFAULT]
    shown = session.scalars(select(CallAttempt.caller_id).order_by(CallAttempt.id)).all()
    assert shown == ["+12125550100", "+12125550100", DEFAULT]


def test_the_report_gives_each_numbers_answer_rate_against_the_campaigns(
    engine: Engine, session: Session
) -> None:
    campaign = make_campaign(session, caller_id=DEFAULT)
    for number in ("+12125550100", "+13055550100"):
        callerids.add(session, campaign, number, None)
    callerids.add(session, campaign, "+14155550100", 500)
    session.commit()
    ledger = AttemptLedger(engine, "node-1")
    # New York leads get the 212 number, Florida ones the 305, Texas ones the default. People
    # answer 24 of 60 in New York, 6 of 60 in Florida (burnt), 3 of 10 in Texas.
    plan = [("+1212555", 60, 24), ("+1305555", 60, 6), ("+1214555", 10, 3)]
    for prefix, calls, answered in plan:
        leads = claimed_leads(session, campaign, [f"{prefix}{i:04d}" for i in range(calls)])
        for i, attempt in enumerate(ledger.open(leads, trunk="t", default_caller_id=DEFAULT)):
            end(ledger, attempt.attempt_id, "human" if i < answered else "no_answer")
    found = callerids.report(session, campaign, dt.datetime.now(dt.UTC), days=7)
    assert (found.ended, found.live, found.answer_rate) == (130, 33, 33 / 130)
    rows = {n.phone_e164: n for n in found.numbers}
    assert list(rows) == ["+12125550100", "+13055550100", "+14155550100", DEFAULT]
    new_york, florida, san_francisco, default = rows.values()
    assert (new_york.dials, new_york.used_today, new_york.live) == (60, 60, 24)
    assert new_york.answer_rate == 0.4 and not new_york.burnt
    assert florida.answer_rate == 0.1 and florida.burnt  # under half of 25.4%, over 50 calls
    assert san_francisco.dials == 0 and san_francisco.answer_rate is None
    assert san_francisco.daily_cap == 500 and not san_francisco.burnt
    assert not default.in_pool and default.ended == 10 and not default.burnt  # too few calls
    as_json = found.as_json()
    assert as_json["numbers"][1]["burnt"] and as_json["numbers"][1]["answer_rate"] == 0.1
    assert "BURNT" in found.text().splitlines()[3]
    # Last week's calls are not in a report of today.
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    assert callerids.report(session, campaign, tomorrow, days=1).ended == 0


def test_removing_a_number_keeps_its_calls_in_the_report(engine: Engine, session: Session) -> None:
    campaign = make_campaign(session)
    callerids.add(session, campaign, "+12125550100", None)
    session.commit()
    ledger = AttemptLedger(engine, "node-1")
    [attempt] = ledger.open(claimed_leads(session, campaign, ["+12125550001"]), trunk="t")
    end(ledger, attempt.attempt_id, "human")
    callerids.remove(session, campaign, "+12125550100")
    session.commit()
    assert callerids.pool(session, campaign.id) == []
    [row] = callerids.report(session, campaign, dt.datetime.now(dt.UTC)).numbers
    assert (row.phone_e164, row.in_pool, row.live) == ("+12125550100", False, 1)
    with pytest.raises(CallerIdError, match=r"number: \+12125550100 is not in the pool"):
        callerids.remove(session, campaign, "+12125550100")


def test_a_manager_keeps_the_pool_from_the_command_line(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import json

    from click.testing import CliRunner

    from dialer.cli import main

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'dialer.db'}")

    def dialer(*args: str) -> str:
        result = CliRunner().invoke(main, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    dialer("db", "upgrade")
    dialer("campaign", "create", "Spring sale", "--kind", "telemarketing")
    assert "(at most 150 calls a day)" in dialer(
        "callerid", "add", "Spring sale", "+1 212 555 0100", "--daily-cap", "150"
    )
    dialer("callerid", "add", "Spring sale", "+13105550100")
    refused = CliRunner().invoke(main, ["callerid", "add", "Spring sale", "555"])
    assert refused.exit_code == 1 and "number: '555'" in refused.output
    assert dialer("callerid", "list", "Spring sale").split() == [
        *("+12125550100", "212", "NY", "150"),
        *("+13105550100", "310", "CA", "no", "cap"),
    ]
    dialer("callerid", "remove", "Spring sale", "+13105550100")
    report = json.loads(dialer("callerid", "report", "Spring sale", "--json"))
    assert [(n["number"], n["daily_cap"], n["used_today"]) for n in report["numbers"]] == [
        ("+12125550100", 150, 0)
    ]
