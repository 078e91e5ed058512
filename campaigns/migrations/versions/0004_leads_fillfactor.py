"""room on each page of leads for the new versions of its rows (PostgreSQL)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 18:20:00.000000
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# A claim rewrites the lead's row (its status is in the hopper indexes, so the update cannot be
# HOT). On a full page the new version goes to whichever page has room, one more page read and
# written (a full-page image after a checkpoint) per claimed lead; with room it stays on the
# page the claim has already locked. Pages written from now on keep it; existing ones gain it
# when the table is rewritten (VACUUM FULL, pg_repack).
FILLFACTOR = 90


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER TABLE leads SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE leads RESET (fillfactor)")
