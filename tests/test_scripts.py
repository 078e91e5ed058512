"""Agents' scripts: placeholders filled from a lead, everything else kept as written."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from campaigns.scripts import fill, placeholders

NAMES = st.text("abcdefghijklmnopqrstuvwxyz_ ", min_size=1, max_size=12).filter(str.strip)
PLAIN = st.text(st.characters(blacklist_characters="{}"), max_size=30)


@given(st.lists(st.tuples(PLAIN, NAMES), max_size=6), PLAIN, st.dictionaries(NAMES, PLAIN))
def test_each_placeholder_becomes_its_value_or_stays_as_written(
    parts: list[tuple[str, str]], tail: str, values: dict[str, str]
) -> None:
    script = "".join(f"{text}{{{name}}}" for text, name in parts) + tail
    expected = (
        "".join(text + values.get(name.strip(), f"{{{name}}}") for text, name in parts) + tail
    )
    filled = fill(script, values)
    assert filled.text == expected
    assert set(filled.unknown) == {n.strip() for _, n in parts if n.strip() not in values}


@given(PLAIN, st.dictionaries(NAMES, PLAIN))
def test_text_without_braces_is_left_alone(text: str, values: dict[str, str]) -> None:
    assert fill(text, values) == (text, ())


def test_attribute_and_index_lookups_are_plain_unknown_names() -> None:
    filled = fill("{first_name.__class__} {0} {first_name}", {"first_name": "Ana"})
    assert filled.text == "{first_name.__class__} {0} Ana"
    assert filled.unknown == ("first_name.__class__", "0")


def test_values_are_not_filled_again() -> None:
    assert fill("{a}", {"a": "{b}", "b": "x"}).text == "{b}"


def test_placeholders_are_listed_once_in_order() -> None:
    assert placeholders("{b} {a} { b }") == ("b", "a")
