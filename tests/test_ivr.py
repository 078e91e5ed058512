"""The IVR digit collector: a pure state machine, driven with explicit times."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.ivr import DTMF_DIGITS, Collected, DigitCollector


def collector(
    max_digits: int = 4,
    terminator: str | None = "#",
    first: float = 5.0,
    inter: float = 3.0,
    started_at: float = 100.0,
) -> DigitCollector:
    return DigitCollector(
        max_digits,
        terminator,
        first_digit_timeout_s=first,
        inter_digit_timeout_s=inter,
        started_at=started_at,
    )


def test_max_digits_completes_on_the_last_digit() -> None:
    c = collector(max_digits=3)
    assert c.press("1", 101.0) is None
    assert c.press("2", 102.0) is None
    assert c.press("3", 103.0) == Collected("123", "complete")
    assert c.result == Collected("123", "complete")


def test_the_terminator_ends_collection_and_is_not_among_the_digits() -> None:
    c = collector()
    c.press("4", 101.0)
    assert c.press("#", 101.5) == Collected("4", "terminator")


def test_a_terminator_alone_gives_no_digits() -> None:
    assert collector().press("#", 100.5) == Collected("", "terminator")


def test_without_a_terminator_hash_is_an_ordinary_digit() -> None:
    c = collector(max_digits=2, terminator=None)
    c.press("#", 101.0)
    assert c.press("*", 101.5) == Collected("#*", "complete")


def test_silence_after_the_prompt_is_no_input_at_the_first_digit_deadline() -> None:
    c = collector(first=5.0, started_at=100.0)
    assert c.tick(104.999) is None
    assert c.tick(105.0) == Collected("", "no_input")


def test_silence_after_some_digits_is_a_timeout_at_the_inter_digit_deadline() -> None:
    c = collector(inter=3.0)
    c.press("7", 102.0)
    assert c.tick(104.9) is None
    assert c.tick(105.0) == Collected("7", "timeout")


def test_the_inter_digit_timeout_restarts_with_every_digit() -> None:
    c = collector(max_digits=5, inter=3.0)
    for i, at in enumerate((101.0, 103.5, 106.0, 108.5)):
        assert c.press(str(i), at) is None
    assert c.tick(111.4) is None
    assert c.tick(111.5) == Collected("0123", "timeout")


def test_a_digit_after_its_deadline_is_too_late_and_the_timeout_is_given_instead() -> None:
    c = collector(inter=3.0)
    c.press("1", 101.0)
    assert c.press("2", 104.0) == Collected("1", "timeout")


def test_a_result_is_given_once_and_later_input_is_ignored() -> None:
    c = collector(max_digits=1)
    assert c.press("9", 101.0) == Collected("9", "complete")
    assert c.press("8", 101.1) is None
    assert c.tick(500.0) is None
    assert c.result == Collected("9", "complete")


def test_the_result_is_frozen() -> None:
    result = collector(max_digits=1).press("1", 101.0)
    assert result is not None
    with pytest.raises(AttributeError):
        result.digits = "2"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_digits": 0}, "max_digits=0: expected an integer of at least 1"),
        ({"max_digits": 2.5}, "max_digits=2.5"),
        ({"max_digits": True}, "max_digits=True"),
        ({"terminator": "x"}, "terminator='x': expected one of"),
        ({"terminator": "##"}, "terminator='##'"),
        ({"terminator": ""}, "terminator=''"),
        ({"first": 0.0}, "first_digit_timeout_s=0.0: expected a finite number of seconds above 0"),
        ({"inter": -1.0}, "inter_digit_timeout_s=-1.0"),
        ({"inter": float("inf")}, "inter_digit_timeout_s=inf"),
        ({"first": float("nan")}, "first_digit_timeout_s=nan"),
        ({"started_at": float("nan")}, "started_at=nan"),
    ],
)
def test_settings_are_checked_and_the_error_names_field_value_and_what_is_accepted(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        collector(**options)  # type: ignore[arg-type]


def test_a_key_that_is_not_dtmf_is_refused() -> None:
    with pytest.raises(ValueError, match="digit='x': expected one of"):
        collector().press("x", 101.0)


def test_time_running_backwards_is_refused() -> None:
    c = collector()
    c.press("1", 102.0)
    with pytest.raises(
        ValueError, match=re.escape("at=101.0: expected a finite time not before 102.0")
    ):
        c.tick(101.0)


# One input: a digit pressed or a tick, `gap` seconds after the previous input.
inputs = st.lists(
    st.tuples(
        st.one_of(st.none(), st.sampled_from(DTMF_DIGITS)),
        st.floats(min_value=0.0, max_value=8.0, allow_nan=False),
    ),
    max_size=30,
)


@settings(max_examples=500, deadline=None)
@given(
    max_digits=st.integers(min_value=1, max_value=8),
    terminator=st.one_of(st.none(), st.sampled_from("#*")),
    first=st.floats(min_value=0.1, max_value=6.0),
    inter=st.floats(min_value=0.1, max_value=6.0),
    steps=inputs,
)
def test_one_result_at_most_max_digits_and_the_timeouts_hold_for_any_input(
    max_digits: int,
    terminator: str | None,
    first: float,
    inter: float,
    steps: list[tuple[str | None, float]],
) -> None:
    c = collector(max_digits, terminator, first, inter, started_at=0.0)
    results: list[Collected] = []
    at = 0.0
    deadline = first  # when silence ends collection, by the settings rather than the code
    for digit, gap in steps:
        at += gap
        result = c.press(digit, at) if digit is not None else c.tick(at)
        assert len(c.digits) <= max_digits
        if result is None:
            if not results:
                # Still collecting: no deadline has passed.
                assert at < deadline
                if digit is not None:
                    deadline = at + inter
            continue
        results.append(result)
        if result.reason in ("timeout", "no_input"):
            assert at >= deadline
            assert (result.reason == "no_input") == (result.digits == "")
        else:
            assert at < deadline
            assert digit is not None
        if result.reason == "complete":
            assert len(result.digits) == max_digits
        if result.reason == "terminator":
            assert digit == terminator
        assert terminator is None or terminator not in result.digits
    assert len(results) <= 1
    # Silence always ends collection: a tick at the deadline gives the result if none came.
    last = c.tick(max(at, deadline))
    if results:
        assert last is None
    else:
        assert last is not None
        assert last.reason in ("timeout", "no_input")
    assert c.tick(max(at, deadline) + 100.0) is None
