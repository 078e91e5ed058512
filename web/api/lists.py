"""Lead lists and imports: create a list, upload a CSV to it (imported in the background by
the console's own import path, web.imports), follow the import and read its row errors."""

from __future__ import annotations

import json
from typing import Any

from flask_login import current_user
from sqlalchemy import func, select

from campaigns import lists as list_actions
from campaigns.imports import ImportFileError, preview
from campaigns.leads import FIELDS
from campaigns.models import Campaign, ImportRowError, ImportRun, Lead, LeadList, utcnow
from web import audit, db, imports, lead_counts
from web.api import schemas
from web.api.base import blueprint, found
from web.api.errors import fail, invalid
from web.api.paging import PageArgs, decode, page
from web.lists import _mapping_problem
from web.permissions import allow

bp = blueprint(
    "lists", "", "Lead lists: create, upload a CSV, follow its import, recycle or reset a list."
)


def _counts(list_ids: list[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = {i: {} for i in list_ids}
    if list_ids:
        for list_id, status, count in db.session().execute(
            select(Lead.list_id, Lead.status, func.count())
            .where(Lead.list_id.in_(list_ids))
            .group_by(Lead.list_id, Lead.status)
        ):
            counts[list_id][status] = int(count)
    return counts


def _listed(lists: list[LeadList]) -> list[dict[str, Any]]:
    counts = _counts([item.id for item in lists])
    return [
        {
            "id": item.id,
            "campaign_id": item.campaign_id,
            "name": item.name,
            "default_region": item.default_region,
            "active": item.active,
            "created_at": item.created_at,
            "leads": counts[item.id],
        }
        for item in lists
    ]


@bp.route("/campaigns/<int:campaign_id>/lists")
@allow("leads.view")
@bp.arguments(PageArgs, location="query")
@bp.response(200, schemas.LeadListPageSchema)
def index(args: dict[str, Any], campaign_id: int) -> Any:
    """A campaign's lead lists with their leads by status."""
    campaign = found(Campaign, campaign_id)
    query = select(LeadList).where(LeadList.campaign_id == campaign.id).order_by(LeadList.id)
    after = decode(args.get("cursor"), int)
    if after is not None:
        query = query.where(LeadList.id > after[0])
    rows = list(db.session().scalars(query.limit(args["limit"] + 1)))
    more = len(rows) > args["limit"]
    rows = rows[: args["limit"]]
    return page(_listed(rows), [rows[-1].id] if more else None, args["limit"])


@bp.route("/campaigns/<int:campaign_id>/lists", methods=["POST"])
@allow("lists.manage")
@bp.arguments(schemas.LeadListCreateSchema)
@bp.response(201, schemas.LeadListSchema)
def create(body: dict[str, Any], campaign_id: int) -> Any:
    """A new, empty list in the campaign."""
    session = db.session()
    campaign = found(Campaign, campaign_id)
    name = body["name"].strip()
    if session.scalar(
        select(LeadList.id).where(LeadList.campaign_id == campaign.id, LeadList.name == name)
    ):
        fail(
            409,
            "conflict",
            f"name={name!r}: the campaign has a list of this name",
            field="name",
            value=name,
        )
    lead_list = LeadList(campaign_id=campaign.id, name=name, default_region=body["default_region"])
    session.add(lead_list)
    session.flush()
    audit.record(
        session,
        "create",
        "lead_list",
        lead_list.id,
        after={"campaign_id": campaign.id, "name": name},
    )
    session.commit()
    return _listed([lead_list])[0], 201


@bp.route("/lists/<int:list_id>")
@allow("leads.view")
@bp.response(200, schemas.LeadListSchema)
def show(list_id: int) -> Any:
    return _listed([found(LeadList, list_id, "lead list")])[0]


@bp.route("/lists/<int:list_id>", methods=["PATCH"])
@allow("lists.manage")
@bp.arguments(schemas.LeadListUpdateSchema)
@bp.response(200, schemas.LeadListSchema)
def update(body: dict[str, Any], list_id: int) -> Any:
    """Enables or disables a list: a disabled list's leads are not dialled."""
    session = db.session()
    lead_list = found(LeadList, list_id, "lead list")
    before = {"active": lead_list.active}
    lead_list.active = body["active"]
    audit.record(
        session,
        "update",
        "lead_list",
        lead_list.id,
        before=before,
        after={"active": lead_list.active},
    )
    session.commit()
    return _listed([lead_list])[0]


@bp.route("/lists/<int:list_id>/recycle", methods=["POST"])
@allow("lists.manage")
@bp.response(200, schemas.ListChangeSchema)
def recycle(list_id: int) -> Any:
    """The list's leads waiting for a retry, and those a recycling rule closed after calls
    nobody answered in person (within the campaign's maximum attempts), are due now. Leads on
    a do-not-call list, with an invalid number, waiting for a callback or on a call are left
    alone; the gate still judges every dial."""
    return _list_action(list_id, "recycle")


@bp.route("/lists/<int:list_id>/reset", methods=["POST"])
@allow("lists.manage")
@bp.response(200, schemas.ListChangeSchema)
def reset(list_id: int) -> Any:
    """Every lead of the list is new again, its attempts counted from zero, but for leads on
    a do-not-call list, with an invalid number, waiting for a callback or on a call; the gate
    still judges every dial."""
    return _list_action(list_id, "reset")


def _list_action(list_id: int, action: list_actions.ListAction) -> dict[str, Any]:
    session = db.session()
    lead_list = found(LeadList, list_id, "lead list")
    change = list_actions.apply(session, lead_list, action, utcnow())
    after = {"changed": change.changed, "untouched": change.untouched}
    audit.record(session, action, "lead_list", lead_list.id, after=after)
    session.commit()
    lead_counts.recount(lead_list.campaign_id)
    return {"action": action, **after, "list": _listed([lead_list])[0]}


def _mapping(text: str | None) -> dict[str, str]:
    if text is None:
        return {}
    try:
        mapping = json.loads(text)
    except ValueError:
        invalid("mapping", text, 'a JSON object such as {"phone": "Mobile"}')
    if not isinstance(mapping, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()
    ):
        invalid(
            "mapping", text, 'a JSON object of lead field -> column name, e.g. {"phone": "Mobile"}'
        )
    unknown = sorted(set(mapping) - set(FIELDS))
    if unknown:
        invalid("mapping", text, f"{', '.join(unknown)}: not lead fields ({', '.join(FIELDS)})")
    return mapping


@bp.route("/lists/<int:list_id>/imports", methods=["POST"])
@allow("lists.manage")
@bp.arguments(schemas.UploadSchema, location="multipart")
@bp.response(202, schemas.ImportRunSchema)
def upload(form: dict[str, Any], list_id: int) -> Any:
    """Imports a CSV into the list in the background, as the console's upload does; poll the
    import (Location) for its progress. Columns are matched by their headers, `mapping`
    names the others."""
    session = db.session()
    lead_list = found(LeadList, list_id, "lead list")
    campaign = session.get_one(Campaign, lead_list.campaign_id)
    mapping = _mapping(form.get("mapping"))
    uploads = imports.runner().uploads
    stored = uploads.save(
        form["file"],
        {
            "campaign_id": campaign.id,
            "filename": (form["file"].filename or "leads.csv")[:255],
            "user_id": current_user.id,
        },
    )
    try:
        sample = preview(uploads.path(stored.token))
    except ImportFileError as error:
        uploads.remove(stored.token)
        invalid("file", stored.filename, f"cannot be imported: {error}")
    chosen = {field: sample.suggested.get(field, "") for field in FIELDS} | mapping
    problem = _mapping_problem(sample.header, chosen)
    if problem:
        uploads.remove(stored.token)
        invalid("mapping", form.get("mapping"), f"{problem} Columns: {', '.join(sample.header)}")
    region = (form.get("region") or lead_list.default_region).upper()
    # The import writes on connections of its own: this request's transaction ends first.
    session.commit()
    try:
        import_id = imports.runner().start(stored, campaign.name, lead_list.name, region, chosen)
    except ImportFileError as error:
        invalid("file", stored.filename, f"cannot be imported: {error}")
    run = session.get_one(ImportRun, import_id)
    audit.record(
        session,
        "import",
        "lead_list",
        lead_list.id,
        after={
            "import_id": import_id,
            "file": stored.filename,
            "list": lead_list.name,
            "region": region,
            "mapping": {k: c for k, c in chosen.items() if c},
            "via": "api",
        },
    )
    session.commit()
    return run, 202, {"Location": f"/api/v1/imports/{import_id}"}


@bp.route("/imports/<int:import_id>")
@allow("leads.view")
@bp.response(200, schemas.ImportRunSchema)
def import_status(import_id: int) -> Any:
    """An import's progress: status running until completed or failed."""
    return found(ImportRun, import_id, "import")


@bp.route("/imports/<int:import_id>/errors")
@allow("leads.view")
@bp.arguments(PageArgs, location="query")
@bp.response(200, schemas.RowErrorPageSchema)
def import_errors(args: dict[str, Any], import_id: int) -> Any:
    """The rows an import refused, with the field, the value and why."""
    run = found(ImportRun, import_id, "import")
    query = (
        select(ImportRowError).where(ImportRowError.import_id == run.id).order_by(ImportRowError.id)
    )
    after = decode(args.get("cursor"), int)
    if after is not None:
        query = query.where(ImportRowError.id > after[0])
    rows = list(db.session().scalars(query.limit(args["limit"] + 1)))
    more = len(rows) > args["limit"]
    rows = rows[: args["limit"]]
    return page(rows, [rows[-1].id] if more else None, args["limit"])
