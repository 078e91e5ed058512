"""The dashboard's charts as SVG documents, drawn here from figures (pure: no database, no
clock). The console serves them as images: an SVG image runs no script and reads no page
style, and every label is escaped, so what a campaign's data says is only ever drawn.

Presentation attributes only (fill, stroke, font-size): the console's content security policy
allows no inline style, in an image either.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from markupsafe import escape

from campaigns.models import MAX_ABANDON_TARGET
from campaigns.timeline import OUTCOME_PARTS, DayFigures, HourFigures

WIDTH = 640
# The outcome breakdown spans the dashboard's width: one stacked bar and its legend.
WIDE = 1200
# A character's width at 13 px in the widest of the console's fonts (DejaVu Sans), to lay
# the legend out: narrower fonts leave wider gaps, never overlaps.
CHAR_W = 8.2
FONT = 'font-family="system-ui, DejaVu Sans, Arial, sans-serif"'
INK = "#1c2430"
SOFT = "#536173"
GRID = "#e3e8ee"
ATTEMPTS = "#b9cde8"
CONTACTS = "#1f4e8c"
LEVEL_COLOURS = {"ok": "#1d7a46", "amber": "#d99a1e", "red": "#b42318", "none": "#c4cbd5"}
OUTCOME_COLOURS = {
    "connected": "#1d7a46",
    "abandoned": "#b42318",
    "hung_up": "#d99a1e",
    "machine": "#5d6b7e",
    "machine_message": "#3e4a5a",
    "busy": "#8592a3",
    "no_answer": "#aab4c3",
    "invalid": "#7d5ba6",
    "congestion": "#c07a3b",
    "failed": "#c9ced6",
}
# Amber from this share of a campaign's abandon target, red at the target itself.
AMBER_FROM = 0.8


def abandon_level(rate: float | None, target: float) -> str:
    """How close an abandon rate is to the campaign's target: "ok", "amber" from 80% of it,
    "red" at it; "none" when no person answered yet (no rate)."""
    if rate is None:
        return "none"
    if rate >= target:
        return "red"
    if rate >= AMBER_FROM * target:
        return "amber"
    return "ok"


@dataclass(frozen=True)
class Scale:
    top: float
    step: float

    def ticks(self) -> list[float]:
        count = round(self.top / self.step)
        return [self.step * i for i in range(count + 1)]


def nice_scale(largest: float, ticks: int = 4) -> Scale:
    """An axis from 0 to a round number at or above `largest`, in about `ticks` round steps
    (1, 2, 2.5 or 5 times a power of ten)."""
    if largest <= 0 or not math.isfinite(largest):
        return Scale(1.0, 0.25) if ticks == 4 else Scale(float(ticks), 1.0)
    raw = largest / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * power
        if step * ticks >= largest:
            return Scale(step * ticks, step)
    return Scale(10 * power * ticks, 10 * power)  # pragma: no cover - 10x always fits


def _number(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:.1f}k".replace(".0k", "k")
    return f"{value:g}"


def _document(height: int, body: list[str], label: str, width: int = WIDTH) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(label)}" {FONT}>'
        f"<title>{escape(label)}</title>" + "".join(body) + "</svg>"
    )


def _text(
    x: float,
    y: float,
    text: str,
    *,
    size: int = 12,
    fill: str = SOFT,
    anchor: str = "start",
    weight: str = "normal",
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}" '
        f'text-anchor="{anchor}" font-weight="{weight}">{escape(text)}</text>'
    )


def _empty(height: int, label: str, message: str, width: int = WIDTH) -> str:
    return _document(
        height,
        [
            f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" rx="6" '
            f'fill="#fafbfc" stroke="{GRID}"/>',
            _text(width / 2, height / 2 + 5, message, size=14, anchor="middle"),
        ],
        label,
        width,
    )


def hourly_chart(hours: Sequence[HourFigures], zone: ZoneInfo) -> str:
    """Attempts per hour with the contacts (calls bridged to an agent) drawn over them."""
    label = "Attempts and contacts per hour, last 24 hours"
    height = 230
    if not any(h.attempts for h in hours):
        return _empty(height, label, "No calls in the last 24 hours")
    left, right, top, bottom = 44, 12, 30, 28
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    scale = nice_scale(max(h.attempts for h in hours))
    body = [
        f'<rect x="{left}" y="8" width="11" height="11" rx="2" fill="{ATTEMPTS}"/>',
        _text(left + 16, 18, "Attempts"),
        f'<rect x="{left + 90}" y="8" width="11" height="11" rx="2" fill="{CONTACTS}"/>',
        _text(left + 106, 18, "Contacts (talked to an agent)"),
    ]
    for tick in scale.ticks():
        y = top + plot_h - tick / scale.top * plot_h
        body.append(
            f'<line x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        body.append(_text(left - 6, y + 4, _number(tick), size=11, anchor="end"))
    slot = plot_w / len(hours)
    for i, hour in enumerate(hours):
        x = left + i * slot
        bars = ((hour.attempts, ATTEMPTS, 0.12), (hour.connected, CONTACTS, 0.3))
        for value, colour, inset in bars:
            if value <= 0:
                continue
            bar = max(1.0, value / scale.top * plot_h)
            body.append(
                f'<rect x="{x + slot * inset:.1f}" y="{top + plot_h - bar:.1f}" '
                f'width="{slot * (1 - 2 * inset):.1f}" height="{bar:.1f}" rx="1.5" '
                f'fill="{colour}"><title>{escape(_hour_title(hour, zone))}</title></rect>'
            )
        local = hour.hour.astimezone(zone)
        if local.hour % 3 == 0:
            body.append(_text(x + slot / 2, height - 9, f"{local:%H}:00", size=11, anchor="middle"))
    body.append(
        f'<line x1="{left}" x2="{WIDTH - right}" y1="{top + plot_h}" y2="{top + plot_h}" '
        f'stroke="#c9d1db"/>'
    )
    return _document(height, body, label)


def _hour_title(hour: HourFigures, zone: ZoneInfo) -> str:
    local = hour.hour.astimezone(zone)
    return f"{local:%H}:00: {hour.attempts} attempts, {hour.connected} contacts"


def outcome_chart(counts: dict[str, int]) -> str:
    """What the last 24 hours' attempts became: one bar split by outcome, and a legend with
    each outcome's count and share (the outcomes that did not happen are left out)."""
    label = "What the attempts became, last 24 hours"
    total = sum(counts.values())
    if not total:
        return _empty(64, label, "No calls in the last 24 hours", WIDE)
    shown = [(name, text) for name, text in OUTCOME_PARTS if counts.get(name, 0) > 0]
    body = []
    x = 0.0
    for name, text in shown:
        share = counts[name] / total
        width = max(2.0, share * WIDE)
        body.append(
            f'<rect x="{x:.1f}" y="4" width="{min(width, WIDE - x):.1f}" height="26" '
            f'fill="{OUTCOME_COLOURS[name]}"><title>{escape(text)}: {counts[name]:,} '
            f"({share:.0%})</title></rect>"
        )
        x += width
    x, y = 0.0, 56.0
    for name, text in shown:
        value = f"{counts[name]:,} ({counts[name] / total:.1%})"
        item = 18 + CHAR_W * (len(text) + len(value) + 1) + 24
        if x > 0 and x + item > WIDE:
            x, y = 0.0, y + 24
        body.append(
            f'<rect x="{x:.1f}" y="{y - 11:.1f}" width="12" height="12" rx="2" '
            f'fill="{OUTCOME_COLOURS[name]}"/>'
        )
        body.append(
            f'<text x="{x + 18:.1f}" y="{y:.1f}" font-size="13" fill="{INK}">{escape(text)} '
            f'<tspan font-weight="600">{escape(value)}</tspan></text>'
        )
        x += item
    return _document(int(y + 10), body, label, WIDE)


def abandon_chart(days: Sequence[DayFigures], target: float) -> str:
    """The abandon rate of each of the last 30 days against the 3% line (47 CFR
    64.1200(a)(7)) and the campaign's own target; each bar coloured by how near it is."""
    label = "Abandon rate per day, last 30 days, against the 3% line"
    height = 230
    if not any(day.live for day in days):
        return _empty(height, label, "No live answers in the last 30 days")
    # The right margin holds the lines' labels, clear of the bars.
    left, right, top, bottom = 44, 86, 14, 28
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    rates = [day.abandon_rate or 0.0 for day in days]
    scale = nice_scale(max(max(rates), MAX_ABANDON_TARGET * 4 / 3))
    body = []

    def y_of(rate: float) -> float:
        return top + plot_h - min(rate, scale.top) / scale.top * plot_h

    for tick in scale.ticks():
        y = y_of(tick)
        body.append(
            f'<line x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        body.append(_text(left - 6, y + 4, f"{tick * 100:g}%", size=11, anchor="end"))
    slot = plot_w / len(days)
    for i, day in enumerate(days):
        x = left + i * slot
        level = abandon_level(day.abandon_rate, target)
        rate = day.abandon_rate
        if rate is None:
            # No person answered that day: a dot on the axis, not a bar of zero.
            body.append(
                f'<circle cx="{x + slot / 2:.1f}" cy="{top + plot_h - 2}" r="1.6" '
                f'fill="{LEVEL_COLOURS["none"]}"/>'
            )
        else:
            bar = max(1.5, y_of(0) - y_of(rate))
            title = f"{day.day:%b %d}: {rate:.2%} ({day.abandoned} of {day.live} live answers)"
            body.append(
                f'<rect x="{x + slot * 0.15:.1f}" y="{y_of(0) - bar:.1f}" '
                f'width="{slot * 0.7:.1f}" height="{bar:.1f}" rx="1.5" '
                f'fill="{LEVEL_COLOURS[level]}"><title>{escape(title)}</title></rect>'
            )
        if (len(days) - 1 - i) % 5 == 0:
            body.append(
                _text(x + slot / 2, height - 9, f"{day.day:%b} {day.day.day}", anchor="middle")
            )
    lines = [(MAX_ABANDON_TARGET, LEVEL_COLOURS["red"], "3% limit")]
    if target < MAX_ABANDON_TARGET - 1e-9:
        lines.append((target, LEVEL_COLOURS["amber"], f"target {target * 100:g}%"))
    label_y = -math.inf
    for rate, colour, text in lines:
        y = y_of(rate)
        body.append(
            f'<line x1="{left}" x2="{WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="6 4"/>'
        )
        # A target just under the limit: its label goes below the limit's, not over it.
        label_y = max(y + 4, label_y + 14)
        body.append(_text(WIDTH - right + 6, label_y, text, size=12, fill=colour, weight="600"))
    body.append(
        f'<line x1="{left}" x2="{WIDTH - right}" y1="{y_of(0):.1f}" y2="{y_of(0):.1f}" '
        f'stroke="#c9d1db"/>'
    )
    return _document(height, body, label)
