"""voicemail drop: what a campaign does when an answering machine picks up (hang up, or leave
its voicemail message after the beep), and the hourly count of messages left

Revision ID: 0013_voicemail
Revises: 0010_kinds
Create Date: 2026-12-03 21:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_voicemail"
down_revision = "0012_callerid"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch: SQLite adds a check constraint only by rebuilding the table.
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(
            sa.Column("amd_action", sa.String(length=10), nullable=False, server_default="hangup")
        )
        batch.add_column(
            sa.Column("voicemail_message", sa.Text(), nullable=False, server_default="")
        )
        batch.create_check_constraint(
            op.f("ck_campaigns_amd_action"), "amd_action IN ('hangup', 'message')"
        )
    # The hourly sums count the attempts that left a message apart from the other machines.
    op.add_column(
        "campaign_hours",
        sa.Column("machine_message", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )


def downgrade() -> None:
    with op.batch_alter_table("campaign_hours") as batch:
        batch.drop_column("machine_message")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_constraint(op.f("ck_campaigns_amd_action"), type_="check")
        batch.drop_column("voicemail_message")
        batch.drop_column("amd_action")
