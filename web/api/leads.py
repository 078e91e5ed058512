"""Leads: search (a number, an account reference, a name) or list a campaign's, and one lead
with its history: every call, disposition and callback, and the do-not-call entry that blocks
it now."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from campaigns import dnc
from campaigns.models import Callback, Campaign, Disposition, Lead, utcnow
from campaigns.reporting import lead_calls
from web import db
from web.api import schemas
from web.api.base import blueprint, campaign_or_invalid, found
from web.api.errors import fail, invalid
from web.api.paging import decode, page
from web.api.reports import attempt_json
from web.leads import search_query
from web.permissions import allow

bp = blueprint("leads", "/leads", "Leads: search, and each lead's history.")


@bp.route("")
@allow("leads.view")
@bp.arguments(schemas.LeadArgs, location="query")
@bp.response(200, schemas.LeadPageSchema)
def index(args: dict[str, Any]) -> Any:
    """Leads by id: those `q` finds, or a campaign's (`campaign_id` or `q` is needed)."""
    campaign = campaign_or_invalid(args.get("campaign_id"))
    ids = [campaign.id] if campaign else list(db.session().scalars(select(Campaign.id)))
    if "q" in args:
        query = search_query(args["q"], ids)
        if isinstance(query, str):
            invalid("q", args["q"], query)
    elif campaign is not None:
        query = select(Lead).where(Lead.campaign_id == campaign.id)
    else:
        fail(
            422,
            "invalid",
            "q: search with q, or list one campaign's leads with campaign_id",
            field="q",
        )
    if "status" in args:
        query = query.where(Lead.status == args["status"])
    after = decode(args.get("cursor"), int)
    if after is not None:
        query = query.where(Lead.id > after[0])
    rows = list(db.session().scalars(query.order_by(Lead.id).limit(args["limit"] + 1)))
    more = len(rows) > args["limit"]
    rows = rows[: args["limit"]]
    return page(rows, [rows[-1].id] if more else None, args["limit"])


@bp.route("/<int:lead_id>")
@allow("leads.view")
@bp.response(200, schemas.LeadDetailSchema)
def show(lead_id: int) -> Any:
    """A lead with every call (newest first), disposition and callback."""
    session = db.session()
    lead = found(Lead, lead_id)
    calls = [attempt_json(row) for row in lead_calls(session, lead.id)]
    blocked = dnc.blocking_entry(session, lead.phone_e164, lead.campaign_id, utcnow())
    return {
        **{name: getattr(lead, name) for name in schemas.LeadSchema().fields},
        "attempts_made": calls,
        "dispositions": [
            {**_disposition(d), "campaign_id": lead.campaign_id}
            for d in session.scalars(
                select(Disposition)
                .where(Disposition.lead_id == lead.id)
                .order_by(Disposition.created_at)
            )
        ],
        "callbacks": session.scalars(
            select(Callback).where(Callback.lead_id == lead.id).order_by(Callback.due_at)
        ).all(),
        "blocked_by": None
        if blocked is None
        else {
            "id": blocked.id,
            "scope": blocked.scope,
            "source": blocked.source,
            "created_at": blocked.created_at.isoformat(),
            "expires_at": blocked.expires_at.isoformat() if blocked.expires_at else None,
        },
    }


def _disposition(row: Disposition) -> dict[str, Any]:
    return {
        name: getattr(row, name)
        for name in schemas.DispositionSchema().fields
        if name != "campaign_id"
    }
