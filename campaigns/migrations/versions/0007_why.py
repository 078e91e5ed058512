"""for "why is nothing dialing?": an index for the grouped scan of a campaign's leads (SQLite),
statistics on the same facts (PostgreSQL), leads by account and a week of calls per debt
(Regulation F), and the attempts' campaign-and-time index made covering for the 30-day counts

Revision ID: 0007_why
Revises: 0004
Create Date: 2026-12-03 18:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_why"
down_revision = "0006_console"
branch_labels = None
depends_on = None

# The facts the gate reads, in the order the explainer groups them, and the columns it counts
# by, so SQLite answers from the index alone and without a sort (1M leads: 0.25 s instead of
# 1.8 s). SQLite only: PostgreSQL groups a scan in a hash table as fast, and there every index
# on the status costs each claim an index entry (see ix_leads_hopper).
WHY_COLUMNS = [
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
]
HOPPER_STATUSES = sa.text("status IN ('new', 'recycled', 'callback')")


# PostgreSQL estimates a grouping it has no statistics for at 200 groups per column: 200,000
# for these, too many for a hash table in work_mem, so it sorted 800,000 leads on disk (1.5 s
# instead of 0.3 s). With the number of distinct combinations known it hashes them.
WHY_STATISTICS = (
    "CREATE STATISTICS leads_why (ndistinct) ON status, (time_zones::text), phone_type, "
    "consent_automated, state, attempts FROM leads"
)
# The 30-day abandon window (the hopper's and the explainer's counts) and a day's dials per
# lead (the state caps) from the index alone.
ATTEMPT_WINDOW = ["campaign_id", "started_at", "outcome", "abandoned", "lead_id"]
# Regulation F counts a week of calls per debt, whatever the campaign: read from the index alone.
DEBT_DIALS = ["started_at", "account_ref", "phone_e164", "conversation"]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.create_index("ix_leads_why", "leads", WHY_COLUMNS, sqlite_where=HOPPER_STATUSES)
    else:
        op.execute(WHY_STATISTICS)
        op.execute("ANALYZE leads")
    op.drop_index("ix_call_attempts_campaign_started", table_name="call_attempts")
    op.create_index("ix_call_attempts_campaign_started", "call_attempts", ATTEMPT_WINDOW)
    op.create_index("ix_call_attempts_debt", "call_attempts", DEBT_DIALS)
    with_account = sa.text("account_ref IS NOT NULL")
    op.create_index(
        "ix_leads_account",
        "leads",
        ["campaign_id", "account_ref"],
        postgresql_where=with_account,
        sqlite_where=with_account,
    )


def downgrade() -> None:
    op.drop_index("ix_call_attempts_debt", table_name="call_attempts")
    op.drop_index("ix_call_attempts_campaign_started", table_name="call_attempts")
    op.create_index(
        "ix_call_attempts_campaign_started", "call_attempts", ["campaign_id", "started_at"]
    )
    op.drop_index("ix_leads_account", table_name="leads")
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_leads_why", table_name="leads")
    else:
        op.execute("DROP STATISTICS IF EXISTS leads_why")
