"""The compliance gate: the one decision every dial passes through, whatever its kind.

Pure: the caller gathers the facts (lead, campaign rules, dial history, the instant) and acts on
the verdict. Where a regulation counts calendar days in the called party's time zone, the gate
uses the rolling window that contains every such calendar window in every zone, so it is never
less strict than the rule.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DialKind = Literal["predictive", "progressive", "callback", "preview", "manual"]
DIAL_KINDS: tuple[DialKind, ...] = ("predictive", "progressive", "callback", "preview", "manual")
# Dials the system places on its own (an automatic telephone dialing system in TCPA terms).
AUTOMATED: frozenset[str] = frozenset({"predictive", "progressive", "callback"})
# Dials launched before an agent is free: the only ones that can abandon a live answer.
OVERDIALED: frozenset[str] = frozenset({"predictive"})
DIALABLE_STATUSES: frozenset[str] = frozenset({"new", "recycled", "callback", "claimed"})
# phonenumbers cannot tell mobile from fixed in NANP (FIXED_LINE_OR_MOBILE): treat it as mobile.
MAYBE_MOBILE: frozenset[str] = frozenset({"mobile", "fixed_line_or_mobile", "unknown", "pager"})

LEGAL_START = dt.time(8, 0)  # 47 CFR 64.1200(c)(1)
LEGAL_END = dt.time(21, 0)
STRICT_STATES = frozenset({"FL", "OK"})  # Fla. Stat. 501.616, Okla. Stat. tit. 15 775C.4
STRICT_END = dt.time(20, 0)
STRICT_MAX_PER_DAY = 3
REG_F_MAX_ATTEMPTS = 7  # 12 CFR 1006.14(b)(2)
REG_F_WINDOW = dt.timedelta(days=7)
UK_ABANDON_QUIET = dt.timedelta(hours=72)  # Ofcom persistent misuse policy
ABANDON_WINDOW = dt.timedelta(days=30)  # 47 CFR 64.1200(a)(7): a rolling 30-day window
DAY = dt.timedelta(hours=24)
# The gate's dial kind for a campaign's automatic dials in each dial mode: power dialing
# launches calls before an agent is free, as predictive does, so it can abandon live answers.
DIAL_MODE_KIND: dict[str, DialKind] = {
    "preview": "preview",
    "progressive": "progressive",
    "power": "predictive",
    "predictive": "predictive",
}
# How far ahead the next-time helpers look: a calling window that does not open within this
# (no calling day, every one a holiday, zones whose windows never overlap) never opens.
HORIZON = dt.timedelta(days=400)
TICK = dt.timedelta(microseconds=1)  # the clock's resolution: "just after" an instant


@dataclass(frozen=True)
class LeadFacts:
    phone_e164: str
    phone_type: str
    time_zones: tuple[str, ...]
    state: str | None = None
    status: str = "new"
    attempts: int = 0
    next_dial_at: dt.datetime | None = None
    consent_automated: bool = False


@dataclass(frozen=True)
class CampaignRules:
    kind: str = "telemarketing"
    calling_days: frozenset[int] = frozenset(range(7))  # 0 = Monday
    calling_start: dt.time = LEGAL_START
    calling_end: dt.time = LEGAL_END
    holidays: frozenset[dt.date] = frozenset()
    max_attempts: int = 6
    abandon_target: float = 0.03
    uk_mode: bool = False


@dataclass(frozen=True)
class DialHistory:
    """What the database knows about past dials, as of the moment of the decision."""

    on_dnc: bool = False
    dnc_detail: str = ""
    number_dials: tuple[dt.datetime, ...] = ()  # this campaign's dials to this number
    debt_dials: tuple[dt.datetime, ...] = ()  # dials about this debt (collections)
    last_debt_conversation: dt.datetime | None = None
    last_abandon: dt.datetime | None = None  # last abandoned call to this number
    window_live_answers: int = 0  # the campaign's rolling 30 days
    window_abandons: int = 0


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str | None = None  # stable code
    detail: str = ""  # a sentence for people

    def __bool__(self) -> bool:
        return self.allowed


ALLOWED = Verdict(True)

# Reasons that will not pass with time: the hopper closes such leads instead of retrying.
LASTING_REASONS = frozenset({"dnc", "max_attempts", "unknown_time_zone", "not_dialable_status"})


def _refuse(reason: str, detail: str) -> Verdict:
    return Verdict(False, reason, f"{reason}: {detail}")


def _count_since(instants: Iterable[dt.datetime], since: dt.datetime, now: dt.datetime) -> int:
    return sum(1 for t in instants if since <= t <= now)


def local_window(lead: LeadFacts, campaign: CampaignRules) -> tuple[dt.time, dt.time]:
    """The calling window in the called party's local time: the campaign's, clipped to the law."""
    end = STRICT_END if lead.state in STRICT_STATES else LEGAL_END
    return max(LEGAL_START, campaign.calling_start), min(end, campaign.calling_end)


def may_dial(
    lead: LeadFacts,
    campaign: CampaignRules,
    now: dt.datetime,
    history: DialHistory,
    kind: DialKind = "predictive",
) -> Verdict:
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    if kind not in DIAL_KINDS:
        raise ValueError(f"dial kind {kind!r} is not one of {', '.join(DIAL_KINDS)}")

    if lead.status not in DIALABLE_STATUSES:
        return _refuse("not_dialable_status", f"lead status is {lead.status}")
    if lead.attempts >= campaign.max_attempts:
        return _refuse(
            "max_attempts", f"{lead.attempts} attempts, the campaign allows {campaign.max_attempts}"
        )
    if lead.next_dial_at is not None and lead.next_dial_at > now:
        return _refuse("not_due", f"next dial at {lead.next_dial_at.isoformat()}")
    if history.on_dnc:
        return _refuse("dnc", history.dnc_detail or f"{lead.phone_e164} is on a do-not-call list")
    if kind in AUTOMATED and lead.phone_type in MAYBE_MOBILE and not lead.consent_automated:
        return _refuse(
            "mobile_needs_consent",
            f"{lead.phone_type} number without recorded consent: preview or manual dial only",
        )

    verdict = _calling_hours(lead, campaign, now)
    if not verdict:
        return verdict

    if lead.state in STRICT_STATES:
        recent = _count_since(history.number_dials, now - DAY, now)
        if recent >= STRICT_MAX_PER_DAY:
            return _refuse(
                "state_daily_cap",
                f"{recent} calls in 24 h to a {lead.state} number (at most {STRICT_MAX_PER_DAY})",
            )

    if campaign.kind == "collections":
        if (
            history.last_debt_conversation is not None
            and now - history.last_debt_conversation < REG_F_WINDOW
        ):
            return _refuse(
                "reg_f_after_conversation",
                f"conversation about the debt at {history.last_debt_conversation.isoformat()}",
            )
        recent = _count_since(history.debt_dials, now - REG_F_WINDOW, now)
        if recent >= REG_F_MAX_ATTEMPTS:
            return _refuse(
                "reg_f_weekly_cap", f"{recent} calls about this debt in 7 days (at most 7)"
            )

    if (
        campaign.uk_mode
        and history.last_abandon is not None
        and now - history.last_abandon < UK_ABANDON_QUIET
    ):
        return _refuse(
            "uk_abandon_quiet", f"abandoned call at {history.last_abandon.isoformat()} (72 h)"
        )

    if kind in OVERDIALED:
        rate = capped_abandon_rate(
            history.window_live_answers, history.window_abandons, campaign.abandon_target
        )
        if rate is not None:
            return _refuse(
                "abandon_cap",
                f"30-day abandon rate {rate:.2%} is at or over {campaign.abandon_target:.2%}; "
                "dial in progressive, preview or manual mode",
            )
    return ALLOWED


def capped_abandon_rate(live_answers: int, abandons: int, target: float) -> float | None:
    """The abandon rate when it is at or over the target, else None."""
    if live_answers <= 0:
        return None
    rate = abandons / live_answers
    return rate if rate >= target else None


def _calling_hours(lead: LeadFacts, campaign: CampaignRules, now: dt.datetime) -> Verdict:
    zones = _zones(lead)
    if isinstance(zones, Verdict):
        return zones
    start, end = local_window(lead, campaign)
    for name, zone in zones:
        verdict = _zone_hours(name, zone, campaign.calling_days, campaign.holidays, start, end, now)
        if not verdict:
            return verdict
    return ALLOWED


def _zones(lead: LeadFacts) -> list[tuple[str, ZoneInfo]] | Verdict:
    if not lead.time_zones:
        return _refuse("unknown_time_zone", f"no time zone known for {lead.phone_e164}")
    zones = []
    for name in lead.time_zones:
        try:
            zones.append((name, ZoneInfo(name)))
        except (ZoneInfoNotFoundError, ValueError):
            return _refuse("unknown_time_zone", f"{name!r} is not a time zone")
    return zones


def _zone_hours(
    name: str,
    zone: ZoneInfo,
    days: frozenset[int],
    holidays: frozenset[dt.date],
    start: dt.time,
    end: dt.time,
    now: dt.datetime,
) -> Verdict:
    local = now.astimezone(zone)
    if local.date() in holidays:
        return _refuse("holiday", f"{local.date().isoformat()} is a holiday in {name}")
    if local.weekday() not in days:
        return _refuse("not_a_calling_day", f"{local:%A} in {name}")
    if not start <= local.time() < end:
        return _refuse(
            "outside_calling_hours",
            f"{local:%H:%M} in {name} (allowed {start:%H:%M}-{end:%H:%M})",
        )
    return ALLOWED


# -- When a refused lead will pass: the gate's rules read forwards in time ------------------
# Reasons no waiting lifts: a consent, a list entry or a status changes only by someone's act.
NEVER_PASSING = LASTING_REASONS | {"mobile_needs_consent"}


def next_window_start(
    lead: LeadFacts, campaign: CampaignRules, after: dt.datetime
) -> dt.datetime | None:
    """The earliest instant at or after `after` at which the gate's calling-hours checks let a
    dial through: in every zone of the number a calling day that is no holiday there, within
    the campaign's hours clipped to the law (`local_window`). None when a zone is unknown or
    no such instant comes within HORIZON. (Where a window would open inside a daylight-saving
    gap, it says the first instant the wall clock shows the opening time or later, as the
    gate reads it; openings are 08:00 or later, after every US and EU clock change.)"""
    if after.tzinfo is None:
        raise ValueError("after must carry a time zone")
    start, end = local_window(lead, campaign)
    return _window_start(
        lead.time_zones,
        campaign.calling_days,
        campaign.holidays,
        start,
        end,
        after.astimezone(dt.UTC),
    )


# Explaining a campaign asks for the same zones, window and instant for many groups of leads.
@functools.lru_cache(maxsize=4096)
def _window_start(
    names: tuple[str, ...],
    days: frozenset[int],
    holidays: frozenset[dt.date],
    start: dt.time,
    end: dt.time,
    after: dt.datetime,
) -> dt.datetime | None:
    zones = _zones(LeadFacts("", "", names))
    if isinstance(zones, Verdict):
        return None
    at, limit = after, after + HORIZON
    while at <= limit:
        for name, zone in zones:
            opens = _zone_opens(name, zone, days, holidays, start, end, at, limit)
            if opens is None:
                return None
            if opens != at:
                # Later in this zone: the zones already checked must be checked again.
                at = opens
                break
        else:
            return at
    return None


def _zone_opens(
    name: str,
    zone: ZoneInfo,
    days: frozenset[int],
    holidays: frozenset[dt.date],
    start: dt.time,
    end: dt.time,
    at: dt.datetime,
    limit: dt.datetime,
) -> dt.datetime | None:
    """The earliest instant at or after `at` inside the zone's calling window."""
    if _zone_hours(name, zone, days, holidays, start, end, at):
        return at
    day = at.astimezone(zone).date()
    while True:
        opens = dt.datetime.combine(day, start, zone).astimezone(dt.UTC)
        if opens > limit:
            return None
        if opens > at and _zone_hours(name, zone, days, holidays, start, end, opens):
            return opens
        day += dt.timedelta(days=1)


def _count_clears(
    instants: Sequence[dt.datetime], cap: int, window: dt.timedelta, after: dt.datetime
) -> dt.datetime:
    """The earliest instant at or after `after` at which fewer than `cap` of `instants` lie in
    the `window` before it, counted as the gate counts them (`_count_since`)."""
    exits = sorted({t + window + TICK for t in instants if t + window + TICK > after})
    for at in (after, *exits):
        if _count_since(instants, at - window, at) < cap:
            return at
    raise AssertionError("unreachable: past the last exit no instant is in the window")


@dataclass(frozen=True)
class AnswerLog:
    """A campaign's live answers in the rolling abandon window, as the hopper counts them
    (started after the window's start), each (started_at, abandoned): the 30-day rate falls or
    rises as answers leave the window, ABANDON_WINDOW after they started."""

    answers: tuple[tuple[dt.datetime, bool], ...]
    _times: list[dt.datetime] = field(init=False, repr=False, compare=False)
    # _abandons_from[i]: abandons among the answers from the i-th on, the answers left in the
    # window once the first i (oldest first) have left it.
    _abandons_from: list[int] = field(init=False, repr=False, compare=False)
    _clear_from: dict[float, list[int]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ordered = sorted(self.answers)
        abandons_from = [0] * (len(ordered) + 1)
        for i in range(len(ordered) - 1, -1, -1):
            abandons_from[i] = abandons_from[i + 1] + ordered[i][1]
        object.__setattr__(self, "_times", [t for t, _ in ordered])
        object.__setattr__(self, "_abandons_from", abandons_from)
        object.__setattr__(self, "_clear_from", {})

    def counts(self, at: dt.datetime) -> tuple[int, int]:
        """(live answers, abandons) in the window as of `at`."""
        first = bisect.bisect_right(self._times, at - ABANDON_WINDOW)
        return len(self._times) - first, self._abandons_from[first]

    def clears_at(self, after: dt.datetime, target: float) -> dt.datetime:
        """The earliest instant at or after `after` at which the rate is under `target` (or
        no answer is left in the window), no answer being added."""
        first = bisect.bisect_right(self._times, after - ABANDON_WINDOW)
        clear = self._clears(target)[first]
        if clear == first:
            return after
        # The answers before `clear` are all out of the window once the last of them is.
        return self._times[clear - 1] + ABANDON_WINDOW

    def _clears(self, target: float) -> list[int]:
        """For each number i of answers gone, the first i' >= i at which the rate is under
        `target`, i' being a number that can be gone (answers of one instant leave together)."""
        if target not in self._clear_from:
            times, count = self._times, len(self._times)
            clear = [count] * (count + 1)
            for i in range(count - 1, -1, -1):
                reachable = i == 0 or times[i - 1] != times[i]
                under = capped_abandon_rate(count - i, self._abandons_from[i], target) is None
                clear[i] = i if reachable and under else clear[i + 1]
            self._clear_from[target] = clear
        return self._clear_from[target]


def next_dial_time(
    lead: LeadFacts,
    campaign: CampaignRules,
    now: dt.datetime,
    history: DialHistory,
    kind: DialKind = "predictive",
    answers: AnswerLog | None = None,
) -> dt.datetime | None:
    """The earliest instant at or after `now` at which `may_dial` lets the lead through if no
    dial is placed meanwhile: its recycle delay over, the state's daily cap, Regulation F's
    week and the UK's 72 hours slid past, a calling window open in every zone of the number,
    and for predictive dials the 30-day abandon rate under the target (`answers` lets it fall
    as answers age; without it the rate stays as `history` says). None when it never will:
    a reason no waiting lifts, or no such instant within HORIZON."""
    at = now
    while at <= now + HORIZON:
        window = history
        if answers is not None:
            live, abandons = answers.counts(at)
            window = replace(history, window_live_answers=live, window_abandons=abandons)
        verdict = may_dial(lead, campaign, at, window, kind)
        if verdict.allowed:
            return at
        if verdict.reason in NEVER_PASSING:
            return None
        later = _next_candidate(lead, campaign, at, history, kind, answers)
        if later is None:
            return None
        if later <= at:
            raise AssertionError(f"{verdict.reason} at {at} but no later instant is found")
        at = later
    return None


def not_before(
    lead: LeadFacts, campaign: CampaignRules, at: dt.datetime, history: DialHistory
) -> dt.datetime:
    """The earliest instant at or after `at` at which the lead's own dial history lets a dial
    through: its dial time, the state's daily cap, Regulation F, the UK's 72 hours (calling
    windows and the campaign's abandon rate aside). No later than `next_dial_time`, and far
    cheaper: a bound to skip leads with."""
    if lead.next_dial_at is not None:
        at = max(at, lead.next_dial_at)
    if lead.state in STRICT_STATES:
        at = _count_clears(history.number_dials, STRICT_MAX_PER_DAY, DAY, at)
    if campaign.kind == "collections":
        if history.last_debt_conversation is not None:
            at = max(at, history.last_debt_conversation + REG_F_WINDOW)
        at = _count_clears(history.debt_dials, REG_F_MAX_ATTEMPTS, REG_F_WINDOW, at)
    if campaign.uk_mode and history.last_abandon is not None:
        at = max(at, history.last_abandon + UK_ABANDON_QUIET)
    return at


def _next_candidate(
    lead: LeadFacts,
    campaign: CampaignRules,
    at: dt.datetime,
    history: DialHistory,
    kind: DialKind,
    answers: AnswerLog | None,
) -> dt.datetime | None:
    """The earliest instant at or after `at` at which every rule that passes with time passes
    on its own; the caller asks the gate whether they pass together."""
    opens = next_window_start(lead, campaign, not_before(lead, campaign, at, history))
    if opens is None or kind not in OVERDIALED:
        return opens
    if answers is None:
        capped = capped_abandon_rate(
            history.window_live_answers, history.window_abandons, campaign.abandon_target
        )
        return opens if capped is None else None
    return answers.clears_at(opens, campaign.abandon_target)
