"""Users and agents: roles, SIP phones, time zones, the active flag and password resets."""

from __future__ import annotations

import os
import re
from typing import Any

from flask import Blueprint, Flask, abort, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from wtforms import BooleanField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from campaigns.manage import NO_PASSWORD
from campaigns.models import ROLES, User
from web import audit, db
from web.display import time_zones
from web.permissions import allow
from web.security import hash_password, one_time_password, password_problem

bp = Blueprint("users", __name__, url_prefix="/users")
ADMIN_PASSWORD_ENV = "DIALER_ADMIN_PASSWORD"
FIRST_ADMIN = "admin"
USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{2,80}$")
# A SIP URI the dialer can call: sip: or sips:, then user@host[:port][;params], no spaces.
SIP_URI = re.compile(r"^sips?:[^\s<>\"@]+@[^\s<>\"@]+$")
AUDITED = ("username", "role", "sip_uri", "active", "time_zone", "must_change_password")
ROLE_LABELS = {
    "admin": "Administrator",
    "manager": "Campaign manager",
    "supervisor": "Supervisor",
    "agent": "Agent",
}


def ensure_admin(app: Flask) -> tuple[str, str] | None:
    """On first start, when no administrator exists, creates `admin` with the password from
    DIALER_ADMIN_PASSWORD or a random one; returns (name, password) to print once, or None.
    Either way the password must be changed at first login."""
    with app.app_context():
        session = db.sessions()()
        with session:
            admins = session.scalar(select(func.count()).where(User.role == "admin"))
            if admins:
                return None
            password = os.environ.get(ADMIN_PASSWORD_ENV) or one_time_password()
            problem = password_problem(password, FIRST_ADMIN)
            if problem:
                raise ValueError(f"{ADMIN_PASSWORD_ENV}: the password {problem}")
            user = User(
                username=FIRST_ADMIN,
                password_hash=hash_password(password),
                role="admin",
                must_change_password=True,
            )
            session.add(user)
            session.flush()
            audit.record(
                session,
                "create",
                "user",
                user.id,
                after=audit.snapshot(user, AUDITED),
                actor="system",
            )
            session.commit()
            return FIRST_ADMIN, password


class UserForm(FlaskForm):
    username = StringField(
        "User name",
        validators=[
            DataRequired(),
            Regexp(USERNAME, message="2-80 letters, digits and . _ @ -"),
        ],
    )
    role = SelectField("Role", choices={r: ROLE_LABELS[r] for r in ROLES})
    sip_uri = StringField(
        "SIP phone",
        validators=[
            Optional(),
            Length(max=255),
            Regexp(SIP_URI, message="a SIP URI such as sip:1001@10.0.0.5:5060"),
        ],
        description="Where the dialer rings this agent's phone, e.g. sip:1001@10.0.0.5:5060",
    )
    time_zone = SelectField("Time zone", default="UTC")
    active = BooleanField("Active (may sign in)", default=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.time_zone.choices = list(time_zones())

    def validate(self, extra_validators: Any = None) -> bool:
        valid = bool(super().validate(extra_validators))
        # Not a validator of the field: Optional() ends its chain when it is empty.
        if self.role.data == "agent" and not (self.sip_uri.data or "").strip():
            self.sip_uri.errors = [*self.sip_uri.errors, "An agent needs a SIP phone to ring."]
            return False
        return valid


def _unique(session: Session, username: str, user_id: int | None) -> bool:
    query = select(User.id).where(func.lower(User.username) == username.lower())
    existing = session.scalar(query)
    return existing is None or existing == user_id


def _active_admins(session: Session) -> int:
    return int(
        session.scalar(select(func.count()).where(User.role == "admin", User.active.is_(True))) or 0
    )


@bp.route("/")
@allow("users.manage")
def index() -> Any:
    users = db.session().scalars(select(User).order_by(User.role, User.username)).all()
    # Agents added from the command line (dialer agent add) have no password until reset here.
    no_password = {u.id for u in users if u.password_hash == NO_PASSWORD}
    return render_template(
        "users/index.html", users=users, role_labels=ROLE_LABELS, no_password=no_password
    )


@bp.route("/new", methods=["GET", "POST"])
@allow("users.manage")
def create() -> Any:
    form = UserForm()
    session = db.session()
    if form.validate_on_submit():
        username = form.username.data.strip()
        if not _unique(session, username, None):
            form.username.errors = [f"A user named {username!r} exists already."]
        else:
            password = one_time_password()
            user = User(
                username=username,
                password_hash=hash_password(password),
                role=form.role.data,
                sip_uri=(form.sip_uri.data or "").strip() or None,
                time_zone=form.time_zone.data,
                active=form.active.data,
                must_change_password=True,
            )
            session.add(user)
            session.flush()
            audit.record(session, "create", "user", user.id, after=audit.snapshot(user, AUDITED))
            session.commit()
            return render_template("users/password.html", user=user, password=password)
    return render_template("users/form.html", form=form, user=None)


@bp.route("/<int:user_id>", methods=["GET", "POST"])
@allow("users.manage")
def edit(user_id: int) -> Any:
    session = db.session()
    user = session.get(User, user_id) or abort(404)
    form = UserForm(obj=user)
    if form.validate_on_submit():
        username = form.username.data.strip()
        demoted = user.role == "admin" and (form.role.data != "admin" or not form.active.data)
        if not _unique(session, username, user.id):
            form.username.errors = [f"A user named {username!r} exists already."]
        elif demoted and user.active and _active_admins(session) <= 1:
            form.role.errors = ["This is the last active administrator: keep at least one."]
        else:
            before = audit.snapshot(user, AUDITED)
            user.username = username
            user.role = form.role.data
            user.sip_uri = (form.sip_uri.data or "").strip() or None
            user.time_zone = form.time_zone.data
            user.active = form.active.data
            audit.record(
                session,
                "update",
                "user",
                user.id,
                before=before,
                after=audit.snapshot(user, AUDITED),
            )
            session.commit()
            flash(f"User {user.username} saved.", "success")
            return redirect(url_for("users.index"))
    return render_template("users/form.html", form=form, user=user)


@bp.route("/<int:user_id>/reset-password", methods=["POST"])
@allow("users.manage")
def reset_password(user_id: int) -> Any:
    """A new one-time password, shown once; the user must change it at the next login, and
    every session of the user ends (its id holds a digest of the old hash)."""
    session = db.session()
    user = session.get(User, user_id) or abort(404)
    if user.id == current_user.id:
        flash("Change your own password from your account page.", "error")
        return redirect(url_for("users.edit", user_id=user.id))
    password = one_time_password()
    user.password_hash = hash_password(password)
    user.must_change_password = True
    audit.record(session, "reset_password", "user", user.id, after={"must_change_password": True})
    session.commit()
    return render_template("users/password.html", user=user, password=password)
