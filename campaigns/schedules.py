"""A campaign's calling schedule as people write it: days like "mon-fri" or "mon,wed,sat",
hours like "09:00-20:00" (in the called party's local time; the gate also clips them to the
legal window). Parsed here for the CLI, the console and the API alike, with errors that say
what would be accepted."""

from __future__ import annotations

import datetime as dt

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class ScheduleError(ValueError):
    pass


def parse_days(text: str) -> list[int]:
    """ "mon-fri", "sat,sun", "mon-wed,fri" -> weekday numbers (0 = Monday), sorted."""
    days: set[int] = set()
    for part in text.lower().replace(" ", "").split(","):
        first, dash, last = part.partition("-")
        try:
            start = DAY_NAMES.index(first[:3])
            end = DAY_NAMES.index(last[:3]) if dash else start
        except ValueError:
            raise ScheduleError(
                f"days {text!r}: {part!r} is not a day or a range of days "
                f"(accepted: {', '.join(DAY_NAMES)}, e.g. mon-fri or sat,sun)"
            ) from None
        if end < start:
            raise ScheduleError(f"days {text!r}: {part!r} runs backwards (write mon-fri)")
        days.update(range(start, end + 1))
    return sorted(days)


def format_days(days: list[int]) -> str:
    return ",".join(DAY_NAMES[day] for day in sorted(days))


def parse_hours(text: str) -> tuple[str, str]:
    """ "09:00-20:00" -> ("09:00", "20:00"), start before end."""
    start, dash, end = text.replace(" ", "").partition("-")
    try:
        if not dash:
            raise ValueError
        first, last = dt.time.fromisoformat(start), dt.time.fromisoformat(end)
    except ValueError:
        raise ScheduleError(f"hours {text!r}: expected HH:MM-HH:MM, e.g. 09:00-20:00") from None
    if first >= last:
        raise ScheduleError(f"hours {text!r}: the start must be before the end")
    return first.strftime("%H:%M"), last.strftime("%H:%M")
