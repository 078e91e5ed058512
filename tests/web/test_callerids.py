"""The caller-ID page of a campaign: its numbers with their cap, calls today and answer rate
against the campaign's (burnt ones flagged); managers add and remove numbers, in the audit log;
supervisors see the page and change nothing."""

from __future__ import annotations

import datetime as dt

from flask import Flask
from sqlalchemy import insert, select

from campaigns.callerids import number_day
from campaigns.models import AuditLog, CallerId, CallerIdDay, utcnow
from tests.web.api_helpers import api_as, error_of
from tests.web.conftest import Console, seed_domain
from web import db as web_db


def pool(app: Flask, campaign_id: int) -> dict[str, int | None]:
    with app.app_context():
        rows = web_db.session().execute(
            select(CallerId.phone_e164, CallerId.daily_cap).where(
                CallerId.campaign_id == campaign_id
            )
        )
        return dict(rows.all())


def test_a_manager_adds_numbers_changes_a_cap_and_removes_one(app: Flask, manager: Console) -> None:
    campaign_id = seed_domain(app)["campaign_id"]
    page = f"/campaigns/{campaign_id}/caller-ids/"
    assert "caller-ID pool" in manager.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    response = manager.post(page + "add", {"number": "(305) 555-0100", "daily_cap": "80"})
    assert response.status_code == 302
    text = manager.get(page).get_data(as_text=True)
    assert "+13055550100 is in the pool (at most 80 calls a day)" in text
    manager.post(page + "add", {"number": "+1 305 555 0100", "daily_cap": ""})
    refused = manager.post(page + "add", {"number": "305", "daily_cap": "10"})
    assert refused.status_code == 302
    text = manager.get(page).get_data(as_text=True)
    assert "Not added: number: &#39;305&#39;: not a valid number" in text
    manager.post(page + "add", {"number": "+13105550100", "daily_cap": "-4"})
    assert "daily_cap: &#39;-4&#39; is not a number of calls" in manager.get(page).get_data(
        as_text=True
    )
    assert pool(app, campaign_id) == {"+12125550100": 100, "+13055550100": None}
    with app.app_context():
        session = web_db.session()
        number_id = session.scalar(select(CallerId.id).where(CallerId.phone_e164 == "+13055550100"))
        entries = session.scalars(
            select(AuditLog).where(AuditLog.entity == "caller_id").order_by(AuditLog.id)
        ).all()
    assert [e.action for e in entries] == ["add", "update"]
    assert entries[1].details == {"before": {"daily_cap": 80}, "after": {"daily_cap": None}}
    manager.post(f"{page}{number_id}/remove")
    assert pool(app, campaign_id) == {"+12125550100": 100}
    # A number of another campaign's pool is not this campaign's to remove.
    assert (
        manager.post(f"/campaigns/{campaign_id + 1}/caller-ids/{number_id}/remove").status_code
        == 404
    )


def test_the_page_shows_each_numbers_answer_rate_against_the_campaigns(
    app: Flask, supervisor: Console
) -> None:
    campaign_id = seed_domain(app)["campaign_id"]
    now = utcnow()
    new_york, miami = "+12125550100", "+13055550100"
    with app.app_context():
        session = web_db.session()
        session.add(CallerId(campaign_id=campaign_id, phone_e164=miami))
        session.execute(
            insert(CallerIdDay),
            [
                # Today 30 calls from New York's number; yesterday 100 more, 40 answered.
                {
                    "campaign_id": campaign_id,
                    "phone_e164": new_york,
                    "day": number_day(new_york, now),
                    "dials": 30,
                    "ended": 30,
                    "live": 12,
                },
                {
                    "campaign_id": campaign_id,
                    "phone_e164": new_york,
                    "day": number_day(new_york, now) - dt.timedelta(days=1),
                    "dials": 100,
                    "ended": 100,
                    "live": 40,
                },
                # Miami's: 5 answers in 120 calls, burnt.
                {
                    "campaign_id": campaign_id,
                    "phone_e164": miami,
                    "day": number_day(miami, now),
                    "dials": 120,
                    "ended": 120,
                    "live": 5,
                },
            ],
        )
        session.commit()
    text = supervisor.get(f"/campaigns/{campaign_id}/caller-ids/").get_data(as_text=True)
    rows = text.split("<tbody>")[1].split("</tbody>")[0].split("</tr>")
    assert new_york in rows[0] and miami in rows[1]
    # 57 answers in 250 calls: 22.8%; New York 40.0% (1.75x), Miami 4.2% (0.18x), burnt.
    assert "22.8%" in text
    assert "40.0%" in rows[0] and "1.75×" in rows[0] and "burnt" not in rows[0]
    assert "4.2%" in rows[1] and "0.18×" in rows[1] and "burnt" in rows[1]
    assert ">30<" in rows[0] and ">130<" in rows[0]  # today, and calls in 7 days
    # A supervisor watches; the pool is the managers'.
    assert "Add a number" not in text and "Remove" not in text
    refused = supervisor.post(
        f"/campaigns/{campaign_id}/caller-ids/add", {"number": "+13105550100"}
    )
    assert refused.status_code == 403
    assert pool(app, campaign_id) == {new_york: 100, miami: None}


def test_programs_keep_the_pool_and_read_the_figures_through_the_api(app: Flask) -> None:
    campaign_id = seed_domain(app)["campaign_id"]
    root = f"/api/v1/campaigns/{campaign_id}/caller-ids"
    manager = api_as(app, "manager")
    added = manager.post(root, json={"phone": "(305) 555-0100", "daily_cap": 80})
    assert added.status_code == 201, added.get_data(as_text=True)
    assert (added.get_json()["phone_e164"], added.get_json()["daily_cap"]) == ("+13055550100", 80)
    error = error_of(manager.post(root, json={"phone": "305"}), 422, "invalid")
    assert error["field"] == "phone" and "'305'" in error["message"]
    error = error_of(
        manager.post(root, json={"phone": "+13055550100", "daily_cap": 0}), 422, "invalid"
    )
    assert error["field"] == "daily_cap"
    figures = api_as(app, "supervisor").get(f"{root}?days=30").get_json()
    assert figures["days"] == 30
    assert [(n["phone_e164"], n["daily_cap"]) for n in figures["pool"]] == [
        ("+12125550100", 100),
        ("+13055550100", 80),
    ]
    assert [n["number"] for n in figures["numbers"]] == ["+12125550100", "+13055550100"]
    error_of(api_as(app, "supervisor").delete(f"{root}/{added.get_json()['id']}"), 403, "forbidden")
    assert manager.delete(f"{root}/{added.get_json()['id']}").status_code == 204
    error_of(manager.delete(f"{root}/{added.get_json()['id']}"), 404, "not_found")
    assert pool(app, campaign_id) == {"+12125550100": 100}
