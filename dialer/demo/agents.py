"""Simulated agents: bots that work a campaign's agents through the agent service, as people
at the agent desktop do. Each logs in and goes ready, talks for a while once a call is put
through to their phone (a SIPp phone that answers by itself), hangs up, wraps up for a while
and dispositions. Managers use them to rehearse a campaign before real agents take it."""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from campaigns import agents, appointments, surveys
from campaigns.db import session_factory
from campaigns.models import (
    AgentGroupMember,
    AgentSession,
    Campaign,
    CampaignAgentGroup,
    User,
    utcnow,
)

log = logging.getLogger(__name__)

# What the bots record after a conversation, by campaign kind (code, weight).
DISPOSITION_MIX: Mapping[str, tuple[tuple[str, float], ...]] = {
    "telemarketing": (("SALE", 0.2), ("NO_SALE", 0.4), ("NOT_INTERESTED", 0.3), ("CALLBACK", 0.1)),
    "collections": (("RPC", 0.3), ("PTP", 0.3), ("REFUSED", 0.25), ("CALLBACK", 0.15)),
    "survey": (("COMPLETED", 0.8), ("REFUSED", 0.2)),
    "appointment": (("BOOKED", 0.4), ("NOT_INTERESTED", 0.5), ("CALLBACK", 0.1)),
}


@dataclass(frozen=True)
class Range:
    """Seconds, drawn uniformly from `low` to `high`."""

    low: float
    high: float

    @classmethod
    def parse(cls, text: str) -> Range:
        """ "20-90" or "30"."""
        low, _, high = text.partition("-")
        try:
            values = cls(float(low), float(high or low))
        except ValueError:
            raise ValueError(f"{text!r} is not seconds or a range of seconds like 20-90") from None
        if not 0 <= values.low <= values.high:
            raise ValueError(f"{text!r}: expected 0 <= low <= high")
        return values

    def draw(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)


class SimulatedAgents:
    def __init__(
        self,
        engine: Engine,
        campaign_id: int,
        *,
        talk: Range = Range(20, 90),
        wrap: Range = Range(5, 15),
        seed: int | None = None,
    ) -> None:
        self.engine = engine
        self.campaign_id = campaign_id
        self.talk = talk
        self.wrap = wrap
        self.rng = random.Random(seed)
        self.sessions = session_factory(engine)
        # (agent, attempt, "talk" or "wrap") -> when the bot ends that part of the call: it
        # hangs up, or dispositions; `done` holds the parts it has ended.
        self.deadlines: dict[tuple[int, int, str], dt.datetime] = {}
        self.done: set[tuple[int, int, str]] = set()
        self.handled = 0
        with self.sessions() as session:
            campaign = session.get_one(Campaign, campaign_id)
            self.kind = campaign.kind

    def agent_ids(self) -> list[int]:
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(User.id)
                    .join(AgentGroupMember, AgentGroupMember.user_id == User.id)
                    .join(
                        CampaignAgentGroup,
                        CampaignAgentGroup.group_id == AgentGroupMember.group_id,
                    )
                    .where(CampaignAgentGroup.campaign_id == self.campaign_id, User.active)
                    .distinct()
                )
            )

    def step(self) -> None:
        """One look at every agent of the campaign, acting where a person would now."""
        now = utcnow()
        ids = self.agent_ids()
        with self.sessions() as session:
            states = {
                row.user_id: row
                for row in session.scalars(
                    select(AgentSession).where(AgentSession.user_id.in_(ids))
                )
            }
            for user_id in ids:
                try:
                    self._act(session, user_id, states.get(user_id), now)
                except agents.AgentError as error:
                    # The node moved the agent meanwhile: look again at the next step.
                    log.debug("agent %d: %s", user_id, error)
                    session.rollback()
        current = {(row.user_id, row.current_attempt_id) for row in states.values()}
        self.deadlines = {k: v for k, v in self.deadlines.items() if k[:2] in current}
        self.done = {key for key in self.done if key[:2] in current}

    def _act(
        self, session: Session, user_id: int, row: AgentSession | None, now: dt.datetime
    ) -> None:
        if row is None or row.state == "logged_out" or row.campaign_id != self.campaign_id:
            agents.login(session, user_id, self.campaign_id)
            agents.ready(session, user_id)
        elif row.state == "paused":
            agents.ready(session, user_id)
        elif row.state in ("on_call", "wrap_up") and row.current_attempt_id is not None:
            part = "talk" if row.state == "on_call" else "wrap"
            key = (user_id, row.current_attempt_id, part)
            if key in self.done or now < self._deadline(key, row.state_since):
                return
            self.done.add(key)
            if part == "talk":
                agents.hangup(session, user_id)
            else:
                self._disposition(session, user_id)
                self.handled += 1

    def _deadline(self, key: tuple[int, int, str], since: dt.datetime) -> dt.datetime:
        if key not in self.deadlines:
            seconds = (self.talk if key[2] == "talk" else self.wrap).draw(self.rng)
            self.deadlines[key] = since + dt.timedelta(seconds=seconds)
        return self.deadlines[key]

    def _disposition(self, session: Session, user_id: int) -> None:
        mix = DISPOSITION_MIX[self.kind]
        code = self.rng.choices([code for code, _ in mix], [weight for _, weight in mix])[0]
        extra: dict[str, object] = {}
        if code == "CALLBACK":
            extra["callback_at"] = utcnow() + dt.timedelta(hours=self.rng.choice((1, 4, 24)))
        if code == "PTP":
            extra["promise_amount"] = Decimal(self.rng.randrange(20, 500))
            extra["promise_date"] = utcnow().date() + dt.timedelta(days=self.rng.randrange(1, 14))
        if code == "BOOKED":  # into the calendar's next free slot, as an agent would offer
            free = appointments.free_slots(session, self.campaign_id, utcnow(), limit=1)
            if free:
                extra["appointment_slot"] = free[0].id
            else:
                code = "NOT_INTERESTED"
        if self.kind == "survey" and code == "COMPLETED":
            extra["survey_answers"] = self._read_survey(session)
        agents.disposition(session, user_id, code, notes="simulated agent", **extra)  # type: ignore[arg-type]

    def _read_survey(self, session: Session) -> dict[str, str]:
        """The person's answers as the agent reads the survey to them, branches followed."""
        survey = surveys.load(session, self.campaign_id)
        answers: dict[str, str] = {}
        key = survey.first if survey is not None else surveys.END
        while survey is not None and key != surveys.END:
            digit = self.rng.choice(survey.question(key).digits)
            answers[key] = digit
            key = survey.next_after(key, digit)
        return answers

    def run(self, stop: threading.Event, every: float = 0.2) -> None:
        """Steps until `stop` is set (in a thread of its own)."""
        while not stop.wait(every):
            try:
                self.step()
            except Exception:  # a bot keeps working through a failed step
                log.exception("simulated agents: step failed")
