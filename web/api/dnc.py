"""Do-not-call lists: search, add (with an expiry), delete, import a file of numbers."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import select

from campaigns import dnc
from campaigns.models import DncEntry
from web import audit, db
from web.api import schemas
from web.api.base import blueprint, campaign_or_invalid, found
from web.api.errors import invalid
from web.api.paging import decode, page
from web.dnc import AUDITED
from web.permissions import allow

bp = blueprint("dnc", "/dnc", "Do-not-call lists: global and per campaign.")
ERRORS_SHOWN = 100


def _number(value: str, field: str = "phone") -> str:
    try:
        return dnc.normalise(value)
    except dnc.DncError as error:
        invalid(field, value, f"{error}; a phone number, e.g. +12125550100")


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    return None if moment is None else moment.astimezone(dt.UTC)


@bp.route("")
@allow("dnc.view")
@bp.arguments(schemas.DncArgs, location="query")
@bp.response(200, schemas.DncPageSchema)
def index(args: dict[str, Any]) -> Any:
    """Entries, newest first: all, or a number's, a list's, a source's."""
    query = select(DncEntry).order_by(DncEntry.id.desc())
    if "phone" in args:
        query = query.where(DncEntry.phone_e164 == _number(args["phone"]))
    if "campaign_id" in args:
        campaign_or_invalid(args["campaign_id"])
        query = query.where(DncEntry.campaign_id == args["campaign_id"])
    for name in ("scope", "source"):
        if name in args:
            query = query.where(getattr(DncEntry, name) == args[name])
    after = decode(args.get("cursor"), int)
    if after is not None:
        query = query.where(DncEntry.id < after[0])
    rows = list(db.session().scalars(query.limit(args["limit"] + 1)))
    more = len(rows) > args["limit"]
    rows = rows[: args["limit"]]
    return page(rows, [rows[-1].id] if more else None, args["limit"])


@bp.route("", methods=["POST"])
@allow("dnc.add")
@bp.arguments(schemas.DncCreateSchema)
@bp.response(201, schemas.DncEntrySchema)
def add(body: dict[str, Any]) -> Any:
    """Adds a number to the global list or a campaign's (an entry there already is renewed)."""
    session = db.session()
    e164 = _number(body["phone"])
    campaign = campaign_or_invalid(body.get("campaign_id"))
    entry = dnc.add(
        session,
        e164,
        campaign_id=campaign.id if campaign else None,
        expires_at=_utc(body.get("expires_at")),
        source="api",
        reason=body["reason"].strip(),
    )
    session.flush()
    audit.record(session, "add", "dnc_entry", entry.id, after=audit.snapshot(entry, AUDITED))
    session.commit()
    return entry, 201


@bp.route("/<int:entry_id>", methods=["DELETE"])
@allow("dnc.manage")
@bp.response(204)
def remove(entry_id: int) -> Any:
    """Removes an entry: the number may be called again by the lists it was on."""
    session = db.session()
    entry = found(DncEntry, entry_id, "do-not-call entry")
    before = audit.snapshot(entry, AUDITED)
    session.delete(entry)
    audit.record(session, "remove", "dnc_entry", entry_id, before=before)
    session.commit()
    return None


@bp.route("/imports", methods=["POST"])
@allow("dnc.manage")
@bp.arguments(schemas.DncImportFormSchema, location="multipart")
@bp.response(200, schemas.DncImportSchema)
def import_numbers(form: dict[str, Any]) -> Any:
    """One number a line, or a CSV with a phone column; invalid lines are reported (the first
    100), the valid ones added or renewed together."""
    session = db.session()
    campaign = campaign_or_invalid(form.get("campaign_id"))
    campaign_id = campaign.id if campaign else None
    # import_file writes on a connection of its own: this request's transaction ends first.
    session.commit()
    upload = form["file"]
    with tempfile.TemporaryDirectory(prefix="dialer-dnc-") as folder:
        path = Path(folder) / "numbers.csv"
        upload.save(path)
        summary = dnc.import_file(
            db.engine(), path, campaign_id=campaign_id, expires_at=_utc(form.get("expires_at"))
        )
    audit.record(
        session,
        "import",
        "dnc_list",
        campaign_id or "global",
        after={
            "file": upload.filename,
            "lines": summary.lines,
            "added": summary.added,
            "renewed": summary.already,
            "invalid": summary.invalid,
            "expires_at": form.get("expires_at"),
            "via": "api",
        },
    )
    session.commit()
    return {
        "lines": summary.lines,
        "added": summary.added,
        "renewed": summary.already,
        "invalid": summary.invalid,
        "errors": [e._asdict() for e in summary.errors[:ERRORS_SHOWN]],
    }
