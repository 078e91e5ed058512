"""AMD through real SIP: SIPp answers and plays each greeting, pjsua2 taps the frames.

The parent (`classify_over_sip`) runs one child process (`python -m dialer.bench.amd_sip`),
because a process may hold only one pjsua2 Endpoint. The child starts one SIPp UAS per greeting
(scenario `tests/sipp/amd_greeting_uas.xml`, the greeting as an A-law RTP pcap in its working
directory), dials it from a pjsua2 account on loopback with at most `concurrency` calls at once,
feeds every 20 ms frame of the answered call to an `AmdDetector` through an `AudioMediaPort`,
hangs up on the verdict, and prints one JSON object per greeting. Loopback only.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dialer.amd import FRAME_BYTES, AmdDetector, AmdSettings, Verdict

LOOPBACK = "127.0.0.1"
DEFAULT_SCENARIO = Path(__file__).resolve().parents[2] / "tests" / "sipp" / "amd_greeting_uas.xml"
# pjsua2 is compiled with PJSUA_MAX_CALLS = 4 (ARCHITECTURE §6).
MAX_CALLS_PER_PROCESS = 4
# No verdict by then is a broken call, not a "notsure": the detector decides within 5 s.
CALL_DEADLINE_S = 20.0
PJ_ETOOMANY = 70010
# The scenario pauses 0.5 s after answering the BYE.
SIPP_EXIT_GRACE_S = 5.0


def free_udp_ports(count: int, span: int = 1, avoid: range = range(0)) -> list[int]:
    """`count` loopback UDP ports, each with `span` consecutive free ports from it, none in
    `avoid` (a range reserved but not yet bound, such as pjsua's RTP ports)."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((LOOPBACK, 0))
            base = probe.getsockname()[1]
        overlaps_chosen = any(abs(base - chosen) < span for chosen in ports)
        overlaps_avoided = any(base <= port < base + span for port in avoid)
        if base % 2 or base + span > 65535 or overlaps_chosen or overlaps_avoided:
            continue
        try:
            with contextlib.ExitStack() as stack:
                for offset in range(span):
                    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    sock.bind((LOOPBACK, base + offset))
        except OSError:
            continue
        ports.append(base)
    return ports


def _bound_udp_ports() -> set[int]:
    """Local UDP ports bound on this host, read from /proc (probing by bind would race SIPp)."""
    ports = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            next(rows)
            for row in rows:
                ports.add(int(row.split()[1].rsplit(":", 1)[1], 16))
    return ports


@dataclass
class GreetingPeer:
    """One SIPp UAS that answers once and plays one greeting."""

    name: str
    pcap: Path
    scenario: Path
    avoid_ports: range = range(0)
    sip_port: int = 0
    media_port: int = 0
    control_port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.sip_port, self.media_port, self.control_port = free_udp_ports(
            3, span=4, avoid=self.avoid_ports
        )
        self.process = subprocess.Popen(
            [
                "sipp",
                "-sf",
                str(self.scenario),
                "-i",
                LOOPBACK,
                "-p",
                str(self.sip_port),
                "-mi",
                LOOPBACK,
                "-mp",
                str(self.media_port),
                "-cp",
                str(self.control_port),
                "-nostdin",
                "-timeout",
                "60s",
                "-m",
                "1",
                "-trace_err",
                "-error_file",
                str(self.pcap.parent / "sipp-errors.log"),
            ],
            cwd=self.pcap.parent,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_until_listening(self, pump: Callable[[], None], timeout_s: float = 10.0) -> bool:
        """True once SIPp has bound its SIP port; `pump` keeps the other calls' SIP moving
        meanwhile (an INVITE sent before the bind is lost and costs a 500 ms resend)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.sip_port in _bound_udp_ports():
                return True
            if self.process is None or self.process.poll() is not None:
                return False
            pump()
        return False

    def exit_code(self) -> int | None:
        """SIPp's exit status, or None while it still runs."""
        return None if self.process is None else self.process.poll()

    def errors(self) -> str:
        """What SIPp logged about a failed call (its first event), for the outcome."""
        log = self.pcap.parent / "sipp-errors.log"
        text = log.read_text(errors="replace") if log.exists() else "no error log"
        events = [line for line in text.splitlines() if "pcap files next to" not in line]
        return " ".join(events)[:400]

    @property
    def uri(self) -> str:
        return f"sip:greeting@{LOOPBACK}:{self.sip_port}"

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@dataclass
class SipOutcome:
    name: str
    verdict: dict[str, Any] | None = None
    status_code: int | None = None
    error: str | None = None
    frames: int = 0
    sipp_exit: int | None = None
    started: float = field(default=0.0, repr=False)


def _describe(error: Exception) -> str:
    """pjsua2 errors repr as a SWIG proxy; their status and reason are what tell the cause."""
    status, reason = getattr(error, "status", None), getattr(error, "reason", None)
    return f"pjsua2 status {status}: {reason}" if reason is not None else repr(error)


def _child_main(request: dict[str, Any]) -> list[SipOutcome]:
    import pjsua2 as pj

    settings = AmdSettings(**request.get("settings", {}))
    concurrency = min(MAX_CALLS_PER_PROCESS, int(request.get("concurrency", 3)))
    scenario = Path(request["scenario"])

    class FrameTap(pj.AudioMediaPort):
        """Feeds every received 20 ms frame to the call's detector (media clock thread)."""

        def __init__(self, detector: AmdDetector) -> None:
            super().__init__()
            self.detector = detector
            self.frames = 0

        def onFrameReceived(self, frame: pj.MediaFrame) -> None:
            try:
                pcm = bytes(frame.buf) if frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO else b""
                # A missing frame is 20 ms of silence: the detector counts time in frames.
                self.frames += 1
                self.detector.feed(pcm if len(pcm) == FRAME_BYTES else bytes(FRAME_BYTES))
            except Exception as error:  # an escaping exception would pin the call (SIP-NOTES)
                print(f"frame tap: {error!r}", file=sys.stderr)

    class GreetingCall(pj.Call):
        def __init__(self, account: pj.Account, outcome: SipOutcome) -> None:
            super().__init__(account)
            self.outcome = outcome
            self.detector = AmdDetector(settings)
            self.tap: FrameTap | None = None
            self.disconnected = False
            self.hung_up = False

        def onCallState(self, prm: pj.OnCallStateParam) -> None:
            try:
                info = self.getInfo()
                if info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                    self.outcome.status_code = info.lastStatusCode
                    self.disconnected = True
            except Exception as error:
                self.outcome.error = _describe(error)
                self.disconnected = True

        def onCallMediaState(self, prm: pj.OnCallMediaStateParam) -> None:
            try:
                # Keep the CallInfo alive while reading its media: iterating the vector of a
                # temporary reads freed memory.
                info = self.getInfo()
                for media in info.media:
                    if (
                        media.type == pj.PJMEDIA_TYPE_AUDIO
                        and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE
                        and self.tap is None
                    ):
                        tap = FrameTap(self.detector)
                        fmt = pj.MediaFormatAudio()
                        fmt.init(pj.PJMEDIA_FORMAT_PCM, 8000, 1, 20000, 16)
                        tap.createPort(f"amd-{self.outcome.name}", fmt)
                        self.getAudioMedia(media.index).startTransmit(tap)
                        self.tap = tap
            except Exception as error:
                self.outcome.error = _describe(error)
                print(f"media state: {_describe(error)}", file=sys.stderr)

    endpoint = pj.Endpoint()
    # libCreate prints a banner on fd 1, which carries our JSON: send it to stderr.
    sys.stdout.flush()
    saved_stdout = os.dup(1)
    os.dup2(2, 1)
    try:
        endpoint.libCreate()
    finally:
        os.dup2(saved_stdout, 1)
        os.close(saved_stdout)
    config = pj.EpConfig()
    config.uaConfig.threadCnt = 0
    config.uaConfig.mainThreadOnly = True
    config.uaConfig.maxCalls = MAX_CALLS_PER_PROCESS
    config.medConfig.noVad = True
    config.medConfig.ecTailLen = 0
    config.medConfig.clockRate = 8000
    config.medConfig.sndClockRate = 8000
    config.logConfig.level = 0
    config.logConfig.consoleLevel = 0
    endpoint.libInit(config)
    sip_port, rtp_port = free_udp_ports(1)[0], free_udp_ports(1, span=64)[0]
    transport = pj.TransportConfig()
    transport.port = sip_port
    transport.boundAddress = LOOPBACK
    transport.publicAddress = LOOPBACK
    endpoint.transportCreate(pj.PJSIP_TRANSPORT_UDP, transport)
    endpoint.libStart()
    endpoint.audDevManager().setNullDev()
    account_config = pj.AccountConfig()
    account_config.idUri = f"sip:dialer@{LOOPBACK}:{sip_port}"
    account_config.mediaConfig.transportConfig.port = rtp_port
    account_config.mediaConfig.transportConfig.portRange = 64
    account_config.mediaConfig.transportConfig.boundAddress = LOOPBACK
    account_config.mediaConfig.transportConfig.publicAddress = LOOPBACK
    # SIPp's scenario does not expect the codec-locking re-INVITE (SIP-NOTES).
    account_config.mediaConfig.lockCodecEnabled = False
    account = pj.Account()
    account.create(account_config)

    rtp_ports = range(rtp_port, rtp_port + 64)

    def start_call(greeting: dict[str, str]) -> tuple[GreetingCall, GreetingPeer]:
        peer = GreetingPeer(greeting["name"], Path(greeting["pcap"]), scenario, rtp_ports)
        peer.start()
        outcome = SipOutcome(greeting["name"], started=time.monotonic())
        if not peer.wait_until_listening(lambda: endpoint.libHandleEvents(10)):
            outcome.error = f"SIPp did not bind port {peer.sip_port}"
        for _ in range(50):
            call = GreetingCall(account, outcome)
            try:
                call.makeCall(peer.uri, pj.CallOpParam(True))
                outcome.error = None
                return call, peer
            except Exception as error:
                outcome.error = _describe(error)
                if getattr(error, "status", None) != PJ_ETOOMANY:
                    break
            # Just after a DISCONNECTED the call slot is not free yet (SIP-NOTES): retry shortly.
            endpoint.libHandleEvents(20)
        call.disconnected = True
        return call, peer

    def sweep(
        active: list[tuple[GreetingCall, GreetingPeer]],
        draining: list[tuple[SipOutcome, GreetingPeer, float]],
    ) -> list[tuple[GreetingCall, GreetingPeer]]:
        """Hang up decided calls; move disconnected ones to `draining` and drop them (in a
        function, so that no loop variable keeps a `Call` alive: SIP-NOTES)."""
        still_active = []
        for call, peer in active:
            late = time.monotonic() - call.outcome.started > CALL_DEADLINE_S
            if not call.hung_up and not call.disconnected and (call.detector.verdict or late):
                call.hung_up = True
                call.hangup(pj.CallOpParam(True))
            if call.disconnected:
                verdict = call.detector.verdict
                call.outcome.verdict = asdict(verdict) if verdict else None
                call.outcome.frames = call.tap.frames if call.tap else 0
                call.tap = None
                draining.append((call.outcome, peer, time.monotonic() + SIPP_EXIT_GRACE_S))
            else:
                still_active.append((call, peer))
        return still_active

    def reap(
        draining: list[tuple[SipOutcome, GreetingPeer, float]], outcomes: list[SipOutcome]
    ) -> list[tuple[SipOutcome, GreetingPeer, float]]:
        """Record SIPp's exit for finished calls without ever blocking the SIP event loop."""
        still_draining = []
        for outcome, peer, deadline in draining:
            exit_code = peer.exit_code()
            if exit_code is None and time.monotonic() < deadline:
                still_draining.append((outcome, peer, deadline))
                continue
            peer.kill()
            outcome.sipp_exit = exit_code
            if exit_code != 0 and outcome.error is None:
                outcome.error = f"SIPp: {peer.errors()}"
            outcomes.append(outcome)
        return still_draining

    pending = deque(request["greetings"])
    active: list[tuple[GreetingCall, GreetingPeer]] = []
    draining: list[tuple[SipOutcome, GreetingPeer, float]] = []
    outcomes: list[SipOutcome] = []
    try:
        while pending or active or draining:
            while pending and len(active) < concurrency:
                active.append(start_call(pending.popleft()))
            endpoint.libHandleEvents(10)
            active = sweep(active, draining)
            draining = reap(draining, outcomes)
    finally:
        endpoint.hangupAllCalls()
        for _ in range(50):
            endpoint.libHandleEvents(10)
        for pair in active:
            pair[1].kill()
        for _, peer, _ in draining:
            peer.kill()
        active.clear()
        time.sleep(0.1)
        account.shutdown()
        endpoint.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
    return outcomes


def classify_over_sip(
    wavs: list[tuple[str, Path]],
    concurrency: int = 3,
    settings: AmdSettings | None = None,
    scenario: Path = DEFAULT_SCENARIO,
) -> dict[str, SipOutcome]:
    """Verdicts for each named WAV played by SIPp through a real SIP call, by name."""
    from dialer.bench.rtp_pcap import wav_to_rtp_pcap

    with tempfile.TemporaryDirectory(prefix="amd-sip-") as tmp:
        greetings = []
        for name, wav in wavs:
            directory = Path(tmp) / name
            directory.mkdir()
            wav_to_rtp_pcap(wav, directory / "greeting.pcap")
            greetings.append({"name": name, "pcap": str(directory / "greeting.pcap")})
        request = {
            "greetings": greetings,
            "concurrency": concurrency,
            "scenario": str(scenario),
            "settings": asdict(settings) if settings else {},
        }
        done = subprocess.run(
            [sys.executable, "-m", "dialer.bench.amd_sip"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=60 + 15 * len(greetings),
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"SIP AMD run failed ({done.returncode}): {done.stderr[-2000:]}")
    outcomes = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            outcomes[row["name"]] = SipOutcome(**row)
    return outcomes


def verdict_of(outcome: SipOutcome) -> Verdict | None:
    return Verdict(**outcome.verdict) if outcome.verdict else None


def _rows(outcomes: list[SipOutcome]) -> Iterator[str]:
    for outcome in outcomes:
        row = asdict(outcome)
        row.pop("started")
        yield json.dumps(row)


if __name__ == "__main__":
    for line in _rows(_child_main(json.loads(sys.stdin.read()))):
        print(line, flush=True)
