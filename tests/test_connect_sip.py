"""AMD and agent connect through the line pool, against SIPp customers and agent phones on
loopback: the greeting decides the verdict, a human reaches an auto-answering agent with audio
both ways, and a human nobody takes hears the safe-harbor message and counts as abandoned."""

from __future__ import annotations

import shutil
import subprocess
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from campaigns.models import Campaign
from dialer.amd import AmdSettings, detect
from dialer.bench.amd_corpus import Greeting, generate, read_wav, write_wav
from dialer.bench.rtp_pcap import wav_to_rtp_pcap, write_rtp_pcap
from dialer.connect import (
    Connector,
    ConnectOutcome,
    ConnectSettings,
    amd_tap,
    campaign_connect_settings,
)
from dialer.lines import (
    AmdVerdict,
    Answered,
    Bridged,
    DtmfReceived,
    Ended,
    Event,
    LinePool,
    PromptFinished,
    TapSpec,
)
from dialer.prompts import campaign_safe_harbor
from sip_config import loads
from tests.sipp_uas import PCAPS, Carrier, pcap_with_payload_type
from tests.test_lines import trunk_table

pytestmark = [
    pytest.mark.sip,
    pytest.mark.skipif(
        not all(shutil.which(tool) for tool in ("sipp", "espeak-ng", "sox")),
        reason="needs sipp, espeak-ng and sox",
    ),
]

NUMBER = "+12125550142"
CUSTOMERS = (
    "human",
    "machine",
    "bridged",
    "hears_agent",
    "abandoned",
    "reserve",
    "recorded",
    "opts_out",
)
HUMAN_TAP = TapSpec("dialer.bench.connect:DeclareHuman")
# SIPp starts playing on the ACK and frames pass pjsua's jitter buffer: a few frames' shift.
TIME_TOLERANCE_MS = 200


@pytest.fixture(scope="module")
def greetings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Greeting]:
    """A human and a machine greeting the offline detector gets right."""
    corpus = generate(4, seed=3, cache_dir=tmp_path_factory.mktemp("corpus"))
    chosen = {}
    for greeting in corpus:
        verdict = detect(read_wav(greeting.path).tobytes())
        if verdict.kind == greeting.plan.truth:
            chosen.setdefault(greeting.plan.truth, greeting)
    assert set(chosen) == {"human", "machine"}
    return chosen


@pytest.fixture(scope="module")
def carriers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Carrier]]:
    workdir = tmp_path_factory.mktemp("sipp")
    carriers = {name: Carrier(workdir, name) for name in (*CUSTOMERS, "agent")}
    yield carriers
    for carrier in carriers.values():
        carrier.stop()


@pytest.fixture(scope="module")
def pool(carriers: dict[str, Carrier]) -> Iterator[LinePool]:
    tables = "".join(trunk_table(name, carriers[name].port) for name in CUSTOMERS)
    with LinePool(loads(tables), workers=2) as line_pool:
        yield line_pool
    assert sorted(line_pool.exits) == [(0, 0), (1, 0)]  # no abort at shutdown


@pytest.fixture(scope="module")
def campaign() -> Campaign:
    return Campaign(
        name="Spring sale",
        kind="telemarketing",
        seller_name="Acme Insurance",
        callback_number="+12125550100",
        safe_harbor_message="",
    )


@pytest.fixture(scope="module")
def prompt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prompts")


@pytest.fixture(scope="module")
def safe_harbor(campaign: Campaign, prompt_dir: Path) -> Path:
    """The bundled safe-harbor message with the campaign's seller and number."""
    return campaign_safe_harbor(campaign, prompt_dir)


def wav_seconds(path: Path) -> float:
    with wave.open(str(path)) as wav:
        return wav.getnframes() / wav.getframerate()


def rms_after(path: Path, skip_s: float) -> float:
    """RMS of a 16-bit mono 8 kHz recording after its first `skip_s` seconds."""
    with wave.open(str(path)) as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    tail = samples[int(skip_s * 8000) :].astype(np.float64)
    return float(np.sqrt(np.mean(tail * tail))) if len(tail) else 0.0


def drive(
    pool: LinePool,
    connector: Connector | None,
    until: set[str],
    timeout: float = 30.0,
    on_event=None,  # type: ignore[no-untyped-def]
) -> tuple[list[Event], dict[str, ConnectOutcome]]:
    """Pump pool events (through the connector if any) until every attempt in `until` ended;
    `on_event` sees every event, and None every 10 ms without one."""
    seen: list[Event] = []
    outcomes: dict[str, ConnectOutcome] = {}
    left = set(until)
    deadline = time.monotonic() + timeout
    while left and time.monotonic() < deadline:
        event = pool.next_event(0.01)
        if connector is not None:
            connector.tick()
        if event is not None:
            seen.append(event)
        if connector is not None and event is not None:
            outcome = connector.handle(event)
            if outcome is not None:
                outcomes[outcome.customer] = outcome
        if on_event is not None:
            on_event(event)
        if isinstance(event, Ended):
            left.discard(event.attempt_id)
    assert not left, f"no Ended for {left} in {timeout} s; saw {seen}"
    return seen, outcomes


def of(events: list[Event], attempt_id: str, kind: type) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind) and e.attempt_id == attempt_id]


def test_the_amd_tap_tells_a_human_from_a_machine_through_the_pool(
    pool: LinePool, carriers: dict[str, Carrier], greetings: dict[str, Greeting], tmp_path: Path
) -> None:
    for truth in ("human", "machine"):
        pcap = tmp_path / f"{truth}.pcap"
        wav_to_rtp_pcap(greetings[truth].path, pcap)
        carriers[truth].start("answer", PCAP=str(pcap))
        pool.originate(f"amd-{truth}", truth, NUMBER, tap=amd_tap())

    def hang_up_on_verdict(event: Event | None) -> None:
        if isinstance(event, AmdVerdict):
            pool.hangup(event.attempt_id)

    events, _ = drive(pool, None, {"amd-human", "amd-machine"}, on_event=hang_up_on_verdict)
    for truth in ("human", "machine"):
        attempt_id = f"amd-{truth}"
        offline = detect(read_wav(greetings[truth].path).tobytes())
        (verdict,) = of(events, attempt_id, AmdVerdict)
        (answered,) = of(events, attempt_id, Answered)
        (result,) = of(events, attempt_id, Ended)
        assert (verdict.verdict, verdict.reason) == (truth, offline.reason)
        # Counted from the answer, not from the first media frame.
        assert verdict.after_ms is not None
        assert abs(verdict.after_ms - offline.after_ms) <= TIME_TOLERANCE_MS, verdict
        assert abs(verdict.at - answered.at - verdict.after_ms / 1000) < 0.3, verdict
        assert (result.outcome, result.amd_verdict) == (truth, truth)
        assert carriers[truth].wait() == 0, carriers[truth].errors()


def customer_then_speech(greeting: Path, target: Path) -> float:
    """The human greeting cut 0.5 s after the detector decides, then 3 s of loud speech (the
    customer talking to the agent), then silence. Returns the offline decision time (s)."""
    decided_s = detect(read_wav(greeting).tobytes()).after_ms / 1000
    first = read_wav(greeting)[: int((decided_s + 0.5) * 8000)].astype(np.float64)
    speech = target.with_suffix(".speech.wav")
    subprocess.run(
        ["espeak-ng", "-w", str(speech), "Yes I am interested, tell me more about the offer."],
        check=True,
    )
    resampled = target.with_suffix(".speech8k.wav")
    subprocess.run(
        ["sox", str(speech), "-r", "8000", "-c", "1", "-b", "16", str(resampled)], check=True
    )
    talk = read_wav(resampled).astype(np.float64)
    talk *= 10000 / max(1.0, float(np.abs(talk).max()))
    write_wav(target, np.concatenate((first, talk, np.zeros(8000 * 3))))
    return decided_s


def test_a_human_reaches_an_auto_answering_agent_who_hears_them(
    pool: LinePool,
    carriers: dict[str, Carrier],
    greetings: dict[str, Greeting],
    safe_harbor: Path,
    tmp_path: Path,
) -> None:
    """The agent's phone echoes what it hears: the agent leg's recording holds the customer's
    words only if they crossed the bridge to the agent's phone."""
    wav = tmp_path / "customer.wav"
    decided_s = customer_then_speech(greetings["human"].path, wav)
    pcap = tmp_path / "customer.pcap"
    wav_to_rtp_pcap(wav, pcap)
    carriers["bridged"].start("answer", PCAP=str(pcap))
    agent = carriers["agent"].start("agent_autoanswer", rtp_echo=True, MEDIA="")
    uri = f"sip:anna@127.0.0.1:{agent.port}"
    connector = Connector(pool, ConnectSettings(str(safe_harbor)), lambda customer: uri)
    recording = tmp_path / "agent-leg.wav"
    bridged_at: list[float] = []
    hung_up: list[bool] = []

    def on_event(event: Event | None) -> None:
        if isinstance(event, Bridged):
            assert pool.worker_of("c-bridged") == pool.worker_of("c-bridged/agent")
            pool.record("c-bridged/agent", str(recording))
            bridged_at.append(time.monotonic())
        if bridged_at and not hung_up and time.monotonic() - bridged_at[0] > 4.0:
            hung_up.append(True)
            pool.hangup("c-bridged")

    pool.originate("c-bridged", "bridged", NUMBER, tap=amd_tap())
    events, outcomes = drive(
        pool, connector, {"c-bridged", "c-bridged/agent"}, on_event=on_event, timeout=25
    )
    (verdict,) = of(events, "c-bridged", AmdVerdict)
    assert verdict.verdict == "human"
    assert abs(verdict.after_ms / 1000 - decided_s) <= TIME_TOLERANCE_MS / 1000
    (bridged,) = of(events, "c-bridged", Bridged)
    outcome = outcomes["c-bridged"]
    assert not outcome.abandoned and outcome.reason == "connected", outcome
    assert outcome.connect_delay_ms == bridged.connect_delay_ms
    assert outcome.connect_delay_ms is not None and 0 < outcome.connect_delay_ms < 1000
    time.sleep(0.2)  # the WAV header is written a frame after the recorder goes
    assert wav_seconds(recording) > 2.0
    assert rms_after(recording, 0.5) > 300, "the agent never heard the customer"
    assert carriers["bridged"].wait() == 0, carriers["bridged"].errors()
    assert agent.wait() == 0, agent.errors()  # and the INVITE carried both auto-answer headers


def test_the_customer_hears_the_agent(
    pool: LinePool, carriers: dict[str, Carrier], safe_harbor: Path, tmp_path: Path
) -> None:
    """The other direction: the agent's phone speaks, the customer's line echoes what it hears,
    so the customer leg's recording holds the agent's voice only if the bridge carried it."""
    carriers["hears_agent"].start("echo", rtp_echo=True)
    media = f'<nop><action><exec play_pcap_audio="{PCAPS / "g711a.pcap"}"/></action></nop>'
    agent = carriers["agent"].start("agent_autoanswer", MEDIA=media)
    uri = f"sip:anna@127.0.0.1:{agent.port}"
    connector = Connector(pool, ConnectSettings(str(safe_harbor)), lambda customer: uri)
    recording = tmp_path / "customer-leg.wav"
    bridged_at: list[float] = []

    def on_event(event: Event | None) -> None:
        if isinstance(event, Bridged):
            pool.record("c-hears", str(recording))
            bridged_at.append(time.monotonic())

    pool.originate("c-hears", "hears_agent", NUMBER, tap=HUMAN_TAP)
    deadline = time.monotonic() + 20
    seen: list[Event] = []
    while time.monotonic() < deadline and not (
        bridged_at and time.monotonic() - bridged_at[0] > 3.0
    ):
        event = pool.next_event(0.01)
        connector.tick()
        if event is not None:
            seen.append(event)
            connector.handle(event)
            on_event(event)
    assert bridged_at, f"never bridged; saw {seen}"
    pool.hangup("c-hears")
    _, outcomes = drive(pool, connector, {"c-hears", "c-hears/agent"})
    assert outcomes["c-hears"].connect_delay_ms is not None
    time.sleep(0.2)
    assert rms_after(recording, 0.5) > 300, "the customer never heard the agent"
    assert carriers["hears_agent"].wait() == 0, carriers["hears_agent"].errors()
    assert agent.wait() == 0, agent.errors()


def test_a_human_no_agent_takes_hears_the_safe_harbor_message_and_is_abandoned(
    pool: LinePool,
    carriers: dict[str, Carrier],
    greetings: dict[str, Greeting],
    campaign: Campaign,
    prompt_dir: Path,
    safe_harbor: Path,
    tmp_path: Path,
) -> None:
    """The campaign has no message of its own: the bundled one plays, naming its seller."""
    pcap = tmp_path / "human.pcap"
    wav_to_rtp_pcap(greetings["human"].path, pcap)
    carriers["abandoned"].start("answer", PCAP=str(pcap))
    agent = carriers["agent"].start("ring")  # the agent's phone rings and nobody picks up
    uri = f"sip:anna@127.0.0.1:{agent.port}"
    settings = campaign_connect_settings(campaign, prompt_dir)
    assert settings.safe_harbor_prompt == str(safe_harbor)
    connector = Connector(pool, settings, lambda customer: uri)
    pool.originate("c-abandoned", "abandoned", NUMBER, tap=amd_tap())
    events, outcomes = drive(pool, connector, {"c-abandoned", "c-abandoned/agent"})
    (verdict,) = of(events, "c-abandoned", AmdVerdict)
    assert verdict.verdict == "human"
    assert not of(events, "c-abandoned", Bridged)
    assert [e.path for e in of(events, "c-abandoned", PromptFinished)] == [str(safe_harbor)]
    outcome = outcomes["c-abandoned"]
    assert outcome.abandoned and outcome.safe_harbor_played, outcome
    assert outcome.reason == "no agent connected within 2 s of the greeting"
    # The prompt started inside the 2 s after the greeting's end, not merely after it.
    assert outcome.safe_harbor_after_greeting_s is not None
    assert 1.5 <= outcome.safe_harbor_after_greeting_s <= settings.connect_within_s
    (result,) = of(events, "c-abandoned", Ended)
    assert result.reason == "hung up by the dialer"
    # Ended once the prompt was over and the opt-out key was not pressed in the time left for
    # it: the prompt starts 0.2 s before the 2 s are up.
    greeting_end = verdict.at - AmdSettings().after_greeting_silence_ms / 1000
    window_end = greeting_end + settings.connect_within_s
    heard = wav_seconds(safe_harbor) + settings.opt_out_wait_s
    assert heard - 0.5 <= result.timings.ended_at - window_end <= heard + 1.0
    assert not outcome.opted_out
    (agent_leg,) = of(events, "c-abandoned/agent", Ended)
    assert agent_leg.sip_code == 487  # cancelled while ringing
    assert agent.wait() == 0, agent.errors()


def test_a_reserving_customer_call_keeps_a_slot_for_its_agent_leg(
    pool: LinePool, carriers: dict[str, Carrier]
) -> None:
    """Two workers of 4 slots take 4 reserving customer calls, 2 each, not 5: the fifth waits
    until a call ends, so no live answer ever finds its worker full when its agent is dialled."""
    carriers["reserve"].start("answer", calls=5)
    ids = [f"r-{n}" for n in range(5)]
    for attempt_id in ids:
        pool.originate(attempt_id, "reserve", NUMBER, reserve_agent_slot=True)
    answered: list[str] = []
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        event = pool.next_event(0.05)
        if isinstance(event, Answered):
            answered.append(event.attempt_id)
    assert sorted(answered) == ids[:4]
    assert sorted(pool.worker_of(a) for a in answered) == [0, 0, 1, 1]
    assert pool.worker_of("r-4") is None  # still waiting for room
    pool.hangup("r-0")
    seen, _ = drive(pool, None, {"r-0"})
    answered += [e.attempt_id for e in seen if isinstance(e, Answered)]
    deadline = time.monotonic() + 5.0
    while "r-4" not in answered and time.monotonic() < deadline:
        event = pool.next_event(0.05)
        if isinstance(event, Answered):
            answered.append(event.attempt_id)
    assert "r-4" in answered
    for attempt_id in ids[1:]:
        pool.hangup(attempt_id)
    drive(pool, None, set(ids[1:]))
    assert carriers["reserve"].wait() == 0, carriers["reserve"].errors()


def tone_pcap(path: Path, hz: float, seconds: float = 8.0) -> Path:
    write_rtp_pcap(path, 6000 * np.sin(2 * np.pi * hz * np.arange(int(seconds * 8000)) / 8000))
    return path


def band_share(samples: np.ndarray, hz: float) -> float:
    """Share of the samples' energy within 30 Hz of `hz`."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / 8000)
    return float(spectrum[np.abs(freqs - hz) <= 30].sum() / spectrum.sum())


def test_a_recorded_campaigns_conversation_is_one_wav_holding_both_parties(
    pool: LinePool, carriers: dict[str, Carrier], prompt_dir: Path, tmp_path: Path
) -> None:
    """The customer's line sends 600 Hz, the agent's phone 1100 Hz: the recording named in the
    Bridged event and the outcome holds both at once, mixed."""
    customer_hz, agent_hz = 600.0, 1100.0
    customer_pcap = tone_pcap(tmp_path / "customer.pcap", customer_hz)
    agent_pcap = tone_pcap(tmp_path / "agent.pcap", agent_hz)
    carriers["recorded"].start("answer", PCAP=str(customer_pcap))
    media = f'<nop><action><exec play_pcap_audio="{agent_pcap}"/></action></nop>'
    agent = carriers["agent"].start("agent_autoanswer", MEDIA=media)
    uri = f"sip:anna@127.0.0.1:{agent.port}"
    recording_campaign = Campaign(
        name="Collections Q3",
        kind="collections",
        seller_name="Acme Recoveries",
        callback_number="+12125550100",
        safe_harbor_message="",
        record_calls=True,
    )
    settings = campaign_connect_settings(recording_campaign, prompt_dir, tmp_path / "recordings")
    assert settings.recordings_dir == str(tmp_path / "recordings" / "Collections_Q3")
    connector = Connector(pool, settings, lambda customer: uri)
    bridged_at: list[float] = []

    def on_event(event: Event | None) -> None:
        if isinstance(event, Bridged):
            bridged_at.append(time.monotonic())
        if len(bridged_at) == 1 and time.monotonic() - bridged_at[0] > 3.0:
            bridged_at.append(time.monotonic())
            pool.hangup("c-recorded")

    pool.originate("c-recorded", "recorded", NUMBER, tap=HUMAN_TAP, reserve_agent_slot=True)
    events, outcomes = drive(pool, connector, {"c-recorded", "c-recorded/agent"}, on_event=on_event)
    (bridged,) = of(events, "c-recorded", Bridged)
    expected = str(tmp_path / "recordings" / "Collections_Q3" / "c-recorded.wav")
    assert bridged.recording_path == expected
    assert outcomes["c-recorded"].recording_path == expected
    time.sleep(0.2)  # the WAV header is written a frame after the recorder goes
    samples = read_wav(Path(expected))
    assert 2.5 <= len(samples) / 8000 <= 5.0
    middle = samples[8000 : 8000 * 2 + 4000]  # 1.5 s well inside the conversation
    assert band_share(middle, customer_hz) > 0.2, "the customer is missing from the recording"
    assert band_share(middle, agent_hz) > 0.2, "the agent is missing from the recording"
    assert band_share(middle, customer_hz) + band_share(middle, agent_hz) > 0.9
    assert carriers["recorded"].wait() == 0, carriers["recorded"].errors()
    assert agent.wait() == 0, agent.errors()


def test_a_person_who_presses_9_after_the_safe_harbor_message_is_opted_out(
    pool: LinePool,
    carriers: dict[str, Carrier],
    greetings: dict[str, Greeting],
    campaign: Campaign,
    prompt_dir: Path,
    safe_harbor: Path,
    tmp_path: Path,
) -> None:
    """47 CFR 64.1200(a)(7)(i)(B): the key-press opt-out, keyed by RFC 2833 from SIPp just
    after the message, ends the call at once and is reported for the do-not-call list."""
    greeting = tmp_path / "human.pcap"
    wav_to_rtp_pcap(greetings["human"].path, greeting)
    key = pcap_with_payload_type(PCAPS / "dtmf_2833_9.pcap", tmp_path / "nine.pcap", 120)
    # No agent is free: the message starts with the verdict (offline, the detector decides on
    # this greeting at `after_ms`); the key comes 2 s after the message ended, in the 4 s left.
    decided = detect(read_wav(greetings["human"].path).tobytes()).after_ms / 1000
    key_after = decided + wav_seconds(safe_harbor) + 2.0
    carriers["opts_out"].start(
        "answer_then_key",
        PCAP=str(greeting),
        KEY_PCAP=str(key),
        KEY_AFTER_MS=str(int(key_after * 1000)),
    )
    settings = campaign_connect_settings(campaign, prompt_dir)
    connector = Connector(pool, settings, lambda customer: None)
    pool.originate("c-opts-out", "opts_out", NUMBER, tap=amd_tap())
    events, outcomes = drive(pool, connector, {"c-opts-out"}, timeout=40)
    assert [e.digit for e in of(events, "c-opts-out", DtmfReceived)][:1] == ["9"], (
        events,
        carriers["opts_out"].errors(),
    )
    outcome = outcomes["c-opts-out"]
    assert outcome.opted_out and outcome.abandoned and outcome.safe_harbor_played, outcome
    assert of(events, "c-opts-out", PromptFinished), "the key came after the whole message"
    (result,) = of(events, "c-opts-out", Ended)
    # Hung up on the key, well before the opt-out window would have closed.
    assert result.reason == "hung up by the dialer"
    assert result.timings.ended_at - result.timings.answered_at < key_after + 1.5  # type: ignore[operator]
    assert carriers["opts_out"].wait() == 0, carriers["opts_out"].errors()
