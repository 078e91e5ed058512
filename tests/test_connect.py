"""The connect decision (pure): human answers reach an agent within 2 s of the greeting's end
or get the safe-harbor message and count as abandoned."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.connect import (
    BridgeLegs,
    CallConnect,
    Connector,
    ConnectSettings,
    DialAgent,
    DialOutside,
    HangUp,
    PlaySafeHarbor,
    TransferTarget,
    pacing_event,
)
from dialer.lines.events import AmdVerdict
from dialer.pacing import Abandoned, Connected

SETTINGS = ConnectSettings(safe_harbor_prompt="/prompts/safe-harbor.wav")
AGENT = "sip:anna@127.0.0.1:5080"


def test_a_human_is_bridged_to_the_agent_when_the_agent_answers() -> None:
    call = CallConnect("c1", SETTINGS)
    assert call.on_verdict("human", "silence after greeting", 10.0, AGENT) == [
        DialAgent("c1/agent", AGENT, near="c1")
    ]
    assert call.on_agent_answered(10.08) == [BridgeLegs("c1", "c1/agent")]
    assert call.on_bridged(85.0, 10.085) == []
    assert call.on_tick(20.0) == []  # connected: the window no longer matters
    assert call.on_customer_ended(60.0) == [HangUp("c1/agent")]
    outcome = call.outcome()
    assert (outcome.abandoned, outcome.connect_delay_ms, outcome.reason) == (
        False,
        85.0,
        "connected",
    )
    assert not outcome.safe_harbor_played


def test_a_recording_campaign_records_the_bridged_conversation_and_reports_where() -> None:
    settings = ConnectSettings("/prompts/safe-harbor.wav", recordings_dir="/rec/Spring_sale/")
    call = CallConnect("lead 42/try 1", settings)
    call.on_verdict("human", "silence after greeting", 10.0, AGENT)
    path = "/rec/Spring_sale/lead_42_try_1.wav"
    assert call.on_agent_answered(10.08) == [
        BridgeLegs("lead 42/try 1", "lead 42/try 1/agent", path)
    ]
    call.on_bridged(80.0, 10.09, recording_path=path)
    assert call.outcome().recording_path == path


def test_the_window_starts_at_the_greetings_end_not_at_the_verdict() -> None:
    """The detector decided 800 ms after the greeting ended, so 1.2 s are left, minus the lead
    the prompt needs to be heard in time."""
    call = CallConnect("c1", SETTINGS)
    call.on_verdict("human", "silence after greeting", 10.0, AGENT)
    assert call.on_tick(10.99) == []
    assert call.on_tick(11.0) == [
        HangUp("c1/agent"),
        PlaySafeHarbor("c1", SETTINGS.safe_harbor_prompt),
    ]
    assert call.on_agent_answered(11.1) == []  # too late: no bridge after the prompt started
    assert call.on_prompt_finished(15.0) == []  # open a moment for the opt-out key
    assert call.on_tick(15.0 + SETTINGS.opt_out_wait_s) == [HangUp("c1")]
    outcome = call.outcome()
    assert outcome.abandoned and outcome.safe_harbor_played
    assert outcome.reason == "no agent connected within 2 s of the greeting"
    assert outcome.safe_harbor_after_greeting_s == pytest.approx(1.8)


def test_a_notsure_verdict_is_connected_like_a_human_and_timed_from_the_verdict() -> None:
    call = CallConnect("c1", SETTINGS)
    assert call.on_verdict("notsure", "initial silence", 10.0, AGENT)[0] == DialAgent(
        "c1/agent", AGENT, near="c1"
    )
    assert call.on_tick(11.79) == []
    assert isinstance(call.on_tick(11.8)[-1], PlaySafeHarbor)


def test_a_machine_is_hung_up_and_never_counts_as_abandoned() -> None:
    call = CallConnect("c1", SETTINGS)
    assert call.on_verdict("machine", "beep", 10.0, None) == [HangUp("c1")]
    call.on_customer_ended(10.1)
    outcome = call.outcome()
    assert (outcome.abandoned, outcome.agent_leg, outcome.reason) == (False, None, "machine")


def test_with_no_agent_free_the_person_waits_then_hears_the_prompt_in_time() -> None:
    call = CallConnect("c1", SETTINGS)
    assert call.on_verdict("human", "silence after greeting", 10.0, None) == []
    # The greeting ended 0.8 s before the verdict: the prompt starts 0.2 s before the 2 s end.
    assert call.on_tick(10.99) == []
    assert call.on_tick(11.0) == [PlaySafeHarbor("c1", SETTINGS.safe_harbor_prompt)]
    assert call.on_agent_free(AGENT, 11.0) == [], "too late for an agent now"
    assert call.on_prompt_finished(13.0) == []
    assert call.on_tick(16.9) == []
    assert call.on_tick(17.0) == [HangUp("c1")]
    assert call.outcome().abandoned and not call.outcome().opted_out
    assert call.outcome().reason == "no agent free"


def test_an_agent_freed_while_a_person_waits_gets_the_call_if_there_is_time() -> None:
    call = CallConnect("c1", SETTINGS)
    call.on_verdict("human", "silence after greeting", 10.0, None)
    assert call.offer_until == pytest.approx(11.0 - SETTINGS.agent_answer_s)
    assert call.on_agent_free(AGENT, 10.5) == [DialAgent("c1/agent", AGENT, near="c1")]
    assert call.on_agent_free(AGENT, 10.5) == [], "offered once"
    assert call.on_agent_answered(10.6) == [BridgeLegs("c1", "c1/agent")]
    call.on_bridged(600.0, 10.62)
    outcome = call.outcome()
    assert outcome.connect_delay_ms == 600.0 and not outcome.abandoned


@pytest.mark.parametrize("during_message", [True, False])
def test_the_opt_out_key_ends_the_call_at_once_and_is_reported(during_message: bool) -> None:
    """47 CFR 64.1200(a)(7)(i)(B): a key-press opt-out during or right after the message."""
    call = CallConnect("c1", SETTINGS)
    call.on_verdict("human", "silence after greeting", 10.0, None)
    call.on_tick(11.0)  # nobody was free: the message starts
    if not during_message:
        call.on_prompt_finished(13.0)
    assert call.on_digit("5", 14.0) == []  # only the opt-out key counts
    assert call.on_digit(SETTINGS.opt_out_digit, 14.5) == [HangUp("c1")]
    assert call.on_tick(20.0) == [] and call.on_digit("9", 20.0) == []
    outcome = call.outcome()
    assert outcome.opted_out and outcome.abandoned
    assert outcome.safe_harbor_played is not during_message


class PlayedPrompts:
    """The line pool as the connector drives it, keeping the prompts it was asked to play."""

    def __init__(self) -> None:
        self.played: list[str] = []

    def play(self, attempt_id: str, path: str) -> None:
        self.played.append(attempt_id)

    def hangup(self, attempt_id: str) -> None:
        pass


def test_the_connector_tells_of_an_abandon_when_the_message_starts_not_at_the_end() -> None:
    now = [10.0]
    lines = PlayedPrompts()
    connector = Connector(lines, SETTINGS, lambda customer: None, clock=lambda: now[0])  # type: ignore[arg-type]
    connector.handle(AmdVerdict("c1", "human", 0.0, "silence after greeting", 800, 10.0))
    connector.handle(AmdVerdict("c2", "human", 0.0, "silence after greeting", 800, 10.5))
    connector.tick()
    assert connector.take_abandoned() == [] and connector.waiting == 2
    now[0] = 11.0
    connector.tick()
    assert connector.take_abandoned() == ["c1"] == lines.played
    assert connector.take_abandoned() == [], "told once"
    now[0] = 11.5
    connector.tick()
    assert connector.take_abandoned() == ["c2"]


def test_keys_pressed_in_a_conversation_are_no_opt_out() -> None:
    call = CallConnect("c1", SETTINGS)
    call.on_verdict("human", "silence after greeting", 10.0, AGENT)
    call.on_agent_answered(10.3)
    call.on_bridged(40.0, 10.4)
    assert call.on_digit("9", 12.0) == []
    assert not call.outcome().opted_out


def test_an_agent_leg_that_fails_abandons_the_call_at_once() -> None:
    call = CallConnect("c1", SETTINGS)
    call.on_verdict("human", "silence after greeting", 10.0, AGENT)
    assert call.on_agent_failed("486 Busy Here", 10.05) == [
        PlaySafeHarbor("c1", SETTINGS.safe_harbor_prompt)
    ]
    assert call.outcome().reason == "agent leg failed: 486 Busy Here"


def test_a_customer_who_hangs_up_while_waiting_counts_as_abandoned() -> None:
    call = CallConnect("c1", SETTINGS)
    call.on_verdict("human", "silence after greeting", 10.0, AGENT)
    assert call.on_customer_ended(10.5) == [HangUp("c1/agent")]
    assert call.outcome().abandoned
    assert call.on_agent_answered(10.6) == []


def test_the_agent_hanging_up_ends_the_conversation() -> None:
    call = CallConnect("c1", SETTINGS)
    call.on_verdict("human", "silence after greeting", 10.0, AGENT)
    call.on_agent_answered(10.1)
    call.on_bridged(100.0, 10.1)
    assert call.on_agent_failed("200 far end hung up", 70.0) == [HangUp("c1")]
    assert not call.outcome().abandoned


@pytest.mark.parametrize("within", [0.0, 2.5])
def test_the_window_cannot_be_set_beyond_the_rule(within: float) -> None:
    with pytest.raises(ValueError, match="connect_within_s"):
        ConnectSettings(safe_harbor_prompt="p.wav", connect_within_s=within)


@given(
    verdict_at=st.floats(0.0, 1e6),
    reason=st.sampled_from(["silence after greeting", "initial silence", "timeout"]),
    answer_after=st.one_of(st.none(), st.floats(0.0, 5.0)),
    tick=st.floats(0.001, 0.02),
)
def test_a_live_answer_is_connected_or_hears_the_prompt_within_2_s_of_its_greeting(
    verdict_at: float, reason: str, answer_after: float | None, tick: float
) -> None:
    """Whatever the agent does, the customer hears an agent or the prompt in time, as long as
    the shell ticks at least every 20 ms."""
    call = CallConnect("c", SETTINGS)
    call.on_verdict("human", reason, verdict_at, AGENT)
    assert call.greeting_end is not None
    now = verdict_at
    while call.state in ("dialing_agent", "bridging"):
        now += tick
        if answer_after is not None and now >= verdict_at + answer_after:
            if call.on_agent_answered(now):
                call.on_bridged(1000 * (now - verdict_at), now)
                answer_after = None
            continue
        call.on_tick(now)
    deadline = call.greeting_end + SETTINGS.connect_within_s
    if call.connected:
        assert now <= deadline - SETTINGS.prompt_lead_s + 1e-6
    else:
        assert call.prompt_started is not None
        assert call.prompt_started <= deadline - SETTINGS.prompt_lead_s + tick + 1e-6


def test_the_pacer_hears_of_connects_and_abandons_but_not_of_machines() -> None:
    connected = CallConnect("c1", SETTINGS)
    connected.on_verdict("human", "silence after greeting", 10.0, AGENT)
    connected.on_agent_answered(10.1)
    connected.on_bridged(120.0, 10.12)
    assert pacing_event(connected.outcome()) == Connected(waited=0.12)
    abandoned = CallConnect("c2", SETTINGS)
    abandoned.on_verdict("notsure", "initial silence", 10.0, None)
    abandoned.on_tick(12.0)
    assert pacing_event(abandoned.outcome()) == Abandoned()
    machine = CallConnect("c3", SETTINGS)
    machine.on_verdict("machine", "beep", 10.0, None)
    assert pacing_event(machine.outcome()) is None


def test_a_blind_transfer_frees_the_slot_first_then_bridges_the_target() -> None:
    call = CallConnect("c1", SETTINGS)
    call.on_verdict("human", "silence after greeting", 10.0, AGENT)
    call.on_agent_answered(10.1)
    call.on_bridged(100.0, 10.12)
    target = TransferTarget(agent_uri="sip:agent2@127.0.0.1:5090")
    assert call.on_transfer(target, 30.0) == [HangUp("c1/agent")]
    assert call.on_agent_failed("200 hung up by the dialer", 30.1, "c1/agent") == [
        DialAgent("c1/transfer1", "sip:agent2@127.0.0.1:5090", near="c1")
    ]
    # Long after the 2-s window: a transfer is no new live answer.
    assert call.on_agent_answered(33.0) == [BridgeLegs("c1", "c1/transfer1")]
    call.on_bridged(None, 33.1)
    assert call.state == "connected" and call.outcome().connect_delay_ms == 100.0
    assert call.on_agent_failed("late event of the old leg", 34.0, "c1/agent") == []
    assert call.on_agent_failed("200 far end hung up", 90.0, "c1/transfer1") == [HangUp("c1")]


def test_a_transfer_to_a_number_that_fails_ends_the_call_saying_why() -> None:
    call = CallConnect("c1", SETTINGS)
    call.on_verdict("human", "silence after greeting", 10.0, AGENT)
    call.on_agent_answered(10.1)
    call.on_bridged(100.0, 10.12)
    target = TransferTarget(trunk="carrier1", number="+12125550177")
    call.on_transfer(target, 20.0)
    assert call.on_agent_failed("200", 20.1, "c1/agent") == [
        DialOutside("c1/transfer1", "carrier1", "+12125550177", near="c1")
    ]
    assert call.on_agent_failed("486 Busy Here", 25.0, "c1/transfer1") == [HangUp("c1")]
    assert call.outcome().reason == "transfer failed: 486 Busy Here"
    assert not call.outcome().abandoned
    with pytest.raises(ValueError, match="not both"):
        TransferTarget(agent_uri="sip:a@b", trunk="t", number="+12125550177")
