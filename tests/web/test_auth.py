"""Signing in and out: throttling, the first administrator, forced and voluntary password
changes, sessions that end with a new password, and time zones."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select

from campaigns.models import AuditLog, User
from tests.web.conftest import PASSWORD, USERNAMES, Console, console_app, signed_in
from web import db as web_db
from web.users import ensure_admin


def test_a_visitor_is_sent_to_sign_in_and_back_where_they_were_going(console: Console) -> None:
    response = console.get("/campaigns/")
    assert response.status_code == 302
    assert response.location == "/auth/login?next=/campaigns/"
    response = console.post(
        "/auth/login?next=/campaigns/", {"username": "mona", "password": PASSWORD}
    )
    assert response.status_code == 302 and response.location == "/campaigns/"
    assert console.get("/campaigns/").status_code == 200


def test_next_never_leads_off_the_console(console: Console) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = console.post(
            f"/auth/login?next={target}", {"username": "mona", "password": PASSWORD}
        )
        assert response.location == "/", target
        console.post("/auth/logout")


def test_a_wrong_password_is_refused_with_the_same_words_as_an_unknown_user(
    console: Console,
) -> None:
    wrong = console.login("manager", password="not the password at all")
    unknown = console.post("/auth/login", {"username": "nobody", "password": "whatever it is"})
    assert wrong.status_code == unknown.status_code == 401
    message = "Wrong user name or password, or the account is disabled."
    assert message in wrong.get_data(as_text=True)
    assert message in unknown.get_data(as_text=True)
    assert console.get("/campaigns/").status_code == 302


def test_a_disabled_user_cannot_sign_in_and_loses_the_session_they_had(app: Flask) -> None:
    manager = signed_in(app, "manager")
    with app.app_context():
        session = web_db.session()
        session.scalars(select(User).where(User.username == "mona")).one().active = False
        session.commit()
    assert manager.get("/campaigns/").status_code == 302
    assert Console(app.test_client()).login("manager").status_code == 401


def test_repeated_failures_are_throttled_per_address_and_a_success_costs_nothing(
    tmp_path,
    password_hash,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    app = console_app(tmp_path, password_hash, monkeypatch, LOGIN_LIMIT_PER_ADDRESS="3 per minute")
    console = Console(app.test_client())
    for _ in range(4):
        assert console.login("manager").status_code == 302
        console.post("/auth/logout")
    for _ in range(3):
        assert console.login("manager", password="wrong password!").status_code == 401
    assert console.login("manager", password="wrong password!").status_code == 429
    # Even the right password waits: the address is throttled, not the guess.
    assert console.login("manager").status_code == 429


def test_failures_are_throttled_per_user_name_across_addresses(
    tmp_path,
    password_hash,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    app = console_app(tmp_path, password_hash, monkeypatch, LOGIN_LIMIT_PER_USERNAME="2 per hour")
    for address in ("127.0.0.2", "127.0.0.3"):
        console = Console(app.test_client())
        console.client.environ_base["REMOTE_ADDR"] = address
        assert console.login("supervisor", password="wrong password!").status_code == 401
    console = Console(app.test_client())
    console.client.environ_base["REMOTE_ADDR"] = "127.0.0.4"
    assert console.login("supervisor").status_code == 429
    assert console.login("manager").status_code == 302


def test_the_first_admin_is_created_once_with_a_password_to_change(
    tmp_path,
    password_hash,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    from campaigns import db

    url = f"sqlite:///{tmp_path / 'first.db'}"
    db.upgrade(url)
    from web import create_app

    monkeypatch.delenv("DIALER_ADMIN_PASSWORD", raising=False)
    app = create_app({"DATABASE_URL": url, "SESSION_COOKIE_SECURE": False})
    name, password = ensure_admin(app) or ("", "")
    assert name == "admin" and len(password) >= 16
    assert ensure_admin(app) is None
    console = Console(app.test_client())
    response = console.post("/auth/login", {"username": "admin", "password": password})
    assert response.status_code == 302
    # Every page leads to the password change until it is done.
    response = console.get("/users/")
    assert response.status_code == 302 and response.location == "/auth/password"
    new = "my own strong passphrase"
    response = console.post("/auth/password", {"current": password, "new": new, "confirm": new})
    assert response.status_code == 302
    assert console.get("/users/").status_code == 200
    with app.app_context():
        actions = web_db.session().scalars(select(AuditLog.action)).all()
    assert actions == ["create", "change_password"]


def test_the_first_admins_password_can_come_from_the_environment(
    tmp_path,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    from campaigns import db
    from web import create_app

    url = f"sqlite:///{tmp_path / 'first.db'}"
    db.upgrade(url)
    monkeypatch.setenv("DIALER_ADMIN_PASSWORD", "short")
    app = create_app({"DATABASE_URL": url})
    with pytest.raises(ValueError, match="DIALER_ADMIN_PASSWORD: the password has 5 characters"):
        ensure_admin(app)
    monkeypatch.setenv("DIALER_ADMIN_PASSWORD", "a chosen first passphrase")
    assert ensure_admin(app) == ("admin", "a chosen first passphrase")


def test_a_new_password_must_be_good_and_ends_every_other_session(app: Flask) -> None:
    first, second = signed_in(app, "manager"), signed_in(app, "manager")
    refused = first.post(
        "/auth/password", {"current": PASSWORD, "new": "mona1234567", "confirm": "mona1234567"}
    )
    assert "contains the user name" in refused.get_data(as_text=True)
    refused = first.post(
        "/auth/password", {"current": "wrong", "new": "x" * 12, "confirm": "x" * 12}
    )
    assert "This is not your current password." in refused.get_data(as_text=True)
    new = "a brand new passphrase"
    assert (
        first.post("/auth/password", {"current": PASSWORD, "new": new, "confirm": new}).status_code
        == 302
    )
    assert first.get("/campaigns/").status_code == 200
    assert second.get("/campaigns/").status_code == 302
    assert Console(app.test_client()).login("manager", password=new).status_code == 302


def test_signing_out_ends_the_session(manager: Console) -> None:
    assert manager.post("/auth/logout").location == "/auth/login"
    assert manager.get("/campaigns/").status_code == 302


def test_an_agent_lands_on_their_desktop_and_staff_on_the_dashboard(
    agent: Console, manager: Console
) -> None:
    assert agent.get("/").location == "/desk/"
    page = agent.get("/auth/account").get_data(as_text=True)
    assert "sip:1001@127.0.0.1:5062" in page and "Campaigns</a>" not in page
    assert "Agent desktop</a>" in page
    assert manager.get("/").location == "/dashboard/"


def test_times_are_shown_in_the_users_own_zone(app: Flask, manager: Console) -> None:
    from tests.web.conftest import seed_domain

    ids = seed_domain(app)
    with app.app_context():
        session = web_db.session()
        from campaigns.models import ImportRun

        run = session.get(ImportRun, ids["import_id"])
        import datetime as dt

        run.started_at = dt.datetime(2026, 7, 1, 15, 30, tzinfo=dt.UTC)
        session.commit()
    # mona works in New York: 15:30 UTC is 11:30 there in July.
    assert "2026-07-01 11:30" in manager.get(f"/campaigns/{ids['campaign_id']}/lists").get_data(
        as_text=True
    )
    response = manager.post("/auth/account/time-zone", {"time_zone": "Asia/Kolkata"})
    assert response.status_code == 302
    assert "2026-07-01 21:00" in manager.get(f"/campaigns/{ids['campaign_id']}/lists").get_data(
        as_text=True
    )
    assert manager.post("/auth/account/time-zone", {"time_zone": "Mars/Olympus"}).status_code == 302
    with app.app_context():
        zone = web_db.session().scalars(select(User.time_zone).where(User.username == "mona"))
        assert zone.one() == "Asia/Kolkata"


def test_usernames_in_the_fixture_cover_every_role() -> None:
    from campaigns.models import ROLES

    assert set(USERNAMES) == set(ROLES)


def test_a_hash_made_with_older_parameters_is_renewed_at_sign_in(
    app: Flask, console: Console
) -> None:
    from argon2 import PasswordHasher

    from web.security import hasher

    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    with app.app_context():
        session = web_db.sessions()()
        user = session.scalars(select(User).where(User.username == USERNAMES["manager"])).one()
        user.password_hash = weak
        session.commit()
    assert console.login("manager").status_code == 302
    with app.app_context():
        renewed = (
            web_db.sessions()()
            .scalars(select(User.password_hash).where(User.username == USERNAMES["manager"]))
            .one()
        )
    assert renewed != weak and not hasher.check_needs_rehash(renewed)
    # The sign-in's session is keyed to the renewed hash: it goes on.
    assert console.get("/campaigns/").status_code == 200
