"""Trunk configuration: the issue's example loads, every bad value is named with what is accepted,
and the password never shows in the configuration's text."""

from __future__ import annotations

from pathlib import Path

import pytest

from sip_config import SipConfigError, calls_per_second, load, loads

EXAMPLE = """
[trunks.carrier1]
host = "sip.carrier.example"
port = 5060
transport = "udp"
username = "acct123"
password_env = "CARRIER1_SIP_PASSWORD"
caller_id = "+12125550100"
max_channels = 200
max_cps = 20
"""


def test_a_trunks_calls_per_second_is_read_for_the_forecast_or_left_unknown(
    tmp_path: Path,
) -> None:
    path = tmp_path / "sip.toml"
    path.write_text(EXAMPLE, encoding="utf-8")
    assert calls_per_second("carrier1", path) == 20.0
    assert calls_per_second("carrier2", path) is None
    assert calls_per_second(None, path) is None
    assert calls_per_second("carrier1", tmp_path / "missing.toml") is None


def config_with(**keys: object) -> str:
    lines = ["[trunks.carrier1]", 'host = "sip.carrier.example"']
    for key, value in keys.items():
        if isinstance(value, bool):
            lines.append(f"{key} = {str(value).lower()}")
        elif isinstance(value, str):
            lines.append(f'{key} = "{value}"')
        else:
            lines.append(f"{key} = {value!r}".replace("'", '"'))
    return "\n".join(lines)


def test_the_example_from_the_issue_loads_with_compliant_defaults() -> None:
    trunk = loads(EXAMPLE).trunk("carrier1")
    assert (trunk.host, trunk.port, trunk.transport) == ("sip.carrier.example", 5060, "udp")
    assert (trunk.max_channels, trunk.max_cps) == (200, 20.0)
    assert trunk.ring_timeout == 30.0
    assert trunk.register is False
    assert trunk.from_uri == "sip:+12125550100@sip.carrier.example"


def test_load_reads_the_file_named_by_the_environment(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "sip.toml"
    path.write_text(EXAMPLE)
    monkeypatch.setenv("DIALER_SIP_CONFIG", str(path))
    assert list(load().trunks) == ["carrier1"]
    monkeypatch.delenv("DIALER_SIP_CONFIG")
    with pytest.raises(SipConfigError, match="set DIALER_SIP_CONFIG"):
        load()


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"port": 70000}, "trunks.carrier1.port: 70000 is not a port (1-65535)"),
        ({"port": "5060"}, "trunks.carrier1.port: '5060' is not a port (1-65535)"),
        ({"transport": "sctp"}, "trunks.carrier1.transport: 'sctp' is not a transport (udp, tcp"),
        ({"ring_timeout": 10}, "trunks.carrier1.ring_timeout: 10 is not a ring timeout (15-300 s"),
        ({"caller_id": "2125550100"}, "trunks.carrier1.caller_id: '2125550100' is not an E.164"),
        ({"number_format": "local"}, "trunks.carrier1.number_format: 'local' is not a number fo"),
        ({"codecs": ["PCMA", "G729"]}, "trunks.carrier1.codecs: ['PCMA', 'G729'] is not a list"),
        ({"max_cps": 0}, "trunks.carrier1.max_cps: 0 is not a call rate"),
        ({"max_channels": True}, "trunks.carrier1.max_channels: True is not a channel count"),
        ({"register": "yes"}, "trunks.carrier1.register: 'yes' is not true or false"),
        ({"dial_prefix": "9a"}, "trunks.carrier1.dial_prefix: '9a' is not a dial prefix"),
        ({"hots": "x"}, "trunks.carrier1.hots: unknown key (accepted: host, port"),
        ({"password": "hunter2"}, "trunks.carrier1.password: never in the file; use password_env"),
        ({"password_env": "PW"}, "trunks.carrier1.username: missing (required with a password)"),
        ({"register": True}, "trunks.carrier1.username: missing (required with register"),
        ({"password_env": "1PW", "username": "u"}, "trunks.carrier1.password_env: '1PW' is not"),
        ({"tls_ca_file": "/etc/hosts"}, 'trunks.carrier1.tls_ca_file: only with transport = "tls"'),
        (
            {"transport": "tls", "tls_ca_file": "/no/such/ca.pem"},
            "trunks.carrier1.tls_ca_file: '/no/such/ca.pem' is not a readable CA bundle file",
        ),
        (
            {"transport": "tls", "tls_verify_server": "no"},
            "trunks.carrier1.tls_verify_server: 'no' is not true or false",
        ),
    ],
)
def test_a_bad_value_is_named_with_what_is_accepted(keys: dict[str, object], message: str) -> None:
    with pytest.raises(SipConfigError) as raised:
        loads(config_with(**keys))
    assert str(raised.value).startswith(message), str(raised.value)


def test_a_missing_host_and_a_stray_section_are_errors() -> None:
    with pytest.raises(SipConfigError, match=r"trunks.c2.host: missing \(required\)"):
        loads("[trunks.c2]\nport = 5060\n")
    with pytest.raises(SipConfigError, match="trunk: unknown section"):
        loads("[trunk.c2]\nhost = 'x'\n")
    with pytest.raises(SipConfigError, match="not valid TOML"):
        loads("[trunks.c2\n")


def test_the_password_comes_from_the_environment_and_never_shows(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    trunk = loads(EXAMPLE).trunk("carrier1")
    monkeypatch.delenv("CARRIER1_SIP_PASSWORD", raising=False)
    with pytest.raises(SipConfigError, match="CARRIER1_SIP_PASSWORD is not set"):
        trunk.password()
    monkeypatch.setenv("CARRIER1_SIP_PASSWORD", "s3cret-value")
    assert trunk.password() == "s3cret-value"
    assert "s3cret" not in repr(trunk) and "CARRIER1_SIP_PASSWORD" not in repr(trunk)


def test_the_password_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-a-file\n")
    trunk = loads(config_with(username="u", password_file=str(secret))).trunk("carrier1")
    assert trunk.password() == "from-a-file"
    assert "from-a-file" not in repr(trunk)


@pytest.mark.parametrize(
    ("number_format", "prefix", "number", "dialed"),
    [
        ("e164", "", "+12125550100", "+12125550100"),
        ("e164_no_plus", "", "+12125550100", "12125550100"),
        ("national", "", "+12125550100", "2125550100"),
        ("national", "", "+442071234567", "02071234567"),
        ("e164_no_plus", "9", "+12125550100", "912125550100"),
    ],
)
def test_numbers_are_dialed_in_the_carriers_format(
    number_format: str, prefix: str, number: str, dialed: str
) -> None:
    trunk = loads(config_with(number_format=number_format, dial_prefix=prefix)).trunk("carrier1")
    assert trunk.dial_string(number) == dialed
    assert trunk.request_uri(number) == f"sip:{dialed}@sip.carrier.example:5060"


def test_an_unknown_trunk_names_the_configured_ones() -> None:
    with pytest.raises(SipConfigError, match=r"no trunk named 'c9' \(trunks: carrier1\)"):
        loads(EXAMPLE).trunk("c9")


def test_the_example_file_in_the_repository_is_valid() -> None:
    config = load(Path(__file__).parent.parent / "sip.example.toml")
    assert config.trunk("carrier1").codecs == ("PCMA", "PCMU")


def test_tls_trunks_share_one_ca_bundle_and_policy(tmp_path: Path) -> None:
    """A line worker has one TLS transport: trunks that disagree on its CA bundle are refused."""
    first, second = tmp_path / "a.pem", tmp_path / "b.pem"
    first.write_text("ca a")
    second.write_text("ca b")
    trunks = (
        f'[trunks.a]\nhost = "a.example"\ntransport = "tls"\ntls_ca_file = "{first}"\n'
        '[trunks.b]\nhost = "b.example"\ntransport = "tls"\ntls_ca_file = "{}"\n'
    )
    assert loads(trunks.format(first)).trunk("b").tls_ca_file == first
    with pytest.raises(SipConfigError) as raised:
        loads(trunks.format(second))
    assert str(raised.value).startswith("trunks.b.tls_ca_file: differs from trunks.a.tls_ca_file")


def test_a_calls_caller_id_goes_in_from_and_where_the_carrier_asserts_identity() -> None:
    config = loads(
        '[trunks.plain]\nhost = "sip.example"\n'
        '[trunks.asserting]\nhost = "sip.example"\ncaller_id = "+12125550100"\n'
        'p_asserted_identity = "\\"Acme\\" <sip:+12125550100@sip.example>"\n'
        '[trunks.registering]\nhost = "sip.example"\nusername = "acct1"\nregister = true\n'
    )
    plain = config.trunk("plain").caller_identity("+13055550100")
    assert (plain.from_uri, plain.p_asserted_identity) == ("sip:+13055550100@sip.example", None)
    asserting = config.trunk("asserting").caller_identity("+13055550100")
    assert asserting.from_uri == "sip:+13055550100@sip.example"
    assert asserting.p_asserted_identity == "<sip:+13055550100@sip.example>"
    # The trunk's own number goes out as the file says: From the account, its own assertion.
    own = config.trunk("asserting").caller_identity("+12125550100")
    assert (own.from_uri, own.p_asserted_identity) == (
        None,
        '"Acme" <sip:+12125550100@sip.example>',
    )
    # A registering trunk's INVITEs come From its account: the number goes in the assertion.
    registering = config.trunk("registering").caller_identity("+13055550100")
    assert registering.from_uri is None
    assert registering.p_asserted_identity == "<sip:+13055550100@sip.example>"
    with pytest.raises(SipConfigError, match=r"caller ID '3055550100' is not an E\.164 number"):
        config.trunk("plain").caller_identity("3055550100")
