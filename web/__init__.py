"""The web console: campaign managers, supervisors and agents work in it in a browser.

`create_app(config=None)` assembles it: settings from the environment (`web.config`), laid
over by `config`; the database (`web.db`); sessions, CSRF, throttling and headers
(`web.security`); the permission check every request passes (`web.permissions`); one
blueprint per area. Nothing at import time touches a database or a socket.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from web import config as settings
from web import db, display, export_process, permissions, security, streams
from web.api.errors import http_error as api_error
from web.permissions import API_PREFIX

# A lead file of a million rows is about 100 MB.
MAX_UPLOAD_BYTES = 512 * 2**20
# Views a user with a password to change may still reach.
PASSWORD_CHANGE_ENDPOINTS = frozenset({"auth.change_password", "auth.logout", "static"})


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    overrides = dict(config or {})
    base = settings.from_environment(
        overrides.get("DATABASE_URL"), secret="SECRET_KEY" not in overrides
    )
    app.config.update(
        MAX_CONTENT_LENGTH=MAX_UPLOAD_BYTES,
        LOGIN_LIMIT_PER_ADDRESS="10 per minute",
        LOGIN_LIMIT_PER_USERNAME="20 per hour",
        TRUNK_PING_TIMEOUT=4.0,
        TRUNK_PING_BIND="0.0.0.0",
        SIP_CONFIG=None,
        IMPORT_THREADS=2,
    )
    security.init_app(app, {**base, **overrides})
    if app.config["PROXIES"]:
        # Behind a TLS-terminating proxy: the client's address (login throttling) and scheme
        # (Secure cookies, HSTS) come from its X-Forwarded-* headers.
        count = app.config["PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)  # type: ignore[method-assign]

    db.init_app(app)
    export_process.init_app(app)
    streams.init_app(app)
    display.init_app(app)
    # Order matters: who may see a page is decided before a form's CSRF token is checked, so a
    # visitor is sent to the login page rather than told the form expired.
    app.before_request(permissions.check_request)
    app.before_request(_password_change_first)
    security.csrf.init_app(app)
    _error_pages(app)

    from web import (
        agent_groups,
        api,
        audit_log,
        auth,
        callerids,
        campaigns,
        dashboard,
        desk,
        dnc,
        imports,
        leads,
        lists,
        reports,
        tokens,
        trunks,
        users,
    )

    imports.init_app(app)
    tokens.init_app(app)
    api.init_app(app)
    for blueprint in (
        auth.bp,
        dashboard.bp,
        campaigns.bp,
        callerids.bp,
        lists.bp,
        leads.bp,
        dnc.bp,
        users.bp,
        trunks.bp,
        audit_log.bp,
        desk.bp,
        agent_groups.bp,
        tokens.bp,
        reports.bp,
    ):
        app.register_blueprint(blueprint)
    app.add_url_rule("/", endpoint="index", view_func=dashboard.home)
    return app


def _password_change_first() -> Any:
    if (
        current_user.is_authenticated
        and current_user.must_change_password
        and request.endpoint not in PASSWORD_CHANGE_ENDPOINTS
    ):
        flash("Choose a new password before you go on.", "info")
        return redirect(url_for("auth.change_password"))
    return None


def _error_pages(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_refused(error: CSRFError) -> Any:
        return (
            render_template(
                "errors.html",
                code=400,
                title="The form could not be accepted",
                message="Its security token is missing or out of date. Reload the page and "
                "send the form again.",
            ),
            400,
        )

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        if request.path.startswith(API_PREFIX):
            # A path under the API that no route matched: the API's own error shape.
            return api_error(error)
        if request.path.endswith(".json") or request.accept_mimetypes.best == "application/json":
            return {"error": error.name, "message": error.description}, error.code
        titles = {
            403: "You may not open this page",
            404: "There is no such page",
            429: "Too many attempts",
        }
        messages = {
            403: "Your role does not allow it. Ask an administrator if you need it.",
            429: "Wait a minute before you try again.",
        }
        return (
            render_template(
                "errors.html",
                code=error.code,
                title=titles.get(error.code or 0, error.name),
                message=messages.get(error.code or 0, error.description),
            ),
            error.code,
        )
