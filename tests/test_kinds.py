"""The kinds' data on the database (SQLite and PostgreSQL): an agent books a lead into a slot
with the disposition and a full slot is refused, saying so, with nothing half-written; a
reminder's move and cancel give places back; a survey read by the agent keeps its answers,
checked against the survey; the survey's editor in the console."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from campaigns import agents, appointments, surveys
from campaigns.imports import import_leads
from campaigns.models import (
    Appointment,
    AppointmentSlot,
    CallAttempt,
    Campaign,
    Disposition,
    Lead,
    SurveyAnswer,
    utcnow,
)
from tests.conftest import make_campaign
from tests.test_agents import a_lead, logged_in, state


def in_wrap_up(session: Session, campaign: Campaign, phone: str) -> tuple[int, Lead, int]:
    """An agent (logged in once) whose call with a new lead has just ended."""
    existing = session.scalar(select(agents.AgentSession.user_id))
    user_id = existing if existing is not None else logged_in(session, campaign)
    agents.ready(session, user_id)
    lead = a_lead(session, campaign, phone)
    attempt = CallAttempt(lead_id=lead.id, campaign_id=campaign.id, phone_e164=phone)
    session.add(attempt)
    session.commit()
    pop = agents.screen_pop(lead, campaign, "new", agent="ana")
    assert agents.reserve_for_call(session, user_id, attempt.id, pop)
    agents.bridged(session, user_id, attempt.id, utcnow())
    agents.call_ended(session, user_id, attempt.id, connected=True, at=utcnow())
    session.commit()
    return user_id, lead, attempt.id


def test_an_agent_books_into_a_slot_and_a_full_one_is_refused(session: Session) -> None:
    campaign = make_campaign(session, "Dental", kind="appointment")
    start = (utcnow() + dt.timedelta(days=1)).replace(microsecond=0)
    [slot] = appointments.add_slots(session, campaign, start, 1, capacity=1)
    session.commit()
    user_id, lead, attempt_id = in_wrap_up(session, campaign, "+12125550101")
    with pytest.raises(agents.AgentError, match="choose the appointment's time"):
        agents.disposition(session, user_id, "BOOKED")
    agents.disposition(session, user_id, "BOOKED", appointment_slot=slot.id)
    booked = session.scalars(select(Appointment)).one()
    assert (booked.lead_id, booked.slot_id, booked.booked_by) == (lead.id, slot.id, user_id)
    assert booked.booked_attempt_id == attempt_id
    # The next lead wants the same time: the slot has no place left.
    user_id, other, _ = in_wrap_up(session, campaign, "+12125550102")
    with pytest.raises(agents.AgentError, match=r"full \(1 of 1 places booked\)"):
        agents.disposition(session, user_id, "BOOKED", appointment_slot=slot.id)
    session.rollback()
    assert state(session, user_id).state == "wrap_up", "the agent can choose another time"
    assert session.scalars(select(Appointment)).all() == [booked]
    assert session.scalar(select(Disposition).where(Disposition.lead_id == other.id)) is None
    assert session.get_one(AppointmentSlot, slot.id).booked == 1


def test_moving_and_cancelling_give_the_places_back(session: Session) -> None:
    campaign = make_campaign(session, "Dental", kind="appointment")
    start = (utcnow() + dt.timedelta(days=1)).replace(microsecond=0)
    first, second = appointments.add_slots(session, campaign, start, 2, capacity=1)
    lead = a_lead(session, campaign)
    appointment = appointments.book(session, campaign.id, lead.id, first.id)
    session.commit()
    assert appointments.free_slots(session, campaign.id, utcnow()) == [second]
    appointments.move(session, appointment, second.id)
    session.commit()
    session.expire_all()
    assert (first.booked, second.booked, appointment.slot_id) == (0, 1, second.id)
    appointments.cancel(session, appointment)
    session.commit()
    session.expire_all()
    assert (second.booked, appointment.status) == (0, "cancelled")
    assert appointments.current(session, campaign.id, lead.id) is None


def test_a_survey_read_by_the_agent_keeps_its_answers(session: Session) -> None:
    campaign = make_campaign(session, "Feedback", kind="survey")
    survey = surveys.SurveyDefinition(
        (
            surveys.Question("q1", "Happy?", "12", {"2": "q2"}),
            surveys.Question("q2", "Why not?", "123"),
        )
    )
    surveys.save(session, campaign, survey)
    session.commit()
    user_id, lead, attempt_id = in_wrap_up(session, campaign, "+12125550103")
    with pytest.raises(agents.AgentError, match="answer to 'q2': '7' is not one of"):
        agents.disposition(session, user_id, "COMPLETED", survey_answers={"q1": "2", "q2": "7"})
    session.rollback()
    agents.disposition(session, user_id, "COMPLETED", survey_answers={"q1": "2", "q2": "3"})
    rows = session.scalars(select(SurveyAnswer).order_by(SurveyAnswer.id)).all()
    assert [(r.question, r.digits, r.source, r.attempt_id) for r in rows] == [
        ("q1", "2", "agent", attempt_id),
        ("q2", "3", "agent", attempt_id),
    ]
    assert session.get_one(Lead, lead.id).status == "done"


def test_appointments_imported_with_the_leads_are_in_the_calendar(
    engine: Engine, session: Session, tmp_path: Path
) -> None:
    """A reminders list from another system: each lead's appointment to come gets its slot
    (made where the calendar has none; one holding more appointments than its places takes
    them all) and a booked appointment, so the reminder call has it to read out; an
    appointment already past is left on the lead."""
    campaign = make_campaign(session, "Dental", kind="appointment")
    day = (utcnow() + dt.timedelta(days=3)).replace(hour=15, minute=0, second=0, microsecond=0)
    [ten] = appointments.add_slots(session, campaign, day, 1, capacity=1)
    earlier = a_lead(session, campaign, "+12125550199")
    appointments.book(session, campaign.id, earlier.id, ten.id)
    session.commit()
    rows = [
        ("(212) 555-0101", day),  # the slot there, full already
        ("(212) 555-0102", day + dt.timedelta(minutes=30)),
        ("(212) 555-0103", day + dt.timedelta(minutes=30)),
        ("(212) 555-0104", day - dt.timedelta(days=10)),  # past
        ("(212) 555-0105", None),
    ]
    csv = "phone,appointment\n" + "".join(
        f"{phone},{'' if at is None else at.isoformat()}\n" for phone, at in rows
    )
    path = tmp_path / "reminders.csv"
    path.write_text(csv)
    summary = import_leads(engine, path, "Dental")
    assert summary.imported == 5
    session.expire_all()
    slots = {
        slot.starts_at: (slot.booked, slot.capacity)
        for slot in session.scalars(select(AppointmentSlot))
    }
    assert slots == {day: (2, 2), day + dt.timedelta(minutes=30): (2, 2)}
    booked = {
        lead.phone_e164: appointments.current(session, campaign.id, lead.id)
        for lead in session.scalars(select(Lead))
    }
    assert booked["+12125550101"] is not None and booked["+12125550101"].slot_id == ten.id
    assert booked["+12125550102"] is not None and booked["+12125550103"] is not None
    assert booked["+12125550104"] is None and booked["+12125550105"] is None
    assert booked["+12125550199"] is not None
    # A free place is one a manager added, not one an import made room for.
    assert appointments.free_slots(session, campaign.id, utcnow()) == []
