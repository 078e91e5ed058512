"""Stored markup and formulas (ARCHITECTURE §5a), through the test client: a lead imported with
`<script>`, an attribute break-out and formula cells in its name, account and own fields is
shown escaped on every page that shows it, given back as written (JSON, never HTML) by the
API and the desktop's stream, and neutralised in exports. The same file goes through a real
browser in test_browser_xss.py."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from flask import Flask
from markupsafe import escape
from sqlalchemy import select
from werkzeug.test import TestResponse
from werkzeug.utils import secure_filename

from campaigns.models import ImportRun, Lead
from tests.web.api_helpers import api_as
from tests.web.conftest import Console
from tests.web.test_desk import JSON, connect_call, desk_world, end_call, logged_in, stream
from tests.web.test_lists import mapping, upload, wait_for
from web import db as web_db

# Each sets a window flag if it ever runs; several are formula cells as well.
SCRIPT = "<script>window.__xss=1</script>"
IMAGE = '-"><img src=x onerror=window.__xss=2>'  # and a formula: it starts with "-"
HYPERLINK = '=HYPERLINK("http://evil.test","pay")'
SVG_NOTE = '+1+1 "><svg onload=window.__xss=3>'
SUM = "@SUM(1+1)"
MARKED_FIELD = "<i>Plan</i>"  # a column name, so a custom field's name
FILE_NAME = "leads <img src=x onerror=window.__xss=4>.csv"
STORED_FILE_NAME = secure_filename(FILE_NAME)  # the upload's name is made safe as it is saved
LIST_NAME = "autumn <img src=x onerror=window.__xss=7>"
BAD_PHONE = "<img src=x onerror=window.__xss=5>"
NOTES = '+2+2 "><img src=x onerror=window.__xss=6>'  # what the agent types in the wrap-up
PHONE = "(646) 555-0177"
E164 = "+16465550177"
HEADER = ["Phone", "First Name", "Last Name", "Account", "Note", MARKED_FIELD]
CUSTOM = {"Note": SVG_NOTE, MARKED_FIELD: SUM}
# What a page must never hold: any of the payloads as markup.
RAW_MARKUP = ("<script>window", "<img src=x", "<svg onload", "<i>Plan")


def hostile_file(folder: Path) -> Path:
    """The lead, and two rows the import refuses with their values in the report."""
    path = folder / FILE_NAME
    with path.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(
            [
                HEADER,
                [PHONE, SCRIPT, IMAGE, HYPERLINK, SVG_NOTE, SUM],
                [SUM, "Formula", "Phone", "", "", ""],
                [BAD_PHONE, "Markup", "Phone", "", "", ""],
            ]
        )
    return path


def shows_as_text(response: TestResponse, *values: str) -> str:
    """The page is HTML holding each value escaped, and no payload as markup."""
    assert response.status_code == 200, response.status_code
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    for raw in RAW_MARKUP:
        assert raw not in page, raw
    for value in values:
        assert str(escape(value)) in page, value
    return page


def is_json(response: TestResponse, status: int = 200) -> Any:
    """JSON as JSON: the browser never sniffs it into a page."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    return response.get_json()


def import_hostile_file(manager: Console, campaign_id: int, folder: Path) -> int:
    response = upload(manager, campaign_id, hostile_file(folder))
    assert response.status_code == 302, response.get_data(as_text=True)
    mapping_url = response.location
    shows_as_text(manager.get(mapping_url), STORED_FILE_NAME, SCRIPT, IMAGE, MARKED_FIELD)
    response = manager.post(
        mapping_url,
        mapping(
            new_list=LIST_NAME,
            map_phone="Phone",
            map_first_name="First Name",
            map_last_name="Last Name",
            map_account_ref="Account",
        ),
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    import_id = int(response.location.rsplit("/", 1)[1])
    assert wait_for(manager, import_id)["status"] == "completed"
    return import_id


def test_a_hostile_lead_is_data_on_every_page_in_the_api_and_in_exports(
    app: Flask, manager: Console, tmp_path: Path
) -> None:
    ids = desk_world(app)
    import_id = import_hostile_file(manager, ids["campaign_id"], tmp_path)
    with app.app_context():
        session = web_db.session()
        lead = session.scalars(select(Lead).where(Lead.phone_e164 == E164)).one()
        # Kept as written: nothing dropped, nothing escaped in the database.
        assert (lead.first_name, lead.last_name, lead.account_ref) == (SCRIPT, IMAGE, HYPERLINK)
        assert lead.custom_fields == CUSTOM
        assert session.get_one(ImportRun, import_id).invalid == 2
        ids["lead_id"] = lead.id

    # The agent takes a call of the lead: the stream carries the pop as JSON data.
    agent = logged_in(app, ids)
    agent.post("/desk/ready", headers=JSON)
    events = stream(app, agent)
    attempt_id = connect_call(app, ids)
    _, state = events.next("desk")
    while state["pop"] is None:
        _, state = events.next("desk")
    events.close()
    assert state["pop"]["name"] == f"{SCRIPT} {IMAGE}"
    assert sorted(state["pop"]["custom"]) == sorted([list(pair) for pair in CUSTOM.items()])
    end_call(app, ids, attempt_id)
    response = agent.post("/desk/disposition", {"code": "SALE", "notes": NOTES}, headers=JSON)
    assert is_json(response) == {"ok": True, "message": "SALE recorded."}
    # A code that is markup is refused as JSON, the code quoted in a sentence.
    refused = agent.post("/desk/disposition", {"code": SCRIPT}, headers=JSON)
    assert is_json(refused, 422)["ok"] is False

    shows_as_text(manager.get(f"/imports/{import_id}"), STORED_FILE_NAME, BAD_PHONE, SUM)
    lists = manager.get(f"/campaigns/{ids['campaign_id']}/lists")
    shows_as_text(lists, STORED_FILE_NAME, LIST_NAME)
    shows_as_text(manager.get("/leads/", query_string={"q": PHONE}), SCRIPT, IMAGE)
    shows_as_text(
        manager.get(f"/leads/{lead.id}"),
        SCRIPT,
        IMAGE,
        HYPERLINK,
        SVG_NOTE,
        SUM,
        MARKED_FIELD,
        NOTES,
    )
    shows_as_text(manager.get(f"/campaigns/{ids['campaign_id']}"))
    shows_as_text(manager.get("/dashboard/"), STORED_FILE_NAME)
    today = {"campaign_id": ids["campaign_id"], "phone": PHONE}
    shows_as_text(manager.get("/reports/calls", query_string=today), SCRIPT, IMAGE, HYPERLINK)
    # A value the console refuses is quoted in its message, escaped.
    refused_page = manager.get("/reports/calls", query_string={"after": SCRIPT})
    assert refused_page.status_code == 400 and refused_page.mimetype == "text/html"
    assert SCRIPT not in refused_page.get_data(as_text=True)

    # Exports: each formula cell starts with a quote; markup is text as written.
    report = manager.get("/reports/calls.csv", query_string=today)
    assert report.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(report.get_data(as_text=True))))
    assert [(r["First name"], r["Last name"], r["Account"], r["Notes"]) for r in rows] == [
        (SCRIPT, "'" + IMAGE, "'" + HYPERLINK, "'" + NOTES)
    ]
    errors = manager.get(f"/imports/{import_id}/errors.csv").get_data(as_text=True)
    values = {row["value"] for row in csv.DictReader(io.StringIO(errors))}
    assert values == {"'" + SUM, BAD_PHONE}

    # The API gives the values back as written, always as JSON.
    api = api_as(app, "manager")
    found = is_json(api.get("/api/v1/leads", query_string={"q": PHONE}))["data"]
    assert [(f["first_name"], f["last_name"]) for f in found] == [(SCRIPT, IMAGE)]
    detail = is_json(api.get(f"/api/v1/leads/{lead.id}"))
    assert (detail["account_ref"], detail["custom_fields"]) == (HYPERLINK, CUSTOM)
    assert [d["notes"] for d in detail["dispositions"]] == [NOTES]
    refusals = is_json(api.get(f"/api/v1/imports/{import_id}/errors"))["data"]
    assert {r["value"] for r in refusals} == {SUM, BAD_PHONE}
    assert is_json(api.get(f"/api/v1/imports/{import_id}"))["filename"] == STORED_FILE_NAME
    calls = is_json(api.get("/api/v1/attempts", query_string={"phone": PHONE}))["data"]
    assert [(c["first_name"], c["account_ref"], c["notes"]) for c in calls] == [
        (SCRIPT, HYPERLINK, NOTES)
    ]
    # A refused value comes back in the error's JSON, not in a page.
    error = is_json(api.get("/api/v1/leads", query_string={"status": SCRIPT}), 422)["error"]
    assert error["field"] == "status"
    assert is_json(api.get(f"/api/v1/{SCRIPT}"), 404)["error"]["code"] == "not_found"


def test_no_csv_export_starts_a_formula_cell_in_a_semicolon_spreadsheet(
    app: Flask, manager: Console, tmp_path: Path
) -> None:
    """Much of Europe opens CSV with `;` between cells: a value holding `;=` must not become a
    cell of its own there, so every export quotes every cell."""
    ids = desk_world(app)
    injected = 'asked;=HYPERLINK("http://evil.test","x");\n@SUM(1+1)'
    response = manager.post(
        "/dnc/add", {"number": "(415) 555-0134", "scope": "global", "reason": injected}
    )
    assert response.status_code == 302
    import_id = import_hostile_file(manager, ids["campaign_id"], tmp_path)
    for url in ("/dnc/export.csv", f"/imports/{import_id}/errors.csv", "/reports/calls.csv"):
        text = manager.get(url).get_data(as_text=True)
        for row in csv.reader(io.StringIO(text), delimiter=";"):
            live = [cell for cell in row if cell.startswith(("=", "+", "-", "@"))]
            assert live == [], (url, row)
