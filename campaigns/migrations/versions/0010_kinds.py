"""campaign kinds: surveys (questions as data, answers per question per lead), appointment
calendars (slots with capacity, appointments and their reminders), agentless campaigns, and
what an IVR flow made of each attempt

Revision ID: 0010_kinds
Revises: 0009_api
Create Date: 2026-12-12 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

from campaigns.models import UTCDateTime

revision = "0010_kinds"
down_revision = "0009_api"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "campaigns",
        sa.Column("agentless", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("call_attempts", sa.Column("ivr_result", sa.String(length=40), nullable=True))
    op.create_table(
        "surveys",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_surveys_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", name=op.f("pk_surveys")),
    )
    op.create_table(
        "survey_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("attempt_id", sa.Integer(), nullable=True),
        sa.Column("question", sa.String(length=40), nullable=False),
        sa.Column("digits", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('answered', 'no_input')", name=op.f("ck_survey_answers_status")
        ),
        sa.CheckConstraint("source IN ('ivr', 'agent')", name=op.f("ck_survey_answers_source")),
        sa.ForeignKeyConstraint(
            ["attempt_id"],
            ["call_attempts.id"],
            name=op.f("fk_survey_answers_attempt_id_call_attempts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_survey_answers_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_survey_answers_lead_id_leads"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_answers")),
        sa.UniqueConstraint(
            "attempt_id", "question", name=op.f("uq_survey_answers_attempt_id_question")
        ),
    )
    op.create_index(
        "ix_survey_answers_campaign_question", "survey_answers", ["campaign_id", "question"]
    )
    op.create_index("ix_survey_answers_lead", "survey_answers", ["lead_id"])
    op.create_table(
        "appointment_slots",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("booked", sa.Integer(), nullable=False),
        sa.CheckConstraint("capacity >= 1", name=op.f("ck_appointment_slots_capacity")),
        sa.CheckConstraint(
            "booked >= 0 AND booked <= capacity", name=op.f("ck_appointment_slots_booked")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_appointment_slots_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment_slots")),
        sa.UniqueConstraint(
            "campaign_id", "starts_at", name=op.f("uq_appointment_slots_campaign_id_starts_at")
        ),
    )
    op.create_table(
        "appointments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.Integer(), nullable=False),
        sa.Column("slot_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("booked_by", sa.Integer(), nullable=True),
        sa.Column("booked_attempt_id", sa.Integer(), nullable=True),
        sa.Column("reminder_attempt_id", sa.Integer(), nullable=True),
        sa.Column("reminder_result", sa.String(length=40), nullable=True),
        sa.Column("reminded_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('booked', 'confirmed', 'cancelled')", name=op.f("ck_appointments_status")
        ),
        sa.ForeignKeyConstraint(
            ["booked_attempt_id"],
            ["call_attempts.id"],
            name=op.f("fk_appointments_booked_attempt_id_call_attempts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["booked_by"],
            ["users.id"],
            name=op.f("fk_appointments_booked_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_appointments_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_appointments_lead_id_leads"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reminder_attempt_id"],
            ["call_attempts.id"],
            name=op.f("fk_appointments_reminder_attempt_id_call_attempts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["slot_id"],
            ["appointment_slots.id"],
            name=op.f("fk_appointments_slot_id_appointment_slots"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointments")),
    )
    op.create_index("ix_appointments_campaign_lead", "appointments", ["campaign_id", "lead_id"])
    op.create_index("ix_appointments_slot", "appointments", ["slot_id"])


def downgrade() -> None:
    op.drop_index("ix_appointments_slot", table_name="appointments")
    op.drop_index("ix_appointments_campaign_lead", table_name="appointments")
    op.drop_table("appointments")
    op.drop_table("appointment_slots")
    op.drop_index("ix_survey_answers_lead", table_name="survey_answers")
    op.drop_index("ix_survey_answers_campaign_question", table_name="survey_answers")
    op.drop_table("survey_answers")
    op.drop_table("surveys")
    with op.batch_alter_table("call_attempts") as batch:
        batch.drop_column("ivr_result")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("agentless")
