"""Campaign pages: create and edit every setting, the limits the law sets, clone, start /
pause / stop, the script preview, and the audit log of each change."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import select

from campaigns.dispositions import rules_for
from campaigns.models import AuditLog, Campaign, DispositionCode, LeadList
from tests.web.conftest import Console, seed_domain
from web import db as web_db


def settings(**changes: Any) -> dict[str, Any]:
    """A complete campaign form as a manager would send it."""
    form: dict[str, Any] = {
        "kind": "telemarketing",
        "name": "Autumn sale",
        "dial_mode": "predictive",
        "dial_ratio": "1.0",
        "calling_days": ["0", "1", "2", "3", "4"],
        "calling_start": "09:30",
        "calling_end": "19:45",
        "holidays": "2026-12-25\n2026-11-26, 2026-12-25",
        "trunk_name": "carrier1",
        "caller_id": "+12125550100",
        "seller_name": "Acme Insurance",
        "callback_number": "+12125550111",
        "safe_harbor_message": "",
        "ring_timeout_s": "22",
        "abandon_target": "2.5",
        "max_attempts": "5",
        "recycled_mix": "40",
        "script": "Hello {first_name}, this is {seller}.",
        "record_calls": "y",
        "retry_busy": "5",
        "max_busy": "3",
        "retry_no_answer": "120",
        "retry_machine": "240",
        "retry_abandoned": "1440",
        "retry_congestion": "10",
        "retry_failed": "30",
        "retry_CALLBACK": "1440",
        "amd_initial_silence_ms": "3000",
        "amd_greeting_max_ms": "2000",
        "amd_after_greeting_silence_ms": "800",
        "amd_min_word_ms": "100",
        "amd_between_words_silence_ms": "150",
        "amd_max_words": "5",
        "amd_total_analysis_ms": "5000",
        "amd_beep_detection": "y",
        "amd_beep_min_ms": "150",
        "amd_beep_min_hz": "400.0",
        "amd_beep_max_hz": "2000.0",
        "amd_beep_purity": "0.98",
        "amd_vad_aggressiveness": "2",
        "amd_voice_min_dbfs": "-50.0",
        "amd_voice_above_noise_db": "8.0",
        "amd_voice_hold_above_noise_db": "4.0",
        "amd_noise_floor_window_ms": "3000",
        "max_lines": "0",
        "wrapup_timeout_s": "90",
        "default_disposition": "NO_DISPOSITION",
        "pause_codes": "break, lunch\nCOACHING",
        "retry_human": "120",
        "retry_NO_DISPOSITION": "1440",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def campaign(app: Flask, name: str = "Autumn sale") -> Campaign:
    with app.app_context():
        return web_db.session().scalars(select(Campaign).where(Campaign.name == name)).one()


def test_the_new_campaign_form_shows_the_compliant_defaults(manager: Console) -> None:
    page = manager.get("/campaigns/new?kind=collections").get_data(as_text=True)
    assert 'name="abandon_target"' in page and 'value="3.00"' in page
    assert 'name="ring_timeout_s"' in page and 'value="25"' in page
    # Collections recycle by the kind's dispositions; an opt-out is never offered for recycling.
    assert "Right-party contact" in page and 'name="retry_DNC"' not in page
    assert '<option selected value="carrier1">' in page or 'value="carrier1"' in page


def test_a_manager_creates_a_campaign_with_every_setting(app: Flask, manager: Console) -> None:
    response = manager.post("/campaigns/new", settings())
    assert response.status_code == 302, response.get_data(as_text=True)
    created = campaign(app)
    assert created.status == "draft" and created.kind == "telemarketing"
    assert (created.calling_start, created.calling_end) == ("09:30", "19:45")
    assert created.calling_days == [0, 1, 2, 3, 4]
    assert created.holidays == ["2026-11-26", "2026-12-25"]
    assert created.abandon_target == 0.025 and created.recycled_mix == 0.4
    assert created.ring_timeout_s == 22 and created.max_attempts == 5
    assert created.record_calls and not created.uk_mode
    assert created.recycling_rules == {
        "busy": {"retry_minutes": 5, "max_attempts": 3, "final_status": "done"}
    }
    assert rules_for(created.recycling_rules)["busy"].max_attempts == 3
    assert created.amd_settings == {"greeting_max_ms": 2000}
    assert created.pause_codes == ["BREAK", "LUNCH", "COACHING"]
    assert (created.wrapup_timeout_s, created.default_disposition) == (90, "NO_DISPOSITION")
    with app.app_context():
        session = web_db.session()
        lists = session.scalars(select(LeadList.name).where(LeadList.campaign_id == created.id))
        assert lists.all() == ["default"]
        codes = session.scalars(
            select(DispositionCode.code).where(DispositionCode.campaign_id == created.id)
        ).all()
        assert "SALE" in codes
        entry = session.scalars(select(AuditLog)).one()
    assert (entry.actor, entry.action, entry.entity) == ("mona", "create", "campaign")
    assert entry.details["after"]["abandon_target"] == 0.025


def test_the_law_and_the_form_refuse_what_they_must(app: Flask, manager: Console) -> None:
    cases = {
        "abandon_target": ("3.5", "from 0.1% to 3%"),
        "ring_timeout_s": ("10", "from 15 to 300 seconds"),
        "caller_id": ("2125550100", "an E.164 number"),
        "calling_end": ("08:00", "Must be later than the start."),
        "holidays": ("2026-02-30", "&#39;2026-02-30&#39; is not a date"),
        "safe_harbor_message": ("Call {number}", "unknown placeholder"),
        "calling_days": (None, "Choose at least one calling day."),
        "retry_busy": ("-5", "from 0 to"),
        "amd_vad_aggressiveness": ("7", "vad_aggressiveness=7: expected 0..3"),
        "pause_codes": ("lunch break", "&#39;LUNCH BREAK&#39;: letters, digits and _"),
        "wrapup_timeout_s": ("2", "from 5 to 3600 seconds"),
        "default_disposition": ("DNC", "Not a valid choice"),
    }
    for field, (value, message) in cases.items():
        form = settings(**{field: value})
        response = manager.post("/campaigns/new", form)
        assert response.status_code == 422, field
        assert message in response.get_data(as_text=True), field
    with app.app_context():
        assert web_db.session().scalars(select(Campaign)).all() == []


def test_names_are_unique(app: Flask, manager: Console) -> None:
    manager.post("/campaigns/new", settings())
    response = manager.post("/campaigns/new", settings())
    assert response.status_code == 422
    assert "A campaign named &#39;Autumn sale&#39; exists already." in response.get_data(
        as_text=True
    )


def test_editing_records_only_what_changed(app: Flask, manager: Console) -> None:
    manager.post("/campaigns/new", settings())
    created = campaign(app)
    page = manager.get(f"/campaigns/{created.id}/edit").get_data(as_text=True)
    assert 'value="Autumn sale"' in page and 'value="2.50"' in page and 'value="5"' in page
    response = manager.post(
        f"/campaigns/{created.id}/edit",
        settings(kind="survey", dial_mode="power", dial_ratio="2.5", uk_mode="y"),
    )
    assert response.status_code == 302
    edited = campaign(app)
    assert (edited.dial_mode, edited.dial_ratio, edited.uk_mode) == ("power", 2.5, True)
    assert edited.kind == "telemarketing"  # fixed once created
    with app.app_context():
        entry = web_db.session().scalars(select(AuditLog).order_by(AuditLog.id.desc())).first()
    assert entry is not None and entry.action == "update"
    assert entry.details == {
        "before": {"dial_mode": "predictive", "dial_ratio": 1.0, "uk_mode": False},
        "after": {"dial_mode": "power", "dial_ratio": 2.5, "uk_mode": True},
    }


def test_clone_copies_every_setting_into_a_draft(app: Flask, manager: Console) -> None:
    manager.post("/campaigns/new", settings())
    source = campaign(app)
    response = manager.post(f"/campaigns/{source.id}/clone")
    assert response.status_code == 302
    twin = campaign(app, "Autumn sale (copy)")
    assert response.location == f"/campaigns/{twin.id}/edit"
    for name in ("script", "holidays", "recycling_rules", "amd_settings", "abandon_target"):
        assert getattr(twin, name) == getattr(source, name), name
    assert twin.status == "draft"
    manager.post(f"/campaigns/{source.id}/clone")
    assert campaign(app, "Autumn sale (copy 2)").id != twin.id


def test_start_pause_resume_and_stop(app: Flask, manager: Console) -> None:
    manager.post("/campaigns/new", settings())
    created = campaign(app)
    url = f"/campaigns/{created.id}/status"
    for action, status in (
        ("start", "active"),
        ("pause", "paused"),
        ("start", "active"),
        ("stop", "stopped"),
    ):
        assert manager.post(url, {"action": action}).status_code == 302
        assert campaign(app).status == status, action
    manager.post(url, {"action": "pause"})
    assert campaign(app).status == "stopped"
    page = manager.get(f"/campaigns/{created.id}").get_data(as_text=True)
    assert "Not changed: a stopped campaign cannot pause." in page
    with app.app_context():
        actions = (
            web_db.session()
            .scalars(
                select(AuditLog.action).where(AuditLog.entity == "campaign").order_by(AuditLog.id)
            )
            .all()
        )
    assert actions == ["create", "start", "pause", "start", "stop"]


def test_a_campaign_without_trunk_or_safe_harbor_does_not_start(
    app: Flask, manager: Console
) -> None:
    manager.post(
        "/campaigns/new",
        settings(trunk_name="", seller_name="", caller_id="", callback_number=""),
    )
    created = campaign(app)
    page = manager.get(f"/campaigns/{created.id}").get_data(as_text=True)
    assert "Before it can start:" in page
    manager.post(f"/campaigns/{created.id}/status", {"action": "start"})
    assert campaign(app).status == "draft"
    page = manager.get(f"/campaigns/{created.id}").get_data(as_text=True)
    assert "Choose the SIP trunk" in page and "seller_name is empty" in page


def test_a_supervisor_may_pause_but_not_edit(app: Flask, supervisor: Console) -> None:
    ids = seed_domain(app)
    campaign_id = ids["campaign_id"]
    with app.app_context():
        session = web_db.session()
        session.get(Campaign, campaign_id).status = "active"
        session.commit()
    page = supervisor.get(f"/campaigns/{campaign_id}").get_data(as_text=True)
    assert "Pause" in page and "Edit settings" not in page
    assert (
        supervisor.post(f"/campaigns/{campaign_id}/status", {"action": "pause"}).status_code == 302
    )
    assert supervisor.get(f"/campaigns/{campaign_id}/edit").status_code == 403


def test_the_script_preview_fills_fields_from_the_campaigns_first_lead(
    app: Flask, manager: Console
) -> None:
    ids = seed_domain(app)
    manager.get("/campaigns/new")
    preview = manager.client.post(
        "/campaigns/script-preview.json",
        json={
            "script": "Hi {first_name} {last_name}, your {Plan} plan. {nickname} <b>",
            "seller": "Acme",
            "campaign_id": ids["campaign_id"],
        },
        headers={"X-CSRFToken": manager.token or ""},
    )
    assert preview.status_code == 200
    assert preview.json == {
        "text": "Hi Jane Doe, your gold plan. {nickname} <b>",
        "unknown": ["nickname"],
        "source": f"lead {ids['lead_id']}",
    }
    sample = manager.client.post(
        "/campaigns/script-preview.json",
        json={"script": "Hello {first_name}"},
        headers={"X-CSRFToken": manager.token or ""},
    )
    assert sample.json["text"] == "Hello Jane" and sample.json["source"] == "a sample lead"


def test_the_campaign_page_shows_the_safe_harbor_message_and_escapes_the_script(
    app: Flask, manager: Console
) -> None:
    manager.post("/campaigns/new", settings(script="<script>alert(1)</script>"))
    created = campaign(app)
    page = manager.get(f"/campaigns/{created.id}").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "Acme Insurance" in page and "2 1 2, 5 5 5, 0 1 1 1" in page
    listing = manager.get("/campaigns/").get_data(as_text=True)
    assert "Autumn sale" in listing and "09:30–19:45" in listing


def test_a_campaign_that_leaves_voicemail_messages_needs_the_messages_text(
    app: Flask, manager: Console
) -> None:
    refused = manager.post("/campaigns/new", settings(amd_action="message"))
    assert refused.status_code == 422
    assert "voicemail_message is empty" in refused.get_data(as_text=True)
    refused = manager.post(
        "/campaigns/new", settings(amd_action="message", voicemail_message="Call {number}")
    )
    assert refused.status_code == 422
    assert "use {seller} and {callback}" in refused.get_data(as_text=True)
    refused = manager.post("/campaigns/new", settings(amd_action="fax"))
    assert refused.status_code == 422 and "Not a valid choice" in refused.get_data(as_text=True)
    with app.app_context():
        assert web_db.session().scalars(select(Campaign)).all() == []
    message = "This is {seller} <about your policy>. Please call {callback}."
    response = manager.post(
        "/campaigns/new", settings(amd_action="message", voicemail_message=message)
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    created = campaign(app)
    assert (created.amd_action, created.voicemail_message) == ("message", message)
    page = manager.get(f"/campaigns/{created.id}").get_data(as_text=True)
    assert "This is {seller} &lt;about your policy&gt;." in page
    edit = manager.get(f"/campaigns/{created.id}/edit").get_data(as_text=True)
    assert '<option selected value="message">' in edit
    manager.post(f"/campaigns/{created.id}/edit", settings(voicemail_message=message))
    assert campaign(app).amd_action == "hangup", "hanging up is the default"


def test_the_campaign_page_forecasts_each_dial_mode_from_the_campaigns_own_calls(
    app: Flask, manager: Console
) -> None:
    import datetime as dt

    from campaigns.agents import add_to_campaign
    from campaigns.models import CallAttempt, User
    from tests.web.conftest import USERNAMES

    ids = seed_domain(app)
    page = manager.get(f"/campaigns/{ids['campaign_id']}").get_data(as_text=True)
    assert f'data-url="/campaigns/{ids["campaign_id"]}/forecast.json"' in page

    typical = manager.get(f"/campaigns/{ids['campaign_id']}/forecast.json").json
    assert typical["typical"] is True and typical["agents"] == 1
    assert {m["mode"] for m in typical["modes"]} >= {"progressive", "predictive"}

    # 300 calls, 40% answered by a person with 60 s of talk; a team of three.
    with app.app_context():
        session = web_db.session()
        found = session.get_one(Campaign, ids["campaign_id"])
        for role in ("manager", "supervisor"):
            user = session.scalars(select(User).where(User.username == USERNAMES[role])).one()
            add_to_campaign(session, user.id, found)
        start = dt.datetime.now(dt.UTC) - dt.timedelta(hours=5)
        for i in range(300):
            started = start + dt.timedelta(seconds=40 * i)
            human = i % 5 < 2
            answered = started + dt.timedelta(seconds=8)
            session.add(
                CallAttempt(
                    lead_id=ids["lead_id"],
                    campaign_id=found.id,
                    phone_e164="+12125550142",
                    started_at=started,
                    outcome="human" if human else "no_answer",
                    answered_at=answered if human else None,
                    bridged_at=answered if human else None,
                    ended_at=answered + dt.timedelta(seconds=60)
                    if human
                    else started + dt.timedelta(seconds=25),
                )
            )
        session.commit()
    own = manager.get(f"/campaigns/{ids['campaign_id']}/forecast.json").json
    assert own["typical"] is False and own["agents"] == 3 and own["attempts"] == 300
    assert own["live_rate"] == 0.4 and own["talk_s"] == 60
    for mode in own["modes"]:
        assert mode["contacts_per_hour"] > 0 and 0 <= mode["abandon_rate"] < 1
