"""Why is nothing dialing? A campaign's leads counted by what keeps each one from being dialed
now, and the instant the next one will be.

The compliance gate is the one judge. Leads that share every fact `may_dial` reads are one
group (the database groups them), the gate is asked once per group, and the counts add up:
`explain` is that pure core, `why` gathers the groups. Before the gate come the hopper's own
reasons for passing a lead by (its list disabled, its import not completed, a retry with no dial
time, a node dialing it now), and after it the campaign's status.

The scan is one grouped read of the campaign's leads. Leads whose dial history can make the
gate refuse (a state's daily cap, Regulation F, the UK's 72 hours) or that are on a
do-not-call list are few: they come from the attempts and the lists, are judged one by one
with their own history, and are left out of the grouped read.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Select,
    String,
    Text,
    and_,
    any_,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    type_coerce,
)

from campaigns import dnc
from campaigns.compliance import (
    ABANDON_WINDOW,
    DAY,
    DIAL_MODE_KIND,
    NEVER_PASSING,
    OVERDIALED,
    REG_F_MAX_ATTEMPTS,
    REG_F_WINDOW,
    STRICT_MAX_PER_DAY,
    STRICT_STATES,
    TICK,
    UK_ABANDON_QUIET,
    AnswerLog,
    CampaignRules,
    DialHistory,
    DialKind,
    LeadFacts,
    capped_abandon_rate,
    local_window,
    may_dial,
    next_dial_time,
    not_before,
)
from campaigns.hopper import campaign_rules
from campaigns.models import (
    ABANDONED,
    LEAD_STATUSES,
    LIVE_ANSWER,
    CallAttempt,
    Campaign,
    DncEntry,
    ImportRun,
    Lead,
    LeadList,
    RegFDebt,
)

# The statuses the hopper claims from; a node holds a claimed or dialing lead.
HOPPER_STATUSES = ("new", "recycled", "callback")
IN_FLIGHT_STATUSES = frozenset({"claimed", "dialing"})
# Recycled leads and callbacks are claimed only once their dial time has come: without one,
# the hopper never meets them.
DATED_STATUSES = frozenset({"recycled", "callback"})
# Written out, not bound: SQLite uses a partial index only for the condition it was made with.
HOPPER_STATUS = Lead.status.in_([literal_column(f"'{status}'") for status in HOPPER_STATUSES])

# Each reason a lead is not dialed now, for people, in the order a manager acts on them.
REASONS: dict[str, str] = {
    "campaign_not_active": "campaign not active",
    "abandon_cap": "30-day abandon rate at the cap (predictive dialing stops)",
    "list_disabled": "list disabled",
    "import_not_completed": "import not completed",
    "outside_calling_hours": "outside calling hours",
    "not_a_calling_day": "not a calling day",
    "holiday": "holiday",
    "not_due": "recycle delay",
    "state_daily_cap": "state daily cap (FL, OK: 3 calls in 24 h)",
    "reg_f_weekly_cap": "Regulation F: 7 calls in 7 days",
    "reg_f_after_conversation": "Regulation F: 7 days after a conversation",
    "uk_abandon_quiet": "UK: 72 h after an abandoned call",
    "mobile_needs_consent": "possible mobile without consent (preview or manual only)",
    "dnc": "on a do-not-call list",
    "max_attempts": "attempt limit reached",
    "unknown_time_zone": "time zone unknown",
    "no_dial_time": "retry without a dial time (the hopper never picks it)",
    "in_flight": "claimed by a node",
    "not_dialable_status": "closed",
}
# Reasons of the hopper, not the gate: the lead waits for a person, not for time.
HOLDS = frozenset({"list_disabled", "import_not_completed", "no_dial_time", "in_flight"})
# Closed leads are part of every campaign: the summary sentence does not list them.
QUIET = frozenset({"not_dialable_status", "in_flight"})


@dataclass(frozen=True)
class LeadGroup:
    """Leads that share every fact the gate reads. `lead` stands for all of them, its dial time
    the earliest among theirs; `hold` is a reason the hopper passes them by before any gate.
    With `earliest`, the lead's dial time to come is only a bound (no later than theirs):
    `earliest()` tells it, asked when the next dialable instant depends on it."""

    lead: LeadFacts
    leads: int
    history: DialHistory = field(default_factory=DialHistory)
    hold: str | None = None
    earliest: Callable[[], dt.datetime | None] | None = None


@dataclass(frozen=True)
class CampaignFacts:
    name: str
    status: str
    dial_mode: str
    rules: CampaignRules
    # The rolling 30-day window as the hopper counts it, and its answers one by one when the
    # rate is at the cap (they say when it falls).
    live_answers: int = 0
    abandons: int = 0
    answers: AnswerLog | None = None

    @property
    def kind(self) -> DialKind:
        return DIAL_MODE_KIND[self.dial_mode]


@dataclass(frozen=True)
class ReasonCount:
    reason: str
    leads: int
    # The earliest instant one of these leads passes the gate (None: not by waiting), and the
    # zone whose calling window opens then, when it is a window that sets it.
    next_at: dt.datetime | None = None
    next_zone: str | None = None
    statuses: Mapping[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        label = REASONS.get(self.reason, self.reason)
        if self.statuses:
            label += " (" + ", ".join(f"{s} {n:,}" for s, n in sorted(self.statuses.items())) + ")"
        return label

    def when(self) -> str:
        """When the next of these leads becomes dialable, for people."""
        if self.next_at is None:
            return ""
        utc = f"{self.next_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
        if self.next_zone is None:
            return utc
        local = self.next_at.astimezone(ZoneInfo(self.next_zone))
        return f"{local:%H:%M} {self.next_zone} = {utc}"


@dataclass(frozen=True)
class Explanation:
    campaign: str
    at: dt.datetime
    campaign_status: str
    dial_mode: str
    dial_kind: str
    leads: int
    by_status: Mapping[str, int]
    dialable: int
    refused: tuple[ReasonCount, ...]  # most leads first
    next_dialable_at: dt.datetime | None
    abandon_rate: float | None = None
    # Predictive dials only: the campaign's 30-day rate at the cap, and when it falls under.
    abandon_target: float | None = None
    abandon_capped_until: dt.datetime | None = None
    abandon_capped: bool = False
    elapsed_s: float | None = None

    def summary(self) -> str:
        """One sentence: what is dialable, what keeps the rest back, when the next one comes."""
        active = self.campaign_status == "active"
        held = [r for r in self.refused if r.reason not in QUIET]
        parts = []
        if not active:
            would = sum(r.leads for r in held if r.reason == "campaign_not_active")
            held = [r for r in held if r.reason != "campaign_not_active"]
            if would:
                parts.append(f"{would:,} {_leads(would)} would be dialable now were it active")
        for reason in held[:4]:
            part = f"{reason.leads:,} {'' if parts else _leads(reason.leads) + ' '}{_verb(reason)}"
            if reason.next_at is not None:
                part += f" (next {_opens(reason)} {reason.when()})"
            parts.append(part)
        if len(held) > 4:
            parts.append(f"{sum(r.leads for r in held[4:]):,} for other reasons")
        if self.abandon_capped and self.abandon_rate is not None:
            parts.append(f"the 30-day abandon rate is {self.abandon_rate:.2%}{self._cap()}")
        if active and self.dialable:
            are = "is" if self.dialable == 1 else "are"
            head = f"{self.dialable:,} {_leads(self.dialable)} {are} dialable now"
            return f"{head}; " + ", ".join(parts) + "." if parts else head + "."
        if active:
            head = "Nothing is dialable now: "
        else:
            head = f"Nothing is dialed: the campaign is {self.campaign_status}; "
        if not parts:
            return head + "every lead is closed."
        sentence = head + ", ".join(parts)
        if self.next_dialable_at is not None:
            at = f"{self.next_dialable_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
            if active:
                sentence += f"; the next lead becomes dialable at {at}"
            else:
                sentence += f"; were it active, the next lead would become dialable at {at}"
        elif active:
            sentence += "; no lead becomes dialable by waiting"
        return sentence + "."

    def _cap(self) -> str:
        if not self.abandon_capped:
            return ""
        until = self.abandon_capped_until
        when = f"until {until.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC" if until else "for now"
        return f", at or over the {self.abandon_target:.2%} target: predictive dials stop {when}"

    def report(self) -> str:
        """A short table and the summary sentence, for a terminal."""
        lines = [
            f"Campaign {self.campaign!r} ({self.dial_mode} dialing, {self.campaign_status}) at "
            f"{self.at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC: {self.leads:,} leads",
            "By status: " + ", ".join(f"{s} {n:,}" for s, n in self.by_status.items()),
        ]
        if self.abandon_rate is not None:
            lines.append(f"30-day abandon rate: {self.abandon_rate:.2%}{self._cap()}")
        lines.append(f"{'leads':>9}  {'not dialable now':<58} next dialable")
        for reason in self.refused:
            lines.append(f"{reason.leads:>9,}  {reason.label:<58} {reason.when()}".rstrip())
        lines.append(f"{self.dialable:>9,}  dialable now")
        lines.append(self.summary())
        if self.elapsed_s is not None:
            lines.append(f"(answered in {self.elapsed_s:.3f} s)")
        return "\n".join(lines)

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "at": self.at.isoformat(),
            "campaign_status": self.campaign_status,
            "dial_mode": self.dial_mode,
            "dial_kind": self.dial_kind,
            "leads": self.leads,
            "by_status": dict(self.by_status),
            "dialable": self.dialable,
            "refused": [
                {
                    "reason": r.reason,
                    "label": r.label,
                    "leads": r.leads,
                    "next_at": r.next_at.isoformat() if r.next_at else None,
                    "next_zone": r.next_zone,
                }
                for r in self.refused
            ],
            "next_dialable_at": self.next_dialable_at.isoformat()
            if self.next_dialable_at
            else None,
            "abandon_rate_30d": self.abandon_rate,
            "abandon_capped": self.abandon_capped,
            "abandon_capped_until": self.abandon_capped_until.isoformat()
            if self.abandon_capped_until
            else None,
            "summary": self.summary(),
            "elapsed_s": None if self.elapsed_s is None else round(self.elapsed_s, 3),
        }


def _verb(reason: ReasonCount) -> str:
    verb = {
        "campaign_not_active": "would be dialable but the campaign is not active",
        "abandon_cap": "wait for the 30-day abandon rate to fall under the target",
        "list_disabled": "are on disabled lists",
        "import_not_completed": "belong to an import that has not completed",
        "outside_calling_hours": "are outside calling hours",
        "not_a_calling_day": "are on a day the campaign does not call",
        "holiday": "are on a holiday",
        "not_due": "wait for their recycle delay",
        "state_daily_cap": "reached their state's daily cap",
        "reg_f_weekly_cap": "reached Regulation F's 7 calls in 7 days",
        "reg_f_after_conversation": "are within 7 days of a conversation (Regulation F)",
        "uk_abandon_quiet": "are within 72 h of an abandoned call",
        "mobile_needs_consent": "are possible mobiles without consent for automated dialing",
        "dnc": "are on do-not-call lists",
        "max_attempts": "reached the attempt limit",
        "unknown_time_zone": "have no known time zone",
        "no_dial_time": "have no dial time (retries the hopper never picks)",
    }.get(reason.reason, f"are refused ({reason.reason})")
    if reason.leads == 1:
        first, _, rest = verb.partition(" ")
        verb = f"{SINGULAR.get(first, first)} {rest}"
    return verb


SINGULAR = {"are": "is", "wait": "waits", "belong": "belongs", "have": "has"}


def _leads(count: int) -> str:
    return "lead" if count == 1 else "leads"


def _opens(reason: ReasonCount) -> str:
    return "window opens" if reason.next_zone is not None else "at"


def explain(
    campaign: CampaignFacts,
    by_status: Mapping[str, int],
    groups: Iterable[LeadGroup],
    now: dt.datetime,
) -> Explanation:
    """Counts by reason and the next dialable instant, asking the gate once per group.
    `by_status` counts every lead; `groups` cover the leads of the hopper's statuses."""
    kind = campaign.kind
    counts: dict[str, int] = defaultdict(int)
    dialable = 0
    # Refused groups by reason, each with the earliest instant its history allows a dial: the
    # next instant needs a look at calling windows, asked only of groups that can still beat
    # the best found for their reason (earliest bound first).
    waiting: dict[str, list[tuple[dt.datetime, int, LeadGroup, DialHistory]]] = defaultdict(list)
    for group in groups:
        if group.hold is not None:
            counts[group.hold] += group.leads
            continue
        history = replace(
            group.history,
            window_live_answers=campaign.live_answers,
            window_abandons=campaign.abandons,
        )
        verdict = may_dial(group.lead, campaign.rules, now, history, kind)
        if verdict.allowed:
            if campaign.status == "active":
                dialable += group.leads
            else:
                counts["campaign_not_active"] += group.leads
            continue
        reason = verdict.reason or "refused"
        counts[reason] += group.leads
        if reason not in NEVER_PASSING:
            bound = not_before(group.lead, campaign.rules, now, history)
            waiting[reason].append((bound, len(waiting[reason]), group, history))
    nexts: dict[str, tuple[dt.datetime, str | None]] = {}
    for reason, candidates in waiting.items():
        best: dt.datetime | None = None
        for bound, _, group, history in sorted(candidates, key=lambda c: c[:2]):
            if best is not None and bound >= best:
                break
            lead = group.lead
            if group.earliest is not None:
                lead = replace(lead, next_dial_at=group.earliest())
            at = next_dial_time(lead, campaign.rules, now, history, kind, campaign.answers)
            if at is not None and (best is None or at < best):
                best = at
                nexts[reason] = (at, _opening_zone(lead, campaign.rules, at))
    open_statuses = {*HOPPER_STATUSES, *IN_FLIGHT_STATUSES}
    closed = {s: n for s, n in by_status.items() if s not in open_statuses}
    if closed:
        counts["not_dialable_status"] += sum(closed.values())
    in_flight = sum(n for s, n in by_status.items() if s in IN_FLIGHT_STATUSES)
    if in_flight:
        counts["in_flight"] += in_flight
    refused = tuple(
        sorted(
            (
                ReasonCount(
                    reason,
                    n,
                    *nexts.get(reason, (None, None)),
                    statuses=closed if reason == "not_dialable_status" else {},
                )
                for reason, n in counts.items()
                if n
            ),
            key=lambda r: (r.reason in QUIET, -r.leads, r.reason),
        )
    )
    waiting = [r.next_at for r in refused if r.next_at is not None]
    live, abandons = campaign.live_answers, campaign.abandons
    capped = kind in OVERDIALED and (
        capped_abandon_rate(live, abandons, campaign.rules.abandon_target) is not None
    )
    return Explanation(
        campaign=campaign.name,
        at=now,
        campaign_status=campaign.status,
        dial_mode=campaign.dial_mode,
        dial_kind=kind,
        leads=sum(by_status.values()),
        by_status=dict(sorted(by_status.items())),
        dialable=dialable,
        refused=refused,
        next_dialable_at=min(waiting) if waiting else None,
        abandon_rate=abandons / live if live else None,
        abandon_target=campaign.rules.abandon_target,
        abandon_capped=capped,
        abandon_capped_until=campaign.answers.clears_at(now, campaign.rules.abandon_target)
        if capped and campaign.answers
        else None,
    )


def _opening_zone(lead: LeadFacts, rules: CampaignRules, at: dt.datetime) -> str | None:
    """The zone of the number whose calling window opens at `at`, if one does."""
    start, _ = local_window(lead, rules)
    for name in lead.time_zones:
        local = at.astimezone(ZoneInfo(name))
        if local.time() == start:
            return name
    return None


# -- The shell: the groups from the database ------------------------------------------------


class CampaignNotFound(LookupError):
    pass


@dataclass
class _Special:
    """A lead judged on its own, with the dial history that can make the gate refuse it."""

    id: int
    facts: LeadFacts
    zones: str  # as the scan groups them
    account_ref: str | None
    on_dnc: bool = False
    number_dials: tuple[dt.datetime, ...] = ()
    debt_dials: tuple[dt.datetime, ...] = ()
    last_debt_conversation: dt.datetime | None = None
    last_abandon: dt.datetime | None = None

    def group(self) -> LeadGroup:
        undated = self.facts.status in DATED_STATUSES and self.facts.next_dial_at is None
        return LeadGroup(
            self.facts,
            1,
            DialHistory(
                on_dnc=self.on_dnc,
                number_dials=self.number_dials,
                debt_dials=self.debt_dials,
                last_debt_conversation=self.last_debt_conversation,
                last_abandon=self.last_abandon,
            ),
            "no_dial_time" if undated else None,
        )

    def row(self) -> _LeadRow:
        facts = self.facts
        return _LeadRow(
            self.id,
            facts.status,
            self.zones,
            facts.phone_type,
            facts.consent_automated,
            facts.state,
            facts.attempts,
            facts.next_dial_at,
        )


class _LeadRow(NamedTuple):
    """One lead as `_tally` counts it."""

    id: int
    status: str
    zones: str
    phone_type: str
    consent_automated: bool
    state: str | None
    attempts: int
    next_dial_at: dt.datetime | None


class _TalkedCount(NamedTuple):
    """Leads kept back by a conversation about their debt within the week, alike in every other
    fact the gate reads, counted as `_Counted` counts them, with what their stand-ins need: the
    earliest conversation of those due and of those without a dial time, and for those not
    due yet the earliest instant both their dial time and their quiet week are past, with the
    earliest conversation among them."""

    status: str
    zones: str
    phone_type: str
    consent_automated: bool
    state: str | None
    attempts: int
    leads: int
    undated: int
    later: int
    next_dial_at: dt.datetime | None
    due_talked_at: dt.datetime | None
    undated_talked_at: dt.datetime | None
    later_free_at: dt.datetime | None
    later_talked_at: dt.datetime | None

    def counted(self) -> _Counted:
        return _Counted(*self[:6], self.leads, 0, 0, self.undated, self.later, self.next_dial_at)

    def groups(self, now: dt.datetime) -> list[LeadGroup]:
        """Stand-ins that share their leads' verdict now and pass the gate no later than the
        first of them: the gate's wait only grows with the conversation and the dial time."""
        lead = _stand_in(self)
        groups = []

        def add(leads: int, dial_at: dt.datetime | None, talked_at: Any, hold: str | None) -> None:
            history = DialHistory(last_debt_conversation=talked_at)
            groups.append(LeadGroup(replace(lead, next_dial_at=dial_at), leads, history, hold))

        if self.undated:
            hold = "no_dial_time" if self.status in DATED_STATUSES else None
            add(self.undated, None, self.undated_talked_at, hold)
        if self.later:
            add(self.later, self.later_free_at, self.later_talked_at, None)
        due = self.leads - self.undated - self.later
        if due:
            add(due, now, self.due_talked_at, None)
        return groups


class _Counted(NamedTuple):
    """Leads of one set of gate facts, counted: those the hopper passes by (disabled list,
    unfinished import), those with no dial time, those not due yet (and the earliest dial
    time among them); the rest are due."""

    status: str
    zones: str
    phone_type: str
    consent_automated: bool
    state: str | None
    attempts: int
    leads: int
    list_disabled: int
    import_unfinished: int
    undated: int
    later: int
    next_dial_at: dt.datetime | None
    on_dnc: bool = False
    # When `next_dial_at` is only a bound: the exact one.
    earliest: Callable[[], dt.datetime | None] | None = None


@dataclass(frozen=True)
class _Scope:
    """What every statement of one explanation shares."""

    campaign_id: int
    now: dt.datetime
    sqlite: bool
    disabled_lists: tuple[int, ...]
    unfinished_imports: tuple[int, ...]

    def zones(self) -> ColumnElement[str]:
        # The JSON list as text, as it is stored: decoded once per group, not per lead. SQLite
        # groups the column itself, in the order of the index that serves the scan; PostgreSQL
        # cannot compare json values, only their text (the expression its statistics know,
        # migration 0007_why).
        if self.sqlite:
            return type_coerce(Lead.time_zones, String)
        return cast(Lead.time_zones, Text)

    def list_disabled(self) -> ColumnElement[bool]:
        return Lead.list_id.in_(self.disabled_lists) if self.disabled_lists else false()

    def import_unfinished(self) -> ColumnElement[bool]:
        if not self.unfinished_imports:
            return false()
        # False, not NULL, for a lead of no import: NOT NULL would leave it out too.
        return and_(Lead.import_id.is_not(None), Lead.import_id.in_(self.unfinished_imports))

    def hopper_leads(self) -> list[ColumnElement[bool]]:
        """The leads the hopper may claim: its statuses, lists enabled, imports completed."""
        return [
            Lead.campaign_id == self.campaign_id,
            HOPPER_STATUS,
            not_(self.list_disabled()),
            not_(self.import_unfinished()),
        ]

    def facts(self) -> tuple[ColumnElement[Any], ...]:
        """A lead's id and the facts the gate reads, its zones as the scan groups them."""
        return (
            Lead.id,
            Lead.status,
            self.zones().label("zones"),
            Lead.phone_type,
            Lead.consent_automated,
            Lead.state,
            Lead.attempts,
            Lead.next_dial_at,
            Lead.phone_e164,
            Lead.account_ref,
        )

    def listed(self) -> Select[Any]:
        """Numbers on a do-not-call list in force for the campaign."""
        return select(DncEntry.phone_e164).where(dnc.in_force(self.campaign_id, self.now))

    def id_in(self, ids: Sequence[int]) -> ColumnElement[bool]:
        return self.among(Lead.id, ids, Integer)

    def among(
        self, column: ColumnElement[Any], values: Sequence[Any], of: type[Integer] | type[String]
    ) -> ColumnElement[bool]:
        """`column` among `values`, bound as one parameter whatever their number (SQLite
        allows 32,766 parameters to a statement)."""
        if not values:
            return false()
        if self.sqlite:
            listed = select(literal_column("value")).select_from(
                func.json_each(json.dumps(list(values)))
            )
            return column.in_(listed)
        return column == any_(cast(list(values), ARRAY(of)))


def _special(row: Any) -> _Special:
    facts = LeadFacts(
        phone_e164=row.phone_e164,
        phone_type=row.phone_type,
        time_zones=zones_of(row.zones),
        state=row.state,
        status=row.status,
        attempts=row.attempts,
        next_dial_at=row.next_dial_at,
        consent_automated=row.consent_automated,
    )
    return _Special(row.id, facts, row.zones, row.account_ref)


def why(engine: Engine, campaign_name: str, now: dt.datetime) -> Explanation:
    """The campaign's leads as the gate and the hopper see them at `now`, read in one
    transaction (one snapshot)."""
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if not sqlite:
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            return _why(connection, campaign_name, now, sqlite)


def _why(connection: Connection, campaign_name: str, now: dt.datetime, sqlite: bool) -> Explanation:
    campaign = connection.execute(select(Campaign).where(Campaign.name == campaign_name)).first()
    if campaign is None:
        raise CampaignNotFound(f"no campaign named {campaign_name!r}")
    rules = campaign_rules(campaign)
    scope = _Scope(
        campaign.id,
        now,
        sqlite,
        tuple(
            connection.scalars(
                select(LeadList.id).where(
                    LeadList.campaign_id == campaign.id, LeadList.active.is_(False)
                )
            )
        ),
        tuple(
            connection.scalars(
                select(ImportRun.id).where(
                    ImportRun.campaign_id == campaign.id, ImportRun.status != "completed"
                )
            )
        ),
    )
    facts = _campaign_facts(connection, campaign, rules, now)
    specials = _specials(connection, scope, rules)
    collections = rules.kind == "collections"
    talked = _talked(connection, scope, sorted(specials)) if collections else []
    groups = [special.group() for special in specials.values()]
    by_status: dict[str, int] = defaultdict(int)
    for special in specials.values():
        by_status[special.facts.status] += 1
    for counted_talk in talked:
        groups += counted_talk.groups(now)
        by_status[counted_talk.status] += counted_talk.leads
    alone = not_(scope.id_in(sorted(specials)))
    talked_counts = [one.counted() for one in talked]
    # Where the leads counted apart held a group's earliest dial time, the next one is read
    # lead by lead in dial-time order: a look-up for each of the few leads read.
    counted_apart = (
        set(specials),
        or_(
            select(DncEntry.id)
            .where(DncEntry.phone_e164 == Lead.phone_e164, dnc.in_force(campaign.id, now))
            .exists(),
            _talked_about(scope) if collections else false(),
        ),
    )
    # Leads on a do-not-call list are grouped apart (the lists are checked at dial time, so a
    # lead may be on one and still new). PostgreSQL flags them in its one scan (a hashed
    # look-up per lead). SQLite finds them by number; its scan reads the index alone, so it
    # counts them in and takes them out after, as it does the leads judged one by one. Both
    # take out the leads of debts talked about after their scan.
    listed = and_(*scope.hopper_leads(), Lead.phone_e164.in_(scope.listed()))
    if sqlite:
        on_dnc = list(_scan(connection, scope, [listed, alone], True))
        rows = (special.row() for special in specials.values())
        apart = [*_tally(rows, now), *talked_counts, *on_dnc]
        scanned = list(_scan(connection, scope, [HOPPER_STATUS]))
        counted = [*on_dnc, *_without(connection, scope, scanned, apart, counted_apart)]
    else:
        scanned = list(_scan(connection, scope, [alone], listed))
        unlisted = [group for group in scanned if not group.on_dnc]
        counted = [
            *(group for group in scanned if group.on_dnc),
            *_without(connection, scope, unlisted, talked_counts, counted_apart),
        ]
    for group in counted:
        by_status[group.status] += group.leads
        if group.status in HOPPER_STATUSES:
            groups += _groups(group, now, DialHistory(on_dnc=group.on_dnc))
    if sqlite:
        # The scan reads an index of the hopper's statuses only: the others are counted apart.
        others = [s for s in LEAD_STATUSES if s not in HOPPER_STATUSES]
        for status, count in connection.execute(
            select(Lead.status, func.count())
            .where(Lead.campaign_id == campaign.id, Lead.status.in_(others))
            .group_by(Lead.status)
        ):
            by_status[status] += count
    return explain(facts, by_status, groups, now)


def _campaign_facts(
    connection: Connection, campaign: Any, rules: CampaignRules, now: dt.datetime
) -> CampaignFacts:
    """The campaign and, for predictive dials, its 30-day abandon window counted as the hopper
    counts it (`ix_call_attempts_campaign_started` holds every column the count reads)."""
    facts = CampaignFacts(campaign.name, campaign.status, campaign.dial_mode, rules)
    if facts.kind not in OVERDIALED:
        return facts
    in_window = (
        CallAttempt.campaign_id == campaign.id,
        CallAttempt.started_at > now - ABANDON_WINDOW,
    )
    live, abandons = connection.execute(
        select(func.count(), func.count().filter(ABANDONED)).where(*in_window, LIVE_ANSWER)
    ).one()
    facts = replace(facts, live_answers=live, abandons=abandons)
    if capped_abandon_rate(live, abandons, rules.abandon_target) is None:
        return facts
    # At the cap: when it lifts depends on each answer's age.
    answers = connection.execute(
        select(CallAttempt.started_at, ABANDONED).where(*in_window, LIVE_ANSWER)
    ).all()
    return replace(facts, answers=AnswerLog(tuple((at, bool(a)) for at, a in answers)))


def _specials(connection: Connection, scope: _Scope, rules: CampaignRules) -> dict[int, _Special]:
    """The leads judged one by one, by id: those with a dial history that can make the gate
    refuse now or later (fewer dials than a cap cannot), with their do-not-call flag. (Leads
    whose only such history is a conversation about their debt are many: `_talked`.)"""
    now = scope.now
    found: dict[int, _Special] = {}

    def lead(row: Any) -> _Special:
        if row.id not in found:
            found[row.id] = _special(row)
        return found[row.id]

    # A state's daily cap: this campaign's dials to the number in the last 24 hours.
    last_day = (
        CallAttempt.campaign_id == scope.campaign_id,
        CallAttempt.started_at >= now - DAY,
        CallAttempt.started_at <= now,
    )
    busy = (
        select(CallAttempt.lead_id)
        .where(*last_day)
        .group_by(CallAttempt.lead_id)
        .having(func.count() >= STRICT_MAX_PER_DAY)
        .subquery()
    )
    dials: dict[int, list[dt.datetime]] = defaultdict(list)
    for lead_id, started in connection.execute(
        select(CallAttempt.lead_id, CallAttempt.started_at)
        .join(busy, busy.c.lead_id == CallAttempt.lead_id)
        .join(Lead, Lead.id == CallAttempt.lead_id)
        .where(*last_day, Lead.state.in_(sorted(STRICT_STATES)))
    ):
        dials[lead_id].append(started)
    if dials:
        for row in connection.execute(
            select(*scope.facts()).where(*scope.hopper_leads(), scope.id_in(sorted(dials)))
        ):
            lead(row).number_dials = tuple(dials[row.id])

    if rules.kind == "collections":
        _capped_debts(connection, scope, lead)
    if rules.uk_mode:
        _abandons(connection, scope, lead)
    if found and rules.kind == "collections":
        _conversations(connection, scope, found.values())
    if found:
        for row in connection.execute(
            select(Lead.id).where(scope.id_in(sorted(found)), Lead.phone_e164.in_(scope.listed()))
        ):
            found[row.id].on_dnc = True
    return found


def _recent_attempts(since: dt.datetime) -> list[ColumnElement[bool]]:
    """Attempts of every campaign since `since`, read through the campaign-and-time index:
    Regulation F and the UK rule count dials to a debt or a number whatever the campaign."""
    return [
        CallAttempt.campaign_id.in_(select(Campaign.id)),
        CallAttempt.started_at >= since,
    ]


def _capped_debts(connection: Connection, scope: _Scope, lead: Any) -> None:
    """Regulation F's cap: the leads of debts (the account, or the number when the lead has
    none) called 7 times in the last 7 days, whatever the campaign, with those calls."""
    now = scope.now
    week_ago = now - REG_F_WINDOW
    debt = func.coalesce(CallAttempt.account_ref, CallAttempt.phone_e164)
    # A debt capped now has its seventh latest call within the week (a later call only moves
    # it forward); its calls, from `ix_call_attempts_debt_key`, say whether it is capped now
    # and when the cap lifts.
    candidates = connection.scalars(
        select(RegFDebt.debt).where(RegFDebt.seventh_dial_at >= week_ago)
    ).all()
    calls: dict[str, list[dt.datetime]] = defaultdict(list)
    for key, started in connection.execute(
        select(debt, CallAttempt.started_at).where(
            scope.among(debt, candidates, String),
            CallAttempt.started_at >= week_ago,
            CallAttempt.started_at <= now,
        )
    ):
        calls[key].append(started)
    capped = {key: tuple(dials) for key, dials in calls.items() if len(dials) >= REG_F_MAX_ATTEMPTS}
    if not capped:
        return
    keys = sorted(capped)
    for among in (
        scope.among(Lead.account_ref, keys, String),
        and_(Lead.account_ref.is_(None), scope.among(Lead.phone_e164, keys, String)),
    ):
        for row in connection.execute(select(*scope.facts()).where(*scope.hopper_leads(), among)):
            lead(row).debt_dials = capped[row.account_ref or row.phone_e164]


def _conversations(connection: Connection, scope: _Scope, specials: Iterable[_Special]) -> None:
    """The last conversation about each special lead's debt, when it was within the week."""
    by_debt: dict[str, list[_Special]] = defaultdict(list)
    for special in specials:
        by_debt[special.account_ref or special.facts.phone_e164].append(special)
    for key, talked_at in connection.execute(
        select(RegFDebt.debt, RegFDebt.last_conversation_at).where(
            scope.among(RegFDebt.debt, sorted(by_debt), String),
            RegFDebt.last_conversation_at > scope.now - REG_F_WINDOW,
        )
    ):
        for special in by_debt[key]:
            special.last_debt_conversation = talked_at


def _talks(scope: _Scope) -> tuple[Any, tuple[ColumnElement[bool], ColumnElement[bool]]]:
    """The debts talked about within the week, and how a lead is of one: by its account, or
    by its number when it has none. (Joined from the debts: there may be tens of thousands.)"""
    talks = (
        select(RegFDebt.debt, RegFDebt.last_conversation_at.label("talked_at"))
        .where(RegFDebt.last_conversation_at > scope.now - REG_F_WINDOW)
        .subquery("talks")
    )
    by_account = talks.c.debt == Lead.account_ref
    by_number = and_(Lead.account_ref.is_(None), talks.c.debt == Lead.phone_e164)
    return talks, (by_account, by_number)


def _talked_about(scope: _Scope) -> ColumnElement[bool]:
    """The lead's debt was talked about within the week (a look-up per lead)."""
    return (
        select(RegFDebt.debt)
        .where(
            RegFDebt.debt == func.coalesce(Lead.account_ref, Lead.phone_e164),
            RegFDebt.last_conversation_at > scope.now - REG_F_WINDOW,
        )
        .exists()
    )


def _talked(connection: Connection, scope: _Scope, apart: Sequence[int]) -> list[_TalkedCount]:
    """The leads the hopper may claim whose debt was talked about within the week, counted by
    the facts the gate reads; but for those in `apart` (judged one by one) and those on a
    do-not-call list, counted with the others there: the gate names the list (or a dial time
    to come) before the debt, and they never pass."""
    now = scope.now
    talks, joins = _talks(scope)
    talked_at = talks.c.talked_at
    later = Lead.next_dial_at > now
    week_after = _week_after(talked_at, scope.sqlite)
    free = case((Lead.next_dial_at > week_after, Lead.next_dial_at), else_=week_after)
    keys = (
        Lead.status,
        scope.zones().label("zones"),
        Lead.phone_type,
        Lead.consent_automated,
        Lead.state,
        Lead.attempts,
    )
    counted: list[_TalkedCount] = []
    for on in joins:
        query = (
            select(
                *keys,
                func.count(),
                func.count().filter(Lead.next_dial_at.is_(None)),
                func.count().filter(later),
                _instant(func.min(case((later, Lead.next_dial_at)))),
                _instant(func.min(case((Lead.next_dial_at <= now, talked_at)))),
                _instant(func.min(case((Lead.next_dial_at.is_(None), talked_at)))),
                _instant(func.min(case((later, free)))),
                _instant(func.min(case((later, talked_at)))),
            )
            .select_from(talks)
            .join(Lead, on)
            .where(
                *scope.hopper_leads(),
                not_(scope.id_in(apart)),
                not_(Lead.phone_e164.in_(scope.listed())),
            )
            .group_by(*keys)
        )
        counted += [_TalkedCount(*row) for row in connection.execute(query)]
    return counted


def _week_after(instant: Any, sqlite: bool) -> ColumnElement[Any]:
    """`instant` and Regulation F's week. SQLite keeps instants as text: the date and time
    moved, the fraction of a second kept as written (its own arithmetic keeps milliseconds)."""
    seconds = int(REG_F_WINDOW.total_seconds())
    if sqlite:
        moved = func.strftime("%Y-%m-%d %H:%M:%S", instant, f"+{seconds} seconds")
        return moved.op("||")(func.substr(instant, 20))
    return instant + literal_column(f"interval '{seconds} seconds'")


def _instant(expression: ColumnElement[Any]) -> ColumnElement[dt.datetime]:
    return type_coerce(expression, CallAttempt.started_at.type)


def _abandons(connection: Connection, scope: _Scope, lead: Any) -> None:
    """UK mode: numbers with an abandoned call in the last 72 hours, whatever the campaign."""
    since = scope.now - UK_ABANDON_QUIET
    latest = (
        select(CallAttempt.phone_e164, func.max(CallAttempt.started_at).label("at"))
        .where(*_recent_attempts(since), ABANDONED, CallAttempt.started_at > since)
        .group_by(CallAttempt.phone_e164)
        .subquery()
    )
    for row in connection.execute(
        select(*scope.facts(), latest.c.at).join(
            latest, and_(latest.c.phone_e164 == Lead.phone_e164, *scope.hopper_leads())
        )
    ):
        lead(row).last_abandon = row.at


def _scan(
    connection: Connection,
    scope: _Scope,
    where: list[ColumnElement[bool]],
    on_dnc: ColumnElement[bool] | bool = False,
) -> Iterable[_Counted]:
    """The campaign's leads that are `where`, counted by the facts the gate reads (and by
    `on_dnc`, if given), in one scan. SQLite reads the hopper's statuses from `ix_leads_why`
    alone, in its order (no sort); PostgreSQL hashes the groups (its statistics, migration
    0007_why, say how few they are)."""
    keys: tuple[ColumnElement[Any], ...] = (
        Lead.status,
        scope.zones().label("zones"),
        Lead.phone_type,
        Lead.consent_automated,
        Lead.state,
        Lead.attempts,
    )
    # The flag: a group key when the scan tells, the same for every group when the caller does.
    flag = () if isinstance(on_dnc, bool) else (on_dnc.label("on_dnc"),)
    # The hopper passes by leads of disabled lists and unfinished imports: counted as such,
    # the others by their dial time. (No condition at all when there are none: the scan
    # evaluates every one for each lead.)
    list_disabled, import_unfinished = scope.list_disabled(), scope.import_unfinished()
    held: list[ColumnElement[bool]] = []
    if scope.disabled_lists:
        held.append(list_disabled)
    if scope.unfinished_imports:
        held.append(import_unfinished)
    judged = [not_(or_(*held))] if held else []
    later = and_(*judged, Lead.next_dial_at > scope.now)
    query = (
        select(
            *keys,
            func.count().label("leads"),
            func.count().filter(list_disabled) if scope.disabled_lists else literal(0),
            func.count().filter(and_(not_(list_disabled), import_unfinished))
            if scope.unfinished_imports
            else literal(0),
            func.count().filter(and_(*judged, Lead.next_dial_at.is_(None))),
            func.count().filter(later),
            func.min(case((later, Lead.next_dial_at))),
            *flag,
        )
        .where(Lead.campaign_id == scope.campaign_id, *where)
        .group_by(*keys, *flag)
    )
    for row in connection.execute(query):
        yield _Counted(*row) if flag else _Counted(*row, on_dnc=bool(on_dnc))


def _tally(rows: Iterable[_LeadRow], now: dt.datetime) -> Iterable[_Counted]:
    """Leads the hopper may claim, read one by one, counted as `_scan` counts them."""
    tallies: dict[tuple[Any, ...], list[Any]] = {}
    for row in rows:
        tally = tallies.setdefault(_key(row), [0, 0, 0, None])
        tally[0] += 1
        if row.next_dial_at is None:
            tally[1] += 1
        elif row.next_dial_at > now:
            tally[2] += 1
            if tally[3] is None or row.next_dial_at < tally[3]:
                tally[3] = row.next_dial_at
    for key, (leads, undated, later, earliest) in tallies.items():
        yield _Counted(*key, leads, 0, 0, undated, later, earliest)


def _key(row: _LeadRow | _Counted) -> tuple[Any, ...]:
    return (row.status, row.zones, row.phone_type, row.consent_automated, row.state, row.attempts)


def _without(
    connection: Connection,
    scope: _Scope,
    scanned: list[_Counted],
    apart: list[_Counted],
    counted_apart: tuple[set[int], ColumnElement[bool]],
) -> list[_Counted]:
    """The scan's counts less the leads counted apart (which the hopper may all claim). Where
    these held a group's earliest dial time, it stays as a bound, and the group's leads are read
    from `ix_leads_why` in dial-time order (its last column) up to the first one not apart only
    when the explanation needs it: `counted_apart` names them, by id and by a condition."""
    by_key = {_key(counted): counted for counted in scanned}
    for out in apart:
        key = _key(out)
        total = by_key[key]
        later = total.later - out.later
        resolve = total.earliest
        if later and out.later and out.next_dial_at == total.next_dial_at:
            resolve = functools.partial(_earliest, connection, scope, key, *counted_apart)
        by_key[key] = total._replace(
            leads=total.leads - out.leads,
            undated=total.undated - out.undated,
            later=later,
            next_dial_at=total.next_dial_at if later else None,
            earliest=resolve if later else None,
        )
    return list(by_key.values())


def _earliest(
    connection: Connection,
    scope: _Scope,
    key: tuple[Any, ...],
    ids: set[int],
    apart: ColumnElement[bool],
) -> dt.datetime | None:
    """The earliest dial time to come among the group's leads neither in `ids` nor `apart`."""
    status, zones, phone_type, consent, state, attempts = key
    after, batch = scope.now, 16
    while True:
        rows = connection.execute(
            select(Lead.id, Lead.next_dial_at)
            .where(
                *scope.hopper_leads(),
                Lead.status == status,
                scope.zones() == zones,
                Lead.phone_type == phone_type,
                Lead.consent_automated == consent,
                Lead.state.is_(None) if state is None else Lead.state == state,
                Lead.attempts == attempts,
                Lead.next_dial_at > after,
                not_(apart),
            )
            .order_by(Lead.next_dial_at)
            .limit(batch)
        ).all()
        for lead_id, next_dial_at in rows:
            if lead_id not in ids:
                return next_dial_at
        if len(rows) < batch:
            return None
        # Leads of one dial time are all in this batch or all after it: step back to it.
        after = rows[-1].next_dial_at - TICK
        batch *= 2


def _stand_in(group: _Counted | _TalkedCount) -> LeadFacts:
    """The lead that stands for a group: the facts they share, no dial time yet."""
    return LeadFacts(
        phone_e164="",
        phone_type=group.phone_type,
        time_zones=zones_of(group.zones),
        state=group.state,
        status=group.status,
        attempts=group.attempts,
        consent_automated=group.consent_automated,
    )


def _groups(counted: _Counted, now: dt.datetime, history: DialHistory) -> list[LeadGroup]:
    lead = _stand_in(counted)
    groups = []
    if counted.list_disabled:
        groups.append(LeadGroup(lead, counted.list_disabled, hold="list_disabled"))
    if counted.import_unfinished:
        groups.append(LeadGroup(lead, counted.import_unfinished, hold="import_not_completed"))
    if counted.undated:
        hold = "no_dial_time" if counted.status in DATED_STATUSES else None
        groups.append(LeadGroup(lead, counted.undated, history, hold))
    if counted.later:
        later = replace(lead, next_dial_at=counted.next_dial_at)
        groups.append(LeadGroup(later, counted.later, history, earliest=counted.earliest))
    due = (
        counted.leads
        - counted.list_disabled
        - counted.import_unfinished
        - counted.undated
        - counted.later
    )
    if due:
        # A dial time passed stands for all of them: the gate only compares it with now.
        groups.append(LeadGroup(replace(lead, next_dial_at=now), due, history))
    return groups


@functools.lru_cache(maxsize=1024)
def zones_of(text: str) -> tuple[str, ...]:
    """A lead's time zones from their JSON text, as scans group them."""
    return tuple(json.loads(text))
