"""The home page: each campaign at a glance from the domain tables (the live view over
server-sent events joins it with the node's state tables)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user
from sqlalchemy import func, select

from campaigns.models import Campaign, ImportRun, Lead
from web import db
from web.permissions import allow, may

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")
# Lead statuses the hopper may still dial.
DIALABLE = ("new", "recycled", "callback")


@allow("account")
def home() -> Any:
    """`/`: staff to the dashboard, everyone else to their account page."""
    if may(current_user.role, "dashboard.view"):
        return redirect(url_for("dashboard.overview"))
    return redirect(url_for("auth.account"))


@bp.route("/")
@allow("dashboard.view")
def overview() -> Any:
    session = db.session()
    campaigns = session.scalars(select(Campaign).order_by(Campaign.status, Campaign.name)).all()
    counts: dict[int, dict[str, int]] = {}
    for campaign_id, status, count in session.execute(
        select(Lead.campaign_id, Lead.status, func.count()).group_by(Lead.campaign_id, Lead.status)
    ):
        counts.setdefault(campaign_id, {})[status] = count
    imports = session.scalars(select(ImportRun).order_by(ImportRun.id.desc()).limit(5)).all()
    names = {c.id: c.name for c in campaigns}
    by_status: dict[str, int] = {}
    for campaign in campaigns:
        by_status[campaign.status] = by_status.get(campaign.status, 0) + 1
    return render_template(
        "dashboard/overview.html",
        campaigns=campaigns,
        counts=counts,
        dialable=DIALABLE,
        imports=imports,
        names=names,
        by_status=by_status,
    )
