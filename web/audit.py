"""The audit log: every change a console user makes, with what it was before and after.

Every mutating view calls `record` in the transaction that makes the change, so the entry and
the change are committed together or not at all."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from flask_login import current_user
from sqlalchemy.orm import Session

from campaigns.models import AuditLog

# Never copied into the log, whatever view passes them.
SECRET_FIELDS = frozenset({"password", "password_hash"})


def plain(value: Any) -> Any:
    """A value as JSON can store it."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    return value


def snapshot(entity: object, fields: Iterable[str]) -> dict[str, Any]:
    return {name: plain(getattr(entity, name)) for name in fields if name not in SECRET_FIELDS}


def changes(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None
) -> dict[str, dict[str, Any]]:
    """For an update, only the fields that changed; a creation or deletion keeps them all."""
    before = {k: v for k, v in (before or {}).items() if k not in SECRET_FIELDS}
    after = {k: v for k, v in (after or {}).items() if k not in SECRET_FIELDS}
    if before and after:
        changed = [k for k in after.keys() | before.keys() if before.get(k) != after.get(k)]
        before = {k: before.get(k) for k in changed}
        after = {k: after.get(k) for k in changed}
    return {"before": plain(before), "after": plain(after)}


def record(
    session: Session,
    action: str,
    entity: str,
    entity_id: object,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    actor: str | None = None,
) -> AuditLog:
    """Adds the entry to the caller's transaction; the caller commits."""
    entry = AuditLog(
        actor=actor or current_user.username,
        action=action,
        entity=entity,
        entity_id=None if entity_id is None else str(entity_id),
        details=changes(before, after),
    )
    session.add(entry)
    return entry
