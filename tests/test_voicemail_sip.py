"""A voicemail drop end to end: the node dials a campaign that leaves messages on answering
machines, SIPp answers as a voicemail (a greeting ending in a beep), and what SIPp received
over RTP is caught on the loopback interface: the campaign's rendered message is there, whole,
starting when the beep has ended and not before, and the attempt ends machine_message."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from campaigns.models import CallAttempt, Campaign, Lead
from dialer.bench.amd_corpus import read_wav, synthesise
from dialer.bench.rtp_pcap import wav_to_rtp_pcap
from dialer.demo.audio import VOICEMAILS
from dialer.prompts import campaign_voicemail
from tests.node_harness import (
    add_leads,
    number,
    running_node,
    start,
    working_agents,
    world,
    zone_in_hours,
)
from tests.rtp_capture import LoopbackRtp
from tests.test_node_sip import wait_for

pytestmark = [
    pytest.mark.sip,
    pytest.mark.skipif(
        not all(shutil.which(tool) for tool in ("sipp", "espeak-ng", "sox")),
        reason="needs sipp, espeak-ng and sox",
    ),
]

RATE = 8000
MESSAGE = "Hello, this is {seller}. Please call us back at {callback}. Thank you."
# The greeting-end tap hears the tone stop within two frames; the Play command then crosses two
# pipes and the message one jitter buffer.
PLAYED_WITHIN_S = 1.0


def correlation(received: np.ndarray, prompt: np.ndarray) -> tuple[int, float]:
    """Where in `received` the prompt starts (a sample index) and how alike they are there
    (normalised cross-correlation, 1.0 for the very same samples)."""
    size = 1 << int(np.ceil(np.log2(len(received) + len(prompt))))
    r, p = received.astype(np.float64), prompt.astype(np.float64)
    scores = np.fft.irfft(np.fft.rfft(r, size) * np.conj(np.fft.rfft(p, size)), size)
    scores = scores[: len(r) - len(p) + 1]
    energy = np.convolve(r * r, np.ones(len(p)), mode="valid")
    normalised = scores / (np.sqrt(energy * float(p @ p)) + 1e-9)
    lag = int(np.argmax(normalised))
    return lag, float(normalised[lag])


def test_a_voicemail_drop_plays_after_the_beep_and_the_attempt_ends_machine_message(
    tmp_path: Path,
) -> None:
    plan = dataclasses.replace(VOICEMAILS["maria"], index=900)
    greeting_wav, greeting = tmp_path / "voicemail.wav", tmp_path / "voicemail.pcap"
    synthesise(plan, greeting_wav)
    wav_to_rtp_pcap(greeting_wav, greeting)
    seconds = len(read_wav(greeting_wav)) / RATE
    beep_ends_s = seconds - 1.0  # the greeting ends with a second of line noise
    beep_starts_s = beep_ends_s - plan.beep_s
    with world(
        tmp_path,
        agents=1,
        calls=1,
        greeting=greeting,
        amd_action="message",
        voicemail_message=MESSAGE,
    ) as w:
        add_leads(w.engine, w.campaign_id, w.list_id, [number(1)], zone_in_hours())
        assert w.carrier.media_port is not None
        try:
            capture = LoopbackRtp(w.carrier.media_port)
        except PermissionError:
            pytest.skip("catching loopback RTP needs CAP_NET_RAW")
        start(w)
        with capture, running_node(w), working_agents(w):

            def ended() -> bool:
                with w.session() as session:
                    return session.scalar(select(CallAttempt.ended_at)) is not None

            assert wait_for(ended, 60), "the call never ended"
        with w.session() as session:
            attempt = session.scalars(select(CallAttempt)).one()
            lead = session.scalars(select(Lead)).one()
            prompt_path = campaign_voicemail(session.get_one(Campaign, w.campaign_id))
        assert w.carrier.wait(10) == 0, w.carrier.errors()

    assert (attempt.outcome, attempt.amd_verdict) == ("machine_message", "machine"), (
        attempt.outcome,
        attempt.failure_reason,
    )
    assert lead.status == "recycled" and lead.next_dial_at is not None
    assert lead.next_dial_at - attempt.ended_at > dt.timedelta(hours=3, minutes=59)

    # The greeting as SIPp sent it: its first packet is the WAV's first sample.
    _, sent_at = capture.audio(to_peer=False)
    assert len(sent_at) >= 0.9 * beep_ends_s * 50, "SIPp did not play the whole greeting"
    beep_starts, beep_ends = sent_at[0] + beep_starts_s, sent_at[0] + beep_ends_s
    # What SIPp received: silence, then the campaign's message.
    received, received_at = capture.audio(to_peer=True)
    assert prompt_path is not None
    prompt = read_wav(prompt_path)
    lag, likeness = correlation(received, prompt)
    assert likeness > 0.9, f"the message is not in what SIPp received (best match {likeness:.2f})"
    message_starts = received_at[lag // 160] + (lag % 160) / RATE
    assert beep_ends < message_starts <= beep_ends + PLAYED_WITHIN_S, (
        f"the message started {message_starts - beep_starts:+.2f} s after the beep began "
        f"(the beep lasted {plan.beep_s} s)"
    )
    heard = received[lag : lag + len(prompt)].astype(np.float64)
    assert len(heard) == len(prompt), "the message was cut short"
    loudness = np.sqrt(np.mean(heard**2)) / np.sqrt(np.mean(prompt.astype(np.float64) ** 2))
    assert 0.7 < loudness < 1.4, loudness
    # Nothing was said over the greeting.
    before = received[: max(0, lag - RATE // 10)].astype(np.float64)
    assert len(before) and np.sqrt(np.mean(before**2)) < 50
