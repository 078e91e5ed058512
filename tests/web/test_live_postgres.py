"""The live pages on PostgreSQL (consoles behind a load balancer): the agent's stream pushes
their moves and the screen pop, the dashboard's board and charts read the same figures."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.web.conftest import signed_in
from tests.web.sse import Events
from tests.web.test_dashboard import board_events, running_floor
from tests.web.test_desk import JSON, connect_call, desk_world, end_call, logged_in, stream
from tests.web.test_postgres import pg_app  # noqa: F401 - fixture

pytestmark = pytest.mark.postgres


def test_an_agents_call_and_the_floor_on_postgres(pg_app: Flask) -> None:  # noqa: F811
    ids = desk_world(pg_app)
    agent = logged_in(pg_app, ids)
    events: Events = stream(pg_app, agent)
    assert events.next("desk")[1]["label"] == "Paused: LOGIN"
    agent.post("/desk/ready", headers=JSON)
    assert events.next("desk")[1]["state"] == "ready"
    attempt = connect_call(pg_app, ids)
    state = events.next("desk")[1]
    while state["state"] != "on_call":
        state = events.next("desk")[1]
    assert state["pop"]["script"].startswith("Hello Jane, this is agnes")
    end_call(pg_app, ids, attempt)
    assert events.next("desk")[1]["state"] == "wrap_up"
    assert agent.post("/desk/disposition", {"code": "SALE"}, headers=JSON).get_json()["ok"]
    events.close()


def test_the_dashboard_on_postgres(pg_app: Flask) -> None:  # noqa: F811
    ids = running_floor(pg_app)
    manager = signed_in(pg_app, "manager")
    page = manager.get("/dashboard/").get_data(as_text=True)
    assert '<strong data-field="up">2</strong> up' in page
    events = board_events(pg_app, manager)
    board = events.next("board")[1]
    events.close()
    assert board["campaigns"][0]["fields"]["contacts_per_hour"] == "38"
    assert board["campaigns"][0]["levels"]["abandon_today"] == "red"
    for chart in ("hourly", "outcomes", "abandon"):
        response = manager.get(f"/dashboard/campaigns/{ids['campaign_id']}/{chart}.svg")
        assert response.status_code == 200 and b"<svg" in response.get_data()
    assert manager.get("/agent-groups/").status_code == 200
