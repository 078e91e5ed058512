"""Who may do what: the one table every view is checked against.

Each view names a permission with `@allow(...)`; the app refuses any endpoint that names none
(`check_request`), so a new view is closed until someone decides who may use it. A new
blueprint adds its permissions to PERMISSIONS; the authorisation tests read this table and the
app's routes, so they cover new views without being touched.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import abort, current_app, redirect, request, url_for
from flask_login import current_user

from campaigns.models import ROLES

PUBLIC = "public"
# The REST API: refusals there are JSON, never the sign-in page.
API_PREFIX = "/api/v1/"
EVERYONE = frozenset(ROLES)
STAFF = frozenset({"admin", "manager", "supervisor"})
MANAGERS = frozenset({"admin", "manager"})
ADMINS = frozenset({"admin"})

PERMISSIONS: dict[str, frozenset[str]] = {
    # One's own account: time zone and password.
    "account": EVERYONE,
    "dashboard.view": STAFF,
    "campaigns.view": STAFF,
    "campaigns.edit": MANAGERS,
    # Start, pause and stop: a supervisor on the floor may pause a campaign that misbehaves.
    "campaigns.control": STAFF,
    # A campaign's caller-ID pool: which numbers its calls show, and how often a day.
    "callerids.manage": MANAGERS,
    "leads.view": STAFF,
    # Upload lead lists, enable and disable them.
    "lists.manage": MANAGERS,
    "dnc.view": STAFF,
    # A supervisor takes a customer's do-not-call request over the phone.
    "dnc.add": STAFF,
    # Removing, bulk-importing and exporting numbers changes or copies the whole list.
    "dnc.manage": MANAGERS,
    "users.manage": ADMINS,
    "trunks.view": MANAGERS,
    "trunks.test": MANAGERS,
    "audit.view": ADMINS,
    # The agent desktop: agents take calls there; supervisors, managers and admins may too.
    "desk.use": EVERYONE,
    # Agent groups: who works which campaigns.
    "agents.manage": MANAGERS,
    # Reports (call detail, campaign summary, agent performance, compliance) and their exports.
    "reports.view": STAFF,
    # Call recordings hold people's voices: for those who coach and check the calls.
    "recordings.listen": STAFF,
    # Agents' live state, for the floor.
    "agents.view": STAFF,
    # An agent's moves (log in, ready, pause, disposition, dial, hang up, transfer): an agent
    # makes their own (the view checks it), staff make them for any agent.
    "agents.act": EVERYONE,
    # One's own API tokens; the API's description and its interactive documentation.
    "api.tokens": EVERYONE,
    "api.docs": EVERYONE,
}

View = TypeVar("View", bound=Callable[..., Any])


def may(role: str | None, permission: str) -> bool:
    if permission == PUBLIC:
        return True
    return role is not None and role in PERMISSIONS[permission]


def allow(permission: str) -> Callable[[View], View]:
    """Marks a view with the permission it needs and checks it on every call."""
    if permission != PUBLIC and permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}; add it to web.permissions")

    def mark(view: View) -> View:
        @functools.wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            refusal = refuse(permission)
            if refusal is not None:
                return refusal
            return view(*args, **kwargs)

        checked.permission = permission  # type: ignore[attr-defined]
        return checked  # type: ignore[return-value]

    return mark


def permission_of(endpoint: str) -> str | None:
    if endpoint == "static":
        return PUBLIC
    view = current_app.view_functions.get(endpoint)
    return getattr(view, "permission", None)


def refuse(permission: str) -> Any:
    """None when the current user may; else the answer: the login page for a visitor (401 for
    JSON), 403 for a signed-in user without the role."""
    if permission == PUBLIC:
        return None
    if not current_user.is_authenticated:
        if (
            request.path.startswith(API_PREFIX)
            or request.accept_mimetypes.best == "application/json"
            or request.path.endswith(".json")
        ):
            abort(401)
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if not may(current_user.role, permission):
        abort(403)
    return None


def check_request() -> Any:
    """before_request: deny by default. An endpoint without a permission is a programming
    error, refused rather than left open."""
    endpoint = request.endpoint
    if endpoint is None:  # no route matched: Flask answers 404 or 405
        return None
    permission = permission_of(endpoint)
    if permission is None:
        current_app.logger.error("endpoint %s names no permission: refused", endpoint)
        abort(403)
    return refuse(permission)
