"""A campaign runner: one per campaign a node works. At each step it builds the pacing view
from live state (the campaign's agents by state and time in state, its attempts not yet
classified, its live answers waiting), asks its pacer how many calls to launch, claims that
many leads from the hopper, looks at each through the gate once more right before the INVITE
(a number listed, a window closed since the claim), commits the attempt rows and originates."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from campaigns import agents, dnc, hopper
from campaigns.compliance import (
    DIAL_MODE_KIND,
    DialHistory,
    DialKind,
    Verdict,
    may_dial,
)
from campaigns.hopper import ClaimedLead
from campaigns.models import Campaign, utcnow
from dialer.amd import AmdSettings
from dialer.calls.shell import IvrFlows
from dialer.calls.voicemail import VoicemailDrops, campaign_voicemail_settings
from dialer.connect import Connector, amd_tap, campaign_connect_settings
from dialer.lines.events import Ended, Timings
from dialer.node.kinds import KindFlows, render_pool, runs_ivr
from dialer.node.ledger import CANCELLED_REASON
from dialer.pacing import Pacer, PacingView, make_pacer
from sip_config import SipConfigError

if TYPE_CHECKING:
    from dialer.node.node import Node

log = logging.getLogger(__name__)

# How often a runner decides, and at most how often when something changed (an agent freed, a
# call classified): the pacer was tuned deciding every second; more often is as good.
STEP_EVERY = 1.0
STEP_AT_MOST = 0.1
CALLBACK_CHECK_EVERY = 5.0
# The 30-day abandon window is read again this often (and counted by the node in between).
WINDOW_REREAD_EVERY = 30.0
PROGRESSIVE = make_pacer("progressive")
# Lines per logged-in agent when the campaign sets no limit of its own (the simulator's too).
LINES_PER_AGENT = 4
LINES_FOR_ONE_AGENT = 4


@dataclass
class LiveCall:
    """A customer call the node placed, from the INVITE to its `Ended`."""

    attempt_id: str
    campaign_id: int
    lead: ClaimedLead
    kind: DialKind
    dialed: float  # monotonic
    agent_id: int | None = None
    # The agent was reserved before the dial (preview, manual, personal callback): the call
    # goes to them on answer, without waiting for AMD.
    direct: bool = False
    resolved: bool = False
    bridged: float | None = None  # monotonic
    # Why the node hung up (a stop, a shutdown), for the attempt's record.
    hung_up_because: str | None = None
    # The connector gave the person up (the safe-harbor message started): counted then.
    abandon_counted: bool = False


@dataclass
class RunnerFigures:
    """What `dialer status` and the console show of a runner, and the bench's timings."""

    state: str = "starting"
    detail: str = ""
    # Seconds per step: the whole of it, and its parts (the pacing decision: view and pacer;
    # the hopper's claim; the dial: the gate's second look, attempt rows, originate).
    decisions: list[float] = field(default_factory=list)
    decided: list[float] = field(default_factory=list)
    claimed: list[float] = field(default_factory=list)
    dialled: list[float] = field(default_factory=list)
    last_claim_empty: bool = False
    placed: int = 0


def never_dialled(attempt_id: str, reason: str) -> Ended:
    """The `Ended` of a call the pool refused to place."""
    now = time.time()
    return Ended(attempt_id, 0, reason, "failed", Timings(now, None, None, now))


def pacer_for(campaign: Campaign, live: int, abandoned: int) -> Pacer:
    """The campaign's pacer, starting from its rolling 30-day window as the database has it:
    a restart never resets the abandon budget."""
    if campaign.dial_mode == "predictive":
        return make_pacer(
            "predictive",
            target_abandon=campaign.abandon_target,
            window_live_answers=float(live),
            window_abandons=float(abandoned),
        )
    if campaign.dial_mode == "power":
        return make_pacer("power", ratio=campaign.dial_ratio)
    return make_pacer(campaign.dial_mode)


class CampaignRunner:
    def __init__(self, node: Node, campaign: Campaign) -> None:
        self.node = node
        self.campaign = campaign
        self.id = campaign.id
        self.figures = RunnerFigures()
        self.calls: dict[str, LiveCall] = {}
        self.next_step = 0.0
        self.next_callback_check = 0.0
        self.error: str | None = None
        live, abandoned = self.window()
        self.live_answers, self.abandons, self.window_read_at = live, abandoned, time.monotonic()
        self.pacer = pacer_for(campaign, live, abandoned)
        self.rules = hopper.campaign_rules(campaign)
        self.connector: Connector | None = None
        self.voicemail: VoicemailDrops | None = None
        try:
            settings = campaign_connect_settings(campaign, node.prompts_dir, node.recordings_dir)
            amd = AmdSettings(**campaign.amd_settings)
            self.tap = amd_tap(amd)
            voicemail = campaign_voicemail_settings(campaign, amd, node.prompts_dir)
            node.config.trunk(campaign.trunk_name or "")
        except Exception as error:
            self.error = f"campaign {campaign.name!r} cannot dial: {error}"
            log.error("%s", self.error)
            return
        self.connector = Connector(node.lines, settings, self._pick_agent)
        # Answering machines: hung up on by the connector or the IVR flow, or given the
        # campaign's message after their beep.
        self.voicemail = VoicemailDrops(node.lines, voicemail)
        # Agentless survey and reminder campaigns: the IVR flow takes each answered call (and
        # hands it to the connector when the person asks for someone).
        self.kinds: KindFlows | None = None
        self.ivr: IvrFlows | None = None
        if runs_ivr(campaign):
            try:
                self.kinds = KindFlows(node.engine, campaign, node.prompts_dir, render_pool())
            except Exception as error:
                self.error = f"campaign {campaign.name!r} cannot dial: {error}"
                log.error("%s", self.error)
                self.connector = None
                return
            self.ivr = IvrFlows(node.lines, self.connector, self.kinds)

    # -- state

    @property
    def dialing_asked(self) -> bool:
        """The campaign dials: its personal callbacks always, its leads unless in preview."""
        return (
            self.campaign.status == "active"
            and self.connector is not None
            and not self.node.stopping
        )

    def window(self) -> tuple[int, int]:
        """The campaign's live answers and abandons in the rolling 30 days (47 CFR
        64.1200(a)(7)), as the database counts them."""
        with self.node.read_session() as session:
            return hopper.abandon_window(session, self.id, utcnow())

    def update(self, campaign: Campaign) -> None:
        """The campaign's settings changed: new calls follow them (its safe-harbor message, AMD
        settings, recordings); the pacer keeps what it learned unless the dial mode changed."""
        if self.connector is not None:
            try:
                self.connector.settings = campaign_connect_settings(
                    campaign, self.node.prompts_dir, self.node.recordings_dir
                )
                amd = AmdSettings(**campaign.amd_settings)
                self.tap = amd_tap(amd)
                if self.voicemail is not None:
                    self.voicemail.settings = campaign_voicemail_settings(
                        campaign, amd, self.node.prompts_dir
                    )
            except Exception as error:  # a bad new setting: keep dialing with the old ones
                log.error("campaign %r: new settings refused: %s", campaign.name, error)
        if self.kinds is not None:
            try:
                self.kinds.update(campaign)
            except Exception as error:  # a survey made unusable: keep the one that worked
                log.error("campaign %r: new survey refused: %s", campaign.name, error)
        if (campaign.dial_mode, campaign.dial_ratio) != (
            self.campaign.dial_mode,
            self.campaign.dial_ratio,
        ):
            live, abandoned = self.window()
            self.pacer = pacer_for(campaign, live, abandoned)
        self.campaign = campaign
        self.rules = hopper.campaign_rules(campaign)

    def dialing(self, now: float) -> tuple[float, ...]:
        """Ages of the paced calls not yet classified (an agent's own dials are not paced)."""
        return tuple(
            now - call.dialed
            for call in self.calls.values()
            if not call.resolved and not call.direct
        )

    def max_lines(self) -> int:
        """Lines this campaign may hold: its own limit, else four per agent logged in."""
        limit = self.campaign.max_lines
        trunk = self.node.config.trunk(self.campaign.trunk_name or "")
        if self.ivr is not None:  # agentless: the campaign's lines, else the trunk's
            return min(limit or trunk.max_channels, trunk.max_channels)
        if not limit:
            agents = self.node.board.logged_in(self.id)
            limit = max(LINES_FOR_ONE_AGENT, LINES_PER_AGENT * agents) if agents else 0
        return min(limit, trunk.max_channels)

    def view(self, now: float) -> PacingView:
        assert self.connector is not None
        dialing = self.dialing(now)
        up = len(self.calls) - len(dialing)
        return PacingView(
            now=now,
            agents=self.node.board.pacing_agents(self.id, utcnow()),
            dialing=dialing,
            waiting=self.connector.waiting,
            max_lines=max(0, self.max_lines() - up),
        )

    # -- dialing

    def step(self, now: float) -> None:
        """One decision: how many to launch, and launch them."""
        self.next_step = now + STEP_EVERY
        if not self.dialing_asked:
            self.figures.state = self._idle_state()
            return
        if now >= self.next_callback_check:
            self.next_callback_check = now + CALLBACK_CHECK_EVERY
            self.dial_personal_callbacks()
        if self.ivr is not None:
            self.step_agentless()
            return
        if self.campaign.dial_mode == "preview":  # agents ask for each lead themselves
            self.figures.state = self._idle_state()
            return
        started = time.perf_counter()
        # Power dialing launches ahead of free agents too: the gate's abandon cap applies.
        kind = DIAL_MODE_KIND[self.campaign.dial_mode]
        view = self.view(now)
        capped = kind == "predictive" and self.over_abandon_cap(now)
        if capped:
            # Over the 30-day cap the gate refuses dials placed ahead of a free agent: one
            # call per free agent until the window's rate is back under the target.
            kind = "progressive"
            wanted = PROGRESSIVE.decide(view)
        else:
            wanted = self.pacer.decide(view)
        wanted = min(wanted, self.node.trunk_room(self.campaign.trunk_name or ""))
        decided = time.perf_counter()
        self.figures.decided.append(decided - started)
        placed = 0
        if wanted > 0:
            leads = hopper.claim(self.node.engine, self.id, wanted, self.node.name, utcnow(), kind)
            self.figures.last_claim_empty = not leads
            claimed = time.perf_counter()
            self.figures.claimed.append(claimed - decided)
            placed = self.dial(leads, kind)
            self.figures.dialled.append(time.perf_counter() - claimed)
        self.figures.decisions.append(time.perf_counter() - started)
        self.figures.placed += placed
        agents = self.node.board.logged_in(self.id)
        if agents == 0:
            self.figures.state, self.figures.detail = "no_agents", "no agent is logged in"
        elif wanted > 0 and self.figures.last_claim_empty:
            self.figures.state, self.figures.detail = "no_leads", "no lead is dialable now"
        elif capped:
            self.figures.state = "dialing"
            self.figures.detail = (
                f"progressive: the 30-day abandon rate is at or over "
                f"{self.campaign.abandon_target:.0%} ({self.abandons} of {self.live_answers})"
            )
        else:
            self.figures.state, self.figures.detail = "dialing", ""

    def step_agentless(self) -> None:
        """An agentless campaign keeps its lines busy: nobody waits for an agent, so no call
        can be abandoned by dialing ahead (a person who asks for someone waits like any live
        answer, within the 2 s, then hears the safe-harbor message)."""
        started = time.perf_counter()
        wanted = max(0, self.max_lines() - len(self.calls))
        wanted = min(wanted, self.node.trunk_room(self.campaign.trunk_name or ""))
        placed = 0
        if wanted > 0:
            leads = hopper.claim(
                self.node.engine, self.id, wanted, self.node.name, utcnow(), "progressive"
            )
            self.figures.last_claim_empty = not leads
            placed = self.dial(leads, "progressive")
        self.figures.decisions.append(time.perf_counter() - started)
        self.figures.placed += placed
        if wanted > 0 and self.figures.last_claim_empty:
            self.figures.state, self.figures.detail = "no_leads", "no lead is dialable now"
        else:
            self.figures.state, self.figures.detail = "dialing", "agentless"

    def over_abandon_cap(self, now: float) -> bool:
        """The rolling 30-day abandon rate as the gate judges it (47 CFR 64.1200(a)(7)), read
        from the database now and then and counted in between."""
        if now >= self.window_read_at + WINDOW_REREAD_EVERY:
            self.live_answers, self.abandons = self.window()
            self.window_read_at = now
        return self.live_answers > 0 and (
            self.abandons / self.live_answers >= self.campaign.abandon_target
        )

    def count_answer(self, abandoned: bool) -> None:
        """A live answer (bridged to an agent, or ended without one): the window moves before
        its reread."""
        self.live_answers += 1
        self.abandons += abandoned

    def _idle_state(self) -> str:
        if self.error is not None:
            self.figures.detail = self.error
            return "error"
        if self.node.stopping:
            self.figures.detail = "the node is stopping"
            return "stopping"
        self.figures.detail = ""
        if self.campaign.dial_mode == "preview" and self.campaign.status == "active":
            return "preview"
        return self.campaign.status

    def dial_personal_callbacks(self) -> None:
        """Callbacks an agent booked for themselves, now due, dialled for them while they are
        ready (the scheduler hands a callback to the whole campaign when its agent is away)."""
        ready = [a.user_id for a in self.node.board.of_campaign(self.id) if a.state == "ready"]
        if not ready:
            return
        with self.node.read_session() as session:
            due = agents.due_personal_callbacks(session, self.id, ready, utcnow())
        taken: set[int] = set()
        for lead_id, agent_id in due:
            if agent_id in taken:
                continue
            claimed = hopper.claim_lead(
                self.node.engine, self.id, lead_id, self.node.name, utcnow(), "callback"
            )
            if isinstance(claimed, Verdict):
                log.info(
                    "personal callback of lead %d not dialled now: %s", lead_id, claimed.detail
                )
                continue
            if self.dial([claimed], "callback", agent_id=agent_id):
                taken.add(agent_id)

    def dial(self, leads: list[ClaimedLead], kind: DialKind, agent_id: int | None = None) -> int:
        """Originates the claimed leads that still pass the gate; the others go back to the
        hopper, which judges them again. Returns how many were dialled."""
        passing = self.recheck(leads, kind)
        if len(passing) < len(leads):
            refused = [lead.id for lead in leads if lead not in passing]
            hopper.release(self.node.engine, refused)
        if not passing:
            return 0
        automatic = {"predictive": "automatic", "progressive": "automatic"}
        dial_mode = automatic.get(kind, kind)
        trunk = self.campaign.trunk_name or ""
        # Each call shows a number of the campaign's pool local to the lead, else this.
        default_caller_id = self.campaign.caller_id or self.node.config.trunk(trunk).caller_id
        opened = self.node.ledger.open(
            passing,
            trunk=trunk,
            dial_mode=dial_mode,
            agent_id=agent_id,
            screen_pop=None if agent_id is None else self._pop_for(passing[0], kind, agent_id),
            default_caller_id=default_caller_id,
        )
        if not opened:  # the agent it was for is gone
            hopper.release(self.node.engine, [lead.id for lead in passing])
            return 0
        now = time.monotonic()
        direct = agent_id is not None
        self.node.launched(trunk, len(opened))
        for attempt, lead in zip(opened, passing, strict=True):
            attempt_id = attempt.attempt_id
            call_kind: DialKind = "callback" if lead.is_callback and not direct else kind
            call = LiveCall(attempt_id, self.id, lead, call_kind, now, agent_id, direct)
            self.calls[attempt_id] = call
            self.node.calls[attempt_id] = call
            if self.kinds is not None:
                self.kinds.prepare(attempt_id, lead.id)
            if call.agent_id is not None:
                self.node.board.set(call.agent_id, state="reserved", attempt_id=int(attempt_id))
            try:
                self.node.lines.originate(
                    attempt_id,
                    trunk,
                    lead.phone_e164,
                    ring_timeout=float(self.campaign.ring_timeout_s),
                    tap=None if call.direct else self.tap,
                    caller_id=attempt.caller_id,
                    # An agentless survey never needs an agent leg beside its call.
                    reserve_agent_slot=not (
                        self.ivr is not None and self.campaign.kind == "survey"
                    ),
                )
            except (SipConfigError, ValueError) as error:
                # Never dialled (a trunk setting refused it): on record as failed, saying why.
                log.error(
                    "campaign %r: call %s not placed: %s", self.campaign.name, attempt_id, error
                )
                self.node.dispatch(never_dialled(attempt_id, str(error)))
        return len(opened)

    def recheck(self, leads: list[ClaimedLead], kind: DialKind) -> list[ClaimedLead]:
        """The gate's second look right before the INVITE: the claim may be seconds old (a
        preview an agent read for a minute), and a number may have joined a do-not-call list
        or left its calling window since."""
        if not leads:
            return []
        now = utcnow()
        with self.node.engine.connect() as connection:
            listed = dnc.blocked_numbers(
                connection, self.id, now, (lead.phone_e164 for lead in leads)
            )
        passing = []
        for lead in leads:
            if lead.facts is None:
                continue
            facts = dataclasses.replace(lead.facts, status="claimed")
            verdict = may_dial(
                facts, self.rules, now, DialHistory(on_dnc=lead.phone_e164 in listed), kind
            )
            if verdict:
                passing.append(lead)
            else:
                log.info("lead %d not dialled at the last moment: %s", lead.id, verdict.detail)
        return passing

    def _pop_for(self, lead: ClaimedLead, kind: DialKind, agent_id: int) -> dict[str, Any]:
        agent = self.node.board.agents.get(agent_id)
        username = agent.username if agent is not None else None
        return self.node.screen_pop(self, lead.id, kind, username)

    def _pick_agent(self, customer: str) -> str | None:
        """The connector asks for an agent for a live answer: the one reserved before the dial,
        else the campaign's longest-idle ready agent, reserved now with the screen pop."""
        call = self.calls.get(customer)
        if call is None:
            return None
        if call.direct:
            agent = self.node.board.agents.get(call.agent_id or -1)
            return agent.phone_uri if agent is not None else None
        if not self.node.board.any_ready(self.id):
            return None
        return self.node.reserve_agent(self, call)

    # -- stopping

    def cancel_ringing(self) -> None:
        """A stopped campaign: hang up the calls nobody has answered yet."""
        for call in list(self.calls.values()):
            if not call.resolved and not call.direct:
                call.hung_up_because = CANCELLED_REASON
                self.node.hangup(call.attempt_id)
