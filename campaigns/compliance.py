"""The compliance gate: the one decision every dial passes through, whatever its kind.

Pure: the caller gathers the facts (lead, campaign rules, dial history, the instant) and acts on
the verdict. Where a regulation counts calendar days in the called party's time zone, the gate
uses the rolling window that contains every such calendar window in every zone, so it is never
less strict than the rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
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
DAY = dt.timedelta(hours=24)


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

    if kind in OVERDIALED and history.window_live_answers > 0:
        rate = history.window_abandons / history.window_live_answers
        if rate >= campaign.abandon_target:
            return _refuse(
                "abandon_cap",
                f"30-day abandon rate {rate:.2%} is at or over {campaign.abandon_target:.2%}; "
                "dial in progressive, preview or manual mode",
            )
    return ALLOWED


def _calling_hours(lead: LeadFacts, campaign: CampaignRules, now: dt.datetime) -> Verdict:
    if not lead.time_zones:
        return _refuse("unknown_time_zone", f"no time zone known for {lead.phone_e164}")
    start, end = local_window(lead, campaign)
    for name in lead.time_zones:
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return _refuse("unknown_time_zone", f"{name!r} is not a time zone")
        local = now.astimezone(zone)
        if local.date() in campaign.holidays:
            return _refuse("holiday", f"{local.date().isoformat()} is a holiday in {name}")
        if local.weekday() not in campaign.calling_days:
            return _refuse("not_a_calling_day", f"{local:%A} in {name}")
        if not start <= local.time() < end:
            return _refuse(
                "outside_calling_hours",
                f"{local:%H:%M} in {name} (allowed {start:%H:%M}-{end:%H:%M})",
            )
    return ALLOWED
