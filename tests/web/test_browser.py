"""The console in a real headless Chromium (Debian's), served by waitress on a loopback port:
a manager creates a campaign, uploads leads through the mapping step and watches the import;
a user without the role is refused. Screenshots of the main pages are kept as artefacts
($DIALER_ARTEFACTS, else a folder in the system's temporary directory)."""

from __future__ import annotations

import csv
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from tests.web.conftest import PASSWORD, USERNAMES, console_app, seed_domain
from web.server import ConsoleServer

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")
LEADS = 30_000

if not CHROMIUM.exists():
    # CI installs it (scripts/install-system-deps): there a missing browser is a failure.
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: run scripts/install-system-deps")
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-dev-shm-usage",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def artefacts() -> Path:
    folder = (
        Path(os.environ.get("DIALER_ARTEFACTS") or Path(tempfile.gettempdir()) / "dialer-artefacts")
        / "console"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def live(
    tmp_path: Path, password_hash: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Flask]]:
    """The console under waitress in a thread, on a free loopback port."""
    app = console_app(tmp_path, password_hash, monkeypatch)
    server = ConsoleServer(app, "127.0.0.1", port=0, threads=4).start()
    yield server.url, app
    server.stop()


@pytest.fixture
def errors() -> list[str]:
    """Script errors and console errors (a content-security-policy violation is one) seen."""
    return []


@pytest.fixture
def page(browser: Browser, errors: list[str]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 860}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console",
        lambda message: errors.append(message.text) if message.type == "error" else None,
    )
    yield page
    context.close()
    # No script error and no content-security-policy violation on any page visited.
    assert errors == []


def sign_in(page: Page, base: str, role: str) -> None:
    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/auth/login"))
    page.fill("#username", USERNAMES[role])
    page.fill("#password", PASSWORD)
    page.click("button:has-text('Sign in')")


def shoot(page: Page, artefacts: Path, name: str) -> None:
    page.screenshot(path=str(artefacts / f"{name}.png"), full_page=True)


def lead_file(folder: Path) -> Path:
    path = folder / "autumn-leads.csv"
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["Mobile No", "First Name", "Surname", "Account", "Plan"])
        for i in range(LEADS):
            area = (212, 305, 415, 512, 718)[i % 5]
            writer.writerow(
                [
                    f"({area}) {234 + i // 10000 % 700}-{i % 10000:04d}",
                    "Ana",
                    f"Lead{i}",
                    f"AC-{i}",
                    "gold",
                ]
            )
        writer.writerow(["not a number", "Bad", "Number", "AC-X", ""])
        writer.writerow(['=HYPERLINK("http://x")', "Eve", "Formula", "AC-Y", ""])
        writer.writerow(["(646) 555-0177", "<img src=x onerror=alert(1)>", "Xss", "AC-Z", ""])
    return path


def test_a_manager_creates_a_campaign_and_imports_leads_through_the_mapping_step(
    live: tuple[str, Flask], page: Page, artefacts: Path, tmp_path: Path
) -> None:
    base, _app = live
    sign_in(page, base, "manager")
    expect(page.locator("h1")).to_have_text("Dashboard")
    shoot(page, artefacts, "01-dashboard-empty")

    page.click("text=New campaign")
    page.fill("#name", "Autumn sale")
    page.select_option("#dial_mode", "power")
    page.fill("#dial_ratio", "2")
    page.select_option("#trunk_name", "carrier1")
    page.fill("#caller_id", "+12125550100")
    page.fill("#seller_name", "Acme Insurance")
    page.fill("#callback_number", "+12125550111")
    page.fill("#script", "Hello {first_name}, this is {seller} about your {Plan} plan.")
    # The preview fills the fields as an agent will read them (a sample lead for now).
    expect(page.locator("#script-text")).to_have_text(
        "Hello Jane, this is Acme Insurance about your {Plan} plan."
    )
    expect(page.locator("#script-unknown")).to_contain_text("{Plan}")
    shoot(page, artefacts, "02-campaign-form")
    page.click("button:has-text('Create campaign')")
    expect(page.locator(".flash-success")).to_contain_text("Autumn sale created as a draft")
    expect(page.locator("h1")).to_contain_text("Autumn sale")

    page.click("text=Lead lists and imports")
    page.set_input_files("#file", str(lead_file(tmp_path)))
    page.click("button:has-text('Upload and preview')")
    expect(page.locator("h1")).to_contain_text("Match the columns of autumn-leads.csv")
    # The file's first rows, as they are; "Mobile No" is not a name the import knows.
    expect(page.locator("table.preview")).to_contain_text("(212) 234-0000")
    assert page.input_value("#map_phone") == ""
    assert page.input_value("#map_first_name") == "First Name"
    page.select_option("#map_phone", "Mobile No")
    page.fill("#new_list", "autumn")
    shoot(page, artefacts, "03-mapping")
    page.click(f"button:has-text('Import {LEADS + 3:,} rows')")

    expect(page.locator("h1")).to_contain_text("Import of autumn-leads.csv")
    expect(page.locator("#import-progress")).to_be_visible()
    shoot(page, artefacts, "04-import-running")
    # The page reloads itself when the import completes.
    expect(page.locator("#import-status")).to_have_text("completed", timeout=120_000)
    expect(page.locator("[data-count=imported]")).to_have_text(f"{LEADS + 1:,}")
    expect(page.locator("[data-count=invalid]")).to_have_text("2")
    expect(page.locator("table")).to_contain_text('=HYPERLINK("http://x")')
    shoot(page, artefacts, "05-import-done")
    with page.expect_download() as download:
        page.click("text=Download all as CSV")
    report = Path(download.value.path()).read_text()
    assert "'=HYPERLINK" in report

    page.click("text=Lead lists")
    expect(page.locator("table").first).to_contain_text(f"{LEADS + 1:,}")
    shoot(page, artefacts, "06-lists")

    page.click("text=Autumn sale")
    page.click("button:has-text('Start')")
    expect(page.locator("h1 .badge")).to_have_text("active")
    shoot(page, artefacts, "07-campaign-active")

    page.click("nav.mainnav >> text=Leads")
    page.fill("input[name=q]", "(415) 234-0002")
    page.click("button:has-text('Search')")
    page.click("text=+14152340002")
    expect(page.locator("h1")).to_contain_text("Ana Lead2")
    shoot(page, artefacts, "08-lead-history")
    # A name that is markup shows as text; nothing runs (the page fixture fails on any error).
    page.click("nav.mainnav >> text=Leads")
    page.fill("input[name=q]", "Xss")
    page.click("button:has-text('Search')")
    expect(page.locator("table")).to_contain_text("<img src=x onerror=alert(1)> Xss")
    expect(page.locator("table img")).to_have_count(0)


def test_a_user_without_the_role_is_refused(
    live: tuple[str, Flask], page: Page, artefacts: Path, errors: list[str]
) -> None:
    base, _app = live
    sign_in(page, base, "agent")
    # An agent lands on their desktop, the one page of the menu they may open.
    expect(page.locator("h1")).to_have_text("Agent desktop")
    expect(page.locator("nav.mainnav a")).to_have_text(["Agent desktop"])
    page.click("text=agnes")
    expect(page.locator("h1")).to_have_text("Your account")
    shoot(page, artefacts, "09-agent-account")
    response = page.goto(base + "/campaigns/new")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("You may not open this page")
    shoot(page, artefacts, "10-refused")
    # The browser logs the refusal itself as an error: the one expected here.
    assert errors == [
        "Failed to load resource: the server responded with a status of 403 (FORBIDDEN)"
    ]
    errors.clear()


def test_screenshots_of_the_admin_pages(
    live: tuple[str, Flask], page: Page, artefacts: Path
) -> None:
    base, app = live
    ids = seed_domain(app)
    sign_in(page, base, "admin")
    page.goto(base + "/dnc/")
    page.fill("#number", "(415) 555-0134")
    page.fill("#reason", "asked during the call")
    page.click("button:has-text('Add')")
    expect(page.locator(".flash-success")).to_contain_text("+14155550134 added")
    page.goto(base + "/dnc/")
    shoot(page, artefacts, "11-dnc")
    page.goto(base + "/users/")
    shoot(page, artefacts, "12-users")
    page.goto(base + f"/users/{ids['user_id']}")
    shoot(page, artefacts, "13-user-form")
    page.goto(base + "/trunks/")
    page.click("button:has-text('Test (SIP OPTIONS)')")
    expect(page.locator(".flash-error")).to_contain_text("Unreachable")
    shoot(page, artefacts, "14-trunks")
    page.goto(base + f"/campaigns/{ids['campaign_id']}")
    expect(page.locator("#forecast-table tbody tr")).to_have_count(6)
    expect(page.locator("#forecast-basis")).to_contain_text("An hour with 1 agent")
    shoot(page, artefacts, "15-campaign")
    page.click("a:has-text('caller-ID pool')")
    page.fill("#number", "(305) 555-0100")
    page.fill("#daily_cap", "150")
    page.click("button:has-text('Add')")
    expect(page.locator(".flash-success")).to_contain_text("+13055550100 is in the pool")
    expect(page.locator("#caller-ids")).to_contain_text("+13055550100")
    shoot(page, artefacts, "15b-caller-ids")
    page.goto(base + f"/campaigns/{ids['campaign_id']}/edit")
    page.click("summary")
    shoot(page, artefacts, "16-campaign-edit")
    page.goto(base + "/campaigns/")
    shoot(page, artefacts, "17-campaigns")
    page.goto(base + "/dashboard/")
    shoot(page, artefacts, "18-dashboard")
    page.goto(base + "/audit/")
    shoot(page, artefacts, "19-audit")
    page.click("button:has-text('Sign out')")
    expect(page.locator("h1")).to_have_text("Sign in")
    shoot(page, artefacts, "20-sign-in")
