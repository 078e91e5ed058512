"""Attempts (call detail), dispositions and the reports, as the report pages show them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import url_for
from sqlalchemy import select

from campaigns import reporting
from campaigns.models import Campaign, Disposition, Lead, User, utcnow
from web import db
from web.api import schemas
from web.api.base import blueprint, campaign_or_invalid, found, period, period_json
from web.api.errors import fail, invalid
from web.api.paging import decode, page
from web.display import user_may
from web.permissions import allow
from web.reports import call_filter, fresh_rollups, reg_f_counters, stream_recording

attempts_bp = blueprint("attempts", "/attempts", "Call detail: every attempt, with filters.")
dispositions_bp = blueprint("dispositions", "/dispositions", "Dispositions agents recorded.")
reports_bp = blueprint("reports", "/reports", "Reports: campaign summary, agents, compliance.")


def attempt_json(row: reporting.CallRow) -> dict[str, Any]:
    data = {name: getattr(row, name) for name in reporting.CALL_COLUMNS}
    data["talk_s"] = row.talk_s
    data["recording"] = (
        url_for("api_attempts.recording", attempt_id=row.id)
        if row.has_recording and user_may("recordings.listen")
        else None
    )
    return data


def _filter(args: dict[str, Any]) -> reporting.CallFilter:
    campaign = campaign_or_invalid(args.get("campaign_id"))
    if "agent_id" in args and db.session().get(User, args["agent_id"]) is None:
        invalid("agent_id", args["agent_id"], "no user has this id (GET /api/v1/agents)")
    try:
        return call_filter(
            period(args),
            campaign_id=campaign.id if campaign else None,
            outcome=args.get("outcome"),
            agent_id=args.get("agent_id"),
            phone=args.get("phone"),
            disposition=args.get("disposition"),
        )
    except reporting.ReportError as error:
        invalid(error.field, args.get(error.field), str(error))


@attempts_bp.route("")
@allow("reports.view")
@attempts_bp.arguments(schemas.AttemptArgs, location="query")
@attempts_bp.response(200, schemas.AttemptPageSchema)
def index(args: dict[str, Any]) -> Any:
    """Attempts started on the days `from` to `to` in your time zone, newest first."""
    wanted = _filter(args)
    after = decode(args.get("cursor"), dt.datetime, int)
    rows, following = reporting.call_page(
        db.session(),
        wanted,
        args["limit"],
        tuple(after) if after else None,  # type: ignore[arg-type]
    )
    return page(
        [attempt_json(r) for r in rows], list(following) if following else None, args["limit"]
    )


@attempts_bp.route("/<int:attempt_id>")
@allow("reports.view")
@attempts_bp.response(200, schemas.AttemptSchema)
def show(attempt_id: int) -> Any:
    session = db.session()
    ids = tuple(session.scalars(select(Campaign.id)))
    row = reporting.attempt_detail(session, attempt_id, ids)
    if row is None:
        fail(
            404,
            "not_found",
            f"there is no attempt with id {attempt_id}",
            field="id",
            value=attempt_id,
        )
    return attempt_json(row)


@attempts_bp.route("/<int:attempt_id>/recording")
@allow("recordings.listen")
@attempts_bp.response(200, description="The call's recording (audio/wav).")
def recording(attempt_id: int) -> Any:
    """The attempt's recording as WAV (HTTP ranges honoured)."""
    return stream_recording(attempt_id)


@dispositions_bp.route("")
@allow("reports.view")
@dispositions_bp.arguments(schemas.DispositionArgs, location="query")
@dispositions_bp.response(200, schemas.DispositionPageSchema)
def dispositions(args: dict[str, Any]) -> Any:
    """Dispositions recorded on the days `from` to `to`, newest first."""
    p = period(args)
    query = (
        select(Disposition, Lead.campaign_id)
        .join(Lead, Lead.id == Disposition.lead_id)
        .where(Disposition.created_at >= p.start, Disposition.created_at < p.end)
        .order_by(Disposition.created_at.desc(), Disposition.id.desc())
    )
    campaign = campaign_or_invalid(args.get("campaign_id"))
    if campaign is not None:
        query = query.where(Lead.campaign_id == campaign.id)
    if "agent_id" in args:
        query = query.where(Disposition.agent_id == args["agent_id"])
    if "code" in args:
        query = query.where(Disposition.code == args["code"])
    after = decode(args.get("cursor"), dt.datetime, int)
    if after is not None:
        at, last = after
        query = query.where(
            Disposition.created_at <= at, (Disposition.created_at < at) | (Disposition.id < last)
        )
    rows = db.session().execute(query.limit(args["limit"] + 1)).all()
    more = len(rows) > args["limit"]
    rows = rows[: args["limit"]]
    items = [
        {
            **{n: getattr(d, n) for n in schemas.DispositionSchema().fields if n != "campaign_id"},
            "campaign_id": campaign_id,
        }
        for d, campaign_id in rows
    ]
    key = [rows[-1][0].created_at, rows[-1][0].id] if more else None
    return page(items, key, args["limit"])


@reports_bp.route("/campaigns/<int:campaign_id>")
@allow("reports.view")
@reports_bp.arguments(schemas.SummaryArgs, location="query")
@reports_bp.response(200, schemas.SummarySchema)
def campaign_summary(args: dict[str, Any], campaign_id: int) -> Any:
    """Attempts by outcome, live answers, abandon rate, contacts per hour, dispositions,
    promises to pay and leads by status, for the days `from` to `to`."""
    campaign = found(Campaign, campaign_id)
    p = period(args)
    fresh_rollups()
    summary = reporting.campaign_summary(db.session(), campaign, p, utcnow())
    return {"period": period_json(p), **summary.as_json()}


@reports_bp.route("/agents")
@allow("reports.view")
@reports_bp.arguments(schemas.ReportArgs, location="query")
@reports_bp.response(200, schemas.AgentReportSchema)
def agents(args: dict[str, Any]) -> Any:
    """Each agent's ready, talk, wrap-up and pause time (by code), calls and contacts per
    logged-in hour."""
    campaign = campaign_or_invalid(args.get("campaign_id"))
    p = period(args)
    fresh_rollups()
    figures = reporting.agent_performance(
        db.session(),
        p.start,
        min(p.end, utcnow()),
        campaign_ids=[campaign.id] if campaign else None,
    )
    return {"period": period_json(p), "agents": [f.as_json() for f in figures]}


@reports_bp.route("/compliance")
@allow("reports.view")
@reports_bp.arguments(schemas.ReportArgs, location="query")
@reports_bp.response(200, schemas.ComplianceSchema)
def compliance(args: dict[str, Any]) -> Any:
    """30-day abandonment per campaign against its target, dials the gate refused by reason,
    Regulation F's counters for collections campaigns, opt-outs taken during calls."""
    campaign = campaign_or_invalid(args.get("campaign_id"))
    p = period(args)
    session = db.session()
    campaigns = (
        [campaign] if campaign else list(session.scalars(select(Campaign).order_by(Campaign.name)))
    )
    report = reporting.compliance(session, campaigns, p, utcnow(), reg_f_counters(campaigns))
    return {"period": period_json(p), **report.as_json()}
