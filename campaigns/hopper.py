"""The hopper: which leads a node dials next, each one passed through the compliance gate and
claimed atomically, so no lead is ever handed to two callers.

PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED` lets nodes claim side by side. SQLite: one short
`BEGIN IMMEDIATE` transaction per claim serialises claimers.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    CompoundSelect,
    Connection,
    Engine,
    Integer,
    Row,
    Select,
    String,
    Update,
    and_,
    any_,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from campaigns import dnc
from campaigns.compliance import (
    ABANDON_WINDOW,
    AUTOMATED,
    LASTING_REASONS,
    MAYBE_MOBILE,
    REG_F_WINDOW,
    UK_ABANDON_QUIET,
    CampaignRules,
    DialHistory,
    DialKind,
    LeadFacts,
    Verdict,
    may_dial,
    next_window_start,
)
from campaigns.models import (
    ABANDONED,
    LIVE_ANSWER,
    CallAttempt,
    Callback,
    Campaign,
    CampaignAnswerHour,
    DncEntry,
    GateRefusal,
    ImportRun,
    Lead,
    LeadList,
    utcnow,
)
from campaigns.rollups import HOUR, floor_hour

DAY = dt.timedelta(hours=24)
# Leads refused for a passing reason (hours, daily caps) are looked at again after this.
RETRY_AFTER = {
    "outside_calling_hours": dt.timedelta(minutes=15),
    "holiday": dt.timedelta(hours=1),
    "not_a_calling_day": dt.timedelta(hours=1),
    "state_daily_cap": dt.timedelta(hours=1),
    "reg_f_weekly_cap": dt.timedelta(hours=6),
    "reg_f_after_conversation": dt.timedelta(hours=6),
    "uk_abandon_quiet": dt.timedelta(hours=6),
}
CLOSED_STATUS = {"dnc": "dnc", "unknown_time_zone": "invalid"}


class Candidate(NamedTuple):
    """A lead as the claim statements return it. Plain tuples, not ORM objects nor SQLAlchemy
    rows: a claim reads a few hundred fields, and a row's named access costs ten times more."""

    id: int
    campaign_id: int
    phone_e164: str
    phone_type: str
    time_zones: str
    state: str | None
    status: str
    attempts: int
    next_dial_at: dt.datetime | None
    consent_automated: bool
    first_name: str | None
    last_name: str | None
    account_ref: str | None
    on_dnc: bool


def _candidate_columns(status: ColumnElement[str]) -> tuple[ColumnElement[Any], ...]:
    """The columns of `Candidate`, with the lead's status before the claim as `status`."""
    # Checked at dial time, in the same statement: a number listed a moment ago is not dialed.
    on_dnc = exists().where(DncEntry.phone_e164 == Lead.phone_e164, dnc.in_force(CAMPAIGN_ID, NOW))
    return (
        Lead.id,
        Lead.campaign_id,
        Lead.phone_e164,
        Lead.phone_type,
        # JSON read as text and decoded once per distinct value (a few zone sets serve millions
        # of leads): decoding each row's JSON cost the claim twice as much CPU as the gate.
        cast(Lead.time_zones, String).label("time_zones"),
        Lead.state,
        status.label("status"),
        Lead.attempts,
        Lead.next_dial_at,
        Lead.consent_automated,
        Lead.first_name,
        Lead.last_name,
        Lead.account_ref,
        on_dnc.label("on_dnc"),
    )


LEAD_FIELDS = len(Candidate._fields)


@dataclass(frozen=True)
class ClaimedLead:
    id: int
    campaign_id: int
    phone_e164: str
    first_name: str | None
    last_name: str | None
    account_ref: str | None
    attempts: int
    is_callback: bool
    # The facts the gate judged, for the node's second look right before the INVITE.
    facts: LeadFacts | None = None


@functools.lru_cache(maxsize=1024)
def _decoded(text: str) -> tuple[Any, ...]:
    return tuple(json.loads(text))


def _json(value: str | Sequence[Any]) -> tuple[Any, ...]:
    """A JSON list column, as the claim statements read it (text) or as the ORM does."""
    return _decoded(value) if isinstance(value, str) else tuple(value)


def campaign_rules(campaign: Campaign | Row[Any]) -> CampaignRules:
    return CampaignRules(
        kind=campaign.kind,
        calling_days=frozenset(int(d) for d in _json(campaign.calling_days)),
        calling_start=dt.time.fromisoformat(campaign.calling_start),
        calling_end=dt.time.fromisoformat(campaign.calling_end),
        holidays=frozenset(dt.date.fromisoformat(d) for d in _json(campaign.holidays)),
        max_attempts=campaign.max_attempts,
        abandon_target=campaign.abandon_target,
        uk_mode=campaign.uk_mode,
    )


def lead_facts(lead: Lead | Candidate) -> LeadFacts:
    return LeadFacts(
        phone_e164=lead.phone_e164,
        phone_type=lead.phone_type,
        time_zones=_json(lead.time_zones),
        state=lead.state,
        status=lead.status,
        attempts=lead.attempts,
        next_dial_at=lead.next_dial_at,
        consent_automated=lead.consent_automated,
    )


# Claims run many times a second: their statements are built once, with bound parameters,
# because building and keying a statement cost more than running it (~2 ms per statement).
# Not "campaign_id": a parameter named after a lead column would become a SET value of the
# claiming UPDATE.
CAMPAIGN_ID = bindparam("campaign")
NOW = bindparam("now", type_=Lead.next_dial_at.type)
NODE = bindparam("node")


def _window_count(hours: Any, which: ColumnElement[bool]) -> Any:
    """The campaign's calls in the rolling 30 days (47 CFR 64.1200(a)(7)) that are `which`:
    the hours wholly inside the window as the triggers keep them (`hours`, the column of
    `campaign_answer_hours` that counts `which`), and the calls of its first, partial hour."""
    whole_hours = (
        select(func.coalesce(func.sum(hours), 0))
        .where(
            CampaignAnswerHour.campaign_id == CAMPAIGN_ID,
            CampaignAnswerHour.hour > bindparam("window_hour", type_=CampaignAnswerHour.hour.type),
        )
        .scalar_subquery()
    )
    first_hour = (
        select(func.count())
        .where(
            CallAttempt.campaign_id == CAMPAIGN_ID,
            CallAttempt.started_at > bindparam("window_start", type_=CallAttempt.started_at.type),
            CallAttempt.started_at
            < bindparam("window_hour_end", type_=CallAttempt.started_at.type),
            which,
        )
        .scalar_subquery()
    )
    return whole_hours + first_hour


def _window_columns() -> tuple[Any, Any]:
    return (
        _window_count(CampaignAnswerHour.live, LIVE_ANSWER).label("live"),
        _window_count(CampaignAnswerHour.abandoned, ABANDONED).label("abandoned"),
    )


def window_parameters(now: dt.datetime) -> dict[str, dt.datetime]:
    """The bounds of the 30 days before `now` that `_window_count` reads."""
    start = now - ABANDON_WINDOW
    hour = floor_hour(start)
    return {"window_start": start, "window_hour": hour, "window_hour_end": hour + HOUR}


_WINDOW = select(*_window_columns())


def abandon_window(
    connection: Connection | Session, campaign_id: int, now: dt.datetime
) -> tuple[int, int]:
    """The campaign's live answers and abandons in the 30 days before `now`, as the gate
    counts them."""
    live, abandoned = connection.execute(
        _WINDOW, {"campaign": campaign_id, **window_parameters(now)}
    ).one()
    return int(live or 0), int(abandoned or 0)


def _debt_key(lead: Candidate) -> str:
    return lead.account_ref or lead.phone_e164


def histories(
    connection: Connection,
    rules: CampaignRules,
    leads: Sequence[Candidate],
    now: dt.datetime,
    window: tuple[int, int],
) -> dict[int, DialHistory]:
    """Each lead's dial history: the candidate rows carry their do-not-call flag; the rules that
    need past attempts cost one query each for the whole batch, only when they apply."""
    if not leads:
        return {}
    phones = [lead.phone_e164 for lead in leads]
    number_dials: dict[int, list[dt.datetime]] = defaultdict(list)
    strict = [lead.id for lead in leads if lead.state in {"FL", "OK"}]
    if strict:
        for lead_id, started in connection.execute(
            select(CallAttempt.lead_id, CallAttempt.started_at).where(
                CallAttempt.lead_id.in_(strict), CallAttempt.started_at >= now - DAY
            )
        ):
            number_dials[lead_id].append(started)
    debt_dials: dict[str, list[dt.datetime]] = defaultdict(list)
    conversations: dict[str, dt.datetime] = {}
    if rules.kind == "collections":
        # Read through `ix_call_attempts_debt_key`: a few index entries per debt, not the
        # week of every campaign's calls.
        debt = func.coalesce(CallAttempt.account_ref, CallAttempt.phone_e164)
        keys = sorted({_debt_key(lead) for lead in leads})
        for key, started, conversation in connection.execute(
            select(debt, CallAttempt.started_at, CallAttempt.conversation).where(
                debt.in_(keys), CallAttempt.started_at >= now - REG_F_WINDOW
            )
        ):
            debt_dials[key].append(started)
            if conversation and (key not in conversations or started > conversations[key]):
                conversations[key] = started
    abandons: dict[str, dt.datetime] = {}
    if rules.uk_mode:
        abandons = dict(
            connection.execute(
                select(CallAttempt.phone_e164, func.max(CallAttempt.started_at))
                .where(
                    CallAttempt.phone_e164.in_(phones),
                    CallAttempt.abandoned,
                    CallAttempt.started_at >= now - UK_ABANDON_QUIET,
                )
                .group_by(CallAttempt.phone_e164)
            ).all()
        )
    live, abandoned = window
    # Most leads have no past dial that matters: they share one history (two, with the flag).
    plain = {
        on_dnc: DialHistory(on_dnc=on_dnc, window_live_answers=live, window_abandons=abandoned)
        for on_dnc in (False, True)
    }
    found: dict[int, DialHistory] = {}
    for lead in leads:
        debt = _debt_key(lead)
        own = (
            number_dials.get(lead.id),
            debt_dials.get(debt),
            conversations.get(debt),
            abandons.get(lead.phone_e164),
        )
        if own == (None, None, None, None):
            found[lead.id] = plain[lead.on_dnc]
            continue
        found[lead.id] = DialHistory(
            on_dnc=lead.on_dnc,
            number_dials=tuple(own[0] or ()),
            debt_dials=tuple(own[1] or ()),
            last_debt_conversation=own[2],
            last_abandon=own[3],
            window_live_answers=live,
            window_abandons=abandoned,
        )
    return found


def _claiming(status: str, automated: bool, limit: ColumnElement[int], name: str) -> Any:
    """PostgreSQL: up to `limit` candidates of `status` locked (SKIP LOCKED) and claimed in one
    statement, returned as `Candidate` columns plus their order (`rank`, `next_dial_at`, `id`).

    The gate runs after the claim, and the claim's transaction gives back what it refuses: a
    lead's heap page is written when it is locked anyway, and marking it in the same statement
    saves a round trip and sending the ids back."""
    # The rows by their physical address: this transaction holds their locks, so it cannot
    # change, and the update fetches each from its page without a look-up in the primary key
    # (0.7 ms of server CPU per claim of 100). One array, so the plan stays a TID scan whatever
    # the planner guesses of the number of candidates. A candidate another transaction rewrote
    # after this statement's snapshot (and that still qualifies) is locked in a version the
    # snapshot cannot see: the claim leaves it, one lead fewer in a batch of "up to n".
    ctid = literal_column("leads.ctid")
    chosen = _candidate_query(status, automated, True, limit, (ctid.label("heap_row"),)).cte(
        f"chosen_{name}"
    )
    rank = literal_column("0") if status == "callback" else Lead.priority
    return (
        update(Lead)
        .where(ctid == any_(literal_column(f"ARRAY(SELECT heap_row FROM {chosen.name})")))
        .values(status="claimed", claimed_by=NODE, claimed_at=NOW)
        .returning(*_candidate_columns(literal_column(f"'{status}'")), rank.label("rank"))
        .add_cte(chosen)
        .cte(f"claimed_{name}")
    )


def _limit(name: str, postgres: bool) -> ColumnElement[int]:
    """A claim part's LIMIT. PostgreSQL: its number is written into the SQL text as the statement
    runs (SQLAlchemy compiles the statement once all the same), one prepared statement per batch
    size. The server plans a prepared statement anew on each run while a custom plan looks
    cheaper than the generic one, and a generic plan with a parameter LIMIT assumes a tenth of
    the table: so every claim was planned anew, a fifth of the server's CPU for a claim of
    recycled and new leads at 10M leads. With the number in the text the server keeps one
    generic plan per batch size after a few claims (the same index scans, costed in the
    hundreds: no JIT)."""
    return bindparam(name, type_=Integer, literal_execute=postgres)


@functools.cache
def _context_statement(automated: bool, postgres: bool) -> Select[Any]:
    """The campaign's due callbacks (one row with empty lead columns when none is due; claimed
    on PostgreSQL), its rules and its 30-day abandon window, in one round trip."""
    limit = _limit("limit_callbacks", postgres)
    callbacks = (
        _claiming("callback", automated, limit, "callbacks")
        if postgres
        else _candidate_query("callback", automated, False, limit).cte("due_callbacks")
    )
    return (
        select(
            *(callbacks.c[field] for field in Candidate._fields),
            Campaign.kind,
            cast(Campaign.calling_days, String).label("calling_days"),
            Campaign.calling_start,
            Campaign.calling_end,
            cast(Campaign.holidays, String).label("holidays"),
            Campaign.max_attempts,
            Campaign.abandon_target,
            Campaign.uk_mode,
            Campaign.recycled_mix,
            *_window_columns(),
        )
        .select_from(Campaign)
        .outerjoin(callbacks, true())
        .where(Campaign.id == CAMPAIGN_ID)
        .order_by(callbacks.c.next_dial_at, callbacks.c.id)
    )


def _claim_context(
    connection: Connection,
    campaign_id: int,
    n: int,
    node: str,
    now: dt.datetime,
    kind: DialKind,
    postgres: bool,
) -> tuple[Row[Any], list[Candidate]]:
    """The campaign (rules, abandon window) and up to `n` due callbacks, oldest due first."""
    rows = connection.execute(
        _context_statement(kind in AUTOMATED, postgres),
        {
            "campaign": campaign_id,
            "now": now,
            "node": node,
            "limit_callbacks": n,
            **window_parameters(now),
        },
    ).all()
    if not rows:
        raise ValueError(f"no campaign with id {campaign_id}")
    return rows[0], [Candidate._make(row[:LEAD_FIELDS]) for row in rows if row[0] is not None]


def _candidate_query(
    status: str,
    automated: bool,
    locking: bool,
    limit: ColumnElement[int],
    columns: tuple[ColumnElement[Any], ...] | None = None,
) -> Select[Any]:
    """Due leads of `status` in dialing order: `columns`, or all of `Candidate`."""
    # Recycled leads and callbacks always have a dial time (dispositions sets it): for them the
    # condition stays a plain range on the index. With "IS NULL OR" the scan could not stop at
    # the due ones: 300,000 future callbacks made every claim read them all (740 ms).
    due = (
        Lead.next_dial_at <= NOW
        if status in ("recycled", "callback")
        else or_(Lead.next_dial_at.is_(None), Lead.next_dial_at <= NOW)
    )
    # The hopper dials no lead of an import that has not completed (a failed one deletes its
    # leads); the subquery is one hashed lookup per statement.
    unfinished = select(ImportRun.id).where(
        ImportRun.campaign_id == CAMPAIGN_ID, ImportRun.status != "completed"
    )
    # Nor any lead of a list the manager disabled.
    disabled = select(LeadList.id).where(
        LeadList.campaign_id == CAMPAIGN_ID, LeadList.active.is_(False)
    )
    query = select(*(columns or _candidate_columns(Lead.status))).where(
        Lead.campaign_id == CAMPAIGN_ID,
        # A literal, not a parameter: PostgreSQL's hopper indexes are partial on the status, and
        # only a plan that sees the value can use them.
        Lead.status == literal_column(f"'{status}'"),
        due,
        or_(Lead.import_id.is_(None), Lead.import_id.not_in(unfinished)),
        Lead.list_id.not_in(disabled),
    )
    if status == "callback":
        # A personal callback waits for its agent (`claim_lead`, when they are ready).
        query = query.where(Lead.callback_agent_id.is_(None))
    if automated:
        # The gate would refuse them anyway; filtering here keeps the scan short.
        # Literal values, not an expanding IN: the statement text never changes, so psycopg
        # keeps one server-side prepared statement for it.
        maybe_mobile = [literal(phone_type) for phone_type in sorted(MAYBE_MOBILE)]
        query = query.where(not_(and_(Lead.phone_type.in_(maybe_mobile), ~Lead.consent_automated)))
    if status == "callback":
        query = query.order_by(Lead.next_dial_at)
    else:
        query = query.order_by(Lead.priority.desc(), Lead.next_dial_at)
    query = query.limit(limit)
    if locking:
        query = query.with_for_update(skip_locked=True, of=Lead)
    return query


@functools.cache
def _candidates_statement(
    statuses: tuple[str, ...], automated: bool, postgres: bool
) -> CompoundSelect:
    """Candidates of several statuses in one round trip, each part with its own order and
    limit (claimed on PostgreSQL). The limits are plain parameters (numbers in the text on
    PostgreSQL, see `_limit`), so the planner knows them: with a computed limit it assumes a
    tenth of the table and spends 100 ms compiling the plan (JIT).

    SQLite: each part is a CTE, and UNION ALL returns each part's rows in its own order (a
    compound select). PostgreSQL: each part is a claiming CTE, whose rows come back in no
    particular order: the union sorts them by part and by each part's dialing order."""
    parts = []
    for part, status in enumerate(statuses):
        limit = _limit(f"limit_{part}", postgres)
        source = (
            _claiming(status, automated, limit, f"part{part}")
            if postgres
            else _candidate_query(status, automated, False, limit).cte(f"part{part}")
        )
        parts.append(
            select(
                *(source.c[field] for field in Candidate._fields),
                literal_column(str(part)).label("part"),
                *((source.c.rank,) if postgres else ()),
            )
        )
    union = union_all(*parts)
    if postgres:
        union = union.order_by(
            literal_column("part"),
            literal_column("rank").desc(),
            literal_column("next_dial_at"),
            literal_column("id"),
        )
    return union


def _candidates(
    connection: Connection,
    campaign_id: int,
    parts: list[tuple[str, int]],
    node: str,
    now: dt.datetime,
    kind: DialKind,
    postgres: bool,
) -> list[list[Candidate]]:
    """The candidates of each (status, limit) part, in the part's order."""
    wanted = [(i, status, limit) for i, (status, limit) in enumerate(parts) if limit > 0]
    found: dict[int, list[Candidate]] = {}
    if wanted:
        statement = _candidates_statement(
            tuple(status for _, status, _ in wanted), kind in AUTOMATED, postgres
        )
        params: dict[str, Any] = {"campaign": campaign_id, "now": now, "node": node}
        params.update((f"limit_{part}", limit) for part, (_, _, limit) in enumerate(wanted))
        for row in connection.execute(statement, params):
            found.setdefault(wanted[row[LEAD_FIELDS]][0], []).append(
                Candidate._make(row[:LEAD_FIELDS])
            )
    return [found.get(i, []) for i in range(len(parts))]


def _id_is_in(postgres: bool) -> ColumnElement[bool]:
    # One array parameter on PostgreSQL: the text stays the same for any number of ids, so
    # psycopg prepares it once (an IN of 100 parameters is parsed anew on every claim).
    if postgres:
        return Lead.id == any_(bindparam("ids", type_=ARRAY(Integer)))
    return Lead.id.in_(bindparam("ids", expanding=True))


@functools.cache
def _mark_statements(postgres: bool) -> tuple[Update, Update, Update, Update]:
    """Claimed, closed, deferred and given back: what the hopper writes after the gate. The
    last three also undo a claim (PostgreSQL claims before the gate; SQLite leaves the claim
    columns empty until the gate passed a lead, so clearing them there changes nothing)."""
    unclaimed = {"claimed_by": None, "claimed_at": None}
    return (
        update(Lead)
        .where(_id_is_in(postgres))
        .values(status="claimed", claimed_by=NODE, claimed_at=NOW),
        update(Lead)
        .where(_id_is_in(postgres))
        .values(status=bindparam("status"), closed_reason=bindparam("detail"), **unclaimed),
        update(Lead)
        .where(_id_is_in(postgres))
        .values(
            status=bindparam("status"),
            next_dial_at=bindparam("retry_at", type_=Lead.next_dial_at.type),
            **unclaimed,
        ),
        update(Lead).where(_id_is_in(postgres)).values(status=bindparam("status"), **unclaimed),
    )


def claim(
    engine: Engine,
    campaign_id: int,
    n: int,
    node: str,
    now: dt.datetime,
    kind: DialKind = "predictive",
) -> list[ClaimedLead]:
    """Up to `n` leads to dial now, in order: callbacks due, then by priority, recycled and new
    mixed as the campaign says. Each one passed the gate and is now claimed by `node`."""
    if n <= 0:
        return []
    try:
        return _claim_once(engine, campaign_id, n, node, now, kind)
    except DBAPIError as error:
        # A connection the server closed since its last use (the pool pings only idle ones,
        # see db.make_engine): the pool has renewed its connections, so try once more. Had the
        # lost connection committed, its leads wait for release_stale.
        if not error.connection_invalidated:
            raise
        return _claim_once(engine, campaign_id, n, node, now, kind)


def _claim_once(
    engine: Engine, campaign_id: int, n: int, node: str, now: dt.datetime, kind: DialKind
) -> list[ClaimedLead]:
    postgres = engine.dialect.name == "postgresql"
    with engine.connect() as connection:
        if not postgres:
            connection.execution_options(sqlite_begin="BEGIN IMMEDIATE")
        with connection.begin():
            return _claim_in(connection, campaign_id, n, node, now, kind, postgres)


# A batch the gate thinned out is topped up from the next candidates, a few times at most.
GATE_PASSES = 4


def _claim_in(
    connection: Connection,
    campaign_id: int,
    n: int,
    node: str,
    now: dt.datetime,
    kind: DialKind,
    postgres: bool,
) -> list[ClaimedLead]:
    context, callbacks = _claim_context(connection, campaign_id, n, node, now, kind, postgres)
    rules = campaign_rules(context)
    window = (context.live or 0, context.abandoned or 0)
    claimed: list[ClaimedLead] = []
    debt_dials_now: Counter[str] = Counter()
    # Exactly as many candidates as wanted: on PostgreSQL each one is locked, which writes its
    # heap page (a full-page image after a checkpoint), so a lead locked and left costs as much
    # WAL as one claimed. Only when the gate refuses some does the hopper look further.
    for gate_pass in range(GATE_PASSES):
        wanted = n - len(claimed)
        if gate_pass:
            [callbacks] = _candidates(
                connection, campaign_id, [("callback", wanted)], node, now, kind, postgres
            )
        ordered = callbacks + _recycled_and_new(
            connection,
            campaign_id,
            wanted - len(callbacks),
            context.recycled_mix,
            node,
            now,
            kind,
            postgres,
        )
        passed, stop = _gate(
            connection, rules, window, ordered, wanted, now, kind, postgres, debt_dials_now
        )
        if passed and not postgres:
            connection.execute(
                _mark_statements(postgres)[0],
                {"ids": [lead.id for lead in passed], "node": node, "now": now},
            )
        claimed += passed
        # Fewer candidates than wanted: none is left to top the batch up with.
        if stop or len(claimed) == n or len(ordered) < wanted:
            break
    return claimed


def _recycled_and_new(
    connection: Connection,
    campaign_id: int,
    wanted: int,
    mix: float,
    node: str,
    now: dt.datetime,
    kind: DialKind,
    postgres: bool,
) -> list[Candidate]:
    """`wanted` recycled and new leads, about `mix` of them recycled; either kind makes up
    for the other when it runs short."""
    if wanted <= 0:
        return []
    want_recycled = math.floor(wanted * mix)
    recycled, fresh = _candidates(
        connection,
        campaign_id,
        [("recycled", want_recycled), ("new", wanted - want_recycled)],
        node,
        now,
        kind,
        postgres,
    )
    # A follow-up query on SQLite meets the rows it already returned first: skip them. On
    # PostgreSQL they are claimed by now, and no longer candidates.
    if len(recycled) < want_recycled:
        [more] = _candidates(
            connection, campaign_id, [("new", wanted - len(recycled))], node, now, kind, postgres
        )
        fresh += more if postgres else more[len(fresh) :]
    elif len(fresh) < wanted - want_recycled:
        [more] = _candidates(
            connection, campaign_id, [("recycled", wanted - len(fresh))], node, now, kind, postgres
        )
        recycled += more if postgres else more[len(recycled) :]
    return _interleave(recycled, fresh, mix)


def _gate(
    connection: Connection,
    rules: CampaignRules,
    window: tuple[int, int],
    leads: list[Candidate],
    wanted: int,
    now: dt.datetime,
    kind: DialKind,
    postgres: bool,
    debt_dials_now: Counter[str],
) -> tuple[list[ClaimedLead], bool]:
    """The leads the gate lets through (at most `wanted`), and whether it stopped the
    campaign. Refused leads are closed or deferred here, so no later scan of this
    transaction meets them again; on PostgreSQL, the leads it did not look at are given back.
    `debt_dials_now` counts, per debt, the dials this claim let through so far (not yet
    attempt rows): they count for the debt's next number, so that a debt of three numbers
    with six calls in the week gets one call now, not three."""
    history = histories(connection, rules, leads, now, window)
    passed: list[ClaimedLead] = []
    closed: dict[tuple[str, str], list[int]] = defaultdict(list)
    deferred: dict[tuple[dt.datetime, str], list[int]] = defaultdict(list)
    given_back: dict[str, list[int]] = defaultdict(list)
    refused: Counter[str] = Counter()
    stop = False
    for lead in leads:
        if len(passed) == wanted or stop:
            given_back[lead.status].append(lead.id)
            continue
        debt, lead_history = _debt_key(lead), history[lead.id]
        if debt_dials_now[debt]:
            earlier = (now,) * debt_dials_now[debt]
            lead_history = replace(lead_history, debt_dials=lead_history.debt_dials + earlier)
        verdict = may_dial(lead_facts(lead), rules, now, lead_history, kind)
        if verdict.allowed:
            passed.append(_claimed(lead))
            if rules.kind == "collections":
                debt_dials_now[debt] += 1
            continue
        refused[verdict.reason or "refused"] += 1
        if verdict.reason == "abandon_cap":
            stop = True  # a campaign-wide stop: no lead is at fault
            given_back[lead.status].append(lead.id)
        elif verdict.reason in LASTING_REASONS:
            closed[(CLOSED_STATUS.get(verdict.reason or "", "done"), verdict.detail)].append(
                lead.id
            )
        else:
            deferred[(_retry_at(lead, verdict.reason, rules, now), lead.status)].append(lead.id)
    _, close, defer, give_back = _mark_statements(postgres)
    for (status, detail), ids in closed.items():
        connection.execute(close, {"ids": ids, "status": status, "detail": detail})
    for (retry_at, status), ids in deferred.items():
        connection.execute(defer, {"ids": ids, "retry_at": retry_at, "status": status})
    if postgres:
        for status, ids in given_back.items():
            connection.execute(give_back, {"ids": ids, "status": status})
    if refused:
        count_refusals(connection, leads[0].campaign_id, now, refused)
    return passed, stop


def count_refusals(
    connection: Connection, campaign_id: int, now: dt.datetime, refused: Counter[str]
) -> None:
    """Adds the gate's refusals to the campaign's counts for the hour (`gate_refusals`)."""
    hour = floor_hour(now)
    rows = [
        {"campaign_id": campaign_id, "hour": hour, "reason": reason[:40], "count": count}
        for reason, count in refused.items()
    ]
    dialect = sqlite_insert if connection.dialect.name == "sqlite" else postgresql_insert
    statement = dialect(GateRefusal)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["campaign_id", "hour", "reason"],
            set_={"count": GateRefusal.count + statement.excluded["count"]},
        ),
        rows,
    )


# Refusals a calling window settles: the lead is looked at again when its window opens, not
# every quarter of an hour through the night.
WINDOW_REASONS = frozenset({"outside_calling_hours", "not_a_calling_day", "holiday"})


def _retry_at(
    lead: Candidate, reason: str | None, rules: CampaignRules, now: dt.datetime
) -> dt.datetime:
    retry = now + RETRY_AFTER.get(reason or "", dt.timedelta(minutes=5))
    if reason in WINDOW_REASONS:
        opens = next_window_start(lead_facts(lead), rules, now)
        if opens is not None and opens > retry:
            return opens
    return retry


def _claimed(lead: Candidate) -> ClaimedLead:
    return ClaimedLead(
        lead.id,
        lead.campaign_id,
        lead.phone_e164,
        lead.first_name,
        lead.last_name,
        lead.account_ref,
        lead.attempts,
        lead.status == "callback",
        lead_facts(lead),
    )


def _interleave(recycled: list[Candidate], fresh: list[Candidate], mix: float) -> list[Candidate]:
    """Recycled and new leads alternated so that about `mix` of the claimed ones are recycled."""
    out: list[Candidate] = []
    taken_recycled = 0
    recycled_iter, fresh_iter = iter(recycled), iter(fresh)
    while len(out) < len(recycled) + len(fresh):
        prefer_recycled = taken_recycled < mix * (len(out) + 1)
        first, second = (
            (recycled_iter, fresh_iter) if prefer_recycled else (fresh_iter, recycled_iter)
        )
        lead = next(first, None) or next(second, None)
        if lead is None:
            break
        taken_recycled += lead.status == "recycled"
        out.append(lead)
    return out


@functools.cache
def _rules_statement() -> Select[Any]:
    """A campaign's rules and its 30-day abandon window (the context of a claim, no leads)."""
    return select(
        Campaign.kind,
        cast(Campaign.calling_days, String).label("calling_days"),
        Campaign.calling_start,
        Campaign.calling_end,
        cast(Campaign.holidays, String).label("holidays"),
        Campaign.max_attempts,
        Campaign.abandon_target,
        Campaign.uk_mode,
        *_window_columns(),
    ).where(Campaign.id == CAMPAIGN_ID)


def claim_lead(
    engine: Engine,
    campaign_id: int,
    lead_id: int,
    claimant: str,
    now: dt.datetime,
    kind: DialKind,
) -> ClaimedLead | Verdict:
    """One given lead (a preview, a manual dial, a personal callback) through the same gate as
    every other dial, claimed by `claimant` when it passes. A refusal comes back as the gate's
    verdict and leaves the lead as it was: the agent who asked is told why."""
    postgres = engine.dialect.name == "postgresql"
    with engine.connect() as connection:
        if not postgres:
            connection.execution_options(sqlite_begin="BEGIN IMMEDIATE")
        with connection.begin():
            params = {"campaign": campaign_id, "now": now, **window_parameters(now)}
            query = select(*_candidate_columns(Lead.status)).where(
                Lead.id == lead_id, Lead.campaign_id == CAMPAIGN_ID
            )
            if postgres:
                query = query.with_for_update(of=Lead, skip_locked=True)
            row = connection.execute(query, params).first()
            if row is None:
                return Verdict(
                    False,
                    "not_dialable_status",
                    f"lead {lead_id} is not in this campaign or is being dialled right now",
                )
            lead = Candidate._make(row)
            context = connection.execute(_rules_statement(), params).one()
            rules = campaign_rules(context)
            window = (context.live or 0, context.abandoned or 0)
            history = histories(connection, rules, [lead], now, window)[lead.id]
            verdict = may_dial(lead_facts(lead), rules, now, history, kind)
            if not verdict:
                count_refusals(connection, campaign_id, now, Counter([verdict.reason or "refused"]))
                return verdict
            connection.execute(
                _mark_statements(postgres)[0], {"ids": [lead.id], "node": claimant, "now": now}
            )
            return _claimed(lead)


def release(engine: Engine, lead_ids: Sequence[int]) -> int:
    """Gives claimed leads back to the hopper unchanged (a node that did not dial them)."""
    if not lead_ids:
        return 0
    return _release_where(engine, Lead.id.in_(list(lead_ids)))


def release_stale(engine: Engine, now: dt.datetime, older_than: dt.timedelta) -> int:
    """Frees claims a node held too long without dialing (it died or lost its database)."""
    return _release_where(engine, Lead.claimed_at < now - older_than)


def _release_where(engine: Engine, condition: ColumnElement[bool]) -> int:
    pending = (Callback.lead_id == Lead.id, Callback.status == "pending")
    pending_callback = exists().where(*pending)
    # A callback lead always carries its due time: the hopper's scan of callbacks relies on it.
    callback_due = select(func.min(Callback.due_at)).where(*pending).scalar_subquery()
    with engine.begin() as connection:
        result = connection.execute(
            update(Lead)
            .where(Lead.status == "claimed", condition)
            .values(
                status=case(
                    (pending_callback, "callback"),
                    (Lead.attempts > 0, "recycled"),
                    else_="new",
                ),
                # A recycled lead always carries its dial time too (due now, if it had none).
                next_dial_at=case(
                    (pending_callback, func.coalesce(Lead.next_dial_at, callback_due)),
                    (Lead.attempts > 0, func.coalesce(Lead.next_dial_at, utcnow())),
                    else_=Lead.next_dial_at,
                ),
                claimed_by=None,
                claimed_at=None,
            )
        )
        return result.rowcount
