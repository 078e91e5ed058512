"""Stored markup and formulas in Debian's headless Chromium (ARCHITECTURE §5a): a manager
imports a lead whose name and own fields hold `<script>`, an attribute break-out and formula
cells through the upload and mapping step; every page that shows the lead (the import, lead
search and history, the campaign, the agent's screen pop of a call of it, call detail, the
dashboard) shows it as text and runs none of it, and the CSV and XLSX exports keep formula
cells as data. A payload that ran would set a window flag, open a dialog, or break the
content-security policy (a console error): each is watched on every page."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.models import Lead
from tests.web.conftest import USERNAMES, console_app
from tests.web.test_browser import artefacts, browser  # noqa: F401 - fixtures
from tests.web.test_browser_live import opened, served, shoot, sign_in
from tests.web.test_desk import connect_call, desk_world, end_call
from tests.web.test_xss import (
    BAD_PHONE,
    E164,
    HYPERLINK,
    IMAGE,
    LIST_NAME,
    MARKED_FIELD,
    NOTES,
    PHONE,
    SCRIPT,
    STORED_FILE_NAME,
    SUM,
    SVG_NOTE,
    hostile_file,
)
from web import db as web_db

pytestmark = pytest.mark.browser

from playwright.sync_api import Browser, Page, expect  # noqa: E402

# Elements only a payload could have put in a page: the console has no inline script or
# handler of its own (its content-security policy forbids them).
INJECTED = "script:not([src]), [onerror], [onload], i"


@pytest.fixture
def dialogs() -> list[str]:
    """Every alert, confirm or prompt a page opened."""
    return []


def watching(page: Page, dialogs: list[str]) -> Page:
    def seen(dialog: object) -> None:
        dialogs.append(dialog.message)  # type: ignore[attr-defined]
        dialog.dismiss()  # type: ignore[attr-defined]

    page.on("dialog", seen)
    return page


def nothing_ran(page: Page) -> None:
    assert page.evaluate("() => window.__xss") is None, page.url
    assert page.locator(INJECTED).count() == 0, page.url


@pytest.fixture
def pages(
    tmp_path: Path,
    password_hash: str,
    monkeypatch: pytest.MonkeyPatch,
    browser: Browser,  # noqa: F811
    dialogs: list[str],
) -> Iterator[tuple[str, Flask, Page, Page]]:
    """A manager's and an agent's browser on one console, whose desktop streams stay open."""
    errors: list[str] = []
    app = console_app(tmp_path, password_hash, monkeypatch, STREAM_SECONDS=120.0)
    with served(app) as base, opened(browser, errors) as manager, opened(browser, errors) as agent:
        yield base, app, watching(manager, dialogs), watching(agent, dialogs)
        app.extensions[web_db.ENGINE].dispose()
    # No script error and no content-security-policy violation on any page visited.
    assert errors == []
    assert dialogs == []


def test_a_hostile_lead_runs_nowhere_from_its_import_to_its_exports(
    pages: tuple[str, Flask, Page, Page],
    tmp_path: Path,
    artefacts: Path,  # noqa: F811
) -> None:
    base, app, manager, agent = pages
    ids = desk_world(app)
    sign_in(manager, base, USERNAMES["manager"])
    manager.goto(base + f"/campaigns/{ids['campaign_id']}/lists")
    manager.set_input_files("#file", str(hostile_file(tmp_path)))
    manager.click("button:has-text('Upload and preview')")
    expect(manager.locator("h1")).to_have_text(f"Match the columns of {STORED_FILE_NAME}")
    preview = manager.locator("table.preview")
    for value in (SCRIPT, IMAGE, HYPERLINK, SVG_NOTE, SUM, MARKED_FIELD, BAD_PHONE):
        expect(preview).to_contain_text(value)
    nothing_ran(manager)
    shoot(manager, artefacts, "40-xss-mapping")
    manager.select_option("#map_phone", "Phone")
    manager.select_option("#map_first_name", "First Name")
    manager.select_option("#map_last_name", "Last Name")
    manager.select_option("#map_account_ref", "Account")
    manager.fill("#new_list", LIST_NAME)
    manager.click("button:has-text('Import 3 rows')")
    expect(manager.locator("#import-status")).to_have_text("completed")
    expect(manager.locator("[data-count=invalid]")).to_have_text("2")
    expect(manager.locator("table").last).to_contain_text(BAD_PHONE)
    nothing_ran(manager)
    with manager.expect_download() as download:
        manager.click("text=Download all as CSV")
    with Path(download.value.path()).open(newline="", encoding="utf-8") as report:
        assert {row["value"] for row in csv.DictReader(report)} == {"'" + SUM, BAD_PHONE}

    manager.goto(base + f"/campaigns/{ids['campaign_id']}/lists")
    expect(manager.locator("table").first).to_contain_text(LIST_NAME)
    nothing_ran(manager)
    manager.goto(base + f"/campaigns/{ids['campaign_id']}")
    expect(manager.locator("h1")).to_contain_text("Spring sale")
    nothing_ran(manager)
    manager.click("nav.mainnav >> text=Leads")
    manager.fill("input[name=q]", PHONE)
    manager.click("button:has-text('Search')")
    expect(manager.locator("table")).to_contain_text(f"{SCRIPT} {IMAGE}")
    nothing_ran(manager)
    manager.click(f"text={E164}")
    expect(manager.locator("h1")).to_contain_text(f"{SCRIPT} {IMAGE}")
    for value in (HYPERLINK, SVG_NOTE, SUM, MARKED_FIELD):
        expect(manager.locator("main")).to_contain_text(value)
    nothing_ran(manager)
    shoot(manager, artefacts, "41-xss-lead-history")
    lead_page = manager.url

    # The agent takes a call of the lead; its screen pop shows the fields as written.
    with Session(app.extensions[web_db.ENGINE]) as session:
        ids["lead_id"] = session.scalars(select(Lead.id).where(Lead.phone_e164 == E164)).one()
    sign_in(agent, base, USERNAMES["agent"])
    agent.click("button:has-text('Log in')")
    agent.click("#go-ready")
    expect(agent.locator("#state-label")).to_have_text("Ready")
    attempt = connect_call(app, ids)
    expect(agent.locator("#pop-name")).to_have_text(f"{SCRIPT} {IMAGE}")
    expect(agent.locator("#pop-script")).to_contain_text(f"Hello {SCRIPT}, this is agnes")
    for value in (SVG_NOTE, SUM, MARKED_FIELD):
        expect(agent.locator("#pop-custom")).to_contain_text(value)
    nothing_ran(agent)
    shoot(agent, artefacts, "42-xss-screen-pop")
    end_call(app, ids, attempt)
    expect(agent.locator("#state-label")).to_have_text("Wrap-up")
    agent.fill("#notes", NOTES)
    agent.locator("#notes").blur()
    agent.keyboard.press("1")
    expect(agent.locator("#state-label")).to_have_text("Ready")
    nothing_ran(agent)

    manager.goto(lead_page)
    expect(manager.locator("main")).to_contain_text(NOTES)
    nothing_ran(manager)
    manager.goto(base + f"/reports/calls?campaign_id={ids['campaign_id']}&phone={E164}")
    row = manager.locator("table tbody tr").first
    expect(row).to_contain_text(f"{SCRIPT} {IMAGE}")
    expect(row).to_contain_text(HYPERLINK)
    nothing_ran(manager)
    shoot(manager, artefacts, "43-xss-call-detail")
    expected = (SCRIPT, "'" + IMAGE, "'" + HYPERLINK, "'" + NOTES)
    with manager.expect_download() as download:
        manager.click("text=Export CSV")
    with Path(download.value.path()).open(newline="", encoding="utf-8") as export:
        rows = list(csv.DictReader(export))
    assert [(r["First name"], r["Last name"], r["Account"], r["Notes"]) for r in rows] == [expected]
    with manager.expect_download() as download:
        manager.click("text=Export XLSX")
    workbook = tmp_path / "calls.xlsx"
    download.value.save_as(workbook)
    sheet = load_workbook(workbook).active
    assert sheet is not None
    header, *cells = list(sheet.iter_rows())
    # Every cell is a value: none is a formula a spreadsheet would evaluate.
    assert [c.coordinate for line in (header, *cells) for c in line if c.data_type == "f"] == []
    columns = [c.value for c in header]
    shown = ("First name", "Last name", "Account", "Notes")
    assert [tuple(line[columns.index(name)].value for name in shown) for line in cells] == [
        expected
    ]

    manager.click("nav.mainnav >> text=Dashboard")
    expect(manager.locator("main")).to_contain_text(STORED_FILE_NAME)
    expect(manager.locator("#live-status")).to_have_text("live")
    nothing_ran(manager)
    shoot(manager, artefacts, "44-xss-dashboard")
