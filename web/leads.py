"""Lead search (phone, name, account) and a lead's history: attempts, dispositions,
callbacks, and whether a do-not-call list blocks its number now."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, render_template, request
from sqlalchemy import ColumnElement, Select, and_, literal, or_, select

from campaigns import dnc
from campaigns.leads import PhoneAnalyzer
from campaigns.models import (
    CallAttempt,
    Callback,
    Campaign,
    Disposition,
    Lead,
    LeadList,
    User,
    folded,
    utcnow,
)
from web import db
from web.permissions import allow

bp = Blueprint("leads", __name__, url_prefix="/leads")
RESULTS = 50
# Above every character a name holds: a prefix followed by it bounds the prefix's range.
LAST_CHARACTER = "\U0010ffff"
# Seven digits or more, with what people type around them: a phone number, not a name.
PHONE_LIKE = re.compile(r"^[+(]?[\d\s().\-/]{7,}$")


def search_query(text: str, campaign_ids: list[int], region: str = "US") -> Select[Any] | str:
    """The search for `text`, or why it cannot be one. A phone number is matched exactly
    (E.164, through each campaign's unique index); a word matches an account reference
    exactly or the start of a first or last name; two words a first and a last name."""
    query = select(Lead).where(Lead.campaign_id.in_(campaign_ids))
    text = text.strip()
    if PHONE_LIKE.match(text):
        facts = PhoneAnalyzer(region).analyse(text)
        if isinstance(facts, str):
            return f"{text!r} is not a phone number: {facts}"
        return query.where(Lead.phone_e164 == facts.e164)
    words = text.split()
    if len(words) >= 2:
        first, last = words[0], " ".join(words[1:])
        # Found by the last name (fewer people share one than a first name), then sifted.
        return query.where(
            and_(starts(Lead.last_name, last), Lead.first_name.ilike(f"{_like(first)}%"))
        )
    return query.where(
        or_(
            Lead.account_ref == text,
            starts(Lead.last_name, text),
            starts(Lead.first_name, text),
        )
    )


def starts(column: Any, prefix: str) -> ColumnElement[bool]:
    """`column` starts with `prefix`, whatever the case. The range on the folded name finds
    the candidates through its index (a million leads are not read for one name); ILIKE
    keeps the answer what it was."""
    return and_(
        folded(column) >= folded(literal(prefix)),
        folded(column) < folded(literal(prefix + LAST_CHARACTER)),
        column.ilike(f"{_like(prefix)}%"),
    )


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@bp.route("/")
@allow("leads.view")
def search() -> Any:
    session = db.session()
    campaigns = session.scalars(select(Campaign).order_by(Campaign.name)).all()
    text = request.args.get("q", "")[:120]
    chosen = request.args.get("campaign_id", type=int)
    ids = [c.id for c in campaigns if chosen in (None, c.id)]
    leads: list[Lead] = []
    problem = None
    if text.strip() and ids:
        query = search_query(text, ids)
        if isinstance(query, str):
            problem = query
        else:
            leads = list(session.scalars(query.order_by(Lead.id).limit(RESULTS + 1)))
    return render_template(
        "leads/search.html",
        campaigns=campaigns,
        names={c.id: c.name for c in campaigns},
        text=text,
        chosen=chosen,
        leads=leads[:RESULTS],
        more=len(leads) > RESULTS,
        problem=problem,
        searched=bool(text.strip()),
    )


@bp.route("/<int:lead_id>")
@allow("leads.view")
def history(lead_id: int) -> Any:
    session = db.session()
    lead = session.get(Lead, lead_id) or abort(404)
    campaign = session.get_one(Campaign, lead.campaign_id)
    lead_list = session.get(LeadList, lead.list_id)
    attempts = session.scalars(
        select(CallAttempt)
        .where(CallAttempt.lead_id == lead.id)
        .order_by(CallAttempt.started_at.desc())
    ).all()
    dispositions = session.scalars(
        select(Disposition).where(Disposition.lead_id == lead.id).order_by(Disposition.created_at)
    ).all()
    callbacks = session.scalars(
        select(Callback).where(Callback.lead_id == lead.id).order_by(Callback.due_at)
    ).all()
    agent_ids = (
        {a.agent_id for a in attempts}
        | {d.agent_id for d in dispositions}
        | {c.agent_id for c in callbacks}
    )
    agents = {
        agent_id: name
        for agent_id, name in session.execute(
            select(User.id, User.username).where(User.id.in_(agent_ids - {None}))
        )
    }
    blocked = dnc.blocking_entry(session, lead.phone_e164, campaign.id, utcnow())
    return render_template(
        "leads/history.html",
        lead=lead,
        campaign=campaign,
        lead_list=lead_list,
        attempts=attempts,
        dispositions=dispositions,
        callbacks=callbacks,
        agents=agents,
        blocked=blocked,
    )
