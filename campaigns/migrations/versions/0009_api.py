"""the REST API's tokens; reports: hourly agent time and dispositions, and the indexes they read

Revision ID: 0009_api
Revises: 0007_why
Create Date: 2026-12-08 12:00:00.000000

Reports over months of attempts read hourly sums (campaign_hours, and the two tables made
here) and indexed ranges, never every attempt of the period:
- agent_state_hours: the agent performance report summed agent_state_changes (about 500 rows
  an agent a day) through a window function per view; now it reads one row per agent, hour,
  state and pause code.
- disposition_hours: the campaign summary counted every disposition of the period.
- Call detail without a campaign reads ix_call_attempts_debt (0007_why), which starts with the
  start time.
- ix_call_attempts_agent_started (attempts an agent took only): call detail of one agent.
- ix_dispositions_attempt: an attempt's disposition in call detail (and the ledger's look-up
  of a disposition recorded during the call, which scanned the table at every call's end).
- ix_dispositions_created: dispositions of an hour, for the roll-up and the hour not yet
  summed.
- ix_dnc_entries_source_created: opt-outs of a period among millions of imported numbers.
"""

import sqlalchemy as sa
from alembic import op

from campaigns.models import UTCDateTime

revision = "0009_api"
down_revision = "0007_why"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("key", sa.String(length=24), nullable=False),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_api_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("key", name=op.f("uq_api_tokens_key")),
    )
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"])
    op.create_table(
        "agent_state_hours",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("hour", UTCDateTime(timezone=True), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("pause_code", sa.String(length=40), nullable=False),
        sa.Column("seconds", sa.Double(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_agent_state_hours_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "user_id",
            "hour",
            "campaign_id",
            "state",
            "pause_code",
            name=op.f("pk_agent_state_hours"),
        ),
    )
    op.create_table(
        "disposition_hours",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("hour", UTCDateTime(timezone=True), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("promises", sa.Integer(), nullable=False),
        sa.Column("promised", sa.Numeric(precision=16, scale=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_disposition_hours_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "hour", "code", name=op.f("pk_disposition_hours")),
    )
    op.create_table(
        "rollup_marks",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("done_until", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_rollup_marks")),
    )
    op.create_index(
        "ix_call_attempts_agent_started",
        "call_attempts",
        ["agent_id", "started_at"],
        postgresql_where=sa.text("agent_id IS NOT NULL"),
        sqlite_where=sa.text("agent_id IS NOT NULL"),
    )
    op.create_index("ix_dispositions_attempt", "dispositions", ["attempt_id"])
    op.create_index("ix_dispositions_created", "dispositions", ["created_at"])
    op.create_index("ix_dnc_entries_source_created", "dnc_entries", ["source", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_dnc_entries_source_created", table_name="dnc_entries")
    op.drop_index("ix_dispositions_created", table_name="dispositions")
    op.drop_index("ix_dispositions_attempt", table_name="dispositions")
    op.drop_index("ix_call_attempts_agent_started", table_name="call_attempts")
    op.drop_table("rollup_marks")
    op.drop_table("disposition_hours")
    op.drop_table("agent_state_hours")
    op.drop_index(op.f("ix_api_tokens_user_id"), table_name="api_tokens")
    op.drop_table("api_tokens")
