"""Appointment campaigns: a calendar per campaign (slots, each taking up to its capacity),
appointments booked by agents from the desktop, and what the agentless reminder call makes
of them (confirmed, moved to another slot, cancelled).

A slot's `booked` count moves by one conditional UPDATE per booking (`booked < capacity`), so
two agents booking the last place at the same moment get one booking and one clear refusal;
the database's check constraint is the last guard. Functions take the caller's session and
leave the commit to it.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Sequence

from sqlalchemy import Connection, case, func, insert, literal, select, update
from sqlalchemy.orm import Session

from campaigns.models import Appointment, AppointmentSlot, Campaign, Lead, utcnow

ACTIVE = ("booked", "confirmed")
MAX_SLOTS_AT_ONCE = 1000
# A reminder offers this many free slots to move to (keys 1 to 9 choose one).
OFFERED_SLOTS = 3


class AppointmentError(ValueError):
    pass


def add_slots(
    session: Session,
    campaign: Campaign,
    first: dt.datetime,
    count: int,
    *,
    every_minutes: int = 30,
    capacity: int = 1,
    minutes: int | None = None,
) -> list[AppointmentSlot]:
    """`count` slots from `first`, `every_minutes` apart; times already in the calendar are
    left as they are. The caller commits."""
    if campaign.kind != "appointment":
        raise AppointmentError(
            f"campaign {campaign.name!r} is not an appointment campaign but {campaign.kind}"
        )
    if first.tzinfo is None:
        raise AppointmentError(f"first slot {first.isoformat()}: give its time zone")
    if not 1 <= count <= MAX_SLOTS_AT_ONCE:
        raise AppointmentError(f"count: {count}; expected 1 to {MAX_SLOTS_AT_ONCE}")
    if every_minutes < 5:
        raise AppointmentError(f"every: {every_minutes} minutes; expected at least 5")
    if capacity < 1:
        raise AppointmentError(f"capacity: {capacity}; expected at least 1")
    taken = set(
        session.scalars(
            select(AppointmentSlot.starts_at).where(AppointmentSlot.campaign_id == campaign.id)
        )
    )
    made = []
    for i in range(count):
        at = (first + dt.timedelta(minutes=every_minutes * i)).astimezone(dt.UTC)
        if at in taken:
            continue
        slot = AppointmentSlot(
            campaign_id=campaign.id,
            starts_at=at,
            minutes=minutes or every_minutes,
            capacity=capacity,
        )
        session.add(slot)
        made.append(slot)
    session.flush()
    return made


def free_slots(
    session: Session,
    campaign_id: int,
    after: dt.datetime,
    limit: int = OFFERED_SLOTS,
    exclude: int | None = None,
) -> list[AppointmentSlot]:
    """The campaign's next slots after `after` with a place left, earliest first."""
    query = (
        select(AppointmentSlot)
        .where(
            AppointmentSlot.campaign_id == campaign_id,
            AppointmentSlot.starts_at > after,
            AppointmentSlot.booked < AppointmentSlot.capacity,
        )
        .order_by(AppointmentSlot.starts_at)
        .limit(limit)
    )
    if exclude is not None:
        query = query.where(AppointmentSlot.id != exclude)
    return list(session.scalars(query))


def slots(session: Session, campaign_id: int, after: dt.datetime) -> Sequence[AppointmentSlot]:
    return session.scalars(
        select(AppointmentSlot)
        .where(AppointmentSlot.campaign_id == campaign_id, AppointmentSlot.starts_at > after)
        .order_by(AppointmentSlot.starts_at)
    ).all()


def current(session: Session, campaign_id: int, lead_id: int) -> Appointment | None:
    """The lead's appointment in the campaign that still stands (booked or confirmed)."""
    return session.scalar(
        select(Appointment)
        .where(
            Appointment.campaign_id == campaign_id,
            Appointment.lead_id == lead_id,
            Appointment.status.in_(ACTIVE),
        )
        .order_by(Appointment.id.desc())
    )


def _take(session: Session, slot_id: int, campaign_id: int) -> AppointmentSlot:
    slot = session.get(AppointmentSlot, slot_id)
    if slot is None or slot.campaign_id != campaign_id:
        raise AppointmentError(f"slot {slot_id} is not in this campaign's calendar")
    taken = session.execute(
        update(AppointmentSlot)
        .where(AppointmentSlot.id == slot_id, AppointmentSlot.booked < AppointmentSlot.capacity)
        .values(booked=AppointmentSlot.booked + 1)
        .execution_options(synchronize_session=False)
    )
    session.refresh(slot)
    if taken.rowcount != 1:
        raise AppointmentError(
            f"slot {slot.starts_at:%Y-%m-%d %H:%M} UTC is full ({slot.booked} of "
            f"{slot.capacity} places booked): choose another time"
        )
    return slot


def _give_back(session: Session, slot_id: int) -> None:
    session.execute(
        update(AppointmentSlot)
        .where(AppointmentSlot.id == slot_id, AppointmentSlot.booked > 0)
        .values(booked=AppointmentSlot.booked - 1)
        .execution_options(synchronize_session=False)
    )


def book(
    session: Session,
    campaign_id: int,
    lead_id: int,
    slot_id: int,
    *,
    agent_id: int | None = None,
    attempt_id: int | None = None,
) -> Appointment:
    """The lead's appointment in the slot: refused with AppointmentError when the slot is
    full. A lead who had one in this campaign is moved (their old place is given back)."""
    lead = session.get(Lead, lead_id)
    if lead is None or lead.campaign_id != campaign_id:
        raise AppointmentError(f"lead {lead_id} is not in this campaign")
    existing = current(session, campaign_id, lead_id)
    if existing is not None:
        if existing.slot_id == slot_id:
            return existing
        return move(session, existing, slot_id)
    _take(session, slot_id, campaign_id)
    appointment = Appointment(
        campaign_id=campaign_id,
        lead_id=lead_id,
        slot_id=slot_id,
        booked_by=agent_id,
        booked_attempt_id=attempt_id,
    )
    session.add(appointment)
    session.flush()
    return appointment


def move(session: Session, appointment: Appointment, slot_id: int) -> Appointment:
    """To another slot, if it has a place; the old one is given back."""
    if appointment.status not in ACTIVE:
        raise AppointmentError(f"appointment {appointment.id} is {appointment.status}")
    _take(session, slot_id, appointment.campaign_id)
    _give_back(session, appointment.slot_id)
    appointment.slot_id, appointment.status = slot_id, "booked"
    appointment.updated_at = utcnow()
    return appointment


def confirm(session: Session, appointment: Appointment) -> None:
    appointment.status, appointment.updated_at = "confirmed", utcnow()


def cancel(session: Session, appointment: Appointment) -> None:
    if appointment.status in ACTIVE:
        _give_back(session, appointment.slot_id)
    appointment.status, appointment.updated_at = "cancelled", utcnow()


def record_reminder(
    session: Session, appointment: Appointment, attempt_id: int, result: str
) -> None:
    """What the reminder call made of the appointment (the attempt keeps it too)."""
    appointment.reminder_attempt_id = attempt_id
    appointment.reminder_result = result
    appointment.reminded_at = utcnow()


def lead_zone(lead: Lead) -> zoneinfo.ZoneInfo:
    for name in lead.time_zones or []:
        try:
            return zoneinfo.ZoneInfo(str(name))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            continue
    return zoneinfo.ZoneInfo("UTC")


def spoken_time(at: dt.datetime, zone: zoneinfo.ZoneInfo) -> str:
    """A slot's time as a voice says it, in the called person's zone: "Tuesday, March 3, at
    10:30 AM" (espeak-ng reads the clock time well)."""
    local = at.astimezone(zone)
    hour = local.strftime("%I:%M %p").lstrip("0")
    return f"{local:%A}, {local:%B} {local.day}, at {hour}"


def adopt_imported(connection: Connection, campaign_id: int, import_id: int) -> int:
    """An import's leads that came with an appointment to come (`appointment_at`, booked in
    another system) get it in the campaign's calendar, so its reminders have something to
    remind: a slot at that time (made if missing; a slot takes at least the appointments it
    holds) and a booked appointment, unless the lead has one that stands. Set-based: one
    statement each, whatever the size of the import. Returns the appointments made."""
    now = utcnow()
    arriving = (
        Lead.campaign_id == campaign_id,
        Lead.import_id == import_id,
        Lead.appointment_at > now,
    )
    slot_there = (
        select(AppointmentSlot.id)
        .where(
            AppointmentSlot.campaign_id == campaign_id,
            AppointmentSlot.starts_at == Lead.appointment_at,
        )
        .exists()
    )
    connection.execute(
        insert(AppointmentSlot).from_select(
            ["campaign_id", "starts_at", "minutes", "capacity", "booked"],
            select(Lead.campaign_id, Lead.appointment_at, literal(30), literal(1), literal(0))
            .where(*arriving, ~slot_there)
            .distinct(),
        )
    )
    standing = (
        select(Appointment.id)
        .where(
            Appointment.campaign_id == campaign_id,
            Appointment.lead_id == Lead.id,
            Appointment.status.in_(ACTIVE),
        )
        .exists()
    )
    made = connection.execute(
        insert(Appointment).from_select(
            ["campaign_id", "lead_id", "slot_id", "status", "created_at", "updated_at"],
            select(
                Lead.campaign_id,
                Lead.id,
                AppointmentSlot.id,
                literal("booked"),
                literal(now, AppointmentSlot.starts_at.type),
                literal(now, AppointmentSlot.starts_at.type),
            )
            .join(
                AppointmentSlot,
                (AppointmentSlot.campaign_id == Lead.campaign_id)
                & (AppointmentSlot.starts_at == Lead.appointment_at),
            )
            .where(*arriving, ~standing),
        )
    ).rowcount
    held = (
        select(func.count())
        .where(Appointment.slot_id == AppointmentSlot.id, Appointment.status.in_(ACTIVE))
        .scalar_subquery()
    )
    connection.execute(
        update(AppointmentSlot)
        .where(
            AppointmentSlot.campaign_id == campaign_id,
            AppointmentSlot.starts_at.in_(select(Lead.appointment_at).where(*arriving)),
        )
        .values(
            booked=held,
            capacity=case((AppointmentSlot.capacity >= held, AppointmentSlot.capacity), else_=held),
        )
    )
    return made
