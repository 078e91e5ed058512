"""The SIP benchmarks run end to end on a small scale (their figures are printed, not judged)."""

import json

import pytest
from click.testing import CliRunner

from dialer.cli import main
from tests.conftest import BACKENDS, POSTGRES_URL

pytestmark = pytest.mark.sip


def run(*args: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(main, ["bench", *args, "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


def test_bench_sip_holds_bridged_calls_and_keeps_a_call_rate() -> None:
    held, rate = run(
        "sip", "--calls", "4", "--hold", "1", "--cps", "10", "--duration", "1", "--bridged"
    )
    assert (held["run"], held["answered"], held["bridged_pairs"]) == ("held", 4, 2)
    assert held["rtp_received"] > 0 and held["worker_exits_not_clean"] == []
    assert (rate["run"], rate["ended"], rate["worker_restarts"]) == ("rate", 10, 0)


def test_bench_connect_reports_the_connect_delay() -> None:
    [figures] = run("connect", "--calls", "3", "--workers", "1")
    assert figures["connected"] == 3 and figures["abandoned"] == 0
    assert 0 < figures["connect_delay_ms_median"] <= figures["connect_delay_ms_max"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_bench_node_runs_a_campaign_and_reconciles_it_with_the_carrier(backend: str) -> None:
    database: list[str] = []
    if backend == "postgresql":
        if not POSTGRES_URL:
            pytest.skip("TEST_POSTGRES_URL is not set")
        database = ["--database-url", POSTGRES_URL]
    [figures] = run(
        "node", "--agents", "4", "--minutes", "0.4", "--talk", "4-8", "--wrap", "1-3", *database
    )
    assert figures["attempt_rows"] == figures["invites_received"] > 0
    assert figures["attempts_open"] == 0 and figures["worker_exits_not_clean"] == []
    assert figures["invites_without_attempt"] == figures["attempts_without_invite"] == 0
    assert figures["decisions"] > 0 and figures["decision_ms_median"] <= figures["decision_ms_p99"]
    assert 0 <= figures["forecast_utilisation"] < 1


def test_bench_node_refuses_a_database_that_is_not_postgresql() -> None:
    result = CliRunner().invoke(main, ["bench", "node", "--database-url", "sqlite:///x.db"])
    assert result.exit_code == 2
    assert "'sqlite:///x.db': give a postgresql:// URL" in result.output
