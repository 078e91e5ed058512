"""Typed SIP trunk configuration loaded from TOML, with the secrets kept out of it.

The file names where a password lives (an environment variable or a file), never the password
itself, so the configuration can be committed, printed and logged without leaking a secret.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_ENV = "DIALER_SIP_CONFIG"
TRANSPORTS = ("udp", "tcp", "tls")
NUMBER_FORMATS = ("e164", "e164_no_plus", "national")
# Names as pjsua2 knows them ("PCMA/8000/1"); the trunk lists the short names in its order.
KNOWN_CODECS = ("PCMU", "PCMA", "G722", "GSM", "speex", "iLBC", "L16", "opus", "AMR")
# Regulators want at least 15 s of ringing before a call is given up (ARCHITECTURE §5).
MIN_RING_TIMEOUT = 15.0
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
TRUNK_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class SipConfigError(ValueError):
    """A configuration problem, worded as `trunks.NAME.KEY: VALUE is not ... (accepted ...)`."""


@dataclass(frozen=True)
class Trunk:
    """One carrier trunk. `password()` reads the secret when a line worker needs it."""

    name: str
    host: str
    port: int = 5060
    transport: str = "udp"
    username: str | None = None
    password_env: str | None = field(default=None, repr=False)
    password_file: Path | None = field(default=None, repr=False)
    realm: str | None = None
    register: bool = False
    register_expires: int = 300
    outbound_proxy: str | None = None
    caller_id: str | None = None
    p_asserted_identity: str | None = None
    number_format: str = "e164"
    dial_prefix: str = ""
    codecs: tuple[str, ...] = ("PCMA", "PCMU")
    max_channels: int = 30
    max_cps: float = 10.0
    ring_timeout: float = 30.0
    no_response_timeout: float = 8.0
    # TLS only: the CA bundle the carrier's certificate must chain to (default: the system's),
    # and whether the certificate is checked at all (a carrier's self-signed test trunk).
    tls_ca_file: Path | None = None
    tls_verify_server: bool = True

    def password(self) -> str | None:
        """The digest password from the environment or the password file; None without auth."""
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if value is None:
                raise SipConfigError(
                    f"trunks.{self.name}.password_env: environment variable "
                    f"{self.password_env} is not set"
                )
            return value
        if self.password_file is not None:
            try:
                return self.password_file.read_text(encoding="utf-8").strip()
            except OSError as error:
                raise SipConfigError(
                    f"trunks.{self.name}.password_file: {str(self.password_file)!r} "
                    f"cannot be read ({error.strerror})"
                ) from None
        return None

    def dial_string(self, number: str) -> str:
        """The user part of the Request-URI for an E.164 number, as this carrier wants it."""
        if not E164.match(number):
            raise SipConfigError(f"{number!r} is not an E.164 number (+ then 7-15 digits)")
        if self.number_format == "e164":
            user = number
        elif self.number_format == "e164_no_plus":
            user = number[1:]
        else:
            user = _national(number)
        return self.dial_prefix + user

    def request_uri(self, number: str) -> str:
        uri = f"sip:{self.dial_string(number)}@{self.host}:{self.port}"
        return uri if self.transport == "udp" else f"{uri};transport={self.transport}"

    @property
    def from_uri(self) -> str:
        user = self.caller_id or self.username or "dialer"
        return f"sip:{user}@{self.host}"

    def caller_identity(self, caller_id: str) -> CallerIdentity:
        """How a call shows `caller_id` (a campaign's choice) on this trunk: in From, except on
        a registering trunk, whose INVITEs come From the registered account; and in
        P-Asserted-Identity when the trunk asserts one or registers (RFC 3325: the carrier
        passes the asserted number on as the caller's). The trunk's own caller ID goes out as
        the configuration says."""
        if not E164.match(caller_id):
            raise SipConfigError(
                f"caller ID {caller_id!r} is not an E.164 number (+ then 7-15 digits)"
            )
        if caller_id == self.caller_id:  # the trunk's own goes out as configured
            return CallerIdentity(None, self.p_asserted_identity)
        uri = f"sip:{caller_id}@{self.host}"
        asserted = f"<{uri}>" if self.p_asserted_identity or self.register else None
        return CallerIdentity(None if self.register else uri, asserted)


@dataclass(frozen=True)
class CallerIdentity:
    """A call's From URI (None: the account's) and P-Asserted-Identity (None: none)."""

    from_uri: str | None
    p_asserted_identity: str | None


@dataclass(frozen=True)
class SipConfig:
    trunks: Mapping[str, Trunk]

    def trunk(self, name: str) -> Trunk:
        try:
            return self.trunks[name]
        except KeyError:
            known = ", ".join(sorted(self.trunks)) or "none configured"
            raise SipConfigError(f"no trunk named {name!r} (trunks: {known})") from None


def _national(number: str) -> str:
    import phonenumbers

    parsed = phonenumbers.parse(number)
    national = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return re.sub(r"[^0-9]", "", national)


def load(path: str | Path | None = None) -> SipConfig:
    """Load the file named by `path`, else by $DIALER_SIP_CONFIG."""
    if path is None:
        path = os.environ.get(CONFIG_ENV)
        if not path:
            raise SipConfigError(f"no SIP configuration: set {CONFIG_ENV} to a TOML file")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise SipConfigError(f"{str(path)!r} cannot be read ({error.strerror})") from None
    return loads(text, source=str(path))


def calls_per_second(trunk: str | None, path: str | Path | None = None) -> float | None:
    """A trunk's calls per second as configured; None when it, or the file, is not there."""
    if not trunk:
        return None
    try:
        return load(path).trunk(trunk).max_cps
    except SipConfigError:
        return None


def loads(text: str, source: str = "<string>") -> SipConfig:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SipConfigError(f"{source}: not valid TOML ({error})") from None
    return parse(document)


def parse(document: Mapping[str, Any]) -> SipConfig:
    unknown = sorted(set(document) - {"trunks"})
    if unknown:
        raise SipConfigError(f"{unknown[0]}: unknown section (accepted: trunks)")
    trunks = document.get("trunks", {})
    if not isinstance(trunks, Mapping):
        raise SipConfigError("trunks: must be a table of [trunks.NAME] tables")
    parsed = {}
    for name, table in trunks.items():
        if not TRUNK_NAME.match(name):
            raise SipConfigError(f"trunks.{name}: a trunk name is letters, digits, _ . -")
        if not isinstance(table, Mapping):
            raise SipConfigError(f"trunks.{name}: must be a table")
        parsed[name] = _trunk(name, table)
    _one_tls_policy(parsed)
    return SipConfig(trunks=parsed)


def _one_tls_policy(trunks: Mapping[str, Trunk]) -> None:
    """A line worker holds one TLS transport, so its TLS trunks share one CA bundle and one
    verification policy; say so rather than silently apply the first trunk's."""
    tls = [t for t in trunks.values() if t.transport == "tls"]
    for trunk in tls[1:]:
        first = tls[0]
        for key in ("tls_ca_file", "tls_verify_server"):
            if getattr(trunk, key) != getattr(first, key):
                raise SipConfigError(
                    f"trunks.{trunk.name}.{key}: differs from trunks.{first.name}.{key}; TLS "
                    "trunks share one transport, so one CA bundle (concatenate the PEM files) "
                    "and one verification policy"
                )


_KEYS = tuple(f for f in Trunk.__dataclass_fields__ if f != "name")


def _trunk(name: str, table: Mapping[str, Any]) -> Trunk:
    where = f"trunks.{name}"
    if "password" in table:
        raise SipConfigError(f"{where}.password: never in the file; use password_env")
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise SipConfigError(f"{where}.{unknown[0]}: unknown key (accepted: {', '.join(_KEYS)})")

    def bad(key: str, accepted: str) -> SipConfigError:
        return SipConfigError(f"{where}.{key}: {table[key]!r} is not {accepted}")

    def text(key: str, required: bool = False) -> str | None:
        if key not in table:
            if required:
                raise SipConfigError(f"{where}.{key}: missing (required)")
            return None
        value = table[key]
        if not isinstance(value, str) or not value.strip():
            raise bad(key, "a non-empty string")
        return value.strip()

    def number(key: str, low: float, high: float, accepted: str, integer: bool = True) -> Any:
        value = table[key]
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
            raise bad(key, accepted)
        return value

    fields: dict[str, Any] = {"name": name, "host": text("host", required=True)}
    if any(c.isspace() or c in "@;:<>" for c in fields["host"]):
        raise bad("host", "a host name or IPv4 address")
    if "port" in table:
        fields["port"] = number("port", 1, 65535, "a port (1-65535)")
    if "transport" in table:
        if table["transport"] not in TRANSPORTS:
            raise bad("transport", f"a transport ({', '.join(TRANSPORTS)})")
        fields["transport"] = table["transport"]
    for key in ("username", "realm", "password_env", "outbound_proxy", "p_asserted_identity"):
        if key in table:
            fields[key] = text(key)
    if "password_env" in table and not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", table["password_env"]):
        raise bad("password_env", "an environment variable name")
    if "password_file" in table:
        fields["password_file"] = Path(str(text("password_file")))
    if "password_env" in table and "password_file" in table:
        raise SipConfigError(f"{where}: give password_env or password_file, not both")
    if ("password_env" in table or "password_file" in table) and "username" not in table:
        raise SipConfigError(f"{where}.username: missing (required with a password)")
    if "register" in table:
        if not isinstance(table["register"], bool):
            raise bad("register", "true or false")
        fields["register"] = table["register"]
    if "register_expires" in table:
        fields["register_expires"] = number(
            "register_expires", 60, 86400, "a registration lifetime (60-86400 s)"
        )
    if fields.get("register") and "username" not in table:
        raise SipConfigError(f"{where}.username: missing (required with register = true)")
    if "caller_id" in table:
        if not isinstance(table["caller_id"], str) or not E164.match(table["caller_id"]):
            raise bad("caller_id", "an E.164 number (+ then 7-15 digits, e.g. +12125550100)")
        fields["caller_id"] = table["caller_id"]
    if "number_format" in table:
        if table["number_format"] not in NUMBER_FORMATS:
            raise bad("number_format", f"a number format ({', '.join(NUMBER_FORMATS)})")
        fields["number_format"] = table["number_format"]
    if "dial_prefix" in table:
        prefix = table["dial_prefix"]
        if not isinstance(prefix, str) or not re.match(r"^[0-9*#+]{0,10}$", prefix):
            raise bad("dial_prefix", "a dial prefix (up to 10 of 0-9 * # +)")
        fields["dial_prefix"] = prefix
    if "codecs" in table:
        codecs = table["codecs"]
        if (
            not isinstance(codecs, list)
            or not codecs
            or any(c not in KNOWN_CODECS for c in codecs)
            or len(set(codecs)) != len(codecs)
        ):
            raise bad("codecs", f"a list of distinct codecs from {', '.join(KNOWN_CODECS)}")
        fields["codecs"] = tuple(codecs)
    if "max_channels" in table:
        fields["max_channels"] = number("max_channels", 1, 100_000, "a channel count (1-100000)")
    if "max_cps" in table:
        fields["max_cps"] = float(
            number("max_cps", 0.1, 10_000, "a call rate (0.1-10000 calls/s)", integer=False)
        )
    if "ring_timeout" in table:
        fields["ring_timeout"] = float(
            number(
                "ring_timeout",
                MIN_RING_TIMEOUT,
                300,
                f"a ring timeout ({MIN_RING_TIMEOUT:g}-300 s; regulators want >= 15 s of ringing)",
                integer=False,
            )
        )
    if "no_response_timeout" in table:
        fields["no_response_timeout"] = float(
            number("no_response_timeout", 1, 60, "a no-response timeout (1-60 s)", integer=False)
        )
    for key in ("tls_ca_file", "tls_verify_server"):
        if key in table and fields.get("transport") != "tls":
            raise SipConfigError(f'{where}.{key}: only with transport = "tls"')
    if "tls_ca_file" in table:
        ca_file = Path(str(text("tls_ca_file")))
        if not ca_file.is_file():
            raise bad("tls_ca_file", "a readable CA bundle file (PEM)")
        fields["tls_ca_file"] = ca_file
    if "tls_verify_server" in table:
        if not isinstance(table["tls_verify_server"], bool):
            raise bad("tls_verify_server", "true or false")
        fields["tls_verify_server"] = table["tls_verify_server"]
    return Trunk(**fields)
