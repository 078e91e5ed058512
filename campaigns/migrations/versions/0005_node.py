"""the node's live state: nodes, campaign runs, agent groups and sessions, node commands,
hourly campaign figures; campaign settings for lines, wrap-up and pauses; personal callbacks

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 18:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

from campaigns.models import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

STATUSES_BEFORE = "status IN ('draft', 'active', 'paused', 'finished')"
STATUSES = "status IN ('draft', 'active', 'paused', 'stopped', 'finished')"
PAUSE_CODES = '["BREAK", "LUNCH", "TRAINING", "MEETING", "ADMIN"]'
CATALOGUE_ENTRY = (
    "INSERT INTO disposition_codes "
    "(campaign_id, code, label, final_status, retry_after_s, is_conversation, is_opt_out) "
    "SELECT id, 'NO_DISPOSITION', 'No disposition (wrap-up timed out)', NULL, NULL, {true}, "
    "{false} FROM campaigns"
)


# Every change of an agent's state or pause code lands in agent_state_changes, whoever makes
# it (a node, the console, the API): one trigger rather than a line in every writer.
_LOGGED = (
    "INSERT INTO agent_state_changes (user_id, campaign_id, state, pause_code, at) "
    "VALUES (NEW.user_id, NEW.campaign_id, NEW.state, NEW.pause_code, NEW.state_since)"
)
STATE_LOG_TRIGGERS = {
    "sqlite": (
        f"CREATE TRIGGER agent_sessions_logged_insert AFTER INSERT ON agent_sessions "
        f"BEGIN {_LOGGED}; END",
        "CREATE TRIGGER agent_sessions_logged_update AFTER UPDATE OF state, pause_code "
        "ON agent_sessions WHEN OLD.state IS NOT NEW.state "
        f"OR OLD.pause_code IS NOT NEW.pause_code BEGIN {_LOGGED}; END",
    ),
    "postgresql": (
        "CREATE FUNCTION agent_sessions_logged() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN IF TG_OP = 'INSERT' OR OLD.state IS DISTINCT FROM NEW.state "
        f"OR OLD.pause_code IS DISTINCT FROM NEW.pause_code THEN {_LOGGED}; END IF; "
        "RETURN NEW; END $$",
        "CREATE TRIGGER agent_sessions_logged AFTER INSERT OR UPDATE ON agent_sessions "
        "FOR EACH ROW EXECUTE FUNCTION agent_sessions_logged()",
    ),
}
STATE_LOG_DROPS = {
    "sqlite": (
        "DROP TRIGGER agent_sessions_logged_insert",
        "DROP TRIGGER agent_sessions_logged_update",
    ),
    "postgresql": (
        "DROP TRIGGER agent_sessions_logged ON agent_sessions",
        "DROP FUNCTION agent_sessions_logged()",
    ),
}


def upgrade() -> None:
    op.create_table(
        "agent_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_groups")),
        sa.UniqueConstraint("name", name=op.f("uq_agent_groups_name")),
    )
    op.create_table(
        "nodes",
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("stopping", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_nodes")),
    )
    op.create_table(
        "agent_group_members",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["agent_groups.id"],
            name=op.f("fk_agent_group_members_group_id_agent_groups"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_agent_group_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("group_id", "user_id", name=op.f("pk_agent_group_members")),
    )
    op.create_table(
        "campaign_agent_groups",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_agent_groups_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["agent_groups.id"],
            name=op.f("fk_campaign_agent_groups_group_id_agent_groups"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "group_id", name=op.f("pk_campaign_agent_groups")),
    )
    op.create_table(
        "campaign_hours",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("hour", UTCDateTime(timezone=True), nullable=False),
        *(
            sa.Column(name, sa.Integer(), nullable=False)
            for name in (
                "attempts",
                "human",
                "machine",
                "busy",
                "no_answer",
                "invalid",
                "congestion",
                "failed",
                "live",
                "abandoned",
                "connected",
            )
        ),
        sa.Column("talk_s", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_hours_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "hour", name=op.f("pk_campaign_hours")),
    )
    op.create_table(
        "campaign_runs",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=80), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("dial_mode", sa.String(length=20), nullable=False),
        sa.Column("dial_level", sa.Double(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("ringing", sa.Integer(), nullable=False),
        sa.Column("up", sa.Integer(), nullable=False),
        sa.Column("waiting", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_runs_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "node", name=op.f("pk_campaign_runs")),
    )
    op.create_table(
        "node_commands",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=80), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("done_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "kind IN ('hangup', 'transfer', 'dial')", name=op.f("ck_node_commands_kind")
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["users.id"],
            name=op.f("fk_node_commands_agent_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_node_commands_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node_commands")),
    )
    op.create_index("ix_node_commands_pending", "node_commands", ["node", "done_at"])
    op.create_table(
        "agent_sessions",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("node", sa.String(length=80), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("state_since", UTCDateTime(timezone=True), nullable=False),
        sa.Column("pause_code", sa.String(length=40), nullable=True),
        sa.Column("pause_after_call", sa.String(length=40), nullable=True),
        sa.Column("phone_uri", sa.String(length=255), nullable=True),
        sa.Column("current_attempt_id", sa.Integer(), nullable=True),
        sa.Column("screen_pop", sa.JSON(), nullable=False),
        sa.Column("wrap_deadline", UTCDateTime(timezone=True), nullable=True),
        sa.Column("logged_in_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("calls_taken", sa.Integer(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('logged_out', 'ready', 'reserved', 'on_call', 'wrap_up', 'paused')",
            name=op.f("ck_agent_sessions_state"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_agent_sessions_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["current_attempt_id"],
            ["call_attempts.id"],
            name=op.f("fk_agent_sessions_current_attempt_id_call_attempts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_agent_sessions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_agent_sessions")),
    )
    op.create_index("ix_agent_sessions_campaign_state", "agent_sessions", ["campaign_id", "state"])
    op.create_table(
        "agent_state_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("pause_code", sa.String(length=40), nullable=True),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_agent_state_changes_campaign_id_campaigns"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_agent_state_changes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agent_state_changes")),
    )
    op.create_index("ix_agent_state_changes_user_at", "agent_state_changes", ["user_id", "at"])
    op.create_table(
        "gate_refusals",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("hour", UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_gate_refusals_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "hour", "reason", name=op.f("pk_gate_refusals")),
    )
    for statement in STATE_LOG_TRIGGERS[op.get_bind().dialect.name]:
        op.execute(statement)
    op.add_column(
        "call_attempts", sa.Column("bridged_at", UTCDateTime(timezone=True), nullable=True)
    )
    sqlite = op.get_bind().dialect.name == "sqlite"
    # SQLite cannot change a CHECK constraint in place: the table is rebuilt (foreign keys are
    # off for SQLite migrations, see migrations/env.py, or dropping the old table would cascade).
    with op.batch_alter_table("campaigns", recreate="always" if sqlite else "auto") as batch:
        batch.add_column(sa.Column("max_lines", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("wrapup_timeout_s", sa.Integer(), nullable=False, server_default="120")
        )
        batch.add_column(
            sa.Column(
                "default_disposition",
                sa.String(length=40),
                nullable=False,
                server_default="NO_DISPOSITION",
            )
        )
        batch.add_column(
            sa.Column("pause_codes", sa.JSON(), nullable=False, server_default=PAUSE_CODES)
        )
        for flag in ("auto_schedule", "schedule_paused"):
            batch.add_column(
                sa.Column(flag, sa.Boolean(), nullable=False, server_default=sa.false())
            )
        batch.drop_constraint(op.f("ck_campaigns_status"), type_="check")
        batch.create_check_constraint(op.f("ck_campaigns_status"), sa.text(STATUSES))
        batch.create_check_constraint(op.f("ck_campaigns_max_lines"), sa.text("max_lines >= 0"))
        batch.create_check_constraint(
            op.f("ck_campaigns_wrapup_timeout"), sa.text("wrapup_timeout_s >= 5")
        )
    with op.batch_alter_table("campaigns") as batch:
        for column in (
            "max_lines",
            "wrapup_timeout_s",
            "default_disposition",
            "pause_codes",
            "auto_schedule",
            "schedule_paused",
        ):
            batch.alter_column(column, server_default=None)
    op.add_column("leads", sa.Column("callback_agent_id", sa.Integer(), nullable=True))
    true, false = ("1", "0") if sqlite else ("true", "false")
    op.execute(CATALOGUE_ENTRY.format(true=true, false=false))


def downgrade() -> None:
    op.execute("DELETE FROM disposition_codes WHERE code = 'NO_DISPOSITION'")
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.drop_column("leads", "callback_agent_id")
    op.execute("UPDATE campaigns SET status = 'paused' WHERE status = 'stopped'")
    with op.batch_alter_table("campaigns", recreate="always" if sqlite else "auto") as batch:
        batch.drop_constraint(op.f("ck_campaigns_wrapup_timeout"), type_="check")
        batch.drop_constraint(op.f("ck_campaigns_max_lines"), type_="check")
        batch.drop_constraint(op.f("ck_campaigns_status"), type_="check")
        batch.create_check_constraint(op.f("ck_campaigns_status"), sa.text(STATUSES_BEFORE))
        for column in (
            "schedule_paused",
            "auto_schedule",
            "pause_codes",
            "default_disposition",
            "wrapup_timeout_s",
            "max_lines",
        ):
            batch.drop_column(column)
    op.drop_column("call_attempts", "bridged_at")
    for statement in STATE_LOG_DROPS[op.get_bind().dialect.name]:
        op.execute(statement)
    for table in (
        "gate_refusals",
        "agent_state_changes",
        "agent_sessions",
        "node_commands",
        "campaign_runs",
        "campaign_hours",
        "campaign_agent_groups",
        "agent_group_members",
        "nodes",
        "agent_groups",
    ):
        op.drop_table(table)
