"""Agentless campaigns on a node, against the simulated carrier keying digits by RFC 2833:
an IVR survey of 50 leads stores exactly what each person keyed, per question (branches, a
key asked again, a call hung up half way, no input); appointment reminders confirm, move,
cancel, reach an agent, and record no key. Each lead's answers are the carrier's: the called
number's last digit picks the pattern it keys (`CarrierTimings.survey_fixed`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from campaigns import appointments, db, surveys
from campaigns.manage import add_agent, create_campaign, steer
from campaigns.models import (
    Appointment,
    AppointmentSlot,
    CallAttempt,
    Campaign,
    Lead,
    SurveyAnswer,
    utcnow,
)
from campaigns.surveys import END, Question, SurveyDefinition
from dialer.demo.agents import Range, SimulatedAgents
from dialer.demo.carrier import Invite, SimulatedCarrier
from dialer.demo.mix import CarrierTimings, Delay
from dialer.demo.phones import AgentPhones
from sip_config import loads
from tests.node_harness import add_leads, node_in_thread, zone_in_hours

pytestmark = pytest.mark.sip

SURVEY = SurveyDefinition(
    (
        Question(
            "q1", "How satisfied were you, from 1 to 5?", "12345", {"1": "q2", "2": "q2"}, "q3"
        ),
        Question("q2", "What went wrong? Press 1, 2 or 3.", "123", {"3": END}),
        Question("q3", "Would you recommend us? 1 for yes, 2 for no.", "12"),
    ),
    intro="Hello, a short survey from {seller}.",
    end_message="Thank you. Goodbye.",
)
# By the number's last digit: complete paths through each branch, a wrong key asked again, the
# person hanging up half way, and nobody keying anything.
SURVEY_KEYS = ("112", "23", "41", "5", "1", "72", "", "3191", "22", "121")
REMINDER_KEYS = ("1", "22", "3", "0", "")


def timings(patterns: tuple[str, ...], after_keys_s: float = 10.0) -> CarrierTimings:
    return dataclasses.replace(
        CarrierTimings.quick(),
        survey_fixed=patterns,
        survey_first_key_s=5.0,
        # A key every 4-5 s: longer than a question takes to say (about 3.5 s), so the survey
        # keeps up with the keys, and shorter than a question and its 5 s for a key.
        survey_key_gap=Delay.uniform(4.0, 5.0),
        # After the last key the person waits 10 s, less than a question asked twice with its
        # 5 s for a key each time: a survey not over by then is cut half way.
        survey_hangs_up_after_keys_s=after_keys_s,
        survey_hangs_up_s=60.0,
    )


def numbers(count: int) -> list[str]:
    return [f"+1212555{i:04d}" for i in range(count)]


def wait_for_attempts(engine: Engine, campaign_id: int, count: int, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            ended = connection.scalar(
                select(func.count()).where(
                    CallAttempt.campaign_id == campaign_id, CallAttempt.ended_at.is_not(None)
                )
            )
        if ended >= count:
            return
        time.sleep(0.5)
    raise AssertionError(f"only {ended} of {count} calls ended within {within:.0f} s")


def by_number(invites: list[Invite]) -> dict[str, Invite]:
    return {re.sub(r"\D", "", invite.number): invite for invite in invites}


def campaign(engine: Engine, name: str, kind: str, trunk: str, **settings: object) -> Campaign:
    with db.session_factory(engine)() as session:
        return create_campaign(
            session,
            name,
            kind,
            dial_mode="progressive",
            trunk_name=trunk,
            seller_name="Acme Test",
            callback_number="+12125550199",
            calling_days=list(range(7)),
            calling_start="08:00",
            calling_end="21:00",
            agentless=True,
            **settings,
        )


def expected(keys: str) -> tuple[list[tuple[str, str, str]], str]:
    """The survey's rules restated: keys answer the questions in order, a key that is not an
    answer uses one of the two tries; keys that run out mean the person hung up (partial),
    unless they keyed nothing at all (no_input after two tries)."""
    if not keys:
        return [("q1", "", "no_input")], "no_input"
    key, tries, stored = SURVEY.first, 0, []
    for digit in keys:
        if digit in SURVEY.question(key).digits:
            stored.append((key, digit, "answered"))
            key, tries = SURVEY.next_after(key, digit), 0
            if key == END:
                return stored, "completed"
        else:
            tries += 1
    return stored, "partial"


def test_an_ivr_survey_of_50_leads_stores_exactly_the_digits_keyed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dialer.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    phones = numbers(50)
    with SimulatedCarrier("survey=1", timings=timings(SURVEY_KEYS)) as carrier:
        trunk = carrier.trunk_table(
            "carrier", caller_id="+12125550100", ring_timeout=15, max_cps=20, max_channels=24
        )
        made = campaign(engine, "Survey", "survey", "carrier", max_lines=24)
        with db.session_factory(engine)() as session:
            row = session.get_one(Campaign, made.id)
            surveys.save(session, row, SURVEY)
            session.commit()
        add_leads(engine, made.id, made.lists[0].id, phones, zone_in_hours())
        with db.session_factory(engine)() as session:
            steer(session, session.get_one(Campaign, made.id), "start")
        with node_in_thread(
            engine, loads(trunk), workers=6, name="kinds-test", prompts_dir=tmp_path / "prompts"
        ):
            wait_for_attempts(engine, made.id, 50, within=240)
        invites = by_number(carrier.invites())
    with db.session_factory(engine)() as session:
        attempts = session.scalars(select(CallAttempt).where(CallAttempt.campaign_id == made.id))
        attempt_of = {a.phone_e164: a for a in attempts}
        leads = {lead.phone_e164: lead for lead in session.scalars(select(Lead))}
        answers: dict[int, list[tuple[str, str, str]]] = {}
        for answer in session.scalars(select(SurveyAnswer).order_by(SurveyAnswer.id)):
            assert answer.source == "ivr"
            answers.setdefault(answer.lead_id, []).append(
                (answer.question, answer.digits, answer.status)
            )
    assert len(attempt_of) == 50, "each lead is called once"
    results = {}
    for phone in phones:
        attempt, lead = attempt_of[phone], leads[phone]
        keyed = "".join(digit for _, digit in invites[phone.lstrip("+")].keys)
        assert keyed == SURVEY_KEYS[int(phone[-1]) % len(SURVEY_KEYS)]
        stored, result = expected(keyed)
        assert attempt.outcome == "human", (phone, attempt.outcome, attempt.failure_reason)
        invite = invites[phone.lstrip("+")]
        why = (phone, invite.keys, invite.ended, attempt.ivr_result, attempt.answered_at,
               attempt.ended_at, attempt.amd_ms)  # fmt: skip
        assert answers.get(lead.id, []) == stored, why
        assert attempt.ivr_result == result, (phone, keyed)
        assert lead.status == ("done" if result == "completed" else "recycled"), phone
        results[result] = results.get(result, 0) + 1
    assert results == {"completed": 25, "partial": 20, "no_input": 5}
    engine.dispose()


def test_appointment_reminders_confirm_move_cancel_reach_an_agent_and_record_no_key(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'dialer.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    phones = numbers(len(REMINDER_KEYS))
    with (
        # The reminder's menu names the appointment's time (about 12 s): people stay on.
        SimulatedCarrier("survey=1", timings=timings(REMINDER_KEYS, 40.0)) as carrier,
        AgentPhones() as agent_phones,
    ):
        trunk = carrier.trunk_table(
            "carrier", caller_id="+12125550100", ring_timeout=15, max_cps=20, max_channels=10
        )
        made = campaign(engine, "Reminders", "appointment", "carrier", max_lines=5)
        add_leads(engine, made.id, made.lists[0].id, phones, zone_in_hours())
        day = (utcnow() + dt.timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
        with db.session_factory(engine)() as session:
            row = session.get_one(Campaign, made.id)
            [booked_slot] = appointments.add_slots(session, row, day, 1, capacity=10)
            others = appointments.add_slots(
                session, row, day + dt.timedelta(days=1), 3, every_minutes=60
            )
            lead_ids = {lead.phone_e164: lead.id for lead in session.scalars(select(Lead))}
            for phone in phones:
                appointments.book(session, made.id, lead_ids[phone], booked_slot.id)
            agent = add_agent(session, "ana", agent_phones.uri("ana"), row)
            session.commit()
            booked_id, other_ids, agent_id = booked_slot.id, [s.id for s in others], agent.id
        bots = SimulatedAgents(engine, made.id, talk=Range(1, 2), wrap=Range(0.5, 1), seed=3)
        stop = threading.Event()
        bot_thread = threading.Thread(target=bots.run, args=(stop, 0.1), daemon=True)
        bot_thread.start()
        try:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and bots.agent_ids() and not _ready(engine):
                time.sleep(0.2)
            with db.session_factory(engine)() as session:
                steer(session, session.get_one(Campaign, made.id), "start")
            with node_in_thread(
                engine, loads(trunk), workers=2, name="kinds-test", prompts_dir=tmp_path / "prompts"
            ):
                wait_for_attempts(engine, made.id, len(phones), within=120)
                # The agent's disposition of the call put through to them.
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and bots.handled < 1:
                    time.sleep(0.2)
        finally:
            stop.set()
            bot_thread.join(timeout=10)
        invites = by_number(carrier.invites())
        agent_calls = agent_phones.calls()
    with db.session_factory(engine)() as session:
        attempt_of = {
            a.phone_e164: a
            for a in session.scalars(select(CallAttempt).where(CallAttempt.campaign_id == made.id))
        }
        appointment_of = {
            a.lead_id: a for a in session.scalars(select(Appointment).order_by(Appointment.id))
        }
        booked = {s.id: s.booked for s in session.scalars(select(AppointmentSlot))}
        for phone in phones:
            keyed = "".join(digit for _, digit in invites[phone.lstrip("+")].keys)
            assert keyed == REMINDER_KEYS[int(phone[-1])]
        confirm, move, cancel, to_agent, silent = (
            (attempt_of[p], appointment_of[lead_ids[p]]) for p in phones
        )
        results = [(a.outcome, a.ivr_result, a.failure_reason) for a, _ in (confirm, move,
                   cancel, to_agent, silent)]  # fmt: skip
        assert all(outcome == "human" for outcome, _, _ in results), results
        assert confirm[0].ivr_result == "confirmed"
        assert (confirm[1].status, confirm[1].reminder_result) == ("confirmed", "confirmed")
        # "2", then "2": the second of the free slots offered, the earliest first.
        assert move[0].ivr_result == "rescheduled"
        assert (move[1].status, move[1].slot_id) == ("booked", other_ids[1])
        assert cancel[0].ivr_result == "cancelled" and cancel[1].status == "cancelled"
        # Every slot counts its appointments still standing (the agent's call may have booked
        # one too).
        standing: dict[int, int] = {}
        for appointment in appointment_of.values():
            if appointment.status in appointments.ACTIVE:
                standing[appointment.slot_id] = standing.get(appointment.slot_id, 0) + 1
        assert booked == {slot: standing.get(slot, 0) for slot in (booked_id, *other_ids)}
        assert to_agent[0].ivr_result == "agent" and to_agent[1].reminder_result == "agent"
        assert to_agent[0].agent_id == agent_id and to_agent[0].bridged_at is not None
        assert not to_agent[0].abandoned
        assert len(agent_calls) == 1
        assert silent[0].ivr_result == "no_input"
        assert (silent[1].status, silent[1].reminder_result) == ("booked", "no_input")
        leads = {lead.phone_e164: lead for lead in session.scalars(select(Lead))}
        statuses = [leads[p].status for p in phones]
        assert statuses[:3] == ["done", "done", "done"] and statuses[4] == "recycled"
        assert statuses[3] not in ("dialing", "claimed"), "the agent's disposition decided it"
    engine.dispose()


def _ready(engine: Engine) -> bool:
    from campaigns.models import AgentSession

    with engine.connect() as connection:
        return bool(connection.scalar(select(func.count()).where(AgentSession.state == "ready")))
