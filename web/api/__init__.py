"""The REST API under /api/v1: campaigns, lead lists and imports, leads, do-not-call lists,
attempts, dispositions, agents and reports, for programs holding an API token (web.tokens)
and for the console's own pages.

Built with flask-smorest: marshmallow schemas validate every request and the OpenAPI
document is generated from the routes and their schemas (`/api/v1/openapi.json`, with
interactive documentation at `/api/docs` served from the package). Every route names its
permission in the console's table (web.permissions), errors have one JSON shape
(web.api.errors), lists are paginated by cursor (web.api.paging).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, abort, current_app, render_template, send_file
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from web.api.base import API_ROOT
from web.api.errors import http_error
from web.api.schemas import ErrorSchema
from web.permissions import PUBLIC, allow

EXTENSION = "dialer.api"
DESCRIPTION = """\
The dialer's REST API. Authenticate with a token made under *Your account → API tokens*:
`Authorization: Bearer dlr_...`. A token acts with its user's role at the time of the request.

Lists are paginated: `limit` (1-500) and the `next_cursor` of the previous page as `cursor`;
each page links the next in `pagination.next` and a `Link` header.

Every error has one shape: `{"error": {"code": ..., "message": ..., "field": ...}}`.
Dates (`from`, `to`) are days in the token user's time zone; times are ISO 8601 in UTC.
"""
# Swagger UI's files, from the swagger-ui-bundle package: served by the console itself (call
# centres often run on closed networks: never a CDN).
DOCS_ASSETS = frozenset(
    {"swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js"}
)


class DialerApi(Api):  # type: ignore[misc]
    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self) -> None:
        # flask-smorest would answer every error of the whole app in JSON; the console keeps
        # its pages, and the API's blueprints register their own handler (web.api.base).
        return


spec = Blueprint("api_spec", __name__, url_prefix=API_ROOT)
spec.register_error_handler(HTTPException, http_error)
# The interactive documentation is a console page (a visitor is sent to sign in first).
docs = Blueprint("api_docs", __name__, url_prefix="/api/docs")


@spec.route("/openapi.json")
@allow("api.docs")
def openapi() -> Any:
    """The OpenAPI document, generated from the routes."""
    api: DialerApi = current_app.extensions[EXTENSION]
    return current_app.json.response(api.spec.to_dict())


@docs.route("/")
@allow("api.docs")
def interactive() -> Any:
    return render_template("api/docs.html")


@docs.route("/assets/<path:filename>")
@allow(PUBLIC)
def asset(filename: str) -> Any:
    if filename not in DOCS_ASSETS:
        abort(404)
    from swagger_ui_bundle import swagger_ui_path

    return send_file(swagger_ui_path / filename, max_age=86400)


def init_app(app: Flask) -> None:
    from web.api import agents, campaigns, dnc, leads, lists, reports

    app.config.update(
        API_TITLE="Dialer API",
        API_VERSION="v1",
        # 3.0: what the bundled Swagger UI renders.
        OPENAPI_VERSION="3.0.3",
        API_SPEC_OPTIONS={
            "info": {"description": DESCRIPTION},
            "security": [{"token": []}],
            "servers": [{"url": "/"}],
        },
    )
    api = DialerApi(app)
    api.spec.components.security_scheme(
        "token",
        {"type": "http", "scheme": "bearer", "description": "An API token: dlr_..."},
    )
    for blueprint in (
        campaigns.bp,
        lists.bp,
        leads.bp,
        dnc.bp,
        reports.attempts_bp,
        reports.dispositions_bp,
        agents.bp,
        reports.reports_bp,
    ):
        api.register_blueprint(blueprint)
    app.register_blueprint(spec)
    app.register_blueprint(docs)
    app.extensions[EXTENSION] = api
