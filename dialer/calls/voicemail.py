"""Voicemail drop: what a campaign whose AMD action is "message" does when an answering machine
picks up. Instead of hanging up, the dialer waits for the machine to start recording and
leaves the campaign's message on it, then hangs up; the attempt ends "machine_message".

A machine records from the end of its beep, so the message starts when the tone stops.
Machines that do not beep record from the end of their greeting: the message then starts
after a pause in the greeting long enough to be its end (`end_silence_ms`). From the machine
verdict on (AMD's reason may be the beep itself, heard 150 ms into the tone) a second tap
listens for either (`dialer.amd.GreetingEndDetector`); when it hears neither within
`max_wait_s` the message starts all the same: a greeting that long is rare, and a message cut
at its start is better than a line held for ever.

`VoicemailDrop` is the pure decision for one call (times in, actions out), in the shape of
`dialer.connect.CallConnect`; `VoicemailDrops` is the thin shell that feeds it line-pool
events and carries out its actions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dialer.amd import AmdSettings
from dialer.connect import HangUp
from dialer.lines.events import AmdVerdict, CommandFailed, Ended, Event, PromptFinished, TapSpec
from dialer.lines.protocol import Lines
from dialer.prompts import CampaignLike, campaign_voicemail

MACHINE = "machine"
BEEP = "beep"


@dataclass(frozen=True)
class VoicemailSettings:
    message_prompt: str  # WAV path: the campaign's voicemail message
    # From the machine verdict: the longest wait for the beep's end or the greeting's end.
    max_wait_s: float = 12.0
    # No voice this long after the machine verdict: the greeting is over (a machine without a
    # beep records from here). Longer than the pauses between a greeting's sentences.
    end_silence_ms: int = 1200
    # The campaign's AMD settings: the greeting-end tap hears voice and beeps as AMD does.
    amd: AmdSettings = field(default_factory=AmdSettings)

    def __post_init__(self) -> None:
        if not 0 < self.max_wait_s <= 60:
            raise ValueError(f"max_wait_s={self.max_wait_s}: expected more than 0 and at most 60 s")
        if self.end_silence_ms < 20:
            raise ValueError(f"end_silence_ms={self.end_silence_ms}: expected at least 20 ms")

    def tap(self) -> TapSpec:
        """The tap that listens for the beep or the greeting's end after the machine verdict."""
        options = {"end_silence_ms": self.end_silence_ms, **asdict(self.amd)}
        return TapSpec("dialer.amd:greeting_end_factory", options)


def campaign_voicemail_settings(
    campaign: CampaignLike, amd: AmdSettings, prompts_dir: Path | None = None
) -> VoicemailSettings | None:
    """The campaign's voicemail drop, its message rendered now (not when the beep comes); None
    when the campaign hangs up on machines."""
    prompt = campaign_voicemail(campaign, prompts_dir)
    if prompt is None:
        return None
    return VoicemailSettings(message_prompt=str(prompt), amd=amd)


# Actions (decisions for the shell to carry out; and dialer.connect.HangUp)


@dataclass(frozen=True)
class Listen:
    """Attach the greeting-end tap: its verdict comes back as a second AmdVerdict."""

    attempt_id: str
    tap: TapSpec


@dataclass(frozen=True)
class PlayMessage:
    attempt_id: str
    path: str


Action = Listen | PlayMessage | HangUp


@dataclass(frozen=True)
class VoicemailOutcome:
    """What the attempt ledger stores: `message_played` (the whole message went out) makes the
    attempt's outcome machine_message."""

    customer: str
    message_played: bool
    reason: str
    # Seconds from the machine verdict to the message's start; None when it never started.
    waited_s: float | None


class VoicemailDrop:
    """The voicemail drop of one call answered by a machine. Every method takes the time it
    happens at (monotonic seconds) and returns what to do; nothing here reads a clock or
    touches a call."""

    def __init__(self, customer: str, settings: VoicemailSettings) -> None:
        self.customer = customer
        self.settings = settings
        self.state = "new"  # new | listening | playing | done | ended
        self.verdict_at: float | None = None
        self.give_up_at: float | None = None
        self.started_at: float | None = None
        self.message_played = False
        self.reason = "no machine verdict"

    def on_machine(self, at: float) -> list[Action]:
        """AMD said "machine", on the greeting or on the beep itself."""
        if self.state != "new":
            return []
        self.verdict_at = at
        self.state, self.reason = "listening", "waiting for the beep"
        self.give_up_at = at + self.settings.max_wait_s
        return [Listen(self.customer, self.settings.tap())]

    def on_heard(self, reason: str | None, at: float) -> list[Action]:
        """The greeting-end tap heard the beep end, or the greeting's end."""
        if self.state != "listening":
            return []
        return self._play(reason or BEEP, at)

    def on_tick(self, now: float) -> list[Action]:
        if self.state != "listening" or self.give_up_at is None or now < self.give_up_at:
            return []
        why = f"no beep nor end of greeting within {self.settings.max_wait_s:g} s"
        return self._play(why, now)

    def on_prompt_finished(self, at: float) -> list[Action]:
        if self.state != "playing":
            return []
        self.state, self.message_played = "done", True
        return [HangUp(self.customer)]

    def on_prompt_failed(self, at: float) -> list[Action]:
        if self.state != "playing":
            return []
        self.state, self.reason = "done", "the message could not be played"
        return [HangUp(self.customer)]

    def on_ended(self, at: float) -> list[Action]:
        """The call ended: the machine (or the line) hung up, or the dialer did."""
        if self.state == "listening":
            self.reason = "the call ended before the beep"
        elif self.state == "playing":
            self.reason = "the call ended during the message"
        self.state = "ended"
        return []

    def outcome(self) -> VoicemailOutcome:
        waited = None
        if self.started_at is not None and self.verdict_at is not None:
            waited = self.started_at - self.verdict_at
        return VoicemailOutcome(self.customer, self.message_played, self.reason, waited)

    def _play(self, reason: str, at: float) -> list[Action]:
        self.state, self.reason, self.started_at = "playing", reason, at
        return [PlayMessage(self.customer, self.settings.message_prompt)]


class VoicemailDrops:
    """Feeds line-pool events to one `VoicemailDrop` per call AMD found a machine on, and carries
    out what it decides. Give it the events it `wants` (a machine verdict while the campaign
    leaves messages, and everything of the calls it took) and `tick` it at least every 20 ms;
    the outcome of each call comes back from `handle` with its `Ended`. `settings` may change
    between calls, to None too (the campaign hangs up on machines from now on): the calls
    taken already finish their message."""

    def __init__(
        self,
        lines: Lines,
        settings: VoicemailSettings | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lines = lines
        self.settings = settings
        self.clock = clock
        self.calls: dict[str, VoicemailDrop] = {}

    def wants(self, event: Event) -> bool:
        customer = getattr(event, "attempt_id", None)
        if customer in self.calls:
            return True
        leaving = self.settings is not None
        return leaving and isinstance(event, AmdVerdict) and event.verdict == MACHINE

    def handle(self, event: Event) -> VoicemailOutcome | None:
        customer = getattr(event, "attempt_id", None)
        if customer is None:
            return None
        now = self.clock()
        drop = self.calls.get(customer)
        if isinstance(event, AmdVerdict):
            # The tap's own clock reading (CLOCK_MONOTONIC is shared by the machine's
            # processes): the wait is counted from the verdict, not from its delivery.
            at = event.at_monotonic if event.at_monotonic is not None else now
            if drop is None:
                if event.verdict != MACHINE or self.settings is None:
                    return None
                drop = self.calls[customer] = VoicemailDrop(customer, self.settings)
                self._carry_out(drop.on_machine(at))
            else:
                self._carry_out(drop.on_heard(event.reason, at))
            return None
        if drop is None:
            return None
        if isinstance(event, PromptFinished):
            self._carry_out(drop.on_prompt_finished(now))
        elif isinstance(event, CommandFailed) and event.command == "Play":
            self._carry_out(drop.on_prompt_failed(now))
        elif isinstance(event, Ended):
            self._carry_out(drop.on_ended(now))
            del self.calls[customer]
            return drop.outcome()
        return None

    def tick(self) -> None:
        now = self.clock()
        for drop in list(self.calls.values()):
            self._carry_out(drop.on_tick(now))

    def _carry_out(self, actions: list[Action]) -> None:
        for action in actions:
            try:
                if isinstance(action, Listen):
                    self.lines.attach_tap(action.attempt_id, action.tap)
                elif isinstance(action, PlayMessage):
                    self.lines.play(action.attempt_id, action.path)
                else:
                    self.lines.hangup(action.attempt_id)
            except (KeyError, ValueError):
                # The call ended while the action was decided (NoSuchAttempt is a KeyError):
                # its Ended event is on its way and settles it.
                continue
