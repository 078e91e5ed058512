"""caller IDs: a campaign's pool of numbers (local presence, a daily cap each), the number each
attempt showed, and calls per caller ID and day (the cap and the answer-rate report)

Revision ID: 0012_callerid
Revises: 0010_kinds
Create Date: 2026-12-03 21:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

from campaigns.models import UTCDateTime

revision = "0012_callerid"
down_revision = "0011_party"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("call_attempts", sa.Column("caller_id", sa.String(length=20), nullable=True))
    op.create_table(
        "caller_ids",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("phone_e164", sa.String(length=20), nullable=False),
        sa.Column("daily_cap", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "daily_cap IS NULL OR daily_cap >= 1", name=op.f("ck_caller_ids_daily_cap")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_caller_ids_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caller_ids")),
        sa.UniqueConstraint(
            "campaign_id", "phone_e164", name=op.f("uq_caller_ids_campaign_id_phone_e164")
        ),
    )
    op.create_table(
        "caller_id_days",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("phone_e164", sa.String(length=20), nullable=False),
        sa.Column("dials", sa.Integer(), nullable=False),
        sa.Column("ended", sa.Integer(), nullable=False),
        sa.Column("live", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_caller_id_days_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "day", "phone_e164", name=op.f("pk_caller_id_days")),
    )


def downgrade() -> None:
    op.drop_table("caller_id_days")
    op.drop_table("caller_ids")
    with op.batch_alter_table("call_attempts") as batch:
        batch.drop_column("caller_id")
