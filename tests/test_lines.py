"""The line pool against SIPp as the carrier, on loopback: every call ends with one `Ended`
event whose outcome follows what the carrier said, whatever happened to the worker."""

from __future__ import annotations

import array
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from dialer.lines import (
    AmdVerdict,
    Answered,
    CommandFailed,
    DtmfReceived,
    Ended,
    Event,
    LinePool,
    Progress,
    PromptFinished,
    TapSpec,
    classify,
)
from dialer.lines.bucket import TokenBucket
from dialer.lines.outcome import StormWatch
from dialer.lines.sdp import offer_codecs
from dialer.prompts import prompt_path
from sip_config import SipConfigError, loads
from tests.sipp_uas import PCAPS, Carrier, free_udp_port, pcap_with_payload_type

NUMBER = "+12125550111"
PASSWORD_ENV = "TEST_LINES_SIP_PASSWORD"
PASSWORD = "pa55-for-sipp"
LOUD = TapSpec("tests.lines_detectors:LoudFrames", {"frames": 25})

# -- the pure parts


@pytest.mark.parametrize(
    ("code", "answered", "ring_timed_out", "verdict", "outcome"),
    [
        (200, True, False, None, "human"),
        (200, True, False, "machine", "machine"),
        (200, True, False, "human", "human"),
        (486, False, False, None, "busy"),
        (600, False, False, None, "busy"),
        (487, False, True, None, "no_answer"),
        (487, False, False, None, "failed"),
        (480, False, False, None, "no_answer"),
        (408, False, False, None, "no_answer"),
        (404, False, False, None, "invalid"),
        (484, False, False, None, "invalid"),
        (410, False, False, None, "invalid"),
        (604, False, False, None, "invalid"),
        (503, False, False, None, "congestion"),
        (403, False, False, None, "failed"),
        (500, False, False, None, "failed"),
    ],
)
def test_sip_results_map_to_outcomes(
    code: int, answered: bool, ring_timed_out: bool, verdict: str | None, outcome: str
) -> None:
    assert (
        classify(code, answered=answered, ring_timed_out=ring_timed_out, amd_verdict=verdict)
        == outcome
    )


def test_the_token_bucket_never_bursts_to_catch_up() -> None:
    bucket = TokenBucket(rate=40.0)
    assert bucket.take(0.0)
    assert not bucket.take(0.01)
    assert bucket.take(0.026)
    # After a long idle spell only one call may go at once, not the 400 the spell "earned".
    assert bucket.take(10.0)
    assert not bucket.take(10.0)


def test_a_budget_of_calls_per_second_shows_its_room_and_carries_a_debt() -> None:
    bucket = TokenBucket(rate=2.5, burst=3.5)
    assert bucket.room(0.0) == 3
    bucket.spend(3, 0.0)
    assert bucket.room(0.0) == 0
    assert bucket.room(1.0) == 3  # 0.5 left over and 2.5 more: a fractional rate is kept
    bucket.spend(5, 1.0)  # two more than there were (an agent's own dials)
    assert bucket.room(1.0) == 0
    assert bucket.room(1.8) == 0 and bucket.room(2.0) == 0
    assert bucket.room(2.4) == 1
    assert bucket.room(60.0) == 3  # never more than the burst


# -- against SIPp

SCENARIO_TRUNKS = (
    "answer",
    "record",
    "busy",
    "not_found",
    "overloaded",
    "ring",
    "early",
    "remote_bye",
    "auth",
    "wrong_auth",
    "dtmf_in",
    "info_in",
    "info_out",
    "echo",
    "customer",
    "agent",
    "silent",
    "no_secret",
)


@pytest.fixture(scope="module")
def carriers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Carrier]]:
    if shutil.which("sipp") is None:
        pytest.skip("sipp is not installed")
    workdir = tmp_path_factory.mktemp("sipp")
    carriers = {name: Carrier(workdir, name) for name in SCENARIO_TRUNKS}
    yield carriers
    for carrier in carriers.values():
        carrier.stop()


def trunk_table(name: str, port: int, extra: str = "") -> str:
    return (
        f'[trunks.{name}]\nhost = "127.0.0.1"\nport = {port}\ncaller_id = "+12125550100"\n'
        f"ring_timeout = 15\nno_response_timeout = 5\nmax_cps = 50\n{extra}"
    )


@pytest.fixture(scope="module")
def pool(carriers: dict[str, Carrier]) -> Iterator[LinePool]:
    tables = []
    for name, carrier in carriers.items():
        extra = ""
        if name == "auth":
            extra = f'username = "acct123"\npassword_env = "{PASSWORD_ENV}"\n'
        if name == "wrong_auth":
            extra = f'username = "acct123"\npassword_env = "{PASSWORD_ENV}_WRONG"\n'
        if name == "no_secret":
            extra = 'username = "acct123"\npassword_env = "TEST_LINES_UNSET_PASSWORD"\n'
        tables.append(trunk_table(name, carrier.port, extra))
    # The workers read the password from their environment, inherited at spawn.
    os.environ[PASSWORD_ENV] = PASSWORD
    os.environ[f"{PASSWORD_ENV}_WRONG"] = "not-the-password"
    with LinePool(loads("\n".join(tables)), workers=2) as line_pool:
        yield line_pool
    # Every worker shut down cleanly: no abort (-6) from a Call alive after libDestroy.
    assert sorted(line_pool.exits) == [(0, 0), (1, 0)]


def run_until_ended(
    pool: LinePool, attempt_id: str, timeout: float = 30.0, on_event=None
) -> list[Event]:  # type: ignore[no-untyped-def]
    """Every event of the attempt until its `Ended`; `on_event` may act on each one."""
    seen: list[Event] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = pool.next_event(timeout=0.2)
        if event is None or getattr(event, "attempt_id", None) != attempt_id:
            continue
        seen.append(event)
        if on_event is not None:
            on_event(event)
        if isinstance(event, Ended):
            return seen
    raise AssertionError(f"no Ended event for {attempt_id} in {timeout} s; saw {seen}")


def run_until_all_ended(
    pool: LinePool, attempt_ids: list[str], timeout: float = 30.0
) -> dict[str, list[Event]]:
    """Every event of several attempts running at once, until each has its `Ended` (in
    whatever order they end)."""
    seen: dict[str, list[Event]] = {attempt_id: [] for attempt_id in attempt_ids}
    waiting = set(attempt_ids)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        event = pool.next_event(timeout=0.2)
        attempt_id = getattr(event, "attempt_id", None)
        if attempt_id not in seen:
            continue
        seen[attempt_id].append(event)  # type: ignore[index]
        if isinstance(event, Ended):
            waiting.discard(attempt_id)  # type: ignore[arg-type]
    if waiting:
        raise AssertionError(f"no Ended event for {sorted(waiting)} in {timeout} s; saw {seen}")
    return seen


def ended(events: list[Event]) -> Ended:
    last = events[-1]
    assert isinstance(last, Ended)
    return last


def hang_up_after(pool: LinePool, attempt_id: str, seconds: float):  # type: ignore[no-untyped-def]
    """An on_event hook: once answered, hold the call `seconds`, then hang up."""
    state = {"answered": 0.0}

    def hook(event: Event) -> None:
        if isinstance(event, Answered):
            state["answered"] = time.monotonic()
            time.sleep(seconds)
            pool.hangup(attempt_id)

    return hook


def originate(pool: LinePool, attempt_id: str, trunk: str, **options: object) -> None:
    pool.originate(attempt_id, trunk, NUMBER, **options)  # type: ignore[arg-type]


def wav_rms(path: Path) -> tuple[float, float]:
    """(seconds, RMS) of a 16-bit mono WAV."""
    with wave.open(str(path)) as wav:
        frames = wav.readframes(wav.getnframes())
        seconds = wav.getnframes() / wav.getframerate()
    samples = array.array("h", frames)
    return seconds, math.sqrt(sum(s * s for s in samples) / max(1, len(samples)))


@pytest.mark.sip
def test_an_answered_call_is_human_with_its_timings(
    pool: LinePool, carriers: dict[str, Carrier]
) -> None:
    carriers["answer"].start("answer")
    originate(pool, "a-answer", "answer")
    events = run_until_ended(pool, "a-answer", on_event=hang_up_after(pool, "a-answer", 1.0))
    pool_progress = [e for e in events if isinstance(e, Progress)]
    assert [e.sip_code for e in pool_progress] == [180]
    result = ended(events)
    assert (result.outcome, result.sip_code, result.reason) == (
        "human",
        200,
        "hung up by the dialer",
    )
    # 1 s on the call at 50 packets/s, less the moments before SIPp starts its pcap
    assert result.rtp_received is not None and result.rtp_received >= 25
    assert result.rtp_lost == 0
    t = result.timings
    assert t.ringing_at is not None and t.answered_at is not None
    assert t.dialed_at <= t.ringing_at <= t.answered_at < t.ended_at
    assert t.ended_at - t.answered_at >= 1.0
    assert carriers["answer"].wait() == 0, carriers["answer"].errors()


@pytest.mark.sip
def test_a_recording_holds_the_far_ends_audio(
    pool: LinePool, carriers: dict[str, Carrier], tmp_path: Path
) -> None:
    carriers["record"].start("answer")
    recording = tmp_path / "call.wav"

    def hook(event: Event) -> None:
        if isinstance(event, Answered):
            pool.record("a-record", str(recording))
            time.sleep(3.0)
            pool.stop_record("a-record")
            pool.hangup("a-record")

    originate(pool, "a-record", "record")
    assert ended(run_until_ended(pool, "a-record", on_event=hook)).outcome == "human"
    time.sleep(0.2)  # the WAV header is finalised one frame after the recorder is dropped
    seconds, rms = wav_rms(recording)
    assert 2.0 <= seconds <= 3.5
    assert rms > 300, "the recording is silent: no far-end audio reached it"


@pytest.mark.sip
@pytest.mark.parametrize(
    ("trunk", "code", "reason", "outcome"),
    [
        ("busy", 486, "Busy Here", "busy"),
        ("not_found", 404, "Not Found", "invalid"),
        ("overloaded", 503, "Service Unavailable", "congestion"),
    ],
)
def test_a_rejected_call_gets_the_outcome_of_its_sip_code(
    pool: LinePool, carriers: dict[str, Carrier], trunk: str, code: int, reason: str, outcome: str
) -> None:
    carriers[trunk].start("reject", CODE=str(code), REASON=reason)
    originate(pool, f"a-{trunk}", trunk)
    result = ended(run_until_ended(pool, f"a-{trunk}"))
    assert (result.outcome, result.sip_code, result.reason) == (outcome, code, reason)
    assert result.timings.answered_at is None
    assert carriers[trunk].wait() == 0, carriers[trunk].errors()


@pytest.mark.sip
def test_a_call_nobody_answers_is_cancelled_after_the_ring_timeout(
    pool: LinePool, carriers: dict[str, Carrier]
) -> None:
    carriers["ring"].start("ring")
    originate(pool, "a-ring", "ring", ring_timeout=15)
    result = ended(run_until_ended(pool, "a-ring", timeout=25))
    assert (result.outcome, result.sip_code) == ("no_answer", 487)
    assert result.reason == "no answer in 15 s (cancelled)"
    assert 15.0 <= result.timings.ended_at - result.timings.dialed_at < 17.0
    assert carriers["ring"].wait() == 0, carriers["ring"].errors()


@pytest.mark.sip
def test_a_trunk_that_never_answers_fails_after_the_no_response_timeout(pool: LinePool) -> None:
    originate(pool, "a-silent", "silent")
    result = ended(run_until_ended(pool, "a-silent", timeout=15))
    assert (result.outcome, result.sip_code) == ("failed", 408)
    assert result.reason == "no response from the trunk in 5 s"
    assert 5.0 <= result.timings.ended_at - result.timings.dialed_at < 7.0


@pytest.mark.sip
def test_a_trunk_whose_password_is_not_in_the_environment_fails_the_attempt_saying_so(
    pool: LinePool,
) -> None:
    originate(pool, "a-no-secret", "no_secret")
    result = ended(run_until_ended(pool, "a-no-secret", timeout=5))
    assert result.outcome == "failed"
    assert result.reason == (
        "cannot dial: trunks.no_secret.password_env: "
        "environment variable TEST_LINES_UNSET_PASSWORD is not set"
    )


@pytest.mark.sip
def test_a_ring_timeout_below_15_s_is_refused(pool: LinePool) -> None:
    with pytest.raises(SipConfigError, match="below 15 s"):
        originate(pool, "a-short", "ring", ring_timeout=10)


@pytest.mark.sip
@pytest.mark.parametrize("from_answer", [False, True])
def test_early_media_reaches_a_frame_tap_only_when_it_asks_for_it(
    pool: LinePool, carriers: dict[str, Carrier], from_answer: bool
) -> None:
    """A tap hears the 183's audio only with from_answer=False; AMD taps (the default) start
    at the answer, so an announcement or ringback never counts as the greeting."""
    carriers["early"].start("early_media")
    tap = TapSpec(LOUD.factory, LOUD.options, from_answer=from_answer)
    attempt_id = f"a-early-{from_answer}"
    originate(pool, attempt_id, "early", tap=tap)
    events = run_until_ended(pool, attempt_id, on_event=hang_up_after(pool, attempt_id, 2.5))
    kinds = [type(e).__name__ for e in events]
    if from_answer:
        assert kinds.index("Progress") < kinds.index("Answered") < kinds.index("AmdVerdict")
    else:
        assert kinds.index("Progress") < kinds.index("AmdVerdict") < kinds.index("Answered")
    assert [e.sip_code for e in events if isinstance(e, Progress)] == [183]
    verdict = next(e for e in events if isinstance(e, AmdVerdict))
    assert verdict.verdict == "machine"
    result = ended(events)
    assert (result.outcome, result.amd_verdict) == ("machine", "machine")
    assert carriers["early"].wait() == 0, carriers["early"].errors()


@pytest.mark.sip
def test_the_far_end_hanging_up_ends_the_attempt(
    pool: LinePool, carriers: dict[str, Carrier]
) -> None:
    carriers["remote_bye"].start("remote_bye")
    originate(pool, "a-bye", "remote_bye")
    result = ended(run_until_ended(pool, "a-bye"))
    assert (result.outcome, result.reason) == ("human", "far end hung up")
    assert result.timings.answered_at is not None
    assert result.timings.ended_at - result.timings.answered_at >= 1.9
    assert carriers["remote_bye"].wait() == 0, carriers["remote_bye"].errors()


@pytest.mark.sip
@pytest.mark.parametrize("scenario", ["digest_auth", "proxy_auth"])  # 401 and 407 challenges
def test_a_digest_challenge_is_answered_with_the_trunks_credentials(
    pool: LinePool, carriers: dict[str, Carrier], scenario: str
) -> None:
    carriers["auth"].start(scenario, PASSWORD=PASSWORD)
    attempt_id = f"a-{scenario}"
    originate(pool, attempt_id, "auth")
    events = run_until_ended(pool, attempt_id, on_event=hang_up_after(pool, attempt_id, 0.2))
    assert any(isinstance(e, Answered) for e in events), events
    assert ended(events).outcome == "human"
    assert carriers["auth"].wait() == 0, carriers["auth"].errors()


@pytest.mark.sip
def test_a_wrong_password_is_refused_by_the_carrier(
    pool: LinePool, carriers: dict[str, Carrier]
) -> None:
    carriers["wrong_auth"].start("digest_auth", PASSWORD=PASSWORD)
    originate(pool, "a-wrong", "wrong_auth")
    result = ended(run_until_ended(pool, "a-wrong"))
    assert (result.outcome, result.sip_code) == ("failed", 403)


@pytest.mark.sip
def test_dtmf_from_the_far_end_arrives_as_digits(
    pool: LinePool, carriers: dict[str, Carrier], tmp_path: Path
) -> None:
    pcap = pcap_with_payload_type(PCAPS / "dtmf_2833_1.pcap", tmp_path / "dtmf1.pcap", 120)
    carriers["dtmf_in"].start("answer", PCAP=str(pcap))
    digits: list[tuple[str, str]] = []

    def hook(event: Event) -> None:
        if isinstance(event, DtmfReceived):
            digits.append((event.digit, event.method))
            pool.hangup("a-dtmf-in")

    originate(pool, "a-dtmf-in", "dtmf_in")
    run_until_ended(pool, "a-dtmf-in", timeout=15, on_event=hook)
    assert digits == [("1", "rfc2833")]


@pytest.mark.sip
def test_dtmf_the_far_end_keys_by_sip_info_arrives_as_digits(
    pool: LinePool, carriers: dict[str, Carrier]
) -> None:
    carriers["info_in"].start("info_dtmf_uas")
    digits: list[tuple[str, str]] = []

    def hook(event: Event) -> None:
        if isinstance(event, DtmfReceived):
            digits.append((event.digit, event.method))
            pool.hangup("a-info-in")

    originate(pool, "a-info-in", "info_in")
    run_until_ended(pool, "a-info-in", timeout=15, on_event=hook)
    assert digits == [("5", "sip_info")]
    assert carriers["info_in"].wait() == 0, carriers["info_in"].errors()


@pytest.mark.sip
def test_dtmf_we_send_by_sip_info_reaches_the_far_end_as_an_info_request(
    pool: LinePool, carriers: dict[str, Carrier]
) -> None:
    """The scenario fails the call unless an INFO with `Signal=7` comes; it then hangs up."""
    carriers["info_out"].start("info_dtmf_expect", DIGIT="7")
    seen: list[Event] = []

    def hook(event: Event) -> None:
        seen.append(event)
        if isinstance(event, Answered):
            pool.send_dtmf("a-info-out", "7", method="sip_info")

    originate(pool, "a-info-out", "info_out")
    result = ended(run_until_ended(pool, "a-info-out", timeout=15, on_event=hook))
    assert not [e for e in seen if isinstance(e, CommandFailed)]
    assert (result.outcome, result.reason) == ("human", "far end hung up")
    assert carriers["info_out"].wait() == 0, carriers["info_out"].errors()


@pytest.mark.sip
def test_an_unknown_dtmf_method_is_refused_naming_the_ones_accepted(pool: LinePool) -> None:
    with pytest.raises(ValueError, match="method='inband': expected one of rfc2833, sip_info"):
        pool.send_dtmf("a-any", "1", method="inband")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def prompt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled appointment menu, as a campaign plays it."""
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("needs espeak-ng and sox")
    return prompt_path("appointment_menu", tmp_path_factory.mktemp("prompts"))


@pytest.mark.sip
def test_prompts_and_dtmf_we_send_reach_the_far_end(
    pool: LinePool, carriers: dict[str, Carrier], prompt: Path, tmp_path: Path
) -> None:
    """SIPp echoes our RTP back, so what we play and key comes back to us."""
    carriers["echo"].start("echo", rtp_echo=True)
    recording = tmp_path / "echo.wav"
    seen: list[Event] = []

    def hook(event: Event) -> None:
        seen.append(event)
        if isinstance(event, Answered):
            pool.record("a-echo", str(recording))
            pool.play("a-echo", str(prompt))
        elif isinstance(event, PromptFinished):
            pool.stop_record("a-echo")
            pool.send_dtmf("a-echo", "59#")
        elif isinstance(event, DtmfReceived) and event.digit == "#":
            pool.hangup("a-echo")

    originate(pool, "a-echo", "echo")
    run_until_ended(pool, "a-echo", timeout=20, on_event=hook)
    assert [e.path for e in seen if isinstance(e, PromptFinished)] == [str(prompt)]
    assert [e.digit for e in seen if isinstance(e, DtmfReceived)] == ["5", "9", "#"]
    time.sleep(0.2)
    seconds, rms = wav_rms(recording)
    assert seconds > 1.0
    assert rms > 300, "the prompt did not come back: nothing was played to the far end"
    assert carriers["echo"].wait() == 0, carriers["echo"].errors()


@pytest.mark.sip
def test_an_agent_leg_placed_near_its_customer_is_bridged_to_it(
    pool: LinePool, carriers: dict[str, Carrier], tmp_path: Path
) -> None:
    """The customer's carrier plays audio; the agent's phone echoes what it hears. A recording
    of the agent leg holds the customer's audio only if the bridge carries it."""
    carriers["customer"].start("answer")
    carriers["agent"].start("echo", rtp_echo=True)
    recording = tmp_path / "agent.wav"
    originate(pool, "a-customer", "customer")
    seen: list[Event] = []
    deadline = time.monotonic() + 10
    while not any(isinstance(e, Answered) for e in seen) and time.monotonic() < deadline:
        event = pool.next_event(0.2)
        if event is not None:
            seen.append(event)
    originate(pool, "a-agent", "agent", near="a-customer")

    def hook(event: Event) -> None:
        if isinstance(event, Answered):
            assert pool.worker_of("a-agent") == pool.worker_of("a-customer")
            pool.bridge("a-customer", "a-agent")
            pool.record("a-agent", str(recording))
            time.sleep(2.0)
            pool.hangup("a-agent")

    assert ended(run_until_ended(pool, "a-agent", on_event=hook)).outcome == "human"
    pool.hangup("a-customer")
    assert ended(run_until_ended(pool, "a-customer")).reason == "hung up by the dialer"
    time.sleep(0.2)
    seconds, rms = wav_rms(recording)
    assert seconds > 1.5
    assert rms > 300, "the agent leg never heard the customer: the bridge carried no audio"
    assert carriers["customer"].wait() == 0, carriers["customer"].errors()
    assert carriers["agent"].wait() == 0, carriers["agent"].errors()


@pytest.mark.sip
def test_a_killed_worker_ends_its_calls_as_failed_and_is_replaced(tmp_path: Path) -> None:
    carrier = Carrier(tmp_path, "kill").start("answer", calls=2, timeout=30)
    config = loads(trunk_table("kill", carrier.port))
    try:
        with LinePool(config, workers=1) as pool:
            pid = pool.worker_pids()[0]

            def kill_when_answered(event: Event) -> None:
                if isinstance(event, Answered):
                    os.kill(pid, signal.SIGKILL)

            pool.originate("a-killed", "kill", NUMBER)
            result = ended(run_until_ended(pool, "a-killed", on_event=kill_when_answered))
            assert result.outcome == "failed"
            assert result.reason == "line worker 0 died (signal 9)"
            assert pool.restarts == 1

            pool.originate("a-after", "kill", NUMBER)
            events = run_until_ended(pool, "a-after", on_event=hang_up_after(pool, "a-after", 0.2))
            assert ended(events).outcome == "human"
            assert pool.worker_pids()[0] != pid
        # The replacement shut down cleanly: no abort (-6) at exit.
        assert pool.exits == [(0, -9), (0, 0)]
    finally:
        carrier.stop()


# -- the command line: `dialer trunk check` and `dialer call`


def run_cli(args: list[str], config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    dialer = Path(sys.executable).parent / "dialer"
    return subprocess.run(
        [str(dialer), *args],
        env={**os.environ, "DIALER_SIP_CONFIG": str(config), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.sip
@pytest.mark.parametrize(("password", "exit_code"), [("pw-right", 0), ("pw-wrong", 1)])
def test_trunk_check_pings_and_registers(tmp_path: Path, password: str, exit_code: int) -> None:
    carrier = Carrier(tmp_path, "registrar")
    config = tmp_path / "sip.toml"
    config.write_text(
        trunk_table(
            "carrier1",
            carrier.port,
            'username = "acct123"\npassword_env = "CHECK_PW"\nregister = true\n',
        )
    )
    carrier.start("register", calls=2, timeout=20, PASSWORD="pw-right")
    try:
        result = run_cli(["trunk", "check", "carrier1"], config, CHECK_PW=password)
    finally:
        carrier.stop()
    assert result.returncode == exit_code, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"OPTIONS 127.0.0.1:{carrier.port}/udp: 200 OK in ")
    if exit_code == 0:
        assert lines[1] == "REGISTER acct123@127.0.0.1: 200 OK, expires in 300 s"
    else:
        assert lines[1] == "REGISTER acct123@127.0.0.1: failed: 403 Forbidden"
    assert password not in result.stdout + result.stderr


@pytest.mark.sip
def test_trunk_check_says_when_nobody_answers(tmp_path: Path) -> None:
    config = tmp_path / "sip.toml"
    config.write_text(trunk_table("silent", free_udp_port()))
    result = run_cli(["trunk", "check", "silent", "--timeout", "1"], config)
    assert result.returncode == 1
    assert "unreachable" in result.stdout


@pytest.mark.sip
@pytest.mark.parametrize(
    ("scenario", "placeholders", "outcome", "sip_code"),
    [
        ("answer", {}, "human", 200),
        ("reject", {"CODE": "486", "REASON": "Busy Here"}, "busy", 486),
    ],
)
def test_dialer_call_prints_progress_and_a_json_outcome(
    tmp_path: Path,
    prompt: Path,
    scenario: str,
    placeholders: dict[str, str],
    outcome: str,
    sip_code: int,
) -> None:
    carrier = Carrier(tmp_path, "cli")
    config = tmp_path / "sip.toml"
    config.write_text(trunk_table("carrier1", carrier.port))
    carrier.start(scenario, timeout=30, **placeholders)
    try:
        args = ["call", NUMBER, "--trunk", "carrier1", "--play", str(prompt), "--json"]
        result = run_cli(args, config)
    finally:
        sipp_status = carrier.wait(10)
    assert result.returncode == 0, result.stdout + result.stderr
    *progress, last = result.stdout.splitlines()
    summary = json.loads(last)
    assert (summary["outcome"], summary["sip_code"]) == (outcome, sip_code)
    assert set(summary["timings"]) == {"dialed_at", "ringing_at", "answered_at", "ended_at"}
    assert any("dialing +12125550111 via carrier1" in line for line in progress)
    if outcome == "human":
        assert any(line.endswith("answered") for line in progress), progress
        assert any("prompt played" in line for line in progress), progress
        assert summary["reason"] == "hung up by the dialer"
    assert sipp_status == 0, carrier.errors()


@pytest.mark.sip
def test_a_tcp_trunk_is_pinged_and_dialed_over_tcp(tmp_path: Path) -> None:
    carrier = Carrier(tmp_path, "tcp")
    config = tmp_path / "sip.toml"
    config.write_text(trunk_table("carrier1", carrier.port, 'transport = "tcp"\n'))
    carrier.start("options", transport="tcp", timeout=20)
    try:
        check = run_cli(["trunk", "check", "carrier1"], config)
    finally:
        carrier.stop()
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.startswith(f"OPTIONS 127.0.0.1:{carrier.port}/tcp: 200 OK")
    carrier.start("reject", transport="tcp", timeout=20, CODE="486", REASON="Busy Here")
    try:
        result = run_cli(["call", NUMBER, "--trunk", "carrier1", "--json"], config)
    finally:
        sipp_status = carrier.wait(10)
    assert json.loads(result.stdout.splitlines()[-1])["outcome"] == "busy", result.stdout
    assert sipp_status == 0, carrier.errors()


@pytest.mark.sip
def test_the_pool_keeps_to_the_trunks_calls_per_second_and_channels(tmp_path: Path) -> None:
    carrier = Carrier(tmp_path, "limits")
    config = loads(
        trunk_table("limited", carrier.port).replace("max_cps = 50", "max_cps = 5")
        + "max_channels = 2\n"
    )
    calls = 8
    carrier.start("answer", calls=calls, timeout=30)
    answered: list[float] = []
    live: set[str] = set()
    most_live = 0
    try:
        with LinePool(config, workers=2) as pool:
            for n in range(calls):
                pool.originate(f"lim-{n}", "limited", NUMBER)
            ends: list[Ended] = []
            while len(ends) < calls:
                event = pool.next_event(timeout=10)
                assert event is not None, "the pool stalled"
                if isinstance(event, Answered):
                    live.add(event.attempt_id)
                    most_live = max(most_live, len(live))
                    answered.append(event.at)
                    pool.hangup(event.attempt_id)
                elif isinstance(event, Ended):
                    live.discard(event.attempt_id)
                    ends.append(event)
    finally:
        carrier.stop()
    assert {e.outcome for e in ends} == {"human"}
    assert most_live <= 2
    dialed = sorted(e.timings.dialed_at for e in ends)
    # 5 calls/s: 8 calls take at least 7 intervals of 0.2 s (a 50 ms burst allowance aside).
    assert dialed[-1] - dialed[0] >= 1.3, dialed


def test_sporadic_480s_are_no_answers_and_a_storm_of_them_is_congestion() -> None:
    watch = StormWatch(window=20, share=0.5, seconds=10.0)
    # A 480 now and then among other results: each one a person not reachable.
    for n in range(40):
        code, outcome = (480, "no_answer") if n % 4 == 0 else (486, "busy")
        assert watch.outcome("carrier1", code, outcome, n * 0.1) == outcome
    # Answered calls never enter the count, and never change.
    assert watch.outcome("carrier1", 200, "human", 5.0) == "human"
    storm = [watch.outcome("carrier2", 480, "no_answer", 100 + n * 0.1) for n in range(12)]
    assert storm == ["no_answer"] * 9 + ["congestion"] * 3
    # The other trunk is unaffected, and the storm is over once its 480s are old.
    assert watch.outcome("carrier1", 480, "no_answer", 101.5) == "no_answer"
    assert watch.outcome("carrier2", 480, "no_answer", 200.0) == "no_answer"


@pytest.mark.sip
def test_a_480_storm_on_a_trunk_turns_into_congestion(tmp_path: Path) -> None:
    carrier = Carrier(tmp_path, "storm")
    calls = 14
    carrier.start("reject", calls=calls, timeout=30, CODE="480", REASON="Temporarily Unavailable")
    try:
        with LinePool(loads(trunk_table("storm", carrier.port)), workers=2) as pool:
            for n in range(calls):
                pool.originate(f"storm-{n}", "storm", NUMBER)
            ends: list[Ended] = []
            while len(ends) < calls:
                event = pool.next_event(timeout=10)
                assert event is not None, "the pool stalled"
                if isinstance(event, Ended):
                    ends.append(event)
    finally:
        carrier.stop()
    outcomes = [e.outcome for e in ends]
    assert outcomes == ["no_answer"] * 9 + ["congestion"] * 5, outcomes
    assert ends[-1].reason == "Temporarily Unavailable (a 480 storm on trunk storm: congestion)"


PJSUA_OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 3901234 3901234 IN IP4 127.0.0.1",
        "s=pjmedia",
        "t=0 0",
        "m=audio 4000 RTP/AVP 98 97 8 0 120",
        "c=IN IP4 127.0.0.1",
        "a=rtcp:4001 IN IP4 127.0.0.1",
        "a=sendrecv",
        "a=rtpmap:98 speex/16000",
        "a=rtpmap:97 speex/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:120 telephone-event/8000",
        "a=fmtp:120 0-16",
        "",
    ]
)


def test_an_offer_lists_only_the_trunks_codecs_in_its_order_and_keeps_dtmf() -> None:
    offer = offer_codecs(PJSUA_OFFER, ["PCMU", "speex"])
    assert "m=audio 4000 RTP/AVP 0 98 97 120\r\n" in offer
    assert "a=rtpmap:8 PCMA/8000" not in offer and "a=rtpmap:98 speex/16000" in offer
    assert offer.endswith("a=fmtp:120 0-16\r\n") and offer.startswith("v=0\r\n")
    # None of the trunk's codecs on offer: leave the offer as pjsua made it.
    assert offer_codecs(PJSUA_OFFER, ["opus"]) == PJSUA_OFFER


@pytest.mark.sip
def test_each_trunk_offers_its_own_codecs_in_its_own_order(tmp_path: Path) -> None:
    alaw, ulaw = Carrier(tmp_path, "alaw"), Carrier(tmp_path, "ulaw")
    config = loads(
        trunk_table("alaw", alaw.port, 'codecs = ["PCMA"]\n')
        + trunk_table("ulaw", ulaw.port, 'codecs = ["PCMU", "PCMA"]\n')
    )
    alaw.start("offer_check", timeout=20, PAYLOADS="8 120", CODE="486", REASON="Busy Here")
    ulaw.start("offer_check", timeout=20, PAYLOADS="0 8 120", CODE="486", REASON="Busy Here")
    try:
        with LinePool(config, workers=1) as pool:
            originate(pool, "codec-a", "alaw")
            originate(pool, "codec-u", "ulaw")
            # Either may end first: waiting for one alone would drop the other's events.
            events = run_until_all_ended(pool, ["codec-a", "codec-u"])
            assert ended(events["codec-a"]).outcome == "busy"
            assert ended(events["codec-u"]).outcome == "busy"
    finally:
        statuses = alaw.wait(10), ulaw.wait(10)
    assert statuses == (0, 0), alaw.errors() + ulaw.errors()


CLOCK_THREAD_SCRIPT = r"""
import os, sys, threading, time, wave
import pjsua2 as pj
from dialer.lines import worker

tone = sys.argv[1]
with wave.open(tone, "wb") as out:
    out.setnchannels(1)
    out.setsampwidth(2)
    out.setframerate(8000)
    out.writeframes(bytes(16000))
local = threading.local()
fresh = frames = 0
clocks = set()

class Counting(worker.FrameTap):
    def onFrameReceived(self, frame):
        global fresh, frames
        super().onFrameReceived(frame)
        frames += 1
        clocks.add(threading.get_native_id())
        if not hasattr(local, "seen"):  # a Python thread state this callback did not have
            local.seen = True
            fresh += 1

ep = pj.Endpoint()
worker.quiet_lib_create(ep)
config = pj.EpConfig()
config.uaConfig.threadCnt = 0
config.uaConfig.mainThreadOnly = True
config.medConfig.clockRate = 8000
config.medConfig.sndClockRate = 8000
config.logConfig.level = 0
config.logConfig.consoleLevel = 0
ep.libInit(config)
ep.libStart()
ep.audDevManager().setNullDev()
taps = worker.TapPool(0)
player = pj.AudioMediaPlayer()
player.createPlayer(tone, 0)
idle = taps.take(None, False, False)
tap = Counting()
fmt = pj.MediaFormatAudio()
fmt.init(pj.PJMEDIA_FORMAT_PCM, 8000, 1, 20000, 16)
tap.createPort("counting", fmt)
for _ in range(3):  # the clock thread starts with the bridge's first connection, ends after it
    player.startTransmit(tap)
    until = time.monotonic() + 1.0
    while time.monotonic() < until:
        ep.libHandleEvents(50)
    player.stopTransmit(tap)
    until = time.monotonic() + 2.5  # pjsua closes the idle bridge's clock after 1 s
    while time.monotonic() < until:
        ep.libHandleEvents(50)
print(frames, fresh, len(clocks), flush=True)
os._exit(0)
"""


def test_the_media_clock_thread_keeps_one_python_thread_state(tmp_path: Path) -> None:
    """Frame callbacks come from pjsua's own clock thread, 50 a second for every tap (idle
    ones too): each must not build and drop a Python thread state, and a clock thread that
    ended must not leave its state behind when the next one starts."""
    done = subprocess.run(
        [sys.executable, "-c", CLOCK_THREAD_SCRIPT, str(tmp_path / "silence.wav")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent,
    )
    assert done.returncode == 0, done.stderr
    frames, fresh, clocks = map(int, done.stdout.split())
    assert frames >= 100  # 3 s of a 20 ms clock, give or take a busy machine
    assert clocks >= 2  # the bridge went idle and its clock thread was replaced
    assert fresh == clocks  # one thread state per clock thread, not one per frame
