import datetime as dt
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campaigns import db
from campaigns.models import Base, Campaign, Lead
from tests.conftest import make_campaign


def test_migrations_produce_the_schema_of_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
        if engine.dialect.name == "sqlite":
            # SQLite's reflection drops an index's sort order; check that one by its SQL.
            differences = [
                d
                for d in differences
                if not (d[0] in {"add_index", "remove_index"} and d[1].name == "ix_leads_hopper")
            ]
            index_sql = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'ix_leads_hopper'"
            ).scalar_one()
            assert "priority DESC" in index_sql
        else:
            # The explainer's covering index is SQLite's alone (migration 0007_why says why).
            differences = [
                d for d in differences if not (d[0] == "add_index" and d[1].name == "ix_leads_why")
            ]
            # Alembic compares an index on an expression by SQL text, which PostgreSQL reflects
            # its own way: the name search's indexes are checked by their definition.
            folded = {"ix_leads_first_name": "first_name", "ix_leads_last_name": "last_name"}
            differences = [
                d
                for d in differences
                if not (d[0] in {"add_index", "remove_index"} and d[1].name in folded)
            ]
            for name, column in folded.items():
                definition = connection.exec_driver_sql(
                    "SELECT indexdef FROM pg_indexes "
                    f"WHERE indexname = '{name}' AND schemaname = current_schema()"
                ).scalar_one()
                assert f'lower(({column})::text) COLLATE "C"' in definition, definition
            assert not connection.exec_driver_sql(
                "SELECT 1 FROM pg_indexes "
                "WHERE indexname = 'ix_leads_why' AND schemaname = current_schema()"
            ).first()
        assert differences == []


def test_current_revision_is_head(db_url: str) -> None:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(db.alembic_config(db_url)).get_current_head()
    assert head is not None
    assert db.current_revision(db_url) == head


def test_timestamps_come_back_in_utc_whatever_zone_went_in(session: Session) -> None:
    campaign = make_campaign(session)
    paris = dt.datetime(2026, 3, 29, 3, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    session.add(
        Lead(
            campaign_id=campaign.id,
            list_id=campaign.lists[0].id,
            phone_e164="+33612345678",
            phone_type="mobile",
            region="FR",
            next_dial_at=paris,
        )
    )
    session.commit()
    session.expunge_all()
    stored = session.scalars(select(Lead)).one().next_dial_at
    assert stored == paris and stored.tzinfo == dt.UTC


def test_naive_timestamps_are_refused(session: Session) -> None:
    campaign = make_campaign(session)
    campaign.updated_at = dt.datetime(2026, 1, 1)  # noqa: DTZ001 - the point of the test
    with pytest.raises(Exception, match="naive datetime"):
        session.commit()


@pytest.mark.parametrize(
    ("field", "value"),
    [("ring_timeout_s", 14), ("abandon_target", 0.05), ("kind", "robocall")],
)
def test_database_refuses_non_compliant_campaign_settings(
    session: Session, field: str, value: object
) -> None:
    with pytest.raises(IntegrityError):
        make_campaign(session, **{field: value})
    session.rollback()
    assert session.scalars(select(Campaign)).all() == []


def test_sqlite_log_is_checkpointed_in_the_background_and_never_after_dispose(
    tmp_path: Path,
) -> None:
    path = tmp_path / "checkpointed.db"
    engine = db.make_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x)")
        connection.exec_driver_sql("INSERT INTO t VALUES (1)")
    log = path.with_name(path.name + "-wal")
    # Writers never checkpoint (wal_autocheckpoint=0): only the background thread empties the
    # log into the database file.
    deadline = time.monotonic() + 5 * db.CHECKPOINT_EVERY_S
    while path.stat().st_size < 2 * 4096 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert path.stat().st_size >= 2 * 4096
    engine.dispose()
    for leftover in tmp_path.iterdir():
        leftover.unlink()
    time.sleep(3 * db.CHECKPOINT_EVERY_S)
    assert not log.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("held_s", [0.01, 3 * db.LOCK_LOOK_FOR_S])
def test_a_writer_waits_for_the_write_lock_held_elsewhere(tmp_path: Path, held_s: float) -> None:
    """Held briefly, the lock is looked for by the writer itself; held longer, SQLite waits
    for it as before. Either way the writer gets it, and the connection keeps its timeout."""
    import sqlite3
    import threading

    path = tmp_path / "locked.db"
    engine = db.writer(db.make_engine(f"sqlite:///{path}"))
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x)")
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (1)")
    release = threading.Timer(held_s, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO t VALUES (2)")
            timeout = connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
    finally:
        release.join()
        holder.close()
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT x FROM t ORDER BY x").scalars().all()
    assert rows == [1, 2] and timeout == db.BUSY_TIMEOUT_MS
    engine.dispose()


def test_migrating_a_database_with_leads_keeps_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Migration 0005 rebuilds the campaigns table on SQLite: with foreign keys on, dropping
    the old table would have deleted every lead, list and attempt of every campaign."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    db.upgrade(url, "0004")
    engine = db.make_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO campaigns (id, name, kind, dial_mode, dial_ratio, status, calling_days,"
            " calling_start, calling_end, holidays, ring_timeout_s, abandon_target, max_attempts,"
            " recycling_rules, recycled_mix, script, uk_mode, seller_name, safe_harbor_message,"
            " record_calls, amd_settings, created_at, updated_at) VALUES (1, 'Old', "
            "'telemarketing', 'predictive', 1, 'active', '[0]', '09:00', '20:00', '[]', 25, 0.03,"
            " 6, '{}', 0.3, '', 0, 'Acme', '', 0, '{}', '2026-01-01', '2026-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO lead_lists (id, campaign_id, name, default_region, active, created_at) "
            "VALUES (1, 1, 'default', 'US', 1, '2026-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO leads (campaign_id, list_id, phone_e164, phone_type, region, time_zones,"
            " custom_fields, status, attempts, priority, consent_automated, created_at) VALUES "
            "(1, 1, '+12125550100', 'fixed_line', 'US', '[]', '{}', 'new', 0, 0, 0, '2026-01-01')"
        )
    engine.dispose()
    db.upgrade(url)
    engine = db.make_engine(url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM leads").scalar_one() == 1
        assert connection.exec_driver_sql("SELECT count(*) FROM lead_lists").scalar_one() == 1
        status, max_lines = connection.exec_driver_sql(
            "SELECT status, max_lines FROM campaigns"
        ).one()
        assert (status, max_lines) == ("active", 0)
        codes = connection.exec_driver_sql(
            "SELECT code FROM disposition_codes WHERE code = 'NO_DISPOSITION'"
        ).all()
        assert len(codes) == 1
        assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    engine.dispose()
