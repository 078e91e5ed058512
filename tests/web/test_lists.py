"""Lead lists: upload, the mapping step on a preview, the background import and its progress,
the error report (shown, and downloaded with formula cells neutralised), enable / disable."""

from __future__ import annotations

import csv
import io
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from campaigns.models import AuditLog, ImportRun, Lead, LeadList
from tests.web.conftest import Console, seed_domain
from web import db as web_db

ROWS = [
    ["Mobile No", "Given", "Family", "Account", "Notes"],
    ["(212) 555-0123", "Ana", "Lopez", "AC-7", "call after 5pm"],
    ["(305) 555-0188", "Ben", "<script>alert(1)</script>", "AC-8", ""],
    ["not a phone", "Chloe", "Ng", "AC-9", ""],
    ['=HYPERLINK("http://x")', "Dev", "Rao", "AC-10", ""],
    ["(212) 555-0123", "Ana", "Again", "AC-11", ""],
]


def lead_file(folder: Path, rows: list[list[str]] = ROWS) -> Path:
    path = folder / "spring leads.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(rows)
    return path


def upload(console: Console, campaign_id: int, path: Path) -> Any:
    with path.open("rb") as handle:
        return console.post(
            f"/campaigns/{campaign_id}/lists/upload",
            {"file": (handle, path.name)},
            content_type="multipart/form-data",
        )


def mapping(**changes: str) -> dict[str, str]:
    form = {
        "target": "__new__",
        "new_list": "spring",
        "region": "US",
        "map_phone": "Mobile No",
        "map_first_name": "Given",
        "map_last_name": "Family",
        "map_email": "",
        "map_account_ref": "Account",
        "map_balance": "",
        "map_due_date": "",
        "map_appointment_at": "",
        "map_priority": "",
        "map_consent": "",
    }
    form.update(changes)
    return form


def wait_for(console: Console, import_id: int, tries: int = 200) -> dict[str, Any]:
    for _ in range(tries):
        status = console.get(f"/imports/{import_id}/status.json").json
        if status["status"] != "running":
            return status  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"import {import_id} still running")


def test_upload_map_import_and_report(app: Flask, manager: Console, tmp_path: Path) -> None:
    campaign_id = seed_domain(app)["campaign_id"]
    response = upload(manager, campaign_id, lead_file(tmp_path))
    assert response.status_code == 302
    mapping_url = response.location
    page = manager.get(mapping_url).get_data(as_text=True)
    # The preview shows the file as it is, escaped.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert" not in page
    assert "5 rows after the header" in page and "commas" in page
    # "Mobile No" is not a name the import knows: the manager picks it.
    refused = manager.post(mapping_url, mapping(map_phone=""))
    assert "Choose the column that holds the phone number." in refused.get_data(as_text=True)
    twice = manager.post(mapping_url, mapping(map_last_name="Given"))
    assert "chosen for first name and last name" in twice.get_data(as_text=True)
    response = manager.post(mapping_url, mapping())
    assert response.status_code == 302 and response.location.startswith("/imports/")
    import_id = int(response.location.rsplit("/", 1)[1])
    status = wait_for(manager, import_id)
    assert status == {
        "id": import_id,
        "status": "completed",
        "rows": 5,
        "expected_rows": 5,
        "imported": 2,
        "duplicates": 1,
        "invalid": 2,
        "dnc": 0,
        "error": None,
    }
    with app.app_context():
        session = web_db.session()
        leads = session.scalars(select(Lead).where(Lead.import_id == import_id)).all()
        assert {lead.first_name for lead in leads} == {"Ana", "Ben"}
        ana = next(lead for lead in leads if lead.first_name == "Ana")
        assert ana.custom_fields == {"Notes": "call after 5pm"} and ana.account_ref == "AC-7"
        entry = session.scalars(select(AuditLog).where(AuditLog.action == "import")).one()
        assert entry.details["after"]["mapping"]["phone"] == "Mobile No"
    page = manager.get(f"/imports/{import_id}").get_data(as_text=True)
    assert "Rows not imported (3)" in page and "duplicate of row 2" in page
    report = manager.get(f"/imports/{import_id}/errors.csv")
    assert report.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(report.get_data(as_text=True))))
    assert rows[0] == ["row", "field", "value", "reason"]
    formula = next(r for r in rows if r[0] == "5")
    assert formula[2].startswith("'=HYPERLINK")
    # The upload is gone once imported.
    assert manager.get(mapping_url).status_code == 404


def test_an_unreadable_file_is_refused_at_the_preview(
    app: Flask, manager: Console, tmp_path: Path
) -> None:
    campaign_id = seed_domain(app)["campaign_id"]
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    response = upload(manager, campaign_id, empty)
    page = manager.get(response.location, follow_redirects=True).get_data(as_text=True)
    assert "empty.csv cannot be imported: empty.csv is empty" in page


def test_importing_into_an_existing_list_and_a_failed_import(
    app: Flask, manager: Console, tmp_path: Path
) -> None:
    ids = seed_domain(app)
    rows = [["phone", "first_name"], ["(212) 555-0177", "Eve"], ["(212) 555-0178", "Finn", "x"]]
    response = upload(manager, ids["campaign_id"], lead_file(tmp_path, rows))
    form = mapping(
        target=str(ids["list_id"]),
        map_phone="phone",
        map_first_name="first_name",
        map_last_name="",
        map_account_ref="",
    )
    response = manager.post(response.location, form)
    import_id = int(response.location.rsplit("/", 1)[1])
    assert wait_for(manager, import_id)["imported"] == 1
    with app.app_context():
        run = web_db.session().get(ImportRun, import_id)
        assert run is not None and run.list_id == ids["list_id"]


def test_a_list_is_disabled_and_enabled(app: Flask, manager: Console) -> None:
    ids = seed_domain(app)
    page = manager.get(f"/campaigns/{ids['campaign_id']}/lists").get_data(as_text=True)
    assert "enabled" in page and "spring.csv" in page
    manager.post(f"/lists/{ids['list_id']}/active")
    with app.app_context():
        assert web_db.session().get(LeadList, ids["list_id"]).active is False
    manager.post(f"/lists/{ids['list_id']}/active")
    with app.app_context():
        session = web_db.session()
        assert session.get(LeadList, ids["list_id"]).active is True
        changes = session.scalars(
            select(AuditLog.details).where(AuditLog.entity == "lead_list")
        ).all()
    assert changes == [
        {"before": {"active": True}, "after": {"active": False}},
        {"before": {"active": False}, "after": {"active": True}},
    ]


def test_a_list_is_recycled_and_reset_on_record(app: Flask, manager: Console) -> None:
    ids = seed_domain(app)
    with app.app_context():
        session = web_db.session()
        lead = session.get_one(Lead, ids["lead_id"])
        lead.status, lead.attempts, lead.last_outcome = "done", 3, "busy"
        session.commit()
    page = manager.get(f"/campaigns/{ids['campaign_id']}/lists").get_data(as_text=True)
    assert f"/lists/{ids['list_id']}/recycle" in page and "data-confirm" in page
    response = manager.post(f"/lists/{ids['list_id']}/recycle")
    assert response.status_code == 302
    page = manager.get(response.location).get_data(as_text=True)
    assert "List default recycled: 1 leads due now, 0 left as they were." in page
    with app.app_context():
        lead = web_db.session().get_one(Lead, ids["lead_id"])
        assert (lead.status, lead.attempts) == ("recycled", 3) and lead.next_dial_at is not None
    manager.post(f"/lists/{ids['list_id']}/reset")
    with app.app_context():
        session = web_db.session()
        lead = session.get_one(Lead, ids["lead_id"])
        assert (lead.status, lead.attempts, lead.next_dial_at) == ("new", 0, None)
        entries = session.execute(
            select(AuditLog.action, AuditLog.details).where(AuditLog.entity == "lead_list")
        ).all()
    assert [tuple(e) for e in entries] == [
        ("recycle", {"before": {}, "after": {"changed": 1, "untouched": 0}}),
        ("reset", {"before": {}, "after": {"changed": 1, "untouched": 0}}),
    ]
    assert manager.post("/lists/999/reset").status_code == 404


def test_an_upload_belongs_to_its_campaign(app: Flask, manager: Console, tmp_path: Path) -> None:
    ids = seed_domain(app)
    response = upload(manager, ids["campaign_id"], lead_file(tmp_path))
    token = response.location.rsplit("/", 1)[1]
    assert manager.get(f"/campaigns/999/lists/upload/{token}").status_code == 404
    assert manager.get(f"/campaigns/{ids['campaign_id']}/lists/upload/../../x").status_code == 404


def test_a_large_import_reports_progress_while_pages_stay_served(
    app: Flask, manager: Console, tmp_path: Path
) -> None:
    ids = seed_domain(app)
    numbers = [
        f"+1{area}{exchange}{line:04d}"
        for area in (212, 305, 415)
        for exchange in (234, 345)
        for line in range(10000)
    ]
    rows = [["phone", "first_name"], *([number, "Lead"] for number in numbers[:45_000])]
    response = upload(manager, ids["campaign_id"], lead_file(tmp_path, rows))
    response = manager.post(
        response.location,
        mapping(
            map_phone="phone", map_first_name="first_name", map_last_name="", map_account_ref=""
        ),
    )
    import_id = int(response.location.rsplit("/", 1)[1])
    seen = set()
    started = time.monotonic()
    while True:
        status = manager.get(f"/imports/{import_id}/status.json").json
        seen.add(status["rows"])
        # Another page is served while the import runs.
        assert manager.get("/dashboard/").status_code == 200
        if status["status"] != "running":
            break
        assert time.monotonic() - started < 120
    assert status["status"] == "completed" and status["imported"] == 45_000
    assert status["expected_rows"] == 45_000
    assert len(seen) >= 2, seen
    with app.app_context():
        count = web_db.session().scalar(
            select(func.count()).select_from(Lead).where(Lead.import_id == import_id)
        )
    assert count == 45_000


def test_signing_in_and_uploading_wait_for_no_writer(
    app: Flask, console: Console, tmp_path: Path
) -> None:
    """A node holds SQLite's write lock (it claims leads, records calls): a manager still signs
    in and uploads a file, and neither takes the lock for the seconds a password check or a
    large file takes (the lock's waiters give up after 10 s)."""
    campaign_id = seed_domain(app)["campaign_id"]
    console.get("/auth/login")
    node = sqlite3.connect(make_url(app.config["DATABASE_URL"]).database, timeout=0)
    node.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        assert console.login("manager").status_code == 302
        response = upload(console, campaign_id, lead_file(tmp_path))
        assert response.status_code == 302 and "/lists/upload/" in response.location
        assert time.monotonic() - started < 5.0
    finally:
        node.rollback()
        node.close()
    # What the manager wrote waits for nobody now: the mapping page opens.
    assert console.get(response.location).status_code == 200


def test_a_large_file_is_imported_by_a_process_of_its_own(
    app: Flask, manager: Console, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The people using the console come first: a large file is read, deduplicated and
    written by a process of its own, not in the console's interpreter; its progress and
    counts are the same."""
    from web import imports

    # Any file counts as large here; the import as a whole is the same.
    monkeypatch.setattr(imports, "PROCESS_BYTES", 0)
    campaign_id = seed_domain(app)["campaign_id"]
    response = upload(manager, campaign_id, lead_file(tmp_path))
    response = manager.post(response.location, mapping())
    import_id = int(response.location.rsplit("/", 1)[1])
    status = wait_for(manager, import_id, tries=600)
    assert status == {
        "id": import_id,
        "status": "completed",
        "rows": 5,
        "expected_rows": 5,
        "imported": 2,
        "duplicates": 1,
        "invalid": 2,
        "dnc": 0,
        "error": None,
    }
