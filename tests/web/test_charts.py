"""The dashboard's charts (pure SVG) and the abandon levels they and the figures are coloured by."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from campaigns.models import MAX_ABANDON_TARGET
from campaigns.timeline import HOUR, DayFigures, HourFigures, floor_hour, last_hours
from web.charts import (
    AMBER_FROM,
    abandon_chart,
    abandon_level,
    hourly_chart,
    nice_scale,
    outcome_chart,
)

SVG = "{http://www.w3.org/2000/svg}"
NOW = dt.datetime(2026, 3, 8, 14, 25, tzinfo=dt.UTC)
targets = st.floats(min_value=0.001, max_value=MAX_ABANDON_TARGET)


@given(st.floats(min_value=0, max_value=1), targets)
def test_a_rate_is_red_at_the_target_and_amber_from_eighty_percent_of_it(
    rate: float, target: float
) -> None:
    level = abandon_level(rate, target)
    if rate >= target:
        assert level == "red"
    elif rate >= AMBER_FROM * target:
        assert level == "amber"
    else:
        assert level == "ok"


@given(st.floats(min_value=0, max_value=1), st.floats(min_value=0, max_value=1), targets)
def test_a_higher_rate_is_never_a_calmer_colour(a: float, b: float, target: float) -> None:
    order = ["ok", "amber", "red"]
    low, high = sorted((a, b))
    assert order.index(abandon_level(low, target)) <= order.index(abandon_level(high, target))


def test_no_live_answer_has_no_rate_and_no_colour() -> None:
    assert abandon_level(None, 0.03) == "none"


@given(st.floats(min_value=1e-6, max_value=1e9))
def test_an_axis_covers_the_largest_value_in_round_steps(largest: float) -> None:
    scale = nice_scale(largest)
    assert scale.top >= largest and scale.top <= largest * 5 + 1e-9
    assert len(scale.ticks()) == 5 and abs(scale.ticks()[-1] - scale.top) < 1e-6 * scale.top


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    # Presentation attributes only: the content security policy allows no inline style.
    assert all(element.get("style") is None for element in root.iter())
    assert not list(root.iter(f"{SVG}style")) and not list(root.iter(f"{SVG}script"))
    return root


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_the_hourly_chart_labels_every_third_hour_in_the_viewers_zone() -> None:
    rows = [
        HourFigures(floor_hour(NOW) - i * HOUR, attempts=10 * i, connected=i) for i in range(24)
    ]
    root = parse(hourly_chart(last_hours(rows, NOW), ZoneInfo("Asia/Kolkata")))
    hours = [t for t in texts(root) if t.endswith(":00")]
    # 14:00 UTC is 19:30 in Kolkata: the hours there start at :30 past UTC's, labelled by theirs.
    assert len(hours) == 8 and all(int(t[:2]) % 3 == 0 for t in hours)
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(bars) == 23 * 2  # no bar for an hour without attempts
    assert all(float(b.get("y", 0)) >= 0 and float(b.get("height", 0)) > 0 for b in bars)


def test_empty_charts_say_so_rather_than_draw_nothing() -> None:
    assert "No calls in the last 24 hours" in texts(
        parse(hourly_chart(last_hours([], NOW), ZoneInfo("UTC")))
    )
    assert "No calls in the last 24 hours" in texts(parse(outcome_chart({})))
    days = [DayFigures(NOW.date() - dt.timedelta(days=i), 0, 0) for i in range(30)]
    assert "No live answers in the last 30 days" in texts(parse(abandon_chart(days, 0.03)))


def test_the_outcome_chart_shows_the_outcomes_that_happened_with_their_share() -> None:
    root = parse(outcome_chart({"connected": 30, "machine": 10, "busy": 0}))
    legend = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    assert legend == ["Talked to an agent 30 (75.0%)", "Answering machine 10 (25.0%)"]
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert [float(b.get("width", 0)) for b in bars] == [900.0, 300.0]


def test_the_trend_draws_the_legal_line_and_a_stricter_target() -> None:
    today = NOW.date()
    days = [DayFigures(today - dt.timedelta(days=29 - i), 100, 0) for i in range(30)]
    days[-1] = DayFigures(today, 1000, 21)  # 2.1%: amber against a 2.5% target
    days[-2] = DayFigures(today - dt.timedelta(days=1), 0, 0)  # nobody answered: no bar
    root = parse(abandon_chart(days, 0.025))
    assert "3% limit" in texts(root) and "target 2.5%" in texts(root)
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(bars) == 29
    assert bars[-1].get("fill") == "#d99a1e"
    assert {b.get("fill") for b in bars[:-1]} == {"#1d7a46"}
    # With the target at the legal limit, one line.
    assert "target 3%" not in texts(parse(abandon_chart(days, 0.03)))
