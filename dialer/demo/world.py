"""The demo world for `dialer serve --demo`: the simulated carrier (SIPp answering as people,
voicemail, busy lines, unanswered and dead numbers), the agents' phones (SIPp answering
every call), the demo campaign with its agents and leads, and the simulated agents working
the calls. Everything runs on loopback."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sqlalchemy import Engine

from dialer.demo.agents import Range, SimulatedAgents
from dialer.demo.carrier import SimulatedCarrier
from dialer.demo.phones import AgentPhones
from dialer.demo.seed import DEMO_COLLECTIONS, seed_demo, seed_kinds
from sip_config import SipConfig, loads

TRUNK = "demo-carrier"
# A quarter of the people key answers (the survey and the reminders hear them; an agent's
# caller keying digits is still a person to talk to).
DEMO_MIX = "human=.25,machine=.15,busy=.1,no_answer=.2,invalid=.05,survey=.25"


@dataclass
class DemoWorld:
    carrier: SimulatedCarrier
    phones: AgentPhones
    config: SipConfig
    summary: str
    bots: list[SimulatedAgents] = field(default_factory=list)
    stop_bots: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        self.stop_bots.set()
        self.carrier.stop()
        self.phones.stop()


def start_demo(
    engine: Engine, *, mix: str = DEMO_MIX, talk: str = "20-60", wrap: str = "5-15"
) -> DemoWorld:
    """Starts the carrier and the phones, seeds the demo campaign and sets its agents to work;
    the caller runs a node with `world.config` and stops the world when done."""
    carrier = SimulatedCarrier(mix)
    phones = AgentPhones()
    carrier.start()
    try:
        phones.start()
    except Exception:
        carrier.stop()
        raise
    config = loads(
        carrier.trunk_table(
            TRUNK, caller_id="+12125550100", max_channels=24, max_cps=5, ring_timeout=25
        )
    )
    campaign_id, summary = seed_demo(engine, phones.uri, TRUNK)
    kinds, kinds_summary = seed_kinds(engine, phones.uri, TRUNK)
    world = DemoWorld(carrier, phones, config, f"{summary}; {kinds_summary}")
    for name, worked in (("demo-agents", campaign_id), ("collectors", kinds[DEMO_COLLECTIONS])):
        bots = SimulatedAgents(engine, worked, talk=Range.parse(talk), wrap=Range.parse(wrap))
        world.bots.append(bots)
        threading.Thread(target=bots.run, args=(world.stop_bots,), name=name, daemon=True).start()
    return world
