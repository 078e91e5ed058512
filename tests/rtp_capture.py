"""What a SIPp peer sent and received over RTP, caught on the loopback interface. SIPp 3.6 plays
RTP but records none, so the test listens as tcpdump would: an AF_PACKET socket on `lo` sees
every datagram to and from the peer's media port, with the kernel's arrival time. It needs
CAP_NET_RAW (root), as SIPp's own pcap playback does."""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass

import numpy as np

from dialer.bench.rtp_pcap import PCMA_PAYLOAD_TYPE, alaw_decode

_ETH_P_ALL = 0x0003
_ETH_HEADER = 14
_ETHERTYPE_IPV4 = 0x0800
_IP_PROTO_UDP = 17
_PACKET_OUTGOING = 4  # loopback shows each datagram twice: leaving and arriving
_RTP_HEADER = 12
_SO_TIMESTAMPNS = 35  # Linux; Python's socket module does not name it


@dataclass(frozen=True)
class RtpPacket:
    at: float  # wall clock (time.time()), as the kernel stamped its arrival
    to_peer: bool  # sent to the peer's media port (else sent by it)
    payload_type: int
    sequence: int
    payload: bytes


class LoopbackRtp:
    """`with LoopbackRtp(media_port) as capture:` ... `capture.packets`."""

    def __init__(self, media_port: int) -> None:
        self.media_port = media_port
        self.packets: list[RtpPacket] = []
        self._stop = threading.Event()
        self._socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
        self._socket.bind(("lo", 0))
        # Other tests' loopback traffic shares the socket: room for bursts of it.
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024 * 1024)
        self._socket.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        self._socket.settimeout(0.1)
        self._thread = threading.Thread(target=self._run, name="rtp-capture", daemon=True)

    def __enter__(self) -> LoopbackRtp:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._socket.close()

    def _run(self) -> None:
        ancillary = socket.CMSG_SPACE(16)
        while not self._stop.is_set():
            try:
                frame, cmsgs, _flags, address = self._socket.recvmsg(65535, ancillary)
            except TimeoutError:
                continue
            if address[2] == _PACKET_OUTGOING:
                continue
            at = None
            for level, kind, data in cmsgs:
                if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                    seconds, nanoseconds = struct.unpack("qq", data[:16])
                    at = seconds + nanoseconds / 1e9
            packet = self._rtp(frame, at)
            if packet is not None:
                self.packets.append(packet)

    def _rtp(self, frame: bytes, at: float | None) -> RtpPacket | None:
        if at is None or len(frame) < _ETH_HEADER + 20 + 8 + _RTP_HEADER:
            return None
        if struct.unpack_from("!H", frame, 12)[0] != _ETHERTYPE_IPV4:
            return None
        ip = _ETH_HEADER
        if frame[ip + 9] != _IP_PROTO_UDP:
            return None
        udp = ip + (frame[ip] & 0x0F) * 4
        source, destination = struct.unpack_from("!HH", frame, udp)
        if self.media_port not in (source, destination):
            return None
        rtp = udp + 8
        if frame[rtp] >> 6 != 2:  # not RTP version 2 (RTCP goes to the next port anyway)
            return None
        csrc = frame[rtp] & 0x0F
        sequence = struct.unpack_from("!H", frame, rtp + 2)[0]
        start = rtp + _RTP_HEADER + 4 * csrc
        return RtpPacket(
            at, destination == self.media_port, frame[rtp + 1] & 0x7F, sequence, frame[start:]
        )

    def audio(self, to_peer: bool) -> tuple[np.ndarray, np.ndarray]:
        """One direction's A-law audio in sequence order: (16-bit samples, the arrival time of
        each 20 ms packet's first sample)."""
        packets = sorted(
            (p for p in self.packets if p.to_peer == to_peer),
            key=lambda p: p.at,
        )
        packets = [p for p in packets if p.payload_type == PCMA_PAYLOAD_TYPE]
        samples = [alaw_decode(p.payload) for p in packets]
        times = np.array([p.at for p in packets])
        return (np.concatenate(samples) if samples else np.zeros(0, np.int16)), times
