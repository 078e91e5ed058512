"""Agents: their live state (from agent_sessions, as the nodes and the console see it), and
what an agent does, through the agent service (campaigns.agents): log in to a campaign, go
ready, pause with a code, log out, hang up, transfer, dial a number, disposition a call. An
agent acts for themselves; staff may act for any agent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask_login import current_user
from sqlalchemy import select

from campaigns import agents as service
from campaigns.models import AgentSession, User, utcnow
from web import audit, db
from web.api import schemas
from web.api.base import blueprint, campaign_or_invalid
from web.api.errors import fail, invalid
from web.api.paging import decode, page
from web.permissions import allow

bp = blueprint("agents", "/agents", "Agents: live state and their moves.")


def _state(user: User, row: AgentSession | None) -> dict[str, Any]:
    now = utcnow()
    return {
        "user_id": user.id,
        "username": user.username,
        "sip_uri": user.sip_uri,
        "active": user.active,
        "state": row.state if row else "logged_out",
        "state_since": row.state_since if row else None,
        "seconds_in_state": round((now - row.state_since).total_seconds(), 1) if row else None,
        "campaign_id": row.campaign_id if row else None,
        "pause_code": row.pause_code if row else None,
        "pause_after_call": row.pause_after_call if row else None,
        "node": row.node if row else None,
        "current_attempt_id": row.current_attempt_id if row else None,
        "calls_taken": row.calls_taken if row else 0,
        "screen_pop": dict(row.screen_pop or {}) if row else {},
    }


@bp.route("")
@allow("agents.view")
@bp.arguments(schemas.AgentArgs, location="query")
@bp.response(200, schemas.AgentPageSchema)
def index(args: dict[str, Any]) -> Any:
    """Agents with their live state, by user id."""
    query = (
        select(User, AgentSession)
        .outerjoin(AgentSession, AgentSession.user_id == User.id)
        .where(User.role == "agent")
        .order_by(User.id)
    )
    if "campaign_id" in args:
        campaign_or_invalid(args["campaign_id"])
        query = query.where(AgentSession.campaign_id == args["campaign_id"])
    if "state" in args:
        if args["state"] == "logged_out":
            query = query.where(
                (AgentSession.state == "logged_out") | AgentSession.user_id.is_(None)
            )
        else:
            query = query.where(AgentSession.state == args["state"])
    after = decode(args.get("cursor"), int)
    if after is not None:
        query = query.where(User.id > after[0])
    rows = db.session().execute(query.limit(args["limit"] + 1)).all()
    more = len(rows) > args["limit"]
    rows = rows[: args["limit"]]
    return page([_state(u, s) for u, s in rows], [rows[-1][0].id] if more else None, args["limit"])


def _agent(user_id: int) -> User:
    """The agent the request acts for: an agent may act only for themselves."""
    if current_user.role == "agent" and int(current_user.id) != user_id:
        fail(
            403,
            "forbidden",
            f"an agent acts for themselves only (you are user {current_user.id})",
            field="user_id",
            value=user_id,
        )
    user = db.session().get(User, user_id)
    if user is None or user.role != "agent":
        fail(
            404, "not_found", f"there is no agent with id {user_id}", field="user_id", value=user_id
        )
    return user


def _current(user: User) -> dict[str, Any]:
    session = db.session()
    return _state(user, session.get(AgentSession, user.id, populate_existing=True))


@bp.route("/<int:user_id>")
@allow("agents.act")
@bp.response(200, schemas.AgentSchema)
def show(user_id: int) -> Any:
    """An agent's state and, on a call, the screen pop."""
    return _current(_agent(user_id))


def _act(user_id: int, action: str, move: Callable[[Any, int], Any], **details: Any) -> Any:
    user = _agent(user_id)
    session = db.session()
    try:
        result = move(session, user.id)
    except service.AgentError as error:
        session.rollback()
        if error.reason:
            fail(422, "gate_refused", str(error), reason=error.reason)
        fail(409, "agent_state", str(error))
    if current_user.id != user.id:
        # Staff acting for an agent is on record; an agent's own moves are the state log.
        audit.record(session, action, "agent_session", user.id, after=details or None)
        session.commit()
    return {
        "user_id": user.id,
        "action": action,
        "result": "" if result is None else str(result),
        "agent": _current(user),
    }


@bp.route("/<int:user_id>/login", methods=["POST"])
@allow("agents.act")
@bp.arguments(schemas.LoginSchema)
@bp.response(200, schemas.ActionSchema)
def login(body: dict[str, Any], user_id: int) -> Any:
    """Logs the agent in to a campaign of their groups, paused (LOGIN) until ready."""
    campaign = campaign_or_invalid(body["campaign_id"])
    assert campaign is not None

    def move(session: Any, agent_id: int) -> None:
        service.login(session, agent_id, campaign.id, phone_uri=body.get("phone_uri"))

    return _act(user_id, "login", move, campaign_id=campaign.id)


@bp.route("/<int:user_id>/ready", methods=["POST"])
@allow("agents.act")
@bp.response(200, schemas.ActionSchema)
def ready(user_id: int) -> Any:
    """Ready for calls."""
    return _act(user_id, "ready", service.ready)


@bp.route("/<int:user_id>/pause", methods=["POST"])
@allow("agents.act")
@bp.arguments(schemas.PauseSchema)
@bp.response(200, schemas.ActionSchema)
def pause(body: dict[str, Any], user_id: int) -> Any:
    """Pauses now, or after the current call (result: "paused" or "after call")."""
    return _act(user_id, "pause", lambda s, u: service.pause(s, u, body["code"]), code=body["code"])


@bp.route("/<int:user_id>/logout", methods=["POST"])
@allow("agents.act")
@bp.response(200, schemas.ActionSchema)
def logout(user_id: int) -> Any:
    return _act(user_id, "logout", service.logout)


@bp.route("/<int:user_id>/hangup", methods=["POST"])
@allow("agents.act")
@bp.response(200, schemas.ActionSchema)
def hangup(user_id: int) -> Any:
    """Hangs up the agent's call (the owning node does it within a second)."""
    return _act(user_id, "hangup", service.hangup)


@bp.route("/<int:user_id>/transfer", methods=["POST"])
@allow("agents.act")
@bp.arguments(schemas.TransferSchema)
@bp.response(200, schemas.ActionSchema)
def transfer(body: dict[str, Any], user_id: int) -> Any:
    """Blind transfer to a ready agent of the campaign (by user name) or an outside number."""
    return _act(
        user_id,
        "transfer",
        lambda s, u: service.transfer(s, u, body["target"]),
        target=body["target"],
    )


@bp.route("/<int:user_id>/dial", methods=["POST"])
@allow("agents.act")
@bp.arguments(schemas.DialSchema)
@bp.response(200, schemas.ActionSchema)
def dial(body: dict[str, Any], user_id: int) -> Any:
    """Dials a number for the agent through the compliance gate (a refusal is 422
    gate_refused with the gate's reason). Result: the lead's id."""
    return _act(
        user_id,
        "dial",
        lambda s, u: service.manual_dial(s, u, body["number"], body["region"]),
        number=body["number"],
    )


@bp.route("/<int:user_id>/disposition", methods=["POST"])
@allow("agents.act")
@bp.arguments(schemas.DispositionCreateSchema)
@bp.response(200, schemas.ActionSchema)
def disposition(body: dict[str, Any], user_id: int) -> Any:
    """Records what came of the agent's last call and makes them ready (or paused)."""
    if body["code"] == "PTP" and body.get("promise_amount") is None:
        invalid("promise_amount", None, "a promise to pay needs an amount above 0")
    return _act(
        user_id,
        "disposition",
        lambda s, u: service.disposition(
            s,
            u,
            body["code"],
            notes=body["notes"],
            callback_at=body.get("callback_at"),
            personal_callback=body["personal_callback"],
            promise_amount=body.get("promise_amount"),
            promise_date=body.get("promise_date"),
            party=body.get("party"),
        ),
        code=body["code"],
    )
