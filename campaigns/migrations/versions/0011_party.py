"""who a collections agent spoke with, stored with the disposition (right party, wrong party,
third party)

Revision ID: 0011_party
Revises: 0010_kinds
Create Date: 2026-12-03 21:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_party"
down_revision = "0010_kinds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dispositions") as batch:
        batch.add_column(sa.Column("party", sa.String(length=10), nullable=True))
        batch.create_check_constraint(
            op.f("ck_dispositions_party"), "party IN ('right', 'wrong', 'third')"
        )


def downgrade() -> None:
    with op.batch_alter_table("dispositions") as batch:
        batch.drop_constraint(op.f("ck_dispositions_party"), type_="check")
        batch.drop_column("party")
