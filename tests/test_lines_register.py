"""Trunks with `register = true`: every line worker registers its account with digest auth
and keeps the registration fresh; calls on a trunk whose registration failed end as failed,
saying why. SIPp plays the carrier's registrar (401 challenge, then 200 or 403)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dialer.lines import Event, LinePool, Registration
from sip_config import loads
from tests.sipp_uas import Carrier
from tests.test_lines import NUMBER, ended, hang_up_after, run_until_ended, trunk_table

pytestmark = pytest.mark.sip

PASSWORD_ENV = "TEST_REGISTER_SIP_PASSWORD"
# The registrar grants less than the 60 s asked for, so pjsua's refresh (5 s before expiry)
# comes within the test.
GRANTED = 8


def registering_trunk(name: str, port: int) -> str:
    return trunk_table(
        name,
        port,
        f'username = "acct123"\npassword_env = "{PASSWORD_ENV}"\n'
        "register = true\nregister_expires = 60\n",
    )


def registrations(pool: LinePool, count: int, timeout: float) -> list[Registration]:
    seen: list[Registration] = []
    deadline = time.monotonic() + timeout
    while len(seen) < count and time.monotonic() < deadline:
        event: Event | None = pool.next_event(timeout=0.2)
        if isinstance(event, Registration):
            seen.append(event)
    return seen


def test_each_worker_registers_with_digest_auth_and_refreshes_before_expiry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "pw-right")
    carrier = Carrier(tmp_path, "registrar").start(
        "registrar_carrier",
        calls=20,
        timeout=60,
        rtp_echo=True,
        PASSWORD="pw-right",
        EXPIRES=str(GRANTED),
    )
    config = loads(registering_trunk("reg", carrier.port))
    try:
        with LinePool(config, workers=2) as pool:
            first = registrations(pool, 2, timeout=10)
            assert sorted(r.worker for r in first) == [0, 1]
            assert all(r.registered and r.sip_code == 200 for r in first), first
            assert all(r.trunk == "reg" and r.expires == GRANTED for r in first)
            # Before the first registration runs out, each worker has registered again.
            refreshed = registrations(pool, 2, timeout=GRANTED)
            assert sorted(r.worker for r in refreshed) == [0, 1], refreshed
            assert all(r.registered for r in refreshed), refreshed

            pool.originate("r-call", "reg", NUMBER)
            events = run_until_ended(pool, "r-call", on_event=hang_up_after(pool, "r-call", 0.2))
            assert ended(events).outcome == "human"
    finally:
        carrier.stop()


def test_a_refused_registration_is_reported_and_the_trunks_calls_fail_saying_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, "pw-wrong")
    carrier = Carrier(tmp_path, "registrar").start(
        "registrar_carrier", calls=20, timeout=30, PASSWORD="pw-right", EXPIRES="60"
    )
    config = loads(registering_trunk("reg", carrier.port))
    try:
        with LinePool(config, workers=1) as pool:
            [refused] = registrations(pool, 1, timeout=10)
            assert (refused.registered, refused.sip_code) == (False, 403)
            assert refused.reason == "REGISTER got 403 Forbidden"

            pool.originate("r-refused", "reg", NUMBER)
            result = ended(run_until_ended(pool, "r-refused"))
            assert result.outcome == "failed"
            assert result.reason == "trunk reg is not registered: REGISTER got 403 Forbidden"
            assert result.sip_code == 0  # no INVITE went out
    finally:
        carrier.stop()


def test_a_trunk_whose_password_is_missing_reports_it_instead_of_registering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    carrier = Carrier(tmp_path, "registrar").start(
        "registrar_carrier", calls=5, timeout=20, PASSWORD="pw-right", EXPIRES="60"
    )
    config = loads(registering_trunk("reg", carrier.port))
    try:
        with LinePool(config, workers=1) as pool:
            [refused] = registrations(pool, 1, timeout=10)
            assert not refused.registered and refused.sip_code == 0
            assert refused.reason == (
                "cannot register: trunks.reg.password_env: environment variable "
                f"{PASSWORD_ENV} is not set"
            )
            pool.originate("r-nopw", "reg", NUMBER)
            result = ended(run_until_ended(pool, "r-nopw"))
            assert result.outcome == "failed"
            assert result.reason.startswith("trunk reg is not registered: cannot register: ")
        assert pool.exits == [(0, 0)]
    finally:
        carrier.stop()
