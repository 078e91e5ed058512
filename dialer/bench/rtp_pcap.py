"""WAV audio as an RTP capture that SIPp plays from the far end (`play_pcap_audio`).

G.711 A-law (payload type 8), 160-byte payloads every 20 ms, in Ethernet/IPv4/UDP frames of a
classic pcap file; digits keyed in the same stream as RFC 4733 telephone-events. SIPp keeps only
the RTP packets' payload and timing and sends them to the media address of the SDP it
negotiated, so the addresses written here are placeholders.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dialer.amd import FRAME_SAMPLES

PCMA_PAYLOAD_TYPE = 8
# pjsua offers telephone-event as payload type 120; a far end keying with another type (SIPp's
# stock DTMF pcaps use 101) is not understood.
TELEPHONE_EVENT_PAYLOAD_TYPE = 120
DTMF_EVENT_CODES = "0123456789*#ABCD"  # RFC 4733 event codes 0-15, in order
KEY_FRAMES = 8  # a keyed digit lasts 160 ms, as pjsua's own do
_EVENT_VOLUME = 10  # -10 dBm0
_PCAP_MAGIC = 0xA1B2C3D4
_LINKTYPE_ETHERNET = 1
_ETHERTYPE_IPV4 = 0x0800
_IP_PROTO_UDP = 17
_RTP_VERSION_2 = 0x80
_PACKET_INTERVAL_US = 20_000
# A-law segment ends for the 13-bit magnitude (ITU-T G.711, table 1a).
_SEGMENT_ENDS = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _alaw_byte(sample: int) -> int:
    magnitude = sample >> 3
    if magnitude >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        magnitude = -magnitude - 1
    segment = next((i for i, end in enumerate(_SEGMENT_ENDS) if magnitude <= end), 8)
    if segment == 8:
        return 0x7F ^ mask
    code = segment << 4
    code |= (magnitude >> (1 if segment < 2 else segment)) & 0x0F
    return code ^ mask


def _linear_sample(code: int) -> int:
    code ^= 0x55
    value = (code & 0x0F) << 4
    segment = (code & 0x70) >> 4
    if segment == 0:
        value += 8
    else:
        value = (value + 0x108) << (segment - 1)
    return value if code & 0x80 else -value


@functools.cache
def _encode_table() -> np.ndarray:
    return np.array([_alaw_byte(s) for s in range(-32768, 32768)], dtype=np.uint8)


@functools.cache
def _decode_table() -> np.ndarray:
    return np.array([_linear_sample(code) for code in range(256)], dtype=np.int16)


def alaw_encode(samples: np.ndarray) -> bytes:
    """16-bit linear samples to G.711 A-law bytes."""
    return _encode_table()[samples.astype(np.int32) + 32768].tobytes()


def alaw_decode(codes: bytes) -> np.ndarray:
    return _decode_table()[np.frombuffer(codes, dtype=np.uint8)]


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ipv4_udp(src: tuple[str, int], dst: tuple[str, int], ident: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload  # 0: no checksum
    addresses = bytes(int(p) for p in src[0].split(".")) + bytes(int(p) for p in dst[0].split("."))
    header = struct.pack(
        "!BBHHHBBH", 0x45, 0, 20 + len(udp), ident & 0xFFFF, 0x4000, 64, _IP_PROTO_UDP, 0
    )
    header += addresses
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + udp


def _telephone_event(digit: str, end: bool, duration: int) -> bytes:
    """An RFC 4733 telephone-event payload: event code, end bit and volume, duration."""
    if len(digit) != 1 or digit not in DTMF_EVENT_CODES:
        raise ValueError(f"DTMF digit {digit!r}: expected one of {DTMF_EVENT_CODES!r}")
    flags = (0x80 if end else 0) | _EVENT_VOLUME
    return struct.pack("!BBH", DTMF_EVENT_CODES.index(digit), flags, duration)


def write_rtp_pcap(
    path: Path,
    samples: np.ndarray,
    ssrc: int = 0x0D1A1E55,
    src: tuple[str, int] = ("127.0.0.2", 6000),
    dst: tuple[str, int] = ("127.0.0.1", 4000),
    *,
    keys: Sequence[tuple[float, str]] = (),
    event_payload_type: int = TELEPHONE_EVENT_PAYLOAD_TYPE,
) -> int:
    """Write 8 kHz 16-bit samples as A-law RTP packets; returns the number of packets.

    `keys` are (seconds from the start, digit): each digit is keyed the way a phone does it
    (RFC 4733), in the same stream: for `KEY_FRAMES` packet times the audio gives way to
    telephone-event packets of `event_payload_type`, all with the event's start timestamp and a
    growing duration, the last one marked as the end and sent three times."""
    padded = np.zeros(-(-len(samples) // FRAME_SAMPLES) * FRAME_SAMPLES, dtype=np.int16)
    padded[: len(samples)] = samples
    codes = alaw_encode(padded)
    frames = len(codes) // FRAME_SAMPLES
    key_at = {}
    for seconds, digit in keys:
        start = round(seconds * 1_000_000 / _PACKET_INTERVAL_US)
        if start < 0 or start + KEY_FRAMES > frames:
            raise ValueError(
                f"key {digit!r} at {seconds:g} s: expected within the audio (0 to "
                f"{(frames - KEY_FRAMES) * _PACKET_INTERVAL_US / 1_000_000:g} s)"
            )
        if any(abs(start - other) < KEY_FRAMES + 1 for other in key_at):
            raise ValueError(f"key {digit!r} at {seconds:g} s overlaps the key before it")
        _telephone_event(digit, False, 0)  # the digit is checked before anything is written
        key_at[start] = digit
    # (frame time, payload type, marker, timestamp, payload, copies): the copies of an event's
    # end share one sequence number (RFC 4733 2.5.1.4).
    packets: list[tuple[int, int, bool, int, bytes, int]] = []
    frame = 0
    talkspurt = True
    while frame < frames:
        digit = key_at.get(frame)
        if digit is None:
            payload = codes[frame * FRAME_SAMPLES : (frame + 1) * FRAME_SAMPLES]
            start = frame * FRAME_SAMPLES
            packets.append((frame, PCMA_PAYLOAD_TYPE, talkspurt, start, payload, 1))
            talkspurt = False
            frame += 1
            continue
        for n in range(KEY_FRAMES):
            last = n == KEY_FRAMES - 1
            event = _telephone_event(digit, last, (n + 1) * FRAME_SAMPLES)
            start = frame * FRAME_SAMPLES
            packets.append((frame + n, event_payload_type, n == 0, start, event, 3 if last else 1))
        frame += KEY_FRAMES
        talkspurt = True  # audio after the event starts a new talkspurt
    ethernet = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01"
    ethernet += struct.pack("!H", _ETHERTYPE_IPV4)
    with path.open("wb") as pcap:
        pcap.write(struct.pack("<IHHiIII", _PCAP_MAGIC, 2, 4, 0, 0, 65535, _LINKTYPE_ETHERNET))
        written = 0
        for sequence, (at, payload_type, marker, timestamp, payload, copies) in enumerate(packets):
            rtp = struct.pack(
                "!BBHII",
                _RTP_VERSION_2,
                (0x80 if marker else 0) | payload_type,
                sequence & 0xFFFF,
                timestamp & 0xFFFFFFFF,
                ssrc,
            )
            at_us = at * _PACKET_INTERVAL_US
            for _ in range(copies):
                frame_bytes = ethernet + _ipv4_udp(src, dst, written, rtp + payload)
                pcap.write(
                    struct.pack(
                        "<IIII", at_us // 1_000_000, at_us % 1_000_000, *[len(frame_bytes)] * 2
                    )
                )
                pcap.write(frame_bytes)
                written += 1
    return written


@dataclass(frozen=True, slots=True)
class RtpPacket:
    at_us: int
    version: int
    payload_type: int
    marker: bool
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes


def read_rtp_pcap(path: Path) -> list[RtpPacket]:
    """The RTP packets of a pcap written by `write_rtp_pcap` (Ethernet, IPv4, UDP)."""
    data = path.read_bytes()
    magic, _, _, _, _, _, linktype = struct.unpack_from("<IHHiIII", data)
    if magic != _PCAP_MAGIC or linktype != _LINKTYPE_ETHERNET:
        raise ValueError(f"{path}: magic {magic:#x}, link type {linktype}: expected Ethernet pcap")
    packets = []
    offset = 24
    while offset < len(data):
        seconds, micros, captured, _ = struct.unpack_from("<IIII", data, offset)
        frame = data[offset + 16 : offset + 16 + captured]
        offset += 16 + captured
        ip = frame[14:]
        header_length = (ip[0] & 0x0F) * 4
        if _checksum(ip[:header_length]) != 0:
            raise ValueError(f"{path}: bad IPv4 header checksum in packet {len(packets)}")
        udp = ip[header_length:]
        udp_length = struct.unpack_from("!H", udp, 4)[0]
        rtp = udp[8:udp_length]
        first, second, sequence, timestamp, ssrc = struct.unpack_from("!BBHII", rtp)
        packets.append(
            RtpPacket(
                at_us=seconds * 1_000_000 + micros,
                version=first >> 6,
                payload_type=second & 0x7F,
                marker=bool(second & 0x80),
                sequence=sequence,
                timestamp=timestamp,
                ssrc=ssrc,
                payload=rtp[12:],
            )
        )
    return packets


def wav_to_rtp_pcap(wav: Path, pcap: Path) -> int:
    from dialer.bench.amd_corpus import read_wav

    return write_rtp_pcap(pcap, read_wav(wav))
