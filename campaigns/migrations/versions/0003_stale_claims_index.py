"""an index of claimed leads by claim time, so release_stale does not read every lead

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 16:10:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    claimed = sa.text("status = 'claimed'")
    op.create_index(
        "ix_leads_claimed",
        "leads",
        ["claimed_at"],
        postgresql_where=claimed,
        sqlite_where=claimed,
    )


def downgrade() -> None:
    op.drop_index("ix_leads_claimed", table_name="leads")
