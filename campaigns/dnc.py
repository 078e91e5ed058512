"""Do-not-call lists: global and per campaign, optional expiry, checked at dial time."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    bindparam,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from campaigns.leads import PhoneAnalyzer, RowError, header_key
from campaigns.models import DncEntry, utcnow


class DncError(ValueError):
    pass


def normalise(number: str, region: str = "US") -> str:
    """E.164 of a number for the list; a clear error if it is not a phone number."""
    facts = PhoneAnalyzer(region).analyse(number)
    if isinstance(facts, str):
        raise DncError(f"{number!r}: {facts}")
    return facts.e164


def in_force(
    campaign_id: int | ColumnElement[int] | None, at: dt.datetime | ColumnElement[dt.datetime]
) -> ColumnElement[bool]:
    """The condition for entries that block a campaign's dials at an instant (either may be a
    bound parameter, for statements built once)."""
    scope = DncEntry.scope == "global"
    if campaign_id is not None:
        scope = or_(scope, DncEntry.campaign_id == campaign_id)
    return scope & or_(DncEntry.expires_at.is_(None), DncEntry.expires_at > at)


def blocking_entry(
    session: Session, e164: str, campaign_id: int | None, at: dt.datetime
) -> DncEntry | None:
    return session.scalars(
        select(DncEntry).where(DncEntry.phone_e164 == e164, in_force(campaign_id, at)).limit(1)
    ).first()


# Built once: the node asks it right before every dial, where building it cost more than
# running it.
_BLOCKED_AMONG = select(DncEntry.phone_e164).where(
    DncEntry.phone_e164.in_(bindparam("numbers", expanding=True)),
    in_force(bindparam("campaign", type_=Integer), bindparam("at", type_=DncEntry.expires_at.type)),
)


def blocked_numbers(
    session: Session | Connection,
    campaign_id: int | None,
    at: dt.datetime,
    numbers: Iterable[str] | None = None,
) -> set[str]:
    """Numbers on a list in force for the campaign: all of them, or those among `numbers`."""
    if numbers is None:
        return set(session.scalars(select(DncEntry.phone_e164).where(in_force(campaign_id, at))))
    wanted = list(numbers)
    if not wanted:
        return set()
    parameters = {"numbers": wanted, "campaign": campaign_id, "at": at}
    return set(session.scalars(_BLOCKED_AMONG, parameters))


def _scope(campaign_id: int | None) -> str:
    return "campaign" if campaign_id is not None else "global"


def _same_scope(campaign_id: int | None) -> ColumnElement[bool]:
    """Entries of exactly this list: the global one, or one campaign's."""
    if campaign_id is None:
        return (DncEntry.scope == "global") & DncEntry.campaign_id.is_(None)
    return (DncEntry.scope == "campaign") & (DncEntry.campaign_id == campaign_id)


def add(
    session: Session,
    e164: str,
    *,
    campaign_id: int | None = None,
    expires_at: dt.datetime | None = None,
    source: str = "manual",
    reason: str = "",
) -> DncEntry:
    """Adds (or renews) an entry; the caller commits, so an opt-out joins its transaction."""
    entry = session.scalars(
        select(DncEntry).where(DncEntry.phone_e164 == e164, _same_scope(campaign_id))
    ).first()
    if entry is None:
        entry = DncEntry(phone_e164=e164, scope=_scope(campaign_id), campaign_id=campaign_id)
        session.add(entry)
    entry.expires_at = expires_at
    entry.source = source
    entry.reason = reason
    entry.created_at = utcnow()
    return entry


@dataclass
class DncImportSummary:
    lines: int = 0
    added: int = 0
    already: int = 0
    invalid: int = 0
    errors: list[RowError] = field(default_factory=list)


def import_file(
    engine: Engine,
    path: Path,
    *,
    campaign_id: int | None = None,
    expires_at: dt.datetime | None = None,
    region: str = "US",
) -> DncImportSummary:
    """One number a line, or a CSV with a phone column; invalid lines are reported, the valid
    ones stored in one transaction."""
    summary = DncImportSummary()
    analyzer = PhoneAnalyzer(region)
    numbers: dict[str, int] = {}
    with path.open("rb") as raw, io.TextIOWrapper(raw, "utf-8-sig", errors="replace") as text:
        rows = csv.reader(text)
        column = 0
        for line_number, cells in enumerate(rows, start=1):
            if not cells or not any(c.strip() for c in cells):
                continue
            if line_number == 1:
                keys = [header_key(c) for c in cells]
                phone_columns = [i for i, k in enumerate(keys) if k in {"phone", "number", "tel"}]
                if phone_columns or not any(ch.isdigit() for ch in "".join(cells)):
                    column = phone_columns[0] if phone_columns else 0
                    continue
            summary.lines += 1
            value = cells[column] if column < len(cells) else ""
            facts = analyzer.analyse(value)
            if isinstance(facts, str):
                summary.invalid += 1
                summary.errors.append(RowError(line_number, "phone", value, facts))
            else:
                numbers.setdefault(facts.e164, line_number)
    scope = "campaign" if campaign_id is not None else "global"
    same_scope = (DncEntry.scope == scope) & (
        DncEntry.campaign_id.is_(None)
        if campaign_id is None
        else DncEntry.campaign_id == campaign_id
    )
    now = utcnow()
    with engine.begin() as connection:
        existing = set(connection.scalars(select(DncEntry.phone_e164).where(same_scope)))
        fresh = [n for n in numbers if n not in existing]
        renewed = [n for n in numbers if n in existing]
        if fresh:
            connection.execute(
                insert(DncEntry),
                [
                    {
                        "phone_e164": n,
                        "scope": scope,
                        "campaign_id": campaign_id,
                        "source": "import",
                        "reason": "",
                        "created_at": now,
                        "expires_at": expires_at,
                    }
                    for n in fresh
                ],
            )
        for start in range(0, len(renewed), 1000):
            connection.execute(
                update(DncEntry)
                .where(same_scope, DncEntry.phone_e164.in_(renewed[start : start + 1000]))
                .values(expires_at=expires_at, created_at=now, source="import")
            )
    summary.added, summary.already = len(fresh), len(renewed)
    return summary
