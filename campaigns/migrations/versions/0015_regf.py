"""Regulation F's state per debt kept as calls are written: `reg_f_debts` holds, for each debt
called seven times or more or talked about, the seventh latest of its calls and its latest
conversation, refreshed by triggers on `call_attempts` from a new index on the debt; "why is
nothing dialing" reads them instead of grouping a week of calls

Revision ID: 0015_regf
Revises: 0014_benchconsole
Create Date: 2026-12-04 05:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0015_regf"
down_revision = "0014_benchconsole"
branch_labels = None
depends_on = None

DEBT = "coalesce(account_ref, phone_e164)"


def _state(key: str) -> str:
    """The debt `key`'s row as its calls make it, read from `ix_call_attempts_debt_key` alone:
    written when there is something to keep or a row to change."""
    return f"""
    INSERT INTO reg_f_debts (debt, seventh_dial_at, last_conversation_at)
    SELECT debt_state.debt, debt_state.seventh, debt_state.talk FROM (
        SELECT {key} AS debt,
            (SELECT started_at FROM call_attempts WHERE {DEBT} = {key}
             ORDER BY started_at DESC LIMIT 1 OFFSET 6) AS seventh,
            (SELECT started_at FROM call_attempts WHERE {DEBT} = {key} AND conversation
             ORDER BY started_at DESC LIMIT 1) AS talk
    ) AS debt_state
    WHERE seventh IS NOT NULL OR talk IS NOT NULL
        OR EXISTS (SELECT 1 FROM reg_f_debts WHERE reg_f_debts.debt = debt_state.debt)
    ON CONFLICT (debt) DO UPDATE
        SET seventh_dial_at = excluded.seventh_dial_at,
            last_conversation_at = excluded.last_conversation_at
    """


# SQLite: triggers per row. (The WHERE clause also tells SQLite's parser that ON CONFLICT
# belongs to the INSERT.)
NEW_DEBT = "coalesce(NEW.account_ref, NEW.phone_e164)"
SQLITE_TRIGGERS = (
    f"""
    CREATE TRIGGER call_attempts_reg_f AFTER INSERT ON call_attempts
    BEGIN {_state(NEW_DEBT)}; END
    """,
    f"""
    CREATE TRIGGER call_attempts_reg_f_talk AFTER UPDATE OF conversation ON call_attempts
    WHEN OLD.conversation IS NOT NEW.conversation
    BEGIN {_state(NEW_DEBT)}; END
    """,
)

# PostgreSQL: inserts by statement, over the rows inserted (a bulk insert is one pass);
# a conversation recorded by row (transition tables take no column list).
POSTGRES = (
    f"""
    CREATE FUNCTION reg_f_refresh(keys text[]) RETURNS void LANGUAGE sql AS $$
    {_state("keyed.debt").replace("FROM (", "FROM unnest(keys) AS keyed(debt), LATERAL (", 1)}
    $$
    """,
    f"""
    CREATE FUNCTION call_attempts_reg_f() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM reg_f_refresh(ARRAY(SELECT DISTINCT {DEBT} FROM inserted));
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER call_attempts_reg_f AFTER INSERT ON call_attempts
    REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION call_attempts_reg_f()
    """,
    f"""
    CREATE FUNCTION call_attempts_reg_f_talk() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM reg_f_refresh(ARRAY[{NEW_DEBT}]);
        RETURN NULL;
    END
    $$
    """,
    """
    CREATE TRIGGER call_attempts_reg_f_talk AFTER UPDATE OF conversation ON call_attempts
    FOR EACH ROW WHEN (OLD.conversation IS DISTINCT FROM NEW.conversation)
    EXECUTE FUNCTION call_attempts_reg_f_talk()
    """,
)

BACKFILL = f"""
INSERT INTO reg_f_debts (debt, seventh_dial_at, last_conversation_at)
SELECT debt, max(CASE WHEN latest = 7 THEN started_at END), max(CASE WHEN conversation
    THEN started_at END)
FROM (
    SELECT {DEBT} AS debt, started_at, conversation,
        row_number() OVER (PARTITION BY {DEBT} ORDER BY started_at DESC) AS latest
    FROM call_attempts
) AS ranked
GROUP BY debt
HAVING max(latest) >= 7 OR max(CASE WHEN conversation THEN 1 ELSE 0 END) = 1
"""


def upgrade() -> None:
    op.execute(
        f"CREATE INDEX ix_call_attempts_debt_key ON call_attempts ({DEBT}, started_at, conversation)"
    )
    op.create_table(
        "reg_f_debts",
        sa.Column("debt", sa.String(80), primary_key=True),
        sa.Column("seventh_dial_at", sa.DateTime(timezone=True)),
        sa.Column("last_conversation_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_reg_f_debts_seventh", "reg_f_debts", ["seventh_dial_at"])
    op.create_index("ix_reg_f_debts_conversation", "reg_f_debts", ["last_conversation_at"])
    op.execute(BACKFILL)
    for statement in SQLITE_TRIGGERS if _sqlite() else POSTGRES:
        op.execute(statement)


def downgrade() -> None:
    for trigger in ("call_attempts_reg_f", "call_attempts_reg_f_talk"):
        op.execute(f"DROP TRIGGER {trigger}" + ("" if _sqlite() else " ON call_attempts"))
    if not _sqlite():
        for function in ("call_attempts_reg_f()", "call_attempts_reg_f_talk()"):
            op.execute(f"DROP FUNCTION {function}")
        op.execute("DROP FUNCTION reg_f_refresh(text[])")
    op.drop_table("reg_f_debts")
    op.drop_index("ix_call_attempts_debt_key", table_name="call_attempts")


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"
