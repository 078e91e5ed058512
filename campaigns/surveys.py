"""Surveys as data: questions (text spoken by `dialer.prompts`, the digits that answer them,
the next question by digit), an introduction and an end message, stored per campaign; and the
answers, per question per lead, written as they come.

`SurveyDefinition` is pure and validated where it is made (`from_dict`, the console's form):
every question reachable, every branch to a known question or the end, and no way round in a
circle, so every path through a survey ends. The agentless flow (`dialer.calls.survey`) and the
agent desktop read the same definition.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.models import CallAttempt, Campaign, Survey, SurveyAnswer, utcnow

END = "end"
ANSWER_DIGITS = "0123456789*#"
KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_QUESTIONS = 40
MAX_TEXT = 1000
MAX_TRIES = 5
DEFAULT_INTRO = (
    "Hello, this is a short survey on behalf of {seller}. Please answer with your keypad."
)
DEFAULT_END = "Thank you for your answers. Goodbye."


class SurveyError(ValueError):
    pass


@dataclass(frozen=True)
class Question:
    """`branches`: digit -> the next question's key (or END); a valid digit not in it goes to
    `then`, else to the next question in order (END after the last)."""

    key: str
    text: str
    digits: str
    branches: Mapping[str, str] = field(default_factory=dict)
    then: str | None = None


@dataclass(frozen=True)
class SurveyDefinition:
    questions: tuple[Question, ...]
    intro: str = DEFAULT_INTRO
    end_message: str = DEFAULT_END
    # How often a question is asked before its answer is recorded as no_input.
    tries: int = 2

    def __post_init__(self) -> None:
        validate(self)

    @property
    def first(self) -> str:
        return self.questions[0].key

    def question(self, key: str) -> Question:
        for question in self.questions:
            if question.key == key:
                return question
        raise KeyError(f"no question {key!r} in the survey")

    def next_after(self, key: str, digit: str) -> str:
        """The question that follows `digit` (a valid answer to `key`), or END."""
        question = self.question(key)
        if digit in question.branches:
            return question.branches[digit]
        if question.then is not None:
            return question.then
        index = self.questions.index(question)
        return self.questions[index + 1].key if index + 1 < len(self.questions) else END

    def to_dict(self) -> dict[str, Any]:
        return {
            "intro": self.intro,
            "end_message": self.end_message,
            "tries": self.tries,
            "questions": [
                {
                    "key": q.key,
                    "text": q.text,
                    "digits": q.digits,
                    "branches": dict(q.branches),
                    **({"then": q.then} if q.then is not None else {}),
                }
                for q in self.questions
            ],
        }


def validate(survey: SurveyDefinition) -> None:
    """Raises SurveyError naming the question, field and value at fault."""
    if not survey.questions:
        raise SurveyError("questions: a survey needs at least one question")
    if len(survey.questions) > MAX_QUESTIONS:
        raise SurveyError(f"questions: {len(survey.questions)} given; at most {MAX_QUESTIONS}")
    if isinstance(survey.tries, bool) or not 1 <= survey.tries <= MAX_TRIES:
        raise SurveyError(f"tries: {survey.tries!r}; expected 1 to {MAX_TRIES}")
    for name in ("intro", "end_message"):
        text = getattr(survey, name)
        if len(text) > MAX_TEXT:
            raise SurveyError(f"{name}: {len(text)} characters; at most {MAX_TEXT}")
    if not survey.end_message.strip():
        raise SurveyError("end_message: empty; the call ends with it")
    keys = [q.key for q in survey.questions]
    for question in survey.questions:
        where = f"question {question.key!r}"
        if not KEY.match(question.key) or question.key == END:
            raise SurveyError(
                f"question key {question.key!r}: expected a lower-case name such as q1 "
                f"(letters, digits, _; not {END!r})"
            )
        if keys.count(question.key) > 1:
            raise SurveyError(f"{where}: the key is given twice")
        if not question.text.strip() or len(question.text) > MAX_TEXT:
            raise SurveyError(f"{where}: text must have 1 to {MAX_TEXT} characters")
        digits = question.digits
        if (
            not digits
            or any(d not in ANSWER_DIGITS for d in digits)
            or len(set(digits)) != len(digits)
        ):
            raise SurveyError(
                f"{where}: digits {digits!r}; expected each of {ANSWER_DIGITS!r} at most once"
            )
        for digit, target in question.branches.items():
            if digit not in digits:
                raise SurveyError(
                    f"{where}: branch on {digit!r}, which is not one of its digits {digits!r}"
                )
            if target != END and target not in keys:
                raise SurveyError(f"{where}: branch {digit!r} -> {target!r}: no such question")
        if question.then is not None and question.then != END and question.then not in keys:
            raise SurveyError(f"{where}: then -> {question.then!r}: no such question")
    _no_circle(survey)


def _no_circle(survey: SurveyDefinition) -> None:
    """Every path ends: a depth-first walk from the first question never meets a question
    already on its path."""
    done: set[str] = set()

    def targets(key: str) -> set[str]:
        question = survey.question(key)
        return {survey.next_after(key, digit) for digit in question.digits} - {END}

    def walk(key: str, path: tuple[str, ...]) -> None:
        if key in path:
            circle = " -> ".join((*path[path.index(key) :], key))
            raise SurveyError(f"questions go round in a circle: {circle}; every path must end")
        if key in done:
            return
        for target in sorted(targets(key)):
            walk(target, (*path, key))
        done.add(key)

    walk(survey.first, ())
    for question in survey.questions:
        if question.key not in done:
            raise SurveyError(
                f"question {question.key!r} is never asked: no answer leads to it (branch to "
                "it, or remove it)"
            )


def from_dict(data: Mapping[str, Any]) -> SurveyDefinition:
    """A survey from its JSON form (the API, the stored row), validated."""
    if not isinstance(data, Mapping):
        raise SurveyError(f"survey: expected an object, got {type(data).__name__}")
    raw_questions = data.get("questions")
    if not isinstance(raw_questions, list):
        raise SurveyError("questions: expected a list of questions")
    questions = []
    for index, raw in enumerate(raw_questions, 1):
        if not isinstance(raw, Mapping):
            raise SurveyError(f"question {index}: expected an object")
        branches = raw.get("branches") or {}
        if not isinstance(branches, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in branches.items()
        ):
            raise SurveyError(f"question {index}: branches must map digits to question keys")
        then = raw.get("then")
        questions.append(
            Question(
                key=str(raw.get("key", "")).strip(),
                text=str(raw.get("text", "")).strip(),
                digits=str(raw.get("digits", "")).strip(),
                branches=dict(branches),
                then=None if then in (None, "") else str(then),
            )
        )
    tries = data.get("tries", 2)
    if not isinstance(tries, int):
        raise SurveyError(f"tries: {tries!r}; expected a whole number")
    return SurveyDefinition(
        tuple(questions),
        intro=str(data.get("intro", DEFAULT_INTRO)).strip(),
        end_message=str(data.get("end_message", DEFAULT_END)).strip(),
        tries=tries,
    )


BRANCH = re.compile(r"^([0-9*#])\s*(?:=|->)\s*([a-z][a-z0-9_]*)$")


def parse_branches(text: str, where: str) -> dict[str, str]:
    """`1=q2 2=q2 3=end` (or `1->q2, 3->end`) as the console's form takes it."""
    branches: dict[str, str] = {}
    for item in re.split(r"[,;\s]+(?=[0-9*#]\s*(?:=|->))", text.strip()):
        item = item.strip().strip(",;")
        if not item:
            continue
        match = BRANCH.match(item.replace(" ", ""))
        if match is None:
            raise SurveyError(
                f"{where}: branch {item!r}; expected digit=question, e.g. 1=q2 or 3=end"
            )
        digit, target = match.groups()
        if digit in branches:
            raise SurveyError(f"{where}: digit {digit!r} is branched twice")
        branches[digit] = target
    return branches


# -- stored


def load(session: Session, campaign_id: int) -> SurveyDefinition | None:
    row = session.get(Survey, campaign_id)
    if row is None or not row.definition:
        return None
    return from_dict(row.definition)


def save(session: Session, campaign: Campaign, survey: SurveyDefinition) -> None:
    """The campaign's survey, replaced; the caller commits. Answers already given keep their
    question keys."""
    if campaign.kind != "survey":
        raise SurveyError(
            f"campaign {campaign.name!r} is not a survey campaign but {campaign.kind}"
        )
    row = session.get(Survey, campaign.id)
    if row is None:
        row = Survey(campaign_id=campaign.id)
        session.add(row)
    row.definition = survey.to_dict()
    row.updated_at = utcnow()
    campaign.updated_at = utcnow()  # running nodes read the campaign (and its survey) again


def record_answer(
    session: Session,
    attempt: CallAttempt,
    question: str,
    digits: str,
    *,
    status: str = "answered",
    source: str = "ivr",
) -> SurveyAnswer:
    """One answer of the attempt's lead; the caller commits. A question answered again in the
    same call (it cannot be, but an agent's form may be sent twice) keeps its last answer."""
    row = session.scalar(
        select(SurveyAnswer).where(
            SurveyAnswer.attempt_id == attempt.id, SurveyAnswer.question == question
        )
    )
    if row is None:
        row = SurveyAnswer(
            campaign_id=attempt.campaign_id,
            lead_id=attempt.lead_id,
            attempt_id=attempt.id,
            question=question,
        )
        session.add(row)
    row.digits, row.status, row.source = digits, status, source
    return row


def agent_answers(survey: SurveyDefinition, answers: Mapping[str, str]) -> dict[str, str]:
    """An agent's answers checked against the survey: known questions, valid digits. Questions
    left blank are left out (the person did not answer them)."""
    checked = {}
    for key, digit in answers.items():
        if not digit:
            continue
        try:
            question = survey.question(key)
        except KeyError:
            raise SurveyError(f"answer to {key!r}: the survey has no such question") from None
        if len(digit) != 1 or digit not in question.digits:
            raise SurveyError(
                f"answer to {key!r}: {digit!r} is not one of its answers {question.digits!r}"
            )
        checked[key] = digit
    return checked


def answers_of(session: Session, campaign_id: int) -> dict[int, dict[str, SurveyAnswer]]:
    """Every answer of a campaign by lead and question (the latest call's, when asked again)."""
    rows = session.scalars(
        select(SurveyAnswer)
        .where(SurveyAnswer.campaign_id == campaign_id)
        .order_by(SurveyAnswer.id)
    )
    result: dict[int, dict[str, SurveyAnswer]] = {}
    for row in rows:
        result.setdefault(row.lead_id, {})[row.question] = row
    return result
