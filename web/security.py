"""Sessions, passwords, CSRF, login throttling and the headers every response carries."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import Flask, Response, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, UserMixin
from flask_wtf.csrf import CSRFProtect

from campaigns.models import User
from web import db
from web.permissions import API_PREFIX

MIN_PASSWORD = 10
MAX_PASSWORD = 256
# No inline script or style anywhere: JavaScript and CSS come from the package's static files.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}

login_manager = LoginManager()
csrf = CSRFProtect()
# In-memory counters serve one console process; several consoles behind a load balancer share
# a storage named by RATELIMIT_STORAGE_URI (e.g. redis://).
limiter = Limiter(key_func=get_remote_address, default_limits=[])
hasher = PasswordHasher()


@dataclass(frozen=True, eq=False)
class ConsoleUser(UserMixin):  # type: ignore[misc]
    """The signed-in user as the console needs it, loaded from the users table per request."""

    id: int
    username: str
    role: str
    time_zone: str
    must_change_password: bool
    session_key: str

    def get_id(self) -> str:
        return f"{self.id}:{self.session_key}"

    @classmethod
    def of(cls, user: User) -> ConsoleUser:
        return cls(
            user.id,
            user.username,
            user.role,
            user.time_zone,
            user.must_change_password,
            session_key(user.password_hash),
        )


def session_key(password_hash: str) -> str:
    """Part of the session's user id: a new password signs out every other session."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


@login_manager.user_loader
def load_user(user_id: str) -> ConsoleUser | None:
    if request.path.startswith(API_PREFIX) and "Authorization" in request.headers:
        # An API request with a token is authenticated by the token alone (web.tokens).
        return None
    number, _, key = user_id.partition(":")
    if not number.isdigit():
        return None
    # A session that only reads, of its own: the request's takes SQLite's write lock at its
    # first statement when the request changes data, and taking it here, before the body is
    # read (an uploaded lead file of 100 MB), would make every node wait for the upload.
    with db.sessions()() as session:
        user = session.get(User, int(number))
        if (
            user is None
            or not user.active
            or not secrets.compare_digest(session_key(user.password_hash), key)
        ):
            return None
        return ConsoleUser.of(user)


def hash_password(password: str) -> str:
    return hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Checks a password; an unknown user is checked against a throwaway hash so that the
    answer takes as long as for a known one."""
    try:
        hasher.verify(password_hash or _decoy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return password_hash is not None


_DECOY: list[str] = []


def _decoy_hash() -> str:
    if not _DECOY:
        _DECOY.append(hasher.hash(secrets.token_urlsafe(16)))
    return _DECOY[0]


def password_problem(password: str, username: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_PASSWORD:
        return f"has {len(password)} characters; use at least {MIN_PASSWORD}"
    if len(password) > MAX_PASSWORD:
        return f"has {len(password)} characters; use at most {MAX_PASSWORD}"
    if username and username.lower() in password.lower():
        return "contains the user name"
    if len(set(password)) < 4:
        return "repeats too few characters"
    return None


def one_time_password() -> str:
    """A password for someone else to type once and change at first login."""
    return secrets.token_urlsafe(12)


def set_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if request.endpoint != "static":
        # Pages show leads' personal data: never kept in a shared browser's cache.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask, config: dict[str, Any]) -> None:
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="dialer_session",
        # Flask-WTF: a form's token lives as long as the session (a long campaign form must not
        # expire while a manager fills it in).
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    app.config.update(config)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in."
    login_manager.login_message_category = "info"
    login_manager.init_app(app)
    limiter.init_app(app)
    app.after_request(set_headers)
