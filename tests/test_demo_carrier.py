"""The simulated carrier and agents' phones against the real line pool on loopback: each branch
of the mix gives the pool the outcome it stands for, every INVITE is reported once with its
number, survey answers arrive as DTMF, and an agent leg reaches the phones."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from dialer.amd import detect as amd_detect
from dialer.bench.rtp_pcap import (
    DTMF_EVENT_CODES,
    PCMA_PAYLOAD_TYPE,
    TELEPHONE_EVENT_PAYLOAD_TYPE,
    alaw_decode,
    read_rtp_pcap,
)
from dialer.connect import AUTO_ANSWER_HEADERS, amd_tap
from dialer.demo.audio import CarrierAudio, build_carrier_audio
from dialer.demo.carrier import SimulatedCarrier
from dialer.demo.mix import BRANCHES, CarrierTimings, Delay, MixError
from dialer.demo.phones import AgentPhones
from dialer.lines import AmdVerdict, Answered, Bridged, DtmfReceived, Ended, Event, LinePool
from dialer.sit import detect as sit_detect
from sip_config import loads

pytestmark = [
    pytest.mark.sip,
    pytest.mark.skipif(
        not all(shutil.which(tool) for tool in ("sipp", "espeak-ng", "sox")),
        reason="needs sipp, espeak-ng and sox",
    ),
]

MIX = "human=.2,machine=.2,busy=.15,no_answer=.1,invalid=.15,survey=.2"
# Quick pickups, and survey answers from 4 s after the answer, 1-2 s apart (the defaults,
# 9 s then 4-6 s, give an IVR time to play its questions).
TIMINGS = dataclasses.replace(
    CarrierTimings.quick(), survey_first_key_s=4.0, survey_key_gap=Delay.uniform(1.0, 2.0)
)
RING_TIMEOUT = 15  # the minimum the pool allows
FIRST_CALLS, MORE_CALLS, MAX_CALLS = 40, 8, 80
WORKERS = FIRST_CALLS // 4  # the pool holds 4 calls per worker
LOOPBACK = "127.0.0.1"


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Rendered afresh for the module, so the rendering itself is tested too."""
    return tmp_path_factory.mktemp("demo-audio")


@pytest.fixture(scope="module")
def carrier(audio_dir: Path) -> Iterator[SimulatedCarrier]:
    with SimulatedCarrier(MIX, timings=TIMINGS, audio_dir=audio_dir) as mixed:
        yield mixed


@pytest.fixture(scope="module")
def person(audio_dir: Path) -> Iterator[SimulatedCarrier]:
    with SimulatedCarrier("human=1", timings=TIMINGS, audio_dir=audio_dir) as people:
        yield people


@pytest.fixture(scope="module")
def phones() -> Iterator[AgentPhones]:
    with AgentPhones() as agent_phones:
        yield agent_phones


@pytest.fixture(scope="module")
def pool(carrier: SimulatedCarrier, person: SimulatedCarrier) -> Iterator[LinePool]:
    settings = {
        "caller_id": "+12125550100",
        "ring_timeout": RING_TIMEOUT,
        "no_response_timeout": 5,
        "max_cps": 50,
        "max_channels": MAX_CALLS,
    }
    config = loads(carrier.trunk_table("mixed", **settings) + person.trunk_table("person"))
    with LinePool(config, workers=WORKERS) as line_pool:
        _warm_up(line_pool)
        yield line_pool
    assert all(code == 0 for _, code in line_pool.exits), line_pool.exits


def _warm_up(pool: LinePool) -> None:
    """One answered call with the AMD/SIT tap in every worker (the emptiest worker takes the
    next call) before the test's calls. A worker builds its first tap inside its loop, importing
    the detectors (numpy, webrtcvad): with ten workers doing so at once on a loaded machine, the
    first calls' taps were attached after the intercept's tone had played, and those calls came
    out invalid by their 404 with no SIT heard."""
    warming = {f"warm-{n}" for n in range(WORKERS)}
    for attempt in warming:
        pool.originate(attempt, "person", "+12125550999", tap=amd_tap())
    deadline = time.monotonic() + 30
    while warming and time.monotonic() < deadline:
        event = pool.next_event(0.05)
        if isinstance(event, AmdVerdict):
            pool.hangup(event.attempt_id)
        elif isinstance(event, Ended):
            warming.discard(event.attempt_id)
    assert not warming, f"warm-up calls never ended: {warming}"


def test_the_audio_is_what_each_branch_claims(audio_dir: Path) -> None:
    """Offline, on the very captures SIPp plays: AMD hears people and voicemail right, the
    intercepts carry their tone, the survey keys its answers as telephone-events."""
    audio: CarrierAudio = build_carrier_audio(TIMINGS, audio_dir)

    def heard(path: Path) -> bytes:
        packets = read_rtp_pcap(path)
        return alaw_decode(
            b"".join(p.payload for p in packets if p.payload_type == PCMA_PAYLOAD_TYPE)
        ).tobytes()

    for path in audio.human.values():
        assert amd_detect(heard(path)).kind == "human", path
    for path in audio.machine.values():
        verdict = amd_detect(heard(path))
        assert verdict.kind == "machine", path
        assert 6.0 <= len(heard(path)) / 16000 - 1.0 <= 10.5, path  # 1 s of silence after
    for name, path in audio.invalid.items():
        verdict = sit_detect(heard(path))
        assert verdict is not None and verdict.kind == f"sit_{name}", path
    assert len(audio.survey) == TIMINGS.survey_patterns
    for name, path in audio.survey.items():
        packets = read_rtp_pcap(path)
        ends = [
            (p.at_us / 1e6, DTMF_EVENT_CODES[p.payload[0]])
            for p in packets
            if p.payload_type == TELEPHONE_EVENT_PAYLOAD_TYPE and p.payload[1] & 0x80
        ][::3]  # each end goes out three times
        keys = audio.answers[name].keys
        assert [digit for _, digit in ends] == [digit for _, digit in keys]
        assert all(0.1 < end - at < 0.2 for (end, _), (at, _) in zip(ends, keys, strict=True))
        assert set(audio.answers[name].digits) <= set(TIMINGS.survey_digits)
    # A second build finds everything in the cache: nothing is rendered again.
    written = {path: path.stat().st_mtime_ns for path in audio_dir.iterdir()}
    assert build_carrier_audio(TIMINGS, audio_dir) == audio
    assert {path: path.stat().st_mtime_ns for path in audio_dir.iterdir()} == written


def test_each_branch_gives_its_outcome_through_the_line_pool(
    pool: LinePool, carrier: SimulatedCarrier
) -> None:
    numbers: dict[str, str] = {}  # attempt -> number dialled

    def place(count: int) -> None:
        for _ in range(count):
            attempt = f"mix-{len(numbers)}"
            numbers[attempt] = f"+1212555{len(numbers):04d}"
            pool.originate(attempt, "mixed", numbers[attempt], tap=amd_tap())

    place(FIRST_CALLS)
    placed_at = time.monotonic()
    events: dict[str, list[Event]] = defaultdict(list)
    ended: dict[str, Ended] = {}
    digits: dict[str, str] = defaultdict(str)
    branch_of: dict[str, str] = {}
    deadline = time.monotonic() + 120
    while len(ended) < len(numbers) and time.monotonic() < deadline:
        # Branches are drawn per call: a rare one may be missing from the first calls.
        if time.monotonic() - placed_at > 2 and len(numbers) < MAX_CALLS:
            if set(carrier.counts()) != set(BRANCHES):
                place(MORE_CALLS)
            placed_at = time.monotonic()
        event = pool.next_event(0.05)
        if event is None or not hasattr(event, "attempt_id"):
            continue
        attempt = event.attempt_id
        events[attempt].append(event)
        if isinstance(event, AmdVerdict):
            if not branch_of.get(numbers[attempt]):
                branch_of.update({i.number: i.branch for i in carrier.invites()})
            # A survey's person stays on to key the answers; every other call is done.
            if branch_of[numbers[attempt]] != "survey":
                pool.hangup(attempt)
        elif isinstance(event, DtmfReceived):
            digits[attempt] += event.digit
            if len(digits[attempt]) == TIMINGS.survey_keys:
                pool.hangup(attempt)
        elif isinstance(event, Ended):
            ended[attempt] = event
    assert len(ended) == len(numbers), f"{len(numbers) - len(ended)} calls never ended"
    time.sleep(0.3)  # the carrier logs the end of a call as it answers the BYE

    invites = carrier.invites()
    assert sorted(i.number for i in invites) == sorted(numbers.values())  # each exactly once
    assert carrier.counts() == Counter(i.branch for i in invites)
    assert set(carrier.counts()) == set(BRANCHES)
    by_number = {i.number: i for i in invites}
    for attempt, number in numbers.items():
        invite, result = by_number[number], ended[attempt]
        heard = (result.outcome, result.sip_code, result.amd_verdict, invite.ended)
        summary = f"{attempt} {invite} {result}"
        if invite.branch in ("human", "machine"):
            assert heard == (invite.branch, 200, invite.branch, "dialer_bye"), summary
        elif invite.branch == "busy":
            assert heard == ("busy", 486, None, "busy"), summary
        elif invite.branch == "no_answer":
            assert heard == ("no_answer", 487, None, "cancelled"), summary
            ring = result.timings.ended_at - result.timings.dialed_at
            assert RING_TIMEOUT <= ring < RING_TIMEOUT + 2, summary
        elif invite.branch == "invalid":
            assert heard == ("invalid", 487, f"sit_{invite.variant}", "cancelled"), summary
        else:
            assert heard == ("human", 200, "human", "dialer_bye"), summary
            assert digits[attempt] == "".join(digit for _, digit in invite.keys), summary
            (answered,) = [e for e in events[attempt] if isinstance(e, Answered)]
            first = next(e for e in events[attempt] if isinstance(e, DtmfReceived))
            received_at = result.timings.ended_at  # the last digit ends the call at once
            assert abs(received_at - answered.at - invite.keys[-1][0]) < 1.0, summary
            assert events[attempt].index(first) > events[attempt].index(answered)
        assert invite.at <= result.timings.ended_at


def test_an_agent_leg_reaches_the_phones_which_echo_what_they_hear(
    pool: LinePool, person: SimulatedCarrier, phones: AgentPhones
) -> None:
    assert phones.uri("agent7") == f"sip:agent7@127.0.0.1:{phones.port}"
    pool.originate("customer", "person", "+12125550777", reserve_agent_slot=True)
    ended: dict[str, Ended] = {}
    hang_up_at = None
    deadline = time.monotonic() + 30
    while len(ended) < 2 and time.monotonic() < deadline:
        event = pool.next_event(0.05)
        if hang_up_at is not None and time.monotonic() > hang_up_at:
            pool.hangup("customer")
            pool.hangup("agent")
            hang_up_at = None
        if isinstance(event, Answered) and event.attempt_id == "customer":
            pool.call_agent(
                "agent", phones.uri("agent7"), near="customer", headers=AUTO_ANSWER_HEADERS
            )
        elif isinstance(event, Answered) and event.attempt_id == "agent":
            pool.bridge("customer", "agent")
        elif isinstance(event, Bridged):
            hang_up_at = time.monotonic() + 1.5
        elif isinstance(event, Ended):
            ended[event.attempt_id] = event
    assert set(ended) == {"customer", "agent"}
    agent = ended["agent"]
    assert (agent.sip_code, agent.reason) == (200, "hung up by the dialer")
    # What the phone heard came back: 1.5 s of RTP at 50 packets a second, echoed.
    assert agent.rtp_received is not None and agent.rtp_received >= 50
    time.sleep(0.3)
    (call,) = phones.calls()
    assert (call.agent, call.auto_answer, call.ended) == ("agent7", True, "dialer_bye")
    assert phones.answered() == 1 and phones.counts() == Counter({"agent7": 1})


def _invite(port: int, local_port: int, call_id: str, user: str, *headers: str) -> bytes:
    lines = [
        f"INVITE sip:{user}@{LOOPBACK}:{port} SIP/2.0",
        f"Via: SIP/2.0/UDP {LOOPBACK}:{local_port};branch=z9hG4bK-{call_id}",
        f"From: <sip:dialer@{LOOPBACK}:{local_port}>;tag=from-{call_id}",
        f"To: <sip:{user}@{LOOPBACK}:{port}>",
        f"Call-ID: {call_id}",
        "CSeq: 1 INVITE",
        f"Contact: <sip:dialer@{LOOPBACK}:{local_port}>",
        "Max-Forwards: 70",
        *headers,
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _ack(invite: bytes) -> bytes:
    """The ACK for a non-2xx final response to `invite` (same branch, RFC 3261 17.1.1.3)."""
    head, _, _ = invite.decode().partition("\r\n\r\n")
    lines = head.split("\r\n")
    lines[0] = lines[0].replace("INVITE", "ACK", 1)
    lines = [line.replace("CSeq: 1 INVITE", "CSeq: 1 ACK") for line in lines]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _responses(sock: socket.socket, quiet_for: float = 0.7) -> list[str]:
    """Status lines received until the socket stays quiet for `quiet_for` seconds."""
    statuses = []
    sock.settimeout(quiet_for)
    try:
        while True:
            statuses.append(sock.recv(65535).decode().split("\r\n", 1)[0])
    except TimeoutError:
        return statuses


@pytest.fixture
def sip_socket() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        yield sock


def test_a_retransmitted_invite_is_one_call(audio_dir: Path, sip_socket: socket.socket) -> None:
    with SimulatedCarrier("busy=1", timings=TIMINGS, audio_dir=audio_dir) as busy:
        local_port = sip_socket.getsockname()[1]
        first = _invite(busy.port, local_port, "first", "+12125550188")
        sip_socket.sendto(first, (LOOPBACK, busy.port))
        statuses = _responses(sip_socket)  # the 486 is sent again until the ACK comes
        assert statuses[:2] == ["SIP/2.0 100 Trying", "SIP/2.0 486 Busy Here"]
        assert set(statuses[2:]) <= {"SIP/2.0 486 Busy Here"}
        sip_socket.sendto(_ack(first), (LOOPBACK, busy.port))
        time.sleep(0.2)
        assert [(i.call_id, i.ended) for i in busy.invites()] == [("first", "busy")]
        # A copy the network delayed past the end of the call is no new call.
        sip_socket.sendto(first, (LOOPBACK, busy.port))
        # Copies of an INVITE a dialer sends again before hearing anything are one call (SIPp
        # takes a copy that comes once it has answered as an unexpected message: it drops
        # the call, which pjsua only risks if SIPp falls 500 ms behind, but counts it once).
        second = _invite(busy.port, local_port, "second", "+12125550189")
        for _ in range(3):
            sip_socket.sendto(second, (LOOPBACK, busy.port))
            time.sleep(0.1)
        _responses(sip_socket)
        received = busy.invites()
        assert [(i.call_id, i.number, i.branch) for i in received] == [
            ("first", "+12125550188", "busy"),
            ("second", "+12125550189", "busy"),
        ]
        assert busy.counts() == Counter({"busy": 2})


def test_a_carrier_on_a_taken_port_says_so(audio_dir: Path, sip_socket: socket.socket) -> None:
    taken = sip_socket.getsockname()[1]
    with pytest.raises(Exception, match=f"SIPp on 127.0.0.1:{taken} did not start"):
        SimulatedCarrier("busy=1", port=taken, audio_dir=audio_dir).start()
    with pytest.raises(MixError, match="mix branch 'voicemail'"):
        SimulatedCarrier("voicemail=1")


def _dialer() -> str:
    return str(Path(sys.executable).parent / "dialer")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _until_listening(process: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((LOOPBACK, port))
            except OSError:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


def test_dialer_simulate_carrier_prints_each_call_and_a_summary(
    audio_dir: Path, sip_socket: socket.socket
) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [_dialer(), "simulate", "carrier", "--port", str(port), "--quick",
         "--mix", "busy=1,no_answer=1"],
        env={**os.environ, "DIALER_DEMO_CACHE": str(audio_dir)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        _until_listening(process, port)
        local_port = sip_socket.getsockname()[1]
        for n in range(3):
            invite = _invite(port, local_port, f"cli-{n}", f"+1212555030{n}")
            sip_socket.sendto(invite, (LOOPBACK, port))
        _responses(sip_socket)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    lines = [line.split("\t") for line in out.splitlines()]
    assert sorted(line[1] for line in lines) == ["+12125550300", "+12125550301", "+12125550302"]
    assert {line[2] for line in lines} <= {"busy", "no_answer"}
    assert f"carrier on 127.0.0.1:{port}" in err
    assert "3 calls: " in err


def test_dialer_simulate_phones_answers_any_agent(sip_socket: socket.socket) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [_dialer(), "simulate", "phones", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _until_listening(process, port)
        local_port = sip_socket.getsockname()[1]
        headers = [f"{name}: {value}" for name, value in AUTO_ANSWER_HEADERS]
        sip_socket.sendto(_invite(port, local_port, "agent-1", "anna", *headers), (LOOPBACK, port))
        sip_socket.sendto(_invite(port, local_port, "agent-2", "agent7"), (LOOPBACK, port))
        assert _responses(sip_socket).count("SIP/2.0 200 OK") >= 2
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    lines = sorted(line.split("\t")[1:] for line in out.splitlines())
    assert lines == [
        ["agent7", "answered", "no auto-answer header"],
        ["anna", "answered", "auto-answer asked"],
    ]
    assert "2 calls answered: agent7 1, anna 1" in err
