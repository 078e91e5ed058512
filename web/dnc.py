"""Do-not-call lists: search, add (with an expiry), remove, import a file, export as CSV."""

from __future__ import annotations

import datetime as dt
import tempfile
import zoneinfo
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import Connection, func, or_, select
from wtforms import DateField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from campaigns import dnc
from campaigns.models import Campaign, DncEntry, utcnow
from web import audit, db, export_process
from web.display import viewer_zone
from web.permissions import allow

bp = Blueprint("dnc", __name__, url_prefix="/dnc")
PAGE = 50
GLOBAL = "global"
AUDITED = ("phone_e164", "scope", "campaign_id", "source", "reason", "expires_at")


class EntryForm(FlaskForm):
    number = StringField("Phone number", validators=[DataRequired(), Length(max=40)])
    scope = SelectField("List", default=GLOBAL)
    expires = DateField(
        "Expires on",
        validators=[Optional()],
        description="Empty: never. From this day on the number may be called again.",
    )
    reason = StringField("Reason", validators=[Length(max=500)])


class ImportForm(FlaskForm):
    file = FileField("File", validators=[FileRequired("Choose a file.")])
    scope = SelectField("List", default=GLOBAL)
    expires = DateField("Expires on", validators=[Optional()])


def _scopes() -> dict[str, str]:
    campaigns = db.session().execute(select(Campaign.id, Campaign.name).order_by(Campaign.name))
    return {GLOBAL: "Global (every campaign)"} | {
        str(cid): f"Campaign: {name}" for cid, name in campaigns
    }


def _campaign_id(scope: str) -> int | None:
    return None if scope == GLOBAL else int(scope)


def expiry(day: dt.date | None, zone: zoneinfo.ZoneInfo) -> dt.datetime | None:
    """Start of the day in the user's zone: the number may be called again from then on."""
    if day is None:
        return None
    return dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)


@bp.route("/")
@allow("dnc.view")
def index() -> Any:
    session = db.session()
    text = request.args.get("q", "").strip()[:40]
    page = max(1, request.args.get("page", 1, type=int))
    query = select(DncEntry)
    problem = None
    if text:
        try:
            query = query.where(DncEntry.phone_e164 == dnc.normalise(text))
        except dnc.DncError as error:
            problem = str(error)
    entries = session.scalars(
        query.order_by(DncEntry.created_at.desc(), DncEntry.id.desc())
        .offset((page - 1) * PAGE)
        .limit(PAGE + 1)
    ).all()
    total = session.scalar(select(func.count()).select_from(DncEntry))
    names = {cid: name for cid, name in session.execute(select(Campaign.id, Campaign.name))}
    add_form = EntryForm()
    add_form.scope.choices = _scopes()
    import_form = ImportForm()
    import_form.scope.choices = add_form.scope.choices
    return render_template(
        "dnc/index.html",
        entries=entries[:PAGE] if not problem else [],
        more=len(entries) > PAGE,
        page=page,
        total=total or 0,
        text=text,
        problem=problem,
        names=names,
        now=utcnow(),
        add_form=add_form,
        import_form=import_form,
    )


@bp.route("/add", methods=["POST"])
@allow("dnc.add")
def add() -> Any:
    form = EntryForm()
    form.scope.choices = _scopes()
    if not form.validate_on_submit():
        for name, messages in form.errors.items():
            flash(f"{getattr(form, name).label.text}: {' '.join(map(str, messages))}", "error")
        return redirect(url_for("dnc.index"))
    try:
        e164 = dnc.normalise(form.number.data)
    except dnc.DncError as error:
        flash(f"Not added: {error}.", "error")
        return redirect(url_for("dnc.index"))
    session = db.session()
    campaign_id = _campaign_id(form.scope.data)
    entry = dnc.add(
        session,
        e164,
        campaign_id=campaign_id,
        expires_at=expiry(form.expires.data, viewer_zone()),
        source="console",
        reason=(form.reason.data or "").strip(),
    )
    session.flush()
    audit.record(session, "add", "dnc_entry", entry.id, after=audit.snapshot(entry, AUDITED))
    session.commit()
    flash(f"{e164} added to the {'global' if campaign_id is None else 'campaign'} list.", "success")
    return redirect(url_for("dnc.index", q=e164))


@bp.route("/<int:entry_id>/remove", methods=["POST"])
@allow("dnc.manage")
def remove(entry_id: int) -> Any:
    session = db.session()
    entry = session.get(DncEntry, entry_id) or abort(404)
    before = audit.snapshot(entry, AUDITED)
    session.delete(entry)
    audit.record(session, "remove", "dnc_entry", entry_id, before=before)
    session.commit()
    flash(f"{before['phone_e164']} removed from the list.", "success")
    return redirect(url_for("dnc.index"))


@bp.route("/import", methods=["POST"])
@allow("dnc.manage")
def import_numbers() -> Any:
    form = ImportForm()
    form.scope.choices = _scopes()
    if not form.validate_on_submit():
        flash("Choose a file of numbers to import.", "error")
        return redirect(url_for("dnc.index"))
    campaign_id = _campaign_id(form.scope.data)
    expires_at = expiry(form.expires.data, viewer_zone())
    session = db.session()
    # import_file writes on a connection of its own: this request's transaction (on SQLite,
    # the write lock) ends first.
    session.commit()
    with tempfile.TemporaryDirectory(prefix="dialer-dnc-") as folder:
        path = Path(folder) / "numbers.csv"
        form.file.data.save(path)
        summary = dnc.import_file(db.engine(), path, campaign_id=campaign_id, expires_at=expires_at)
    audit.record(
        session,
        "import",
        "dnc_list",
        campaign_id or GLOBAL,
        after={
            "file": form.file.data.filename,
            "lines": summary.lines,
            "added": summary.added,
            "renewed": summary.already,
            "invalid": summary.invalid,
            "expires_at": expires_at,
        },
    )
    session.commit()
    flash(
        f"{summary.lines} lines: {summary.added} added, {summary.already} renewed, "
        f"{summary.invalid} invalid.",
        "success" if not summary.invalid else "warning",
    )
    for problem in summary.errors[:10]:
        flash(f"Line {problem.row}: {problem.value!r}: {problem.reason}", "error")
    return redirect(url_for("dnc.index"))


@bp.route("/export.csv")
@allow("dnc.manage")
def export() -> Any:
    """Every entry, cells neutralised for spreadsheets; times in UTC (ISO 8601)."""
    in_force = bool(request.args.get("in_force"))
    return export_process.send(
        dnc_rows, (request.args.get("scope", ""), in_force, utcnow()), DNC_HEADER, "do-not-call"
    )


DNC_HEADER = ("phone", "scope", "campaign", "source", "reason", "added", "expires")


def dnc_rows(
    connection: Connection, scope: str, in_force: bool, now: dt.datetime
) -> Iterator[Sequence[Any]]:
    """The do-not-call export's rows in the order they were added: of one `scope` (global, or
    a campaign's id; else all), only those in force at `now` when `in_force`."""
    query = select(
        DncEntry.phone_e164,
        DncEntry.scope,
        Campaign.name,
        DncEntry.source,
        DncEntry.reason,
        DncEntry.created_at,
        DncEntry.expires_at,
    ).outerjoin(Campaign, Campaign.id == DncEntry.campaign_id)
    if scope == GLOBAL:
        query = query.where(DncEntry.scope == GLOBAL)
    elif scope.isdigit():
        query = query.where(DncEntry.campaign_id == int(scope))
    if in_force:
        query = query.where(or_(DncEntry.expires_at.is_(None), DncEntry.expires_at > now))
    result = connection.execute(query.order_by(DncEntry.id).execution_options(yield_per=5000))
    return (tuple(row) for row in result)
