"""SIPp as the carrier in tests: one UAS scenario from tests/sipp/ on free loopback ports.

Other engineers run SIPp on this machine at the same time, so every port is picked free at
start and every SIPp gets its own control port, a global timeout and a call count."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

from dialer.demo.sipp import holds_udp_port

SCENARIOS = Path(__file__).parent / "sipp"
PCAPS = Path("/usr/share/sip-tester")
LOOPBACK = "127.0.0.1"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def free_media_port() -> int:
    """An even port with the next three free too (SIPp uses media_port and media_port + 2)."""
    for _ in range(100):
        base = free_udp_port() & ~1
        sockets = []
        try:
            for port in range(base, base + 4):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(s)
                s.bind((LOOPBACK, port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no free media port block")


def pcap_with_payload_type(source: Path, target: Path, payload_type: int) -> Path:
    """Copy a pcap of RTP in Ethernet/IPv4/UDP frames, rewriting every packet's payload type.
    SIPp's RFC 2833 pcaps use PT 101; pjsua offers telephone-event as PT 120 and ignores 101."""
    data = bytearray(source.read_bytes())
    offset = 24
    while offset + 16 <= len(data):
        length = struct.unpack_from("<I", data, offset + 8)[0]
        frame = offset + 16
        ip_header = (data[frame + 14] & 0x0F) * 4
        rtp = frame + 14 + ip_header + 8
        data[rtp + 1] = (data[rtp + 1] & 0x80) | payload_type
        offset = frame + length
    target.write_bytes(bytes(data))
    return target


class Carrier:
    """A SIPp UAS on its own ports; `port` is where the dialer's trunk points."""

    def __init__(self, workdir: Path, name: str) -> None:
        self.workdir = workdir
        self.name = name
        self.port = free_udp_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"sipp-{name}-{self.port}.log"
        self.calls_log = workdir / f"sipp-{name}-{self.port}-calls.log"
        self.media_port: int | None = None  # where SIPp's RTP goes and comes from, once started

    def start(
        self,
        scenario: str,
        *,
        calls: int = 1,
        timeout: float = 40.0,
        rtp_echo: bool = False,
        transport: str = "udp",
        trace_logs: bool = False,
        **placeholders: str,
    ) -> Carrier:
        sipp = shutil.which("sipp")
        if sipp is None:
            raise RuntimeError("sipp is not installed (scripts/install-system-deps)")
        text = (SCENARIOS / f"{scenario}.xml").read_text()
        placeholders.setdefault("PCAP", str(PCAPS / "g711a.pcap"))
        for key, value in placeholders.items():
            text = text.replace(f"@{key}@", value)
        path = self.workdir / f"{scenario}-{self.port}.xml"
        path.write_text(text)
        media_port = self.media_port = free_media_port()
        control_port = free_udp_port()
        while control_port in (media_port, media_port + 1, media_port + 2, media_port + 3):
            control_port = free_udp_port()
        command = [
            sipp,
            "-sf", str(path),
            "-i", LOOPBACK, "-p", str(self.port),
            "-mi", LOOPBACK, "-mp", str(media_port),
            "-cp", str(control_port),
            "-nostdin", "-timeout", f"{timeout:g}s", "-m", str(calls),
            "-trace_err", "-error_file", str(self.workdir / f"sipp-{self.name}-errors.log"),
        ]  # fmt: skip
        if rtp_echo:
            command.append("-rtp_echo")
        if trace_logs:  # the scenario's <log> lines, for `logged()`
            command += ["-trace_logs", "-log_file", str(self.calls_log)]
        if transport == "tcp":
            command += ["-t", "t1"]  # one TCP connection per remote, as a carrier would
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        # The first INVITE waits for SIPp to bind: on a loaded machine it takes more than the
        # 0.2 s once slept here, and a call sent before it failed with no answer at all.
        deadline = time.monotonic() + 10.0
        while transport == "udp" and time.monotonic() < deadline:
            if self.process.poll() is not None or holds_udp_port(self.process.pid, self.port):
                return self
            time.sleep(0.02)
        time.sleep(0.2)
        return self

    def wait(self, timeout: float = 45.0) -> int:
        """SIPp's exit status: 0 when every call followed the scenario to its end."""
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return -1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def logged(self) -> list[str]:
        """The lines the scenario's <log> actions wrote (started with `trace_logs`)."""
        if not self.calls_log.exists():
            return []
        return [line for line in self.calls_log.read_text(errors="replace").splitlines() if line]

    def errors(self) -> str:
        path = self.workdir / f"sipp-{self.name}-errors.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""
