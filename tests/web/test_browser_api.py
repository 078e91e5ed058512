"""The API's interactive documentation and the report pages in headless Chromium, under the
console's content security policy: Swagger UI (served from the package) renders the generated
document and "Try it out" calls the API with the signed-in session; a recording plays from the
call detail page. Screenshots join the console's artefacts."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from tests.web.api_helpers import DAY, seed_calls
from tests.web.test_browser import (  # noqa: F401 - fixtures
    artefacts,
    browser,
    errors,
    live,
    page,
    shoot,
    sign_in,
)

pytestmark = pytest.mark.browser

from playwright.sync_api import Page, expect  # noqa: E402


def test_the_api_docs_render_and_try_a_call_under_the_csp(
    live: tuple[str, Flask],  # noqa: F811
    page: Page,  # noqa: F811
    artefacts: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    base, app = live
    wav = tmp_path / "recordings" / "1.wav"
    wav.parent.mkdir()
    # A second of silence, 8 kHz mono 16-bit: what the line workers record.
    header = b"RIFF" + (36 + 16000).to_bytes(4, "little") + b"WAVEfmt "
    header += (16).to_bytes(4, "little") + (1).to_bytes(2, "little") + (1).to_bytes(2, "little")
    header += (8000).to_bytes(4, "little") + (16000).to_bytes(4, "little")
    header += (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
    wav.write_bytes(header + b"data" + (16000).to_bytes(4, "little") + bytes(16000))
    app.config["RECORDINGS_DIR"] = str(wav.parent)
    seed_calls(app, recording=str(wav))
    sign_in(page, base, "manager")
    page.goto(base + "/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Dialer API")
    operation = page.locator("#operations-api_campaigns-get_api_v1_campaigns")
    operation.locator(".opblock-summary").click()
    page.click("button:has-text('Try it out')")
    page.click("button:has-text('Execute')")
    expect(
        operation.locator(".live-responses-table tbody .response-col_status").first
    ).to_have_text("200")
    expect(operation.locator(".live-responses-table")).to_contain_text("Collections Q3")
    shoot(page, artefacts, "21-api-docs")
    # A write goes with the page's CSRF token (the session cookie is what signs it in).
    operation = page.locator("#operations-api_dnc-post_api_v1_dnc")
    operation.locator(".opblock-summary").click()
    operation.locator("button:has-text('Try it out')").click()
    operation.locator("textarea.body-param__text").fill('{"phone": "(415) 555-0134"}')
    operation.locator("button:has-text('Execute')").click()
    expect(
        operation.locator(".live-responses-table tbody .response-col_status").first
    ).to_have_text("201")
    expect(operation.locator(".live-responses-table")).to_contain_text("+14155550134")
    page.goto(base + f"/reports/calls?from={DAY.isoformat()}")
    audio = page.locator("audio").first
    expect(audio).to_be_visible()
    duration = audio.evaluate(
        "a => new Promise(done => { a.onloadedmetadata = () => done(a.duration); a.load(); })"
    )
    assert duration == pytest.approx(1.0, abs=0.05)
    shoot(page, artefacts, "22-call-detail")
    page.goto(base + "/reports/compliance")
    shoot(page, artefacts, "23-compliance")
