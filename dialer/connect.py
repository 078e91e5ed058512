"""Connecting a live answer to an agent, or abandoning it the lawful way.

When AMD says "human" (or "notsure", which the dialer treats as a person), the customer must be
talking to an agent within 2 s of the end of their greeting (47 CFR 64.1200(a)(7)). If no agent
leg is bridged by then the call is abandoned: the campaign's safe-harbor message (seller,
call-back number, opt-out) plays, the dialer hangs up after it, and the attempt is recorded as
abandoned for the 3 % rolling 30-day rule.

Agent legs are dialled on demand, not nailed up. pjsua2 holds at most 4 calls per process and
two legs can only be bridged inside one process's conference bridge (ARCHITECTURE §6), so an
agent held in a permanent call would pin that agent to one worker: every customer call meant
for them would have to be placed in that worker (3 slots left at best), pacing would need to
know where each agent lives, and a worker crash would drop the agent's session with it; a SIP
dialog cannot move to another pjsua endpoint. On demand, the agent's auto-answering phone is
called in the customer's worker (`near=`) when the verdict arrives, which costs one
INVITE/200/ACK exchange with a phone on the LAN (`dialer bench connect` measures it) and
leaves every worker free to take any customer call.

The greeting's end is taken as the verdict time minus the detector's after-greeting silence
when the verdict is "silence after greeting" (the detector only decides after waiting that
long), and as the verdict time otherwise. The safe-harbor prompt is started `prompt_lead_s`
before the 2 s are up, so that it reaches the customer within them.

`CallConnect` is the pure decision logic for one customer call (times in, actions out);
`Connector` is the thin shell that feeds it line-pool events and carries out its actions.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from dialer.amd import AmdSettings
from dialer.lines.events import (
    AmdVerdict,
    Answered,
    Bridged,
    CommandFailed,
    DtmfReceived,
    Ended,
    Event,
    PromptFinished,
    TapSpec,
)
from dialer.lines.protocol import Lines
from dialer.pacing import Abandoned, Connected
from dialer.prompts import OPT_OUT_DIGIT, CampaignLike, campaign_safe_harbor
from dialer.sit import SitSettings

# 47 CFR 64.1200(a)(7)(i): a live answer not connected within 2 s of the completed greeting
# is abandoned.
CONNECT_WITHIN_S = 2.0
# Auto-answer headers: Call-Info answer-after (RFC 7462 style, Polycom, Yealink, Snom, Linphone)
# and Alert-Info info=alert-autoanswer (Cisco, Grandstream). A phone ignores what it does not
# know, so both go on every agent INVITE.
AUTO_ANSWER_HEADERS: tuple[tuple[str, str], ...] = (
    ("Call-Info", "<sip:127.0.0.1>;answer-after=0"),
    ("Alert-Info", "<http://127.0.0.1>;info=alert-autoanswer"),
)
CONNECTED_VERDICTS = frozenset({"human", "notsure"})
DEFAULT_SIT = SitSettings()


def amd_tap(settings: AmdSettings | None = None, sit: SitSettings | None = DEFAULT_SIT) -> TapSpec:
    """The frame tap that runs `dialer.amd` on a customer call from its answer on and, unless
    `sit` is None, listens for special information tones from the first frame of early media
    (`dialer.sit`): a SIT verdict ("sit_vacant", ...) then stands for the AMD verdict and makes
    the attempt's outcome invalid or congestion."""
    amd = asdict(settings or AmdSettings())
    if sit is None:
        return TapSpec("dialer.amd:tap_factory", amd)
    return TapSpec("dialer.sit:tap_factory", {"amd": amd, **asdict(sit)}, from_answer=False)


@dataclass(frozen=True)
class ConnectSettings:
    safe_harbor_prompt: str  # WAV path: seller, call-back number, opt-out
    connect_within_s: float = CONNECT_WITHIN_S
    # The Play command crosses two pipes and the prompt one jitter buffer before it is heard.
    prompt_lead_s: float = 0.2
    after_greeting_silence_ms: int = AmdSettings().after_greeting_silence_ms
    agent_headers: tuple[tuple[str, str], ...] = AUTO_ANSWER_HEADERS
    # The campaign records its calls: each bridged conversation (customer and agent mixed)
    # goes to <recordings_dir>/<customer attempt>.wav, written by the worker holding the call.
    recordings_dir: str | None = None
    # 47 CFR 64.1200(a)(7)(i)(B): after the message, the key that puts the number on the
    # do-not-call list and ends the call, and how long the call stays open for it.
    opt_out_digit: str = OPT_OUT_DIGIT
    opt_out_wait_s: float = 4.0
    # A person waiting for an agent is offered one freed this long before the window closes
    # at the latest: the agent's phone has to answer and the legs be bridged in what is left
    # (an auto-answering phone on the LAN: 12-20 ms from the verdict to the bridge, measured
    # in the demo).
    agent_answer_s: float = 0.15

    @property
    def offer_window_s(self) -> float:
        """How long after the greeting's end a waiting person can still be offered an agent."""
        return self.connect_within_s - self.prompt_lead_s - self.agent_answer_s

    def __post_init__(self) -> None:
        if not 0 < self.connect_within_s <= CONNECT_WITHIN_S:
            raise ValueError(
                f"connect_within_s={self.connect_within_s}: expected 0 < s <= "
                f"{CONNECT_WITHIN_S} (47 CFR 64.1200(a)(7))"
            )
        if not 0 <= self.prompt_lead_s < self.connect_within_s:
            raise ValueError(
                f"prompt_lead_s={self.prompt_lead_s}: expected 0 <= s < connect_within_s"
            )


def default_recordings_dir() -> Path:
    """$DIALER_RECORDINGS_DIR, else the user's data directory (~/.local/share/dialer/...)."""
    configured = os.environ.get("DIALER_RECORDINGS_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "dialer" / "recordings"


class ConnectCampaign(CampaignLike, Protocol):
    """What connect settings need of a campaign (campaigns.models.Campaign has it)."""

    record_calls: bool


def campaign_connect_settings(
    campaign: ConnectCampaign,
    prompts_dir: Path | None = None,
    recordings_dir: Path | None = None,
    **options: Any,
) -> ConnectSettings:
    """Connect settings for a campaign, its safe-harbor prompt rendered now (not when a call
    is abandoned, which leaves 2 s): the campaign's own message, or the bundled one naming its
    seller and call-back number (`dialer.prompts`). A campaign that records its calls gets a
    recordings directory (created now, so the workers only open files in it)."""
    prompt = campaign_safe_harbor(campaign, prompts_dir)
    if campaign.record_calls:
        directory = (recordings_dir or default_recordings_dir()) / path_component(campaign.name)
        directory.mkdir(parents=True, exist_ok=True)
        options.setdefault("recordings_dir", str(directory))
    return ConnectSettings(safe_harbor_prompt=str(prompt), **options)


def path_component(name: str) -> str:
    """A campaign name or attempt id as one safe file or directory name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "campaign"


# Actions (decisions for the shell to carry out)


@dataclass(frozen=True)
class DialAgent:
    agent_leg: str
    uri: str
    near: str


@dataclass(frozen=True)
class BridgeLegs:
    customer: str
    agent_leg: str
    record_path: str | None = None


@dataclass(frozen=True)
class DialOutside:
    """A transfer leg to an outside number, over a trunk, in the customer's worker."""

    leg: str
    trunk: str
    number: str
    near: str


@dataclass(frozen=True)
class TransferTarget:
    """Where a blind transfer sends the customer: another agent's phone, or a number."""

    agent_uri: str | None = None
    trunk: str | None = None
    number: str | None = None

    def __post_init__(self) -> None:
        if (self.agent_uri is None) == (self.number is None):
            raise ValueError("a transfer goes to an agent's phone or to a number, not both")
        if self.number is not None and not self.trunk:
            raise ValueError("a transfer to a number needs the trunk to dial it on")


@dataclass(frozen=True)
class HangUp:
    attempt_id: str


@dataclass(frozen=True)
class PlaySafeHarbor:
    attempt_id: str
    path: str


Action = DialAgent | DialOutside | BridgeLegs | HangUp | PlaySafeHarbor


@dataclass(frozen=True)
class ConnectOutcome:
    """What the node stores with the attempt once the customer leg has ended.

    `abandoned` is True for every live answer (human or notsure) that never reached an agent,
    a customer who hung up while waiting included: counting those overstates the abandonment
    rate a little, which is the safe side of the 3 % rule."""

    customer: str
    verdict: str | None
    agent_leg: str | None
    agent_uri: str | None
    connect_delay_ms: float | None
    abandoned: bool
    reason: str
    safe_harbor_played: bool
    # When the safe-harbor prompt was started, in seconds after the greeting's end.
    safe_harbor_after_greeting_s: float | None
    # The conversation's mixed recording (customer and agent), for the attempt's row.
    recording_path: str | None = None
    # The person pressed the opt-out key during or after the safe-harbor message: the number
    # goes on the campaign's do-not-call list (the attempt ledger does it).
    opted_out: bool = False


def pacing_event(outcome: ConnectOutcome) -> Connected | Abandoned | None:
    """What the pacer observes about the call: a live answer connected after its wait, or
    abandoned; None for a machine or a call that never had a verdict."""
    if outcome.connect_delay_ms is not None:
        return Connected(waited=outcome.connect_delay_ms / 1000)
    if outcome.abandoned:
        return Abandoned()
    return None


class CallConnect:
    """The connect decision for one customer call. Every method takes the time it happens at
    (monotonic seconds) and returns what to do; nothing here reads a clock or touches a call."""

    def __init__(self, customer: str, settings: ConnectSettings) -> None:
        self.customer = customer
        self.settings = settings
        self.state = "detecting"
        self.verdict: str | None = None
        self.verdict_at: float | None = None
        self.greeting_end: float | None = None
        self.give_up_at: float | None = None
        self.agent_leg: str | None = None
        self.agent_uri: str | None = None
        self.agent_live = False
        self.connect_delay_ms: float | None = None
        self.reason = "no verdict"
        self.prompt_started: float | None = None
        self.prompt_done = False
        self.recording_path: str | None = None
        self.opted_out = False
        self.opt_out_until: float | None = None
        self.transfer: TransferTarget | None = None
        self.transfers = 0

    @property
    def connected(self) -> bool:
        return self.connect_delay_ms is not None

    def on_verdict(
        self, verdict: str, reason: str | None, at: float, agent_uri: str | None
    ) -> list[Action]:
        if self.state != "detecting":
            return []
        self.verdict, self.verdict_at = verdict, at
        if verdict not in CONNECTED_VERDICTS:
            self.state, self.reason = "done", verdict
            return [HangUp(self.customer)]
        silence = self.settings.after_greeting_silence_ms / 1000.0
        self.greeting_end = at - silence if reason == "silence after greeting" else at
        self.give_up_at = (
            self.greeting_end + self.settings.connect_within_s - self.settings.prompt_lead_s
        )
        if agent_uri is None:
            # Nobody is free now; an agent may be within the window (`on_agent_free`).
            self.state, self.reason = "waiting", "no agent free"
            return []
        return self._dial_agent(agent_uri)

    @property
    def offer_until(self) -> float | None:
        """While waiting, the last moment an agent freed now can still be connected in time."""
        if self.state != "waiting" or self.give_up_at is None:
            return None
        assert self.greeting_end is not None
        return self.greeting_end + self.settings.offer_window_s

    def on_agent_free(self, agent_uri: str, at: float) -> list[Action]:
        """An agent became free for this waiting person."""
        until = self.offer_until
        if until is None or at > until:
            return []
        return self._dial_agent(agent_uri)

    def _dial_agent(self, agent_uri: str) -> list[Action]:
        self.state = "dialing_agent"
        self.agent_leg, self.agent_uri, self.agent_live = f"{self.customer}/agent", agent_uri, True
        return [DialAgent(self.agent_leg, agent_uri, near=self.customer)]

    def on_transfer(self, target: TransferTarget, at: float) -> list[Action]:
        """Blind transfer of a connected call: the agent's leg is hung up first (the worker
        needs its slot for the new leg), then the target is dialled next to the customer."""
        if self.state != "connected" or self.agent_leg is None:
            return []
        self.state, self.transfer = "transferring", target
        self.agent_live = False
        return [HangUp(self.agent_leg)]

    def _dial_transfer(self) -> list[Action]:
        target = self.transfer
        assert target is not None
        self.transfers += 1
        self.agent_leg = f"{self.customer}/transfer{self.transfers}"
        self.agent_live, self.state = True, "transfer_dialing"
        if target.agent_uri is not None:
            self.agent_uri = target.agent_uri
            return [DialAgent(self.agent_leg, target.agent_uri, near=self.customer)]
        assert target.trunk is not None and target.number is not None
        return [DialOutside(self.agent_leg, target.trunk, target.number, near=self.customer)]

    def on_agent_answered(self, at: float) -> list[Action]:
        if self.state == "transfer_dialing" and self.agent_leg is not None:
            # No 2-s rule here: the person was connected already.
            self.state = "transfer_bridging"
            return [BridgeLegs(self.customer, self.agent_leg)]
        if self.state != "dialing_agent" or self.agent_leg is None:
            return []
        assert self.give_up_at is not None
        if at >= self.give_up_at:
            return self._abandon("agent answered too late", at)
        self.state = "bridging"
        return [BridgeLegs(self.customer, self.agent_leg, self._record_path())]

    def on_bridged(
        self, connect_delay_ms: float | None, at: float, recording_path: str | None = None
    ) -> list[Action]:
        if self.state == "transfer_bridging":
            self.state = "connected"
            return []
        if self.state != "bridging":
            return []
        self.state, self.reason = "connected", "connected"
        if connect_delay_ms is None and self.verdict_at is not None:
            # No verdict in the worker (a call dialled for a waiting agent): the shell's clock.
            connect_delay_ms = max(0.0, 1000 * (at - self.verdict_at))
        self.connect_delay_ms = connect_delay_ms
        self.recording_path = recording_path
        return []

    def _record_path(self) -> str | None:
        directory = self.settings.recordings_dir
        if directory is None:
            return None
        return f"{directory.rstrip('/')}/{path_component(self.customer)}.wav"

    def on_agent_failed(self, why: str, at: float, leg: str | None = None) -> list[Action]:
        """The agent leg (`leg`, when known) ended or could not be bridged."""
        if leg is not None and leg != self.agent_leg:
            return []  # a leg a transfer left behind
        self.agent_live = False
        if self.state == "transferring":
            return self._dial_transfer()
        if self.state in ("transfer_dialing", "transfer_bridging"):
            self.state, self.reason = "done", f"transfer failed: {why}"
            return [HangUp(self.customer)]
        if self.state in ("dialing_agent", "bridging"):
            return self._abandon(f"agent leg failed: {why}", at)
        if self.state == "connected":
            self.state = "done"  # the agent hung up: the conversation is over
            return [HangUp(self.customer)]
        return []

    def on_prompt_finished(self, at: float) -> list[Action]:
        """The message has played: the call stays open a moment for the opt-out key."""
        if self.state != "safe_harbor":
            return []
        self.prompt_done = True
        self.state, self.opt_out_until = "opt_out_window", at + self.settings.opt_out_wait_s
        return []

    def on_prompt_failed(self, at: float) -> list[Action]:
        if self.state != "safe_harbor":
            return []
        self.state = "done"
        return [HangUp(self.customer)]

    def on_digit(self, digit: str, at: float) -> list[Action]:
        """The opt-out key, during the message or after it, ends the call at once."""
        if self.state not in ("safe_harbor", "opt_out_window"):
            return []
        if digit != self.settings.opt_out_digit:
            return []
        self.opted_out, self.state = True, "done"
        return [HangUp(self.customer)]

    def on_tick(self, now: float) -> list[Action]:
        if self.state == "waiting" and self.give_up_at is not None and now >= self.give_up_at:
            return self._abandon("no agent free", now)
        waiting = self.state in ("dialing_agent", "bridging")
        if waiting and self.give_up_at is not None and now >= self.give_up_at:
            return self._abandon("no agent connected within 2 s of the greeting", now)
        closing = self.state == "opt_out_window" and self.opt_out_until is not None
        if closing and now >= self.opt_out_until:  # type: ignore[operator]
            self.state = "done"
            return [HangUp(self.customer)]
        return []

    def on_customer_ended(self, at: float) -> list[Action]:
        if self.state in ("waiting", "dialing_agent", "bridging"):
            self.reason = "customer hung up while waiting for an agent"
        self.state = "ended"
        if self.agent_leg is not None and self.agent_live:
            self.agent_live = False
            return [HangUp(self.agent_leg)]
        return []

    def outcome(self) -> ConnectOutcome:
        after = None
        if self.prompt_started is not None and self.greeting_end is not None:
            after = self.prompt_started - self.greeting_end
        return ConnectOutcome(
            customer=self.customer,
            verdict=self.verdict,
            agent_leg=self.agent_leg,
            agent_uri=self.agent_uri,
            connect_delay_ms=self.connect_delay_ms,
            abandoned=self.verdict in CONNECTED_VERDICTS and not self.connected,
            reason=self.reason,
            safe_harbor_played=self.prompt_done,
            safe_harbor_after_greeting_s=after,
            recording_path=self.recording_path,
            opted_out=self.opted_out,
        )

    def _abandon(self, reason: str, at: float) -> list[Action]:
        actions: list[Action] = []
        if self.agent_leg is not None and self.agent_live:
            self.agent_live = False
            actions.append(HangUp(self.agent_leg))
        self.state, self.reason, self.prompt_started = "safe_harbor", reason, at
        actions.append(PlaySafeHarbor(self.customer, self.settings.safe_harbor_prompt))
        return actions


class Connector:
    """Feeds line-pool events to one `CallConnect` per answered customer call and carries out
    what it decides. Call `handle` for every pool event and `tick` at least every 20 ms; the
    outcome of each customer call comes back from `handle` with its `Ended`."""

    def __init__(
        self,
        lines: Lines,
        settings: ConnectSettings,
        pick_agent: Callable[[str], str | None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lines = lines
        self.settings = settings
        self.pick_agent = pick_agent  # customer attempt -> an idle agent's SIP URI, or None
        self.clock = clock
        self.calls: dict[str, CallConnect] = {}
        self.agent_legs: dict[str, str] = {}  # agent leg -> customer
        self.abandoned: list[str] = []  # customers abandoned since `take_abandoned`

    def handle(self, event: Event) -> ConnectOutcome | None:
        attempt_id = getattr(event, "attempt_id", None)
        if attempt_id is None:
            return None
        now = self.clock()
        customer = self.agent_legs.get(attempt_id)
        if customer is not None:
            call = self.calls.get(customer)
            if call is not None:
                self._carry_out(self._agent_event(call, event, now))
            if isinstance(event, Ended):
                del self.agent_legs[attempt_id]
            return None
        if isinstance(event, AmdVerdict):
            call = self.calls.setdefault(attempt_id, CallConnect(attempt_id, self.settings))
            # The tap's own clock reading: CLOCK_MONOTONIC is shared by the machine's processes,
            # and the 2 s window starts at the greeting, not when the event reached us.
            at = event.at_monotonic if event.at_monotonic is not None else now
            uri = self.pick_agent(attempt_id) if event.verdict in CONNECTED_VERDICTS else None
            self._carry_out(call.on_verdict(event.verdict, event.reason, at, uri))
            return None
        call = self.calls.get(attempt_id)
        if call is None:
            return None
        if isinstance(event, Bridged):
            self._carry_out(call.on_bridged(event.connect_delay_ms, now, event.recording_path))
        elif isinstance(event, PromptFinished):
            self._carry_out(call.on_prompt_finished(now))
        elif isinstance(event, DtmfReceived):
            self._carry_out(call.on_digit(event.digit, now))
        elif isinstance(event, CommandFailed) and event.command == "Play":
            self._carry_out(call.on_prompt_failed(now))
        elif isinstance(event, CommandFailed) and event.command == "Bridge":
            self._carry_out(call.on_agent_failed(event.reason, now))
        elif isinstance(event, Ended):
            self._carry_out(call.on_customer_ended(now))
            del self.calls[attempt_id]
            return call.outcome()
        return None

    def take(self, customer: str) -> None:
        """A person another flow is talking to (an IVR menu's "speak to someone") is put
        through like a live answer from now on: an agent within the 2 s, else the safe-harbor
        message. The call's `Ended` then brings its outcome back from `handle`."""
        now = self.clock()
        call = self.calls.setdefault(customer, CallConnect(customer, self.settings))
        self._carry_out(
            call.on_verdict("human", "asked for an agent", now, self.pick_agent(customer))
        )

    def tick(self) -> None:
        now = self.clock()
        waiting = [call for call in self.calls.values() if call.state == "waiting"]
        # The longest waiting first: an agent freed now goes to the person nearest the rule.
        for call in sorted(waiting, key=lambda call: call.greeting_end or now):
            until = call.offer_until
            if until is None or now > until:
                continue
            uri = self.pick_agent(call.customer)
            if uri is None:
                break
            self._carry_out(call.on_agent_free(uri, now))
        for call in list(self.calls.values()):
            self._carry_out(call.on_tick(now))

    def take_abandoned(self) -> list[str]:
        """The customer calls abandoned since the last call, their safe-harbor message now
        starting: whoever paces learns of an abandon when it happens, not a message later
        with the call's `Ended`."""
        abandoned, self.abandoned = self.abandoned, []
        return abandoned

    @property
    def waiting(self) -> int:
        """Live answers waiting for an agent to be free (the pacing view's `waiting`)."""
        return sum(1 for call in self.calls.values() if call.state == "waiting")

    def can_transfer(self, customer: str) -> bool:
        call = self.calls.get(customer)
        return call is not None and call.state == "connected"

    def transfer(self, customer: str, target: TransferTarget) -> bool:
        """Blind transfer of a connected customer call; False when it is not connected."""
        if not self.can_transfer(customer):
            return False
        self._carry_out(self.calls[customer].on_transfer(target, self.clock()))
        return True

    def _agent_event(self, call: CallConnect, event: Event, now: float) -> list[Action]:
        leg = getattr(event, "attempt_id", None)
        if leg != call.agent_leg:
            return []  # a leg a transfer left behind
        if isinstance(event, Answered):
            return call.on_agent_answered(now)
        if isinstance(event, Bridged):
            return call.on_bridged(event.connect_delay_ms, now, event.recording_path)
        if isinstance(event, CommandFailed) and event.command == "Bridge":
            return call.on_agent_failed(event.reason, now, leg)
        if isinstance(event, Ended):
            return call.on_agent_failed(f"{event.sip_code} {event.reason}", now, leg)
        return []

    def _carry_out(self, actions: list[Action]) -> None:
        for action in actions:
            try:
                if isinstance(action, DialAgent):
                    self.agent_legs[action.agent_leg] = action.near
                    self.lines.call_agent(
                        action.agent_leg,
                        action.uri,
                        near=action.near,
                        headers=self.settings.agent_headers,
                    )
                elif isinstance(action, BridgeLegs):
                    self.lines.bridge(
                        action.customer, action.agent_leg, record_path=action.record_path
                    )
                elif isinstance(action, DialOutside):
                    self.agent_legs[action.leg] = action.near
                    self.lines.originate(action.leg, action.trunk, action.number, near=action.near)
                elif isinstance(action, PlaySafeHarbor):
                    self.abandoned.append(action.attempt_id)
                    self.lines.play(action.attempt_id, action.path)
                else:
                    self.lines.hangup(action.attempt_id)
            except (KeyError, ValueError):
                # The leg ended while the action was decided (NoSuchAttempt is a KeyError): its
                # Ended event is on its way and settles the call.
                if isinstance(action, DialAgent):
                    self.agent_legs.pop(action.agent_leg, None)
                if isinstance(action, DialOutside):
                    self.agent_legs.pop(action.leg, None)
