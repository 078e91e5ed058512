"""the console: each user's time zone and forced password change; an import's expected rows

Revision ID: 0006_console
Revises: 0005
Create Date: 2026-11-26 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_console"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Times are shown in each user's own zone; existing users start in UTC.
    op.add_column(
        "users",
        sa.Column("time_zone", sa.String(length=64), nullable=False, server_default="UTC"),
    )
    # A password someone else chose (the first admin's, a reset) is changed at the next login.
    op.add_column(
        "users",
        sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    # The console's progress bar: rows counted in the file before the import starts.
    op.add_column("import_runs", sa.Column("expected_rows", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("import_runs") as batch:
        batch.drop_column("expected_rows")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("must_change_password")
        batch.drop_column("time_zone")
