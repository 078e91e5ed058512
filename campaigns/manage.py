"""Setting up and steering campaigns and their agents: what the CLI, the console and the API
all do, in one place. Functions take a session; each commits its own change."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campaigns import dnc, live
from campaigns.agents import add_to_campaign
from campaigns.db import begin_write
from campaigns.dispositions import install_catalogue
from campaigns.models import CAMPAIGN_KINDS, DIAL_MODES, Campaign, LeadList, User, utcnow

# Start, pause and stop, as the status each asks the nodes for.
ACTIONS = {"start": "active", "pause": "paused", "stop": "stopped"}
# An account that cannot log in to the console until a password is set for it.
NO_PASSWORD = "!"


class SetupError(ValueError):
    pass


def e164(value: str, field: str, region: str = "US") -> str:
    try:
        return dnc.normalise(value, region)
    except dnc.DncError as error:
        raise SetupError(f"{field}: {error}") from None


def create_campaign(session: Session, name: str, kind: str, **settings: Any) -> Campaign:
    """A campaign with the compliant defaults, its default lead list and its kind's catalogue
    of dispositions."""
    name = name.strip()
    if not name:
        raise SetupError("name: a campaign needs a name")
    begin_write(session)
    if kind not in CAMPAIGN_KINDS:
        raise SetupError(f"kind: {kind!r} is not one of {', '.join(CAMPAIGN_KINDS)}")
    mode = settings.get("dial_mode", "predictive")
    if mode not in DIAL_MODES:
        raise SetupError(f"dial_mode: {mode!r} is not one of {', '.join(DIAL_MODES)}")
    for field in ("caller_id", "callback_number"):
        if settings.get(field):
            settings[field] = e164(settings[field], field)
    campaign = Campaign(name=name, kind=kind, **settings)
    campaign.lists.append(LeadList(name="default"))
    session.add(campaign)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise SetupError(f"name: a campaign named {name!r} exists already") from None
    install_catalogue(session, campaign)
    session.commit()
    return campaign


def campaign_named(session: Session, name: str) -> Campaign:
    campaign = session.scalar(select(Campaign).where(Campaign.name == name))
    if campaign is None:
        raise SetupError(f"no campaign named {name!r}")
    return campaign


def steer(session: Session, campaign: Campaign, action: str) -> str:
    """Start, pause or stop a campaign: the nodes act on it within a second. Returns the new
    status."""
    status = ACTIONS.get(action)
    if status is None:
        raise SetupError(f"{action!r} is not one of {', '.join(ACTIONS)}")
    begin_write(session)
    session.refresh(campaign)
    if action == "start" and campaign.dial_mode != "preview" and not campaign.trunk_name:
        raise SetupError(f"campaign {campaign.name!r} has no trunk: set one before starting it")
    campaign.status = status
    campaign.updated_at = utcnow()
    live.commit_and_wake(session)
    return status


def add_agent(
    session: Session, username: str, phone_uri: str, campaign: Campaign | None = None
) -> User:
    """An agent account (created on first use, its phone updated otherwise), in the
    campaign's agent group when one is given."""
    if not phone_uri.startswith(("sip:", "sips:")) or "@" not in phone_uri:
        raise SetupError(f"phone: {phone_uri!r} is not a SIP URI (sip:user@host[:port])")
    begin_write(session)
    if campaign is not None:
        session.refresh(campaign)
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        user = User(username=username, password_hash=NO_PASSWORD, role="agent")
        session.add(user)
    user.sip_uri = phone_uri
    session.flush()
    if campaign is not None:
        add_to_campaign(session, user.id, campaign)
    session.commit()
    return user
