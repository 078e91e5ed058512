"""One SIPp UAS process on loopback that runs until stopped and logs a line per call event: the
shell under the simulated carrier and the agents' phones.

SIPp gets its own working folder (scenario, links to the captures it plays, its logs), a SIP
port (given, or a free one), a block of media ports and a control port of its own, since other
SIPp instances run on the same machine. No -m and no global -timeout: every step of the
scenarios that waits has a timeout of its own, so no call stays for ever.
"""

from __future__ import annotations

import abc
import contextlib
import ctypes
import os
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from dialer.demo.scenario import LoggedEnd, LoggedInvite, parse_log_line
from dialer.lines.pool import free_port_block

LOOPBACK = "127.0.0.1"
# One UDP socket takes every call's signalling: a large buffer absorbs bursts of INVITEs, and
# with -rtp_echo the echo socket carries every call's media.
SOCKET_BUFFER = 4 * 1024 * 1024
# Retransmitted INVITEs of a call SIPp already ended are absorbed as long as it remembers it.
DEADCALL_WAIT_MS = 64_000

_PR_SET_PDEATHSIG = 1
# Looked up before any fork: the child only calls it (no import or allocation between fork and
# exec, where another thread's lock could be held).
_prctl = ctypes.CDLL(None, use_errno=True).prctl


def _die_with_parent() -> None:
    """SIPp runs "until stopped": if our process is killed without stopping it, the kernel ends
    it too. Linux sends the signal when the *thread* that started SIPp ends, so start peers
    from a thread that lives as long as they do (the main thread)."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class SippError(RuntimeError):
    pass


def sipp_binary() -> str:
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SippError("sipp is not installed (scripts/install-system-deps installs sip-tester)")
    return sipp


def _free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def holds_udp_port(pid: int, port: int) -> bool:
    """Whether process `pid` has a UDP socket bound to `port` (SIPp binds it once its scenario
    is loaded). Asked of the kernel, since another process may hold the same port."""
    try:
        table = Path("/proc/net/udp").read_text().splitlines()[1:]
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    inodes = {
        fields[9]
        for fields in (line.split() for line in table)
        if int(fields[1].rsplit(":", 1)[1], 16) == port
    }
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def can_play_audio() -> bool:
    """SIPp plays captures through a raw socket: it needs root or CAP_NET_RAW on its binary."""
    if os.geteuid() == 0:
        return True
    try:
        capability = os.getxattr(sipp_binary(), "security.capability")
    except OSError:
        return False
    # vfs_cap_data: magic/flags, then permitted bits 0-31 (CAP_NET_RAW is 13).
    return len(capability) >= 8 and bool(int.from_bytes(capability[4:8], "little") & 1 << 13)


class SippUas:
    """A SIPp UAS running `scenario` with `files` (name -> path) linked into its folder."""

    def __init__(
        self,
        name: str,
        scenario: str,
        files: dict[str, Path] | None = None,
        *,
        port: int | None = None,
        host: str = LOOPBACK,
        rtp_echo: bool = False,
        workdir: Path | None = None,
    ) -> None:
        self.name = name
        self.scenario = scenario
        self.files = dict(files or {})
        self.host = host
        self.rtp_echo = rtp_echo
        self._given_port = port
        self.port = port or _free_udp_port(host)
        self._keep_workdir = workdir is not None
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._offset = 0
        self._partial = b""

    @property
    def log_path(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "calls.log"

    def start(self, timeout: float = 10.0) -> None:
        if self.process is not None:
            raise SippError(f"{self.name}: already started")
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix=f"dialer-{self.name}-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "scenario.xml").write_text(self.scenario)
        for file_name, target in self.files.items():
            link = self.workdir / file_name
            link.unlink(missing_ok=True)
            link.symlink_to(target.resolve())
        # A free port can be taken by someone else before SIPp binds it: try another one then.
        for attempt in range(3):
            try:
                self._launch(timeout)
                return
            except SippError:
                if self._given_port is not None or attempt == 2:
                    self.stop()
                    raise
                self.port = _free_udp_port(self.host)

    def _launch(self, timeout: float) -> None:
        assert self.workdir is not None
        media_port = free_port_block(self.host, 4)
        control_port = _free_udp_port(self.host)
        while media_port <= control_port < media_port + 4:
            control_port = _free_udp_port(self.host)
        command = [
            sipp_binary(), "-sf", "scenario.xml",
            "-i", self.host, "-p", str(self.port),
            "-mi", self.host, "-mp", str(media_port), "-cp", str(control_port),
            # -aa: a 200 to an INFO (DTMF), UPDATE or OPTIONS within a call, which the
            # scenarios do not expect, instead of dropping the call.
            "-nostdin", "-aa",
            # Warnings (-trace_err) would log a line per call for every receive timeout the
            # scenarios take on purpose: fatal errors alone go to stderr.
            "-trace_logs", "-log_file", "calls.log",
            "-buff_size", str(SOCKET_BUFFER),
            "-deadcall_wait", str(DEADCALL_WAIT_MS),
            # A loaded shared machine can stall SIPp's loop for a moment: the watchdog would
            # then end the whole run after a few stalls.
            "-watchdog_interval", "0",
        ]  # fmt: skip
        if self.rtp_echo:
            command.append("-rtp_echo")
        stderr = (self.workdir / "stderr.log").open("wb")
        self._offset, self._partial = 0, b""
        self.log_path.unlink(missing_ok=True)
        try:
            self.process = subprocess.Popen(
                command,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # SIPp redraws its screen there every second
                stderr=stderr,
                start_new_session=True,  # Ctrl-C in a terminal goes to us, not to SIPp
                preexec_fn=_die_with_parent,
            )
        finally:
            stderr.close()
        # Each call playing a capture holds a raw socket: allow as many as the system lets us.
        with contextlib.suppress(OSError, ValueError):
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.prlimit(self.process.pid, resource.RLIMIT_NOFILE, (hard, hard))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if holds_udp_port(self.process.pid, self.port):
                return
            time.sleep(0.02)
        problem = self.problem() or "it did not bind its port in time"
        self._kill()
        raise SippError(f"{self.name}: SIPp on {self.host}:{self.port} did not start: {problem}")

    def problem(self) -> str:
        """The end of SIPp's error output, if any (its notes on each capture it loaded aside)."""
        if self.workdir is None or not (self.workdir / "stderr.log").exists():
            return ""
        lines = (self.workdir / "stderr.log").read_text(errors="replace").splitlines()
        # Notes on each capture loaded, and at exit the last of the receive timeouts the
        # scenarios take on purpose.
        chatter = ("In pcap ", "max pkt length ", "base port ", "There were more errors")
        lines = [line for line in lines if "jumping to label" not in line]
        return "\n".join(line for line in lines if line and not line.startswith(chatter))[-2000:]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def read_lines(self) -> list[str]:
        """The complete lines SIPp logged since the last call."""
        with self._lock:
            if self.workdir is None or not self.log_path.exists():
                return []
            with self.log_path.open("rb") as log:
                log.seek(self._offset)
                data = log.read()
            self._offset += len(data)
            data = self._partial + data
            *lines, self._partial = data.split(b"\n")
            return [line.decode("utf-8", errors="replace") for line in lines if line]

    def _kill(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def stop(self) -> list[str]:
        """Stop SIPp (calls still up are dropped) and return the lines not read yet."""
        self._kill()
        lines = self.read_lines()
        if self.workdir is not None and not self._keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        return lines


class SippPeer(abc.ABC):
    """What the simulated carrier and the agents' phones share: a `SippUas` made at start, its
    log of calls (an invite line and an end line each, by SIPp's call number), the life cycle."""

    def __init__(self, host: str, port: int | None) -> None:
        self.host = host
        self._port = port
        self._sipp: SippUas | None = None
        self._invites: dict[int, LoggedInvite] = {}
        self._ends: dict[int, LoggedEnd] = {}

    @abc.abstractmethod
    def _uas(self) -> SippUas:
        """The SIPp this peer runs, made when it starts."""

    @property
    def pid(self) -> int | None:
        """SIPp's process id while it runs (its CPU time is read from /proc)."""
        process = self._sipp.process if self._sipp is not None else None
        return process.pid if process is not None else None

    @property
    def port(self) -> int:
        if self._sipp is None:
            raise SippError("the SIP port is known once SIPp has started")
        return self._sipp.port

    def start(self, timeout: float = 10.0) -> Self:
        if self._sipp is not None:
            raise SippError("already started (a peer runs once: make a new one)")
        self._sipp = self._uas()
        self._sipp.start(timeout)
        return self

    def stop(self) -> None:
        if self._sipp is not None:
            self._take(self._sipp.stop())

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._sipp is not None and self._sipp.running

    def problem(self) -> str:
        """SIPp's fatal errors, if any."""
        return self._sipp.problem() if self._sipp is not None else ""

    def _take(self, lines: list[str]) -> set[int]:
        """Record the lines; the call numbers they were about."""
        calls = set()
        for line in lines:
            record = parse_log_line(line)
            if isinstance(record, LoggedInvite):
                self._invites[record.call_number] = record
            else:
                self._ends[record.call_number] = record
            calls.add(record.call_number)
        return calls

    def _read(self) -> set[int]:
        if self._sipp is None or self._sipp.workdir is None:
            return set()
        return self._take(self._sipp.read_lines())

    def _logged(self) -> list[tuple[LoggedInvite, LoggedEnd | None]]:
        self._read()
        return [(self._invites[n], self._ends.get(n)) for n in sorted(self._invites)]

    def _changed(self) -> list[tuple[LoggedInvite, LoggedEnd | None]]:
        calls = sorted(n for n in self._read() if n in self._invites)
        return [(self._invites[n], self._ends.get(n)) for n in calls]
