"""The API's one error shape, for every refusal from authentication to validation:

    {"error": {"code": "invalid", "message": "limit=0: Must be ...", "field": "limit",
               "value": 0, "details": [{"field": ..., "value": ..., "message": ...}]}}

`code` is stable for programs, `message` a sentence for people naming the field, the value
and what would be accepted; `field`, `value` and `details` appear when they apply.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NoReturn

from flask import Response, abort, g, jsonify, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from web.permissions import PERMISSIONS, permission_of

CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    500: "internal_error",
}
_ABSENT = object()


def body(
    code: str,
    message: str,
    *,
    field: str | None = None,
    value: Any = _ABSENT,
    details: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "field": field}
    if value is not _ABSENT:
        error["value"] = value
    if details:
        error["details"] = details
    error.update(extra)
    return {"error": error}


def respond(status: int, code: str, message: str, **kwargs: Any) -> Response:
    response = jsonify(body(code, message, **kwargs))
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="dialer"'
    return response


def fail(status: int, code: str, message: str, **kwargs: Any) -> NoReturn:
    """Ends the request with the error (abort with a ready response: no handler runs)."""
    abort(respond(status, code, message, **kwargs))


def invalid(field: str, value: Any, message: str) -> NoReturn:
    fail(422, "invalid", f"{field}={value!r}: {message}", field=field, value=value)


def _flatten(messages: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            yield from _flatten(value, name)
    elif isinstance(messages, list | tuple):
        for message in messages:
            if isinstance(message, dict | list):
                yield from _flatten(message, prefix)
            else:
                yield prefix, str(message)
    else:
        yield prefix, str(messages)


def _sent(location: str, field: str) -> Any:
    """What the client sent for `field` (dotted for nested ones), or _ABSENT."""
    if location == "json":
        value: Any = request.get_json(silent=True)
    elif location == "query":
        value = {k: (v[0] if len(v) == 1 else v) for k, v in request.args.lists()}
    elif location == "form":
        value = request.form.to_dict()
    elif location in ("files", "multipart"):
        value = {k: f.filename for k, f in request.files.items()}
        if location == "multipart":
            value.update(request.form.to_dict())
    else:
        return _ABSENT
    for part in field.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _ABSENT
    return value


def validation(messages: dict[str, Any]) -> Response:
    """webargs' messages ({location: {field: [message]}}) in the API's shape."""
    details = []
    for location, fields in messages.items():
        for field, message in _flatten(fields):
            value = _sent(location, field)
            detail: dict[str, Any] = {"field": field or location, "message": message}
            if value is not _ABSENT:
                detail["value"] = value
            details.append(detail)
    first = details[0] if details else {"field": None, "message": "the request is not valid"}
    said = f"={first['value']!r}" if "value" in first else ""
    message = f"{first['field']}{said}: {first['message']}"
    if len(details) > 1:
        message += f" (and {len(details) - 1} more: see details)"
    return respond(
        422,
        "invalid",
        message,
        field=first["field"],
        value=first.get("value", None),
        details=details,
    )


def http_error(error: HTTPException) -> Response:
    """The error handler of the API's blueprints (and of any /api/ path the console's own
    handler meets)."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    if status == 422 and "messages" in data:
        return validation(data["messages"])
    if isinstance(error, CSRFError):
        return respond(
            400,
            "csrf",
            "a request signed in with the console's session cookie must send the page's CSRF "
            "token (X-CSRFToken header); programs send Authorization: Bearer <token> instead",
        )
    if status == 401:
        refusal = g.get("token_refusal")
        if refusal:
            return respond(401, "invalid_token", f"Authorization refused: {refusal}")
        return respond(
            401,
            "unauthenticated",
            "send Authorization: Bearer <token>; make a token under Your account, API tokens",
        )
    if status == 403:
        permission = permission_of(request.endpoint) if request.endpoint else None
        if permission in PERMISSIONS and current_user.is_authenticated:
            roles = ", ".join(sorted(PERMISSIONS[permission]))
            return respond(
                403,
                "forbidden",
                f"a {current_user.role} may not use {request.method} {request.path} "
                f"({permission}: {roles})",
            )
        return respond(403, "forbidden", error.description or "refused")
    if status == 400 and "messages" in data:
        return validation(data["messages"])
    if status == 405:
        allowed = (
            ", ".join(sorted(error.valid_methods or ())) if hasattr(error, "valid_methods") else ""
        )
        return respond(
            405, "method_not_allowed", f"{request.method} is not accepted here; use {allowed}"
        )
    return respond(status, CODES.get(status, "error"), error.description or error.name)
