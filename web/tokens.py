"""API tokens: each user makes their own under Your account, sees a token once, and the REST
API takes it as `Authorization: Bearer <token>`.

A token is `dlr_<key>_<secret>`: the key (public, 16 hex digits) finds the row, and the
SHA-256 of the secret (32 random bytes) is compared with the stored one in constant time, so
the database never holds a usable token. A request with a token acts as its user with the
role the user has at that moment: a disabled user's tokens stop working, and a demoted one's
lose what the old role allowed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Request,
    Response,
    abort,
    after_this_request,
    flash,
    g,
    redirect,
    render_template,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import Engine, select, update
from sqlalchemy.exc import OperationalError
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from campaigns.models import ApiToken, User, utcnow
from web import audit, db
from web.permissions import API_PREFIX, allow
from web.security import ConsoleUser, login_manager

log = logging.getLogger(__name__)
bp = Blueprint("tokens", __name__, url_prefix="/auth/tokens")
TOKEN = re.compile(r"^dlr_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
# A token's last use is written at most this often: reading the API is not a write per call.
LAST_USED_EVERY = dt.timedelta(minutes=5)
MAX_TOKENS = 20
AUDITED = ("name", "key", "created_at", "revoked_at")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_token() -> tuple[str, str, str]:
    """(token, key, SHA-256 of its secret) for a new token."""
    key = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return f"dlr_{key}_{secret}", key, digest(secret)


def bearer(request: Request) -> str | None:
    """The token of an API request's Authorization header; "" for a header of another kind."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def find_user(token: str) -> tuple[User, ApiToken] | str:
    """The token's user and row, or why it is refused."""
    match = TOKEN.match(token)
    if match is None:
        return "the token is not one of this dialer's (dlr_ then 16 hex digits, _ and 43 more)"
    key, secret = match.groups()
    session = db.session()
    found = session.execute(
        select(User, ApiToken)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.key == key)
    ).first()
    # Compared even when no row has that key, so that the answer takes as long.
    stored = found[1].secret_sha256 if found is not None else digest("")
    if not secrets.compare_digest(stored, digest(secret)) or found is None:
        return "the token is not known: it may have been mistyped or deleted"
    user, row = found
    if row.revoked_at is not None:
        return f"the token {row.name!r} was revoked on {row.revoked_at.date().isoformat()}"
    if not user.active:
        return f"the token's user {user.username!r} is disabled"
    return user, row


def load_request_user(request: Request) -> ConsoleUser | None:
    """flask-login's request loader: API requests that carry a token are authenticated by it
    alone (security.load_user ignores their session cookie)."""
    if not request.path.startswith(API_PREFIX):
        return None
    token = bearer(request)
    if token is None:
        return None
    found = find_user(token) if token else "send the header as Authorization: Bearer <token>"
    if isinstance(found, str):
        g.token_refusal = found
        return None
    user, row = found
    g.api_token_id = row.id
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_EVERY:
        _touch_later(db.engine(), row.id, now)
    return ConsoleUser.of(user)


def _touch_later(engine: Engine, token_id: int, now: dt.datetime) -> None:
    """Records the token's use once the response is sent, on a connection of its own: the
    request's transaction (on SQLite, a write lock for a POST) is over by then."""

    def touch() -> None:
        try:
            with engine.begin() as connection:
                connection.execute(
                    update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now)
                )
        except OperationalError as error:  # the use is information, not worth failing for
            log.warning("last use of API token %s not recorded: %s", token_id, error)

    @after_this_request
    def later(response: Response) -> Response:
        response.call_on_close(touch)
        return response


def by_token() -> bool:
    """Whether this request was authenticated by an API token (CSRF then does not apply: a
    page of another site cannot make a browser send the header)."""
    return g.get("api_token_id") is not None


class TokenForm(FlaskForm):
    name = StringField(
        "Name",
        validators=[DataRequired(), Length(max=80)],
        description="What uses it, e.g. CRM sync: to recognise it in the list later.",
    )


def _mine() -> list[ApiToken]:
    return list(
        db.session().scalars(
            select(ApiToken).where(ApiToken.user_id == current_user.id).order_by(ApiToken.id)
        )
    )


@bp.route("/", methods=["GET"])
@allow("api.tokens")
def index() -> Any:
    return render_template("auth/tokens.html", tokens=_mine(), form=TokenForm(), shown=None)


@bp.route("/", methods=["POST"])
@allow("api.tokens")
def create() -> Any:
    form = TokenForm()
    if not form.validate_on_submit():
        return render_template("auth/tokens.html", tokens=_mine(), form=form, shown=None), 422
    session = db.session()
    live = [t for t in _mine() if t.revoked_at is None]
    if len(live) >= MAX_TOKENS:
        flash(f"You have {len(live)} tokens: revoke one you no longer use first.", "error")
        return redirect(url_for("tokens.index"))
    token, key, secret_digest = new_token()
    row = ApiToken(
        user_id=current_user.id, name=form.name.data.strip(), key=key, secret_sha256=secret_digest
    )
    session.add(row)
    session.flush()
    audit.record(session, "create", "api_token", row.id, after=audit.snapshot(row, AUDITED))
    session.commit()
    # Shown in this answer only: never flashed (the session cookie is readable) nor logged.
    return render_template(
        "auth/tokens.html", tokens=_mine(), form=TokenForm(formdata=None), shown=(row, token)
    )


@bp.route("/<int:token_id>/revoke", methods=["POST"])
@allow("api.tokens")
def revoke(token_id: int) -> Any:
    session = db.session()
    row = session.get(ApiToken, token_id)
    # Another user's token is none of this user's business: the same answer as no token.
    if row is None or row.user_id != current_user.id:
        abort(404)
    if row.revoked_at is None:
        before = audit.snapshot(row, AUDITED)
        row.revoked_at = utcnow()
        audit.record(
            session,
            "revoke",
            "api_token",
            row.id,
            before=before,
            after=audit.snapshot(row, AUDITED),
        )
        session.commit()
        flash(f"Token {row.name} revoked: it no longer opens the API.", "success")
    return redirect(url_for("tokens.index"))


def init_app(app: Flask) -> None:
    login_manager.request_loader(load_request_user)
