"""The agentless IVR flows, pure: surveys defined as data (every path ends), the survey call
(answers per question as keyed, branches, re-asking, no input, a person who hangs up half way)
and the appointment reminder's menu, driven by a clock of their own."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.surveys import (
    END,
    Question,
    SurveyDefinition,
    SurveyError,
    from_dict,
    parse_branches,
)
from dialer.calls.flow import (
    Action,
    ChangeAppointment,
    HangUp,
    IvrFlow,
    IvrTiming,
    Play,
    SaveAnswer,
    ToAgent,
)
from dialer.calls.reminder import ReminderCall, ReminderScript
from dialer.calls.survey import SurveyCall, SurveyScript

TIMING = IvrTiming(first_digit_timeout_s=5.0, inter_digit_timeout_s=3.0)
PROMPT_S = 2.0  # every prompt plays this long in these tests


def survey() -> SurveyDefinition:
    """q1 (1-5): 1 or 2 -> q2, else q3; q2 (1-3) -> q3, but 3 ends; q3 (yes 1 / no 2) ends."""
    return SurveyDefinition(
        (
            Question("q1", "How satisfied were you?", "12345", {"1": "q2", "2": "q2"}, "q3"),
            Question("q2", "What went wrong?", "123", {"3": END}),
            Question("q3", "Would you recommend us?", "12"),
        ),
        intro="Hello from {seller}.",
        end_message="Thank you.",
        tries=2,
    )


def script(definition: SurveyDefinition | None = None) -> SurveyScript:
    definition = definition or survey()
    return SurveyScript(
        definition=definition,
        intro="intro.wav",
        questions={q.key: f"{q.key}.wav" for q in definition.questions},
        end_message="end.wav",
        not_understood="sorry.wav",
        goodbye="goodbye.wav",
    )


@dataclass
class Drive:
    """Plays a flow as the line would: each prompt takes PROMPT_S, keys come at their times,
    the clock ticks every 0.1 s; stops at the flow's hang-up, a hand-over or `hang_up_at`."""

    flow: IvrFlow
    keys: list[tuple[float, str]]
    hang_up_at: float | None = None
    stored_ok: bool = True
    played: list[str] = field(default_factory=list)
    stored: list[Action] = field(default_factory=list)
    ended_by: str = ""

    def run(self, limit: float = 600.0) -> Drive:
        now, prompt_ends = 0.0, None
        keys = sorted(self.keys)
        pending = self.flow.on_start(now)
        while now < limit:
            while pending:
                action = pending.pop(0)
                if isinstance(action, Play):
                    assert prompt_ends is None, "two prompts at once"
                    self.played.append(action.path)
                    prompt_ends = now + PROMPT_S
                elif isinstance(action, HangUp):
                    self.ended_by = "dialer"
                    return self
                elif isinstance(action, ToAgent):
                    self.ended_by = "agent"
                    return self
                else:
                    self.stored.append(action)
                    pending += self.flow.on_stored(action, self.stored_ok, now)  # type: ignore[arg-type]
            now = round(now + 0.1, 6)
            if self.hang_up_at is not None and now >= self.hang_up_at:
                self.flow.on_ended(now)
                self.ended_by = "person"
                return self
            if prompt_ends is not None and now >= prompt_ends:
                prompt_ends = None
                pending += self.flow.on_prompt_finished(now)
            while keys and keys[0][0] <= now:
                pending += self.flow.on_digit(keys.pop(0)[1], now)
            pending += self.flow.on_tick(now)
        raise AssertionError("the flow never ended")

    @property
    def answers(self) -> list[tuple[str, str, str]]:
        return [(a.question, a.digits, a.status) for a in self.stored if isinstance(a, SaveAnswer)]


def keyed(*digits: str, first: float = 6.0, gap: float = 4.0) -> list[tuple[float, str]]:
    return [(first + gap * i, d) for i, d in enumerate(digits)]


# -- survey definitions


def test_a_survey_follows_its_branches_and_ends() -> None:
    s = survey()
    assert s.first == "q1"
    assert [s.next_after("q1", d) for d in "12345"] == ["q2", "q2", "q3", "q3", "q3"]
    assert [s.next_after("q2", d) for d in "123"] == ["q3", "q3", END]
    assert s.next_after("q3", "1") == END
    assert from_dict(s.to_dict()) == s


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"questions": []}, "at least one question"),
        ({"tries": 0}, "tries: 0"),
        ({"q": {"digits": "1a"}}, "digits '1a'"),
        ({"q": {"digits": "11"}}, "digits '11'"),
        ({"q": {"branches": {"7": "q2"}}}, "branch on '7'"),
        ({"q": {"branches": {"1": "q9"}}}, "'q9': no such question"),
        ({"q": {"key": "Q 1"}}, "question key 'Q 1'"),
        ({"q": {"text": " "}}, "text must have"),
    ],
)
def test_a_survey_that_cannot_run_is_refused_saying_where(
    change: dict[str, object], message: str
) -> None:
    data = survey().to_dict()
    first = dict(data["questions"][0])
    first.update(change.pop("q", {}))  # type: ignore[call-overload]
    data["questions"][0] = first
    data.update(change)
    with pytest.raises(SurveyError, match=message.replace("(", r"\(")):
        from_dict(data)


def test_a_survey_that_goes_round_in_a_circle_is_refused() -> None:
    with pytest.raises(SurveyError, match="circle: q1 -> q2 -> q1"):
        SurveyDefinition(
            (Question("q1", "One?", "12", {"1": "q2"}), Question("q2", "Two?", "12", {"2": "q1"}))
        )


def test_branches_as_the_console_takes_them() -> None:
    assert parse_branches("1=q2 2=q2, 3->end", "q1") == {"1": "q2", "2": "q2", "3": "end"}
    assert parse_branches("", "q1") == {}
    with pytest.raises(SurveyError, match="q1: branch 'x'"):
        parse_branches("x", "q1")


@st.composite
def definitions(draw: st.DrawFn) -> dict[str, object]:
    count = draw(st.integers(1, 6))
    keys = [f"q{i}" for i in range(count)]
    questions = []
    for key in keys:
        digits = "".join(draw(st.permutations("0123456789"))[: draw(st.integers(1, 4))])
        targets = st.sampled_from([*keys, END])
        branches = draw(st.dictionaries(st.sampled_from(digits), targets, max_size=3))
        then = draw(st.one_of(st.none(), targets))
        questions.append(
            {"key": key, "text": f"{key}?", "digits": digits, "branches": branches, "then": then}
        )
    return {"questions": questions}


@settings(max_examples=300)
@given(definitions(), st.lists(st.sampled_from("0123456789"), max_size=30))
def test_every_path_through_an_accepted_survey_ends(
    data: dict[str, object], digits: list[str]
) -> None:
    try:
        s = from_dict(data)
    except SurveyError as error:
        assert "circle" in str(error) or "never asked" in str(error)
        return
    key, steps = s.first, 0
    for digit in digits:
        if key == END:
            break
        if digit in s.question(key).digits:
            key, steps = s.next_after(key, digit), steps + 1
    # A path visits each question at most once: it cannot be longer than the survey.
    assert steps <= len(s.questions)
    # And from any question, always answering with its first digit reaches the end.
    for question in s.questions:
        key, hops = question.key, 0
        while key != END:
            key, hops = s.next_after(key, s.question(key).digits[0]), hops + 1
            assert hops <= len(s.questions)


# -- the survey call


def call(definition: SurveyDefinition | None = None) -> SurveyCall:
    return SurveyCall.of("7", script(definition), timing=TIMING)


def test_a_survey_call_asks_each_question_on_the_path_and_stores_each_answer() -> None:
    run = Drive(call(), keyed("1", "2", "1")).run()
    assert run.played == ["intro.wav", "q1.wav", "q2.wav", "q3.wav", "end.wav"]
    assert run.answers == [
        ("q1", "1", "answered"),
        ("q2", "2", "answered"),
        ("q3", "1", "answered"),
    ]
    assert run.ended_by == "dialer"
    assert run.flow.outcome().result == "completed"
    # The other branch: q1=4 goes straight to q3.
    run = Drive(call(), keyed("4", "2")).run()
    assert run.answers == [("q1", "4", "answered"), ("q3", "2", "answered")]
    # q2=3 ends the survey.
    assert Drive(call(), keyed("2", "3")).run().flow.outcome().answers == (("q1", "2"), ("q2", "3"))


def test_keys_pressed_while_a_question_plays_answer_it() -> None:
    """Type-ahead: the person keys all three answers during the introduction."""
    run = Drive(call(), [(0.5, "1"), (0.7, "1"), (0.9, "2")]).run()
    assert run.answers == [
        ("q1", "1", "answered"),
        ("q2", "1", "answered"),
        ("q3", "2", "answered"),
    ]
    assert run.played == ["intro.wav", "q1.wav", "q2.wav", "q3.wav", "end.wav"]


def test_a_key_that_is_not_an_answer_is_asked_again() -> None:
    run = Drive(call(), keyed("9", "3", "2")).run()
    assert run.played[:4] == ["intro.wav", "q1.wav", "sorry.wav", "q1.wav"]
    assert run.answers == [("q1", "3", "answered"), ("q3", "2", "answered")]


def test_no_key_after_the_tries_is_recorded_as_no_input_and_ends_the_call() -> None:
    run = Drive(call(), keyed("4")).run()
    assert run.answers == [("q1", "4", "answered"), ("q3", "", "no_input")]
    assert run.played[-3:] == ["sorry.wav", "q3.wav", "goodbye.wav"]
    assert run.flow.outcome().result == "no_input" and run.ended_by == "dialer"
    # Wrong keys count as tries too; the last one is kept with the no_input.
    run = Drive(call(), keyed("8", "9")).run()
    assert run.answers == [("q1", "9", "no_input")]


def test_a_person_who_hangs_up_half_way_keeps_the_answers_given() -> None:
    run = Drive(call(), keyed("1"), hang_up_at=9.0).run()
    assert run.ended_by == "person"
    assert run.answers == [("q1", "1", "answered")]
    assert run.flow.outcome().result == "partial"
    run = Drive(call(), [], hang_up_at=3.0).run()
    assert run.answers == [] and run.flow.outcome().result == "hung_up"


def expected(s: SurveyDefinition, keys: list[str]) -> tuple[list[tuple[str, str, str]], str]:
    """The rules restated: keys answer the questions in order; a key that is not an answer
    uses a try; out of tries, no_input; END: completed."""
    key, tries, stored = s.first, 0, []
    for digit in keys:
        if digit in s.question(key).digits:
            stored.append((key, digit, "answered"))
            key, tries = s.next_after(key, digit), 0
            if key == END:
                return stored, "completed"
        else:
            tries += 1
            if tries == s.tries:
                return [*stored, (key, digit, "no_input")], "no_input"
    return [*stored, (key, "", "no_input")], "no_input"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from("1234567"), max_size=8), st.floats(1.0, 4.5))
def test_whatever_is_keyed_the_survey_stores_exactly_the_rules_answers(
    keys: list[str], gap: float
) -> None:
    """Keys a few seconds apart (never more than a question's wait) are taken in order."""
    run = Drive(call(), keyed(*keys, first=3.0, gap=gap)).run()
    answers, result = expected(survey(), keys)
    assert run.answers == answers
    assert run.flow.outcome().result == result
    assert run.ended_by == "dialer"


# -- the reminder


def reminder(slots: tuple[tuple[int, str], ...] = ((41, "1"), (42, "2"))) -> ReminderCall:
    return ReminderCall.of(
        "9",
        ReminderScript(
            appointment_id=5,
            menu="menu.wav",
            slots=slots,
            slots_menu="slots.wav" if slots else None,
            confirmed="confirmed.wav",
            cancelled="cancelled.wav",
            moved="moved.wav",
            taken="taken.wav",
            no_slots="no-slots.wav",
            not_understood="sorry.wav",
            goodbye="goodbye.wav",
        ),
        timing=TIMING,
    )


def test_1_confirms_and_3_cancels_the_appointment() -> None:
    run = Drive(reminder(), keyed("1", first=3.0)).run()
    assert run.stored == [ChangeAppointment("9", 5, "confirm")]
    assert run.played == ["menu.wav", "confirmed.wav"] and run.ended_by == "dialer"
    assert run.flow.outcome().result == "confirmed"
    assert run.flow.outcome().appointment_id == 5
    run = Drive(reminder(), keyed("3", first=3.0)).run()
    assert run.stored == [ChangeAppointment("9", 5, "cancel")]
    assert run.flow.outcome().result == "cancelled"


def test_2_offers_the_free_slots_and_moves_to_the_one_chosen() -> None:
    run = Drive(reminder(), keyed("2", "2", first=3.0)).run()
    assert run.played == ["menu.wav", "slots.wav", "moved.wav"]
    assert run.stored == [ChangeAppointment("9", 5, "move", 42)]
    assert run.flow.outcome().result == "rescheduled"
    # The slot filled meanwhile: the calendar refuses, the person is told.
    run = Drive(reminder(), keyed("2", "1", first=3.0), stored_ok=False).run()
    assert run.played[-1] == "taken.wav"
    assert run.flow.outcome().result == "reschedule_refused"
    # No free slot to offer.
    run = Drive(reminder(slots=()), keyed("2", first=3.0)).run()
    assert run.played == ["menu.wav", "no-slots.wav"]
    assert run.flow.outcome().result == "no_free_slot"


def test_0_hands_the_call_to_an_agent() -> None:
    run = Drive(reminder(), keyed("0", first=3.0)).run()
    assert run.ended_by == "agent" and run.stored == []
    assert run.flow.outcome().result == "agent"


def test_no_key_after_two_tries_is_recorded_as_such() -> None:
    run = Drive(reminder(), []).run()
    assert run.played == ["menu.wav", "sorry.wav", "menu.wav", "goodbye.wav"]
    assert run.flow.outcome().result == "no_input" and run.stored == []
    # A key that is no choice counts as a try.
    run = Drive(reminder(), keyed("7", "2", "5", "9", first=3.0)).run()
    assert run.flow.outcome().result == "no_input"
    assert run.played == ["menu.wav", "sorry.wav", "menu.wav", "slots.wav", "sorry.wav",
                          "slots.wav", "goodbye.wav"]  # fmt: skip
