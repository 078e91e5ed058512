"""The campaign domain as stored: SQLAlchemy 2.0 typed models, portable SQLite/PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ColumnElement,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    or_,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

CAMPAIGN_KINDS = ("telemarketing", "collections", "survey", "appointment")
DIAL_MODES = ("preview", "progressive", "power", "predictive")
# "active" asks the nodes to dial it; "paused" keeps its calls and agents but places no new
# call; "stopped" also cancels the calls still ringing.
CAMPAIGN_STATUSES = ("draft", "active", "paused", "stopped", "finished")
# An agent's session (ARCHITECTURE §3a): logged in as paused, "ready" for calls, "reserved"
# for a call being connected, "on_call" while bridged, "wrap_up" until the disposition.
AGENT_STATES = ("logged_out", "ready", "reserved", "on_call", "wrap_up", "paused")
# What an agent (or the console for them) asks a node to do on a call.
NODE_COMMANDS = ("hangup", "transfer", "dial")
LEAD_STATUSES = (
    "pending",
    "new",
    "claimed",
    "dialing",
    "callback",
    "recycled",
    "done",
    "dnc",
    "invalid",
)
# What the dialer does when AMD says an answering machine picked up: hang up, or leave the
# campaign's voicemail message after the beep (an attempt that did ends "machine_message").
AMD_ACTIONS = ("hangup", "message")
ATTEMPT_OUTCOMES = (
    "human",
    "machine",
    "machine_message",
    "busy",
    "no_answer",
    "invalid",
    "congestion",
    "failed",
    "abandoned",
)
# Attempt counts the hourly roll-up keeps (campaign_hours' columns): every line outcome (an
# abandoned answer is a "human" one whose person no agent took in time, counted apart).
OUTCOME_COLUMNS = tuple(outcome for outcome in ATTEMPT_OUTCOMES if outcome != "abandoned")
ROLES = ("admin", "manager", "supervisor", "agent")
# Who a collections agent found on the line, recorded with the disposition: the debtor
# ("right" party), someone with the wrong number, or a third party who knows the debtor.
PARTIES = ("right", "wrong", "third")
# The FCC caps abandonment at 3% of live answers (47 CFR 64.1200(a)(7)); ring at least 15 s.
MAX_ABANDON_TARGET = 0.03
MIN_RING_TIMEOUT_S = 15


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class folded(FunctionElement[str]):
    """`lower(text)` compared character code by character code, whatever the database's
    collation: a prefix is then a range (`folded(name) >= folded(prefix)` and below the prefix
    followed by the last character), which an index on the expression serves where neither
    SQLite nor PostgreSQL use an index for ILIKE."""

    type = String()
    name = "folded"
    inherit_cache = True


@compiles(folded)
def _folded(element: folded, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite compares text with memcmp (BINARY): code point order for UTF-8 already.
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(folded, "postgresql")
def _folded_postgresql(element: folded, compiler: SQLCompiler, **kw: Any) -> str:
    # A linguistic collation does not keep a prefix's extensions in one range (Czech sorts
    # "ch" after "h"); "C" compares the bytes.
    return f'(lower({compiler.process(element.clauses, **kw)}) COLLATE "C")'


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timestamps in UTC on every backend: SQLite keeps no offset, so normalise on the way in
    and attach UTC on the way out; a naive value is a programming error."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must carry a time zone")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {  # noqa: RUF012 - SQLAlchemy reads it as a class attribute
        dt.datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[str]: JSON,
        list[Any]: JSON,
    }


class Campaign(Base):
    __tablename__ = "campaigns"
    __table_args__ = (
        CheckConstraint(_in("kind", CAMPAIGN_KINDS), name="kind"),
        CheckConstraint(_in("dial_mode", DIAL_MODES), name="dial_mode"),
        CheckConstraint(_in("status", CAMPAIGN_STATUSES), name="status"),
        CheckConstraint(f"ring_timeout_s >= {MIN_RING_TIMEOUT_S}", name="ring_timeout"),
        CheckConstraint(
            f"abandon_target > 0 AND abandon_target <= {MAX_ABANDON_TARGET}", name="abandon_target"
        ),
        CheckConstraint("recycled_mix >= 0 AND recycled_mix <= 1", name="recycled_mix"),
        CheckConstraint("dial_ratio >= 1", name="dial_ratio"),
        CheckConstraint("max_lines >= 0", name="max_lines"),
        CheckConstraint("wrapup_timeout_s >= 5", name="wrapup_timeout"),
        CheckConstraint(_in("amd_action", AMD_ACTIONS), name="amd_action"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    dial_mode: Mapped[str] = mapped_column(String(20), default="predictive")
    dial_ratio: Mapped[float] = mapped_column(default=1.0)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    # Calling days 0=Monday..6=Sunday, local start/end "HH:MM" (the gate also clips them to the
    # legal window), holidays as ISO dates.
    calling_days: Mapped[list[Any]] = mapped_column(default=lambda: [0, 1, 2, 3, 4, 5])
    calling_start: Mapped[str] = mapped_column(String(5), default="09:00")
    calling_end: Mapped[str] = mapped_column(String(5), default="20:00")
    holidays: Mapped[list[str]] = mapped_column(default=list)
    caller_id: Mapped[str | None] = mapped_column(String(32))
    trunk_name: Mapped[str | None] = mapped_column(String(80))
    ring_timeout_s: Mapped[int] = mapped_column(default=25)
    abandon_target: Mapped[float] = mapped_column(default=MAX_ABANDON_TARGET)
    max_attempts: Mapped[int] = mapped_column(default=6)
    recycling_rules: Mapped[dict[str, Any]] = mapped_column(default=dict)
    recycled_mix: Mapped[float] = mapped_column(default=0.3)
    script: Mapped[str] = mapped_column(Text, default="")
    uk_mode: Mapped[bool] = mapped_column(default=False)
    seller_name: Mapped[str] = mapped_column(String(120), default="")
    callback_number: Mapped[str | None] = mapped_column(String(32))
    safe_harbor_message: Mapped[str] = mapped_column(Text, default="")
    record_calls: Mapped[bool] = mapped_column(default=False)
    amd_settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # An answering machine: hang up, or leave `voicemail_message` after its beep
    # (`dialer.calls.voicemail`); {seller} and {callback} in the message are filled in.
    amd_action: Mapped[str] = mapped_column(String(10), default="hangup", server_default="hangup")
    voicemail_message: Mapped[str] = mapped_column(Text, default="", server_default="")
    # Lines the campaign may hold at once (ringing and up); 0: four per agent logged in. The
    # trunk's own channel and calls-per-second limits apply on top, shared by its campaigns.
    max_lines: Mapped[int] = mapped_column(default=0)
    # An agent who has not dispositioned a call this long after it ended is given
    # `default_disposition` and made ready again.
    wrapup_timeout_s: Mapped[int] = mapped_column(default=120)
    default_disposition: Mapped[str] = mapped_column(String(40), default="NO_DISPOSITION")
    pause_codes: Mapped[list[str]] = mapped_column(
        default=lambda: ["BREAK", "LUNCH", "TRAINING", "MEETING", "ADMIN"]
    )
    # Started by the scheduler when its calling window opens in one of its leads' time zones,
    # paused when it has closed in all; `schedule_paused` tells that pause from a manager's.
    auto_schedule: Mapped[bool] = mapped_column(default=False)
    schedule_paused: Mapped[bool] = mapped_column(default=False)
    # Survey and appointment campaigns: the calls run an IVR flow (the survey's questions, the
    # appointment reminder's menu) instead of going to agents (`dialer.calls`).
    agentless: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    lists: Mapped[list[LeadList]] = relationship(back_populates="campaign")


class LeadList(Base):
    __tablename__ = "lead_lists"
    __table_args__ = (UniqueConstraint("campaign_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    default_region: Mapped[str] = mapped_column(String(2), default="US")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    campaign: Mapped[Campaign] = relationship(back_populates="lists")


class ImportRun(Base):
    __tablename__ = "import_runs"
    __table_args__ = (
        CheckConstraint(_in("status", ("running", "completed", "failed")), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    list_id: Mapped[int] = mapped_column(ForeignKey("lead_lists.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default="running")
    rows: Mapped[int] = mapped_column(default=0)
    imported: Mapped[int] = mapped_column(default=0)
    duplicates: Mapped[int] = mapped_column(default=0)
    invalid: Mapped[int] = mapped_column(default=0)
    dnc: Mapped[int] = mapped_column(default=0)
    # Data rows counted in the file before the import started (the console's progress bar).
    expected_rows: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]


class ImportRowError(Base):
    __tablename__ = "import_row_errors"

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(
        ForeignKey("import_runs.id", ondelete="CASCADE"), index=True
    )
    row: Mapped[int]
    field: Mapped[str] = mapped_column(String(80))
    value: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)


class Lead(Base):
    __tablename__ = "leads"
    __table_args__ = (
        UniqueConstraint("campaign_id", "phone_e164"),
        CheckConstraint(_in("status", LEAD_STATUSES), name="status"),
        # The hopper's scan: a campaign's leads of one status, best priority first and, within a
        # priority, the longest due first (so the scan meets due leads before future ones).
        # On PostgreSQL both hopper indexes hold only the leads they serve: a claim then adds no
        # entry to them (two index inserts fewer per lead), and done leads do not swell them.
        Index(
            "ix_leads_hopper",
            "campaign_id",
            "status",
            text("priority DESC"),
            "next_dial_at",
            postgresql_where=text("status IN ('new', 'recycled')"),
        ),
        # Callbacks in due order.
        Index(
            "ix_leads_due",
            "campaign_id",
            "status",
            "next_dial_at",
            postgresql_where=text("status = 'callback'"),
        ),
        # Claims a stopped node left behind, for release_stale: only claimed leads are in it.
        Index(
            "ix_leads_claimed",
            "claimed_at",
            postgresql_where=text("status = 'claimed'"),
            sqlite_where=text("status = 'claimed'"),
        ),
        # "Why is nothing dialing?" groups a campaign's leads by the facts the gate reads: on
        # SQLite from this index alone, in its order (migration 0007_why says why SQLite only).
        Index(
            "ix_leads_why",
            "campaign_id",
            "status",
            "time_zones",
            "phone_type",
            "consent_automated",
            "state",
            "attempts",
            "next_dial_at",
            "list_id",
            "import_id",
            sqlite_where=text("status IN ('new', 'recycled', 'callback')"),
        ).ddl_if(dialect="sqlite"),
        # Regulation F counts dials per debt: a campaign's leads by account.
        Index(
            "ix_leads_account",
            "campaign_id",
            "account_ref",
            postgresql_where=text("account_ref IS NOT NULL"),
            sqlite_where=text("account_ref IS NOT NULL"),
        ),
        # Lead search by the start of a name (migration 0014_benchconsole).
        Index("ix_leads_last_name", folded(text("last_name"))),
        Index("ix_leads_first_name", folded(text("first_name"))),
        # A campaign's leads counted per list and status (the lists page, the campaigns list)
        # from the index alone, not from a quarter of a million rows.
        Index("ix_leads_campaign_list_status", "campaign_id", "list_id", "status"),
        # Room on each page for the row's next version (migration 0004 says why).
        {"postgresql_with": {"fillfactor": 90}},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    list_id: Mapped[int] = mapped_column(ForeignKey("lead_lists.id", ondelete="CASCADE"))
    import_id: Mapped[int | None] = mapped_column(ForeignKey("import_runs.id", ondelete="SET NULL"))
    source_row: Mapped[int | None]
    phone_e164: Mapped[str] = mapped_column(String(20))
    phone_type: Mapped[str] = mapped_column(String(24))
    region: Mapped[str] = mapped_column(String(2))
    state: Mapped[str | None] = mapped_column(String(2))
    time_zones: Mapped[list[str]] = mapped_column(default=list)
    first_name: Mapped[str | None] = mapped_column(String(120))
    last_name: Mapped[str | None] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(254))
    account_ref: Mapped[str | None] = mapped_column(String(80))
    balance: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    due_date: Mapped[dt.date | None]
    appointment_at: Mapped[dt.datetime | None]
    custom_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="new")
    attempts: Mapped[int] = mapped_column(default=0)
    next_dial_at: Mapped[dt.datetime | None]
    last_dialed_at: Mapped[dt.datetime | None]
    last_outcome: Mapped[str | None] = mapped_column(String(20))
    priority: Mapped[int] = mapped_column(default=0)
    consent_automated: Mapped[bool] = mapped_column(default=False)
    consent_at: Mapped[dt.datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_at: Mapped[dt.datetime | None]
    # A personal callback: dialled only for this agent (a user id), when they are ready. No
    # foreign key: SQLite would have to rebuild the table to add one, and the callbacks job
    # hands the callbacks of a removed or inactive agent to the whole campaign.
    callback_agent_id: Mapped[int | None]
    closed_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


# A call's debt, for Regulation F: its account, else its number.
DEBT_KEY_SQL = text("coalesce(account_ref, phone_e164)")


class CallAttempt(Base):
    __tablename__ = "call_attempts"
    __table_args__ = (
        # Covering: the 30-day abandon counts and a day's dials per lead read the index alone
        # (migration 0007_why).
        Index(
            "ix_call_attempts_campaign_started",
            "campaign_id",
            "started_at",
            "outcome",
            "abandoned",
            "lead_id",
        ),
        # Regulation F's week of calls per debt, whatever the campaign (migration 0007_why).
        Index("ix_call_attempts_debt", "started_at", "account_ref", "phone_e164", "conversation"),
        # The calls about one debt (the account, else the number), latest first: the triggers
        # that keep `reg_f_debts` read the seventh latest from it (migration 0015_regf).
        Index("ix_call_attempts_debt_key", DEBT_KEY_SQL, "started_at", "conversation"),
        Index("ix_call_attempts_lead_started", "lead_id", "started_at"),
        # Call detail of one agent: only the attempts an agent took are in it.
        Index(
            "ix_call_attempts_agent_started",
            "agent_id",
            "started_at",
            postgresql_where=text("agent_id IS NOT NULL"),
            sqlite_where=text("agent_id IS NOT NULL"),
        ),
        CheckConstraint(
            _in("dial_mode", ("automatic", "manual", "preview", "callback")), name="dial_mode"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    phone_e164: Mapped[str] = mapped_column(String(20))
    account_ref: Mapped[str | None] = mapped_column(String(80))
    node: Mapped[str | None] = mapped_column(String(80))
    worker: Mapped[int | None]
    trunk_name: Mapped[str | None] = mapped_column(String(80))
    dial_mode: Mapped[str] = mapped_column(String(20), default="automatic")
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[dt.datetime | None]
    ended_at: Mapped[dt.datetime | None]
    sip_code: Mapped[int | None]
    sip_reason: Mapped[str | None] = mapped_column(String(120))
    outcome: Mapped[str | None] = mapped_column(String(20))
    amd_verdict: Mapped[str | None] = mapped_column(String(20))
    amd_ms: Mapped[int | None]
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    connect_delay_ms: Mapped[int | None]
    # When the customer and the agent could hear each other: talk time runs from here.
    bridged_at: Mapped[dt.datetime | None]
    abandoned: Mapped[bool] = mapped_column(default=False)
    safe_harbor_played: Mapped[bool] = mapped_column(default=False)
    conversation: Mapped[bool] = mapped_column(default=False)
    recording_path: Mapped[str | None] = mapped_column(String(500))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    # What an agentless IVR flow made of the call (`dialer.calls`: completed, partial,
    # no_input, confirmed, rescheduled, cancelled, agent ...): the lead's recycling rule.
    ivr_result: Mapped[str | None] = mapped_column(String(40))
    # The number the called party saw (`campaigns.callerids`: a pool number of their area
    # code or state, else the campaign's or the trunk's caller ID).
    caller_id: Mapped[str | None] = mapped_column(String(20))


class RegFDebt(Base):
    """Regulation F's state of a debt called seven times or more, or talked about, whatever the
    campaign: the seventh latest of its calls (the cap of 7 calls in 7 days holds while it is
    less than a week old) and its latest conversation (7 quiet days follow it). Kept by
    triggers on `call_attempts` (migration 0015_regf) that read the debt's calls from
    `ix_call_attempts_debt_key`: "why is nothing dialing" reads the debts that matter at a
    million leads without grouping a week of calls."""

    __tablename__ = "reg_f_debts"
    __table_args__ = (
        Index("ix_reg_f_debts_seventh", "seventh_dial_at"),
        Index("ix_reg_f_debts_conversation", "last_conversation_at"),
    )

    debt: Mapped[str] = mapped_column(String(80), primary_key=True)
    seventh_dial_at: Mapped[dt.datetime | None]
    last_conversation_at: Mapped[dt.datetime | None]


# The terms of the 30-day abandon rule (47 CFR 64.1200(a)(7)) as attempts record them: a live
# answer is a person who answered, whether an agent took the call or it was abandoned.
ABANDONED: ColumnElement[bool] = CallAttempt.abandoned.is_(True)
LIVE_ANSWER: ColumnElement[bool] = or_(CallAttempt.outcome == "human", ABANDONED)


class DispositionCode(Base):
    """A campaign's catalogue of what an agent may record at the end of a call."""

    __tablename__ = "disposition_codes"
    __table_args__ = (UniqueConstraint("campaign_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(120))
    final_status: Mapped[str | None] = mapped_column(String(20))
    retry_after_s: Mapped[int | None]
    # Regulation F: a conversation about the debt blocks calls for 7 days.
    is_conversation: Mapped[bool] = mapped_column(default=False)
    is_opt_out: Mapped[bool] = mapped_column(default=False)


class Disposition(Base):
    __tablename__ = "dispositions"
    __table_args__ = (
        # An attempt's disposition (call detail, the ledger's "dispositioned during the call").
        Index("ix_dispositions_attempt", "attempt_id"),
        # Dispositions of a period (the hourly roll-up and the hour not rolled up yet).
        Index("ix_dispositions_created", "created_at"),
        CheckConstraint(_in("party", PARTIES), name="party"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int | None] = mapped_column(
        ForeignKey("call_attempts.id", ondelete="SET NULL")
    )
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"), index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    code: Mapped[str] = mapped_column(String(40))
    notes: Mapped[str] = mapped_column(Text, default="")
    promise_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    promise_date: Mapped[dt.date | None]
    # Collections: who the agent confirmed they spoke with (PARTIES); None elsewhere.
    party: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Callback(Base):
    __tablename__ = "callbacks"
    __table_args__ = (
        CheckConstraint(_in("status", ("pending", "done", "cancelled")), name="status"),
        Index("ix_callbacks_due", "campaign_id", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    due_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(20), default="pending")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DncEntry(Base):
    __tablename__ = "dnc_entries"
    __table_args__ = (
        UniqueConstraint("phone_e164", "scope", "campaign_id"),
        CheckConstraint(_in("scope", ("global", "campaign")), name="scope"),
        CheckConstraint(
            "(scope = 'global' AND campaign_id IS NULL) OR "
            "(scope = 'campaign' AND campaign_id IS NOT NULL)",
            name="scope_campaign",
        ),
        Index("ix_dnc_entries_phone", "phone_e164"),
        # Opt-outs of a period (compliance report) among millions of imported numbers.
        Index("ix_dnc_entries_source_created", "source", "created_at"),
        # The do-not-call page, newest first, a page at a time (migration 0014_benchconsole).
        Index("ix_dnc_entries_created", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_e164: Mapped[str] = mapped_column(String(20))
    scope: Mapped[str] = mapped_column(String(10), default="global")
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(40), default="manual")
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime | None]


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default="agent")
    sip_uri: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    # An IANA zone name: the console shows every time in it.
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    # Set for a password someone else chose (the first admin's, a reset by an admin).
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(80))
    entity: Mapped[str] = mapped_column(String(80))
    entity_id: Mapped[str | None] = mapped_column(String(80))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Node(Base):
    """A running dialer node, as its heartbeat tells (ARCHITECTURE §3a)."""

    __tablename__ = "nodes"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    version: Mapped[str] = mapped_column(String(40))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    stopping: Mapped[bool] = mapped_column(default=False)


class CampaignRun(Base):
    """What a node is doing with a campaign, written by the node every second: the console and
    `dialer status` read it (the asked state is `campaigns.status`)."""

    __tablename__ = "campaign_runs"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    node: Mapped[str] = mapped_column(String(80), primary_key=True)
    state: Mapped[str] = mapped_column(String(20))
    detail: Mapped[str] = mapped_column(Text, default="")
    dial_mode: Mapped[str] = mapped_column(String(20))
    # Calls placed per agent ready or about to be: what a manager calls the dial level.
    dial_level: Mapped[float] = mapped_column(default=0.0)
    lines: Mapped[int] = mapped_column(default=0)
    ringing: Mapped[int] = mapped_column(default=0)
    up: Mapped[int] = mapped_column(default=0)
    waiting: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AgentGroup(Base):
    """Agents who may work the same campaigns."""

    __tablename__ = "agent_groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)


class AgentGroupMember(Base):
    __tablename__ = "agent_group_members"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("agent_groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )


class CampaignAgentGroup(Base):
    __tablename__ = "campaign_agent_groups"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(
        ForeignKey("agent_groups.id", ondelete="CASCADE"), primary_key=True
    )


class AgentSession(Base):
    """An agent's live state, in the database so that the console, the API and every node see
    one truth. The node that owns the session (`node`) moves it between reserved, on_call and
    wrap_up; the agent (through `campaigns.agents`) between logged_out, ready and paused."""

    __tablename__ = "agent_sessions"
    __table_args__ = (
        CheckConstraint(_in("state", AGENT_STATES), name="state"),
        Index("ix_agent_sessions_campaign_state", "campaign_id", "state"),
    )

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    node: Mapped[str | None] = mapped_column(String(80))
    state: Mapped[str] = mapped_column(String(20), default="logged_out")
    state_since: Mapped[dt.datetime] = mapped_column(default=utcnow)
    pause_code: Mapped[str | None] = mapped_column(String(40))
    # A pause asked during a call, taken when the call is dispositioned.
    pause_after_call: Mapped[str | None] = mapped_column(String(40))
    phone_uri: Mapped[str | None] = mapped_column(String(255))
    current_attempt_id: Mapped[int | None] = mapped_column(
        ForeignKey("call_attempts.id", ondelete="SET NULL")
    )
    # What the agent's screen shows of the current call: lead fields, local time, why it was
    # dialled, the campaign's script with the fields filled in.
    screen_pop: Mapped[dict[str, Any]] = mapped_column(default=dict)
    wrap_deadline: Mapped[dt.datetime | None]
    logged_in_at: Mapped[dt.datetime | None]
    calls_taken: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class NodeCommand(Base):
    """A command for the node that owns an agent's session (hang up, transfer, dial): the
    console and the API write it, the node carries it out and records the result."""

    __tablename__ = "node_commands"
    __table_args__ = (
        CheckConstraint(_in("kind", NODE_COMMANDS), name="kind"),
        Index("ix_node_commands_pending", "node", "done_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    node: Mapped[str | None] = mapped_column(String(80))
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    args: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    done_at: Mapped[dt.datetime | None]
    error: Mapped[str | None] = mapped_column(Text)


class CampaignHour(Base):
    """A campaign's attempts summed per hour (UTC): reports, charts and the 30-day abandon
    figures read these instead of scanning months of attempts (the scheduler keeps them)."""

    __tablename__ = "campaign_hours"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[dt.datetime] = mapped_column(primary_key=True)
    attempts: Mapped[int] = mapped_column(default=0)
    human: Mapped[int] = mapped_column(default=0)
    machine: Mapped[int] = mapped_column(default=0)
    machine_message: Mapped[int] = mapped_column(default=0)
    busy: Mapped[int] = mapped_column(default=0)
    no_answer: Mapped[int] = mapped_column(default=0)
    invalid: Mapped[int] = mapped_column(default=0)
    congestion: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    live: Mapped[int] = mapped_column(default=0)
    abandoned: Mapped[int] = mapped_column(default=0)
    connected: Mapped[int] = mapped_column(default=0)
    talk_s: Mapped[float] = mapped_column(default=0.0)


class CampaignAnswerHour(Base):
    """A campaign's live answers and abandons per hour (UTC) of the calls' start, as the 30-day
    abandon rule counts them (`LIVE_ANSWER`, `ABANDONED`): kept by triggers on `call_attempts`
    whoever writes (migration 0016_window), so a claim reads the window's hours instead of
    every call in it."""

    __tablename__ = "campaign_answer_hours"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[dt.datetime] = mapped_column(primary_key=True)
    live: Mapped[int]
    abandoned: Mapped[int]


class AgentStateChange(Base):
    """Every change of an agent's state (or pause code), written by a database trigger on
    `agent_sessions` whoever makes it: the history reports read for talk, wrap and pause time."""

    __tablename__ = "agent_state_changes"
    __table_args__ = (Index("ix_agent_state_changes_user_at", "user_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(20))
    pause_code: Mapped[str | None] = mapped_column(String(40))
    at: Mapped[dt.datetime]


class GateRefusal(Base):
    """Dials the compliance gate refused, counted per campaign, hour (UTC) and reason: the
    compliance report shows them without replaying the gate."""

    __tablename__ = "gate_refusals"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[dt.datetime] = mapped_column(primary_key=True)
    reason: Mapped[str] = mapped_column(String(40), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


class ApiToken(Base):
    """A user's token for the REST API: shown once when made, stored as the SHA-256 of its
    secret. A request with it acts as its user, with the user's role at that moment."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    # The token's public part, in the token itself: the row is found by it, and the secret's
    # digest then compared in constant time.
    key: Mapped[str] = mapped_column(String(24), unique=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]


class AgentStateHour(Base):
    """Seconds each agent spent per hour (UTC) in each state and pause code, and how often they
    entered it (entries into on_call are calls): `campaigns.rollups` sums them from
    `agent_state_changes` for the agent performance report."""

    __tablename__ = "agent_state_hours"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[dt.datetime] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[str] = mapped_column(String(20), primary_key=True)
    # "" when the state has no code (a primary key column cannot be NULL).
    pause_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    seconds: Mapped[float] = mapped_column(default=0.0)
    entries: Mapped[int] = mapped_column(default=0)


class DispositionHour(Base):
    """Dispositions per campaign, hour (UTC) and code, with promises to pay: the campaign
    summary reads these instead of every disposition of the period (`campaigns.rollups`)."""

    __tablename__ = "disposition_hours"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[dt.datetime] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)
    promises: Mapped[int] = mapped_column(default=0)
    promised: Mapped[Decimal] = mapped_column(Numeric(16, 2), default=Decimal(0))


class RollupMark(Base):
    """How far a roll-up of `campaigns.rollups` has summed: every hour before `done_until` is
    final in its table."""

    __tablename__ = "rollup_marks"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    done_until: Mapped[dt.datetime]


# Campaign kinds' own data (ARCHITECTURE §1): survey questions and answers, appointment
# calendars. A survey's answers and an appointment's fate are written as the call goes, so a
# call cut half way keeps what it got.
SURVEY_ANSWER_STATUSES = ("answered", "no_input")
APPOINTMENT_STATUSES = ("booked", "confirmed", "cancelled")


class Survey(Base):
    """A campaign's survey as data: its questions, branches and messages, as
    `campaigns.surveys.SurveyDefinition` validates them (stored as its JSON form)."""

    __tablename__ = "surveys"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    definition: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SurveyAnswer(Base):
    """One question's answer by one lead on one call: the digits keyed (or chosen by the agent
    reading the survey), or no_input when no valid key came after the tries."""

    __tablename__ = "survey_answers"
    __table_args__ = (
        CheckConstraint(_in("status", SURVEY_ANSWER_STATUSES), name="status"),
        CheckConstraint(_in("source", ("ivr", "agent")), name="source"),
        UniqueConstraint("attempt_id", "question"),
        Index("ix_survey_answers_campaign_question", "campaign_id", "question"),
        Index("ix_survey_answers_lead", "lead_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    attempt_id: Mapped[int | None] = mapped_column(
        ForeignKey("call_attempts.id", ondelete="SET NULL")
    )
    question: Mapped[str] = mapped_column(String(40))
    digits: Mapped[str] = mapped_column(String(16), default="")
    status: Mapped[str] = mapped_column(String(20), default="answered")
    source: Mapped[str] = mapped_column(String(10), default="ivr")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AppointmentSlot(Base):
    """A time in a campaign's calendar that takes up to `capacity` appointments. `booked` is
    moved by one conditional UPDATE per booking, so two agents never overfill a slot."""

    __tablename__ = "appointment_slots"
    __table_args__ = (
        UniqueConstraint("campaign_id", "starts_at"),
        CheckConstraint("capacity >= 1", name="capacity"),
        CheckConstraint("booked >= 0 AND booked <= capacity", name="booked"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    starts_at: Mapped[dt.datetime]
    minutes: Mapped[int] = mapped_column(default=30)
    capacity: Mapped[int] = mapped_column(default=1)
    booked: Mapped[int] = mapped_column(default=0)


class Appointment(Base):
    """A lead's appointment in a slot, and what its reminder call made of it."""

    __tablename__ = "appointments"
    __table_args__ = (
        CheckConstraint(_in("status", APPOINTMENT_STATUSES), name="status"),
        Index("ix_appointments_campaign_lead", "campaign_id", "lead_id"),
        Index("ix_appointments_slot", "slot_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    slot_id: Mapped[int] = mapped_column(ForeignKey("appointment_slots.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20), default="booked")
    booked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    booked_attempt_id: Mapped[int | None] = mapped_column(
        ForeignKey("call_attempts.id", ondelete="SET NULL")
    )
    # The last reminder call: its attempt and what came of it (confirmed, rescheduled,
    # cancelled, agent, no_input, hung_up ...).
    reminder_attempt_id: Mapped[int | None] = mapped_column(
        ForeignKey("call_attempts.id", ondelete="SET NULL")
    )
    reminder_result: Mapped[str | None] = mapped_column(String(40))
    reminded_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CallerId(Base):
    """A number of a campaign's caller-ID pool: calls show one of the lead's own area code, else
    of their state (`campaigns.callerids`), at most `daily_cap` calls a day (None: no cap)."""

    __tablename__ = "caller_ids"
    __table_args__ = (
        UniqueConstraint("campaign_id", "phone_e164"),
        CheckConstraint("daily_cap IS NULL OR daily_cap >= 1", name="daily_cap"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    phone_e164: Mapped[str] = mapped_column(String(20))
    daily_cap: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CallerIdDay(Base):
    """A campaign's calls per caller ID and calendar day (the number's own day): dials, counted
    when the attempt row is written (the daily cap reads them), and calls ended and answered by
    a person, counted when the attempt ends (the answer-rate report reads them, never the
    attempts)."""

    __tablename__ = "caller_id_days"

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[dt.date] = mapped_column(primary_key=True)
    phone_e164: Mapped[str] = mapped_column(String(20), primary_key=True)
    dials: Mapped[int] = mapped_column(default=0)
    ended: Mapped[int] = mapped_column(default=0)
    live: Mapped[int] = mapped_column(default=0)
