"""How values look in pages: times in the viewer's own zone, rates as percentages."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from decimal import Decimal

from flask import Flask
from flask_login import current_user

from web.permissions import may


@functools.cache
def time_zones() -> tuple[str, ...]:
    """IANA zone names a user may pick, sorted; 'localtime' and the like are left out."""
    return tuple(sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC"))


def viewer_zone() -> zoneinfo.ZoneInfo:
    name = getattr(current_user, "time_zone", None) or "UTC"
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def localtime(moment: dt.datetime | None, seconds: bool = False) -> str:
    if moment is None:
        return "—"
    local = moment.astimezone(viewer_zone())
    return local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def localdate(moment: dt.datetime | dt.date | None) -> str:
    if moment is None:
        return "—"
    if isinstance(moment, dt.datetime):
        return moment.astimezone(viewer_zone()).date().isoformat()
    return moment.isoformat()


def percent(fraction: float | Decimal | None, digits: int = 1) -> str:
    if fraction is None:
        return "—"
    return f"{float(fraction) * 100:.{digits}f}%"


def duration(delta: dt.timedelta) -> str:
    """A recycling delay as people say it: 15 min, 2 h, 1 day 6 h."""
    minutes = round(delta.total_seconds() / 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes or not parts else []
    return " ".join(parts)


def thousands(number: int | None) -> str:
    return "—" if number is None else f"{number:,}"


def user_may(permission: str) -> bool:
    return current_user.is_authenticated and may(current_user.role, permission)


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(
        localtime=localtime,
        localdate=localdate,
        percent=percent,
        thousands=thousands,
        duration=duration,
    )
    app.jinja_env.globals.update(may=user_may, viewer_zone=viewer_zone)
    # Templates are autoescaped (Flask does so for .html); nothing marks user data safe.
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
