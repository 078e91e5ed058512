"""The agentless survey: the introduction, then each question until the survey's end (the
next question by the digit pressed), then the end message. Each answer is stored as it comes
(`SaveAnswer`); a question that gets no valid key after the survey's tries is stored as
no_input and ends the call.

Results: completed (every question on the path answered), no_input, partial (the person hung
up after answering some questions) or hung_up (before answering any)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from campaigns.surveys import END, SurveyDefinition
from dialer.calls.flow import Action, IvrFlow, SaveAnswer


@dataclass(frozen=True)
class SurveyScript:
    """A survey with its prompts rendered: WAV paths by question key."""

    definition: SurveyDefinition
    intro: str
    questions: Mapping[str, str]
    end_message: str
    not_understood: str
    goodbye: str


@dataclass
class SurveyCall(IvrFlow):
    script: SurveyScript | None = None
    asked: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, customer: str, script: SurveyScript, **options: object) -> SurveyCall:
        return cls(
            customer=customer,
            not_understood=script.not_understood,
            goodbye=script.goodbye,
            tries=script.definition.tries,
            script=script,
            **options,  # type: ignore[arg-type]
        )

    def _question(self, key: str, *before: str) -> list[Action]:
        assert self.script is not None
        self.asked.append(key)
        question = self.script.definition.question(key)
        return self.ask(key, question.digits, self.script.questions[key], *before)

    def begin(self, at: float) -> list[Action]:
        assert self.script is not None
        return self._question(self.script.definition.first, self.script.intro)

    def answered(self, key: str, digit: str, at: float) -> list[Action]:
        assert self.script is not None
        self.answers.append((key, digit))
        actions: list[Action] = [SaveAnswer(self.customer, key, digit, "answered")]
        following = self.script.definition.next_after(key, digit)
        if following == END:
            return actions + self.close("completed", "every question answered",
                                        self.script.end_message)  # fmt: skip
        return actions + self._question(following)

    def gave_up(self, key: str, last_wrong: str, at: float) -> list[Action]:
        actions: list[Action] = [SaveAnswer(self.customer, key, last_wrong, "no_input")]
        why = f"no valid key for question {key!r} after {self.tries} tries"
        return actions + self.close("no_input", why, self.goodbye)

    def hung_up_result(self) -> str:
        return "partial" if self.answers else "hung_up"
