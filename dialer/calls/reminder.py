"""The agentless appointment reminder: "press 1 to confirm, 2 to reschedule, 3 to cancel, 0 to
speak to someone".

- 1 confirms the appointment, 3 cancels it (its place is given back);
- 2 offers the next free slots, one key each, and moves the appointment to the one chosen (a
  slot taken meanwhile is refused by the calendar: reschedule_refused);
- 0 hands the call to the connector, which puts it through to an agent of the campaign like
  any live answer (or plays the safe-harbor message when none is free within 2 s);
- no valid key after the tries: no_input. A person who hangs up before choosing: hung_up.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from dialer.calls.flow import Action, ChangeAppointment, IvrFlow, IvrOutcome, Store, ToAgent

MENU = "menu"
CHOOSE_SLOT = "slot"
CONFIRM, RESCHEDULE, CANCEL, AGENT = "1", "2", "3", "0"
MENU_DIGITS = CONFIRM + RESCHEDULE + CANCEL + AGENT


@dataclass(frozen=True)
class ReminderScript:
    """One lead's reminder with its prompts rendered. `slots`: the free slots offered to move
    to, (slot id, key) in the order the slots menu names them; no appointment: nothing to
    remind (the call says goodbye)."""

    appointment_id: int | None
    menu: str
    slots: tuple[tuple[int, str], ...]
    slots_menu: str | None
    confirmed: str
    cancelled: str
    moved: str
    taken: str
    no_slots: str
    not_understood: str
    goodbye: str


@dataclass
class ReminderCall(IvrFlow):
    script: ReminderScript | None = None
    pending: ChangeAppointment | None = field(default=None)

    @classmethod
    def of(cls, customer: str, script: ReminderScript, **options: object) -> ReminderCall:
        return cls(
            customer=customer,
            not_understood=script.not_understood,
            goodbye=script.goodbye,
            script=script,
            **options,  # type: ignore[arg-type]
        )

    @property
    def _script(self) -> ReminderScript:
        assert self.script is not None
        return self.script

    def begin(self, at: float) -> list[Action]:
        if self._script.appointment_id is None:
            return self.close("no_appointment", "the lead has no appointment to remind",
                              self.goodbye)  # fmt: skip
        return self.ask(MENU, MENU_DIGITS, self._script.menu)

    def answered(self, key: str, digit: str, at: float) -> list[Action]:
        script = self._script
        assert script.appointment_id is not None
        self.answers.append((key, digit))
        if key == CHOOSE_SLOT:
            slot_id = dict((k, s) for s, k in script.slots)[digit]
            return self._change("move", slot_id)
        if digit == CONFIRM:
            return self._change("confirm")
        if digit == CANCEL:
            return self._change("cancel")
        if digit == AGENT:
            self.result, self.reason, self.state = "agent", "asked to speak to someone", "agent"
            return [ToAgent(self.customer)]
        if not script.slots or script.slots_menu is None:
            return self.close("no_free_slot", "no free slot to move to", script.no_slots)
        keys = "".join(key for _, key in script.slots)
        return self.ask(CHOOSE_SLOT, keys, script.slots_menu)

    def _change(self, change: str, slot_id: int | None = None) -> list[Action]:
        assert self._script.appointment_id is not None
        self.state = "waiting"
        self.pending = ChangeAppointment(
            self.customer, self._script.appointment_id, change, slot_id
        )
        return [self.pending]

    def on_stored(self, action: Store, done: bool, at: float) -> list[Action]:
        if action != self.pending or self.state != "waiting":
            return []
        self.pending = None
        script = self._script
        assert isinstance(action, ChangeAppointment)
        if not done and action.change != "move":
            return self.close("failed", f"the appointment could not be {action.change}ed",
                              self.goodbye)  # fmt: skip
        if action.change == "confirm":
            return self.close("confirmed", "confirmed by key 1", script.confirmed)
        if action.change == "cancel":
            return self.close("cancelled", "cancelled by key 3", script.cancelled)
        if done:
            return self.close("rescheduled", f"moved to slot {action.slot_id}", script.moved)
        return self.close("reschedule_refused", f"slot {action.slot_id} filled meanwhile",
                          script.taken)  # fmt: skip

    def outcome(self) -> IvrOutcome:
        return replace(super().outcome(), appointment_id=self._script.appointment_id)

    def gave_up(self, key: str, last_wrong: str, at: float) -> list[Action]:
        where = "the menu" if key == MENU else "the choice of a new time"
        return self.close("no_input", f"no valid key for {where} after {self.tries} tries",
                          self.goodbye)  # fmt: skip
