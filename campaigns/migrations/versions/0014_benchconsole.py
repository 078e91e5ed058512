"""the console at a million leads (`dialer bench console`): lead search by the start of a
name through indexes on the folded names instead of reading every lead; a campaign's leads
counted per list and status from an index; the do-not-call page in date order from an index

Revision ID: 0014_benchconsole
Revises: 0010_kinds
Create Date: 2026-12-03 21:00:00.000000
"""

from alembic import op

revision = "0014_benchconsole"
down_revision = "0013_voicemail"
branch_labels = None
depends_on = None

# As campaigns.models.folded compiles: PostgreSQL compares the folded names byte for byte.
FOLDED = {
    "sqlite": "lower({column})",
    "postgresql": '(lower({column}) COLLATE "C")',
}
NAME_INDEXES = {"ix_leads_last_name": "last_name", "ix_leads_first_name": "first_name"}


def upgrade() -> None:
    folded = FOLDED[op.get_bind().dialect.name]
    for name, column in NAME_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON leads ({folded.format(column=column)})")
    op.create_index("ix_leads_campaign_list_status", "leads", ["campaign_id", "list_id", "status"])
    op.create_index("ix_dnc_entries_created", "dnc_entries", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_dnc_entries_created", table_name="dnc_entries")
    op.drop_index("ix_leads_campaign_list_status", table_name="leads")
    for name in NAME_INDEXES:
        op.drop_index(name, table_name="leads")
