"""What every part of the API shares: its blueprints (JSON errors, CSRF only for the console's
cookie session), the signed-in user's period of days, and finding rows or answering 404."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, TypeVar

from flask import Request, request
from flask_smorest import Blueprint
from flask_wtf.csrf import CSRFError
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import CombinedMultiDict
from werkzeug.exceptions import HTTPException

from campaigns.models import Base, Campaign, utcnow
from campaigns.reporting import Period, ReportError
from web import db
from web.api.errors import fail, http_error, invalid
from web.display import viewer_zone
from web.security import csrf
from web.tokens import by_token

API_ROOT = "/api/v1"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
Row = TypeVar("Row", bound=Base)


def _csrf_unless_token() -> None:
    """A browser signed in to the console may use the API with its session cookie, as the
    interactive documentation does: then the page's CSRF token is checked as for a form. A
    request with a token is exempt: no other site can make a browser send one."""
    if request.method not in SAFE_METHODS and not by_token():
        csrf.protect()


class ApiParser(FlaskParser):  # type: ignore[misc]
    """webargs' parser with one more location, "multipart": the form fields and the files of
    one multipart request read by one schema (a lead file with its column mapping), so that the
    OpenAPI document describes them as one request body."""

    __location_map__: ClassVar[dict[str, str]] = {
        **FlaskParser.__location_map__,
        "multipart": "load_multipart",
    }

    def load_multipart(self, req: Request, schema: Any) -> Any:
        return self._makeproxy(CombinedMultiDict([req.form, req.files]), schema)


class ApiBlueprint(Blueprint):  # type: ignore[misc]
    ARGUMENTS_PARSER = ApiParser()
    DEFAULT_LOCATION_CONTENT_TYPE_MAPPING = {  # noqa: RUF012 - flask-smorest reads it so
        **Blueprint.DEFAULT_LOCATION_CONTENT_TYPE_MAPPING,
        "multipart": "multipart/form-data",
    }


def blueprint(name: str, prefix: str, description: str) -> ApiBlueprint:
    """An API blueprint: its errors are JSON in the API's shape, and CSRF is checked by
    `_csrf_unless_token` rather than for every POST."""
    made = ApiBlueprint(
        f"api_{name}", __name__, url_prefix=f"{API_ROOT}{prefix}", description=description
    )
    made.before_request(_csrf_unless_token)
    made.register_error_handler(HTTPException, http_error)
    # Flask looks for a handler of the error's code (the console's CSRFError page is one)
    # before a handler of its class: this one is named by class and code alike.
    made.register_error_handler(CSRFError, http_error)
    csrf.exempt(made)
    return made


def found(model: type[Row], row_id: int, what: str | None = None) -> Row:
    row = db.session().get(model, row_id)
    if row is None:
        name = what or model.__tablename__.rstrip("s").replace("_", " ")
        fail(404, "not_found", f"there is no {name} with id {row_id}", field="id", value=row_id)
    return row


def campaign_or_invalid(campaign_id: int | None, field: str = "campaign_id") -> Campaign | None:
    """The campaign a filter or a body names (None when none is named); a 422 naming the
    field for an unknown one."""
    if campaign_id is None:
        return None
    campaign = db.session().get(Campaign, campaign_id)
    if campaign is None:
        invalid(field, campaign_id, "no campaign has this id (GET /api/v1/campaigns lists them)")
    return campaign


def period(args: dict[str, Any]) -> Period:
    """The days `from` and `to` (included) name, in the user's time zone; today by default."""
    zone = viewer_zone()
    today = utcnow().astimezone(zone).date()
    first: dt.date = args.get("from_") or today
    last: dt.date = args.get("to") or first
    try:
        return Period.of_days(first, last, zone.key)
    except ReportError as error:
        invalid(error.field, last.isoformat(), str(error))


def period_json(p: Period) -> dict[str, Any]:
    return {
        "from_": p.first_day,
        "to": p.last_day,
        "time_zone": p.zone,
        "start": p.start,
        "end": p.end,
    }
