import datetime as dt

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
        assert differences == []


def test_current_revision_is_head(db_url: str) -> None:
    assert db.current_revision(db_url) == "0004"


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
