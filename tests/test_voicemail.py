"""Voicemail drop (pure): after AMD's machine verdict the message plays when the beep is heard,
at the greeting's end on a machine without a beep, or at the longest wait; the dialer hangs up
after it; a machine that hangs up first gets no message. And the parts around it: the tap
that hears the beep or the greeting's end, the message's text, the lead's fate."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from campaigns.db import make_engine, session_factory
from campaigns.dispositions import DEFAULT_RULES, next_state, rules_for
from campaigns.models import CallAttempt, Campaign, CampaignHour, Lead
from dialer.amd import FRAME_BYTES, GreetingEndDetector, greeting_end_factory
from dialer.calls.voicemail import (
    HangUp,
    Listen,
    PlayMessage,
    VoicemailDrop,
    VoicemailOutcome,
    VoicemailSettings,
)
from dialer.cli import main
from dialer.lines.events import AmdVerdict, Ended, Timings
from dialer.node.jobs import roll_up_hours
from dialer.node.ledger import AttemptLedger
from dialer.prompts import voicemail_text
from tests.test_amd import pcm, silence, tone, voice
from tests.test_ledger import a_lead, opened

SETTINGS = VoicemailSettings(message_prompt="/prompts/voicemail.wav", max_wait_s=12.0)
MESSAGE = PlayMessage("c1", SETTINGS.message_prompt)


def test_after_a_long_greeting_the_message_waits_for_the_beep_then_the_dialer_hangs_up() -> None:
    drop = VoicemailDrop("c1", SETTINGS)
    assert drop.on_machine(10.0) == [Listen("c1", SETTINGS.tap())]
    assert drop.on_tick(15.0) == []
    assert drop.on_heard("beep", 16.4) == [MESSAGE]
    assert drop.on_heard("beep", 16.5) == []  # one message per call
    assert drop.on_tick(30.0) == []  # playing: the longest wait no longer matters
    assert drop.on_prompt_finished(22.0) == [HangUp("c1")]
    drop.on_ended(22.1)
    outcome = drop.outcome()
    assert outcome.message_played
    assert outcome.reason == "beep"
    assert outcome.waited_s == pytest.approx(6.4)


def test_a_beep_amd_decided_on_is_let_finish_before_the_message() -> None:
    """AMD hears a beep 150 ms into the tone: the machine records from its end."""
    drop = VoicemailDrop("c1", SETTINGS)
    assert drop.on_machine(10.0) == [Listen("c1", SETTINGS.tap())]
    assert drop.on_heard("beep", 10.4) == [MESSAGE]
    assert drop.on_prompt_finished(14.0) == [HangUp("c1")]
    assert drop.outcome().message_played
    assert drop.outcome().waited_s == pytest.approx(0.4)


def test_without_a_beep_the_message_plays_at_the_greetings_end() -> None:
    drop = VoicemailDrop("c1", SETTINGS)
    drop.on_machine(10.0)
    assert drop.on_heard("end of greeting", 13.2) == [MESSAGE]
    drop.on_prompt_finished(18.0)
    assert drop.outcome().reason == "end of greeting" and drop.outcome().message_played


def test_with_neither_beep_nor_pause_the_message_plays_at_the_longest_wait() -> None:
    drop = VoicemailDrop("c1", SETTINGS)
    drop.on_machine(10.0)
    assert drop.on_tick(21.99) == []
    assert drop.on_tick(22.0) == [MESSAGE]
    assert drop.on_heard("beep", 22.5) == []  # too late to matter: the message is on
    drop.on_prompt_finished(27.0)
    outcome = drop.outcome()
    assert outcome.message_played
    assert outcome.reason == "no beep nor end of greeting within 12 s"
    assert outcome.waited_s == pytest.approx(12.0)


def test_a_machine_that_hangs_up_before_its_beep_gets_no_message() -> None:
    drop = VoicemailDrop("c1", SETTINGS)
    drop.on_machine(10.0)
    assert drop.on_ended(13.0) == []
    assert drop.on_heard("beep", 13.1) == [] and drop.on_tick(40.0) == []
    outcome = drop.outcome()
    assert not outcome.message_played and outcome.waited_s is None
    assert outcome.reason == "the call ended before the beep"


def test_a_message_cut_by_the_machine_hanging_up_is_not_a_message_left() -> None:
    drop = VoicemailDrop("c1", SETTINGS)
    drop.on_machine(10.0)
    drop.on_heard("beep", 10.5)
    drop.on_ended(11.0)
    assert drop.on_prompt_finished(11.1) == []
    outcome = drop.outcome()
    assert not outcome.message_played
    assert outcome.reason == "the call ended during the message"


def test_a_message_that_cannot_be_played_ends_the_call_without_one() -> None:
    drop = VoicemailDrop("c1", SETTINGS)
    drop.on_machine(10.0)
    drop.on_heard("end of greeting", 11.0)
    assert drop.on_prompt_failed(11.1) == [HangUp("c1")]
    assert not drop.outcome().message_played


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_wait_s": 0}, "max_wait_s=0"),
        ({"max_wait_s": 120}, "at most 60 s"),
        ({"end_silence_ms": 5}, "end_silence_ms=5"),
    ],
)
def test_settings_out_of_range_are_refused_by_name(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VoicemailSettings("/prompts/voicemail.wav", **options)  # type: ignore[arg-type]


# -- the greeting-end tap


def frames(pcm_bytes: bytes) -> list[bytes]:
    return [pcm_bytes[i : i + FRAME_BYTES] for i in range(0, len(pcm_bytes), FRAME_BYTES)]


def first_verdict(detector: GreetingEndDetector, audio: bytes):  # type: ignore[no-untyped-def]
    for frame in frames(audio):
        verdict = detector.feed(frame)
        if verdict is not None:
            return verdict
    return None


def test_the_tap_hears_the_end_of_the_beep_after_the_rest_of_the_greeting() -> None:
    # Attached mid-greeting: 1.5 s more of voice, a pause, then the beep.
    audio = pcm(voice(1.5), silence(0.4, 30.0), tone(1000.0, 0.5), silence(2.0, 30.0))
    verdict = first_verdict(GreetingEndDetector(), audio)
    assert verdict is not None and (verdict.kind, verdict.reason) == ("machine", "beep")
    beep_ends_ms = 2400
    assert beep_ends_ms <= verdict.after_ms <= beep_ends_ms + 60


def test_the_tap_attached_mid_beep_hears_it_end() -> None:
    audio = pcm(tone(1000.0, 0.35), silence(2.0, 30.0))
    verdict = first_verdict(GreetingEndDetector(), audio)
    assert verdict is not None and verdict.reason == "beep"
    assert 350 <= verdict.after_ms <= 410


def test_the_tap_hears_the_end_of_a_greeting_without_beep_after_its_silence() -> None:
    detector = greeting_end_factory(end_silence_ms=1200)
    audio = pcm(voice(2.0), silence(0.3, 30.0), voice(1.0), silence(3.0, 30.0))
    verdict = first_verdict(detector, audio)
    assert verdict is not None and verdict.reason == "end of greeting"
    greeting_ends_ms = 3300  # the pause between the sentences did not end it
    assert greeting_ends_ms + 1100 <= verdict.after_ms <= greeting_ends_ms + 1400


# -- the message's text and the lead's fate


def test_the_message_fills_in_the_seller_and_the_callback_number() -> None:
    text = voicemail_text("This is {seller}. Please call us at {callback}.", "Acme", "+12125550100")
    assert text == "This is Acme. Please call us at 2 1 2, 5 5 5, 0 1 0 0."


@pytest.mark.parametrize(
    ("message", "seller", "callback", "error"),
    [
        ("  ", "Acme", "+12125550100", "voicemail_message is empty"),
        ("Call {number}", "Acme", "+12125550100", "use {seller} and {callback}"),
        ("Call {callback}", "Acme", None, "callback_number .or caller_id. is empty"),
        ("This is {seller}", "", "+12125550100", "seller_name is empty"),
    ],
)
def test_a_message_that_cannot_be_spoken_is_refused_naming_the_field(
    message: str, seller: str, callback: str | None, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        voicemail_text(message, seller, callback)


def test_a_message_left_recycles_the_lead_as_the_campaign_recycles_machines() -> None:
    now = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
    default = next_state(1, "machine_message", rules_for({}), 6, now)
    assert default == next_state(1, "machine", rules_for({}), 6, now)
    assert default.next_dial_at == now + DEFAULT_RULES["machine"].retry_after  # type: ignore[operator]
    hourly = rules_for({"machine": {"retry_minutes": 60}})
    assert next_state(1, "machine_message", hourly, 6, now).next_dial_at == now + dt.timedelta(
        hours=1
    )
    # A rule of its own wins: a campaign may close a lead once its message is on the tape.
    closed = rules_for({"machine_message": {"retry_minutes": None}})
    assert next_state(1, "machine_message", closed, 6, now).status == "done"
    assert next_state(1, "machine", closed, 6, now).status == "recycled"


# -- the attempt ledger, the report and the command line


def test_a_machine_given_the_whole_message_ends_machine_message_and_is_reported(
    engine: Engine, session: Session, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign_id, lead_id = a_lead(session)
    ledger = AttemptLedger(engine, "node-1")
    left, cut = opened(ledger, campaign_id, lead_id), opened(ledger, campaign_id, lead_id)
    now = time.time()
    timings = Timings(now, now + 1, now + 5, now + 25)
    for attempt_id, played in ((left, True), (cut, False)):
        ledger.observe(AmdVerdict(attempt_id, "machine", now + 7.5, "long greeting", 2500))
        # The greeting-end tap's verdict is not the attempt's: the node keeps it from the ledger.
        voicemail = VoicemailOutcome(attempt_id, played, "beep", 6.0 if played else None)
        ended = Ended(attempt_id, 200, "hung up by the dialer", "machine", timings, "machine")
        settled = ledger.end(ended, None, voicemail=voicemail)
        assert settled is not None
        assert settled.outcome == ("machine_message" if played else "machine")
    session.rollback()
    row = session.get_one(CallAttempt, int(left))
    assert (row.outcome, row.amd_verdict, row.amd_ms) == ("machine_message", "machine", 2500)
    lead = session.get_one(Lead, lead_id)
    assert lead.status == "recycled" and lead.last_outcome == "machine"
    wait = lead.next_dial_at - dt.datetime.now(dt.UTC)  # type: ignore[operator]
    assert dt.timedelta(hours=3) < wait <= dt.timedelta(hours=4), "the machine rule: 4 h"
    monkeypatch.setenv("DATABASE_URL", db_url)
    result = CliRunner().invoke(main, ["report", "campaign", "Spring sale", "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output)["today"]["by_outcome"]
    assert counts == {"machine": 1, "machine_message": 1}
    # The console's reports read the hourly sums: messages are counted apart there too.
    roll_up_hours(engine)
    session.rollback()
    hour = session.scalars(select(CampaignHour)).one()
    assert (hour.attempts, hour.machine, hour.machine_message) == (2, 1, 1)


def test_campaign_create_takes_the_amd_action_and_refuses_a_message_without_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'dialer.db'}")
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"]).exit_code == 0
    base = ["campaign", "create", "Spring sale", "--kind", "telemarketing", "--seller", "Acme"]
    refused = runner.invoke(main, [*base, "--amd-action", "message"])
    assert refused.exit_code != 0
    assert "--voicemail-message" in refused.output and "is empty" in refused.output
    refused = runner.invoke(
        main, [*base, "--amd-action", "message", "--voicemail-message", "Call {callback}"]
    )
    assert refused.exit_code != 0 and "callback_number (or caller_id) is empty" in refused.output
    message = "Hello, this is {seller}. Please call us back at {callback}."
    created = runner.invoke(
        main,
        [*base, "--callback-number", "+12125550100", "--amd-action", "message",
         "--voicemail-message", message],
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    engine = make_engine(f"sqlite:///{tmp_path / 'dialer.db'}")
    with session_factory(engine)() as session:
        campaign = session.scalars(select(Campaign)).one()
        assert (campaign.amd_action, campaign.voicemail_message) == ("message", message)
    engine.dispose()
