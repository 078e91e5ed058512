"""What the API takes and gives, as marshmallow schemas: they validate requests (an unknown
field is refused, naming it) and the OpenAPI document is generated from them."""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
from marshmallow import fields as f
from marshmallow import validate as v

from campaigns.models import (
    AGENT_STATES,
    AMD_ACTIONS,
    CAMPAIGN_KINDS,
    CAMPAIGN_STATUSES,
    DIAL_MODES,
    LEAD_STATUSES,
    MAX_ABANDON_TARGET,
    MIN_RING_TIMEOUT_S,
    PARTIES,
)
from campaigns.reporting import CALL_OUTCOMES
from web.api.paging import PageArgs, PaginationSchema

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
E164_MESSAGE = "an E.164 number: + then 7-15 digits, e.g. +12125550100"
HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
PAUSE_CODE = re.compile(r"^[A-Z0-9_]{1,40}$")


def described(text: str, **kwargs: Any) -> dict[str, Any]:
    return {"metadata": {"description": text}, **kwargs}


# -- errors


class ErrorDetailSchema(ma.Schema):
    field = f.String()
    value = f.Raw()
    message = f.String()


class ErrorBodySchema(ma.Schema):
    code = f.String(
        **described("Stable: unauthenticated, invalid_token, forbidden, not_found, invalid, ...")
    )
    message = f.String(**described("For people: the field, the value and what is accepted."))
    field = f.String(allow_none=True)
    value = f.Raw()
    details = f.List(f.Nested(ErrorDetailSchema))


class ErrorSchema(ma.Schema):
    error = f.Nested(ErrorBodySchema)


class AcceptedSchema(ma.Schema):
    status = f.String()
    detail = f.String()


# -- campaigns


class CampaignSchema(ma.Schema):
    id = f.Integer()
    name = f.String()
    kind = f.String()
    status = f.String(**described(f"One of {', '.join(CAMPAIGN_STATUSES)}."))
    dial_mode = f.String()
    dial_ratio = f.Float()
    calling_days = f.List(f.Integer(), **described("0 = Monday ... 6 = Sunday."))
    calling_start = f.String(**described("HH:MM in the called person's time zone."))
    calling_end = f.String()
    holidays = f.List(f.String())
    trunk_name = f.String(allow_none=True)
    caller_id = f.String(allow_none=True)
    seller_name = f.String()
    callback_number = f.String(allow_none=True)
    safe_harbor_message = f.String()
    ring_timeout_s = f.Integer()
    abandon_target = f.Float(**described("Fraction of live answers over 30 days (0.03 = 3%)."))
    max_attempts = f.Integer()
    recycled_mix = f.Float()
    script = f.String()
    record_calls = f.Boolean()
    amd_action = f.String(
        **described(f"When a machine answers: one of {', '.join(AMD_ACTIONS)} (its message).")
    )
    voicemail_message = f.String()
    uk_mode = f.Boolean()
    max_lines = f.Integer()
    wrapup_timeout_s = f.Integer()
    default_disposition = f.String()
    pause_codes = f.List(f.String())
    auto_schedule = f.Boolean()
    created_at = f.DateTime()
    updated_at = f.DateTime()


class CampaignPageSchema(ma.Schema):
    data = f.List(f.Nested(CampaignSchema))
    pagination = f.Nested(PaginationSchema)


class CampaignArgs(PageArgs):
    status = f.String(validate=v.OneOf(CAMPAIGN_STATUSES))
    kind = f.String(validate=v.OneOf(CAMPAIGN_KINDS))


class CampaignSettingsSchema(ma.Schema):
    """Settings a campaign is created or updated with (all optional on update)."""

    name = f.String(validate=v.Length(1, 120))
    dial_mode = f.String(validate=v.OneOf(DIAL_MODES))
    dial_ratio = f.Float(validate=v.Range(1, 10), **described("Power mode: lines per idle agent."))
    calling_days = f.List(
        f.Integer(validate=v.Range(0, 6)), validate=v.Length(min=1, max=7), **described("0-6.")
    )
    calling_start = f.String(validate=v.Regexp(HHMM, error="a time as HH:MM, e.g. 09:00"))
    calling_end = f.String(validate=v.Regexp(HHMM, error="a time as HH:MM, e.g. 20:00"))
    holidays = f.List(f.Date(), **described("No calls on these dates (YYYY-MM-DD)."))
    trunk_name = f.String(allow_none=True, validate=v.Length(max=80))
    caller_id = f.String(allow_none=True, validate=v.Regexp(E164, error=E164_MESSAGE))
    seller_name = f.String(validate=v.Length(max=120))
    callback_number = f.String(allow_none=True, validate=v.Regexp(E164, error=E164_MESSAGE))
    safe_harbor_message = f.String(validate=v.Length(max=2000))
    ring_timeout_s = f.Integer(validate=v.Range(MIN_RING_TIMEOUT_S, 300))
    abandon_target = f.Float(
        validate=v.Range(0.001, MAX_ABANDON_TARGET),
        **described("Fraction of live answers over 30 days; at most 0.03 (the FCC's cap)."),
    )
    max_attempts = f.Integer(validate=v.Range(1, 100))
    recycled_mix = f.Float(validate=v.Range(0, 1))
    script = f.String(validate=v.Length(max=20_000))
    record_calls = f.Boolean()
    amd_action = f.String(validate=v.OneOf(AMD_ACTIONS))
    voicemail_message = f.String(
        validate=v.Length(max=2000),
        **described("Left after a machine's beep; {seller} and {callback} are filled in."),
    )
    uk_mode = f.Boolean()
    max_lines = f.Integer(validate=v.Range(0, 100_000))
    wrapup_timeout_s = f.Integer(validate=v.Range(5, 3600))
    default_disposition = f.String(validate=v.Length(1, 40))
    pause_codes = f.List(
        f.String(validate=v.Regexp(PAUSE_CODE, error="letters A-Z, digits and _ (up to 40)"))
    )
    auto_schedule = f.Boolean()

    @ma.validates_schema
    def _window(self, data: dict[str, Any], **_kwargs: Any) -> None:
        start, end = data.get("calling_start"), data.get("calling_end")
        if start and end and end <= start:
            raise ma.ValidationError(
                f"{end} is not later than calling_start {start}", "calling_end"
            )


class CampaignCreateSchema(CampaignSettingsSchema):
    name = f.String(required=True, validate=v.Length(1, 120))
    kind = f.String(required=True, validate=v.OneOf(CAMPAIGN_KINDS))


class DispositionCodeSchema(ma.Schema):
    code = f.String()
    label = f.String()
    is_conversation = f.Boolean()
    is_opt_out = f.Boolean()


class CallerIdSchema(ma.Schema):
    id = f.Integer()
    phone_e164 = f.String()
    daily_cap = f.Integer(allow_none=True, **described("Calls a day at most; null: no cap."))
    created_at = f.DateTime()


class CallerIdCreateSchema(ma.Schema):
    phone = f.String(required=True, validate=v.Length(1, 40), **described("e.g. +12125550100"))
    daily_cap = f.Integer(
        allow_none=True,
        validate=v.Range(1, 100_000),
        **described("Calls a day at most (the number's own day); null or absent: no cap."),
    )


class CallerIdArgs(ma.Schema):
    days = f.Integer(load_default=7, validate=v.Range(1, 90), **described("Days counted."))


class CallerIdFiguresSchema(ma.Schema):
    number = f.String()
    in_pool = f.Boolean()
    area_code = f.String(allow_none=True)
    state = f.String(allow_none=True)
    daily_cap = f.Integer(allow_none=True)
    used_today = f.Integer(**described("Calls placed with it today (its own calendar day)."))
    calls = f.Integer(**described("Calls placed with it in the days counted."))
    ended = f.Integer()
    answered = f.Integer(**described("Calls a person answered."))
    answer_rate = f.Float(allow_none=True)
    burnt = f.Boolean(
        **described("Enough calls, and an answer rate under burnt_below of the campaign's.")
    )


class CallerIdReportSchema(ma.Schema):
    campaign = f.String()
    days = f.Integer()
    default_caller_id = f.String(allow_none=True)
    ended = f.Integer()
    answered = f.Integer()
    answer_rate = f.Float(allow_none=True)
    burnt_below = f.Float()
    min_calls_to_judge = f.Integer()
    numbers = f.List(f.Nested(CallerIdFiguresSchema))
    pool = f.List(f.Nested(CallerIdSchema))


# -- lists and imports


class LeadListSchema(ma.Schema):
    id = f.Integer()
    campaign_id = f.Integer()
    name = f.String()
    default_region = f.String()
    active = f.Boolean()
    created_at = f.DateTime()
    leads = f.Dict(keys=f.String(), values=f.Integer(), **described("Leads by status."))


class LeadListPageSchema(ma.Schema):
    data = f.List(f.Nested(LeadListSchema))
    pagination = f.Nested(PaginationSchema)


class LeadListCreateSchema(ma.Schema):
    name = f.String(required=True, validate=v.Length(1, 120))
    default_region = f.String(
        load_default="US", validate=v.Regexp(r"^[A-Z]{2}$", error="two capital letters, e.g. US")
    )


class LeadListUpdateSchema(ma.Schema):
    active = f.Boolean(required=True, **described("false: none of the list's leads is dialled."))


class ListChangeSchema(ma.Schema):
    action = f.String(**described("recycle or reset"))
    changed = f.Integer(**described("Leads the action changed."))
    untouched = f.Integer(**described("Leads of the list it left as they were."))
    list = f.Nested(LeadListSchema)


def file_field(text: str) -> f.Raw:
    return f.Raw(
        required=True, metadata={"type": "string", "format": "binary", "description": text}
    )


class UploadSchema(ma.Schema):
    file = file_field("The lead file (CSV).")
    region = f.String(
        load_default=None,
        validate=v.Regexp(r"^[A-Za-z]{2}$", error="two letters, e.g. US"),
        **described("Country of numbers written without +code; the list's by default."),
    )
    mapping = f.String(
        **described(
            'JSON object lead field -> column name, e.g. {"phone": "Mobile"}; columns not '
            "named are matched by their headers."
        )
    )


class ImportRunSchema(ma.Schema):
    id = f.Integer()
    campaign_id = f.Integer()
    list_id = f.Integer()
    filename = f.String()
    status = f.String(**described("running, completed or failed."))
    rows = f.Integer()
    expected_rows = f.Integer(allow_none=True)
    imported = f.Integer()
    duplicates = f.Integer()
    invalid = f.Integer()
    dnc = f.Integer()
    error = f.String(allow_none=True)
    started_at = f.DateTime()
    finished_at = f.DateTime(allow_none=True)


class RowErrorSchema(ma.Schema):
    row = f.Integer()
    field = f.String()
    value = f.String()
    reason = f.String()


class RowErrorPageSchema(ma.Schema):
    data = f.List(f.Nested(RowErrorSchema))
    pagination = f.Nested(PaginationSchema)


# -- leads


class LeadSchema(ma.Schema):
    id = f.Integer()
    campaign_id = f.Integer()
    list_id = f.Integer()
    phone_e164 = f.String()
    phone_type = f.String()
    region = f.String()
    state = f.String(allow_none=True)
    time_zones = f.List(f.String())
    first_name = f.String(allow_none=True)
    last_name = f.String(allow_none=True)
    email = f.String(allow_none=True)
    account_ref = f.String(allow_none=True)
    balance = f.Decimal(as_string=True, allow_none=True)
    due_date = f.Date(allow_none=True)
    custom_fields = f.Dict()
    status = f.String()
    attempts = f.Integer()
    next_dial_at = f.DateTime(allow_none=True)
    last_dialed_at = f.DateTime(allow_none=True)
    last_outcome = f.String(allow_none=True)
    priority = f.Integer()
    consent_automated = f.Boolean()
    created_at = f.DateTime()


class LeadPageSchema(ma.Schema):
    data = f.List(f.Nested(LeadSchema))
    pagination = f.Nested(PaginationSchema)


class LeadArgs(PageArgs):
    campaign_id = f.Integer(**described("Only this campaign's leads."))
    q = f.String(
        validate=v.Length(1, 120),
        **described("A phone number (exact), an account reference, or the start of a name."),
    )
    status = f.String(validate=v.OneOf(LEAD_STATUSES))


class CallbackSchema(ma.Schema):
    id = f.Integer()
    agent_id = f.Integer(allow_none=True)
    due_at = f.DateTime()
    status = f.String()


class DispositionSchema(ma.Schema):
    id = f.Integer()
    attempt_id = f.Integer(allow_none=True)
    lead_id = f.Integer()
    campaign_id = f.Integer()
    agent_id = f.Integer(allow_none=True)
    code = f.String()
    notes = f.String()
    promise_amount = f.Decimal(as_string=True, allow_none=True)
    promise_date = f.Date(allow_none=True)
    party = f.String(allow_none=True)
    created_at = f.DateTime()


class AttemptSchema(ma.Schema):
    id = f.Integer()
    started_at = f.DateTime()
    campaign_id = f.Integer()
    campaign = f.String()
    lead_id = f.Integer()
    phone = f.String()
    first_name = f.String(allow_none=True)
    last_name = f.String(allow_none=True)
    account_ref = f.String(allow_none=True)
    dial_mode = f.String()
    outcome = f.String(allow_none=True)
    abandoned = f.Boolean()
    sip_code = f.Integer(allow_none=True)
    sip_reason = f.String(allow_none=True)
    amd_verdict = f.String(allow_none=True)
    agent_id = f.Integer(allow_none=True)
    agent = f.String(allow_none=True)
    connect_delay_ms = f.Integer(allow_none=True)
    answered_at = f.DateTime(allow_none=True)
    bridged_at = f.DateTime(allow_none=True)
    ended_at = f.DateTime(allow_none=True)
    talk_s = f.Float(allow_none=True)
    disposition = f.String(allow_none=True)
    notes = f.String(allow_none=True)
    has_recording = f.Boolean()
    recording = f.String(
        allow_none=True, **described("URL of the WAV, for roles that may hear it.")
    )


class LeadDetailSchema(LeadSchema):
    attempts_made = f.List(f.Nested(AttemptSchema), data_key="calls")
    dispositions = f.List(f.Nested(DispositionSchema))
    callbacks = f.List(f.Nested(CallbackSchema))
    blocked_by = f.Dict(allow_none=True, **described("The do-not-call entry that blocks it."))


# -- do not call


class DncEntrySchema(ma.Schema):
    id = f.Integer()
    phone_e164 = f.String()
    scope = f.String()
    campaign_id = f.Integer(allow_none=True)
    source = f.String()
    reason = f.String()
    created_at = f.DateTime()
    expires_at = f.DateTime(allow_none=True)


class DncPageSchema(ma.Schema):
    data = f.List(f.Nested(DncEntrySchema))
    pagination = f.Nested(PaginationSchema)


class DncArgs(PageArgs):
    phone = f.String(validate=v.Length(1, 40), **described("A number, in any usual writing."))
    campaign_id = f.Integer(**described("Only this campaign's list."))
    scope = f.String(validate=v.OneOf(("global", "campaign")))
    source = f.String(validate=v.Length(1, 40))


class DncCreateSchema(ma.Schema):
    phone = f.String(required=True, validate=v.Length(1, 40))
    campaign_id = f.Integer(
        allow_none=True, **described("The campaign's own list; none: the global list.")
    )
    expires_at = f.AwareDateTime(
        allow_none=True, **described("From then on the number may be called again.")
    )
    reason = f.String(load_default="", validate=v.Length(max=500))


class DncImportFormSchema(ma.Schema):
    file = file_field("One number a line, or a CSV with a phone column.")
    campaign_id = f.Integer(allow_none=True)
    expires_at = f.AwareDateTime(allow_none=True)


class DncImportSchema(ma.Schema):
    lines = f.Integer()
    added = f.Integer()
    renewed = f.Integer()
    invalid = f.Integer()
    errors = f.List(f.Nested(RowErrorSchema))


# -- attempts and dispositions


class PeriodArgs(ma.Schema):
    from_ = f.Date(data_key="from", **described("First day, in your time zone (default: today)."))
    to = f.Date(**described("Last day, included (default: the first day)."))


class AttemptArgs(PageArgs, PeriodArgs):
    campaign_id = f.Integer()
    outcome = f.String(validate=v.OneOf(CALL_OUTCOMES))
    agent_id = f.Integer()
    phone = f.String(validate=v.Length(1, 40))
    disposition = f.String(validate=v.Length(1, 40))


class AttemptPageSchema(ma.Schema):
    data = f.List(f.Nested(AttemptSchema))
    pagination = f.Nested(PaginationSchema)


class DispositionArgs(PageArgs, PeriodArgs):
    campaign_id = f.Integer()
    agent_id = f.Integer()
    code = f.String(validate=v.Length(1, 40))


class DispositionPageSchema(ma.Schema):
    data = f.List(f.Nested(DispositionSchema))
    pagination = f.Nested(PaginationSchema)


class DispositionCreateSchema(ma.Schema):
    code = f.String(required=True, validate=v.Length(1, 40))
    notes = f.String(load_default="", validate=v.Length(max=4000))
    callback_at = f.AwareDateTime(allow_none=True)
    personal_callback = f.Boolean(load_default=False)
    promise_amount = f.Decimal(
        allow_none=True, places=2, as_string=True, **described("A promise to pay: above 0.")
    )
    promise_date = f.Date(allow_none=True)
    party = f.String(
        allow_none=True,
        validate=v.OneOf(PARTIES),
        **described(
            "Collections: who the agent spoke with (right, wrong or third party); RPC, PTP "
            "and REFUSED are refused with another than the right party."
        ),
    )


# -- agents


class AgentSchema(ma.Schema):
    user_id = f.Integer()
    username = f.String()
    sip_uri = f.String(allow_none=True)
    active = f.Boolean()
    state = f.String(**described(f"One of {', '.join(AGENT_STATES)}."))
    state_since = f.DateTime(allow_none=True)
    seconds_in_state = f.Float(allow_none=True)
    campaign_id = f.Integer(allow_none=True)
    pause_code = f.String(allow_none=True)
    pause_after_call = f.String(allow_none=True)
    node = f.String(allow_none=True)
    current_attempt_id = f.Integer(allow_none=True)
    calls_taken = f.Integer()
    screen_pop = f.Dict(**described("What the agent's screen shows of the current call."))


class AgentPageSchema(ma.Schema):
    data = f.List(f.Nested(AgentSchema))
    pagination = f.Nested(PaginationSchema)


class AgentArgs(PageArgs):
    campaign_id = f.Integer()
    state = f.String(validate=v.OneOf(AGENT_STATES))


class LoginSchema(ma.Schema):
    campaign_id = f.Integer(required=True)
    phone_uri = f.String(
        validate=v.Regexp(r"^sips?:[^\s<>\"@]+@[^\s<>\"@]+$", error="a SIP URI: sip:user@host")
    )


class PauseSchema(ma.Schema):
    code = f.String(required=True, validate=v.Length(1, 40), **described("A pause code."))


class TransferSchema(ma.Schema):
    target = f.String(
        required=True, validate=v.Length(1, 80), **described("An agent's user name or a number.")
    )


class DialSchema(ma.Schema):
    number = f.String(required=True, validate=v.Length(1, 40))
    region = f.String(load_default="US", validate=v.Regexp(r"^[A-Z]{2}$", error="e.g. US"))


class ActionSchema(ma.Schema):
    user_id = f.Integer()
    action = f.String()
    result = f.String()
    agent = f.Nested(AgentSchema)


# -- reports


class SummaryArgs(PeriodArgs):
    pass


class ReportArgs(PeriodArgs):
    campaign_id = f.Integer()


class OutcomesSchema(ma.Schema):
    attempts = f.Integer()
    by_outcome = f.Dict(keys=f.String(), values=f.Integer())
    live_answers = f.Integer()
    abandoned = f.Integer()
    abandon_rate = f.Float()
    connected = f.Integer()
    talk_seconds = f.Float()
    dialing_hours = f.Integer()
    contacts_per_hour = f.Float()


class DayOutcomesSchema(OutcomesSchema):
    day = f.String()


class PeriodSchema(ma.Schema):
    from_ = f.Date(data_key="from")
    to = f.Date()
    time_zone = f.String()
    start = f.DateTime()
    end = f.DateTime()


class SummarySchema(OutcomesSchema):
    period = f.Nested(PeriodSchema)
    campaign_id = f.Integer()
    name = f.String()
    kind = f.String()
    by_day = f.List(f.Nested(DayOutcomesSchema))
    dispositions = f.Dict(keys=f.String(), values=f.Integer())
    promises_to_pay = f.Dict()
    leads_by_status = f.Dict(keys=f.String(), values=f.Integer())
    last_30_days = f.Dict()


class AgentFiguresSchema(ma.Schema):
    user_id = f.Integer()
    username = f.String()
    logged_in_seconds = f.Float()
    ready_seconds = f.Float()
    talk_seconds = f.Float()
    wrap_seconds = f.Float()
    pause_seconds = f.Float()
    pause_by_code = f.Dict(keys=f.String(), values=f.Float())
    calls = f.Integer()
    contacts_per_hour = f.Float()


class AgentReportSchema(ma.Schema):
    period = f.Nested(PeriodSchema)
    agents = f.List(f.Nested(AgentFiguresSchema))


class ComplianceSchema(ma.Schema):
    period = f.Nested(PeriodSchema)
    abandon_30_days = f.List(f.Dict())
    gate_refusals = f.Dict(**described("Campaign -> reason -> dials refused."))
    regulation_f = f.List(f.Dict())
    regulation_f_as_of = f.String(
        allow_none=True,
        **described(
            "When the Regulation F counters were read (UTC, ISO 8601; at most a minute old)."
        ),
    )
    opt_outs = f.Dict(**described("Campaign (or global) -> source -> numbers."))
