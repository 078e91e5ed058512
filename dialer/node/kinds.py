"""The campaign kinds' IVR flows as a node runs them: which flow a call of an agentless
campaign gets, its prompts rendered, and what it stores, in the database, as it goes.

- survey: the campaign's survey (`campaigns.surveys`), its prompts rendered once when the
  runner starts or the survey changes; each answer is committed as it comes.
- appointment reminders: each lead's reminder names its appointment's time and offers the next
  free slots, so its two prompts are rendered per call, in a thread, from the moment the lead
  is dialled (the ringing leaves seconds for it; espeak-ng takes about 0.1 s a prompt, which
  the node's loop must not wait for); confirm, cancel and move are committed at the key press.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
from pathlib import Path

from sqlalchemy import Engine

from campaigns import appointments, db, surveys
from campaigns.models import Appointment, AppointmentSlot, CallAttempt, Campaign, Lead, utcnow
from dialer.calls.flow import ChangeAppointment, IvrFlow, IvrTiming, SaveAnswer, Store
from dialer.calls.reminder import ReminderCall, ReminderScript
from dialer.calls.survey import SurveyCall, SurveyScript
from dialer.prompts import PROMPT_TEXTS, Prompt, build, prompt_path

log = logging.getLogger(__name__)

AGENTLESS_KINDS = ("survey", "appointment")
SLOT_KEYS = "123456789"
# Slots a reminder offers start at least this long after the call.
RESCHEDULE_NOT_BEFORE = dt.timedelta(hours=1)


class KindError(ValueError):
    pass


_renders: concurrent.futures.ThreadPoolExecutor | None = None


def render_pool() -> concurrent.futures.ThreadPoolExecutor:
    """The threads that render reminders' prompts, shared by a process's campaigns (espeak-ng
    and sox run as processes: two at a time is what two cores take beside the calls)."""
    global _renders
    if _renders is None:
        _renders = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="prompts")
    return _renders


def runs_ivr(campaign: Campaign) -> bool:
    """The campaign's calls run an IVR flow instead of going to agents."""
    return campaign.agentless and campaign.kind in AGENTLESS_KINDS


def survey_script(
    definition: surveys.SurveyDefinition, seller: str, directory: Path | None
) -> SurveyScript:
    """The survey's prompts, rendered now (or found in the cache)."""

    def spoken(name: str, text: str) -> str:
        return str(build(Prompt(name, text.replace("{seller}", seller)), directory))

    return SurveyScript(
        definition=definition,
        intro=spoken("survey_intro", definition.intro),
        questions={q.key: spoken(f"survey_{q.key}", q.text) for q in definition.questions},
        end_message=spoken("survey_end", definition.end_message),
        not_understood=str(prompt_path("not_understood", directory)),
        goodbye=str(prompt_path("goodbye", directory)),
    )


def reminder_menu_text(seller: str, when: str) -> str:
    return (
        f"Hello. This is a reminder of your appointment with {seller}, on {when}. "
        + PROMPT_TEXTS["appointment_menu"]
    )


def slots_menu_text(times: list[str]) -> str:
    return " ".join(
        f"For {when}, press {key}." for key, when in zip(SLOT_KEYS, times, strict=False)
    )


class KindFlows:
    """The node's `FlowSource` for one agentless campaign (`dialer.calls.shell`)."""

    def __init__(
        self,
        engine: Engine,
        campaign: Campaign,
        prompts_dir: Path | None,
        executor: concurrent.futures.Executor,
        timing: IvrTiming | None = None,
    ) -> None:
        self.writes = db.session_factory(db.writer(engine))
        self.reads = db.session_factory(engine)
        self.prompts_dir = prompts_dir
        self.executor = executor
        self.timing = timing or IvrTiming()
        self.reminders: dict[str, concurrent.futures.Future[ReminderScript]] = {}
        self.survey: SurveyScript | None = None
        self.update(campaign)

    def update(self, campaign: Campaign) -> None:
        """The campaign (or its survey) changed: new calls follow it. Raises KindError when
        the campaign cannot run (a survey campaign without a survey)."""
        self.campaign_id = campaign.id
        self.kind = campaign.kind
        self.seller = campaign.seller_name or ""
        if campaign.kind == "survey":
            with self.reads() as session:
                definition = surveys.load(session, campaign.id)
            if definition is None:
                raise KindError(
                    f"survey campaign {campaign.name!r} has no survey: write its questions "
                    "(console: the campaign's Survey page)"
                )
            self.survey = survey_script(definition, self.seller, self.prompts_dir)

    # -- FlowSource

    def prepare(self, customer: str, lead_id: int) -> None:
        """Called when the lead is dialled: a reminder's prompts start rendering."""
        if self.kind == "appointment":
            self.reminders[customer] = self.executor.submit(self._reminder, lead_id)

    def start(self, customer: str) -> IvrFlow | None:
        if self.kind == "survey":
            assert self.survey is not None
            return SurveyCall.of(customer, self.survey, timing=self.timing)
        future = self.reminders.get(customer)
        if future is None:
            raise KindError(f"call {customer}: no reminder was prepared for it")
        if not future.done():
            return None
        return ReminderCall.of(customer, future.result(), timing=self.timing)

    def forget(self, customer: str) -> None:
        future = self.reminders.pop(customer, None)
        if future is not None:
            future.cancel()

    def store(self, action: Store) -> bool:
        with self.writes() as session:
            if isinstance(action, SaveAnswer):
                attempt = session.get_one(CallAttempt, int(action.attempt_id))
                surveys.record_answer(
                    session, attempt, action.question, action.digits, status=action.status
                )
                session.commit()
                return True
            assert isinstance(action, ChangeAppointment)
            appointment = session.get_one(Appointment, action.appointment_id)
            try:
                if action.change == "confirm":
                    appointments.confirm(session, appointment)
                elif action.change == "cancel":
                    appointments.cancel(session, appointment)
                else:
                    assert action.slot_id is not None
                    appointments.move(session, appointment, action.slot_id)
            except appointments.AppointmentError as refused:
                session.rollback()
                log.info("call %s: %s", action.attempt_id, refused)
                return False
            session.commit()
            return True

    # -- reminders (in the executor's thread)

    def _reminder(self, lead_id: int) -> ReminderScript:
        directory = self.prompts_dir
        bundled = {
            name: str(prompt_path(name, directory))
            for name in (
                "appointment_confirmed",
                "appointment_cancelled",
                "appointment_moved",
                "appointment_taken",
                "appointment_no_slots",
                "not_understood",
                "goodbye",
            )
        }
        with self.reads() as session:
            lead = session.get_one(Lead, lead_id)
            appointment = appointments.current(session, self.campaign_id, lead_id)
            zone = appointments.lead_zone(lead)
            menu = bundled["goodbye"]
            offered: list[tuple[int, str]] = []
            times: list[str] = []
            if appointment is not None:
                slot = session.get_one(AppointmentSlot, appointment.slot_id)
                when = appointments.spoken_time(slot.starts_at, zone)
                menu = str(build(Prompt("reminder", reminder_menu_text(self.seller, when)),
                                 directory))  # fmt: skip
                free = appointments.free_slots(
                    session,
                    self.campaign_id,
                    utcnow() + RESCHEDULE_NOT_BEFORE,
                    exclude=appointment.slot_id,
                )
                for key, other in zip(SLOT_KEYS, free, strict=False):
                    offered.append((other.id, key))
                    times.append(appointments.spoken_time(other.starts_at, zone))
        slots_menu = (
            str(build(Prompt("reminder_slots", slots_menu_text(times)), directory))
            if times
            else None
        )
        return ReminderScript(
            appointment_id=None if appointment is None else appointment.id,
            menu=menu,
            slots=tuple(offered),
            slots_menu=slots_menu,
            confirmed=bundled["appointment_confirmed"],
            cancelled=bundled["appointment_cancelled"],
            moved=bundled["appointment_moved"],
            taken=bundled["appointment_taken"],
            no_slots=bundled["appointment_no_slots"],
            not_understood=bundled["not_understood"],
            goodbye=bundled["goodbye"],
        )
