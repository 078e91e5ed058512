"""Leads, do-not-call lists, users, trunks, the dashboard and the audit log, as the people who
use them would."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from campaigns.models import AuditLog, DncEntry, User
from tests.sipp_uas import Carrier
from tests.web.conftest import TRUNK_PASSWORD, Console, seed_domain, signed_in
from web import db as web_db


def test_leads_are_found_by_phone_in_any_format_by_name_and_by_account(
    app: Flask, supervisor: Console
) -> None:
    ids = seed_domain(app)
    for query in ("(212) 555-0142", "+1 212 555 0142", "Jane", "jane doe", "Doe", "AC-1"):
        page = supervisor.get("/leads/", query_string={"q": query}).get_data(as_text=True)
        assert f"/leads/{ids['lead_id']}" in page, query
    page = supervisor.get("/leads/", query_string={"q": "Smith"}).get_data(as_text=True)
    assert "No lead matches" in page
    page = supervisor.get("/leads/", query_string={"q": "555 1234 999 000 1"}).get_data(
        as_text=True
    )
    assert "is not a phone number" in page
    page = supervisor.get("/leads/", query_string={"q": "%"}).get_data(as_text=True)
    assert "No lead matches" in page


def test_a_leads_history_shows_its_calls_fields_and_do_not_call_state(
    app: Flask, supervisor: Console
) -> None:
    ids = seed_domain(app)
    page = supervisor.get(f"/leads/{ids['lead_id']}").get_data(as_text=True)
    assert "+12125550142" in page and "Plan" in page and "gold" in page
    assert "in progress" in page and "do-not-call list" not in page
    with app.app_context():
        session = web_db.session()
        session.add(DncEntry(phone_e164="+12125550142", scope="global"))
        session.commit()
    page = supervisor.get(f"/leads/{ids['lead_id']}").get_data(as_text=True)
    assert "On the global do-not-call list" in page


def test_a_supervisor_adds_a_number_with_an_expiry_in_their_zone(
    app: Flask, supervisor: Console
) -> None:
    response = supervisor.post(
        "/dnc/add",
        {"number": "(415) 555-0134", "scope": "global", "expires": "2027-01-31", "reason": "asked"},
    )
    assert response.status_code == 302
    with app.app_context():
        entry = web_db.session().scalars(select(DncEntry)).one()
        log = web_db.session().scalars(select(AuditLog)).one()
    assert entry.phone_e164 == "+14155550134" and entry.source == "console"
    assert entry.expires_at == dt.datetime(2027, 1, 31, tzinfo=dt.UTC)
    assert (log.actor, log.action, log.details["after"]["reason"]) == ("sam", "add", "asked")
    page = supervisor.get("/dnc/", query_string={"q": "415-555-0134"}).get_data(as_text=True)
    assert "+14155550134" in page and "2027-01-31" in page
    # Removing, importing and exporting belong to managers.
    assert supervisor.post(f"/dnc/{entry.id}/remove").status_code == 403
    refused = supervisor.post("/dnc/add", {"number": "12", "scope": "global"})
    assert "Not added" in supervisor.get(refused.location).get_data(as_text=True)


def test_a_manager_imports_exports_and_removes_numbers(
    app: Flask, manager: Console, tmp_path: Path
) -> None:
    ids = seed_domain(app)
    numbers = tmp_path / "dnc.txt"
    numbers.write_text("phone\n(212) 555-0100\n+1 305 555 0111\nnonsense\n")
    with numbers.open("rb") as handle:
        response = manager.post(
            "/dnc/import",
            {"file": (handle, "dnc.txt"), "scope": str(ids["campaign_id"]), "expires": ""},
            content_type="multipart/form-data",
        )
    page = manager.get(response.location).get_data(as_text=True)
    assert "3 lines: 2 added, 0 renewed, 1 invalid." in page and "Line 4" in page
    with app.app_context():
        session = web_db.session()
        session.add(
            DncEntry(phone_e164="+12125550155", scope="global", reason="=cmd|' /C calc'!A0")
        )
        session.commit()
    exported = manager.get("/dnc/export.csv")
    rows = list(csv.reader(io.StringIO(exported.get_data(as_text=True))))
    assert rows[0] == ["phone", "scope", "campaign", "source", "reason", "added", "expires"]
    assert len(rows) == 5
    formula = next(r for r in rows if r[0] == "'+12125550155")
    assert formula[4] == "'=cmd|' /C calc'!A0"
    only_global = manager.get("/dnc/export.csv", query_string={"scope": "global"})
    assert len(list(csv.reader(io.StringIO(only_global.get_data(as_text=True))))) == 3
    entry_id = ids["entry_id"]
    assert manager.post(f"/dnc/{entry_id}/remove").status_code == 302
    with app.app_context():
        assert web_db.session().get(DncEntry, entry_id) is None
        removal = (
            web_db.session().scalars(select(AuditLog).where(AuditLog.action == "remove")).one()
        )
    assert removal.details["before"]["phone_e164"] == "+12125550199"


def test_an_admin_creates_an_agent_who_must_change_the_password(app: Flask, admin: Console) -> None:
    refused = admin.post(
        "/users/new", {"username": "ivan", "role": "agent", "time_zone": "UTC", "active": "y"}
    )
    assert "An agent needs a SIP phone to ring." in refused.get_data(as_text=True)
    response = admin.post(
        "/users/new",
        {
            "username": "ivan",
            "role": "agent",
            "sip_uri": "sip:1002@10.0.0.5:5060",
            "time_zone": "Europe/London",
            "active": "y",
        },
    )
    page = response.get_data(as_text=True)
    assert "One-time password for ivan" in page
    import re

    password = re.search(r'id="one-time-password">([^<]+)<', page)
    assert password
    ivan = Console(app.test_client())
    ivan.post("/auth/login", {"username": "ivan", "password": password.group(1)})
    assert ivan.get("/auth/account").location == "/auth/password"
    with app.app_context():
        user = web_db.session().scalars(select(User).where(User.username == "ivan")).one()
        log = web_db.session().scalars(select(AuditLog)).one()
    assert user.must_change_password and user.time_zone == "Europe/London"
    assert "password_hash" not in log.details["after"]
    assert admin.post("/users/new", {"username": "IVAN", "role": "manager", "time_zone": "UTC"})


def test_an_admin_edits_resets_and_cannot_remove_the_last_admin(app: Flask, admin: Console) -> None:
    agent_id = Console(app.test_client()).user_id(app, "agent")
    admin_id = Console(app.test_client()).user_id(app, "admin")
    agent = signed_in(app, "agent")
    response = admin.post(
        f"/users/{agent_id}",
        {"username": "agnes", "role": "agent", "sip_uri": "sip:2000@127.0.0.1", "time_zone": "UTC"},
    )
    assert response.status_code == 302
    # Unticked "active": the agent's session ends.
    assert agent.get("/auth/account").status_code == 302
    reset = admin.post(f"/users/{agent_id}/reset-password")
    assert "One-time password for agnes" in reset.get_data(as_text=True)
    refused = admin.post(
        f"/users/{admin_id}",
        {"username": "alice", "role": "manager", "time_zone": "UTC", "active": "y"},
    )
    assert "last active administrator" in refused.get_data(as_text=True)
    with app.app_context():
        actions = web_db.session().scalars(select(AuditLog.action).order_by(AuditLog.id)).all()
    assert actions == ["update", "reset_password"]


def test_the_trunk_page_shows_settings_and_never_the_password(manager: Console) -> None:
    page = manager.get("/trunks/").get_data(as_text=True)
    assert "carrier1" in page and "acct123" in page and "+12125550100" in page
    assert TRUNK_PASSWORD not in page and "CONSOLE_TEST_TRUNK_PASSWORD" not in page


def test_the_trunk_test_button_reports_an_unreachable_carrier(manager: Console) -> None:
    page = manager.post("/trunks/carrier1/test").get_data(as_text=True)
    assert "Unreachable:" in page
    assert manager.post("/trunks/nosuch/test").status_code == 404


@pytest.mark.sip
def test_the_trunk_test_button_pings_a_real_carrier(
    tmp_path: Path, password_hash: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.web.conftest import console_app, sip_config_file

    carrier = Carrier(tmp_path, "options").start("options", calls=1, timeout=20)
    try:
        app = console_app(tmp_path, password_hash, monkeypatch)
        app.config["SIP_CONFIG"] = str(sip_config_file(tmp_path, carrier.port))
        page = signed_in(app, "manager").post("/trunks/carrier1/test").get_data(as_text=True)
    finally:
        carrier.stop()
    assert "Reachable: 200 OK in" in page


def test_a_missing_sip_configuration_is_explained(app: Flask, manager: Console) -> None:
    app.config["SIP_CONFIG"] = "/nonexistent/sip.toml"
    page = manager.get("/trunks/").get_data(as_text=True)
    assert "cannot be read" in page
    assert "could not be read" in manager.get("/campaigns/new").get_data(as_text=True)


def test_the_dashboard_counts_each_campaigns_leads(app: Flask, manager: Console) -> None:
    seed_domain(app)
    page = manager.get("/dashboard/").get_data(as_text=True)
    assert "Spring sale" in page and "Latest imports" in page and "spring.csv" in page


def test_the_audit_log_lists_and_filters_changes(app: Flask, admin: Console) -> None:
    admin.post("/dnc/add", {"number": "(415) 555-0134", "scope": "global"})
    admin.post("/auth/account/time-zone", {"time_zone": "Europe/Paris"})
    page = admin.get("/audit/").get_data(as_text=True)
    assert "dnc_entry" in page and "Europe/Paris" in page
    page = admin.get("/audit/", query_string={"entity": "user"}).get_data(as_text=True)
    assert "Europe/Paris" in page and "+14155550134" not in page


def test_an_agent_added_from_the_command_line_gets_a_password_here(
    app: Flask, admin: Console
) -> None:
    from campaigns.manage import add_agent

    with app.app_context():
        agent = add_agent(web_db.session(), "cli-agent", "sip:3001@127.0.0.1:5070")
    assert "no password: reset it" in admin.get("/users/").get_data(as_text=True)
    assert (
        Console(app.test_client())
        .post("/auth/login", {"username": "cli-agent", "password": "!"})
        .status_code
        == 401
    )
    page = admin.post(f"/users/{agent.id}/reset-password").get_data(as_text=True)
    assert "One-time password for cli-agent" in page
