"""Campaigns: every setting a campaign has, clone, and start / pause / stop.

The node dials the leads of active campaigns; the console only changes `campaigns.status`
(ARCHITECTURE §3a: commands are rows the node acts on)."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import re
import threading
import time
from decimal import Decimal
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from wtforms import (
    BooleanField,
    DecimalField,
    Field,
    FloatField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from campaigns import live, scripts, surveys
from campaigns.dispositions import (
    CATALOGUES,
    DEFAULT_RULES,
    NO_DISPOSITION,
    DispositionError,
    install_catalogue,
)
from campaigns.dispositions import rules_for as recycling_rules_for
from campaigns.manage import ACTIONS, SetupError, steer
from campaigns.models import (
    AMD_ACTIONS,
    CAMPAIGN_KINDS,
    DIAL_MODES,
    MAX_ABANDON_TARGET,
    MIN_RING_TIMEOUT_S,
    AgentGroupMember,
    Campaign,
    CampaignAgentGroup,
    Lead,
    LeadList,
    SurveyAnswer,
)
from dialer.amd import AmdSettings
from dialer.forecast import MIN_ATTEMPTS, forecast, observed_stats
from dialer.prompts import safe_harbor_text, voicemail_text
from sip_config import calls_per_second
from web import audit, db, lead_counts
from web.permissions import allow, may
from web.trunks import configured_trunks

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
E164_MESSAGE = "an E.164 number: + then 7-15 digits, e.g. +12125550100"
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
KIND_LABELS = {
    "telemarketing": "Telemarketing",
    "collections": "Collections",
    "survey": "Survey",
    "appointment": "Appointment setting",
}
AMD_ACTION_LABELS = {
    "hangup": "Hang up",
    "message": "Leave the voicemail message after the beep",
}
MODE_LABELS = {
    "preview": "Preview (the agent asks for each call)",
    "progressive": "Progressive (one call per idle agent)",
    "power": "Power (a fixed number of calls per idle agent)",
    "predictive": "Predictive (paced to the abandon target)",
}
# The buttons each status offers (campaigns.manage.steer carries them out).
BUTTONS: dict[str, tuple[str, ...]] = {
    "draft": ("start",),
    "active": ("pause", "stop"),
    "paused": ("start", "stop"),
    "stopped": ("start",),
    "finished": ("start",),
}
# What the script preview fills in before the campaign has a lead.
SAMPLE_LEAD: dict[str, Any] = {
    "first_name": "Jane",
    "last_name": "Doe",
    "phone": "+12125550100",
    "phone_e164": "+12125550100",
    "email": "jane.doe@example.com",
    "account_ref": "AC-10042",
    "balance": "1234.50",
    "due_date": "2026-12-01",
    "appointment_at": "2026-12-03 10:30",
    "state": "NY",
    "agent": "Sam",
    "seller": "Acme Insurance",
}
# Line outcomes a manager may recycle; what an agent records comes from the kind's catalogue.
RECYCLED_OUTCOMES = ("busy", "no_answer", "machine", "human", "abandoned", "congestion", "failed")
OUTCOME_LABELS = {
    "human": "Hung up during the greeting",
    "busy": "Busy",
    "no_answer": "No answer",
    "machine": "Answering machine (a message left or not)",
    "abandoned": "Abandoned (no agent in time)",
    "congestion": "Carrier congestion",
    "failed": "Failed",
}
MAX_RETRY_MINUTES = 90 * 24 * 60
AMD_DEFAULTS = AmdSettings()
AMD_LABELS = {
    "vad_aggressiveness": "Voice detector strictness (0-3)",
    "voice_min_dbfs": "Quietest voice (dBFS)",
    "beep_purity": "Beep purity (0-1)",
    "max_words": "Most words of a person",
    "beep_detection": "Detect the beep",
}
UNITS = {"_ms": " (ms)", "_hz": " (Hz)", "_dbfs": " (dBFS)", "_db": " (dB)"}
AMD_FIELDS = tuple(dataclasses.fields(AmdSettings))
# Every setting the form edits, for the audit log's before and after.
SETTINGS = (
    "name",
    "kind",
    "dial_mode",
    "dial_ratio",
    "calling_days",
    "calling_start",
    "calling_end",
    "holidays",
    "trunk_name",
    "caller_id",
    "seller_name",
    "callback_number",
    "safe_harbor_message",
    "ring_timeout_s",
    "abandon_target",
    "max_attempts",
    "recycling_rules",
    "recycled_mix",
    "script",
    "record_calls",
    "uk_mode",
    "amd_settings",
    "amd_action",
    "voicemail_message",
    "max_lines",
    "wrapup_timeout_s",
    "default_disposition",
    "pause_codes",
    "auto_schedule",
    "agentless",
)
PAUSE_CODE = re.compile(r"^[A-Z0-9_]{1,40}$")


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class CampaignForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    kind = SelectField("Kind", choices=KIND_LABELS)
    dial_mode = SelectField("Dial mode", choices={m: MODE_LABELS[m] for m in DIAL_MODES})
    dial_ratio = DecimalField(
        "Lines per idle agent",
        places=2,
        default=Decimal("1.00"),
        validators=[InputRequired(), NumberRange(1, 10, "from 1 to 10")],
        description="Power mode dials this many lines for each idle agent.",
    )
    calling_days = CheckboxesField(
        "Calling days", coerce=int, choices=dict(enumerate(DAY_NAMES)), default=[0, 1, 2, 3, 4, 5]
    )
    calling_start = TimeField("From", default=dt.time(9, 0), validators=[InputRequired()])
    calling_end = TimeField("Until", default=dt.time(20, 0), validators=[InputRequired()])
    holidays = TextAreaField(
        "Holidays", description="No calls on these dates: one YYYY-MM-DD a line."
    )
    trunk_name = SelectField("SIP trunk", choices={"": "— none —"})
    caller_id = StringField(
        "Caller ID",
        validators=[Optional(), Regexp(E164, message=E164_MESSAGE)],
        description="Sent as the calling number when the campaign's caller-ID pool has no "
        "number local to the lead; it must take do-not-call requests.",
    )
    seller_name = StringField(
        "Seller name",
        validators=[Length(max=120)],
        description="Named in the safe-harbor message played when no agent is free.",
    )
    callback_number = StringField(
        "Call-back number",
        validators=[Optional(), Regexp(E164, message=E164_MESSAGE)],
        description="Given in the safe-harbor message (the caller ID when empty).",
    )
    safe_harbor_message = TextAreaField(
        "Safe-harbor message",
        description="Empty: the standard message. {seller} and {callback} are filled in.",
    )
    ring_timeout_s = IntegerField(
        "Ring timeout (s)",
        default=25,
        validators=[
            InputRequired(),
            NumberRange(MIN_RING_TIMEOUT_S, 300, f"from {MIN_RING_TIMEOUT_S} to 300 seconds"),
        ],
    )
    abandon_target = DecimalField(
        "Abandon target (%)",
        places=2,
        default=Decimal("3.00"),
        validators=[
            InputRequired(),
            NumberRange(
                Decimal("0.1"),
                Decimal(str(MAX_ABANDON_TARGET * 100)),
                "from 0.1%% to 3%% (the FCC's cap on abandoned calls)",
            ),
        ],
        description="Of live answers over 30 days; 3% is the legal maximum.",
    )
    max_attempts = IntegerField(
        "Attempts per lead", default=6, validators=[InputRequired(), NumberRange(1, 100)]
    )
    recycled_mix = IntegerField(
        "Recycled leads in the mix (%)",
        default=30,
        validators=[InputRequired(), NumberRange(0, 100, "from 0 to 100")],
    )
    script = TextAreaField(
        "Agent script",
        description="{first_name}, {last_name}, {account_ref}, {balance}, {seller} and any "
        "column of the lead file in braces are filled in for the agent.",
    )
    record_calls = BooleanField("Record calls")
    amd_action = SelectField(
        "When a machine answers",
        choices={a: AMD_ACTION_LABELS[a] for a in AMD_ACTIONS},
        default="hangup",
    )
    voicemail_message = TextAreaField(
        "Voicemail message",
        validators=[Length(max=2000)],
        description="Left after the machine's beep (or the end of its greeting). {seller} and "
        "{callback} are filled in.",
    )
    agentless = BooleanField(
        "Agentless (IVR)",
        description="Survey: the questions are asked by the IVR, answered on the keypad. "
        "Appointment: reminders (1 confirm, 2 reschedule, 3 cancel, 0 someone). Lines: as many "
        "as 'Most lines at once' (0: the trunk's channels).",
    )
    max_lines = IntegerField(
        "Most lines at once",
        default=0,
        validators=[InputRequired(), NumberRange(0, 100_000)],
        description="0: four per agent logged in. The trunk's own limits apply on top.",
    )
    wrapup_timeout_s = IntegerField(
        "Wrap-up time limit (s)",
        default=120,
        validators=[InputRequired(), NumberRange(5, 3600, "from 5 to 3600 seconds")],
        description="Then the default disposition is recorded and the agent is ready again.",
    )
    default_disposition = SelectField("Default disposition")
    pause_codes = TextAreaField(
        "Pause codes", description="What an agent picks when pausing: one a line, e.g. LUNCH."
    )
    auto_schedule = BooleanField(
        "Start and pause with the calling window",
        description="Started when the window opens in one of its leads' zones, paused when it "
        "has closed in all.",
    )
    uk_mode = BooleanField(
        "UK mode (Ofcom)", description="No redial of an abandoned number within 72 hours."
    )

    def validate_calling_days(self, field: Field) -> None:
        if not field.data:
            raise ValidationError("Choose at least one calling day.")

    def validate_calling_end(self, field: Field) -> None:
        if self.calling_start.data and field.data and field.data <= self.calling_start.data:
            raise ValidationError("Must be later than the start.")

    def validate_holidays(self, field: Field) -> None:
        try:
            parse_holidays(field.data or "")
        except ValueError as error:
            raise ValidationError(str(error)) from None

    def validate_pause_codes(self, field: Field) -> None:
        for code in parse_pause_codes(field.data or ""):
            if not PAUSE_CODE.match(code):
                raise ValidationError(f"{code!r}: letters, digits and _ (up to 40)")

    def validate_voicemail_message(self, field: Field) -> None:
        if self.amd_action.data != "message":
            return
        callback = self.callback_number.data or self.caller_id.data
        try:
            voicemail_text(field.data or "", self.seller_name.data or "", callback)
        except ValueError as error:
            raise ValidationError(str(error)) from None

    def validate_safe_harbor_message(self, field: Field) -> None:
        if not (field.data or "").strip():
            return
        try:
            # A stand-in seller and number: only the placeholders are checked here.
            safe_harbor_text("Seller", "+12125550100", field.data)
        except ValueError as error:
            raise ValidationError(str(error)) from None


def parse_holidays(text: str) -> list[str]:
    """ISO dates from lines or commas, sorted, each once; a bad one is named."""
    days: set[str] = set()
    for word in re.split(r"[\s,;]+", text.strip()):
        if not word:
            continue
        try:
            days.add(dt.date.fromisoformat(word).isoformat())
        except ValueError:
            raise ValueError(f"{word!r} is not a date (YYYY-MM-DD)") from None
    return sorted(days)


def parse_pause_codes(text: str) -> list[str]:
    """Codes from lines or commas, upper case, each once, in the order given."""
    words = (word.strip().upper() for word in re.split(r"[\n,;]+", text))
    return list(dict.fromkeys(word for word in words if word))


def rule_keys(kind: str) -> tuple[str, ...]:
    """What a manager may recycle: line outcomes and the kind's dispositions but opt-outs
    (an opt-out is final: the number joins the do-not-call list)."""
    catalogue = (*CATALOGUES[kind], NO_DISPOSITION)
    codes = tuple(code for code, _label, _talk, opt_out in catalogue if not opt_out)
    return RECYCLED_OUTCOMES + codes


def rule_labels(kind: str) -> dict[str, str]:
    labels = dict(OUTCOME_LABELS)
    catalogue = (*CATALOGUES[kind], NO_DISPOSITION)
    labels.update((code, label) for code, label, _talk, _opt in catalogue)
    return labels


def amd_label(name: str) -> str:
    """greeting_max_ms -> "Greeting max (ms)"."""
    for suffix, unit in UNITS.items():
        if name.endswith(suffix):
            return name.removesuffix(suffix).replace("_", " ").capitalize() + unit
    return name.replace("_", " ").capitalize()


def _minutes(delta: dt.timedelta | None) -> int | None:
    return None if delta is None else round(delta.total_seconds() / 60)


def campaign_form(kind: str, *, formdata: Any = None, **data: Any) -> CampaignForm:
    """The form with a recycling row per outcome and disposition of the kind, and a field per
    AMD setting."""

    class Form(CampaignForm):
        pass

    for key in rule_keys(kind):
        setattr(
            Form,
            f"retry_{key}",
            IntegerField(
                validators=[
                    Optional(),
                    NumberRange(0, MAX_RETRY_MINUTES, f"from 0 to {MAX_RETRY_MINUTES} minutes"),
                ]
            ),
        )
        setattr(Form, f"max_{key}", IntegerField(validators=[Optional(), NumberRange(1, 100)]))
    for spec in AMD_FIELDS:
        label = AMD_LABELS.get(spec.name) or amd_label(spec.name)
        if spec.type == "bool":
            field: Field = BooleanField(label)
        elif spec.type == "int":
            field = IntegerField(label, validators=[InputRequired()])
        else:
            field = FloatField(label, validators=[InputRequired()])
        setattr(Form, f"amd_{spec.name}", field)
    form = Form(**data) if formdata is None else Form(formdata=formdata, **data)
    catalogue = (*CATALOGUES[kind], NO_DISPOSITION)
    form.default_disposition.choices = {
        code: label for code, label, _talk, opt_out in catalogue if not opt_out
    }
    return form


def form_data(campaign: Campaign) -> dict[str, Any]:
    """A campaign's settings as the form shows them (percentages, times, effective rules)."""
    data: dict[str, Any] = {
        "name": campaign.name,
        "kind": campaign.kind,
        "dial_mode": campaign.dial_mode,
        "dial_ratio": Decimal(str(campaign.dial_ratio)).quantize(Decimal("0.01")),
        "calling_days": list(campaign.calling_days),
        "calling_start": dt.time.fromisoformat(campaign.calling_start),
        "calling_end": dt.time.fromisoformat(campaign.calling_end),
        "holidays": "\n".join(campaign.holidays),
        "trunk_name": campaign.trunk_name or "",
        "caller_id": campaign.caller_id or "",
        "seller_name": campaign.seller_name,
        "callback_number": campaign.callback_number or "",
        "safe_harbor_message": campaign.safe_harbor_message,
        "ring_timeout_s": campaign.ring_timeout_s,
        "abandon_target": (Decimal(str(campaign.abandon_target)) * 100).quantize(Decimal("0.01")),
        "max_attempts": campaign.max_attempts,
        "recycled_mix": round(campaign.recycled_mix * 100),
        "script": campaign.script,
        "record_calls": campaign.record_calls,
        "amd_action": campaign.amd_action,
        "voicemail_message": campaign.voicemail_message,
        "uk_mode": campaign.uk_mode,
        "max_lines": campaign.max_lines,
        "wrapup_timeout_s": campaign.wrapup_timeout_s,
        "default_disposition": campaign.default_disposition,
        "pause_codes": "\n".join(campaign.pause_codes),
        "auto_schedule": campaign.auto_schedule,
        "agentless": campaign.agentless,
    }
    rules = recycling_rules_for(campaign.recycling_rules)
    for key in rule_keys(campaign.kind):
        data[f"retry_{key}"] = _minutes(rules[key].retry_after)
        data[f"max_{key}"] = rules[key].max_attempts
    amd = {**dataclasses.asdict(AMD_DEFAULTS), **campaign.amd_settings}
    for spec in AMD_FIELDS:
        data[f"amd_{spec.name}"] = amd[spec.name]
    return data


def default_form_data(kind: str) -> dict[str, Any]:
    return form_data(Campaign(**new_campaign_defaults(kind)))


def new_campaign_defaults(kind: str) -> dict[str, Any]:
    """The model's defaults, filled in (SQLAlchemy applies them only at insert)."""
    defaults: dict[str, Any] = {"name": "", "kind": kind}
    for column in Campaign.__table__.columns:
        if column.default is not None and column.name not in defaults:
            value = column.default.arg
            defaults[column.name] = value(None) if callable(value) else value
    for stamp in ("created_at", "updated_at"):
        defaults.pop(stamp, None)
    return defaults


def recycling_overrides(form: CampaignForm, kind: str) -> dict[str, Any]:
    """The rules that differ from the defaults, as `rules_for` reads them. An empty retry
    closes the lead after that result; an empty maximum leaves the campaign's."""
    overrides: dict[str, Any] = {}
    for key in rule_keys(kind):
        retry = getattr(form, f"retry_{key}").data
        maximum = getattr(form, f"max_{key}").data
        default = DEFAULT_RULES[key]
        if (retry, maximum) == (_minutes(default.retry_after), default.max_attempts):
            continue
        overrides[key] = {
            "retry_minutes": retry,
            "max_attempts": maximum,
            "final_status": default.final_status,
        }
    recycling_rules_for(overrides)  # raises DispositionError for a rule it cannot read
    return overrides


def amd_overrides(form: CampaignForm) -> dict[str, Any]:
    """The AMD settings that differ from the tuned defaults; AmdSettings checks them."""
    values = {spec.name: getattr(form, f"amd_{spec.name}").data for spec in AMD_FIELDS}
    AmdSettings(**values)  # raises ValueError naming the setting
    defaults = dataclasses.asdict(AMD_DEFAULTS)
    return {name: value for name, value in values.items() if value != defaults[name]}


def apply_form(campaign: Campaign, form: CampaignForm, kind: str) -> None:
    """Copies a validated form into the campaign (raises ValueError or DispositionError for a
    setting the form's validators could not judge alone)."""
    campaign.recycling_rules = recycling_overrides(form, kind)
    campaign.amd_settings = amd_overrides(form)
    campaign.name = form.name.data.strip()
    campaign.dial_mode = form.dial_mode.data
    campaign.dial_ratio = float(form.dial_ratio.data)
    campaign.calling_days = sorted(form.calling_days.data)
    campaign.calling_start = form.calling_start.data.strftime("%H:%M")
    campaign.calling_end = form.calling_end.data.strftime("%H:%M")
    campaign.holidays = parse_holidays(form.holidays.data or "")
    campaign.trunk_name = form.trunk_name.data or None
    campaign.caller_id = (form.caller_id.data or "").strip() or None
    campaign.seller_name = (form.seller_name.data or "").strip()
    campaign.callback_number = (form.callback_number.data or "").strip() or None
    campaign.safe_harbor_message = (form.safe_harbor_message.data or "").strip()
    campaign.ring_timeout_s = form.ring_timeout_s.data
    campaign.abandon_target = float(form.abandon_target.data / 100)
    campaign.max_attempts = form.max_attempts.data
    campaign.recycled_mix = form.recycled_mix.data / 100
    campaign.script = form.script.data or ""
    campaign.record_calls = form.record_calls.data
    campaign.amd_action = form.amd_action.data
    campaign.voicemail_message = (form.voicemail_message.data or "").strip()
    campaign.uk_mode = form.uk_mode.data
    campaign.max_lines = form.max_lines.data
    campaign.wrapup_timeout_s = form.wrapup_timeout_s.data
    campaign.default_disposition = form.default_disposition.data
    campaign.pause_codes = parse_pause_codes(form.pause_codes.data or "")
    campaign.auto_schedule = form.auto_schedule.data
    if (
        campaign.agentless != bool(form.agentless.data)
        and form.agentless.data
        and kind
        not in (
            "survey",
            "appointment",
        )
    ):
        raise ValueError("agentless: only survey and appointment campaigns run without agents")
    campaign.agentless = bool(form.agentless.data)


def _trunk_choices(form: CampaignForm, current: str | None) -> str | None:
    """Fills the trunk choices from the SIP configuration; returns why it could not be read."""
    names, problem = configured_trunks()
    choices = {"": "— none —"} | {n: n for n in names}
    if current and current not in names:
        choices[current] = f"{current} (not in the SIP configuration)"
    form.trunk_name.choices = choices
    return problem


def start_problems(campaign: Campaign) -> list[str]:
    """What must be set before the campaign may start, in words a manager can act on."""
    problems = []
    if not campaign.trunk_name:
        problems.append("Choose the SIP trunk its calls go out on.")
    if campaign.dial_mode != "preview":
        # An abandoned call hears the seller's name and a number to call (47 CFR 64.1200(a)(7)).
        callback = campaign.callback_number or campaign.caller_id
        if not callback:
            problems.append("Give a call-back number or caller ID for the safe-harbor message.")
        try:
            safe_harbor_text(
                campaign.seller_name, callback or "+12125550100", campaign.safe_harbor_message
            )
        except ValueError as error:
            problems.append(f"Safe-harbor message: {error}.")
    return problems


def safe_harbor_preview(campaign: Campaign) -> str | None:
    callback = campaign.callback_number or campaign.caller_id
    if not callback:
        return None
    try:
        return safe_harbor_text(campaign.seller_name, callback, campaign.safe_harbor_message)
    except ValueError:
        return None


def _campaign(session: Session, campaign_id: int) -> Campaign:
    return session.get(Campaign, campaign_id) or abort(404)


def _name_taken(session: Session, name: str, campaign_id: int | None) -> bool:
    existing = session.scalar(select(Campaign.id).where(Campaign.name == name))
    return existing is not None and existing != campaign_id


def _render_form(
    form: CampaignForm, campaign: Campaign | None, kind: str, problem: str | None
) -> Any:
    return render_template(
        "campaigns/form.html",
        form=form,
        campaign=campaign,
        kind=kind,
        rule_keys=rule_keys(kind),
        rule_labels=rule_labels(kind),
        amd_fields=[f"amd_{spec.name}" for spec in AMD_FIELDS],
        trunk_problem=problem,
        day_names=DAY_NAMES,
        kind_labels=KIND_LABELS,
    )


@bp.route("/")
@allow("campaigns.view")
def index() -> Any:
    session = db.session()
    campaigns = session.scalars(select(Campaign).order_by(Campaign.name)).all()
    leads = lead_counts.by_campaign()
    return render_template(
        "campaigns/index.html",
        campaigns=campaigns,
        leads=leads,
        kind_labels=KIND_LABELS,
    )


@bp.route("/new", methods=["GET", "POST"])
@allow("campaigns.edit")
def create() -> Any:
    kind = request.values.get("kind", "telemarketing")
    if kind not in CAMPAIGN_KINDS:
        kind = "telemarketing"
    if request.method == "GET":
        form = campaign_form(kind, formdata=None, data=default_form_data(kind))
    else:
        form = campaign_form(kind)
    problem = _trunk_choices(form, None)
    if form.validate_on_submit():
        session = db.session()
        name = form.name.data.strip()
        if _name_taken(session, name, None):
            form.name.errors = [f"A campaign named {name!r} exists already."]
        else:
            campaign = Campaign(**new_campaign_defaults(kind))
            try:
                apply_form(campaign, form, kind)
            except (ValueError, DispositionError) as error:
                flash(f"Not saved: {error}.", "error")
                return _render_form(form, None, kind, problem), 422
            campaign.lists.append(LeadList(name="default"))
            session.add(campaign)
            session.flush()
            install_catalogue(session, campaign)
            audit.record(
                session, "create", "campaign", campaign.id, after=audit.snapshot(campaign, SETTINGS)
            )
            session.commit()
            flash(f"Campaign {campaign.name} created as a draft.", "success")
            return redirect(url_for("campaigns.show", campaign_id=campaign.id))
    status = 422 if request.method == "POST" else 200
    return _render_form(form, None, kind, problem), status


@bp.route("/<int:campaign_id>")
@allow("campaigns.view")
def show(campaign_id: int) -> Any:
    session = db.session()
    campaign = _campaign(session, campaign_id)
    by_status = lead_counts.by_status(campaign.id)
    return render_template(
        "campaigns/show.html",
        campaign=campaign,
        by_status=by_status,
        leads=sum(by_status.values()),
        actions=BUTTONS[campaign.status],
        problems=start_problems(campaign),
        safe_harbor=safe_harbor_preview(campaign),
        kind_labels=KIND_LABELS,
        mode_labels=MODE_LABELS,
        day_names=DAY_NAMES,
        rules=recycling_rules_for(campaign.recycling_rules),
        rule_keys=rule_keys(campaign.kind),
        rule_labels=rule_labels(campaign.kind),
    )


# The forecast simulates every dial mode for an hour (a few seconds of CPU for a large team):
# computed by the first page view that asks, kept 10 minutes per campaign and team size, and
# fetched by the campaign page's script so that the page itself never waits for it.
FORECAST_TTL_S = 600.0
FORECAST_SEEDS = (0, 1)
FORECAST_ATTEMPTS = 20_000  # the campaign's latest attempts: its shares and times, read fast
_forecasts_lock = threading.Lock()


def team_size(session: Session, campaign_id: int) -> int:
    """The people who may take the campaign's calls: members of its agent groups."""
    return (
        session.scalar(
            select(func.count(func.distinct(AgentGroupMember.user_id)))
            .join(CampaignAgentGroup, CampaignAgentGroup.group_id == AgentGroupMember.group_id)
            .where(CampaignAgentGroup.campaign_id == campaign_id)
        )
        or 0
    )


@bp.route("/<int:campaign_id>/forecast.json")
@allow("campaigns.view")
def forecast_json(campaign_id: int) -> Any:
    """Contacts per hour, utilisation and abandon rate by dial mode, as `dialer forecast` has
    them, for the campaign's team (one agent at least) and its own recorded figures."""
    session = db.session()
    campaign = _campaign(session, campaign_id)
    agents = max(1, team_size(session, campaign.id))
    key, now = (campaign.id, agents), time.monotonic()
    forecasts: dict[tuple[int, int], tuple[float, dict[str, Any]]]
    forecasts = current_app.extensions.setdefault("dialer.forecasts", {})
    with _forecasts_lock:
        cached = forecasts.get(key)
    if cached is None or now - cached[0] > FORECAST_TTL_S:
        target = float(campaign.abandon_target)
        stats = observed_stats(session, campaign.id, agents, latest=FORECAST_ATTEMPTS)
        rate = calls_per_second(campaign.trunk_name, current_app.config.get("SIP_CONFIG"))
        stats = dataclasses.replace(stats, calls_per_second=rate)
        session.rollback()  # no read transaction held open through the seconds of simulation
        cached = (
            now,
            {
                "agents": agents,
                "attempts": stats.attempts,
                "typical": stats.attempts < MIN_ATTEMPTS,
                "live_rate": round(stats.live_rate, 4),
                "talk_s": round(stats.talk_mean),
                "wrap_s": round(stats.wrap_mean),
                "abandon_target": target,
                "modes": forecast(stats, 1.0, FORECAST_SEEDS),
            },
        )
        with _forecasts_lock:
            forecasts[key] = cached
    return jsonify(cached[1])


@bp.route("/<int:campaign_id>/edit", methods=["GET", "POST"])
@allow("campaigns.edit")
def edit(campaign_id: int) -> Any:
    session = db.session()
    campaign = _campaign(session, campaign_id)
    if request.method == "GET":
        form = campaign_form(campaign.kind, formdata=None, data=form_data(campaign))
    else:
        form = campaign_form(campaign.kind)
    # The kind chose the disposition catalogue agents use: it is fixed once created.
    form.kind.data = campaign.kind
    problem = _trunk_choices(form, campaign.trunk_name)
    if form.validate_on_submit():
        name = form.name.data.strip()
        if _name_taken(session, name, campaign.id):
            form.name.errors = [f"A campaign named {name!r} exists already."]
        else:
            before = audit.snapshot(campaign, SETTINGS)
            try:
                apply_form(campaign, form, campaign.kind)
            except (ValueError, DispositionError) as error:
                session.rollback()
                flash(f"Not saved: {error}.", "error")
                return _render_form(form, campaign, campaign.kind, problem), 422
            audit.record(
                session,
                "update",
                "campaign",
                campaign.id,
                before=before,
                after=audit.snapshot(campaign, SETTINGS),
            )
            # The nodes read a running campaign's settings again when woken.
            live.commit_and_wake(session)
            flash("Settings saved.", "success")
            return redirect(url_for("campaigns.show", campaign_id=campaign.id))
    status = 422 if request.method == "POST" else 200
    return _render_form(form, campaign, campaign.kind, problem), status


@bp.route("/<int:campaign_id>/clone", methods=["POST"])
@allow("campaigns.edit")
def clone(campaign_id: int) -> Any:
    """A draft with the same settings and an empty default list."""
    session = db.session()
    source = _campaign(session, campaign_id)
    settings = {name: copy.deepcopy(getattr(source, name)) for name in SETTINGS}
    base = f"{source.name} (copy)"[:120]
    name, number = base, 2
    while _name_taken(session, name, None):
        name = f"{source.name} (copy {number})"[:120]
        number += 1
    twin = Campaign(**{**settings, "name": name, "status": "draft"})
    twin.lists.append(LeadList(name="default"))
    session.add(twin)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        flash("Another campaign took that name at the same moment; clone again.", "error")
        return redirect(url_for("campaigns.show", campaign_id=campaign_id))
    install_catalogue(session, twin)
    audit.record(
        session,
        "clone",
        "campaign",
        twin.id,
        after={**audit.snapshot(twin, SETTINGS), "cloned_from": source.id},
    )
    session.commit()
    flash(f"{twin.name} created from {source.name}. Check its settings.", "success")
    return redirect(url_for("campaigns.edit", campaign_id=twin.id))


class StatusForm(FlaskForm):
    action = SelectField(choices={a: a for a in ACTIONS})


@bp.route("/<int:campaign_id>/status", methods=["POST"])
@allow("campaigns.control")
def status(campaign_id: int) -> Any:
    session = db.session()
    campaign = _campaign(session, campaign_id)
    form = StatusForm()
    # The live dashboard's buttons bring the manager back to it.
    if request.form.get("back") == "dashboard":
        back = redirect(url_for("dashboard.overview"))
    else:
        back = redirect(url_for("campaigns.show", campaign_id=campaign.id))
    if not form.validate_on_submit():
        flash("Choose start, pause or stop.", "error")
        return back
    action = form.action.data
    if action not in BUTTONS[campaign.status]:
        flash(f"Not changed: a {campaign.status} campaign cannot {action}.", "error")
        return back
    if action == "start":
        problems = start_problems(campaign)
        if problems:
            flash("Not started: " + " ".join(problems), "error")
            return back
    before = {"status": campaign.status}
    audit.record(
        session, action, "campaign", campaign.id, before=before, after={"status": ACTIONS[action]}
    )
    try:
        # Commits the change with its audit entry and wakes the nodes.
        target = steer(session, campaign, action)
    except SetupError as error:
        session.rollback()
        flash(f"Not changed: {error}.", "error")
        return back
    current_app.logger.info("campaign %s: %s -> %s", campaign.id, before["status"], target)
    flash(f"{campaign.name} is {target}.", "success")
    return back


@bp.route("/script-preview.json", methods=["POST"])
@allow("campaigns.edit")
def script_preview() -> Any:
    """The script as an agent would read it for the campaign's first lead (or a sample)."""
    body = request.get_json(silent=True) or {}
    script = str(body.get("script", ""))[:20_000]
    seller = str(body.get("seller", ""))[:120]
    fields: dict[str, Any] = {**SAMPLE_LEAD, "seller": seller or SAMPLE_LEAD["seller"]}
    source = "a sample lead"
    campaign_id = body.get("campaign_id")
    if isinstance(campaign_id, int):
        session = db.session()
        lead = session.scalars(
            select(Lead).where(Lead.campaign_id == campaign_id).order_by(Lead.id).limit(1)
        ).first()
        if lead is not None:
            fields = scripts.lead_fields(lead, agent=current_user.username, seller=seller)
            source = f"lead {lead.id}"
    names = dict.fromkeys(m.group(1).strip() for m in scripts.PLACEHOLDER.finditer(script))
    # render() leaves a placeholder as written when the lead has no value for it.
    unknown = [name for name in names if fields.get(name) in (None, "")]
    return jsonify(text=scripts.render(script, fields), unknown=unknown, source=source)


# -- the survey (survey campaigns)

SURVEY_ROWS_FREE = 3


def survey_rows(survey: surveys.SurveyDefinition | None) -> list[dict[str, str]]:
    """The editor's rows: the survey's questions, then a few empty ones to add more."""
    rows = []
    for question in survey.questions if survey is not None else ():
        branches = " ".join(f"{d}={t}" for d, t in question.branches.items())
        rows.append(
            {
                "key": question.key,
                "text": question.text,
                "digits": question.digits,
                "branches": branches,
                "then": question.then or "",
            }
        )
    start = len(rows) + 1
    rows += [
        {"key": f"q{start + i}", "text": "", "digits": "", "branches": "", "then": ""}
        for i in range(SURVEY_ROWS_FREE)
    ]
    return rows


def survey_from_form(form: Any) -> surveys.SurveyDefinition:
    """The editor's rows as a survey: a row without text is left out."""
    questions = []
    keys, texts = form.getlist("key"), form.getlist("text")
    digits, branches, thens = form.getlist("digits"), form.getlist("branches"), form.getlist("then")
    for index, text in enumerate(texts):
        if not text.strip():
            continue
        key = keys[index].strip() if index < len(keys) else ""
        where = f"question {key or index + 1!r}"
        then = thens[index].strip() if index < len(thens) else ""
        questions.append(
            surveys.Question(
                key=key,
                text=text.strip(),
                digits=(digits[index] if index < len(digits) else "").replace(" ", ""),
                branches=surveys.parse_branches(
                    branches[index] if index < len(branches) else "", where
                ),
                then=then or None,
            )
        )
    tries = form.get("tries", "2").strip()
    if not tries.isdigit():
        raise surveys.SurveyError(f"tries: {tries!r}; expected a whole number from 1 to 5")
    return surveys.SurveyDefinition(
        tuple(questions),
        intro=form.get("intro", "").strip(),
        end_message=form.get("end_message", "").strip(),
        tries=int(tries),
    )


@bp.route("/<int:campaign_id>/survey", methods=["GET", "POST"])
@allow("campaigns.view")
def survey(campaign_id: int) -> Any:
    """The campaign's questions, their answers (keys) and where each answer leads."""
    session = db.session()
    campaign = _campaign(session, campaign_id)
    if campaign.kind != "survey":
        abort(404)
    current = surveys.load(session, campaign.id)
    rows = survey_rows(current)
    intro = current.intro if current else surveys.DEFAULT_INTRO
    end = current.end_message if current else surveys.DEFAULT_END
    tries = current.tries if current else 2
    status = 200
    if request.method == "POST":
        if not may_edit():
            abort(403)
        try:
            edited = survey_from_form(request.form)
        except surveys.SurveyError as error:
            flash(f"Not saved: {error}.", "error")
            rows = [
                dict(zip(("key", "text", "digits", "branches", "then"), values, strict=True))
                for values in zip(
                    *(
                        request.form.getlist(n)
                        for n in ("key", "text", "digits", "branches", "then")
                    ),
                    strict=False,
                )
            ]
            intro, end = request.form.get("intro", ""), request.form.get("end_message", "")
            tries = request.form.get("tries", "2")
            status = 422
        else:
            surveys.save(session, campaign, edited)
            audit.record(session, "update", "survey", campaign.id, after=edited.to_dict())
            live.commit_and_wake(session)
            flash("Survey saved: new calls ask these questions.", "success")
            return redirect(url_for("campaigns.survey", campaign_id=campaign.id))
    answered = dict(
        session.execute(
            select(SurveyAnswer.question, func.count())
            .where(SurveyAnswer.campaign_id == campaign.id, SurveyAnswer.status == "answered")
            .group_by(SurveyAnswer.question)
        ).all()
    )
    return (
        render_template(
            "campaigns/survey.html",
            campaign=campaign,
            rows=rows,
            intro=intro,
            end_message=end,
            tries=tries,
            answered=answered,
        ),
        status,
    )


def may_edit() -> bool:
    return may(getattr(current_user, "role", None), "campaigns.edit")
