"""Shared fixtures: a freshly migrated database on SQLite and, when TEST_POSTGRES_URL is set,
on PostgreSQL (each test in its own schema so tests on the shared database never interfere)."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from campaigns import db
from campaigns.dispositions import install_catalogue
from campaigns.models import Campaign, LeadList

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A migrated, empty database URL: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'dialer.db'}"
        db.upgrade(url)
        yield url
        return
    if not POSTGRES_URL:
        pytest.skip("TEST_POSTGRES_URL is not set")
    with db.migrated_schema(POSTGRES_URL, "test") as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = db.make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with db.session_factory(engine)() as session:
        yield session


def make_campaign(session: Session, name: str = "Spring sale", **fields: object) -> Campaign:
    """A campaign with its default list, committed; fields override the defaults."""
    campaign = Campaign(name=name, kind=fields.pop("kind", "telemarketing"), **fields)
    campaign.lists.append(LeadList(name="default"))
    session.add(campaign)
    session.flush()
    install_catalogue(session, campaign)
    session.commit()
    return campaign


# What users type into lead lists and what attackers do: notes that start like formulas,
# formulas, and markup. Imports store them as written; exports and pages neutralise them.
HOSTILE_VALUES = (
    "-- call after 5pm",
    "+44 via email",
    '=HYPERLINK("http://x","y")',
    "@SUM(A1)",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
)


def hostile_leads_csv(path: Path) -> Path:
    """A lead file whose names, account references, custom fields and one custom column's name
    hold HOSTILE_VALUES; its phone numbers, UK ones written +44 ..., are all valid. Row i + 2
    holds HOSTILE_VALUES[i] as first name."""
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["phone", "first_name", "last_name", "account", "notes", "-- remarks"])
        for i, value in enumerate(HOSTILE_VALUES):
            phone = f"+44 20 7946 0{i:03d}" if i % 2 else f"+1 212 555 0{i:03d}"
            other = HOSTILE_VALUES[(i + 1) % len(HOSTILE_VALUES)]
            writer.writerow([phone, value, other, value, value, other])
    return path
