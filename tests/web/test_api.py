"""The REST API through the Flask test client: tokens (missing, wrong, revoked, another role),
CSRF for the console's cookie session, the one error shape, validation naming the field and
the value, cursor pagination, and each resource's story."""

from __future__ import annotations

import io
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from campaigns import db
from campaigns.models import ApiToken, AuditLog, Campaign, DncEntry, Lead, User, utcnow
from tests.conftest import BACKENDS, POSTGRES_URL
from tests.web.api_helpers import (
    DAY,
    FORMULA,
    ApiClient,
    agent_id,
    api_as,
    error_of,
    every_page,
    seed_calls,
    token_for,
)
from tests.web.conftest import USERNAMES, Console, console_app, seed_domain, signed_in
from web import db as web_db

ROOT = "/api/v1"


@pytest.fixture(params=BACKENDS)
def pg_or_sqlite_app(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    password_hash: str,
    monkeypatch: pytest.MonkeyPatch,
    migrated_database: Path,
) -> Iterator[Flask]:
    if request.param == "sqlite":
        shutil.copy(migrated_database, tmp_path / "dialer.db")
        app = console_app(tmp_path, password_hash, monkeypatch)
        yield app
        web_db.dispose(app)
        return
    if not POSTGRES_URL:
        pytest.skip("TEST_POSTGRES_URL is not set")
    with db.migrated_schema(POSTGRES_URL, "api") as url:
        app = console_app(tmp_path, password_hash, monkeypatch, url=url)
        yield app
        web_db.dispose(app)


def api_routes(app: Flask) -> list[tuple[str, str, str]]:
    samples = seed_domain(app)
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(ROOT):
            continue
        with app.test_request_context():
            from flask import url_for

            url = url_for(rule.endpoint, **{a: samples[a] for a in rule.arguments})
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, url))
    return found


# -- authentication and authorisation


def test_every_api_route_refuses_a_request_without_a_token_in_the_one_shape(app: Flask) -> None:
    anonymous = ApiClient(app.test_client(), None)
    routes = api_routes(app)
    assert len(routes) >= 39
    for endpoint, method, url in routes:
        response = anonymous.open(method, url)
        error = error_of(response, 401, "unauthenticated")
        assert "Authorization: Bearer" in error["message"], endpoint
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ("Bearer dlr_0123456789abcdef_" + "A" * 43, "not known"),
        ("Bearer not-a-token", "not one of this dialer's"),
        ("Basic bW9uYTpzZWNyZXQ=", "Authorization: Bearer"),
    ],
)
def test_a_wrong_token_is_refused_saying_why(app: Flask, header: str, why: str) -> None:
    response = app.test_client().get(f"{ROOT}/campaigns", headers={"Authorization": header})
    error = error_of(response, 401, "invalid_token")
    assert why in error["message"]


def test_a_token_opens_the_api_without_a_session_and_records_its_use(app: Flask) -> None:
    api = api_as(app, "manager")
    response = api.get(f"{ROOT}/campaigns")
    assert response.status_code == 200
    response.close()  # the use is recorded once the response is sent
    # No session cookie is set for a token: the next request without one is a stranger.
    assert "Set-Cookie" not in response.headers
    assert ApiClient(api.client, None).get(f"{ROOT}/campaigns").status_code == 401
    with app.app_context():
        used = web_db.session().scalars(select(ApiToken.last_used_at)).one()
    assert used is not None


def test_a_revoked_token_and_a_disabled_users_token_are_refused(app: Flask) -> None:
    api = api_as(app, "manager")
    with app.app_context(), Session(web_db.engine()) as session:
        session.execute(update(ApiToken).values(revoked_at=utcnow()))
        session.commit()
    assert "revoked" in error_of(api.get(f"{ROOT}/campaigns"), 401, "invalid_token")["message"]
    supervisor = api_as(app, "supervisor")
    with app.app_context(), Session(web_db.engine()) as session:
        session.execute(
            update(User).where(User.username == USERNAMES["supervisor"]).values(active=False)
        )
        session.commit()
    error = error_of(supervisor.get(f"{ROOT}/campaigns"), 401, "invalid_token")
    assert "disabled" in error["message"]


def test_a_token_acts_with_its_users_role_now(app: Flask) -> None:
    seeded = seed_domain(app)
    agent = api_as(app, "agent")
    error = error_of(agent.get(f"{ROOT}/campaigns"), 403, "forbidden")
    assert "agent" in error["message"] and "campaigns.view" in error["message"]
    supervisor = api_as(app, "supervisor")
    body = {"name": "Autumn", "kind": "survey"}
    assert error_of(supervisor.post(f"{ROOT}/campaigns", json=body), 403, "forbidden")
    assert supervisor.post(f"{ROOT}/campaigns/{seeded['campaign_id']}/pause").status_code == 409
    # Promoted: the same token now may.
    with app.app_context(), Session(web_db.engine()) as session:
        session.execute(
            update(User).where(User.username == USERNAMES["supervisor"]).values(role="manager")
        )
        session.commit()
    assert supervisor.post(f"{ROOT}/campaigns", json=body).status_code == 201


def test_the_token_header_wins_over_a_session_cookie(app: Flask) -> None:
    manager = signed_in(app, "manager")
    assert manager.client.get(f"{ROOT}/campaigns").status_code == 200
    agent_token = token_for(app, "agent")
    as_agent = ApiClient(manager.client, agent_token)
    error_of(as_agent.get(f"{ROOT}/campaigns"), 403, "forbidden")


def test_the_console_session_must_send_its_csrf_token_a_token_need_not(app: Flask) -> None:
    manager = signed_in(app, "manager")
    body = {"phone": "+12125550123"}
    error = error_of(manager.client.post(f"{ROOT}/dnc", json=body), 400, "csrf")
    assert "X-CSRFToken" in error["message"]
    manager.get("/dnc/")
    response = manager.client.post(
        f"{ROOT}/dnc", json=body, headers={"X-CSRFToken": manager.token or ""}
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    assert api_as(app, "manager").post(f"{ROOT}/dnc", json=body).status_code == 201


def test_an_unknown_path_and_method_answer_in_the_one_shape(app: Flask) -> None:
    api = api_as(app, "admin")
    error_of(api.get(f"{ROOT}/nothing-here"), 404, "not_found")
    error = error_of(api.open("PUT", f"{ROOT}/campaigns"), 405, "method_not_allowed")
    assert "GET" in error["message"] and "POST" in error["message"]
    error = error_of(api.get(f"{ROOT}/campaigns/999"), 404, "not_found")
    assert error["field"] == "id" and error["value"] == 999


def test_tokens_are_made_on_the_account_page_shown_once_and_revoked(app: Flask) -> None:
    agent = signed_in(app, "agent")
    assert "API tokens" in agent.get("/auth/account").get_data(as_text=True)
    page = agent.post("/auth/tokens/", {"name": "softphone bridge"}).get_data(as_text=True)
    token = page.split('<code class="token">')[1].split("</code>")[0]
    assert token.startswith("dlr_") and len(token) == 4 + 16 + 1 + 43
    listing = agent.get("/auth/tokens/").get_data(as_text=True)
    assert "softphone bridge" in listing and token not in listing
    with app.app_context():
        row = web_db.session().scalars(select(ApiToken)).one()
        # Only the secret's digest is stored.
        assert token.rsplit("_", 1)[1] not in (row.secret_sha256, row.key)
        entry = (
            web_db.session().scalars(select(AuditLog).where(AuditLog.entity == "api_token")).one()
        )
        assert token not in json.dumps(entry.details)
    api = ApiClient(app.test_client(), token)
    me = agent.user_id(app, "agent")
    assert api.get(f"{ROOT}/agents/{me}").get_json()["username"] == USERNAMES["agent"]
    # Another user cannot revoke it; its owner can.
    other = signed_in(app, "manager")
    assert other.post(f"/auth/tokens/{row.id}/revoke").status_code == 404
    assert agent.post(f"/auth/tokens/{row.id}/revoke").status_code == 302
    error_of(api.get(f"{ROOT}/agents/{me}"), 401, "invalid_token")


# -- validation and pagination


def test_validation_names_the_field_the_value_and_what_is_accepted(app: Flask) -> None:
    api = api_as(app, "manager")
    error = error_of(
        api.post(f"{ROOT}/campaigns", json={"name": "X", "kind": "sales", "colour": "red"}),
        422,
        "invalid",
    )
    assert error["field"] == "kind" and error["value"] == "sales"
    assert "telemarketing, collections, survey, appointment" in error["message"]
    assert {"field": "colour", "value": "red", "message": "Unknown field."} in error["details"]
    error = error_of(api.get(f"{ROOT}/campaigns?limit=501"), 422, "invalid")
    assert error["field"] == "limit" and "500" in error["message"]
    error = error_of(
        api.post(f"{ROOT}/campaigns", json={"name": "X", "kind": "survey", "abandon_target": 0.05}),
        422,
        "invalid",
    )
    assert error["field"] == "abandon_target" and error["value"] == 0.05
    error = error_of(
        api.post(
            f"{ROOT}/campaigns",
            json={"name": "X", "kind": "survey", "calling_start": "21:00", "calling_end": "09:00"},
        ),
        422,
        "invalid",
    )
    assert error["field"] == "calling_end"
    error = error_of(
        api.post(f"{ROOT}/campaigns", data="{not json", content_type="application/json"),
        422,
        "invalid",
    )
    error = error_of(api.post(f"{ROOT}/dnc", json={"phone": "12"}), 422, "invalid")
    assert error["field"] == "phone" and error["value"] == "12"


def test_lists_are_paginated_by_cursor_with_next_links(app: Flask) -> None:
    api = api_as(app, "manager")
    for i in range(7):
        assert (
            api.post(f"{ROOT}/campaigns", json={"name": f"C{i}", "kind": "survey"}).status_code
            == 201
        )
    first = api.get(f"{ROOT}/campaigns?limit=3&kind=survey").get_json()
    assert len(first["data"]) == 3 and first["pagination"]["next_cursor"]
    names = [c["name"] for c in every_page(api, f"{ROOT}/campaigns?limit=3&kind=survey")]
    assert names == [f"C{i}" for i in range(7)]
    assert every_page(api, f"{ROOT}/campaigns?limit=3&kind=collections") == []
    error = error_of(api.get(f"{ROOT}/campaigns?cursor=bogus"), 422, "invalid")
    assert error["field"] == "cursor" and error["value"] == "bogus"


# -- campaigns


def test_a_manager_creates_changes_and_steers_a_campaign(app: Flask) -> None:
    api = api_as(app, "manager")
    response = api.post(
        f"{ROOT}/campaigns",
        json={"name": "Spring sale", "kind": "telemarketing", "dial_mode": "progressive"},
    )
    assert response.status_code == 201
    campaign = response.get_json()
    assert response.headers["Location"] == f"{ROOT}/campaigns/{campaign['id']}"
    assert campaign["status"] == "draft" and campaign["abandon_target"] == 0.03
    url = f"{ROOT}/campaigns/{campaign['id']}"
    error = error_of(api.post(f"{url}/start"), 409, "not_ready")
    assert any("trunk" in p for p in error["problems"])
    error = error_of(api.patch(url, {"trunk_name": "carrier9"}), 422, "invalid")
    assert "carrier1" in error["message"]
    changed = api.patch(
        url,
        {
            "trunk_name": "carrier1",
            "caller_id": "+12125550100",
            "seller_name": "Acme",
            "holidays": ["2026-12-25"],
            "pause_codes": ["LUNCH", "BREAK"],
        },
    )
    assert changed.status_code == 200, changed.get_data(as_text=True)
    assert changed.get_json()["holidays"] == ["2026-12-25"]
    error = error_of(api.patch(url, {"default_disposition": "DNC"}), 422, "invalid")
    assert "not opt-outs" in error["message"]
    assert api.post(f"{url}/start").get_json()["status"] == "active"
    error_of(api.post(f"{url}/start"), 409, "conflict")
    assert api.post(f"{url}/pause").get_json()["status"] == "paused"
    assert api.post(f"{url}/stop").get_json()["status"] == "stopped"
    codes = [d["code"] for d in api.get(f"{url}/dispositions").get_json()]
    assert "SALE" in codes and "NO_DISPOSITION" in codes
    other = api.post(f"{ROOT}/campaigns", json={"name": "Other", "kind": "survey"}).get_json()
    error = error_of(
        api.patch(f"{ROOT}/campaigns/{other['id']}", {"name": "Spring sale"}), 409, "conflict"
    )
    assert error["field"] == "name"
    with app.app_context():
        actions = (
            web_db.session()
            .scalars(
                select(AuditLog.action).where(AuditLog.entity == "campaign").order_by(AuditLog.id)
            )
            .all()
        )
        actors = set(web_db.session().scalars(select(AuditLog.actor)))
    assert actions == ["create", "update", "start", "pause", "stop", "create"]
    assert actors == {USERNAMES["manager"]}


def test_a_campaign_leaves_voicemail_messages_only_with_a_message_it_can_speak(
    app: Flask,
) -> None:
    api = api_as(app, "manager")
    created = {"name": "Spring sale", "kind": "telemarketing", "amd_action": "message"}
    error = error_of(api.post(f"{ROOT}/campaigns", json=created), 422, "invalid")
    assert error["field"] == "voicemail_message" and "is empty" in error["message"]
    error = error_of(
        api.post(f"{ROOT}/campaigns", json=created | {"amd_action": "fax"}), 422, "invalid"
    )
    assert error["field"] == "amd_action", error
    campaign = api.post(
        f"{ROOT}/campaigns", json=created | {"voicemail_message": "Hello from {seller}."}
    )
    assert campaign.status_code == 422, "the seller's name is not set"
    message = "Hello from {seller}, please call us back."
    response = api.post(
        f"{ROOT}/campaigns",
        json=created | {"voicemail_message": message, "seller_name": "Acme"},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["amd_action"], body["voicemail_message"]) == ("message", message)
    url = f"{ROOT}/campaigns/{body['id']}"
    error = error_of(api.patch(url, {"voicemail_message": " "}), 422, "invalid")
    assert error["field"] == "voicemail_message"
    changed = api.patch(url, {"amd_action": "hangup", "voicemail_message": ""})
    assert changed.status_code == 200 and changed.get_json()["amd_action"] == "hangup"


# -- lists, imports and leads


def _wait(api: ApiClient, url: str) -> dict[str, Any]:
    for _ in range(200):
        run = api.get(url).get_json()
        if run["status"] != "running":
            return run  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"{url} still running")


def test_a_list_is_made_uploaded_imported_in_the_background_and_searched(app: Flask) -> None:
    seeded = seed_domain(app)
    api = api_as(app, "manager")
    made = api.post(f"{ROOT}/campaigns/{seeded['campaign_id']}/lists", json={"name": "March"})
    assert made.status_code == 201 and made.get_json()["leads"] == {}
    error_of(
        api.post(f"{ROOT}/campaigns/{seeded['campaign_id']}/lists", json={"name": "March"}),
        409,
        "conflict",
    )
    csv_text = "Mobile,Given name,notes\n+1 212 555 0101,Ann,-- call after 5pm\n12,Bad,x\n"
    list_id = made.get_json()["id"]
    response = api.post(
        f"{ROOT}/lists/{list_id}/imports",
        data={
            "file": (io.BytesIO(csv_text.encode()), "march.csv"),
            "mapping": json.dumps({"phone": "Mobile", "first_name": "Given name"}),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    run = _wait(api, response.headers["Location"])
    assert (run["status"], run["imported"], run["invalid"]) == ("completed", 1, 1)
    errors = api.get(f"{ROOT}/imports/{run['id']}/errors").get_json()["data"]
    assert errors[0]["row"] == 3 and errors[0]["field"] == "phone"
    assert api.get(f"{ROOT}/lists/{list_id}").get_json()["leads"] == {"new": 1}
    [lead] = api.get(f"{ROOT}/leads?q=(212) 555-0101").get_json()["data"]
    assert lead["first_name"] == "Ann" and lead["custom_fields"] == {"notes": "-- call after 5pm"}
    assert api.get(f"{ROOT}/leads?campaign_id={seeded['campaign_id']}&status=new").get_json()[
        "data"
    ]
    error = error_of(
        api.post(
            f"{ROOT}/lists/{list_id}/imports",
            data={"file": (io.BytesIO(csv_text.encode()), "m.csv"), "mapping": '{"phone": "Tel"}'},
            content_type="multipart/form-data",
        ),
        422,
        "invalid",
    )
    assert error["field"] == "mapping" and "Mobile" in error["message"]
    error = error_of(api.post(f"{ROOT}/lists/{list_id}/imports", data={}), 422, "invalid")
    assert error["field"] == "file"
    assert api.patch(f"{ROOT}/lists/{list_id}", {"active": False}).get_json()["active"] is False
    with app.app_context():
        session = web_db.session()
        session.execute(
            update(Lead)
            .where(Lead.list_id == list_id)
            .values(status="done", attempts=2, last_outcome="no_answer")
        )
        session.commit()
    recycled = api.post(f"{ROOT}/lists/{list_id}/recycle").get_json()
    assert (recycled["changed"], recycled["untouched"]) == (1, 0)
    assert recycled["list"]["leads"] == {"recycled": 1}
    reset = api.post(f"{ROOT}/lists/{list_id}/reset").get_json()
    assert (reset["action"], reset["changed"], reset["list"]["leads"]) == ("reset", 1, {"new": 1})
    error_of(api.post(f"{ROOT}/lists/999/reset"), 404, "not_found")
    assert api_as(app, "supervisor").post(f"{ROOT}/lists/{list_id}/reset").status_code == 403


def test_a_leads_history_holds_its_calls_dispositions_and_blocking_entry(app: Flask) -> None:
    seeded = seed_calls(app)
    api = api_as(app, "supervisor")
    lead = api.get(f"{ROOT}/leads/{seeded['lead_ids'][0]}").get_json()
    assert lead["first_name"] == FORMULA  # kept as written; neutralised only in exports
    assert [c["id"] for c in lead["calls"]] == [seeded["connected_id"]]
    assert lead["dispositions"][0]["code"] == "PTP"
    assert lead["dispositions"][0]["promise_amount"] == "250.00"
    blocked = api.get(f"{ROOT}/leads/{seeded['lead_ids'][1]}").get_json()["blocked_by"]
    assert blocked["source"] == "opt_out_key"
    error = error_of(api.get(f"{ROOT}/leads?q=(212) 55"), 422, "invalid")
    assert error["field"] == "q"


# -- do not call


def test_numbers_are_added_searched_imported_and_removed(app: Flask) -> None:
    seeded = seed_domain(app)
    supervisor = api_as(app, "supervisor")
    added = supervisor.post(
        f"{ROOT}/dnc",
        json={
            "phone": "(212) 555-0123",
            "campaign_id": seeded["campaign_id"],
            "expires_at": "2027-01-01T00:00:00-05:00",
            "reason": "asked on the phone",
        },
    )
    assert added.status_code == 201, added.get_data(as_text=True)
    entry = added.get_json()
    assert entry["phone_e164"] == "+12125550123" and entry["scope"] == "campaign"
    assert entry["expires_at"] == "2027-01-01T05:00:00+00:00" and entry["source"] == "api"
    found = supervisor.get(f"{ROOT}/dnc?phone=2125550123").get_json()["data"]
    assert [e["id"] for e in found] == [entry["id"]]
    error = error_of(
        supervisor.post(f"{ROOT}/dnc", json={"phone": "+12125550124", "campaign_id": 999}),
        422,
        "invalid",
    )
    assert error["field"] == "campaign_id"
    error_of(supervisor.delete(f"{ROOT}/dnc/{entry['id']}"), 403, "forbidden")
    manager = api_as(app, "manager")
    summary = manager.post(
        f"{ROOT}/dnc/imports",
        data={"file": (io.BytesIO(b"phone\n2125550150\nnonsense\n+12125550151\n"), "dnc.csv")},
        content_type="multipart/form-data",
    ).get_json()
    assert (summary["lines"], summary["added"], summary["invalid"]) == (3, 2, 1)
    assert summary["errors"][0]["value"] == "nonsense"
    assert manager.delete(f"{ROOT}/dnc/{entry['id']}").status_code == 204
    error_of(manager.delete(f"{ROOT}/dnc/{entry['id']}"), 404, "not_found")
    with app.app_context():
        numbers = set(web_db.session().scalars(select(DncEntry.phone_e164)))
    assert {"+12125550150", "+12125550151"} <= numbers and "+12125550123" not in numbers


# -- attempts, dispositions, reports


def test_attempts_are_searched_by_day_in_the_users_zone_and_every_filter(app: Flask) -> None:
    seeded = seed_calls(app)
    manager = api_as(app, "manager")  # in America/New_York
    day = f"from={DAY.isoformat()}&to={DAY.isoformat()}"
    ids = [a["id"] for a in every_page(manager, f"{ROOT}/attempts?{day}&limit=1")]
    # 02:30 UTC on the 10th is the 9th in New York.
    assert ids == [seeded["connected_id"], seeded["machine_id"]]
    before = f"from={DAY.replace(day=9).isoformat()}"
    assert [a["id"] for a in manager.get(f"{ROOT}/attempts?{before}").get_json()["data"]] == [
        seeded["abandoned_id"]
    ]
    span = "from=2026-03-09&to=2026-03-10"
    for query, expected in (
        ("outcome=abandoned", [seeded["abandoned_id"]]),
        ("outcome=machine", [seeded["machine_id"]]),
        (f"agent_id={seeded['agent_id']}", [seeded["connected_id"]]),
        ("phone=(212) 555-0171", [seeded["machine_id"]]),
        ("disposition=PTP", [seeded["connected_id"]]),
        (
            f"campaign_id={seeded['campaign_id']}",
            [seeded["connected_id"], seeded["machine_id"], seeded["abandoned_id"]],
        ),
    ):
        got = [a["id"] for a in manager.get(f"{ROOT}/attempts?{span}&{query}").get_json()["data"]]
        assert got == expected, query
    attempt = manager.get(f"{ROOT}/attempts/{seeded['connected_id']}").get_json()
    assert attempt["talk_s"] == 120.0 and attempt["disposition"] == "PTP"
    assert attempt["notes"] == FORMULA and attempt["recording"] is None
    error = error_of(manager.get(f"{ROOT}/attempts?outcome=lost"), 422, "invalid")
    assert "abandoned" in error["message"]
    error = error_of(manager.get(f"{ROOT}/attempts?from=2026-03-10&to=2026-03-01"), 422, "invalid")
    assert error["field"] == "to"
    error = error_of(manager.get(f"{ROOT}/attempts?from=2024-01-01&to=2026-01-01"), 422, "invalid")
    assert "at most 400" in error["message"]


def test_dispositions_are_listed_and_reports_answer_in_json(app: Flask) -> None:
    seeded = seed_calls(app)
    admin = api_as(app, "admin")  # in UTC
    day = f"from={DAY.isoformat()}"
    [disposition] = admin.get(f"{ROOT}/dispositions?{day}&code=PTP").get_json()["data"]
    assert disposition["campaign_id"] == seeded["campaign_id"]
    assert admin.get(f"{ROOT}/dispositions?{day}&code=RPC").get_json()["data"] == []
    summary = admin.get(f"{ROOT}/reports/campaigns/{seeded['campaign_id']}?{day}").get_json()
    assert summary["attempts"] == 3 and summary["by_outcome"]["machine"] == 1
    assert summary["live_answers"] == 2 and summary["abandon_rate"] == 0.5
    assert summary["dialing_hours"] == 3 and summary["contacts_per_hour"] == pytest.approx(0.33)
    assert summary["dispositions"] == {"PTP": 1}
    assert summary["promises_to_pay"] == {"count": 1, "amount": "250.00"}
    assert summary["leads_by_status"] == {"new": 3}
    assert summary["period"]["time_zone"] == "UTC" and summary["period"]["from"] == "2026-03-10"
    compliance = admin.get(f"{ROOT}/reports/compliance?{day}").get_json()
    assert compliance["gate_refusals"] == {"Collections Q3": {"calling_hours": 4}}
    assert compliance["opt_outs"] == {"Collections Q3": {"opt_out_key": 1}}
    agents = admin.get(f"{ROOT}/reports/agents?{day}").get_json()["agents"]
    assert agents[0]["username"] == USERNAMES["agent"]
    assert agents[0]["pause_by_code"]["LOGIN"] > 0
    error_of(api_as(app, "agent").get(f"{ROOT}/reports/compliance"), 403, "forbidden")


def test_a_recording_is_streamed_to_those_who_may_hear_it(app: Flask, tmp_path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "recordings" / "Collections_Q3"
    folder.mkdir(parents=True)
    wav = folder / "1.wav"
    wav.write_bytes(b"RIFF" + bytes(2000))
    app.config["RECORDINGS_DIR"] = str(tmp_path / "recordings")
    seeded = seed_calls(app, recording=str(wav))
    manager = api_as(app, "manager")
    attempt = manager.get(f"{ROOT}/attempts/{seeded['connected_id']}").get_json()
    assert attempt["recording"] == f"{ROOT}/attempts/{seeded['connected_id']}/recording"
    response = manager.get(attempt["recording"])
    assert response.status_code == 200 and response.mimetype == "audio/wav"
    assert response.data == wav.read_bytes()
    partial = manager.get(attempt["recording"], headers={"Range": "bytes=0-3"})
    assert partial.status_code == 206 and partial.data == b"RIFF"
    error_of(api_as(app, "agent").get(attempt["recording"]), 403, "forbidden")
    error_of(manager.get(f"{ROOT}/attempts/{seeded['machine_id']}/recording"), 404, "not_found")


# -- agents


def test_an_agent_works_through_the_api_for_themselves_only(app: Flask) -> None:
    seeded = seed_calls(app)
    me = agent_id(app)
    agent = api_as(app, "agent")
    logged = agent.post(f"{ROOT}/agents/{me}/login", json={"campaign_id": seeded["campaign_id"]})
    assert logged.status_code == 200, logged.get_data(as_text=True)
    assert logged.get_json()["agent"]["state"] == "paused"
    assert agent.post(f"{ROOT}/agents/{me}/ready").get_json()["agent"]["state"] == "ready"
    error = error_of(
        agent.post(f"{ROOT}/agents/{me}/pause", json={"code": "NAP"}), 409, "agent_state"
    )
    assert "BREAK" in error["message"]
    paused = agent.post(f"{ROOT}/agents/{me}/pause", json={"code": "LUNCH"}).get_json()
    assert (paused["result"], paused["agent"]["pause_code"]) == ("paused", "LUNCH")
    error = error_of(
        agent.post(f"{ROOT}/agents/{me}/disposition", json={"code": "RPC"}), 409, "agent_state"
    )
    assert "no ended call" in error["message"]
    error = error_of(
        agent.post(f"{ROOT}/agents/{me}/disposition", json={"code": "RPC", "party": "boss"}),
        422,
        "invalid",
    )
    assert error["field"] == "party" and error["value"] == "boss"
    error = error_of(
        agent.post(f"{ROOT}/agents/{me}/dial", json={"number": "+12125550199"}), 409, "agent_state"
    )
    assert "node" in error["message"]
    error_of(agent.post(f"{ROOT}/agents/{me}/hangup"), 409, "agent_state")
    error_of(agent.post(f"{ROOT}/agents/{me}/transfer", json={"target": "sam"}), 409, "agent_state")
    assert agent.post(f"{ROOT}/agents/{me}/logout").get_json()["agent"]["state"] == "logged_out"
    # Not for anyone else, and the list of agents is the floor's.
    other = me + 100
    error = error_of(agent.post(f"{ROOT}/agents/{other}/ready"), 403, "forbidden")
    assert error["field"] == "user_id"
    error_of(agent.get(f"{ROOT}/agents"), 403, "forbidden")
    # A supervisor logs the agent in and pauses them, on the record.
    supervisor = api_as(app, "supervisor")
    supervisor.post(f"{ROOT}/agents/{me}/login", json={"campaign_id": seeded["campaign_id"]})
    [listed] = supervisor.get(f"{ROOT}/agents?state=paused").get_json()["data"]
    assert listed["user_id"] == me and listed["pause_code"] == "LOGIN"
    error_of(supervisor.post(f"{ROOT}/agents/{seeded['agent_id'] + 100}/ready"), 404, "not_found")
    with app.app_context():
        entry = (
            web_db.session()
            .scalars(select(AuditLog).where(AuditLog.entity == "agent_session"))
            .one()
        )
    assert (entry.actor, entry.action) == (USERNAMES["supervisor"], "login")


# -- the OpenAPI document and the interactive documentation


def test_the_openapi_document_is_valid_and_describes_every_route(app: Flask) -> None:
    from openapi_spec_validator import validate

    spec = api_as(app, "agent").get(f"{ROOT}/openapi.json").get_json()
    validate(spec)
    documented = {
        (path, method.upper())
        for path, operations in spec["paths"].items()
        for method in operations
    }
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(ROOT) or rule.endpoint == "api_spec.openapi":
            continue
        path = rule.rule.replace("<int:", "{").replace(">", "}")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, (path, method)
    assert spec["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    attempts = spec["paths"]["/api/v1/attempts"]["get"]
    assert {p["name"] for p in attempts["parameters"]} >= {"from", "to", "outcome", "cursor"}


def test_the_interactive_documentation_is_served_from_the_package(app: Flask) -> None:
    manager = signed_in(app, "manager")
    page = manager.get("/api/docs/").get_data(as_text=True)
    assert "/api/docs/assets/swagger-ui-bundle.js" in page and "/static/api-docs.js" in page
    assert "https://" not in page and "<script>" not in page
    asset = manager.get("/api/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200 and b"SwaggerUIBundle" in asset.data
    assert asset.headers["Content-Security-Policy"].startswith("default-src 'self'")
    assert manager.get("/api/docs/assets/index.html").status_code == 404
    visitor = Console(app.test_client()).get("/api/docs/")
    assert visitor.status_code == 302 and visitor.location.startswith("/auth/login")


def test_the_api_works_on_postgresql_too(pg_or_sqlite_app: Flask) -> None:
    app = pg_or_sqlite_app
    seeded = seed_calls(app)
    admin = api_as(app, "admin")
    ids = [a["id"] for a in every_page(admin, f"{ROOT}/attempts?from=2026-03-10&limit=1")]
    assert ids == [seeded["connected_id"], seeded["machine_id"], seeded["abandoned_id"]]
    summary = admin.get(f"{ROOT}/reports/campaigns/{seeded['campaign_id']}?from=2026-03-10")
    assert summary.get_json()["promises_to_pay"] == {"count": 1, "amount": "250.00"}
    created = admin.post(f"{ROOT}/campaigns", json={"name": "PG", "kind": "appointment"})
    assert created.status_code == 201
    with app.app_context():
        assert web_db.session().scalar(select(Campaign.kind).where(Campaign.name == "PG"))
        assert web_db.session().scalars(select(Lead.id)).all()
