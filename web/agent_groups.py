"""Agent groups: who works which campaigns. An agent logs in to the campaigns of their groups
(`campaigns.agents.may_work`); a manager creates and renames groups, picks their members and
the campaigns they work. Every change is in the audit log with what it was before."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from campaigns.models import (
    AgentGroup,
    AgentGroupMember,
    AgentSession,
    Campaign,
    CampaignAgentGroup,
    User,
)
from web import audit, db
from web.permissions import allow

bp = Blueprint("agent_groups", __name__, url_prefix="/agent-groups")


class GroupForm(FlaskForm):
    name = StringField("Group name", validators=[DataRequired(), Length(max=120)])


def _group(session: Session, group_id: int) -> AgentGroup:
    return session.get(AgentGroup, group_id) or abort(404)


def _members(session: Session, group_id: int) -> list[User]:
    return list(
        session.scalars(
            select(User)
            .join(AgentGroupMember, AgentGroupMember.user_id == User.id)
            .where(AgentGroupMember.group_id == group_id)
            .order_by(User.username)
        )
    )


def _campaigns(session: Session, group_id: int) -> list[Campaign]:
    return list(
        session.scalars(
            select(Campaign)
            .join(CampaignAgentGroup, CampaignAgentGroup.campaign_id == Campaign.id)
            .where(CampaignAgentGroup.group_id == group_id)
            .order_by(Campaign.name)
        )
    )


def _snapshot(session: Session, group: AgentGroup) -> dict[str, Any]:
    return {
        "name": group.name,
        "members": [u.username for u in _members(session, group.id)],
        "campaigns": [c.name for c in _campaigns(session, group.id)],
    }


def _name_taken(session: Session, name: str, group_id: int | None) -> bool:
    found = session.scalar(select(AgentGroup.id).where(func.lower(AgentGroup.name) == name.lower()))
    return found is not None and found != group_id


def _ids(field: str, known: set[int]) -> list[int] | str:
    """The ids ticked in a list of checkboxes, or why they cannot be taken."""
    chosen = []
    for raw in request.form.getlist(field):
        if not raw.isdigit() or int(raw) not in known:
            return f"{field}: {raw!r} is not one of the choices offered"
        chosen.append(int(raw))
    return sorted(set(chosen))


@bp.route("/")
@allow("agents.manage")
def index() -> Any:
    session = db.session()
    groups = session.scalars(select(AgentGroup).order_by(AgentGroup.name)).all()
    members: dict[int, list[str]] = {}
    for group_id, username in session.execute(
        select(AgentGroupMember.group_id, User.username)
        .join(User, User.id == AgentGroupMember.user_id)
        .order_by(User.username)
    ):
        members.setdefault(group_id, []).append(username)
    campaigns: dict[int, list[str]] = {}
    for group_id, name in session.execute(
        select(CampaignAgentGroup.group_id, Campaign.name)
        .join(Campaign, Campaign.id == CampaignAgentGroup.campaign_id)
        .order_by(Campaign.name)
    ):
        campaigns.setdefault(group_id, []).append(name)
    agents = session.scalars(select(User).where(User.role == "agent").order_by(User.username)).all()
    groups_of: dict[str, list[str]] = {}
    for group in groups:
        for username in members.get(group.id, []):
            groups_of.setdefault(username, []).append(group.name)
    states = {
        user_id: state
        for user_id, state in session.execute(select(AgentSession.user_id, AgentSession.state))
    }
    return render_template(
        "agent_groups/index.html",
        groups=groups,
        members=members,
        campaigns=campaigns,
        agents=agents,
        groups_of=groups_of,
        states=states,
        form=GroupForm(),
    )


@bp.route("/", methods=["POST"])
@allow("agents.manage")
def create() -> Any:
    session = db.session()
    form = GroupForm()
    if not form.validate_on_submit():
        flash("Not created: a group needs a name of at most 120 characters.", "error")
        return redirect(url_for("agent_groups.index"))
    name = form.name.data.strip()
    if _name_taken(session, name, None):
        flash(f"Not created: a group named {name!r} exists already.", "error")
        return redirect(url_for("agent_groups.index"))
    group = AgentGroup(name=name)
    session.add(group)
    session.flush()
    audit.record(session, "create", "agent_group", group.id, after={"name": name})
    session.commit()
    flash(f"Group {name} created: choose its members and campaigns.", "success")
    return redirect(url_for("agent_groups.show", group_id=group.id))


@bp.route("/<int:group_id>")
@allow("agents.manage")
def show(group_id: int) -> Any:
    session = db.session()
    group = _group(session, group_id)
    users = session.scalars(
        select(User).where(User.active.is_(True)).order_by(User.role.desc(), User.username)
    ).all()
    return render_template(
        "agent_groups/show.html",
        group=group,
        form=GroupForm(name=group.name),
        users=[u for u in users if u.role == "agent"],
        staff=[u for u in users if u.role != "agent"],
        member_ids={u.id for u in _members(session, group.id)},
        campaigns=session.scalars(select(Campaign).order_by(Campaign.name)).all(),
        campaign_ids={c.id for c in _campaigns(session, group.id)},
    )


@bp.route("/<int:group_id>/rename", methods=["POST"])
@allow("agents.manage")
def rename(group_id: int) -> Any:
    session = db.session()
    group = _group(session, group_id)
    form = GroupForm()
    back = redirect(url_for("agent_groups.show", group_id=group.id))
    if not form.validate_on_submit():
        flash("Not renamed: a group needs a name of at most 120 characters.", "error")
        return back
    name = form.name.data.strip()
    if _name_taken(session, name, group.id):
        flash(f"Not renamed: a group named {name!r} exists already.", "error")
        return back
    before = {"name": group.name}
    group.name = name
    audit.record(session, "update", "agent_group", group.id, before=before, after={"name": name})
    session.commit()
    flash(f"Renamed to {name}.", "success")
    return back


@bp.route("/<int:group_id>/members", methods=["POST"])
@allow("agents.manage")
def members(group_id: int) -> Any:
    session = db.session()
    group = _group(session, group_id)
    back = redirect(url_for("agent_groups.show", group_id=group.id))
    known = set(session.scalars(select(User.id).where(User.active.is_(True))))
    chosen = _ids("members", known)
    if isinstance(chosen, str):
        flash(f"Not saved: {chosen}.", "error")
        return back
    before = _snapshot(session, group)
    session.execute(delete(AgentGroupMember).where(AgentGroupMember.group_id == group.id))
    session.add_all(AgentGroupMember(group_id=group.id, user_id=user_id) for user_id in chosen)
    session.flush()
    after = _snapshot(session, group)
    audit.record(
        session,
        "members",
        "agent_group",
        group.id,
        before={"members": before["members"]},
        after={"members": after["members"]},
    )
    session.commit()
    flash(f"{group.name}: {len(chosen)} member{'s' if len(chosen) != 1 else ''}.", "success")
    return back


@bp.route("/<int:group_id>/campaigns", methods=["POST"])
@allow("agents.manage")
def campaigns(group_id: int) -> Any:
    session = db.session()
    group = _group(session, group_id)
    back = redirect(url_for("agent_groups.show", group_id=group.id))
    known = set(session.scalars(select(Campaign.id)))
    chosen = _ids("campaigns", known)
    if isinstance(chosen, str):
        flash(f"Not saved: {chosen}.", "error")
        return back
    before = _snapshot(session, group)
    session.execute(delete(CampaignAgentGroup).where(CampaignAgentGroup.group_id == group.id))
    session.add_all(
        CampaignAgentGroup(group_id=group.id, campaign_id=campaign_id) for campaign_id in chosen
    )
    session.flush()
    after = _snapshot(session, group)
    audit.record(
        session,
        "campaigns",
        "agent_group",
        group.id,
        before={"campaigns": before["campaigns"]},
        after={"campaigns": after["campaigns"]},
    )
    session.commit()
    flash(f"{group.name} works {len(chosen)} campaign{'s' if len(chosen) != 1 else ''}.", "success")
    return back


@bp.route("/<int:group_id>/delete", methods=["POST"])
@allow("agents.manage")
def remove(group_id: int) -> Any:
    session = db.session()
    group = _group(session, group_id)
    before = _snapshot(session, group)
    session.delete(group)
    audit.record(session, "delete", "agent_group", group_id, before=before)
    session.commit()
    flash(
        f"Group {before['name']} deleted. Agents logged in through it keep their session "
        "until they log out.",
        "success",
    )
    return redirect(url_for("agent_groups.index"))
