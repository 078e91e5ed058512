"""SIP over TLS: a trunk with `transport = "tls"` is pinged and dialed over TLS, and a carrier
whose certificate does not chain to the trunk's CA bundle is refused."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from dialer.lines import Answered, LinePool
from sip_config import loads
from tests.test_lines import ended, run_cli, run_until_ended, trunk_table

NUMBER = "+12125550111"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The carrier's certificate for 127.0.0.1 from one CA; another CA that did not sign it."""
    where = tmp_path_factory.mktemp("tls")
    ca, stranger = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    files = {name: where / f"{name}.pem" for name in ("ca", "stranger", "cert", "key")}
    ca.cert_pem.write_to_path(str(files["ca"]))
    stranger.cert_pem.write_to_path(str(files["stranger"]))
    server.private_key_pem.write_to_path(str(files["key"]))
    with files["cert"].open("wb") as chain:
        for blob in server.cert_chain_pems:
            chain.write(blob.bytes())
    return files


@pytest.fixture(scope="module")
def carrier_port(certificates: dict[str, Path]) -> Iterator[int]:
    carrier = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.tls_carrier",
            str(certificates["cert"]),
            str(certificates["key"]),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert carrier.stdout is not None and carrier.stdin is not None
    yield int(carrier.stdout.readline())
    carrier.stdin.close()
    # The carrier shut pjsua2 down cleanly: no abort from a Call alive after libDestroy.
    assert carrier.wait(timeout=20) == 0


def tls_trunk(port: int, ca_file: Path) -> str:
    return trunk_table("carrier1", port, f'transport = "tls"\ntls_ca_file = "{ca_file}"\n')


@pytest.mark.sip
def test_a_tls_trunk_is_pinged_over_tls(
    tmp_path: Path, certificates: dict[str, Path], carrier_port: int
) -> None:
    config = tmp_path / "sip.toml"
    config.write_text(tls_trunk(carrier_port, certificates["ca"]))
    check = run_cli(["trunk", "check", "carrier1"], config)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.startswith(f"OPTIONS 127.0.0.1:{carrier_port}/tls: 200 OK")
    config.write_text(tls_trunk(carrier_port, certificates["stranger"]))
    refused = run_cli(["trunk", "check", "carrier1"], config)
    assert refused.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stdout + refused.stderr


@pytest.mark.sip
def test_a_call_over_tls_is_answered_and_an_unknown_certificate_refused(
    certificates: dict[str, Path], carrier_port: int
) -> None:
    trusted = loads(tls_trunk(carrier_port, certificates["ca"]))
    with LinePool(trusted, workers=1) as pool:
        pool.originate("tls-1", "carrier1", NUMBER)

        def hang_up_when_answered(event: object) -> None:
            if isinstance(event, Answered):
                pool.hangup("tls-1")

        result = ended(run_until_ended(pool, "tls-1", on_event=hang_up_when_answered))
    assert (result.outcome, result.sip_code) == ("human", 200), result
    assert pool.exits == [(0, 0)]

    untrusted = loads(tls_trunk(carrier_port, certificates["stranger"]))
    with LinePool(untrusted, workers=1) as pool:
        pool.originate("tls-2", "carrier1", NUMBER)
        result = ended(run_until_ended(pool, "tls-2"))
    assert result.outcome == "failed" and "certificate" in result.reason, result
    assert result.sip_code is not None and result.sip_code >= 400, result
    assert pool.exits == [(0, 0)]
