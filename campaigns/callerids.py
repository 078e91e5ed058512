"""Caller IDs: a campaign's pool of numbers to show, chosen per call for local presence.

People answer a number of their own area more often, and carriers' analytics label a number
that places too many calls a day as spam. So each call shows a pool number of the lead's area
code, else one of the lead's state, else the campaign's default caller ID; a number that placed
its daily cap of calls today (its own calendar day, where the number is) is skipped, and among
equals the least used today goes first, so calls spread over the pool.

`choose_caller_id` and `choose_caller_ids` are pure: the lead's number and state, the pool with
today's use counts, the default in; the number and why out. The shell around them reads the
pool and the counts in the transaction that writes the attempt rows (`AttemptLedger.open`),
and counts each call in `caller_id_days` there too, so the counts survive any node and two
nodes never both take a number's last call of the day. The same rows count the calls ended
and answered by a person, from which `report` gives each number's answer rate against the
campaign's: a number far below it is burnt (labelled as spam, or blocked).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as phone_zones
from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from campaigns import dnc
from campaigns.db import begin_write
from campaigns.models import CallerId, CallerIdDay, Campaign
from campaigns.us_area_codes import AREA_CODE_STATES

Match = Literal["area_code", "state", "default"]
# A number is judged burnt once this many of its calls ended in the report's days, when its
# answer rate is under this share of the campaign's (fewer calls say too little: 50 calls at
# a 20% campaign rate expect 10 answers; 5 or fewer happen by chance about 3% of the time).
MIN_CALLS_TO_JUDGE = 50
BURNT_BELOW = 0.5
REPORT_DAYS = 7
MAX_REPORT_DAYS = 90
MAX_DAILY_CAP = 100_000


class CallerIdError(ValueError):
    """A refused caller-ID setting; the message names the field and the value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


# -- the pure choice


def area_code(e164: str) -> str | None:
    """A North American number's area code (+1 NXX ...), else None."""
    return e164[2:5] if e164.startswith("+1") and len(e164) == 12 else None


def state_of(e164: str) -> str | None:
    """The US state (or Canadian province) of a North American number's area code."""
    code = area_code(e164)
    return AREA_CODE_STATES.get(code) if code is not None else None


@dataclass(frozen=True)
class PoolNumber:
    phone_e164: str
    daily_cap: int | None = None
    used_today: int = 0

    @property
    def has_room(self) -> bool:
        return self.daily_cap is None or self.used_today < self.daily_cap


@dataclass(frozen=True)
class CallerIdChoice:
    caller_id: str | None  # None: no pool number and no default (the trunk's own)
    match: Match
    detail: str  # a sentence for people: why this number


def choose_caller_id(
    lead_phone: str, lead_state: str | None, pool: Sequence[PoolNumber], default: str | None
) -> CallerIdChoice:
    """The number a call to `lead_phone` shows: a pool number of its area code, else of its
    state (`lead_state`, else its area code's), else `default`. Numbers at their daily cap are
    skipped; among the rest the least used today goes first (ties: the lowest number)."""
    code = area_code(lead_phone)
    state = lead_state or state_of(lead_phone)
    tiers: tuple[tuple[Match, str | None, Any], ...] = (
        ("area_code", code, lambda n: area_code(n.phone_e164)),
        ("state", state, lambda n: state_of(n.phone_e164)),
    )
    full: list[str] = []
    for match, wanted, key in tiers:
        if wanted is None:
            continue
        local = [n for n in pool if key(n) == wanted]
        room = [n for n in local if n.has_room]
        full += [n.phone_e164 for n in local if not n.has_room and n.phone_e164 not in full]
        if room:
            chosen = min(room, key=lambda n: (n.used_today, n.phone_e164))
            what = f"area code {code}" if match == "area_code" else f"state {state}"
            return CallerIdChoice(
                chosen.phone_e164, match, f"{chosen.phone_e164}: the pool's number of {what}"
            )
    if not pool:
        why = "the campaign has no caller-ID pool"
    elif full:
        why = f"{', '.join(full)} reached their daily cap"
    elif code is None:
        why = f"{lead_phone} is not a North American number"
    else:
        why = f"the pool has no number of area code {code} or state {state or 'unknown'}"
    shown = default or "the trunk's caller ID"
    return CallerIdChoice(default, "default", f"{shown}: the default ({why})")


def choose_caller_ids(
    leads: Iterable[tuple[str, str | None]], pool: Sequence[PoolNumber], default: str | None
) -> list[CallerIdChoice]:
    """`choose_caller_id` for each (phone, state) in turn, each call counted against its number
    before the next is chosen: a batch spreads over equal numbers and never passes a cap."""
    numbers = {n.phone_e164: n for n in pool}
    choices = []
    for phone, state in leads:
        choice = choose_caller_id(phone, state, tuple(numbers.values()), default)
        chosen = numbers.get(choice.caller_id or "")
        if chosen is not None and choice.match != "default":
            numbers[chosen.phone_e164] = replace(chosen, used_today=chosen.used_today + 1)
        choices.append(choice)
    return choices


@functools.lru_cache(maxsize=4096)
def number_zone(e164: str) -> ZoneInfo:
    """Where a caller ID's calendar day runs: its number's time zone (the first, for a number
    that spans several), else UTC."""
    try:
        zones = phone_zones.time_zones_for_number(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        zones = ()
    named = sorted(z for z in zones if "/" in z and not z.startswith("Etc/"))
    return ZoneInfo(named[0]) if named else ZoneInfo("UTC")


def number_day(e164: str, at: dt.datetime) -> dt.date:
    """The caller ID's own calendar day at `at`: its cap counts calls of this day."""
    return at.astimezone(number_zone(e164)).date()


def answer_rate(ended: int, live: int) -> float | None:
    return live / ended if ended else None


def burnt(ended: int, live: int, campaign_ended: int, campaign_live: int) -> bool:
    """Whether a number's answer rate, over enough calls, is under half the campaign's."""
    campaign_rate = answer_rate(campaign_ended, campaign_live)
    if ended < MIN_CALLS_TO_JUDGE or not campaign_rate:
        return False
    return live / ended < BURNT_BELOW * campaign_rate


# -- the pool, as stored


def parse_number(number: str) -> str:
    try:
        return dnc.normalise(number.strip())
    except dnc.DncError as error:
        raise CallerIdError("number", str(error)) from None


def parse_daily_cap(value: int | str | None) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        cap = int(value)
    except (TypeError, ValueError):
        cap = 0
    if not 1 <= cap <= MAX_DAILY_CAP:
        raise CallerIdError(
            "daily_cap",
            f"{value!r} is not a number of calls from 1 to {MAX_DAILY_CAP:,} (empty: no cap)",
        )
    return cap


def pool(session: Session, campaign_id: int) -> list[CallerId]:
    return list(
        session.scalars(
            select(CallerId)
            .where(CallerId.campaign_id == campaign_id)
            .order_by(CallerId.phone_e164)
        )
    )


def add(session: Session, campaign: Campaign, number: str, daily_cap: int | str | None) -> CallerId:
    """A number joins the campaign's pool (or has its cap changed when it is there already);
    the caller commits."""
    e164 = parse_number(number)
    cap = parse_daily_cap(daily_cap)
    begin_write(session)
    existing = session.scalar(
        select(CallerId).where(CallerId.campaign_id == campaign.id, CallerId.phone_e164 == e164)
    )
    if existing is not None:
        existing.daily_cap = cap
        return existing
    entry = CallerId(campaign_id=campaign.id, phone_e164=e164, daily_cap=cap)
    session.add(entry)
    session.flush()
    return entry


def remove(session: Session, campaign: Campaign, number: str) -> CallerId:
    """A number leaves the pool (its calls stay in the report); the caller commits."""
    e164 = parse_number(number)
    begin_write(session)
    entry = session.scalar(
        select(CallerId).where(CallerId.campaign_id == campaign.id, CallerId.phone_e164 == e164)
    )
    if entry is None:
        raise CallerIdError("number", f"{e164} is not in the pool of {campaign.name!r}")
    session.delete(entry)
    return entry


# -- counting calls (in the attempt ledger's transactions)


# Built once: at each dial, building it cost more than running it.
_POOL_WITH_DAYS = (
    select(CallerId.phone_e164, CallerId.daily_cap, CallerIdDay.day, CallerIdDay.dials)
    .outerjoin(
        CallerIdDay,
        (CallerIdDay.campaign_id == CallerId.campaign_id)
        & (CallerIdDay.phone_e164 == CallerId.phone_e164)
        & CallerIdDay.day.in_(bindparam("days", expanding=True)),
    )
    .where(CallerId.campaign_id == bindparam("campaign_id"))
    .with_for_update(of=CallerId)
)


def pool_for_dialing(session: Session, campaign_id: int, now: dt.datetime) -> list[PoolNumber]:
    """The pool with each number's calls today, its rows locked until the caller's transaction
    ends (PostgreSQL; SQLite's writer holds the database): two nodes never both see a number's
    last call of the day free. One statement: every number's today is within a day of UTC's."""
    utc_day = now.astimezone(dt.UTC).date()
    days = [utc_day + dt.timedelta(days=d) for d in (-1, 0, 1)]
    parameters = {"campaign_id": campaign_id, "days": days}
    # On the session's connection: the ORM's handling of a plain select costs more than it.
    rows = session.connection().execute(_POOL_WITH_DAYS, parameters).all()
    caps: dict[str, int | None] = {}
    used: dict[str, int] = {}
    for phone, cap, day, dials in rows:
        caps[phone] = cap
        if day == number_day(phone, now):
            used[phone] = dials
    return [PoolNumber(phone, cap, used.get(phone, 0)) for phone, cap in caps.items()]


@functools.cache
def _add_statement(dialect: str) -> Any:
    """Adds a row's counts to the day's (built once: making `excluded` costs ~2 ms)."""
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    statement = insert(CallerIdDay)
    return statement.on_conflict_do_update(
        index_elements=["campaign_id", "day", "phone_e164"],
        set_={
            name: getattr(CallerIdDay, name) + statement.excluded[name]
            for name in ("dials", "ended", "live")
        },
    )


def _add_to_days(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        connection = session.connection()
        connection.execute(_add_statement(connection.dialect.name), rows)


def count_dials(
    session: Session, campaign_id: int, caller_ids: Iterable[str | None], at: dt.datetime
) -> None:
    """Calls placed with these caller IDs at `at` (one per entry)."""
    counts: dict[tuple[str, dt.date], int] = {}
    for phone in caller_ids:
        if phone:
            key = (phone, number_day(phone, at))
            counts[key] = counts.get(key, 0) + 1
    _add_to_days(
        session,
        [
            {
                "campaign_id": campaign_id,
                "phone_e164": p,
                "day": d,
                "dials": n,
                "ended": 0,
                "live": 0,
            }
            for (p, d), n in counts.items()
        ],
    )


def count_end(
    session: Session, campaign_id: int, caller_id: str | None, dialled_at: dt.datetime, live: bool
) -> None:
    """A call placed at `dialled_at` with `caller_id` ended, a person's answer or not."""
    if caller_id:
        day = number_day(caller_id, dialled_at)
        _add_to_days(
            session,
            [
                {
                    "campaign_id": campaign_id,
                    "phone_e164": caller_id,
                    "day": day,
                    "dials": 0,
                    "ended": 1,
                    "live": int(live),
                }
            ],
        )


# -- the report


@dataclass(frozen=True)
class NumberFigures:
    phone_e164: str
    in_pool: bool
    daily_cap: int | None
    used_today: int
    dials: int
    ended: int
    live: int
    burnt: bool

    @property
    def answer_rate(self) -> float | None:
        return answer_rate(self.ended, self.live)

    def as_json(self) -> dict[str, Any]:
        rate = self.answer_rate
        return {
            "number": self.phone_e164,
            "in_pool": self.in_pool,
            "area_code": area_code(self.phone_e164),
            "state": state_of(self.phone_e164),
            "daily_cap": self.daily_cap,
            "used_today": self.used_today,
            "calls": self.dials,
            "ended": self.ended,
            "answered": self.live,
            "answer_rate": None if rate is None else round(rate, 4),
            "burnt": self.burnt,
        }


@dataclass(frozen=True)
class CallerIdReport:
    campaign: str
    days: int
    default: str | None
    ended: int
    live: int
    numbers: tuple[NumberFigures, ...]

    @property
    def answer_rate(self) -> float | None:
        return answer_rate(self.ended, self.live)

    def as_json(self) -> dict[str, Any]:
        rate = self.answer_rate
        return {
            "campaign": self.campaign,
            "days": self.days,
            "default_caller_id": self.default,
            "ended": self.ended,
            "answered": self.live,
            "answer_rate": None if rate is None else round(rate, 4),
            "burnt_below": BURNT_BELOW,
            "min_calls_to_judge": MIN_CALLS_TO_JUDGE,
            "numbers": [n.as_json() for n in self.numbers],
        }

    def text(self) -> str:
        def percent(rate: float | None) -> str:
            return "—" if rate is None else f"{rate:.1%}"

        default = self.default or "the trunk's"
        lines = [
            f"Caller IDs of {self.campaign!r}, the last {self.days} days: "
            f"{self.ended:,} calls ended, {percent(self.answer_rate)} answered by a person "
            f"(default caller ID: {default})",
            f"{'number':<16} {'area':>4} {'state':>5} {'cap':>6} {'today':>6} {'ended':>7} "
            f"{'answered':>8} {'rate':>6}",
        ]
        for n in self.numbers:
            flags = [] if n.in_pool else ["not in the pool"]
            if n.burnt:
                flags.insert(0, "BURNT")
            lines.append(
                f"{n.phone_e164:<16} {area_code(n.phone_e164) or '—':>4} "
                f"{state_of(n.phone_e164) or '—':>5} "
                f"{n.daily_cap if n.daily_cap is not None else '—':>6} {n.used_today:>6} "
                f"{n.ended:>7,} {n.live:>8,} {percent(n.answer_rate):>6}"
                + (f"  {', '.join(flags)}" if flags else "")
            )
        if not self.numbers:
            lines.append("(no number in the pool and no call yet)")
        lines.append(
            f"Burnt: at least {MIN_CALLS_TO_JUDGE} calls and an answer rate under "
            f"{BURNT_BELOW:.0%} of the campaign's."
        )
        return "\n".join(lines)


def report(
    session: Session, campaign: Campaign, now: dt.datetime, days: int = REPORT_DAYS
) -> CallerIdReport:
    """Each number's calls today and over the last `days` days (its own calendar days), with
    its answer rate against the campaign's; the pool's numbers first, then others the calls
    showed (the default, numbers since removed). Reads `caller_id_days`: a few rows per number
    and day, whatever the number of attempts."""
    if not 1 <= days <= MAX_REPORT_DAYS:
        raise CallerIdError("days", f"{days!r} is not a number of days from 1 to {MAX_REPORT_DAYS}")
    entries = {entry.phone_e164: entry for entry in pool(session, campaign.id)}
    # Every number's today is within a day of UTC's: read from the earliest first day on.
    earliest = (now - dt.timedelta(days=days)).date() - dt.timedelta(days=1)
    rows = session.execute(
        select(
            CallerIdDay.phone_e164,
            CallerIdDay.day,
            CallerIdDay.dials,
            CallerIdDay.ended,
            CallerIdDay.live,
        ).where(CallerIdDay.campaign_id == campaign.id, CallerIdDay.day >= earliest)
    ).all()
    totals: dict[str, list[int]] = {phone: [0, 0, 0, 0] for phone in entries}
    todays: dict[str, dt.date] = {}
    for phone, day, dials, ended, live in rows:
        today = todays.get(phone) or todays.setdefault(phone, number_day(phone, now))
        if not today - dt.timedelta(days=days - 1) <= day <= today:
            continue
        figures = totals.setdefault(phone, [0, 0, 0, 0])
        figures[0] += dials
        figures[1] += ended
        figures[2] += live
        if day == today:
            figures[3] += dials
    campaign_ended = sum(f[1] for f in totals.values())
    campaign_live = sum(f[2] for f in totals.values())
    numbers = [
        NumberFigures(
            phone,
            phone in entries,
            entries[phone].daily_cap if phone in entries else None,
            used_today,
            dials,
            ended,
            live,
            burnt(ended, live, campaign_ended, campaign_live),
        )
        for phone, (dials, ended, live, used_today) in totals.items()
    ]
    numbers.sort(key=lambda n: (not n.in_pool, n.phone_e164))
    return CallerIdReport(
        campaign.name, days, campaign.caller_id, campaign_ended, campaign_live, tuple(numbers)
    )
