"""What an agentless call says and hears: the common part of the IVR flows (a survey's
questions, an appointment reminder's menu), in the shape of `dialer.connect.CallConnect`.

A flow is pure: every method takes the time it happens at (monotonic seconds) and returns
actions; nothing here reads a clock or touches a call. `dialer.calls.shell.IvrFlows` feeds it
the line pool's events and carries its actions out.

How a question is asked, whatever the flow:
- one prompt plays at a time (the line pool mixes prompts started together), the next when the
  pool says the last one finished;
- keys pressed while a prompt plays are kept in order (type-ahead: a person who knows the
  answer need not wait for the end of the question) and answer the questions as they come;
- the digits are collected by `dialer.ivr.DigitCollector`, started when the question has been
  heard; a key that is not one of the question's answers, or no key in time, asks again after
  "sorry, I did not get that", up to the flow's tries, after which the question is recorded as
  no_input and the call ends politely.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dialer.ivr import Collected, DigitCollector


@dataclass(frozen=True)
class IvrTiming:
    # After the question has been heard: how long a person gets to press a key.
    first_digit_timeout_s: float = 5.0
    # Answers are one key; the collector wants an inter-digit timeout all the same.
    inter_digit_timeout_s: float = 3.0

    def __post_init__(self) -> None:
        for name in ("first_digit_timeout_s", "inter_digit_timeout_s"):
            value = getattr(self, name)
            if not 0 < value <= 60:
                raise ValueError(f"{name}={value!r}: expected more than 0 and at most 60 s")


# Actions (decisions for the shell to carry out)


@dataclass(frozen=True)
class Play:
    attempt_id: str
    path: str


@dataclass(frozen=True)
class HangUp:
    attempt_id: str


@dataclass(frozen=True)
class ToAgent:
    """Put the call through to an agent of the campaign (the connector takes it from here)."""

    attempt_id: str


@dataclass(frozen=True)
class SaveAnswer:
    """A survey question's answer, stored as it comes (a call cut later keeps it)."""

    attempt_id: str
    question: str
    digits: str
    status: str  # "answered" or "no_input"


@dataclass(frozen=True)
class ChangeAppointment:
    """confirm, cancel, or move to `slot_id`; the shell tells the flow whether it was done
    (`on_stored`): a slot may have filled since it was offered."""

    attempt_id: str
    appointment_id: int
    change: str  # "confirm" | "cancel" | "move"
    slot_id: int | None = None


Store = SaveAnswer | ChangeAppointment
Action = Play | HangUp | ToAgent | SaveAnswer | ChangeAppointment


@dataclass(frozen=True)
class IvrOutcome:
    """What the node stores with the attempt once the call has ended: `result` is the lead's
    recycling rule (`campaigns.dispositions`), `answers` what was stored on the way."""

    customer: str
    result: str
    reason: str
    answers: tuple[tuple[str, str], ...] = ()
    appointment_id: int | None = None


@dataclass
class _Asking:
    key: str
    digits: str
    prompt: str
    tries: int = 0
    last_wrong: str = ""
    collector: DigitCollector | None = None


@dataclass
class IvrFlow:
    """The mechanics every IVR flow shares; a flow says what to ask (`ask`) and what each
    answer leads to (`answered`, `gave_up`)."""

    customer: str
    not_understood: str
    goodbye: str
    tries: int = 2
    timing: IvrTiming = field(default_factory=IvrTiming)
    state: str = "starting"  # starting | asking | waiting | closing | agent | done | ended
    result: str | None = None
    reason: str = ""
    answers: list[tuple[str, str]] = field(default_factory=list)
    _playing: bool = False
    _queue: list[str] = field(default_factory=list)
    _typed: list[str] = field(default_factory=list)
    _asking: _Asking | None = None

    # -- what a flow calls

    def play(self, *paths: str) -> list[Action]:
        """Plays the prompts one after the other, after whatever is playing now."""
        self._queue.extend(paths)
        return self._next_prompt()

    def ask(self, key: str, digits: str, prompt: str, *before: str) -> list[Action]:
        """Asks a question (after the prompts `before`): its answer comes to `answered`."""
        self.state = "asking"
        self._asking = _Asking(key, digits, prompt)
        return self.play(*before, prompt)

    def close(self, result: str, reason: str, *paths: str) -> list[Action]:
        """The flow's result is known: the last prompts, then the dialer hangs up."""
        self.result, self.reason, self.state = result, reason, "closing"
        self._asking = None
        actions = self.play(*paths)
        if not self._playing:
            self.state = "done"
            actions.append(HangUp(self.customer))
        return actions

    # -- what a flow decides (overridden)

    def begin(self, at: float) -> list[Action]:
        raise NotImplementedError

    def answered(self, key: str, digit: str, at: float) -> list[Action]:
        raise NotImplementedError

    def gave_up(self, key: str, last_wrong: str, at: float) -> list[Action]:
        raise NotImplementedError

    def on_stored(self, action: Store, done: bool, at: float) -> list[Action]:
        return []

    def hung_up_result(self) -> str:
        return "hung_up"

    # -- events

    def on_start(self, at: float) -> list[Action]:
        if self.state != "starting":
            return []
        return self.begin(at)

    def on_prompt_finished(self, at: float) -> list[Action]:
        if not self._playing:
            return []
        self._playing = False
        actions = self._next_prompt()
        if self._playing:
            return actions
        if self.state == "closing":
            self.state = "done"
            return [*actions, HangUp(self.customer)]
        if self.state == "asking" and self._asking is not None:
            asking = self._asking
            asking.collector = DigitCollector(
                1,
                None,
                first_digit_timeout_s=self.timing.first_digit_timeout_s,
                inter_digit_timeout_s=self.timing.inter_digit_timeout_s,
                started_at=at,
            )
            # Keys pressed while the question played answer it now, in the order pressed.
            while self._typed and self._asking is asking and asking.collector is not None:
                result = asking.collector.press(self._typed.pop(0), at)
                if result is not None:
                    actions += self._collected(asking, result, at)
        return actions

    def on_prompt_failed(self, at: float) -> list[Action]:
        """A prompt could not be played: nothing sensible can be asked any more."""
        self._playing = False
        self._queue.clear()
        if self.state in ("done", "ended", "agent"):
            return []
        self.result = self.result or "failed"
        self.reason = "a prompt could not be played"
        self.state = "done"
        return [HangUp(self.customer)]

    def on_digit(self, digit: str, at: float) -> list[Action]:
        asking = self._asking
        if self.state != "asking" or asking is None:
            return []
        if asking.collector is None or self._playing:
            self._typed.append(digit)
            return []
        result = asking.collector.press(digit, at)
        return [] if result is None else self._collected(asking, result, at)

    def on_tick(self, now: float) -> list[Action]:
        asking = self._asking
        if self.state != "asking" or asking is None or asking.collector is None:
            return []
        result = asking.collector.tick(now)
        return [] if result is None else self._collected(asking, result, now)

    def on_ended(self, at: float) -> list[Action]:
        """The called person hung up (or the line ended): the result stands as it is."""
        if self.result is None:
            self.result = self.hung_up_result()
            self.reason = "the called person hung up"
        self.state = "ended"
        return []

    def outcome(self) -> IvrOutcome:
        return IvrOutcome(
            customer=self.customer,
            result=self.result or self.hung_up_result(),
            reason=self.reason,
            answers=tuple(self.answers),
        )

    # -- inside

    def _next_prompt(self) -> list[Action]:
        if self._playing or not self._queue:
            return []
        self._playing = True
        return [Play(self.customer, self._queue.pop(0))]

    def _collected(self, asking: _Asking, result: Collected, at: float) -> list[Action]:
        asking.collector = None
        if result.digits and result.digits in asking.digits:
            self._asking = None
            return self.answered(asking.key, result.digits, at)
        asking.tries += 1
        asking.last_wrong = result.digits
        if asking.tries >= self.tries:
            self._asking = None
            self._typed.clear()
            return self.gave_up(asking.key, asking.last_wrong, at)
        return self.play(self.not_understood, asking.prompt)
