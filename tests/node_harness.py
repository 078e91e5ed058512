"""A campaign world for node tests: a database with a campaign, its leads and agents, SIPp as
the carrier (answering with a person's greeting) and as the agents' phones, simulated agents
working the calls through the agent service, and a node running the campaign in a thread."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from campaigns import db
from campaigns.manage import add_agent, create_campaign, steer
from campaigns.models import Campaign, Lead
from dialer.bench.amd_corpus import GreetingPlan, synthesise
from dialer.bench.rtp_pcap import wav_to_rtp_pcap
from dialer.demo.agents import Range, SimulatedAgents
from dialer.lines import LinePool
from dialer.node import Node
from sip_config import SipConfig, loads
from tests.sipp_uas import Carrier

# Zones at most 5 hours apart around the clock, so that at any hour one of them is well inside
# 08:00-21:00 and one is deep in the night.
ZONES = (
    "America/New_York",
    "America/Los_Angeles",
    "Pacific/Honolulu",
    "Europe/London",
    "Europe/Moscow",
    "Asia/Calcutta",  # phonenumbers' name for Asia/Kolkata
    "Asia/Tokyo",
)
TRUNK = "carrier"


def zone_in_hours(now: dt.datetime | None = None) -> str:
    """A zone whose local time is well inside the legal calling window now."""
    now = now or dt.datetime.now(dt.UTC)
    for name in ZONES:
        local = now.astimezone(ZoneInfo(name)).time()
        if dt.time(9, 30) <= local <= dt.time(19, 30):
            return name
    raise AssertionError("no zone in hours: extend ZONES")


def zone_out_of_hours(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    for name in ZONES:
        local = now.astimezone(ZoneInfo(name)).time()
        if local <= dt.time(6, 30) or local >= dt.time(22, 30):
            return name
    raise AssertionError("no zone out of hours: extend ZONES")


def human_greeting_pcap(folder: Path) -> Path:
    """ "Hello?" then silence: AMD says human about a second after the answer."""
    wav, pcap = folder / "hello.wav", folder / "hello.pcap"
    if not pcap.exists():
        plan = GreetingPlan(0, "human", "Hello?", "en-us", 170, 50, -6.0, None, 0.3, total_s=6.0)
        synthesise(plan, wav)
        wav_to_rtp_pcap(wav, pcap)
    return pcap


def number(i: int) -> str:
    return f"+1212555{i:04d}"


def add_leads(
    engine: Engine,
    campaign_id: int,
    list_id: int,
    phones: list[str],
    zone: str,
    **fields: object,
) -> None:
    """New leads of `phones` in `zone`; `fields` (account_ref, priority, status ...) for all."""
    with engine.begin() as connection:
        connection.execute(
            insert(Lead),
            [
                {
                    "campaign_id": campaign_id,
                    "list_id": list_id,
                    "phone_e164": phone,
                    "phone_type": "fixed_line",
                    "region": "US",
                    "time_zones": [zone],
                    "first_name": f"Lead{i}",
                    "custom_fields": {},
                    "status": "new",
                    **fields,
                }
                for i, phone in enumerate(phones)
            ],
        )


@dataclass
class World:
    engine: Engine
    campaign_id: int
    list_id: int
    carrier: Carrier
    phones: Carrier
    trunk_toml: str
    agent_ids: list[int] = field(default_factory=list)

    def session(self) -> Session:
        return db.session_factory(self.engine)()


@contextmanager
def world(
    tmp_path: Path,
    *,
    agents: int = 2,
    calls: int = 20,
    dial_mode: str = "progressive",
    kind: str = "telemarketing",
    url: str | None = None,
    scenario: str = "answer",
    carrier_logs: bool = False,
    greeting: Path | None = None,
    **campaign_settings: object,
) -> Iterator[World]:
    """`greeting`: the pcap the carrier answers with (a person's "Hello?" by default);
    `campaign_settings` go to the campaign as it is created."""
    url = url or f"sqlite:///{tmp_path / 'dialer.db'}"
    db.upgrade(url)
    engine = db.make_engine(url)
    carrier = Carrier(tmp_path, "carrier").start(
        scenario,
        calls=calls,
        timeout=300,
        trace_logs=carrier_logs,
        PCAP=str(greeting or human_greeting_pcap(tmp_path)),
    )
    phones = Carrier(tmp_path, "phones").start(
        "agent_autoanswer", calls=calls, timeout=300, rtp_echo=True, MEDIA=""
    )
    trunk = (
        f'[trunks.{TRUNK}]\nhost = "127.0.0.1"\nport = {carrier.port}\n'
        'caller_id = "+12125550100"\nring_timeout = 15\nno_response_timeout = 5\n'
        "max_cps = 50\nmax_channels = 60\n"
    )
    try:
        with db.session_factory(engine)() as session:
            campaign = create_campaign(
                session,
                "Node test",
                kind,
                dial_mode=dial_mode,
                trunk_name=TRUNK,
                seller_name="Acme Test",
                callback_number="+12125550199",
                calling_days=list(range(7)),
                calling_start="08:00",
                calling_end="21:00",
                wrapup_timeout_s=30,
                script="Hello {first_name}, this is {agent} from {seller}.",
                **campaign_settings,
            )
            found = World(engine, campaign.id, campaign.lists[0].id, carrier, phones, trunk)
            for i in range(agents):
                user = add_agent(
                    session, f"agent{i}", f"sip:agent{i}@127.0.0.1:{phones.port}", campaign
                )
                found.agent_ids.append(user.id)
        yield found
    finally:
        carrier.stop()
        phones.stop()
        engine.dispose()


def start(world: World) -> None:
    with world.session() as session:
        steer(session, session.get_one(Campaign, world.campaign_id), "start")


@contextmanager
def node_in_thread(
    engine: Engine,
    config: SipConfig,
    *,
    workers: int = 2,
    until_idle: bool = False,
    **settings: Any,
) -> Iterator[tuple[Node, threading.Thread]]:
    """A node (`settings`: its name, grace, prompts) running in a thread of its own, with
    `until_idle` until nothing is left to dial; stopped (gracefully) on the way out."""
    settings.setdefault("name", "node-test")
    settings.setdefault("grace_s", 5.0)
    node = Node(engine, LinePool(config, workers=workers), config, **settings)
    thread = threading.Thread(
        target=node.run, kwargs={"until_idle": until_idle}, name="node", daemon=True
    )
    thread.start()
    try:
        yield node, thread
    finally:
        node.request_stop()
        thread.join(timeout=60)
        assert not thread.is_alive(), "the node did not stop"


@contextmanager
def running_node(world: World, *, workers: int = 2, **settings: Any) -> Iterator[Node]:
    config = loads(world.trunk_toml)
    with node_in_thread(world.engine, config, workers=workers, **settings) as (node, _):
        yield node


@contextmanager
def agents_at_work(
    engine: Engine, campaign_id: int, talk: Range, wrap: Range, seed: int = 1
) -> Iterator[SimulatedAgents]:
    """Simulated agents working the campaign's calls in a thread, until the way out."""
    bots = SimulatedAgents(engine, campaign_id, talk=talk, wrap=wrap, seed=seed)
    stop = threading.Event()
    thread = threading.Thread(target=bots.run, args=(stop, 0.1), name="bots", daemon=True)
    thread.start()
    try:
        yield bots
    finally:
        stop.set()
        thread.join(timeout=10)


@contextmanager
def working_agents(
    world: World, talk: str = "1-2", wrap: str = "0.5-1", seed: int = 1
) -> Iterator[SimulatedAgents]:
    with agents_at_work(
        world.engine, world.campaign_id, Range.parse(talk), Range.parse(wrap), seed
    ) as bots:
        yield bots


# A number in each zone, for dials the gate must judge by the number's own time zone.
NUMBER_IN_ZONE = {
    "America/New_York": "+12125550123",
    "America/Los_Angeles": "+13105550123",
    "Pacific/Honolulu": "+18085550123",
    "Europe/London": "+442079460123",
    "Europe/Moscow": "+74951234567",
    "Asia/Calcutta": "+912223456789",
    "Asia/Tokyo": "+81312345678",
}
