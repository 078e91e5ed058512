"""The supervised pool of line workers.

The supervisor thread owns all pool state: it launches waiting originations when the trunk's
channel and calls-per-second limits and a worker's 4 slots allow, forwards worker events to
`next_event()`, and restarts a worker that dies, ending each of its attempts with outcome
failed so that no attempt is ever lost.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing as mp
import os
import pickle
import queue
import random
import selectors
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from dialer.lines import events as ev
from dialer.lines.bucket import TokenBucket
from dialer.lines.outcome import StormWatch
from dialer.lines.worker import HEARTBEAT_EVERY, SLOTS, WorkerSettings, main
from sip_config import MIN_RING_TIMEOUT, SipConfig, SipConfigError

log = logging.getLogger(__name__)

# Each call takes an RTP and an RTCP port; closed sockets stay reserved for 500 ms, so a worker
# gets room for several generations of its 4 calls.
RTP_PORTS_PER_WORKER = 100
# pjsua aborts a process past ~55 new calls/s; stay clear of it.
CALLS_PER_SECOND_PER_WORKER = 40.0
# An auto-answering agent phone answers at once; the connector gives up far sooner anyway.
AGENT_RING_TIMEOUT = 5.0
# A worker's loop sends a heartbeat every second (worker.HEARTBEAT_EVERY). One silent for this
# long is alive but not serving its calls (stopped, or stuck inside pjsua): it is killed and
# replaced like a crashed one. Several beats of margin, since a loaded machine delays them.
HUNG_AFTER = 5.0
# A datagram this short wakes a worker's libHandleEvents and is then dropped by pjsip's UDP
# transport, which ignores packets shorter than a SIP message (it reads them as keep-alives).
DOORBELL = b"\r\n"


class NoSuchAttempt(KeyError):
    pass


@dataclass
class WorkerSlot:
    index: int
    rtp_port: int
    process: BaseProcess | None = None
    commands: Connection | None = None
    events: Connection | None = None
    pid: int = 0
    sip_port: int = 0
    ready: bool = False
    last_heard: float = 0.0  # monotonic: the last event or heartbeat from the worker
    hung: str | None = None  # why the supervisor killed it, when it did
    # attempt id -> (trunk, dialed_at) for every attempt sent and not yet ended
    attempts: dict[str, tuple[str, float]] = field(default_factory=dict)
    # customer attempts holding a second slot here for the agent leg they may need
    reserved: set[str] = field(default_factory=set)

    def free(self) -> int:
        return SLOTS - len(self.attempts) - len(self.reserved)


class LinePool:
    def __init__(
        self,
        config: SipConfig,
        workers: int = 1,
        *,
        bind_address: str = "127.0.0.1",
        rtp_port_base: int | None = None,
        calls_per_second_per_worker: float = CALLS_PER_SECOND_PER_WORKER,
        log_level: int = 0,
        hung_after: float = HUNG_AFTER,
    ) -> None:
        if hung_after < 2 * HEARTBEAT_EVERY:
            raise ValueError(
                f"hung_after={hung_after:g} s: at least {2 * HEARTBEAT_EVERY:g} s, since workers "
                f"send a heartbeat every {HEARTBEAT_EVERY:g} s"
            )
        self.config = config
        self.hung_after = hung_after
        self.bind_address = bind_address
        self.calls_per_second_per_worker = calls_per_second_per_worker
        self.log_level = log_level
        # Workers run at the priority of the thread that made the pool, whichever starts them.
        self.worker_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        if rtp_port_base is not None:
            bases = [rtp_port_base + i * RTP_PORTS_PER_WORKER for i in range(workers)]
        else:
            bases = free_port_blocks(bind_address, workers, RTP_PORTS_PER_WORKER)
        self.workers = [WorkerSlot(index=i, rtp_port=base) for i, base in enumerate(bases)]
        # 50 ms worth of calls absorbs the supervisor loop's jitter on a busy machine (with a
        # bucket of 1, 100 calls/s came out as 67/s at load 10); it never banks more than that.
        self.trunk_buckets = {
            name: TokenBucket(trunk.max_cps, burst=max(1.0, trunk.max_cps / 20))
            for name, trunk in config.trunks.items()
        }
        self._context = mp.get_context("spawn")
        self._events: queue.Queue[ev.Event] = queue.Queue()
        self._lock = threading.Lock()
        self._waiting: deque[tuple[ev.Originate, int | None]] = deque()  # (command, worker)
        self._queued: set[str] = set()  # the attempt ids in _waiting
        self._where: dict[str, WorkerSlot] = {}
        self._reserving: set[str] = set()  # waiting customer attempts that want an agent slot
        self._agent_of: dict[str, str] = {}  # waiting agent leg -> its customer attempt
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.restarts = 0
        self.exits: list[tuple[int, int | None]] = []  # (worker, exit code): -6 is an abort
        self.hung_kills = 0
        self._storms = StormWatch()
        self._doorbell = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Callers' threads wake the supervisor through this pair when they queue a dial.
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        # Registered once per worker (events pipe and process sentinel), not per wait: building
        # a selector over every worker on each wake cost the supervisor more than the events.
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)

    # -- life cycle

    def start(self, timeout: float | None = None) -> None:
        """Spawns the workers and waits until each is ready (by default 20 s, and half a
        second more per worker: a worker takes ~0.5 s of CPU to import pjsua2 and the
        detectors, and a big pool on two cores starts them a few at a time)."""
        for slot in self.workers:
            self._spawn(slot)
        deadline = time.monotonic() + (timeout or 20.0 + 0.5 * len(self.workers))
        while not all(slot.ready for slot in self.workers):
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("line workers did not start in time")
            self._poll(0.05)
        # The supervisor runs as the thread that starts the pool does (a node's loop raises
        # itself first, and a real-time thread's own threads start at normal priority).
        starter = _Scheduling.of_calling_thread()
        self._thread = threading.Thread(
            target=self._supervise, args=(starter,), name="line-pool", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._stopping = True
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for command, _ in self._waiting:
            now = time.time()
            self._events.put(
                ev.Ended(
                    command.attempt_id,
                    0,
                    "line pool stopped before dialing",
                    "failed",
                    ev.Timings(now, None, None, now),
                )
            )
        self._waiting.clear()
        self._queued.clear()
        for slot in self.workers:
            if slot.commands is not None and slot.process is not None and slot.process.is_alive():
                with contextlib.suppress(OSError):
                    self._post(slot, ev.Shutdown())
        deadline = time.monotonic() + timeout
        while any(s.process is not None and s.process.is_alive() for s in self.workers):
            self._poll(0.05)
            if time.monotonic() > deadline:
                break
        self._poll(0.0)
        for slot in self.workers:
            if slot.process is not None and slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
            self._buried(slot, "line pool stopped")
        self._selector.close()
        for sock in (self._doorbell, self._wake_read, self._wake_write):
            sock.close()

    def __enter__(self) -> LinePool:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- commands

    def originate(
        self,
        attempt_id: str,
        trunk: str,
        number: str,
        *,
        ring_timeout: float | None = None,
        tap: ev.TapSpec | None = None,
        near: str | None = None,
        reserve_agent_slot: bool = False,
        caller_id: str | None = None,
    ) -> None:
        """Dial `number` over `trunk`; the outcome arrives as an `Ended` event.

        `near` names a live attempt whose worker must hold this call too (an agent leg goes
        where its customer leg is, since bridging happens in one process's conference bridge).
        `reserve_agent_slot` places the call only in a worker with a second free slot and keeps
        that slot for its agent leg (`call_agent(near=...)`) until the call ends: otherwise a
        worker full of customers would leave a live answer no room for its agent.
        `caller_id` is the number the called party sees (`Trunk.caller_identity`), else the
        trunk's own.
        """
        spec = self.config.trunk(trunk)
        if caller_id is not None:
            spec.caller_identity(caller_id)  # refused here, before the call is queued
        ring = spec.ring_timeout if ring_timeout is None else ring_timeout
        if ring < MIN_RING_TIMEOUT:
            raise SipConfigError(
                f"ring timeout {ring:g} s is below {MIN_RING_TIMEOUT:g} s (regulators want 15 s)"
            )
        command = ev.Originate(
            attempt_id, trunk, number, ring, spec.no_response_timeout, tap, caller_id=caller_id
        )
        with self._lock:
            if reserve_agent_slot:
                self._reserving.add(attempt_id)
            if attempt_id in self._where or attempt_id in self._queued:
                raise ValueError(f"attempt {attempt_id!r} is already in the pool")
            worker = None
            if near is not None:
                if near not in self._where:
                    raise NoSuchAttempt(f"no live attempt {near!r} to place {attempt_id!r} near")
                worker = self._where[near].index
            self._waiting.append((command, worker))
            self._queued.add(attempt_id)
        self._wake()

    def call_agent(
        self,
        attempt_id: str,
        uri: str,
        *,
        near: str,
        headers: tuple[tuple[str, str], ...] = (),
        ring_timeout: float = AGENT_RING_TIMEOUT,
    ) -> None:
        """Dial an agent's phone at `uri` in the worker that holds attempt `near`.

        Not through a trunk: agent phones are reached directly, so the trunk's channel and
        calls-per-second limits do not apply; the agent leg goes ahead of waiting customer
        dials, since a person is already on the line. The 15 s ring minimum is for called
        parties, not for our own agents' phones, which auto-answer.
        """
        if not uri.startswith(("sip:", "sips:")):
            raise ValueError(f"agent URI {uri!r}: expected sip:user@host[:port]")
        command = ev.Originate(
            attempt_id, "", "", ring_timeout, ring_timeout, None, uri=uri, headers=headers
        )
        with self._lock:
            if attempt_id in self._where or attempt_id in self._queued:
                raise ValueError(f"attempt {attempt_id!r} is already in the pool")
            if near not in self._where:
                raise NoSuchAttempt(f"no live attempt {near!r} to place {attempt_id!r} near")
            self._agent_of[attempt_id] = near
            self._waiting.appendleft((command, self._where[near].index))
            self._queued.add(attempt_id)
        self._wake()

    def hangup(self, attempt_id: str) -> None:
        with self._lock:
            queued = self._waiting if attempt_id in self._queued else ()
            for command, _ in queued:
                if command.attempt_id == attempt_id:
                    self._waiting = deque(w for w in self._waiting if w[0] is not command)
                    self._queued.discard(attempt_id)
                    self._reserving.discard(attempt_id)
                    self._agent_of.pop(attempt_id, None)
                    now = time.time()
                    timings = ev.Timings(now, None, None, now)
                    self._events.put(
                        ev.Ended(attempt_id, 0, "hung up before dialing", "failed", timings)
                    )
                    return
        self._send(attempt_id, ev.Hangup(attempt_id))

    def play(self, attempt_id: str, path: str) -> None:
        self._send(attempt_id, ev.Play(attempt_id, path))

    def record(self, attempt_id: str, path: str) -> None:
        self._send(attempt_id, ev.Record(attempt_id, path))

    def stop_record(self, attempt_id: str) -> None:
        self._send(attempt_id, ev.StopRecord(attempt_id))

    def send_dtmf(self, attempt_id: str, digits: str, method: ev.DtmfMethod = "rfc2833") -> None:
        if method not in ev.DTMF_METHODS:
            raise ValueError(f"method={method!r}: expected one of {', '.join(ev.DTMF_METHODS)}")
        self._send(attempt_id, ev.SendDtmf(attempt_id, digits, method))

    def attach_tap(self, attempt_id: str, tap: ev.TapSpec) -> None:
        self._send(attempt_id, ev.AttachTap(attempt_id, tap))

    def bridge(
        self, attempt_id: str, other_attempt_id: str, *, record_path: str | None = None
    ) -> None:
        with self._lock:
            a, b = self._where.get(attempt_id), self._where.get(other_attempt_id)
        if a is None or b is None or a is not b:
            raise ValueError(
                f"attempts {attempt_id!r} and {other_attempt_id!r} are not live in one worker "
                "(originate the second with near= the first)"
            )
        self._send(attempt_id, ev.Bridge(attempt_id, other_attempt_id, record_path))

    def next_event(self, timeout: float | None = None) -> ev.Event | None:
        try:
            return self._events.get(timeout=timeout)
        except queue.Empty:
            return None

    def worker_of(self, attempt_id: str) -> int | None:
        with self._lock:
            slot = self._where.get(attempt_id)
            return None if slot is None else slot.index

    def worker_pids(self) -> list[int]:
        return [slot.pid for slot in self.workers]

    # -- supervision

    def _send(self, attempt_id: str, command: ev.Command) -> None:
        with self._lock:
            slot = self._where.get(attempt_id)
            if slot is None or slot.commands is None:
                raise NoSuchAttempt(f"no live attempt {attempt_id!r}")
            # A send to a worker that just died fails; the supervisor ends the attempt.
            with contextlib.suppress(OSError):
                self._post(slot, command)

    def _post(self, slot: WorkerSlot, command: ev.Command) -> None:
        """Send a command and wake the worker to read it. Plain pickle: commands hold no file
        descriptors, and ForkingPickler copies the copyreg table for every message."""
        assert slot.commands is not None
        slot.commands.send_bytes(pickle.dumps(command, pickle.HIGHEST_PROTOCOL))
        self._ring(slot)

    def _ring(self, slot: WorkerSlot) -> None:
        """Wake the worker's poll loop now that a command waits in its pipe (DOORBELL)."""
        if slot.sip_port:
            with contextlib.suppress(OSError):
                self._doorbell.sendto(DOORBELL, (self.bind_address, slot.sip_port))

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a full pair already says "wake up"
            self._wake_write.send(b"!")

    def _spawn(self, slot: WorkerSlot) -> None:
        commands_out, commands_in = self._context.Pipe(duplex=False)
        events_out, events_in = self._context.Pipe(duplex=False)
        settings = WorkerSettings(
            index=slot.index,
            trunks=dict(self.config.trunks),
            bind_address=self.bind_address,
            rtp_port=slot.rtp_port,
            rtp_port_range=RTP_PORTS_PER_WORKER,
            calls_per_second=self.calls_per_second_per_worker,
            log_level=self.log_level,
            nice=self.worker_nice,
        )
        process = self._context.Process(
            target=main,
            args=(settings, commands_out, events_in),
            name=f"line-worker-{slot.index}",
            daemon=True,
        )
        process.start()
        commands_out.close()
        events_in.close()
        slot.process, slot.commands, slot.events = process, commands_in, events_out
        slot.ready = False
        slot.hung = None
        self._selector.register(events_out, selectors.EVENT_READ, slot)
        self._selector.register(process.sentinel, selectors.EVENT_READ, slot)

    def _supervise(self, scheduling: _Scheduling) -> None:
        scheduling.apply_to_calling_thread()
        while True:
            with self._lock:
                if self._stopping:
                    return
            self._dispatch()
            with self._lock:
                # Dials held back by a trunk's calls-per-second bucket need the clock to move;
                # otherwise events, deaths and new dials (through the wake pair) end the wait.
                timeout = 0.005 if self._waiting else 0.25
            self._poll(timeout)
            self._kill_hung()

    def _poll(self, timeout: float) -> None:
        ended: list[WorkerSlot] = []
        for key, _ in self._selector.select(timeout):
            slot = key.data
            if slot is None:
                with contextlib.suppress(BlockingIOError):
                    self._wake_read.recv(4096)
            elif key.fileobj is slot.events:
                self._drain(slot)
            elif slot.process is not None and key.fileobj == slot.process.sentinel:
                ended.append(slot)
        for slot in ended:
            self._drain(slot)
            self._died(slot)

    def _kill_hung(self) -> None:
        """Kill a worker that is alive but silent (see HUNG_AFTER); its death is then handled
        like a crash: its attempts end as failed with the reason, and it is replaced."""
        now = time.monotonic()
        for slot in self.workers:
            process = slot.process
            if (
                process is None
                or not slot.ready
                or slot.hung is not None
                or now - slot.last_heard < self.hung_after
            ):
                continue
            silent = now - slot.last_heard
            slot.hung = (
                f"line worker {slot.index} stopped answering "
                f"({silent:.1f} s without a heartbeat), killed"
            )
            self.hung_kills += 1
            process.kill()  # SIGKILL ends a stopped (SIGSTOP) process too

    def _drain(self, slot: WorkerSlot) -> None:
        connection = slot.events
        if connection is None:
            return
        try:
            while connection.poll():
                self._deliver(slot, connection.recv())
        except (EOFError, OSError):
            return

    def _deliver(self, slot: WorkerSlot, event: ev.Event) -> None:
        slot.last_heard = time.monotonic()
        if isinstance(event, ev.Heartbeat):
            return
        if isinstance(event, ev.WorkerReady):
            slot.pid, slot.sip_port, slot.ready = event.pid, event.sip_port, True
            return
        if isinstance(event, ev.Ended):
            with self._lock:
                sent = slot.attempts.pop(event.attempt_id, None)
                slot.reserved.discard(event.attempt_id)
                self._where.pop(event.attempt_id, None)
            if sent is not None:
                outcome = self._storms.outcome(
                    sent[0], event.sip_code, event.outcome, time.monotonic()
                )
                if outcome != event.outcome:
                    reason = f"{event.reason} (a 480 storm on trunk {sent[0]}: congestion)"
                    event = dataclasses.replace(event, outcome=outcome, reason=reason)
        self._events.put(event)

    def _died(self, slot: WorkerSlot) -> None:
        process = slot.process
        assert process is not None
        # The sentinel is readable once the process has closed its files, a moment before
        # the kernel has an exit status to give.
        process.join(timeout=1)
        code = process.exitcode
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        started = slot.ready
        self._buried(slot, slot.hung or f"line worker {slot.index} died ({how})")
        with self._lock:
            stopping = self._stopping
        if not stopping:
            # A worker that cannot even start (a bad address, ports exhausted) would otherwise
            # be respawned in a tight loop.
            if not started:
                time.sleep(1.0)
            self.restarts += 1
            self._spawn(slot)

    def _buried(self, slot: WorkerSlot, reason: str) -> None:
        """End every attempt the worker held: the record must not be lost with the process."""
        if slot.process is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(slot.process.sentinel)
            slot.process.join(timeout=1)
            self.exits.append((slot.index, slot.process.exitcode))
        if slot.events is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(slot.events)
        for connection in (slot.commands, slot.events):
            if connection is not None:
                connection.close()
        with self._lock:
            lost = dict(slot.attempts)
            slot.attempts.clear()
            slot.reserved.clear()
            for attempt_id in lost:
                self._where.pop(attempt_id, None)
            slot.process = slot.commands = slot.events = None
            slot.ready = False
        now = time.time()
        for attempt_id, (_, dialed_at) in lost.items():
            timings = ev.Timings(dialed_at, None, None, now)
            self._events.put(ev.Ended(attempt_id, 0, reason, "failed", timings))

    def _dispatch(self) -> None:
        now = time.monotonic()
        with self._lock:
            if not self._waiting:
                return
            channels: dict[str, int] = {}
            for slot in self.workers:
                for trunk, _ in slot.attempts.values():
                    channels[trunk] = channels.get(trunk, 0) + 1
            kept: deque[tuple[ev.Originate, int | None]] = deque()
            blocked: set[str] = set()
            while self._waiting:
                if len(blocked) == len(self.config.trunks) and not self._agent_of:
                    # Every trunk is at a limit and no agent leg waits: this pass is over. (With
                    # thousands of dials queued, scanning them all every 5 ms cost a core.)
                    kept.extend(self._waiting)
                    break
                command, wanted = self._waiting.popleft()
                if command.uri is None and command.trunk in blocked:
                    kept.append((command, wanted))
                    continue
                near = self._agent_of.pop(command.attempt_id, None)
                reserving = command.attempt_id in self._reserving
                slot = self._choose(wanted, near, reserving)
                if wanted is not None and slot is None:
                    self._queued.discard(command.attempt_id)
                    now_wall = time.time()
                    self._events.put(
                        ev.Ended(
                            command.attempt_id,
                            0,
                            f"no free line in worker {wanted} next to the other leg",
                            "failed",
                            ev.Timings(now_wall, None, None, now_wall),
                        )
                    )
                    continue
                if command.uri is not None:  # an agent leg: no trunk limits (call_agent)
                    assert slot is not None
                    try:
                        self._post(slot, command)
                    except OSError:
                        kept.append((command, wanted))
                        if near is not None:
                            self._agent_of[command.attempt_id] = near
                        continue
                    self._queued.discard(command.attempt_id)
                    if near is not None:
                        slot.reserved.discard(near)  # the agent leg takes the kept slot
                    slot.attempts[command.attempt_id] = (command.trunk, time.time())
                    self._where[command.attempt_id] = slot
                    continue
                trunk = self.config.trunks[command.trunk]
                if (
                    slot is None
                    or channels.get(command.trunk, 0) >= trunk.max_channels
                    or not self.trunk_buckets[command.trunk].take(now)
                ):
                    blocked.add(command.trunk)  # keep the order of this trunk's attempts
                    kept.append((command, wanted))
                    continue
                try:
                    self._post(slot, command)
                except OSError:
                    kept.append((command, wanted))  # the worker is dying; place it elsewhere
                    continue
                self._queued.discard(command.attempt_id)
                if reserving:
                    self._reserving.discard(command.attempt_id)
                    slot.reserved.add(command.attempt_id)
                slot.attempts[command.attempt_id] = (command.trunk, time.time())
                self._where[command.attempt_id] = slot
                channels[command.trunk] = channels.get(command.trunk, 0) + 1
            self._waiting = kept

    def _choose(
        self, wanted: int | None, near: str | None = None, reserving: bool = False
    ) -> WorkerSlot | None:
        candidates = self.workers if wanted is None else [self.workers[wanted]]
        ready = [s for s in candidates if s.ready]
        if near is not None:
            # An agent leg takes the slot its customer kept, or any slot nobody else kept.
            ready = [s for s in ready if near in s.reserved or s.free() >= 1]
        else:
            ready = [s for s in ready if s.free() >= (2 if reserving else 1)]
        if not ready:
            return None
        # The emptiest worker first, so the next agent leg finds room next to its customer.
        return min(ready, key=lambda s: len(s.attempts) + len(s.reserved))


def free_port_blocks(address: str, count: int, size: int) -> list[int]:
    """`count` blocks of `size` free UDP ports that do not overlap: one per worker, so a big
    pool needs no single run of thousands of free ports (other programs hold ports here and
    there)."""
    bases: list[int] = []
    while len(bases) < count:
        base = free_port_block(address, size)
        if all(base + size <= other or other + size <= base for other in bases):
            bases.append(base)
    return bases


def free_port_block(address: str, size: int, tries: int = 50) -> int:
    """An even base port with `size` free UDP ports above it (RTP wants even ports). Other
    engineers and other pools run on the same machine, so the block is chosen at random."""
    for _ in range(tries):
        base = random.randrange(20000, 60000 - size, 2)
        sockets = []
        try:
            for port in range(base, base + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(s)
                s.bind((address, port))
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
        return base
    raise RuntimeError(f"no block of {size} free UDP ports on {address}")


@dataclass(frozen=True)
class _Scheduling:
    """A thread's scheduling as it stands, to give another thread the same."""

    policy: int
    priority: int
    nice: int

    @classmethod
    def of_calling_thread(cls) -> _Scheduling:
        thread = threading.get_native_id()
        return cls(
            os.sched_getscheduler(thread),
            os.sched_getparam(thread).sched_priority,
            os.getpriority(os.PRIO_PROCESS, thread),
        )

    def apply_to_calling_thread(self) -> None:
        thread = threading.get_native_id()
        try:
            os.setpriority(os.PRIO_PROCESS, thread, self.nice)
            os.sched_setscheduler(thread, self.policy, os.sched_param(self.priority))
        except PermissionError:  # the starter's privilege is gone: run as started
            log.info("line pool supervisor at normal priority: raising it was refused")
