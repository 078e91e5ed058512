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
            assert not connection.exec_driver_sql(
                "SELECT 1 FROM pg_indexes "
                "WHERE indexname = 'ix_leads_why' AND schemaname = current_schema()"
            ).first()
        assert differences == []


def test_current_revision_is_head(db_url: str) -> None:
    assert db.current_revision(db_url) == "0007_why"


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
