"""Signing in and out, and each user's own account: password and time zone."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select, update
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from campaigns.models import User, utcnow
from web import audit, db
from web.display import localtime, time_zones
from web.permissions import PUBLIC, allow
from web.security import (
    ConsoleUser,
    hash_password,
    hasher,
    limiter,
    password_problem,
    verify_password,
)

bp = Blueprint("auth", __name__, url_prefix="/auth")
FAILED_LOGIN = 401


class LoginForm(FlaskForm):
    username = StringField("User name", validators=[DataRequired(), Length(max=80)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=256)])


class PasswordForm(FlaskForm):
    current = PasswordField("Current password", validators=[DataRequired()])
    new = PasswordField("New password", validators=[DataRequired()])
    confirm = PasswordField(
        "New password again", validators=[DataRequired(), EqualTo("new", "The two differ.")]
    )


class TimeZoneForm(FlaskForm):
    time_zone = SelectField("Time zone", validators=[DataRequired()])


def _login_limit_per_address() -> str:
    return str(current_app.config["LOGIN_LIMIT_PER_ADDRESS"])


def _login_limit_per_username() -> str:
    return str(current_app.config["LOGIN_LIMIT_PER_USERNAME"])


def _username_key() -> str:
    return "user:" + request.form.get("username", "").strip().lower()


def _failed(response: Any) -> bool:
    return bool(response.status_code == FAILED_LOGIN)


def _safe_next(target: str | None) -> str:
    """Only a path on this console: `next` never sends a user to another site."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and "\\" not in target:
            return target
    return url_for("index")


@bp.route("/login", methods=["GET", "POST"])
@allow(PUBLIC)
# Failed attempts count, per address and per user name; a success costs nothing.
@limiter.limit(_login_limit_per_address, methods=["POST"], deduct_when=_failed)
@limiter.limit(
    _login_limit_per_username, methods=["POST"], key_func=_username_key, deduct_when=_failed
)
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(url_for("index"))
    form = LoginForm()
    if form.validate_on_submit():
        username = form.username.data.strip()
        # Read, and the password checked, outside the request's transaction: a check takes a
        # good part of a second by design, and a POST's transaction holds SQLite's write lock
        # (twenty people signing in at a shift's start kept the nodes waiting 10 s).
        with db.sessions()() as reading:
            user = reading.scalars(select(User).where(User.username == username)).first()
        valid = verify_password(user.password_hash if user else None, form.password.data)
        if user is not None and valid and user.active:
            renewed = _renewed_hash(user, form.password.data)
            if renewed is not None:
                session = db.session()
                session.execute(
                    update(User).where(User.id == user.id).values(password_hash=renewed)
                )
                session.commit()
                user.password_hash = renewed
            login_user(ConsoleUser.of(user))
            current_app.logger.info("console login: %s (%s)", user.username, user.role)
            return redirect(_safe_next(request.args.get("next")))
        current_app.logger.warning(
            "console login refused for %r from %s", username[:80], request.remote_addr
        )
        form.password.errors = ["Wrong user name or password, or the account is disabled."]
        return render_template("auth/login.html", form=form), FAILED_LOGIN
    return render_template("auth/login.html", form=form)


def _renewed_hash(user: User, password: str) -> str | None:
    """Argon2's parameters grow with hardware: a hash made with older ones is renewed."""
    if hasher.check_needs_rehash(user.password_hash):
        return hash_password(password)
    return None


@bp.route("/logout", methods=["POST"])
@allow("account")
def logout() -> Any:
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account", methods=["GET"])
@allow("account")
def account() -> Any:
    user = db.session().get_one(User, current_user.id)
    zone_form = TimeZoneForm(time_zone=user.time_zone)
    zone_form.time_zone.choices = list(time_zones())
    return render_template(
        "auth/account.html",
        user=user,
        zone_form=zone_form,
        now_local=localtime(utcnow()),
    )


@bp.route("/account/time-zone", methods=["POST"])
@allow("account")
def time_zone() -> Any:
    form = TimeZoneForm()
    form.time_zone.choices = list(time_zones())
    if not form.validate_on_submit():
        flash(f"{form.time_zone.data!r} is not a time zone from the list.", "error")
        return redirect(url_for("auth.account"))
    session = db.session()
    user = session.get_one(User, current_user.id)
    before = audit.snapshot(user, ["time_zone"])
    user.time_zone = form.time_zone.data
    audit.record(
        session, "update", "user", user.id, before=before, after={"time_zone": user.time_zone}
    )
    session.commit()
    flash(f"Times are now shown in {user.time_zone}.", "success")
    return redirect(url_for("auth.account"))


@bp.route("/password", methods=["GET", "POST"])
@allow("account")
def change_password() -> Any:
    form = PasswordForm()
    if form.validate_on_submit():
        session = db.session()
        user = session.get_one(User, current_user.id)
        problem = password_problem(form.new.data, user.username)
        if not verify_password(user.password_hash, form.current.data):
            form.current.errors = ["This is not your current password."]
        elif form.new.data == form.current.data:
            form.new.errors = ["Choose a password other than the current one."]
        elif problem:
            form.new.errors = [f"The new password {problem}."]
        else:
            user.password_hash = hash_password(form.new.data)
            forced = user.must_change_password
            user.must_change_password = False
            audit.record(
                session,
                "change_password",
                "user",
                user.id,
                after={"must_change_password": False} if forced else {},
            )
            session.commit()
            # The session's id holds a digest of the old hash: sign in again under the new one
            # (every other session of this user ends).
            login_user(ConsoleUser.of(user))
            flash("Your password is changed.", "success")
            return redirect(url_for("index"))
    return render_template("auth/password.html", form=form)
