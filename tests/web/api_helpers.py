"""Clients of the REST API holding each role's token, the error shape every refusal has, and a
campaign with a day of calls for the reports and call detail."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from campaigns.dispositions import install_catalogue
from campaigns.models import (
    AgentSession,
    ApiToken,
    CallAttempt,
    Campaign,
    CampaignHour,
    Disposition,
    DncEntry,
    GateRefusal,
    Lead,
    LeadList,
    User,
)
from tests.web.conftest import USERNAMES
from web import db as web_db
from web.tokens import new_token

# A day of calls, in UTC; 02:30 on that day is still the day before in New York.
DAY = dt.date(2026, 3, 10)
NOON = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)
FORMULA = '=HYPERLINK("http://x","y")'


def token_for(app: Flask, role: str, name: str = "test") -> str:
    """A token of the role's test user, made as the token page makes one."""
    token, key, digest = new_token()
    with app.app_context(), Session(web_db.engine()) as session:
        user = session.scalars(select(User).where(User.username == USERNAMES[role])).one()
        session.add(ApiToken(user_id=user.id, name=name, key=key, secret_sha256=digest))
        session.commit()
    return token


class ApiClient:
    """A program holding a token: every request carries `Authorization: Bearer`."""

    def __init__(self, client: FlaskClient, token: str | None) -> None:
        self.client = client
        self.token = token

    def open(self, method: str, url: str, **kwargs: Any) -> TestResponse:
        headers = dict(kwargs.pop("headers", {}))
        if self.token is not None:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return self.client.open(url, method=method, headers=headers, **kwargs)

    def get(self, url: str, **kwargs: Any) -> TestResponse:
        return self.open("GET", url, **kwargs)

    def post(self, url: str, json: Any = None, **kwargs: Any) -> TestResponse:
        if json is not None:
            kwargs["json"] = json
        return self.open("POST", url, **kwargs)

    def patch(self, url: str, json: Any) -> TestResponse:
        return self.open("PATCH", url, json=json)

    def delete(self, url: str) -> TestResponse:
        return self.open("DELETE", url)


def api_as(app: Flask, role: str) -> ApiClient:
    return ApiClient(app.test_client(), token_for(app, role))


def error_of(response: TestResponse, status: int, code: str) -> dict[str, Any]:
    """The response's error, after checking its status, its code and the one shape."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"code", "message", "field"} <= set(error), error
    assert error["code"] == code, error
    assert error["message"], error
    return error  # type: ignore[no-any-return]


def every_page(api: ApiClient, url: str) -> list[dict[str, Any]]:
    """Follows the `next` links from `url` to the last page."""
    items: list[dict[str, Any]] = []
    following: str | None = url
    while following:
        response = api.get(following)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        items += body["data"]
        following = body["pagination"]["next"]
        if following:
            assert response.headers["Link"] == f'<{following}>; rel="next"'
    return items


def agent_id(app: Flask) -> int:
    with app.app_context():
        return (
            web_db.session()
            .scalars(select(User.id).where(User.username == USERNAMES["agent"]))
            .one()
        )


def seed_calls(app: Flask, recording: str | None = None) -> dict[str, Any]:
    """A collections campaign (agnes in its agent group) with three leads and a day of calls:
    a connected call with a promise to pay and a recording, a machine, an abandoned answer at
    02:30 UTC (the day before in New York), and hourly sums, gate refusals and opt-outs."""
    from campaigns.agents import add_to_campaign

    with app.app_context(), Session(web_db.engine()) as session:
        campaign = Campaign(
            name="Collections Q3",
            kind="collections",
            trunk_name="carrier1",
            caller_id="+12125550100",
            seller_name="Acme",
        )
        campaign.lists.append(LeadList(name="default"))
        session.add(campaign)
        session.flush()
        install_catalogue(session, campaign)
        agent = session.scalars(select(User).where(User.username == USERNAMES["agent"])).one()
        add_to_campaign(session, agent.id, campaign)
        leads = []
        for i, name in enumerate((FORMULA, "Bob", "-- call after 5pm")):
            lead = Lead(
                campaign_id=campaign.id,
                list_id=campaign.lists[0].id,
                phone_e164=f"+1212555017{i}",
                phone_type="fixed_line",
                region="US",
                first_name=name,
                last_name="Doe",
                account_ref=f"AC-{i}",
            )
            session.add(lead)
            leads.append(lead)
        session.flush()
        connected = CallAttempt(
            lead_id=leads[0].id,
            campaign_id=campaign.id,
            phone_e164=leads[0].phone_e164,
            account_ref="AC-0",
            started_at=NOON,
            answered_at=NOON + dt.timedelta(seconds=8),
            bridged_at=NOON + dt.timedelta(seconds=9),
            ended_at=NOON + dt.timedelta(seconds=129),
            outcome="human",
            sip_code=200,
            agent_id=agent.id,
            conversation=True,
            recording_path=recording,
        )
        machine = CallAttempt(
            lead_id=leads[1].id,
            campaign_id=campaign.id,
            phone_e164=leads[1].phone_e164,
            account_ref="AC-1",
            started_at=NOON - dt.timedelta(hours=1),
            ended_at=NOON - dt.timedelta(hours=1) + dt.timedelta(seconds=30),
            outcome="machine",
            sip_code=200,
        )
        abandoned = CallAttempt(
            lead_id=leads[2].id,
            campaign_id=campaign.id,
            phone_e164=leads[2].phone_e164,
            account_ref="AC-2",
            started_at=dt.datetime(2026, 3, 10, 2, 30, tzinfo=dt.UTC),
            ended_at=dt.datetime(2026, 3, 10, 2, 31, tzinfo=dt.UTC),
            outcome="human",
            abandoned=True,
            sip_code=200,
        )
        session.add_all([connected, machine, abandoned])
        session.flush()
        session.add(
            Disposition(
                attempt_id=connected.id,
                lead_id=leads[0].id,
                agent_id=agent.id,
                code="PTP",
                notes=FORMULA,
                promise_amount=Decimal("250.00"),
                promise_date=DAY + dt.timedelta(days=7),
                created_at=NOON + dt.timedelta(minutes=3),
            )
        )
        # The scheduler's hourly sums, as dialer/node/jobs.py roll_up_hours writes them.
        for hour, values in (
            (dt.datetime(2026, 3, 10, 2, tzinfo=dt.UTC), {"human": 1, "live": 1, "abandoned": 1}),
            (NOON - dt.timedelta(hours=1), {"machine": 1}),
            (NOON, {"human": 1, "live": 1, "connected": 1, "talk_s": 120.0}),
        ):
            session.add(CampaignHour(campaign_id=campaign.id, hour=hour, attempts=1, **values))
        session.add(
            GateRefusal(campaign_id=campaign.id, hour=NOON, reason="calling_hours", count=4)
        )
        session.add(
            DncEntry(
                phone_e164=leads[1].phone_e164,
                scope="campaign",
                campaign_id=campaign.id,
                source="opt_out_key",
                created_at=NOON,
            )
        )
        session.add(
            AgentSession(
                user_id=agent.id,
                campaign_id=campaign.id,
                state="paused",
                pause_code="LOGIN",
                state_since=NOON - dt.timedelta(minutes=10),
            )
        )
        session.commit()
        return {
            "campaign_id": campaign.id,
            "lead_ids": [lead.id for lead in leads],
            "connected_id": connected.id,
            "machine_id": machine.id,
            "abandoned_id": abandoned.id,
            "agent_id": agent.id,
        }
