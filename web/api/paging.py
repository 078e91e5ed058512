"""Pagination for the API's lists: `limit` and an opaque `cursor` (keyset: the key of the last
item seen), so a page costs the same on the first page and the thousandth, and a list that
grows meanwhile neither repeats nor skips items. Each page says where the next one is, in its
body and in a Link header."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import marshmallow as ma
from flask import request, url_for

from web.api.errors import invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class PageArgs(ma.Schema):
    limit = ma.fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=ma.validate.Range(1, MAX_LIMIT),
        metadata={"description": f"Items per page, 1 to {MAX_LIMIT}."},
    )
    cursor = ma.fields.String(
        metadata={"description": "The `next_cursor` of the previous page; none for the first."}
    )


class PaginationSchema(ma.Schema):
    limit = ma.fields.Integer()
    next_cursor = ma.fields.String(allow_none=True)
    next = ma.fields.String(allow_none=True, metadata={"description": "The next page's URL."})


def encode(key: list[Any]) -> str:
    plain = [v.isoformat() if isinstance(v, dt.datetime) else v for v in key]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def decode(cursor: str | None, *kinds: type) -> list[Any] | None:
    """The key a cursor holds, its parts of the given types (datetime, int, str)."""
    if cursor is None:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(kinds):
            raise ValueError
        key: list[Any] = []
        for value, kind in zip(raw, kinds, strict=True):
            if kind is dt.datetime:
                key.append(dt.datetime.fromisoformat(value))
            elif not isinstance(value, kind) or isinstance(value, bool):
                raise ValueError
            else:
                key.append(value)
        return key
    except (ValueError, TypeError, UnicodeDecodeError):
        invalid("cursor", cursor, "not a cursor of this list: pass next_cursor as it came")


def page(
    items: list[Any], key: list[Any] | None, limit: int
) -> tuple[dict[str, Any], dict[str, str]]:
    """The page's body and headers; `key` is the next page's (None on the last page)."""
    following = None
    cursor = encode(key) if key is not None else None
    headers: dict[str, str] = {}
    if cursor is not None:
        args = {k: v for k, v in request.args.items(multi=False) if k != "cursor"}
        args.update(request.view_args or {})
        following = url_for(request.endpoint or "", **{**args, "cursor": cursor, "limit": limit})
        headers["Link"] = f'<{following}>; rel="next"'
    return (
        {"data": items, "pagination": {"limit": limit, "next_cursor": cursor, "next": following}},
        headers,
    )
