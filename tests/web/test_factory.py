"""The app factory and its settings from the environment, and `dialer web` as a user runs it."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from campaigns import db
from web import create_app
from web.config import KEY_FILE_NAME, ConsoleConfigError, from_environment, secret_key


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DIALER_SECRET_KEY", "DIALER_SECRET_KEY_FILE", "DIALER_COOKIE_SECURE"):
        monkeypatch.delenv(name, raising=False)


def test_the_secret_key_is_made_once_next_to_the_database_readable_by_its_owner(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'dialer.db'}"
    key = secret_key(url)
    path = tmp_path / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) >= 32 and secret_key(url) == key
    path.chmod(0o644)
    with pytest.raises(ConsoleConfigError, match="readable by others"):
        secret_key(url)


def test_the_environment_key_wins_and_must_be_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'dialer.db'}"
    monkeypatch.setenv("DIALER_SECRET_KEY", "k" * 40)
    assert secret_key(url) == "k" * 40
    assert not (tmp_path / KEY_FILE_NAME).exists()
    monkeypatch.setenv("DIALER_SECRET_KEY", "short")
    with pytest.raises(ConsoleConfigError, match="at least 32"):
        secret_key(url)


def test_postgresql_needs_a_key_named_for_every_console(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    with pytest.raises(ConsoleConfigError, match="DIALER_SECRET_KEY"):
        secret_key(url)


def test_cookie_security_and_proxies_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'dialer.db'}"
    assert from_environment(url)["SESSION_COOKIE_SECURE"] is True
    monkeypatch.setenv("DIALER_COOKIE_SECURE", "0")
    assert from_environment(url)["SESSION_COOKIE_SECURE"] is False
    monkeypatch.setenv("DIALER_COOKIE_SECURE", "maybe")
    with pytest.raises(ConsoleConfigError, match="DIALER_COOKIE_SECURE='maybe'"):
        from_environment(url)
    monkeypatch.delenv("DIALER_COOKIE_SECURE")
    monkeypatch.setenv("DIALER_PROXIES", "one")
    with pytest.raises(ConsoleConfigError, match="DIALER_PROXIES"):
        from_environment(url)


def test_a_proxy_in_front_sets_the_scheme_so_https_gets_hsts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'dialer.db'}"
    db.upgrade(url)
    monkeypatch.setenv("DIALER_PROXIES", "1")
    app = create_app({"DATABASE_URL": url})
    response = app.test_client().get(
        "/auth/login", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "10.1.2.3"}
    )
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "Strict-Transport-Security" not in app.test_client().get("/auth/login").headers


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_console(environment: dict[str, str], port: int) -> tuple[subprocess.Popen[str], str]:
    """`dialer web` running, and what it printed until it said where it listens."""
    dialer = Path(sys.executable).with_name("dialer")
    process = subprocess.Popen(
        [str(dialer), "web", "--port", str(port)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    assert process.stdout is not None
    while not any("console: http" in line for line in lines):
        line = process.stdout.readline()
        if not line:
            process.wait(timeout=10)
            raise AssertionError("".join(lines))
        lines.append(line)
    return process, "".join(lines)


def test_dialer_web_migrates_prints_the_first_password_once_and_serves(tmp_path: Path) -> None:
    port = free_tcp_port()
    environment = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'dialer.db'}"}
    environment.pop("DIALER_ADMIN_PASSWORD", None)
    process, output = start_console(environment, port)
    try:
        assert "administrator 'admin' created with the one-time password" in output
        password = re.search(r"^    (\S+)$", output, re.M)
        assert password and len(password.group(1)) >= 16
        for _ in range(50):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/auth/login") as page:
                    body = page.read().decode()
                    cookie = page.headers["Set-Cookie"]
                break
            except OSError:
                time.sleep(0.1)
        assert "Sign in" in body
        # Plain HTTP on loopback: the session cookie is not marked Secure, or browsers drop it.
        assert "HttpOnly" in cookie and "Secure" not in cookie
    finally:
        process.terminate()
        process.wait(timeout=10)
    process, output = start_console(environment, free_tcp_port())
    process.terminate()
    process.wait(timeout=10)
    assert "database: sqlite" in output and "one-time password" not in output


def test_a_caller_may_bring_its_own_secret_for_a_database_without_a_folder() -> None:
    settings = from_environment("postgresql+psycopg://postgres@127.0.0.1:5432/test", secret=False)
    assert "SECRET_KEY" not in settings
