"""The dialer node (ARCHITECTURE §3a): one loop owns the line pool and every call on it.

Each pool event goes, by attempt id, to the one place that fans it out: the call's flow (the
connector that puts a live answer through to an agent, or abandons it the lawful way), then
the attempt ledger, then the campaign's pacer. A runner per campaign decides and dials
(`dialer.node.runner`). Between events the loop ticks the flows (the 2-s rule needs a tick at
least every 20 ms), syncs with the database (campaign states, the agents' sessions, commands
from the console) at least every half second or at once when woken, and steps the runners.

The database is the shared state: campaigns are started and stopped there, agents move
there, and what the node does is written there (its heartbeat, each campaign's run figures),
so the console, the API and other nodes see one truth, and a node that dies loses nothing
that `close_orphans` does not settle when it comes back.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from campaigns import agents, db, hopper, live
from campaigns.compliance import Verdict
from campaigns.models import (
    Campaign,
    CampaignRun,
    Lead,
    NodeCommand,
    utcnow,
)
from campaigns.models import (
    Node as NodeRow,
)
from dialer.calls.flow import IvrOutcome
from dialer.calls.voicemail import VoicemailOutcome
from dialer.connect import CONNECTED_VERDICTS, ConnectOutcome, TransferTarget
from dialer.lines.bucket import TokenBucket
from dialer.lines.events import AmdVerdict, Answered, Bridged, Ended, Event, Registration
from dialer.lines.protocol import Lines
from dialer.node.board import AgentBoard
from dialer.node.kinds import runs_ivr
from dialer.node.ledger import INTERRUPTED_REASON, AttemptLedger, Settled
from dialer.node.priority import NodePriority, node_priority, raise_priority
from dialer.node.runner import STEP_AT_MOST, STEP_EVERY, CampaignRunner, LiveCall
from dialer.pacing import Abandoned, Connected, Resolved, TalkEnded, WrapEnded
from sip_config import SipConfig

log = logging.getLogger(__name__)

# Also what an agent in another process (the console, the API) waits at most for their
# ready, pause or hang-up to reach the node, where no NOTIFY wakes it (SQLite).
SYNC_EVERY = 0.25
# While a person waits for an agent, the node reads its agents this often (nothing else of a
# sync): an agent another process frees is seen at once, not a quarter of a second later,
# when the 2 s may be nearly spent.
AGENTS_READ_WHILE_WAITING = 0.05
HEARTBEAT_EVERY = 1.0
# The connector's 2-s window is checked at every tick.
TICK = 0.02
# SIGTERM: live calls get this long to end by themselves, then are hung up as interrupted.
DEFAULT_GRACE_S = 30.0
# An AMD verdict, as the pacer's classes of attempts.
PACING_VERDICT = {"human": "human", "notsure": "human", "machine": "machine"}
PACING_OUTCOME = {"human": "failed", "machine": "machine", "busy": "busy", "no_answer": "no_answer"}
RUNNING = ("active", "paused")


def default_node_name() -> str:
    return os.environ.get("DIALER_NODE_NAME") or socket.gethostname()


@dataclass
class NodeFigures:
    """Timings the bench reads: seconds from the bridge to the agent's state on record."""

    screen_pop_latency: list[float] = field(default_factory=list)
    dispatched: int = 0


class Node:
    def __init__(
        self,
        engine: Engine,
        lines: Lines,
        config: SipConfig,
        *,
        name: str | None = None,
        prompts_dir: Path | None = None,
        recordings_dir: Path | None = None,
        grace_s: float = DEFAULT_GRACE_S,
        priority: NodePriority | None = None,
    ) -> None:
        self.engine = engine
        self.priority = node_priority() if priority is None else priority
        self.lines = lines
        self.config = config
        self.name = name or default_node_name()
        self.prompts_dir = prompts_dir
        self.recordings_dir = recordings_dir
        self.grace_s = grace_s
        self.ledger = AttemptLedger(engine, self.name)
        self.board = AgentBoard(engine, self.name)
        self.reads = db.session_factory(engine)
        self.writes = db.session_factory(db.writer(engine))
        self.runners: dict[int, CampaignRunner] = {}
        self.calls: dict[str, LiveCall] = {}
        self._launches: dict[str, TokenBucket] = {}  # per trunk: its calls per second
        self.figures = NodeFigures()
        self.stopping = False
        self._stop_asked = threading.Event()
        self._stop_deadline: float | None = None
        self._interrupting = False
        self._next_sync = 0.0
        self._next_agents_read = 0.0
        self._next_heartbeat = 0.0
        self.idle = False

    # -- life cycle

    def request_stop(self) -> None:
        """Asks the loop to stop (safe from a signal handler or another thread): no new dials,
        live calls get the grace to end, then are hung up and recorded as interrupted."""
        self._stop_asked.set()
        live.wake_local()

    def run(self, *, until_idle: bool = False) -> None:
        """Runs until asked to stop (or, with `until_idle`, until no lead is dialable and no
        call is up); the line pool is started and stopped here."""
        # The loop's thread, and the line pool's supervisor it starts (a thread holding the
        # interpreter's lock while a busy machine has it wait for a core would hold the loop
        # up too); the pool's workers carry the media and stay at the pool maker's level.
        raise_priority(self.priority)
        self._start()
        try:
            with live.subscribed(node_changes=False) as woken:
                while True:
                    self._turn(woken)
                    if self.stopping and not self.calls:
                        break
                    if until_idle and self.idle:
                        log.info("nothing left to dial and no call up: stopping")
                        break
        finally:
            self._finish()

    def _start(self) -> None:
        now = utcnow()
        self._heartbeat(now)
        closed = self.ledger.close_orphans(now)
        if closed:
            log.warning("closed %d attempts a previous run of node %s left open", closed, self.name)
        with self.writes() as session:
            mine = session.scalars(
                select(Lead.id).where(Lead.status == "claimed", Lead.claimed_by == self.name)
            ).all()
        released = hopper.release(self.engine, mine)
        if released:
            log.info("released %d leads a previous run claimed and never dialled", released)
        self.lines.start()
        log.info("node %s started", self.name)

    def _finish(self) -> None:
        for runner in self.runners.values():
            self._record_run(runner, final=True)
        self.lines.stop()
        with self.writes() as session:
            session.execute(delete(CampaignRun).where(CampaignRun.node == self.name))
            session.execute(
                update(NodeRow)
                .where(NodeRow.name == self.name)
                .values(stopping=True, heartbeat_at=utcnow())
            )
            session.commit()
        log.info("node %s stopped", self.name)

    # -- the loop

    def _turn(self, woken: threading.Event) -> None:
        event = self.lines.next_event(timeout=TICK)
        handled = 0
        while event is not None:
            self._dispatch_safely(event)
            handled += 1
            if handled >= 200:  # the flows' ticks must not wait behind a burst
                break
            event = self.lines.next_event(timeout=0)
        now = time.monotonic()
        # Read before the flows' ticks, which offer the waiting people the agents just freed.
        try:
            if woken.is_set() or now >= self._next_sync:
                woken.clear()
                self._next_sync = now + SYNC_EVERY
                self._next_agents_read = now + AGENTS_READ_WHILE_WAITING
                self.sync()
            elif now >= self._next_agents_read and self._someone_waits():
                self._next_agents_read = now + AGENTS_READ_WHILE_WAITING
                self._read_agents(utcnow())
        except Exception:  # the database went away for a moment: the next sync retries
            log.exception("sync with the database failed")
        now = time.monotonic()
        for runner in self.runners.values():
            if runner.ivr is not None:  # ticks the connector too
                runner.ivr.tick()
            elif runner.connector is not None:
                runner.connector.tick()
            if runner.voicemail is not None:
                runner.voicemail.tick()
            if runner.connector is not None:
                for attempt_id in runner.connector.take_abandoned():
                    self._abandoned(runner, attempt_id)
        if self._stop_asked.is_set() and not self.stopping:
            self._begin_stopping(now)
        deadline = self._stop_deadline
        if self.stopping and not self._interrupting and deadline is not None and now >= deadline:
            self._interrupt()
        for runner in list(self.runners.values()):
            if now >= runner.next_step:
                try:
                    runner.step(now)
                except Exception:  # a claim that failed: the runner tries again next step
                    log.exception("campaign %r: a dialing step failed", runner.campaign.name)

    def _dispatch_safely(self, event: Event) -> None:
        """One event; a failure (the database locked for longer than its timeout, say) is
        logged and the loop goes on. A call whose end could not be recorded is dropped here:
        its attempt stays open in the database and is closed as failed when the node restarts
        (`close_orphans`), so the record is never lost."""
        try:
            self.dispatch(event)
        except Exception:
            log.exception("event %r could not be handled", event)
            if isinstance(event, Ended) and "/" not in event.attempt_id:
                call = self.calls.pop(event.attempt_id, None)
                if call is not None:
                    self.runners[call.campaign_id].calls.pop(event.attempt_id, None)

    def dispatch(self, event: Event) -> None:
        """One pool event, to the call's flow, then the ledger, then the pacer."""
        self.figures.dispatched += 1
        if isinstance(event, Registration):
            level = logging.INFO if event.registered else logging.WARNING
            log.log(level, "trunk %s worker %d: %s", event.trunk, event.worker, event.reason)
            return
        attempt_id = getattr(event, "attempt_id", None)
        if attempt_id is None:
            return
        customer, _, leg = attempt_id.partition("/")
        call = self.calls.get(customer)
        if call is None:
            return
        runner = self.runners[call.campaign_id]
        connector = runner.connector
        assert connector is not None
        if leg:
            connector.handle(event)
            if isinstance(event, Ended) and call.bridged is None and not call.direct:
                self._free_agent(call)
            return
        if call.direct and isinstance(event, Answered):
            # The agent is waiting for this call: through at once, no AMD.
            connector.handle(event)
            event_verdict = AmdVerdict(
                customer, "human", event.at, "dialled for the agent", 0, time.monotonic()
            )
            connector.handle(event_verdict)
            self.ledger.observe(event)
            return
        ivr: IvrOutcome | None = None
        flow: ConnectOutcome | None = None
        voicemail: VoicemailOutcome | None = None
        dropped = False
        drops = runner.voicemail
        if drops is not None and drops.wants(event):
            # A machine the campaign leaves its message on: the drop owns the call from its
            # verdict on (its end still passes the flows below, which forget what they kept).
            dropped = True
            voicemail = drops.handle(event)
        flows_see = not dropped or isinstance(event, Ended)
        if flows_see and runner.ivr is not None:
            # An agentless campaign's flow, which hands the call to the connector when the
            # person asks for someone: both results come back with the call's end.
            end = runner.ivr.handle(event)
            flow, ivr = (end.connect, end.ivr) if end is not None else (None, None)
        elif flows_see:
            flow = connector.handle(event)
        now = time.monotonic()
        # A second verdict is the voicemail drop's (the beep heard): the attempt keeps AMD's.
        if isinstance(event, Answered) or (isinstance(event, AmdVerdict) and not call.resolved):
            self.ledger.observe(event)
            if isinstance(event, AmdVerdict) and not call.resolved and not call.direct:
                call.resolved = True
                outcome = PACING_VERDICT.get(event.verdict, "failed")
                runner.pacer.observe(Resolved(outcome, now - call.dialed))
        elif isinstance(event, Bridged):
            self._bridged(runner, call, event, now)
        elif isinstance(event, Ended):
            self._ended(runner, call, event, flow, now, ivr, voicemail)

    def _bridged(self, runner: CampaignRunner, call: LiveCall, event: Bridged, now: float) -> None:
        first = call.bridged is None  # else a transfer's target
        call.bridged = call.bridged or now
        self.ledger.bridged(event, call.agent_id)
        live.wake_local(by_node=True)  # the agent's screen pop is live: tell the console
        agent = self.board.agents.get(call.agent_id or -1)
        delay = "" if event.connect_delay_ms is None else f" in {event.connect_delay_ms:.0f} ms"
        log.info(
            "%s: call %s to %s put through to %s%s",
            runner.campaign.name,
            call.attempt_id,
            call.lead.phone_e164,
            agent.username if agent is not None else "an outside number",
            delay,
        )
        self.figures.screen_pop_latency.append(max(0.0, time.time() - event.at))
        if call.agent_id is not None:
            self.board.set(call.agent_id, state="on_call", since=utcnow())
        if first and not call.abandon_counted:
            runner.count_answer(abandoned=False)  # as the ledger now records it
        if first and not call.direct and event.connect_delay_ms is not None:
            runner.pacer.observe(Connected(waited=event.connect_delay_ms / 1000))

    def _abandoned(self, runner: CampaignRunner, attempt_id: str) -> None:
        """A person no agent took, as it happens: the pacer and the 30-day count learn of it
        now (as the simulator's pacer does), not with the call's end after the message."""
        call = runner.calls.get(attempt_id)
        if call is None or call.abandon_counted or call.bridged is not None:
            return
        call.abandon_counted = True
        runner.count_answer(abandoned=True)
        if not call.direct:
            runner.pacer.observe(Abandoned())

    def _ended(
        self,
        runner: CampaignRunner,
        call: LiveCall,
        event: Ended,
        flow: ConnectOutcome | None,
        now: float,
        ivr: IvrOutcome | None = None,
        voicemail: VoicemailOutcome | None = None,
    ) -> None:
        if not call.resolved and not call.direct:
            call.resolved = True
            outcome = PACING_OUTCOME.get(event.outcome, "failed")
            runner.pacer.observe(Resolved(outcome, now - call.dialed))
        settled: Settled | None = self.ledger.end(
            event,
            flow,
            agent_id=call.agent_id,
            hung_up_because=call.hung_up_because,
            ivr=ivr,
            voicemail=voicemail,
        )
        if call.agent_id is not None:
            live.wake_local(by_node=True)
        log.info("%s", _call_line(runner, call, event, flow, self.board, ivr, voicemail))
        # A person no agent took, unless counted when given up (a bridge counted too).
        if flow is not None and not call.abandon_counted:
            if flow.verdict in CONNECTED_VERDICTS and call.bridged is None:
                runner.count_answer(flow.abandoned)
            if flow.abandoned and not call.direct:
                runner.pacer.observe(Abandoned())
        if call.bridged is not None:
            runner.pacer.observe(TalkEnded(now - call.bridged))
        if call.agent_id is not None:
            connected = settled is not None and settled.awaiting_disposition
            state = "wrap_up" if connected else "ready"
            self.board.set(call.agent_id, state=state, since=utcnow())
            if not connected:
                self._next_sync = 0.0  # a pause asked during the call: read it back now
        del self.calls[call.attempt_id]
        del runner.calls[call.attempt_id]

    def _free_agent(self, call: LiveCall) -> None:
        """The agent leg of a call that never connected ended: the agent is free at once,
        not when the customer's safe-harbor message is over."""
        if call.agent_id is None:
            return
        with self.writes() as session:
            agents.call_ended(
                session, call.agent_id, int(call.attempt_id), connected=False, at=utcnow()
            )
            session.commit()
        self.board.set(call.agent_id, state="ready", since=utcnow())
        call.agent_id = None
        self._next_sync = 0.0

    # -- what runners ask of the node

    @contextlib.contextmanager
    def read_session(self) -> Iterator[Session]:
        with self.reads() as session:
            yield session

    def screen_pop(
        self, runner: CampaignRunner, lead_id: int, reason: str, agent: str | None
    ) -> dict[str, Any]:
        with self.reads() as session:
            lead = session.get_one(Lead, lead_id)
            return agents.screen_pop(lead, runner.campaign, reason, agent=agent)

    def reserve_agent(self, runner: CampaignRunner, call: LiveCall) -> str | None:
        """The campaign's longest-idle ready agent for a live answer, reserved with the call's
        screen pop (in the database before the agent's phone rings)."""
        candidates = self.board.longest_idle(runner.id)
        if not candidates:
            return None
        with self.writes() as session:
            lead = session.get_one(Lead, call.lead.id)
            reason = agents.reason_for(lead, call.lead.is_callback)
            for agent in candidates:
                pop = agents.screen_pop(lead, runner.campaign, reason, agent=agent.username)
                uri = agents.reserve_for_call(session, agent.user_id, int(call.attempt_id), pop)
                if uri is not None:
                    session.commit()
                    call.agent_id = agent.user_id
                    self.board.set(
                        agent.user_id,
                        state="reserved",
                        since=utcnow(),
                        attempt_id=int(call.attempt_id),
                    )
                    return uri
                # Paused or gone since the last sync.
                self.board.set(agent.user_id, state="paused")
        return None

    def trunk_room(self, trunk: str) -> int:
        """Calls this node's campaigns may launch on a trunk now: its channels not in use, and
        its calls per second not spent. A step launching more than the trunk takes in a second
        would leave calls queued in the line pool that the pacer counts as ringing since
        their launch (a burst of 200 at 50 calls/s: the last leave 4 s late)."""
        spec = self.config.trunk(trunk)
        busy = sum(
            1
            for call in self.calls.values()
            if self.runners[call.campaign_id].campaign.trunk_name == trunk
        )
        return max(
            0, min(spec.max_channels - busy, self._launch_budget(trunk).room(time.monotonic()))
        )

    def launched(self, trunk: str, count: int) -> None:
        """Calls just launched on a trunk (an agent's own dials too: they spend its rate)."""
        self._launch_budget(trunk).spend(count, time.monotonic())

    def _launch_budget(self, trunk: str) -> TokenBucket:
        if trunk not in self._launches:
            rate = self.config.trunk(trunk).max_cps
            # A step's worth, and what a fractional rate left over from the step before.
            self._launches[trunk] = TokenBucket(rate, burst=rate * STEP_EVERY + 1.0)
        return self._launches[trunk]

    def hangup(self, attempt_id: str) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.lines.hangup(attempt_id)

    # -- sync with the database

    def sync(self) -> None:
        now = utcnow()
        if time.monotonic() >= self._next_heartbeat:
            self._heartbeat(now)
            self._next_heartbeat = time.monotonic() + HEARTBEAT_EVERY
            for runner in self.runners.values():
                self._record_run(runner)
        self._read_agents(now)
        self._sync_campaigns()
        self._expire_wrap_ups(now)
        self._carry_out_commands()
        self._check_idle()

    def _read_agents(self, now: dt.datetime) -> None:
        for end in self.board.sync(now):
            runner = self.runners.get(end.campaign_id)
            if runner is not None:
                runner.pacer.observe(WrapEnded(end.duration))
                runner.next_step = min(runner.next_step, time.monotonic() + STEP_AT_MOST)

    def _someone_waits(self) -> bool:
        return any(
            runner.connector is not None and runner.connector.waiting
            for runner in self.runners.values()
        )

    def _heartbeat(self, now: dt.datetime) -> None:
        with self.writes() as session:
            row = session.get(NodeRow, self.name)
            if row is None:
                row = NodeRow(
                    name=self.name,
                    host=socket.gethostname(),
                    pid=os.getpid(),
                    version=version("dialer"),
                    started_at=now,
                )
                session.add(row)
            elif row.pid != os.getpid():
                row.pid, row.started_at, row.host = os.getpid(), now, socket.gethostname()
            row.heartbeat_at = now
            row.stopping = self.stopping
            session.commit()

    def _sync_campaigns(self) -> None:
        wanted = {agent.campaign_id for agent in self.board.agents.values()}
        wanted.update(call.campaign_id for call in self.calls.values())
        with self.reads() as session:
            rows = session.scalars(
                select(Campaign).where(
                    Campaign.status.in_(RUNNING) | Campaign.id.in_([c for c in wanted if c])
                )
            ).all()
        seen = set()
        for campaign in rows:
            seen.add(campaign.id)
            runner = self.runners.get(campaign.id)
            if runner is None:
                runner = self.runners[campaign.id] = CampaignRunner(self, campaign)
                log.info("campaign %r: runner started (%s)", campaign.name, campaign.status)
            elif (
                campaign.updated_at != runner.campaign.updated_at
                and runs_ivr(campaign) != (runner.ivr is not None)
                and not runner.calls
            ):
                # Made agentless or given back to agents (or given the survey it lacked): a
                # runner of the other sort.
                runner = self.runners[campaign.id] = CampaignRunner(self, campaign)
                log.info("campaign %r: runner started again (agentless: %s)", campaign.name,
                         campaign.agentless)  # fmt: skip
            elif campaign.updated_at != runner.campaign.updated_at:
                was = runner.campaign.status
                runner.update(campaign)
                if campaign.status != was:
                    log.info("campaign %r: %s -> %s", campaign.name, was, campaign.status)
                    runner.next_step = 0.0
                    if campaign.status == "stopped":
                        runner.cancel_ringing()
        for campaign_id in list(self.runners):
            if campaign_id not in seen and not self.runners[campaign_id].calls:
                self._record_run(self.runners.pop(campaign_id), final=True)

    def _record_run(self, runner: CampaignRunner, final: bool = False) -> None:
        now = time.monotonic()
        dialing = runner.dialing(now)
        with self.writes() as session:
            if final:
                session.execute(
                    delete(CampaignRun).where(
                        CampaignRun.campaign_id == runner.id, CampaignRun.node == self.name
                    )
                )
            else:
                ready = sum(1 for a in self.board.of_campaign(runner.id) if a.state == "ready")
                session.merge(
                    CampaignRun(
                        campaign_id=runner.id,
                        node=self.name,
                        state=runner.figures.state,
                        detail=runner.figures.detail[:500],
                        dial_mode=runner.campaign.dial_mode,
                        dial_level=round(len(dialing) / max(1, ready), 2),
                        lines=len(runner.calls),
                        ringing=len(dialing),
                        up=len(runner.calls) - len(dialing),
                        waiting=runner.connector.waiting if runner.connector else 0,
                        updated_at=utcnow(),
                    )
                )
            session.commit()

    def _expire_wrap_ups(self, now: dt.datetime) -> None:
        for agent in self.board.wrap_ups_due(now):
            assert agent.attempt_id is not None
            with self.writes() as session:
                expired = agents.expire_wrap_up(session, agent.user_id, agent.attempt_id)
                session.commit()
            if expired:
                log.info("agent %s: wrap-up timed out, default disposition", agent.username)
                self._next_sync = 0.0

    # -- commands from the console and the API

    def _carry_out_commands(self) -> None:
        with self.reads() as session:
            commands = session.scalars(
                select(NodeCommand)
                .where(NodeCommand.node == self.name, NodeCommand.done_at.is_(None))
                .order_by(NodeCommand.id)
            ).all()
        for command in commands:
            error = None
            try:
                error = self._carry_out(command)
            except Exception as failure:
                log.exception("command %d (%s) failed", command.id, command.kind)
                error = f"{command.kind} failed: {failure}"
            with self.writes() as session:
                session.execute(
                    update(NodeCommand)
                    .where(NodeCommand.id == command.id)
                    .values(done_at=utcnow(), error=error)
                )
                session.commit()

    def _carry_out(self, command: NodeCommand) -> str | None:
        args = command.args or {}
        if command.kind == "hangup":
            attempt_id = str(args.get("attempt_id"))
            if attempt_id not in self.calls:
                return f"call {attempt_id} is not up on node {self.name}"
            self.hangup(attempt_id)
            return None
        if command.kind == "dial":
            return self._dial_for_agent(command)
        return self._transfer(command)

    def _transfer(self, command: NodeCommand) -> str | None:
        """A blind transfer: to another ready agent of the campaign (the first agent is free at
        once, the target dispositions), or to an outside number (the first agent wraps up and
        dispositions; the call goes on without us)."""
        args = command.args or {}
        attempt_id = str(args.get("attempt_id"))
        call = self.calls.get(attempt_id)
        if call is None or call.bridged is None or call.agent_id is None:
            return f"call {attempt_id} is not connected to an agent on node {self.name}"
        runner = self.runners[call.campaign_id]
        assert runner.connector is not None
        if not runner.connector.can_transfer(attempt_id):
            return f"call {attempt_id} is being transferred already"
        first = call.agent_id
        now = utcnow()
        if args.get("agent_id") is not None:
            target = self.board.agents.get(int(args["agent_id"]))
            if target is None or target.state != "ready" or target.campaign_id != call.campaign_id:
                return "the agent to transfer to is not ready in this campaign"
            with self.writes() as session:
                lead = session.get_one(Lead, call.lead.id)
                pop = agents.screen_pop(lead, runner.campaign, "transfer", agent=target.username)
                uri = agents.reserve_for_call(session, target.user_id, int(attempt_id), pop)
                if uri is None:
                    return f"agent {target.username} is no longer ready"
                agents.call_ended(session, first, int(attempt_id), connected=False, at=now)
                session.commit()
            self.board.set(first, state="ready", since=now, attempt_id=None)
            self.board.set(target.user_id, state="reserved", since=now, attempt_id=int(attempt_id))
            call.agent_id = target.user_id
            runner.connector.transfer(attempt_id, TransferTarget(agent_uri=uri))
            return None
        with self.writes() as session:
            agents.call_ended(session, first, int(attempt_id), connected=True, at=now)
            session.commit()
        self.board.set(first, state="wrap_up", since=now)
        call.agent_id = None
        trunk = runner.campaign.trunk_name or ""
        runner.connector.transfer(attempt_id, TransferTarget(trunk=trunk, number=args["number"]))
        return None

    def _dial_for_agent(self, command: NodeCommand) -> str | None:
        """A preview or manual dial an agent asked for: the gate once more, then the call, with
        the agent reserved for it."""
        args = command.args or {}
        lead_id, kind = int(args["lead_id"]), args.get("kind", "manual")
        assert command.campaign_id is not None and command.agent_id is not None
        runner = self.runners.get(command.campaign_id)
        if runner is None or runner.connector is None or self.stopping:
            why = runner.error if runner is not None and runner.error else "not running here"
            self._back_to_ready(command.agent_id)
            hopper.release(self.engine, [lead_id])
            return f"campaign {command.campaign_id}: {why}"
        verdict = hopper.claim_lead(
            self.engine, command.campaign_id, lead_id, self.name, utcnow(), kind
        )
        if isinstance(verdict, Verdict):
            self._back_to_ready(command.agent_id)
            hopper.release(self.engine, [lead_id])
            return f"the compliance gate refused the dial: {verdict.detail}"
        if runner.dial([verdict], kind, agent_id=command.agent_id) == 0:
            hopper.release(self.engine, [lead_id])
            self._back_to_ready(command.agent_id)
            return "the dial was refused at the last moment (see the log)"
        return None

    def _back_to_ready(self, user_id: int) -> None:
        with self.writes() as session:
            agents.cancel_reservation(session, user_id)
            session.commit()
        self._next_sync = 0.0

    # -- stopping

    def _begin_stopping(self, now: float) -> None:
        self.stopping = True
        self._stop_deadline = now + self.grace_s
        log.info(
            "stopping: no new dials; %d live calls get %.0f s to end", len(self.calls), self.grace_s
        )

    def _interrupt(self) -> None:
        self._interrupting = True
        for call in list(self.calls.values()):
            call.hung_up_because = INTERRUPTED_REASON
            self.hangup(call.attempt_id)
        log.warning("grace over: %d calls hung up as interrupted", len(self.calls))

    def _check_idle(self) -> None:
        """Nothing left to do: no call up, no agent in a call or wrap-up, and every dialing
        campaign's hopper found nothing the last time it was asked."""
        busy_agent = any(
            agent.state in ("reserved", "on_call", "wrap_up")
            for agent in self.board.agents.values()
        )
        dialing = [
            r
            for r in self.runners.values()
            if r.dialing_asked and r.campaign.dial_mode != "preview"
        ]
        self.idle = (
            not self.calls and not busy_agent and all(r.figures.last_claim_empty for r in dialing)
        )


def _call_line(
    runner: CampaignRunner,
    call: LiveCall,
    ended: Ended,
    flow: ConnectOutcome | None,
    board: AgentBoard,
    ivr: IvrOutcome | None = None,
    voicemail: VoicemailOutcome | None = None,
) -> str:
    """One log line per call: what a manager tailing the log wants to see."""
    what = ended.outcome
    if voicemail is not None:
        left = "message left" if voicemail.message_played else "no message left"
        what = f"{ended.outcome}, {left} ({voicemail.reason})"
    elif ivr is not None and flow is None:
        answers = " ".join(f"{key}={digits}" for key, digits in ivr.answers)
        what = f"IVR {ivr.result}" + (f" ({answers})" if answers else "")
    elif flow is not None and flow.connect_delay_ms is not None:
        agent = board.agents.get(call.agent_id or -1)
        name = agent.username if agent is not None else "an agent"
        what = f"talked with {name} (connected in {flow.connect_delay_ms / 1000:.2f} s)"
    elif flow is not None and flow.abandoned:
        what = f"abandoned ({flow.reason}), safe-harbor message played"
    elif ended.amd_verdict and ended.amd_verdict != ended.outcome:
        what = f"{ended.outcome} ({ended.amd_verdict})"
    return (
        f"{runner.campaign.name}: call {call.attempt_id} to {call.lead.phone_e164} ({call.kind}) "
        f"{what}; SIP {ended.sip_code} {ended.reason}"
    )
