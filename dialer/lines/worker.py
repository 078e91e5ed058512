"""One line worker: a process with one pjsua2 Endpoint and at most 4 calls.

pjsua2 (2.15.1) is compiled with PJSUA_MAX_CALLS = 4 and allows one Endpoint per process, so a
node runs several of these under `dialer.lines.pool.LinePool`. The worker runs pjsua in poll
mode on its main thread and reads commands from a pipe between polls; all pj calls happen on
that thread except the frame and end-of-file callbacks, which pjsua runs on its media clock
thread (those only set flags that the main loop acts on).
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import importlib
import os
import pickle
import select
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import pjsua2 as pj

from dialer.lines import events as ev
from dialer.lines.bucket import TokenBucket
from dialer.lines.outcome import classify
from dialer.lines.sdp import offer_codecs
from dialer.lines.transport import KINDS, transport_config
from sip_config import Trunk
from sip_config.trunks import CallerIdentity

SLOTS = 4
# makeCall raises PJ_ETOOMANY for a moment after a DISCONNECTED, until pjsua frees the slot.
PJ_ETOOMANY = 70010
SLOT_RETRY_FOR = 2.0
# pjsua reports a CANCELed call DISCONNECTED (487) at once, before the far end's 487 arrives;
# only the INVITE transaction, still alive, ACKs that 487. A worker stopping sooner would leave
# the carrier retransmitting it, so shutdown keeps handling events this long after a CANCEL.
CANCEL_GRACE_S = 2.0
# PJSUA_MAX_ACC is compiled as 8: a 9th Account aborts the process (assertion in pjsua_acc_add),
# so a worker keeps one account per trunk for at most 8 trunks and drops idle ones beyond that.
MAX_ACCOUNTS = 8
FRAME_BYTES = 320
SILENT_FRAME = bytes(FRAME_BYTES)
# Agent legs dial SIP URIs directly through this account, which is not one of the trunks.
AGENT_ACCOUNT = ""
# Every return from libHandleEvents wakes a Python loop: at 10 ms, 50 idle workers took a whole
# core (~100 us a wake on a busy machine). The loop waits longer unless something it must
# notice only by looking is under way (a frame tap deciding, a prompt playing, a dial waiting
# for a token); SIP traffic ends the wait at once, and the supervisor sends a datagram to the
# worker's SIP port after each command for the same purpose.
BUSY_POLL_MS = 10
IDLE_POLL_MS = 200
# How often the loop tells the supervisor that it still turns (hung-worker detection).
HEARTBEAT_EVERY = 1.0
# After a failed REGISTER pjsua tries again this often (its default, 300 s, would leave a
# trunk's calls failing for five minutes after a registrar hiccup).
REGISTER_RETRY_EVERY = 30


class ClockThreadState:
    """Keeps a Python thread state for pjsua's media clock thread between frame callbacks.

    The clock thread is not Python's: for every callback SWIG's director makes a thread state
    and drops it afterwards, and a fresh thread state maps a new 16 KB frame stack, so each
    callback cost an mmap and a munmap. The bridge calls every tap of the worker, idle ones
    included, every 20 ms: measured 16 us a callback, against 3 us with the state kept (the
    line workers' largest cost in `dialer bench node`). pjsua stops the clock thread when the
    bridge has been idle a second and starts another later: the dead thread's state is freed
    when the next one first calls."""

    def __init__(self) -> None:
        self.native_id: int | None = None
        self.state: int | None = None

    def keep(self) -> None:
        """Called on the clock thread, with the GIL held."""
        native_id = threading.get_native_id()
        if native_id == self.native_id:
            return
        api = ctypes.pythonapi
        if self.state is not None and not os.path.exists(f"/proc/self/task/{self.native_id}"):
            api.PyThreadState_Clear(ctypes.c_void_p(self.state))
            api.PyThreadState_Delete(ctypes.c_void_p(self.state))
        # One more hold than the director's: its release then keeps the state alive.
        api.PyGILState_Ensure()
        api.PyGILState_GetThisThreadState.restype = ctypes.c_void_p
        self.state = api.PyGILState_GetThisThreadState()
        self.native_id = native_id


CLOCK_THREAD = ClockThreadState()


@dataclass(frozen=True)
class WorkerSettings:
    index: int
    trunks: dict[str, Trunk]
    bind_address: str
    rtp_port: int
    rtp_port_range: int
    calls_per_second: float
    log_level: int = 0
    # The priority the worker runs at: that of the thread that made the pool, even when the
    # thread that starts the worker runs higher (a node's loop, `dialer.node.node`).
    nice: int | None = None


class FrameTap(pj.AudioMediaPort):
    """Feeds 20 ms frames to a detector on pjsua's media thread; the main loop reads `verdict`.

    Closed (`listening` False) until the answer when its spec says `from_answer`: the media
    port is connected as soon as media is active, which for a 183 is before the answer."""

    def __init__(self) -> None:
        super().__init__()
        self.arm(None, False, False)

    def arm(self, detector: Any, listening: bool, answered: bool) -> None:
        """Ready for a call's frames (or, with no detector, for none)."""
        self.detector = detector
        self.listening = listening
        # Set by the main loop at the answer; the detector hears of it (`on_answer()`, if it
        # has one) on this media thread, just before the first frame after the answer.
        self.answered = answered
        self.told_answer = False
        self.verdict: str | None = None
        self.reason: str | None = None
        self.after_ms: int | None = None
        self.decided_at: float | None = None  # monotonic, taken on the frame that decided
        self.failure: str | None = None

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:
        try:
            CLOCK_THREAD.keep()
            if (
                self.detector is None
                or not self.listening
                or self.verdict is not None
                or self.failure is not None
            ):
                return
            if self.answered and not self.told_answer:
                self.told_answer = True
                on_answer = getattr(self.detector, "on_answer", None)
                if on_answer is not None:
                    on_answer()
            if getattr(self.detector, "idle", False):
                return  # it wants no frames for now: spare the costly copy out of pj
            if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size == FRAME_BYTES:
                pcm = bytes(frame.buf)
            else:
                # A frame without audio is still 20 ms of the call: detectors count time in
                # frames, so it goes in as silence rather than not at all.
                pcm = SILENT_FRAME
            verdict = self.detector.feed(pcm)
            if verdict is not None:
                self.decided_at = time.monotonic()
                self.reason = getattr(verdict, "reason", None)
                after_ms = getattr(verdict, "after_ms", None)
                self.after_ms = None if after_ms is None else int(after_ms)
                self.verdict = str(getattr(verdict, "kind", verdict))
        except Exception as error:  # an escaping exception keeps the call alive (SWIG trap)
            self.failure = f"{type(error).__name__}: {error}"


class TapPool:
    """Frame taps are made once and reused, never destroyed while the worker runs: pjmedia
    (2.14 and later) removes a port from its conference bridge asynchronously, and pjsua2
    frees an AudioMediaPort's memory at once, so the bridge could go on calling a port that
    no longer existed (measured: 2 line workers in 2,300 calls died of SIGSEGV). A tap given
    back waits `QUARANTINE_S` before its next call, so no late frame of one call reaches the
    next; the bridge calls an idle tap every 20 ms, which returns at once."""

    QUARANTINE_S = 1.0

    def __init__(self, worker_index: int) -> None:
        self.worker_index = worker_index
        self.made: list[FrameTap] = []
        self.idle: deque[tuple[float, FrameTap]] = deque()

    def take(self, detector: Any, listening: bool, answered: bool) -> FrameTap:
        if self.idle and self.idle[0][0] <= time.monotonic():
            _, tap = self.idle.popleft()
        else:
            tap = FrameTap()
            fmt = pj.MediaFormatAudio()
            fmt.init(pj.PJMEDIA_FORMAT_PCM, 8000, 1, 20000, 16)
            tap.createPort(f"tap-{self.worker_index}-{len(self.made)}", fmt)
            self.made.append(tap)
        tap.arm(detector, listening, answered)
        return tap

    def give_back(self, tap: FrameTap, audio: pj.AudioMedia | None) -> None:
        """`audio`: the live call the tap still hears (None once the call has ended, which
        took the bridge's connections with it)."""
        tap.arm(None, False, False)
        if audio is not None:
            with contextlib.suppress(pj.Error):
                audio.stopTransmit(tap)
        self.idle.append((time.monotonic() + self.QUARANTINE_S, tap))

    def clear(self) -> None:
        self.idle.clear()
        self.made.clear()


class Prompt(pj.AudioMediaPlayer):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.finished = False

    def onEof2(self) -> None:
        with contextlib.suppress(Exception):
            self.finished = True


@dataclass
class Attempt:
    command: ev.Originate
    dialed_at: float = 0.0
    started: float = 0.0  # monotonic, for the timeouts
    call: Line | None = None
    audio: pj.AudioMedia | None = None
    media_index: int = 0
    rtp: tuple[int, int] | None = None  # (received, lost) just before our hangup
    ringing_at: float | None = None
    answered_at: float | None = None
    provisional: bool = False
    ring_timed_out: bool = False
    no_response: bool = False
    hung_up_by_us: bool = False
    amd_verdict: str | None = None
    verdict_at: float | None = None  # monotonic: the start of the connect delay
    prompts: list[Prompt] = field(default_factory=list)
    waiting_prompts: list[str] = field(default_factory=list)
    recorder: pj.AudioMediaRecorder | None = None
    waiting_record: str | None = None
    tap: FrameTap | None = None
    waiting_tap: ev.TapSpec | None = None
    bridged_to: str | None = None
    ended: bool = False

    @property
    def attempt_id(self) -> str:
        return self.command.attempt_id


@dataclass(frozen=True)
class RegistrationState:
    registered: bool
    reason: str  # what the registrar said, for the Ended reason of calls that cannot go out


class TrunkAccount(pj.Account):
    """A trunk's pjsua account; with `register = true` it keeps a registration, which pjsua
    refreshes before it expires (and retries after a failure)."""

    def __init__(self, worker: Worker, trunk: str) -> None:
        super().__init__()
        self.worker = worker
        self.trunk = trunk

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        try:
            self.worker.registration_state(
                self.trunk, int(prm.code), str(prm.reason), int(prm.expiration)
            )
        except Exception:
            self.worker.log_exception("onRegState")


class Line(pj.Call):
    """A pjsua call. Every callback body is wrapped: an exception escaping a SWIG callback
    leaves `sys.last_traceback` holding the call, which later aborts the process."""

    def __init__(self, worker: Worker, account: pj.Account, attempt: Attempt) -> None:
        super().__init__(account)
        self.worker = worker
        self.attempt = attempt

    def onCallState(self, prm: pj.OnCallStateParam) -> None:
        try:
            self.worker.call_state(self.attempt, self.getInfo())
        except Exception:
            self.worker.log_exception("onCallState")

    def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
        try:
            info = self.getInfo()
            for media in info.media:
                if (
                    media.type == pj.PJMEDIA_TYPE_AUDIO
                    and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE
                ):
                    self.attempt.media_index = media.index
                    self.worker.media_active(self.attempt, self.getAudioMedia(media.index))
                    return
        except Exception:
            self.worker.log_exception("onCallMediaState")

    def onCallSdpCreated(self, prm: pj.OnCallSdpCreatedParam) -> None:
        try:
            trunk = self.worker.settings.trunks.get(self.attempt.command.trunk)
            # Our offer only: an answer to the far end's offer must keep to what it offered.
            if trunk is not None and not prm.remSdp.wholeSdp:
                prm.sdp.wholeSdp = offer_codecs(prm.sdp.wholeSdp, trunk.codecs)
        except Exception:
            self.worker.log_exception("onCallSdpCreated")

    def onDtmfDigit(self, prm: pj.OnDtmfDigitParam) -> None:
        try:
            method: ev.DtmfMethod = (
                "sip_info" if prm.method == pj.PJSUA_DTMF_METHOD_SIP_INFO else "rfc2833"
            )
            self.worker.emit(ev.DtmfReceived(self.attempt.attempt_id, prm.digit, method))
        except Exception:
            self.worker.log_exception("onDtmfDigit")


class Worker:
    def __init__(self, settings: WorkerSettings, commands: Connection, events: Connection) -> None:
        self.settings = settings
        self.commands = commands
        self.events = events
        # A burst of 2 absorbs the poll loop's jitter (with 1, a worker set to 40 calls/s made
        # 30/s); at 40/s it still starts at most 22 calls in any 500 ms, the window in which
        # pjsua's 64-slot ioqueue keeps closed sockets reserved.
        self.bucket = TokenBucket(settings.calls_per_second, burst=2.0)
        self.waiting: deque[tuple[ev.Originate, float]] = deque()  # (command, retry after)
        self.first_tried: dict[str, float] = {}
        self.attempts: dict[str, Attempt] = {}
        self.finished: list[Attempt] = []
        self.accounts: dict[str, pj.Account] = {}
        # Trunks with `register = true`: absent while the first REGISTER is in flight.
        self.registrations: dict[str, RegistrationState] = {}
        self.running = True
        self.cancelled_at = float("-inf")  # monotonic: the last CANCEL we sent
        self.sip_port = 0
        self.next_heartbeat = 0.0
        # One poll object for the loop's "any command?" check: Connection.poll builds a
        # selector on every call, which the loop makes after each wake.
        self.command_poller = select.poll()
        self.command_poller.register(commands.fileno(), select.POLLIN)
        self.ep = pj.Endpoint()
        self.taps = TapPool(settings.index)

    # -- set-up and tear-down

    def start(self) -> int:
        quiet_lib_create(self.ep)
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = SLOTS
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        cfg.medConfig.clockRate = 8000
        cfg.medConfig.sndClockRate = 8000
        cfg.logConfig.level = self.settings.log_level
        cfg.logConfig.consoleLevel = self.settings.log_level
        # The SIP message logger prints whole messages at level 4 and up; below that it only
        # costs a module pass on every message.
        cfg.logConfig.msgLogging = self.settings.log_level >= 4
        self.ep.libInit(cfg)
        sip_port = 0
        trunks = self.settings.trunks.values()
        transports = {t.transport for t in trunks} | {"udp"}
        for name in ("udp", "tcp", "tls"):
            if name not in transports:
                continue
            tc = transport_config(name, self.settings.bind_address, trunks)
            tid = self.ep.transportCreate(KINDS[name], tc)
            if name == "udp":
                sip_port = int(self.ep.transportGetInfo(tid).localName.rsplit(":", 1)[1])
        self.ep.libStart()
        self.ep.audDevManager().setNullDev()
        self._codec_priorities()
        self.sip_port = sip_port
        for trunk in self.settings.trunks.values():
            if trunk.register:
                self._register(trunk)
        return sip_port

    def _register(self, trunk: Trunk) -> None:
        """Create the trunk's account now, so it registers before the first call needs it."""
        try:
            self.account(trunk)
        except Exception as error:  # e.g. the password's environment variable is not set
            self.registration_state(trunk.name, 0, f"cannot register: {error}", 0)

    def _codec_priorities(self) -> None:
        wanted: list[str] = []
        for trunk in self.settings.trunks.values():
            wanted += [c for c in trunk.codecs if c not in wanted]
        if not wanted:
            return
        for codec in self.ep.codecEnum2():
            short = codec.codecId.split("/")[0]
            priority = 255 - wanted.index(short) if short in wanted else 0
            self.ep.codecSetPriority(codec.codecId, priority)

    def account(self, trunk: Trunk) -> pj.Account:
        account = self.accounts.pop(trunk.name, None)
        if account is not None:
            self.accounts[trunk.name] = account  # most recently used last
            return account
        self._make_room_for_an_account()
        cfg = pj.AccountConfig()
        cfg.idUri = trunk.from_uri
        if trunk.register:
            # The registrar binds the account's address of record, as `dialer trunk check`
            # registers it; INVITEs then come From that same registered account.
            cfg.idUri = f"sip:{trunk.username}@{trunk.host}"
            registrar = f"sip:{trunk.host}:{trunk.port}"
            if trunk.transport != "udp":
                registrar += f";transport={trunk.transport}"
            cfg.regConfig.registrarUri = registrar
            cfg.regConfig.timeoutSec = trunk.register_expires
            cfg.regConfig.retryIntervalSec = REGISTER_RETRY_EVERY
        if trunk.outbound_proxy:
            cfg.sipConfig.proxies.append(f"sip:{trunk.outbound_proxy};lr")
        password = trunk.password()
        if trunk.username and password is not None:
            cfg.sipConfig.authCreds.append(
                pj.AuthCredInfo("digest", trunk.realm or "*", trunk.username, 0, password)
            )
        media = cfg.mediaConfig.transportConfig
        media.port = self.settings.rtp_port
        media.portRange = self.settings.rtp_port_range
        media.boundAddress = self.settings.bind_address
        media.publicAddress = self.settings.bind_address
        # Test peers and many carriers reject the re-INVITE pjsua sends to lock one codec.
        cfg.mediaConfig.lockCodecEnabled = False
        account = TrunkAccount(self, trunk.name)
        account.create(cfg)
        self.accounts[trunk.name] = account
        return account

    def _make_room_for_an_account(self) -> None:
        if len(self.accounts) >= MAX_ACCOUNTS:
            # Registered accounts stay: dropping one would unregister its trunk.
            busy = {a.command.trunk for a in self.attempts.values()} | {AGENT_ACCOUNT}
            busy |= set(self.registrations)
            idle = next((name for name in self.accounts if name not in busy), None)
            if idle is None:
                raise ValueError(f"more than {MAX_ACCOUNTS} trunks in use in one line worker")
            self.accounts.pop(idle).shutdown()

    def agent_account(self) -> pj.Account:
        """A registrar-less account for agent phones, which the dialer calls directly."""
        account = self.accounts.get(AGENT_ACCOUNT)
        if account is not None:
            return account
        self._make_room_for_an_account()  # a 9th account aborts the process (PJSUA_MAX_ACC)
        cfg = pj.AccountConfig()
        cfg.idUri = f"sip:dialer@{self.settings.bind_address}:{self.sip_port}"
        media = cfg.mediaConfig.transportConfig
        media.port = self.settings.rtp_port
        media.portRange = self.settings.rtp_port_range
        media.boundAddress = self.settings.bind_address
        media.publicAddress = self.settings.bind_address
        cfg.mediaConfig.lockCodecEnabled = False  # softphones reject it too, as trunks do
        account = pj.Account()
        account.create(cfg)
        self.accounts[AGENT_ACCOUNT] = account
        return account

    def shutdown(self) -> None:
        for command, _ in self.waiting:
            self._end_unplaced(command, "line pool stopped before dialing")
        self.waiting.clear()
        for attempt in list(self.attempts.values()):
            attempt.hung_up_by_us = True
            if attempt.answered_at is None:
                self.cancelled_at = time.monotonic()
        self.ep.hangupAllCalls()
        deadline = time.monotonic() + 3.0
        while self.attempts and time.monotonic() < deadline:
            self.ep.libHandleEvents(10)
            self.reap()
        for attempt in list(self.attempts.values()):
            self.finish(attempt, 500, "line worker stopped before the call ended")
        self.reap()
        while time.monotonic() < self.cancelled_at + CANCEL_GRACE_S:
            self.ep.libHandleEvents(10)
        time.sleep(0.1)
        self.taps.clear()
        for account in self.accounts.values():
            account.shutdown()
        self.accounts.clear()
        self.ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)

    # -- the loop

    def run(self) -> None:
        while self.running:
            self.ep.libHandleEvents(self.poll_ms())
            self.reap()
            while self.running and self.command_poller.poll(0):
                try:
                    command = self.commands.recv()
                except EOFError:  # the supervisor is gone: stop as cleanly as we can
                    self.running = False
                    break
                self.handle(command)
            self.reap()
            self.launch()
            self.check_timers()
            self.reap()
            self.heartbeat()

    def poll_ms(self) -> int:
        """How long the next libHandleEvents may wait (see IDLE_POLL_MS)."""
        if self.waiting:
            return BUSY_POLL_MS
        now = time.monotonic()
        wait = min(IDLE_POLL_MS / 1000, self.next_heartbeat - now)
        for attempt in self.attempts.values():
            if attempt.prompts or (attempt.tap is not None and attempt.tap.listening):
                return BUSY_POLL_MS
            ringing = attempt.call is not None and attempt.answered_at is None
            if ringing and not attempt.hung_up_by_us:
                command = attempt.command
                timeout = command.ring_timeout
                if not attempt.provisional:
                    timeout = min(timeout, command.no_response_timeout)
                wait = min(wait, attempt.started + timeout - now)
        return max(BUSY_POLL_MS, int(1000 * wait))

    def heartbeat(self) -> None:
        now = time.monotonic()
        if now >= self.next_heartbeat:
            self.next_heartbeat = now + HEARTBEAT_EVERY
            self.emit(ev.Heartbeat(self.settings.index))

    def handle(self, command: ev.Command) -> None:
        if isinstance(command, ev.Shutdown):
            self.running = False
            return
        if isinstance(command, ev.Originate):
            if command.uri is not None:
                # A person is waiting on the other leg: the agent leg goes before new dials.
                self.waiting.appendleft((command, 0.0))
            else:
                self.waiting.append((command, 0.0))
            return
        attempt = self.attempts.get(command.attempt_id)
        if attempt is None or attempt.call is None:
            for waiting, _ in self.waiting:
                if isinstance(command, ev.Hangup) and waiting.attempt_id == command.attempt_id:
                    self.waiting = deque(w for w in self.waiting if w[0] is not waiting)
                    self._end_unplaced(waiting, "hung up before dialing")
                    return
            self.emit(ev.CommandFailed(command.attempt_id, type(command).__name__, "no live call"))
            return
        try:
            self._apply(attempt, command)
        except pj.Error as error:
            self.emit(
                ev.CommandFailed(attempt.attempt_id, type(command).__name__, error.info(False))
            )
        except Exception as error:  # one bad command must not take the worker's 4 calls down
            self.emit(ev.CommandFailed(attempt.attempt_id, type(command).__name__, repr(error)))

    def _apply(self, attempt: Attempt, command: ev.Command) -> None:
        call = attempt.call
        assert call is not None
        if isinstance(command, ev.Hangup):
            attempt.hung_up_by_us = True
            if attempt.audio is not None:
                rx = call.getStreamStat(attempt.media_index).rtcp.rxStat
                attempt.rtp = (int(rx.pkt), int(rx.loss))
            self.hang_up(attempt)
        elif isinstance(command, ev.Play):
            attempt.waiting_prompts.append(command.path)
            self.connect_media(attempt)
        elif isinstance(command, ev.Record):
            attempt.waiting_record = command.path
            self.connect_media(attempt)
        elif isinstance(command, ev.StopRecord):
            attempt.recorder = None  # the WAV header is written one frame after deletion
        elif isinstance(command, ev.SendDtmf):
            if command.method == "sip_info":
                param = pj.CallSendDtmfParam()  # duration defaults to pjsua's 160 ms
                param.method = pj.PJSUA_DTMF_METHOD_SIP_INFO
                param.digits = command.digits
                call.sendDtmf(param)
            else:
                call.dialDtmf(command.digits)
        elif isinstance(command, ev.AttachTap):
            attempt.waiting_tap = command.tap
            self.connect_media(attempt)
        elif isinstance(command, ev.Bridge):
            other = self.attempts.get(command.other_attempt_id)
            if other is None or other.audio is None or attempt.audio is None:
                reason = "both legs need active media in this worker"
                self.emit(ev.CommandFailed(attempt.attempt_id, "Bridge", reason))
                return
            attempt.audio.startTransmit(other.audio)
            other.audio.startTransmit(attempt.audio)
            bridged_at = time.monotonic()
            attempt.bridged_to, other.bridged_to = other.attempt_id, attempt.attempt_id
            verdict_at = attempt.verdict_at or other.verdict_at
            delay = None if verdict_at is None else 1000.0 * (bridged_at - verdict_at)
            recording = None
            if command.record_path is not None:
                recording = self.record_both(attempt, other, command.record_path)
            self.emit(
                ev.Bridged(attempt.attempt_id, other.attempt_id, time.time(), delay, recording)
            )

    def record_both(self, attempt: Attempt, other: Attempt, path: str) -> str | None:
        """One recorder fed by both legs: the conference bridge mixes what it receives from
        each into the recorder's port, so the WAV holds the whole conversation. It belongs to
        `attempt` and is finalised when that leg ends (or at StopRecord)."""
        assert attempt.audio is not None and other.audio is not None
        recorder = pj.AudioMediaRecorder()
        try:
            recorder.createRecorder(path)
        except pj.Error as error:
            self.emit(ev.CommandFailed(attempt.attempt_id, "Record", error.info(False)))
            return None
        attempt.audio.startTransmit(recorder)
        other.audio.startTransmit(recorder)
        attempt.recorder = recorder
        return path

    def launch(self) -> None:
        now = time.monotonic()
        live = sum(1 for a in self.attempts.values() if a.call is not None)
        while self.waiting and live < SLOTS:
            command, retry_after = self.waiting[0]
            if retry_after > now or not self.bucket.take(now):
                return
            self.waiting.popleft()
            if self.place(command):
                live += 1
            elif self.waiting and self.waiting[0][0] is command:
                return  # put back at the head for a slot retry

    def place(self, command: ev.Originate) -> bool:
        trunk = self.settings.trunks.get(command.trunk)
        attempt = Attempt(command=command, dialed_at=time.time(), started=time.monotonic())
        identity: CallerIdentity | None = None
        try:
            if command.uri is not None:
                uri, account = command.uri, self.agent_account()
            elif trunk is None:
                raise ValueError(f"no trunk named {command.trunk!r} in this worker")
            else:
                if trunk.register and not self._registered(command, trunk):
                    return False
                uri, account = trunk.request_uri(command.number), self.account(trunk)
                if command.caller_id is not None:
                    identity = trunk.caller_identity(command.caller_id)
        except Exception as error:
            self._end_unplaced(command, f"cannot dial: {error}")
            return False
        attempt.waiting_tap = command.tap
        self.attempts[command.attempt_id] = attempt
        call = Line(self, account, attempt)
        attempt.call = call
        prm = pj.CallOpParam(True)
        headers = list(command.headers)
        if trunk is not None and command.uri is None:
            asserted = trunk.p_asserted_identity
            if identity is not None:
                if identity.from_uri is not None:
                    prm.txOption.localUri = identity.from_uri
                asserted = identity.p_asserted_identity
            if asserted:
                headers.append(("P-Asserted-Identity", asserted))
        for name, value in headers:
            header = pj.SipHeader()
            header.hName = name
            header.hValue = value
            prm.txOption.headers.append(header)
        try:
            call.makeCall(uri, prm)
        except pj.Error as error:
            attempt.call = None
            del self.attempts[command.attempt_id]
            first = self.first_tried.setdefault(command.attempt_id, attempt.started)
            if error.status == PJ_ETOOMANY and attempt.started - first < SLOT_RETRY_FOR:
                self.waiting.appendleft((command, time.monotonic() + 0.05))
                return False
            self.first_tried.pop(command.attempt_id, None)
            self._end_unplaced(command, f"makeCall failed: {error.info(False)}")
            return False
        self.first_tried.pop(command.attempt_id, None)
        return True

    def _registered(self, command: ev.Originate, trunk: Trunk) -> bool:
        """Whether a call may go out on a registering trunk; if not, the command either waits
        for the first REGISTER's answer (back at the head of the queue) or has ended."""
        state = self.registrations.get(trunk.name)
        if state is not None and state.registered:
            return True
        if state is not None:
            self.first_tried.pop(command.attempt_id, None)
            self._end_unplaced(command, f"trunk {trunk.name} is not registered: {state.reason}")
            return False
        now = time.monotonic()
        first = self.first_tried.setdefault(command.attempt_id, now)
        if now - first < trunk.no_response_timeout:
            self.waiting.appendleft((command, now + 0.05))
            return False
        self.first_tried.pop(command.attempt_id, None)
        self._end_unplaced(
            command,
            f"trunk {trunk.name} is not registered: no answer to REGISTER "
            f"in {trunk.no_response_timeout:g} s",
        )
        return False

    def registration_state(self, trunk: str, code: int, reason: str, expires: int) -> None:
        registered = 200 <= code < 300 and expires > 0
        if registered:
            why = f"{code} {reason}"
        elif code:
            why = f"REGISTER got {code} {reason}"
        else:
            why = reason
        self.registrations[trunk] = RegistrationState(registered, why)
        if self.running:  # not the un-REGISTER of a worker shutting down
            self.emit(
                ev.Registration(trunk, self.settings.index, registered, code, why, expires or None)
            )

    def hang_up(self, attempt: Attempt) -> None:
        assert attempt.call is not None
        if attempt.answered_at is None:  # in CALLING/EARLY this sends CANCEL
            self.cancelled_at = time.monotonic()
        attempt.call.hangup(pj.CallOpParam(True))

    def check_timers(self) -> None:
        now = time.monotonic()
        for attempt in list(self.attempts.values()):
            if attempt.call is None or attempt.answered_at is not None or attempt.hung_up_by_us:
                continue
            age = now - attempt.started
            if age >= attempt.command.ring_timeout:
                attempt.ring_timed_out = True
            elif not attempt.provisional and age >= attempt.command.no_response_timeout:
                attempt.no_response = True
            else:
                continue
            attempt.hung_up_by_us = True
            self.hang_up(attempt)
        for attempt in list(self.attempts.values()):
            tap = attempt.tap
            if tap is not None and (tap.verdict is not None or tap.failure is not None):
                attempt.tap = None
                verdict, failure, reason = tap.verdict, tap.failure, tap.reason
                after_ms, decided_at = tap.after_ms, tap.decided_at
                self.taps.give_back(tap, attempt.audio)
                if verdict is not None:
                    attempt.amd_verdict = verdict
                    attempt.verdict_at = decided_at
                    self.emit(
                        ev.AmdVerdict(
                            attempt.attempt_id,
                            verdict,
                            time.time(),
                            reason=reason,
                            after_ms=after_ms,
                            at_monotonic=decided_at,
                        )
                    )
                else:
                    self.emit(ev.CommandFailed(attempt.attempt_id, "AttachTap", str(failure)))
            finished = [p for p in attempt.prompts if p.finished]
            if finished:
                attempt.prompts = [p for p in attempt.prompts if not p.finished]
                for prompt in finished:
                    self.emit(ev.PromptFinished(attempt.attempt_id, prompt.path))

    # -- callbacks (main thread, inside libHandleEvents, makeCall or hangup)

    def call_state(self, attempt: Attempt, info: pj.CallInfo) -> None:
        code = int(info.lastStatusCode)
        if info.state == pj.PJSIP_INV_STATE_EARLY and code in (180, 181, 182, 183):
            if not attempt.provisional:
                attempt.ringing_at = time.time()
            attempt.provisional = True
            self.emit(ev.Progress(attempt.attempt_id, code, time.time()))
        elif info.state == pj.PJSIP_INV_STATE_CONFIRMED and attempt.answered_at is None:
            attempt.answered_at = time.time()
            if attempt.tap is not None:
                attempt.tap.listening = True
                attempt.tap.answered = True
            self.emit(ev.Answered(attempt.attempt_id, attempt.answered_at))
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            self.finish(attempt, code, str(info.lastReason))

    def media_active(self, attempt: Attempt, audio: pj.AudioMedia) -> None:
        attempt.audio = audio
        self.connect_media(attempt)

    def connect_media(self, attempt: Attempt) -> None:
        audio = attempt.audio
        if audio is None:
            return  # early media or the answer will bring it
        while attempt.waiting_prompts:
            path = attempt.waiting_prompts.pop(0)
            prompt = Prompt(path)
            try:
                prompt.createPlayer(path, pj.PJMEDIA_FILE_NO_LOOP)
            except pj.Error as error:
                self.emit(ev.CommandFailed(attempt.attempt_id, "Play", error.info(False)))
                continue
            prompt.startTransmit(audio)
            attempt.prompts.append(prompt)
        if attempt.waiting_record is not None:
            path, attempt.waiting_record = attempt.waiting_record, None
            recorder = pj.AudioMediaRecorder()
            try:
                recorder.createRecorder(path)
            except pj.Error as error:
                self.emit(ev.CommandFailed(attempt.attempt_id, "Record", error.info(False)))
            else:
                audio.startTransmit(recorder)
                attempt.recorder = recorder
        if attempt.waiting_tap is not None and attempt.tap is None:
            spec, attempt.waiting_tap = attempt.waiting_tap, None
            try:
                answered = attempt.answered_at is not None
                listening = not spec.from_answer or answered
                tap = self.taps.take(build_detector(spec), listening, answered)
            except Exception as error:
                self.emit(ev.CommandFailed(attempt.attempt_id, "AttachTap", str(error)))
            else:
                audio.startTransmit(tap)
                attempt.tap = tap

    def finish(self, attempt: Attempt, code: int, reason: str) -> None:
        if attempt.ended:
            return
        attempt.ended = True
        answered = attempt.answered_at is not None
        if attempt.no_response:
            code, reason = (
                408,
                f"no response from the trunk in {attempt.command.no_response_timeout:g} s",
            )
        elif attempt.ring_timed_out:
            reason = f"no answer in {attempt.command.ring_timeout:g} s (cancelled)"
        elif answered:
            reason = "hung up by the dialer" if attempt.hung_up_by_us else "far end hung up"
        outcome = classify(
            code,
            answered=answered,
            ring_timed_out=attempt.ring_timed_out,
            amd_verdict=attempt.amd_verdict,
        )
        if attempt.no_response:
            outcome = "failed"  # a silent trunk says nothing about the lead
        elif "(PJSIP_TLS_" in reason:
            # pjsua's own 503 for a TLS session it refused (certificate, handshake): our
            # trunk's configuration, not a carrier too busy to take the call.
            outcome = "failed"
        timings = ev.Timings(
            attempt.dialed_at, attempt.ringing_at, attempt.answered_at, time.time()
        )
        received, lost = attempt.rtp if attempt.rtp is not None else (None, None)
        self.emit(
            ev.Ended(
                attempt.attempt_id,
                code,
                reason,
                outcome,
                timings,
                attempt.amd_verdict,
                rtp_received=received,
                rtp_lost=lost,
            )
        )
        self.finished.append(attempt)

    def reap(self) -> None:
        """Drop every pj object of ended attempts, before any new makeCall can reuse the slot:
        a stale Call keeps its slot id, and deleting it later hangs up the call in that slot."""
        while self.finished:
            attempt = self.finished.pop()
            peer = self.attempts.get(attempt.bridged_to or "")
            if peer is not None:
                peer.bridged_to = None
            if attempt.tap is not None:
                self.taps.give_back(attempt.tap, None)
            attempt.tap = None
            attempt.prompts.clear()
            attempt.recorder = None
            attempt.audio = None
            if attempt.call is not None:
                attempt.call.attempt = None  # type: ignore[assignment]
            attempt.call = None
            self.attempts.pop(attempt.attempt_id, None)

    def _end_unplaced(self, command: ev.Originate, reason: str) -> None:
        now = time.time()
        self.emit(
            ev.Ended(command.attempt_id, 0, reason, "failed", ev.Timings(now, None, None, now))
        )

    def emit(self, event: ev.Event) -> None:
        # Connection.send pickles through a ForkingPickler, which copies the copyreg table for
        # every message; events hold no file descriptors, so plain pickle does.
        self.events.send_bytes(pickle.dumps(event, pickle.HIGHEST_PROTOCOL))

    def log_exception(self, where: str) -> None:
        print(f"line worker {self.settings.index}: error in {where}", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
        sys.last_traceback = None  # never let a traceback hold a Call alive
        sys.last_value = None


def quiet_lib_create(ep: pj.Endpoint) -> None:
    """libCreate prints a banner on fd 1 before any log setting applies: it would land in the
    middle of `dialer call --json` output, so fd 1 points at /dev/null meanwhile."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        ep.libCreate()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def quiet_signalling_endpoint() -> pj.Endpoint:
    """An endpoint for SIP signalling only, polled from the calling thread and silent: the
    registration check, and the TLS carrier of the tests."""
    ep = pj.Endpoint()
    quiet_lib_create(ep)
    cfg = pj.EpConfig()
    cfg.uaConfig.threadCnt = 0
    cfg.uaConfig.mainThreadOnly = True
    cfg.logConfig.level = 0
    cfg.logConfig.consoleLevel = 0
    ep.libInit(cfg)
    return ep


def build_detector(spec: ev.TapSpec) -> Any:
    module_name, _, attribute = spec.factory.partition(":")
    factory: Callable[..., Any] = getattr(importlib.import_module(module_name), attribute)
    return factory(**spec.options)


# The detectors a campaign's calls tap (AMD, special information tones), imported before the
# worker says it is ready: imported at a call's answer instead, numpy and webrtcvad cost ten
# workers starting together more than a second, and the first calls' taps missed the start of
# their greeting or the whole intercept tone.
PRELOADED = ("dialer.amd", "dialer.sit")


def main(settings: WorkerSettings, commands: Connection, events: Connection) -> None:
    """Process entry point (multiprocessing spawn)."""
    # Ctrl-C reaches the whole process group; the supervisor decides when its workers stop,
    # and a worker interrupted mid-loop would skip the clean pjsua shutdown.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if settings.nice is not None and os.getpriority(os.PRIO_PROCESS, 0) < settings.nice:
        os.setpriority(os.PRIO_PROCESS, 0, settings.nice)  # lowering needs no privilege
    # A crash inside pjsua (SIGSEGV, SIGABRT) prints every thread's Python stack on stderr:
    # the supervisor replaces the worker, and the log says where it was.
    faulthandler.enable()
    for module in PRELOADED:
        importlib.import_module(module)
    worker = Worker(settings, commands, events)
    try:
        sip_port = worker.start()
        worker.emit(ev.WorkerReady(settings.index, os.getpid(), sip_port))
        worker.run()
        worker.shutdown()
    except (BrokenPipeError, EOFError):
        pass
    finally:
        # Calls and players must not outlive libDestroy: drop every reference now.
        worker.attempts.clear()
        worker.finished.clear()
        worker.taps.clear()
