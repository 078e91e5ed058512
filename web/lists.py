"""A campaign's lead lists: CSV upload, the column-mapping step on a preview of the first
rows, the import's progress and its per-row error report, enabling or disabling a list, and
recycling or resetting it."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length, Regexp

from campaigns import lists as list_actions
from campaigns.imports import ImportFileError, preview, write_error_report
from campaigns.leads import FIELDS, map_columns
from campaigns.models import Campaign, ImportRowError, ImportRun, LeadList, utcnow
from web import audit, db, imports, lead_counts
from web.permissions import allow

bp = Blueprint("lists", __name__)
ERRORS_SHOWN = 100
NEW_LIST = "__new__"
DELIMITER_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "bars"}
FIELD_LABELS = {
    "phone": "Phone (required)",
    "first_name": "First name",
    "last_name": "Last name",
    "email": "E-mail",
    "account_ref": "Account reference",
    "balance": "Balance",
    "due_date": "Due date",
    "appointment_at": "Appointment",
    "priority": "Priority",
    "consent": "Consent to automated calls",
}


class UploadForm(FlaskForm):
    file = FileField("Lead file (CSV)", validators=[FileRequired("Choose a CSV file.")])


class MappingForm(FlaskForm):
    target = SelectField("Import into")
    new_list = StringField("New list's name", validators=[Length(max=120)])
    region = StringField(
        "Country of numbers without +code",
        default="US",
        validators=[DataRequired(), Regexp(r"^[A-Za-z]{2}$", message="two letters, e.g. US, GB")],
    )


def mapping_form(header: list[str], **data: Any) -> MappingForm:
    class Form(MappingForm):
        pass

    choices = {"": "— not in the file —"} | {h.strip(): h.strip() for h in header if h.strip()}
    for field in FIELDS:
        setattr(Form, f"map_{field}", SelectField(FIELD_LABELS[field], choices=choices))
    return Form(**data)


def _campaign(session: Session, campaign_id: int) -> Campaign:
    return session.get(Campaign, campaign_id) or abort(404)


def _upload_or_404(token: str, campaign_id: int) -> imports.Upload:
    upload = imports.runner().uploads.find(token)
    if upload is None or upload.campaign_id != campaign_id:
        abort(404)
    return upload


@bp.route("/campaigns/<int:campaign_id>/lists")
@allow("leads.view")
def index(campaign_id: int) -> Any:
    session = db.session()
    campaign = _campaign(session, campaign_id)
    counts = lead_counts.by_list(campaign.id)
    lists = session.scalars(
        select(LeadList).where(LeadList.campaign_id == campaign.id).order_by(LeadList.name)
    ).all()
    runs = session.scalars(
        select(ImportRun)
        .where(ImportRun.campaign_id == campaign.id)
        .order_by(ImportRun.id.desc())
        .limit(20)
    ).all()
    list_names = {item.id: item.name for item in lists}
    return render_template(
        "lists/index.html",
        campaign=campaign,
        lists=lists,
        counts=counts,
        runs=runs,
        list_names=list_names,
        form=UploadForm(),
    )


@bp.route("/campaigns/<int:campaign_id>/lists/upload", methods=["POST"])
@allow("lists.manage")
def upload(campaign_id: int) -> Any:
    # Read only, in a session that does not take SQLite's write lock as a POST's does: the
    # file is stored and its lines counted meanwhile (seconds for 100 MB), and the nodes write.
    with db.sessions()() as reading:
        campaign = _campaign(reading, campaign_id)
    form = UploadForm()
    if not form.validate_on_submit():
        for message in form.file.errors:
            flash(str(message), "error")
        return redirect(url_for("lists.index", campaign_id=campaign.id))
    stored = imports.runner().uploads.save(
        form.file.data,
        {
            "campaign_id": campaign.id,
            "filename": (form.file.data.filename or "leads.csv")[:255],
            "user_id": current_user.id,
        },
    )
    return redirect(url_for("lists.mapping", campaign_id=campaign.id, token=stored.token))


@bp.route("/campaigns/<int:campaign_id>/lists/upload/<token>", methods=["GET", "POST"])
@allow("lists.manage")
def mapping(campaign_id: int, token: str) -> Any:
    session = db.session()
    campaign = _campaign(session, campaign_id)
    upload = _upload_or_404(token, campaign.id)
    uploads = imports.runner().uploads
    try:
        sample = preview(uploads.path(token))
    except ImportFileError as error:
        uploads.remove(token)
        flash(f"{upload.filename} cannot be imported: {error}", "error")
        return redirect(url_for("lists.index", campaign_id=campaign.id))
    lists = session.scalars(
        select(LeadList).where(LeadList.campaign_id == campaign.id).order_by(LeadList.name)
    ).all()
    stem = upload.filename.rsplit(".", 1)[0][:120] or "leads"
    defaults = {f"map_{field}": sample.suggested.get(field, "") for field in FIELDS}
    form = mapping_form(sample.header, **defaults, new_list=stem)
    form.target.choices = {NEW_LIST: "A new list"} | {str(item.id): item.name for item in lists}
    if form.validate_on_submit():
        chosen = {field: getattr(form, f"map_{field}").data for field in FIELDS}
        mapping_problem = _mapping_problem(sample.header, chosen)
        list_name = _list_name(form, lists)
        if mapping_problem:
            flash(mapping_problem, "error")
        elif list_name is None:
            form.new_list.errors = ["Name the new list (or choose an existing one)."]
        else:
            # The import writes on connections of its own: this request's transaction (on
            # SQLite, the write lock) ends first, and a new one then sees the import's run.
            session.commit()
            try:
                import_id = imports.runner().start(
                    upload, campaign.name, list_name, form.region.data.upper(), chosen
                )
            except ImportFileError as error:
                flash(f"Not imported: {error}", "error")
                return redirect(url_for("lists.index", campaign_id=campaign.id))
            run = session.get_one(ImportRun, import_id)
            audit.record(
                session,
                "import",
                "lead_list",
                run.list_id,
                after={
                    "import_id": import_id,
                    "file": upload.filename,
                    "list": list_name,
                    "region": form.region.data.upper(),
                    "mapping": {k: v for k, v in chosen.items() if v},
                },
            )
            session.commit()
            return redirect(url_for("lists.import_run", import_id=import_id))
    return render_template(
        "lists/mapping.html",
        campaign=campaign,
        upload=upload,
        sample=sample,
        form=form,
        fields=FIELDS,
        field_labels=FIELD_LABELS,
        delimiter_name=DELIMITER_NAMES.get(sample.delimiter, repr(sample.delimiter)),
    )


def _mapping_problem(header: list[str], chosen: dict[str, str]) -> str | None:
    columns = [c for c in chosen.values() if c]
    for column in set(columns):
        if columns.count(column) > 1:
            fields = [FIELD_LABELS[f].lower() for f, c in chosen.items() if c == column]
            return f"Column {column!r} is chosen for {' and '.join(fields)}: choose it once."
    if not chosen.get("phone"):
        return "Choose the column that holds the phone number."
    try:
        map_columns(header, chosen)
    except ImportFileError as error:
        return str(error)
    return None


def _list_name(form: MappingForm, lists: Any) -> str | None:
    if form.target.data == NEW_LIST:
        name = (form.new_list.data or "").strip()
        return name or None
    for item in lists:
        if str(item.id) == form.target.data:
            return str(item.name)
    return None


@bp.route("/lists/<int:list_id>/active", methods=["POST"])
@allow("lists.manage")
def toggle(list_id: int) -> Any:
    session = db.session()
    lead_list = session.get(LeadList, list_id) or abort(404)
    before = {"active": lead_list.active}
    lead_list.active = not lead_list.active
    audit.record(
        session,
        "update",
        "lead_list",
        lead_list.id,
        before=before,
        after={"active": lead_list.active},
    )
    session.commit()
    state = (
        "enabled: its leads are dialled"
        if lead_list.active
        else "disabled: no lead of it is dialled"
    )
    flash(f"List {lead_list.name} {state}.", "success")
    return redirect(url_for("lists.index", campaign_id=lead_list.campaign_id))


LIST_ACTION_DONE = {
    "recycle": "recycled: {changed} leads due now",
    "reset": "reset: {changed} leads new again",
}


@bp.route("/lists/<int:list_id>/recycle", methods=["POST"])
@allow("lists.manage")
def recycle(list_id: int) -> Any:
    return _list_action(list_id, "recycle")


@bp.route("/lists/<int:list_id>/reset", methods=["POST"])
@allow("lists.manage")
def reset(list_id: int) -> Any:
    return _list_action(list_id, "reset")


def _list_action(list_id: int, action: list_actions.ListAction) -> Any:
    session = db.session()
    lead_list = session.get(LeadList, list_id) or abort(404)
    change = list_actions.apply(session, lead_list, action, utcnow())
    audit.record(
        session,
        action,
        "lead_list",
        lead_list.id,
        after={"changed": change.changed, "untouched": change.untouched},
    )
    session.commit()
    lead_counts.recount(lead_list.campaign_id)
    done = LIST_ACTION_DONE[action].format(changed=f"{change.changed:,}")
    flash(f"List {lead_list.name} {done}, {change.untouched:,} left as they were.", "success")
    return redirect(url_for("lists.index", campaign_id=lead_list.campaign_id))


def _run(session: Session, import_id: int) -> ImportRun:
    return session.get(ImportRun, import_id) or abort(404)


@bp.route("/imports/<int:import_id>")
@allow("leads.view")
def import_run(import_id: int) -> Any:
    session = db.session()
    run = _run(session, import_id)
    campaign = session.get_one(Campaign, run.campaign_id)
    lead_list = session.get(LeadList, run.list_id)
    errors = session.scalars(
        select(ImportRowError)
        .where(ImportRowError.import_id == run.id)
        .order_by(ImportRowError.row)
        .limit(ERRORS_SHOWN)
    ).all()
    error_count = session.scalar(
        select(func.count()).select_from(ImportRowError).where(ImportRowError.import_id == run.id)
    )
    return render_template(
        "lists/import.html",
        run=run,
        campaign=campaign,
        lead_list=lead_list,
        errors=errors,
        error_count=error_count or 0,
        shown=ERRORS_SHOWN,
    )


@bp.route("/imports/<int:import_id>/status.json")
@allow("leads.view")
def import_status(import_id: int) -> Any:
    run = _run(db.session(), import_id)
    return jsonify(
        id=run.id,
        status=run.status,
        rows=run.rows,
        expected_rows=run.expected_rows,
        imported=run.imported,
        duplicates=run.duplicates,
        invalid=run.invalid,
        dnc=run.dnc,
        error=run.error,
    )


@bp.route("/imports/<int:import_id>/errors.csv")
@allow("leads.view")
def import_errors(import_id: int) -> Any:
    run = _run(db.session(), import_id)
    engine, run_id = db.engine(), run.id

    def chunks() -> Iterator[str]:
        # Spooled to disk past a few MB: an import of a million bad rows has a large report.
        # write_error_report neutralises every cell a spreadsheet would run as a formula.
        with tempfile.SpooledTemporaryFile(
            max_size=8 * 2**20, mode="w+", newline="", encoding="utf-8"
        ) as spool:
            write_error_report(engine, run_id, spool)
            spool.seek(0)
            while block := spool.read(64 * 1024):
                yield block

    filename = f"import-{run.id}-errors.csv"
    return Response(
        chunks(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
