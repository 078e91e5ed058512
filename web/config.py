"""The console's settings, read from the environment once when the app is built.

The secret that signs session cookies comes from DIALER_SECRET_KEY, or from a key file made
once next to the SQLite database (mode 0600). It is never in the repository, and a console on
PostgreSQL names it explicitly: several consoles behind a load balancer must share it.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from campaigns.db import database_url

SECRET_KEY_ENV = "DIALER_SECRET_KEY"
SECRET_KEY_FILE_ENV = "DIALER_SECRET_KEY_FILE"
COOKIE_SECURE_ENV = "DIALER_COOKIE_SECURE"
PROXIES_ENV = "DIALER_PROXIES"
UPLOAD_DIR_ENV = "DIALER_UPLOAD_DIR"
KEY_FILE_NAME = "dialer-console.key"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


class ConsoleConfigError(RuntimeError):
    """A setting the console cannot start with, named with what would be accepted."""


def sqlite_folder(url: str) -> Path | None:
    """The folder of a SQLite database file; None for PostgreSQL or an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if database in (None, "", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).resolve().parent


def secret_key(url: str) -> str:
    """DIALER_SECRET_KEY, else the key file DIALER_SECRET_KEY_FILE or the one next to the
    SQLite database, created on first use readable by its owner only."""
    key = os.environ.get(SECRET_KEY_ENV)
    if key:
        if len(key) < 32:
            raise ConsoleConfigError(
                f"{SECRET_KEY_ENV} has {len(key)} characters: use at least 32 random ones "
                '(python3 -c "import secrets; print(secrets.token_urlsafe(48))")'
            )
        return key
    named = os.environ.get(SECRET_KEY_FILE_ENV)
    if named:
        path = Path(named)
    else:
        folder = sqlite_folder(url)
        if folder is None:
            if make_url(url).get_backend_name() == "sqlite":
                # An in-memory database lives as long as the process: so may the key.
                return secrets.token_urlsafe(48)
            raise ConsoleConfigError(
                f"the database is not a SQLite file, so there is no folder for the console's "
                f"key: set {SECRET_KEY_ENV} (the same on every console) or {SECRET_KEY_FILE_ENV}"
            )
        path = folder / KEY_FILE_NAME
    return _key_file(path)


def _key_file(path: Path) -> str:
    try:
        # O_EXCL: two consoles starting at once never write two different keys.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(descriptor, "w", encoding="ascii") as out:
            out.write(secrets.token_urlsafe(48) + "\n")
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConsoleConfigError(
            f"{path} is readable by others (mode {stat.filemode(mode)}): anyone who reads it "
            f"can forge a console session; run chmod 600 {path}"
        )
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise ConsoleConfigError(f"{path} holds {len(key)} characters: at least 32 are needed")
    return key


def flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ConsoleConfigError(f"{name}={value!r}: expected 1 or 0 (true/false, yes/no, on/off)")


def from_environment(url: str | None = None, *, secret: bool = True) -> dict[str, Any]:
    """Settings for create_app; a caller's config is laid over them (`secret=False` when the
    caller brings its own SECRET_KEY)."""
    url = database_url(url)
    proxies = os.environ.get(PROXIES_ENV, "0")
    if not proxies.isdigit():
        raise ConsoleConfigError(
            f"{PROXIES_ENV}={proxies!r}: expected how many proxies stand in front of the "
            "console (0 when browsers reach it directly)"
        )
    folder = sqlite_folder(url)
    uploads = os.environ.get(UPLOAD_DIR_ENV) or str((folder or Path.cwd()) / "dialer-uploads")
    settings: dict[str, Any] = {"SECRET_KEY": secret_key(url)} if secret else {}
    return {
        **settings,
        "DATABASE_URL": url,
        # Secure cookies by default; plain HTTP on the loopback interface turns it off
        # (`dialer web` does so for 127.0.0.1), since a browser drops a Secure cookie there.
        "SESSION_COOKIE_SECURE": flag(COOKIE_SECURE_ENV, True),
        "PROXIES": int(proxies),
        "UPLOAD_FOLDER": uploads,
    }
