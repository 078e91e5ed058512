"""Campaigns: list, read, create, change settings, start / pause / stop, the disposition
catalogue. The same rules as the console's campaign form (web.campaigns)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from campaigns import callerids, live
from campaigns.dispositions import install_catalogue
from campaigns.manage import ACTIONS, SetupError, steer
from campaigns.models import CallerId, Campaign, DispositionCode, LeadList, utcnow
from dialer.prompts import safe_harbor_text, voicemail_text
from web import audit, db
from web.api import schemas
from web.api.base import blueprint, found
from web.api.errors import fail, invalid
from web.api.paging import decode, page
from web.callerids import AUDITED as CALLER_ID_AUDITED
from web.campaigns import BUTTONS, SETTINGS, new_campaign_defaults, start_problems
from web.permissions import allow
from web.trunks import configured_trunks

bp = blueprint("campaigns", "/campaigns", "Campaigns: settings, start, pause and stop.")


@bp.route("")
@allow("campaigns.view")
@bp.arguments(schemas.CampaignArgs, location="query")
@bp.response(200, schemas.CampaignPageSchema)
def index(args: dict[str, Any]) -> Any:
    """Campaigns, by id."""
    query = select(Campaign).order_by(Campaign.id)
    after = decode(args.get("cursor"), int)
    if after is not None:
        query = query.where(Campaign.id > after[0])
    for name in ("status", "kind"):
        if name in args:
            query = query.where(getattr(Campaign, name) == args[name])
    rows = list(db.session().scalars(query.limit(args["limit"] + 1)))
    more = len(rows) > args["limit"]
    rows = rows[: args["limit"]]
    return page(rows, [rows[-1].id] if more else None, args["limit"])


@bp.route("/<int:campaign_id>")
@allow("campaigns.view")
@bp.response(200, schemas.CampaignSchema)
def show(campaign_id: int) -> Any:
    """One campaign's settings."""
    return found(Campaign, campaign_id)


def _apply(campaign: Campaign, settings: dict[str, Any]) -> None:
    """Copies validated settings into the campaign, checking what needs the database or the
    SIP configuration (a 422 naming the field otherwise)."""
    session = db.session()
    if "name" in settings:
        name = settings["name"].strip()
        taken = session.scalar(select(Campaign.id).where(Campaign.name == name))
        if not name:
            invalid("name", settings["name"], "a campaign needs a name")
        if taken is not None and taken != campaign.id:
            fail(
                409,
                "conflict",
                f"name={name!r}: another campaign has this name",
                field="name",
                value=name,
            )
        settings["name"] = name
    if settings.get("trunk_name"):
        names, problem = configured_trunks()
        if settings["trunk_name"] not in names:
            invalid(
                "trunk_name",
                settings["trunk_name"],
                f"not a trunk of the SIP configuration ({', '.join(names) or problem or 'none'})",
            )
    if settings.get("safe_harbor_message"):
        try:
            safe_harbor_text("Seller", "+12125550100", settings["safe_harbor_message"])
        except ValueError as error:
            invalid("safe_harbor_message", settings["safe_harbor_message"], str(error))
    if settings.get("amd_action", campaign.amd_action) == "message":
        message = settings.get("voicemail_message", campaign.voicemail_message) or ""
        seller = settings.get("seller_name", campaign.seller_name) or ""
        callback = settings.get("callback_number", campaign.callback_number) or settings.get(
            "caller_id", campaign.caller_id
        )
        try:
            voicemail_text(message, seller, callback)
        except ValueError as error:
            invalid("voicemail_message", message, str(error))
    if "holidays" in settings:
        settings["holidays"] = sorted({day.isoformat() for day in settings["holidays"]})
    if "calling_days" in settings:
        settings["calling_days"] = sorted(set(settings["calling_days"]))
    if "pause_codes" in settings:
        settings["pause_codes"] = list(dict.fromkeys(settings["pause_codes"]))
    start = settings.get("calling_start", campaign.calling_start)
    end = settings.get("calling_end", campaign.calling_end)
    if end <= start:
        field = "calling_end" if "calling_end" in settings else "calling_start"
        invalid(field, settings[field], f"the window {start}-{end} must end after it starts")
    for name, value in settings.items():
        setattr(campaign, name, value)


def _check_default_disposition(campaign: Campaign) -> None:
    code = db.session().scalar(
        select(DispositionCode).where(
            DispositionCode.campaign_id == campaign.id,
            DispositionCode.code == campaign.default_disposition,
        )
    )
    if code is None or code.is_opt_out:
        codes = db.session().scalars(
            select(DispositionCode.code).where(
                DispositionCode.campaign_id == campaign.id, ~DispositionCode.is_opt_out
            )
        )
        invalid(
            "default_disposition",
            campaign.default_disposition,
            f"not one of the campaign's dispositions that are not opt-outs: {', '.join(codes)}",
        )


@bp.route("", methods=["POST"])
@allow("campaigns.edit")
@bp.arguments(schemas.CampaignCreateSchema)
@bp.response(201, schemas.CampaignSchema)
def create(settings: dict[str, Any]) -> Any:
    """A new draft campaign with its kind's dispositions and a default lead list."""
    session = db.session()
    kind = settings.pop("kind")
    campaign = Campaign(**new_campaign_defaults(kind))
    _apply(campaign, settings)
    campaign.lists.append(LeadList(name="default"))
    session.add(campaign)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        fail(
            409,
            "conflict",
            f"name={campaign.name!r}: another campaign took this name",
            field="name",
            value=campaign.name,
        )
    install_catalogue(session, campaign)
    _check_default_disposition(campaign)
    audit.record(
        session, "create", "campaign", campaign.id, after=audit.snapshot(campaign, SETTINGS)
    )
    session.commit()
    return campaign, 201, {"Location": f"/api/v1/campaigns/{campaign.id}"}


@bp.route("/<int:campaign_id>", methods=["PATCH"])
@allow("campaigns.edit")
@bp.arguments(schemas.CampaignSettingsSchema)
@bp.response(200, schemas.CampaignSchema)
def update(settings: dict[str, Any], campaign_id: int) -> Any:
    """Changes the settings sent; the others stay. A running campaign's nodes take them at
    once."""
    session = db.session()
    campaign = found(Campaign, campaign_id)
    before = audit.snapshot(campaign, SETTINGS)
    _apply(campaign, settings)
    _check_default_disposition(campaign)
    campaign.updated_at = utcnow()
    audit.record(
        session,
        "update",
        "campaign",
        campaign.id,
        before=before,
        after=audit.snapshot(campaign, SETTINGS),
    )
    live.commit_and_wake(session)
    return campaign


def _steer(campaign_id: int, action: str) -> Any:
    session = db.session()
    campaign = found(Campaign, campaign_id)
    if action not in BUTTONS[campaign.status]:
        allowed = ", ".join(BUTTONS[campaign.status])
        fail(409, "conflict", f"a {campaign.status} campaign cannot {action} (it can: {allowed})")
    if action == "start":
        problems = start_problems(campaign)
        if problems:
            fail(409, "not_ready", "not started: " + " ".join(problems), problems=problems)
    before = {"status": campaign.status}
    audit.record(
        session, action, "campaign", campaign.id, before=before, after={"status": ACTIONS[action]}
    )
    try:
        steer(session, campaign, action)
    except SetupError as error:
        session.rollback()
        fail(409, "not_ready", f"not changed: {error}")
    return campaign


@bp.route("/<int:campaign_id>/start", methods=["POST"])
@allow("campaigns.control")
@bp.response(200, schemas.CampaignSchema)
def start(campaign_id: int) -> Any:
    """Asks the nodes to dial the campaign (a draft, paused or stopped one)."""
    return _steer(campaign_id, "start")


@bp.route("/<int:campaign_id>/pause", methods=["POST"])
@allow("campaigns.control")
@bp.response(200, schemas.CampaignSchema)
def pause(campaign_id: int) -> Any:
    """No new calls; calls and agents stay."""
    return _steer(campaign_id, "pause")


@bp.route("/<int:campaign_id>/stop", methods=["POST"])
@allow("campaigns.control")
@bp.response(200, schemas.CampaignSchema)
def stop(campaign_id: int) -> Any:
    """No new calls, and ringing calls are cancelled."""
    return _steer(campaign_id, "stop")


@bp.route("/<int:campaign_id>/dispositions")
@allow("campaigns.view")
@bp.response(200, schemas.DispositionCodeSchema(many=True))
def catalogue(campaign_id: int) -> Any:
    """The dispositions the campaign's agents choose from."""
    campaign = found(Campaign, campaign_id)
    return (
        db.session()
        .scalars(
            select(DispositionCode)
            .where(DispositionCode.campaign_id == campaign.id)
            .order_by(DispositionCode.id)
        )
        .all()
    )


@bp.route("/<int:campaign_id>/caller-ids")
@allow("campaigns.view")
@bp.arguments(schemas.CallerIdArgs, location="query")
@bp.response(200, schemas.CallerIdReportSchema)
def caller_ids(args: dict[str, Any], campaign_id: int) -> Any:
    """The caller-ID pool, and each number's calls today and answer rate against the
    campaign's over the last `days` days (numbers the calls showed outside the pool too)."""
    campaign = found(Campaign, campaign_id)
    session = db.session()
    figures = callerids.report(session, campaign, utcnow(), args["days"]).as_json()
    return {**figures, "pool": callerids.pool(session, campaign.id)}


@bp.route("/<int:campaign_id>/caller-ids", methods=["POST"])
@allow("callerids.manage")
@bp.arguments(schemas.CallerIdCreateSchema)
@bp.response(201, schemas.CallerIdSchema)
def add_caller_id(body: dict[str, Any], campaign_id: int) -> Any:
    """Adds a number to the pool (a number there already gets the new cap)."""
    campaign = found(Campaign, campaign_id)
    session = db.session()
    try:
        e164 = callerids.parse_number(body["phone"])
    except callerids.CallerIdError as error:
        invalid("phone", body["phone"], f"{error}; a phone number, e.g. +12125550100")
    existing = session.scalar(
        select(CallerId).where(CallerId.campaign_id == campaign.id, CallerId.phone_e164 == e164)
    )
    before = audit.snapshot(existing, CALLER_ID_AUDITED) if existing is not None else None
    entry = callerids.add(session, campaign, e164, body.get("daily_cap"))
    after = audit.snapshot(entry, CALLER_ID_AUDITED)
    audit.record(
        session, "update" if before else "add", "caller_id", entry.id, before=before, after=after
    )
    session.commit()
    return entry, 201


@bp.route("/<int:campaign_id>/caller-ids/<int:number_id>", methods=["DELETE"])
@allow("callerids.manage")
@bp.response(204)
def remove_caller_id(campaign_id: int, number_id: int) -> Any:
    """Takes a number out of the pool (its calls stay in the figures)."""
    session = db.session()
    entry = found(CallerId, number_id, "caller ID")
    if entry.campaign_id != campaign_id:
        fail(404, "not_found", f"campaign {campaign_id} has no caller ID with id {number_id}")
    before = audit.snapshot(entry, CALLER_ID_AUDITED)
    session.delete(entry)
    audit.record(session, "remove", "caller_id", number_id, before=before)
    session.commit()
    return None
