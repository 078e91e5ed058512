"""The console under test: a migrated SQLite database, a user of each role, a SIP configuration
with one trunk on loopback, and a client that signs in and sends forms with their CSRF token."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from campaigns import db
from campaigns.models import ROLES, User
from tests.sipp_uas import free_udp_port
from web import create_app, export_process
from web import db as web_db
from web.imports import runner
from web.security import hash_password

USERNAMES = {"admin": "alice", "manager": "mona", "supervisor": "sam", "agent": "agnes"}
PASSWORD = "a long test password 7"
TRUNK_PASSWORD = "carrier-secret-123"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)">')


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty database at the latest schema, migrated once and copied for each test."""
    path = tmp_path_factory.mktemp("schema") / "dialer.db"
    db.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def password_hash() -> str:
    # Argon2 takes tens of milliseconds a hash: one for every test user of the session.
    return hash_password(PASSWORD)


def sip_config_file(folder: Path, port: int) -> Path:
    path = folder / "sip.toml"
    path.write_text(
        f"""
[trunks.carrier1]
host = "127.0.0.1"
port = {port}
username = "acct123"
password_env = "CONSOLE_TEST_TRUNK_PASSWORD"
caller_id = "+12125550100"
max_channels = 40
max_cps = 5
"""
    )
    return path


def console_app(
    tmp_path: Path,
    password_hash: str,
    monkeypatch: pytest.MonkeyPatch,
    url: str | None = None,
    **config: Any,
) -> Flask:
    if url is None:
        path = tmp_path / "dialer.db"
        if not path.exists():
            db.upgrade(f"sqlite:///{path}")
        url = f"sqlite:///{path}"
    monkeypatch.setenv("CONSOLE_TEST_TRUNK_PASSWORD", TRUNK_PASSWORD)
    monkeypatch.delenv("DIALER_SECRET_KEY", raising=False)
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": url,
            "SECRET_KEY": "test-secret-key-of-at-least-32-characters",
            "SESSION_COOKIE_SECURE": False,
            "UPLOAD_FOLDER": str(tmp_path / "uploads"),
            "SIP_CONFIG": str(sip_config_file(tmp_path, free_udp_port())),
            "TRUNK_PING_TIMEOUT": 1.0,
            "TRUNK_PING_BIND": "127.0.0.1",
            # Tests sign in many times from one address; the throttling test sets its own.
            "LOGIN_LIMIT_PER_ADDRESS": "1000 per minute",
            "LOGIN_LIMIT_PER_USERNAME": "1000 per minute",
            # A live page's stream sends what it shows now and ends (a test that watches it
            # change sets its own length), so that reading a stream whole returns.
            "STREAM_SECONDS": 0.0,
            **config,
        }
    )
    with app.app_context(), Session(web_db.engine()) as session:
        for role in ROLES:
            session.add(
                User(
                    username=USERNAMES[role],
                    password_hash=password_hash,
                    role=role,
                    sip_uri="sip:1001@127.0.0.1:5062" if role == "agent" else None,
                    time_zone="America/New_York" if role == "manager" else "UTC",
                )
            )
        session.commit()
    return app


@pytest.fixture
def app(
    tmp_path: Path,
    password_hash: str,
    monkeypatch: pytest.MonkeyPatch,
    migrated_database: Path,
) -> Iterator[Flask]:
    shutil.copy(migrated_database, tmp_path / "dialer.db")
    app = console_app(tmp_path, password_hash, monkeypatch)
    yield app
    with app.app_context():
        runner().shutdown()
    export_process.shutdown(app)
    web_db.dispose(app)


class Console:
    """A browser's view of the console through the test client: it keeps the session cookie
    and sends each form with the page's CSRF token, as the pages' own forms do."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.token: str | None = None

    def get(self, url: str, **kwargs: Any) -> TestResponse:
        response = self.client.get(url, **kwargs)
        if response.mimetype != "text/html":
            return response
        match = CSRF_META.search(response.get_data(as_text=True))
        if match:
            self.token = match.group(1)
        return response

    def post(
        self, url: str, data: dict[str, Any] | None = None, csrf: bool = True, **kwargs: Any
    ) -> TestResponse:
        form = dict(data or {})
        if csrf:
            if self.token is None:
                self.get("/auth/login")
            form["csrf_token"] = self.token
        return self.client.post(url, data=form, **kwargs)

    def login(self, role: str = "manager", password: str = PASSWORD) -> TestResponse:
        return self.post("/auth/login", {"username": USERNAMES[role], "password": password})

    def user_id(self, app: Flask, role: str) -> int:
        from sqlalchemy import select

        with app.app_context():
            return (
                web_db.session()
                .scalars(select(User.id).where(User.username == USERNAMES[role]))
                .one()
            )


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def console(client: FlaskClient) -> Console:
    return Console(client)


def signed_in(app: Flask, role: str) -> Console:
    console = Console(app.test_client())
    response = console.login(role)
    assert response.status_code == 302, response.get_data(as_text=True)
    return console


@pytest.fixture
def manager(app: Flask) -> Console:
    return signed_in(app, "manager")


@pytest.fixture
def admin(app: Flask) -> Console:
    return signed_in(app, "admin")


@pytest.fixture
def supervisor(app: Flask) -> Console:
    return signed_in(app, "supervisor")


@pytest.fixture
def agent(app: Flask) -> Console:
    return signed_in(app, "agent")


def seed_domain(app: Flask) -> dict[str, Any]:
    """One of everything a page can be about: a campaign with a list, a lead with an attempt,
    an import with a row error, a do-not-call entry. Returns the ids routes take."""
    from campaigns.agents import add_to_campaign
    from campaigns.dispositions import install_catalogue
    from campaigns.models import (
        CallAttempt,
        CallerId,
        Campaign,
        DncEntry,
        ImportRowError,
        ImportRun,
        Lead,
        LeadList,
        utcnow,
    )

    with app.app_context(), Session(web_db.engine()) as session:
        campaign = Campaign(name="Spring sale", kind="telemarketing", trunk_name="carrier1")
        lead_list = LeadList(name="default")
        campaign.lists.append(lead_list)
        session.add(campaign)
        session.flush()
        install_catalogue(session, campaign)
        run = ImportRun(
            campaign_id=campaign.id,
            list_id=lead_list.id,
            filename="spring.csv",
            status="completed",
            rows=2,
            imported=1,
            invalid=1,
            finished_at=utcnow(),
        )
        session.add(run)
        session.flush()
        session.add(
            ImportRowError(
                import_id=run.id, row=3, field="first_name", value="=HYPERLINK(1)", reason="x"
            )
        )
        lead = Lead(
            campaign_id=campaign.id,
            list_id=lead_list.id,
            import_id=run.id,
            phone_e164="+12125550142",
            phone_type="fixed_line_or_mobile",
            region="US",
            first_name="Jane",
            last_name="Doe",
            account_ref="AC-1",
            custom_fields={"Plan": "gold"},
        )
        session.add(lead)
        session.flush()
        attempt = CallAttempt(lead_id=lead.id, campaign_id=campaign.id, phone_e164=lead.phone_e164)
        session.add(attempt)
        entry = DncEntry(phone_e164="+12125550199", scope="global")
        session.add(entry)
        agent = session.query(User).filter_by(username=USERNAMES["agent"]).one()
        group = add_to_campaign(session, agent.id, campaign)
        number = CallerId(campaign_id=campaign.id, phone_e164="+12125550100", daily_cap=100)
        session.add(number)
        session.commit()
        return {
            "campaign_id": campaign.id,
            "list_id": lead_list.id,
            "import_id": run.id,
            "lead_id": lead.id,
            "entry_id": entry.id,
            "user_id": agent.id,
            "name": "carrier1",
            "token": "0" * 32,
            "filename": "console.css",
            "group_id": group.id,
            "chart": "hourly",
            "attempt_id": attempt.id,
            "token_id": 1,
            "number_id": number.id,
        }
