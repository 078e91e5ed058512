"""`dialer bench console` at a tiny scale, end to end: the fill, the console under waitress,
managers over every page, agents at work, Chromium on the dashboard and uploading a lead file.
The figures are printed, never asserted: only that every part ran and was measured."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from dialer.bench.console import PageFigures, Settings, Timing, figures_of, quantile, run
from dialer.cli import main

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no /usr/bin/chromium"),
]

MANAGER_PAGES = {
    "dashboard",
    "dashboard chart",
    "campaigns",
    "campaign page",
    "campaign settings",
    "lists",
    "leads search: phone",
    "leads search: name",
    "leads search: account",
    "lead history",
    "dnc",
    "dnc search",
    "users",
    "trunks",
    "agent groups",
    "agent group",
    "reports",
    "report: call detail",
    "report: campaign summary",
    "report: agent performance",
    "report: compliance",
    "export: calls of a day",
    "export: campaign summary",
    "export: agent performance",
    "export: do-not-call list",
}


def test_the_bench_measures_every_page_the_dashboard_and_an_upload_at_a_tiny_scale() -> None:
    said: list[str] = []
    results = run(
        Settings(
            leads=2_000,
            attempts=10_000,
            csv_rows=2_000,
            managers=3,
            agents=6,
            seconds=8.0,
            think_s=0.05,
            # A stalled upload fails the test saying where it stopped, before pytest's timeout.
            upload_timeout_s=120.0,
        ),
        say=said.append,
    )
    assert results.failures == []
    assert results.pages_timed == MANAGER_PAGES
    assert {row.page for row in results.steady} >= MANAGER_PAGES - {
        page for page in MANAGER_PAGES if page.startswith("export:")
    }
    assert all(row.errors == 0 and row.requests > 0 for row in results.steady)
    assert results.managers["events"] > 0, "the dashboard's event stream sent nothing"
    assert results.managers["agent_moves"] > 0
    assert len(results.dashboard_latencies) == 5
    assert results.upload["status"] == "completed"
    assert results.upload["imported"] not in ("", "0")
    printed = "\n".join(said)
    assert "report: compliance" in printed
    assert "dashboard in Chromium showed a database change after" in printed
    assert "upload of 2,000 rows through Chromium" in printed


def test_figures_are_per_page_with_the_target_of_its_kind() -> None:
    timings = [Timing("dashboard", float(n), n / 1000, 200) for n in range(1, 101)]
    timings += [
        Timing("report: compliance", 1.0, 0.5, 200),
        Timing("report: compliance", 2, 2, 500),
    ]
    by_page = {row.page: row for row in figures_of(timings)}
    assert by_page["dashboard"] == PageFigures("dashboard", 100, 0.0505, 0.095, 0.1, 0.1, 0)
    assert by_page["dashboard"].passed
    compliance = by_page["report: compliance"]
    assert (compliance.target_s, compliance.errors, compliance.passed) == (1.0, 1, False)
    assert quantile([], 0.95) == 0.0


def test_the_command_refuses_a_database_url_that_is_not_postgresql() -> None:
    result = CliRunner().invoke(main, ["bench", "console", "--database-url", "mysql://x/y"])
    assert result.exit_code != 0
    assert "'mysql://x/y': give a postgresql:// URL" in result.output
