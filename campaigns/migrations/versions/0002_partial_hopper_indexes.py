"""hopper indexes hold only the leads they serve (PostgreSQL)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 15:50:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

HOPPER_COLUMNS = ["campaign_id", "status", sa.text("priority DESC"), "next_dial_at"]
DUE_COLUMNS = ["campaign_id", "status", "next_dial_at"]


def upgrade() -> None:
    # SQLite keeps full indexes: it meets its latency target with them, and its planner proves
    # a partial index's condition only from the very same terms in the query.
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_leads_hopper", table_name="leads")
    op.drop_index("ix_leads_due", table_name="leads")
    op.create_index(
        "ix_leads_hopper",
        "leads",
        HOPPER_COLUMNS,
        postgresql_where=sa.text("status IN ('new', 'recycled')"),
    )
    op.create_index(
        "ix_leads_due", "leads", DUE_COLUMNS, postgresql_where=sa.text("status = 'callback'")
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_leads_hopper", table_name="leads")
    op.drop_index("ix_leads_due", table_name="leads")
    op.create_index("ix_leads_hopper", "leads", HOPPER_COLUMNS)
    op.create_index("ix_leads_due", "leads", DUE_COLUMNS)
