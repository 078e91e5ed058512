"""A campaign's caller-ID pool: its numbers with their daily cap, calls today, and answer rate
against the campaign's (a burnt number answers far less); add and remove numbers."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from campaigns import callerids
from campaigns.models import CallerId, Campaign, utcnow
from web import audit, db
from web.permissions import allow

bp = Blueprint("callerids", __name__, url_prefix="/campaigns/<int:campaign_id>/caller-ids")
AUDITED = ("campaign_id", "phone_e164", "daily_cap")


class NumberForm(FlaskForm):
    number = StringField("Phone number", validators=[DataRequired(), Length(max=40)])
    daily_cap = StringField(
        "Calls a day at most",
        validators=[Length(max=10)],
        description="Empty: no cap. Over it, calls show another number.",
    )


def _campaign(campaign_id: int) -> Campaign:
    return db.session().get(Campaign, campaign_id) or abort(404)


@bp.route("/")
@allow("campaigns.view")
def index(campaign_id: int) -> Any:
    campaign = _campaign(campaign_id)
    days = request.args.get("days", callerids.REPORT_DAYS, type=int)
    try:
        found = callerids.report(db.session(), campaign, utcnow(), days)
    except callerids.CallerIdError as error:
        flash(f"{error}.", "error")
        found = callerids.report(db.session(), campaign, utcnow())
    return render_template(
        "callerids/index.html",
        campaign=campaign,
        report=found,
        form=NumberForm(),
        entries={e.phone_e164: e for e in callerids.pool(db.session(), campaign.id)},
        area_code=callerids.area_code,
        state_of=callerids.state_of,
        burnt_below=callerids.BURNT_BELOW,
        min_calls=callerids.MIN_CALLS_TO_JUDGE,
    )


@bp.route("/add", methods=["POST"])
@allow("callerids.manage")
def add(campaign_id: int) -> Any:
    campaign = _campaign(campaign_id)
    form = NumberForm()
    back = redirect(url_for("callerids.index", campaign_id=campaign.id))
    if not form.validate_on_submit():
        for name, messages in form.errors.items():
            flash(f"{getattr(form, name).label.text}: {' '.join(map(str, messages))}", "error")
        return back
    session = db.session()
    try:
        e164 = callerids.parse_number(form.number.data)
        existing = session.scalar(
            select(CallerId).where(CallerId.campaign_id == campaign.id, CallerId.phone_e164 == e164)
        )
        before = audit.snapshot(existing, AUDITED) if existing is not None else None
        entry = callerids.add(session, campaign, e164, form.daily_cap.data)
    except callerids.CallerIdError as error:
        session.rollback()
        flash(f"Not added: {error}.", "error")
        return back
    audit.record(
        session,
        "update" if before else "add",
        "caller_id",
        entry.id,
        before=before,
        after=audit.snapshot(entry, AUDITED),
    )
    session.commit()
    cap = f"at most {entry.daily_cap} calls a day" if entry.daily_cap else "no daily cap"
    flash(f"{entry.phone_e164} is in the pool ({cap}).", "success")
    return back


@bp.route("/<int:number_id>/remove", methods=["POST"])
@allow("callerids.manage")
def remove(campaign_id: int, number_id: int) -> Any:
    session = db.session()
    entry = session.get(CallerId, number_id)
    if entry is None or entry.campaign_id != campaign_id:
        abort(404)
    before = audit.snapshot(entry, AUDITED)
    session.delete(entry)
    audit.record(session, "remove", "caller_id", number_id, before=before)
    session.commit()
    flash(
        f"{before['phone_e164']} removed from the pool; its calls stay in the figures.", "success"
    )
    return redirect(url_for("callerids.index", campaign_id=campaign_id))
