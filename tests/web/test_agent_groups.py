"""Agent groups as a manager keeps them: create, rename, members, campaigns, delete; every
change in the audit log with what it was before; an agent then works the group's campaigns."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.agents import may_work
from campaigns.models import AgentGroup, AuditLog, Campaign, User
from tests.web.conftest import USERNAMES, Console, seed_domain, signed_in
from web import db as web_db


def session_of(app: Flask) -> Session:
    return Session(app.extensions[web_db.ENGINE])


def ids_of(app: Flask) -> tuple[int, int]:
    with session_of(app) as session:
        agent = session.scalars(select(User.id).where(User.username == USERNAMES["agent"])).one()
        campaign = session.scalars(select(Campaign.id)).one()
    return agent, campaign


def audit_trail(app: Flask) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    with session_of(app) as session:
        rows = session.scalars(
            select(AuditLog).where(AuditLog.entity == "agent_group").order_by(AuditLog.id)
        ).all()
        return [(row.action, row.details) for row in rows]


def test_a_manager_builds_a_group_and_its_agent_works_its_campaign(
    app: Flask, manager: Console
) -> None:
    seed_domain(app)
    agent_id, campaign_id = ids_of(app)
    response = manager.post("/agent-groups/", {"name": "Evening shift"})
    assert response.status_code == 302
    group_id = int(response.location.rsplit("/", 1)[1])
    page = manager.get(response.location).get_data(as_text=True)
    assert "Evening shift" in page and USERNAMES["agent"] in page and "Spring sale" in page

    assert (
        manager.post(f"/agent-groups/{group_id}/members", {"members": [agent_id]}).status_code
        == 302
    )
    assert (
        manager.post(
            f"/agent-groups/{group_id}/campaigns", {"campaigns": [campaign_id]}
        ).status_code
        == 302
    )
    assert (
        manager.post(f"/agent-groups/{group_id}/rename", {"name": "Late shift"}).status_code == 302
    )
    page = manager.get("/agent-groups/").get_data(as_text=True)
    assert ">Late shift</a>" in page and ">Evening shift</a>" not in page
    assert "<td>Spring sale</td>" in page

    assert audit_trail(app) == [
        ("create", {"before": {}, "after": {"name": "Evening shift"}}),
        ("members", {"before": {"members": []}, "after": {"members": [USERNAMES["agent"]]}}),
        ("campaigns", {"before": {"campaigns": []}, "after": {"campaigns": ["Spring sale"]}}),
        ("update", {"before": {"name": "Evening shift"}, "after": {"name": "Late shift"}}),
    ]
    with session_of(app) as session:
        assert may_work(session, agent_id, campaign_id)

    manager.post(f"/agent-groups/{group_id}/delete")
    action, details = audit_trail(app)[-1]
    assert action == "delete" and details["before"] == {
        "name": "Late shift",
        "members": [USERNAMES["agent"]],
        "campaigns": ["Spring sale"],
    }
    with session_of(app) as session:
        assert session.get(AgentGroup, group_id) is None
        # seed_domain's own group still gives the agent the campaign.
        assert may_work(session, agent_id, campaign_id)


def test_a_name_taken_or_missing_and_an_unknown_member_are_refused(
    app: Flask, manager: Console
) -> None:
    ids = seed_domain(app)
    manager.post("/agent-groups/", {"name": "Day"})
    response = manager.post("/agent-groups/", {"name": "day"})
    assert response.location == "/agent-groups/"
    assert "a group named &#39;day&#39; exists already" in manager.get("/agent-groups/").get_data(
        as_text=True
    )
    manager.post("/agent-groups/", {"name": ""})
    assert "a group needs a name" in manager.get("/agent-groups/").get_data(as_text=True)
    group = ids["group_id"]
    response = manager.post(f"/agent-groups/{group}/members", {"members": ["99999"]})
    page = manager.get(response.location).get_data(as_text=True)
    assert "members: &#39;99999&#39; is not one of the choices offered" in page
    assert [a for a, _ in audit_trail(app)] == ["create"]


def test_an_agent_sees_only_the_campaigns_of_their_groups(app: Flask) -> None:
    seed_domain(app)
    agent_id, _ = ids_of(app)
    manager = signed_in(app, "manager")
    with session_of(app) as session:
        session.add(Campaign(name="Winter sale", kind="telemarketing"))
        session.commit()
        winter = session.scalars(select(Campaign.id).where(Campaign.name == "Winter sale")).one()
    agent = signed_in(app, "agent")
    assert "Winter sale" not in agent.get("/desk/").get_data(as_text=True)
    group = int(manager.post("/agent-groups/", {"name": "Winter"}).location.rsplit("/", 1)[1])
    manager.post(f"/agent-groups/{group}/members", {"members": [agent_id]})
    manager.post(f"/agent-groups/{group}/campaigns", {"campaigns": [winter]})
    assert "Winter sale" in agent.get("/desk/").get_data(as_text=True)
