"""The console on PostgreSQL (several consoles share one behind a load balancer): a manager's
day in short, in a schema of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import func, select

from campaigns import db
from campaigns.models import AuditLog, Campaign, Lead
from tests.conftest import POSTGRES_URL
from tests.web.conftest import console_app, signed_in
from tests.web.test_campaigns import settings
from tests.web.test_lists import lead_file, mapping, upload, wait_for
from web import db as web_db
from web.imports import runner

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_app(tmp_path: Path, password_hash: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    if not POSTGRES_URL:
        pytest.skip("TEST_POSTGRES_URL is not set")
    with db.migrated_schema(POSTGRES_URL, "web") as url:
        app = console_app(tmp_path, password_hash, monkeypatch, url=url)
        yield app
        with app.app_context():
            runner().shutdown()
        web_db.dispose(app)


def test_a_manager_creates_imports_starts_and_blocks_a_number(
    pg_app: Flask, tmp_path: Path
) -> None:
    manager = signed_in(pg_app, "manager")
    assert manager.post("/campaigns/new", settings()).status_code == 302
    with pg_app.app_context():
        campaign_id = web_db.session().scalars(select(Campaign.id)).one()
    response = upload(manager, campaign_id, lead_file(tmp_path))
    response = manager.post(response.location, mapping())
    import_id = int(response.location.rsplit("/", 1)[1])
    assert wait_for(manager, import_id)["imported"] == 2
    assert manager.post(f"/campaigns/{campaign_id}/status", {"action": "start"}).status_code == 302
    assert (
        manager.post("/dnc/add", {"number": "(212) 555-0123", "scope": "global"}).status_code == 302
    )
    for url in (
        "/dashboard/",
        "/campaigns/",
        f"/campaigns/{campaign_id}",
        f"/campaigns/{campaign_id}/lists",
        f"/imports/{import_id}",
        "/dnc/",
    ):
        assert manager.get(url).status_code == 200, url
    page = manager.get("/leads/", query_string={"q": "Lopez"}).get_data(as_text=True)
    assert "+12125550123" in page
    with pg_app.app_context():
        session = web_db.session()
        assert session.get(Campaign, campaign_id).status == "active"
        assert session.scalar(select(func.count()).select_from(Lead)) == 2
        actions = session.scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions == ["create", "import", "start", "add"]
