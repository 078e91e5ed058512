"""The A-law RTP pcap writer that feeds SIPp's play_pcap_audio."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

from dialer.bench.rtp_pcap import (
    KEY_FRAMES,
    PCMA_PAYLOAD_TYPE,
    TELEPHONE_EVENT_PAYLOAD_TYPE,
    alaw_decode,
    alaw_encode,
    read_rtp_pcap,
    write_rtp_pcap,
)


def speech_like(samples: int) -> np.ndarray:
    rng = np.random.default_rng(8)
    t = np.arange(samples) / 8000
    signal = 9000 * np.sin(2 * np.pi * 440 * t) * np.sin(2 * np.pi * 3 * t)
    return np.clip(signal + rng.normal(0, 300, samples), -32768, 32767).astype(np.int16)


def test_round_trip_keeps_timing_headers_and_audio(tmp_path: Path) -> None:
    samples = speech_like(8000 + 100)  # 1 s and a partial frame, padded with silence
    path = tmp_path / "greeting.pcap"
    assert write_rtp_pcap(path, samples) == 51
    packets = read_rtp_pcap(path)
    assert len(packets) == 51
    assert all(p.version == 2 and p.payload_type == PCMA_PAYLOAD_TYPE for p in packets)
    assert [p.marker for p in packets[:2]] == [True, False]
    assert [p.sequence for p in packets] == list(range(51))
    assert [p.timestamp for p in packets] == [160 * n for n in range(51)]
    assert [p.at_us for p in packets] == [20_000 * n for n in range(51)]
    assert {len(p.payload) for p in packets} == {160}
    assert len({p.ssrc for p in packets}) == 1
    decoded = alaw_decode(b"".join(p.payload for p in packets)).astype(np.int32)
    original = np.zeros(51 * 160, dtype=np.int32)
    original[: len(samples)] = samples
    # A-law keeps 13-bit resolution near zero and about 1/32 of the magnitude above it.
    assert np.all(np.abs(decoded - original) <= np.maximum(16, np.abs(original) / 16))


@pytest.mark.skipif(shutil.which("sox") is None, reason="needs sox")
def test_alaw_decoding_matches_sox(tmp_path: Path) -> None:
    alaw = tmp_path / "all-codes.al"
    alaw.write_bytes(bytes(range(256)))
    linear = tmp_path / "linear.raw"
    alaw_format = ["-t", "raw", "-r", "8000", "-e", "a-law", "-b", "8", "-c", "1"]
    linear_format = ["-t", "raw", "-e", "signed", "-b", "16"]
    subprocess.run(["sox", "-D", *alaw_format, alaw, *linear_format, linear], check=True)
    expected = np.frombuffer(linear.read_bytes(), dtype="<i2")
    assert np.array_equal(alaw_decode(bytes(range(256))), expected)


def test_alaw_encoding_matches_the_g711_reference() -> None:
    # audioop carries the ITU-T reference encoder (truncating, as G.711 specifies; sox rounds).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    samples = np.arange(-32768, 32768, dtype=np.int16)
    assert alaw_encode(samples) == audioop.lin2alaw(samples.astype("<i2").tobytes(), 2)
    assert alaw_encode(np.array([0, -1, 32767, -32768], dtype=np.int16)) == bytes(
        [0xD5, 0x55, 0xAA, 0x2A]
    )


def test_a_pcap_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.pcap"
    path.write_bytes(b"\xd4\xc3\xb2\xa1" + bytes(20))
    with pytest.raises(ValueError, match="expected Ethernet pcap"):
        read_rtp_pcap(path)


def test_keyed_digits_are_telephone_events_in_the_same_stream(tmp_path: Path) -> None:
    path = tmp_path / "keys.pcap"
    samples = speech_like(8000)  # 1 s: 50 packet times
    written = write_rtp_pcap(path, samples, keys=((0.2, "5"), (0.6, "#")))
    packets = read_rtp_pcap(path)
    assert written == len(packets) == 50 + 2 * 2  # each event's end goes out three times
    events = [p for p in packets if p.payload_type == TELEPHONE_EVENT_PAYLOAD_TYPE]
    assert len(events) == 2 * (KEY_FRAMES + 2)
    five = events[: KEY_FRAMES + 2]
    assert {p.timestamp for p in five} == {10 * 160}  # the event's start, in every packet
    assert [p.at_us for p in five[:KEY_FRAMES]] == [20_000 * (10 + n) for n in range(KEY_FRAMES)]
    assert [p.marker for p in five[:2]] == [True, False]
    codes = [(p.payload[0], p.payload[1] & 0x80, int.from_bytes(p.payload[2:4])) for p in five]
    assert codes[:-3] == [(5, 0, 160 * (n + 1)) for n in range(KEY_FRAMES - 1)]
    assert codes[-3:] == [(5, 0x80, 160 * KEY_FRAMES)] * 3
    assert len({p.sequence for p in five[-3:]}) == 1
    assert events[-1].payload[0] == 11  # '#'
    # One sequence number per packet time, in order; audio stops while a digit is keyed.
    sequences = sorted({p.sequence for p in packets})
    assert sequences == list(range(50))
    audio_times = {p.at_us // 20_000 for p in packets if p.payload_type == PCMA_PAYLOAD_TYPE}
    assert audio_times == set(range(50)) - set(range(10, 18)) - set(range(30, 38))


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        (((0.1, "x"),), r"DTMF digit 'x': expected one of"),
        (((0.95, "1"),), r"key '1' at 0\.95 s: expected within the audio"),
        (((0.2, "1"), (0.3, "2")), r"key '2' at 0\.3 s overlaps the key before it"),
    ],
)
def test_keys_that_cannot_be_keyed_are_refused(
    tmp_path: Path, keys: tuple[tuple[float, str], ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        write_rtp_pcap(tmp_path / "bad.pcap", speech_like(8000), keys=keys)
    assert not (tmp_path / "bad.pcap").exists()
