"""The SIP benchmarks run end to end on a small scale (their figures are printed, not judged)."""

import json

import pytest
from click.testing import CliRunner

from dialer.cli import main

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
