"""`dialer bench sip`: the line pool against SIPp on loopback.

Two runs: `held` keeps N calls up with media (SIPp echoes every RTP packet back, so each call
carries audio both ways) and measures CPU, memory and RTP loss per call; `rate` places calls
at a steady number per second for a while (SIPp answers 486 at once, so the run measures call
set-up and tear-down, not media) and counts what the pool survived. Figures, never asserts.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections import Counter, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dialer.lines import Answered, Ended, LinePool
from dialer.lines.pool import free_port_block
from dialer.lines.worker import SLOTS
from sip_config import SipConfig, loads

SCENARIOS = Path(__file__).parent / "sipp"
CALLS_PER_ECHO_CARRIER = 50
LOOPBACK = "127.0.0.1"
NUMBER = "+12125550123"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def started_pool(config: SipConfig, workers: int) -> Iterator[LinePool]:
    """A line pool for one bench run: time for every worker to bind, always stopped."""
    pool = LinePool(config, workers)
    pool.start(timeout=30 + 2.0 * workers)
    try:
        yield pool
    finally:
        pool.stop(timeout=30)


def unclean_exits(pool: LinePool) -> list[str]:
    return [f"worker {worker}: {code}" for worker, code in pool.exits if code]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def _udp_receive_buffer_errors() -> int:
    """Datagrams the kernel dropped machine-wide for want of socket buffer (other users of the
    machine included): tells a starved receiver from loss on the way."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    names, values = [line for line in lines if line[0] == "Udp:"][:2]
    return int(values[names.index("RcvbufErrors")])


def _socket_drops(port: int) -> int:
    """Datagrams dropped at the UDP socket bound to `port` (the last column of /proc/net/udp)."""
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            return int(fields[-1])
    return 0


def _memory_kb(pid: int) -> tuple[int, int]:
    """(PSS, RSS) in kB from smaps_rollup."""
    pss = rss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


class _Carrier:
    """One SIPp UAS. `port` (default: a free one) lets a fresh SIPp take over the SIP port of
    one that has exited, so that a trunk built before it keeps pointing at a live carrier."""

    def __init__(
        self,
        workdir: Path,
        scenario: str,
        calls: int,
        timeout: float,
        port: int | None = None,
        **keys: str,
    ):
        sipp = shutil.which("sipp")
        if sipp is None:
            raise RuntimeError("sipp is not installed (scripts/install-system-deps)")
        text = (SCENARIOS / f"{scenario}.xml").read_text()
        for key, value in keys.items():
            text = text.replace(f"@{key}@", value)
        path = workdir / f"{scenario}.xml"
        path.write_text(text)
        self.port = port or _free_port()
        self.media_port = media = free_port_block(LOOPBACK, 4)
        control = _free_port()
        command = [
            sipp, "-sf", str(path), "-i", LOOPBACK, "-p", str(self.port),
            "-mi", LOOPBACK, "-mp", str(media), "-cp", str(control), "-nostdin",
            "-timeout", f"{timeout:g}s", "-m", str(calls), "-max_socket", "60000",
            # One SIPp socket echoes every call's RTP: give it the largest receive buffer.
            "-buff_size", "4194304",
        ]  # fmt: skip
        if scenario == "echo":
            command.append("-rtp_echo")
        self.log = (workdir / "sipp.log").open("wb")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)
        time.sleep(0.3)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.log.close()


def _config(ports: list[int], cps: float, channels: int) -> Any:
    """One trunk per SIPp carrier: bench0, bench1 ..."""
    return loads(
        "".join(
            f'[trunks.bench{i}]\nhost = "{LOOPBACK}"\nport = {port}\n'
            f'caller_id = "+12125550100"\nmax_cps = {cps:g}\nmax_channels = {channels}\n'
            "no_response_timeout = 10\n"
            for i, port in enumerate(ports)
        )
    )


def held(
    calls: int, hold: float, setup_rate: float, workers: int | None, bridged: bool = False
) -> dict[str, Any]:
    """Hold `calls` answered calls with echoed media for `hold` seconds; with `bridged`, as
    calls/2 pairs, each pair in one worker and bridged the way a customer meets an agent."""
    workers = workers or math.ceil(calls / SLOTS)
    # One SIPp thread echoing 200 calls (10,000 packets/s each way) dropped 1-5% at its socket
    # on a loaded machine while the pool's own sockets dropped none: a carrier per 50 calls.
    count = math.ceil(calls / CALLS_PER_ECHO_CARRIER)
    with tempfile.TemporaryDirectory() as folder:
        carriers: list[_Carrier] = []
        try:
            for i in range(count):
                workdir = Path(folder) / f"carrier{i}"
                workdir.mkdir()
                timeout = hold + calls / setup_rate + 120
                carriers.append(_Carrier(workdir, "echo", calls, timeout))
            config = _config([c.port for c in carriers], setup_rate / count, calls)
            with started_pool(config, workers) as pool:
                figures = _held(pool, calls, hold, workers, bridged, count)
                figures["udp_drops_at_sipp_echo_sockets"] = sum(
                    _socket_drops(c.media_port) for c in carriers
                )
            figures["worker_exits_not_clean"] = unclean_exits(pool)
            return figures
        finally:
            for carrier in carriers:
                carrier.stop()


def _held(
    pool: LinePool, calls: int, hold: float, workers: int, bridged: bool, carriers: int
) -> dict[str, Any]:
    def trunk(n: int) -> str:
        return f"bench{n % carriers}"

    started = time.monotonic()
    # Bridged: the customer leg "c-N" first; its agent leg "a-N" goes into the same worker.
    first = (
        [f"c-{n}" for n in range(calls // 2)] if bridged else [f"held-{n}" for n in range(calls)]
    )
    for n, attempt_id in enumerate(first):
        pool.originate(attempt_id, trunk(n), NUMBER)
    answered: set[str] = set()
    early_ends: list[Ended] = []
    bridges = 0
    deadline = started + calls / 5 + 60
    while len(answered) + len(early_ends) < calls and time.monotonic() < deadline:
        event = pool.next_event(0.5)
        if isinstance(event, Answered):
            answered.add(event.attempt_id)
            kind, _, n = event.attempt_id.partition("-")
            if bridged and kind == "c":
                pool.originate(f"a-{n}", trunk(int(n) + 1), NUMBER, near=event.attempt_id)
            elif bridged and kind == "a":
                pool.bridge(f"c-{n}", event.attempt_id)
                bridges += 1
        elif isinstance(event, Ended):
            early_ends.append(event)
    ramp = time.monotonic() - started
    pids = pool.worker_pids()
    cpu_before = sum(_cpu_seconds(pid) for pid in pids)
    drops_before = _udp_receive_buffer_errors()
    hold_started = time.monotonic()
    time.sleep(hold)
    held_for = time.monotonic() - hold_started
    cpu = sum(_cpu_seconds(pid) for pid in pids) - cpu_before
    memory = [_memory_kb(pid) for pid in pids]
    drops = _udp_receive_buffer_errors() - drops_before
    for attempt_id in answered:
        pool.hangup(attempt_id)
    ends = list(early_ends)
    deadline = time.monotonic() + 60
    while len(ends) < calls and time.monotonic() < deadline:
        event = pool.next_event(0.5)
        if isinstance(event, Ended):
            ends.append(event)
    received = sum(e.rtp_received or 0 for e in ends)
    lost = sum(e.rtp_lost or 0 for e in ends)
    live = max(1, len(answered))
    pss = sum(p for p, _ in memory)
    rss = sum(r for _, r in memory)
    return {
        "run": "held",
        "calls": calls,
        "answered": len(answered),
        "bridged_pairs": bridges,
        "outcomes": dict(Counter(e.outcome for e in ends)),
        "workers": workers,
        "sipp_carriers": carriers,
        "ramp_s": round(ramp, 1),
        "held_s": round(held_for, 1),
        "cpu_core_pct_per_call": round(100 * cpu / held_for / live, 3),
        "cpu_core_pct_total": round(100 * cpu / held_for, 1),
        "pss_mb_per_worker": round(pss / 1024 / workers, 1),
        "pss_mb_per_call": round(pss / 1024 / live, 2),
        "rss_mb_per_call": round(rss / 1024 / live, 2),
        "rtp_received": received,
        "rtp_lost": lost,
        "rtp_loss_pct": round(100 * lost / max(1, received + lost), 4),
        "udp_rcvbuf_drops_while_held": drops,
        "worker_restarts": pool.restarts,
        "load_average": os.getloadavg(),
    }


def rate(
    cps: float, duration: float, workers: int | None, answered_hold: float = 0.0
) -> dict[str, Any]:
    """Place `cps` calls per second for `duration` seconds. The carrier answers 486 at once,
    or, with `answered_hold` > 0, answers with echoed media and the dialer hangs up that many
    seconds after the answer (about cps * (hold + 0.1) calls up at once)."""
    total = int(cps * duration)
    if answered_hold > 0:
        scenario, keys = "echo", {}
        # A slot stays taken for the hold and about 0.5 s of set-up and tear-down; 15% more
        # slots than that average absorb the ups and downs. Every worker beyond costs CPU
        # even when idle (its conference clock ticks 50 times a second).
        workers = workers or max(2, math.ceil(cps * (answered_hold + 0.5) / SLOTS * 1.15))
    else:
        scenario, keys = "reject", {"CODE": "486", "REASON": "Busy Here"}
        # Each call holds a slot for a round trip only; a worker starts at most 40 calls/s.
        workers = workers or max(2, math.ceil(cps / 30))
    with tempfile.TemporaryDirectory() as folder:
        carrier = _Carrier(Path(folder), scenario, total, duration + answered_hold + 120, **keys)
        try:
            with started_pool(_config([carrier.port], cps, workers * SLOTS), workers) as pool:
                figures = _rate(pool, cps, total, workers, answered_hold, carrier.process.pid)
            figures["worker_exits_not_clean"] = unclean_exits(pool)
            return figures
        finally:
            carrier.stop()


class _CpuMeter:
    """CPU-seconds spent since the start by the line workers (by thread: the Python main loop,
    pjmedia's RTP thread, the conference clock), by this process (the supervisor thread and
    the bench's own loop) and by the carrier, read from /proc: wall time is shared with
    whatever else runs on the machine, CPU time is ours alone."""

    def __init__(self, pool: LinePool, carrier_pid: int) -> None:
        self.pool = pool
        self.carrier_pid = carrier_pid
        self.start = self._read()

    def _read(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for pid in self.pool.worker_pids():
            for thread, seconds in _thread_cpu_seconds(pid).items():
                totals[f"worker_{thread}"] += seconds
        node = os.times()
        totals["node"] = node.user + node.system
        totals["carrier"] = _cpu_seconds(self.carrier_pid)
        return totals

    def spent(self) -> Counter[str]:
        now = self._read()
        return Counter({key: now[key] - self.start.get(key, 0.0) for key in now})


def _thread_cpu_seconds(pid: int) -> dict[str, float]:
    """utime + stime of each thread of `pid`, summed by thread name ("python" is the main
    loop; pjsua names its own threads, e.g. "media" and "clock")."""
    by_name: dict[str, float] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return by_name
    for task in tasks:
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        seconds = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        by_name[name] = by_name.get(name, 0.0) + seconds
    return by_name


def _steady_rate(dialed: list[float]) -> tuple[float | None, float]:
    """Calls per second over the steady part of the run: the dials between the first and the
    last tenth of its span (at most 5 s each), leaving out the ramp and the drain."""
    if len(dialed) < 10:
        return None, 0.0
    span = dialed[-1] - dialed[0]
    margin = min(5.0, span / 10)
    low, high = dialed[0] + margin, dialed[-1] - margin
    inside = [t for t in dialed if low <= t <= high]
    window = high - low
    return (round(len(inside) / window, 1) if window > 0 else None), window


def _rate(
    pool: LinePool,
    cps: float,
    total: int,
    workers: int,
    answered_hold: float,
    carrier_pid: int,
) -> dict[str, Any]:
    meter = _CpuMeter(pool, carrier_pid)
    started = time.monotonic()
    for n in range(total):
        pool.originate(f"rate-{n}", "bench0", NUMBER)
    ends: list[Ended] = []
    hangups: deque[tuple[float, str]] = deque()  # (when, attempt), in answer order
    live = most_live = 0
    deadline = started + total / cps + answered_hold + 120
    while len(ends) < total and time.monotonic() < deadline:
        now = time.monotonic()
        while hangups and hangups[0][0] <= now:
            pool.hangup(hangups.popleft()[1])
        event = pool.next_event(0.01)
        if isinstance(event, Answered):
            hangups.append((now + answered_hold, event.attempt_id))
            live += 1
            most_live = max(most_live, live)
        elif isinstance(event, Ended):
            ends.append(event)
            if event.timings.answered_at is not None:
                live -= 1
    elapsed = time.monotonic() - started
    cpu = meter.spent()
    dialed = sorted(e.timings.dialed_at for e in ends if e.sip_code)
    steady_cps, window = _steady_rate(dialed)
    received = sum(e.rtp_received or 0 for e in ends)
    lost = sum(e.rtp_lost or 0 for e in ends)
    calls = max(1, len(ends))

    def per_call(seconds: float) -> float:
        return round(1000 * seconds / calls, 2)

    workers_cpu = sum(v for k, v in cpu.items() if k.startswith("worker_"))
    return {
        "run": "rate",
        "offered_cps": cps,
        "achieved_cps_steady": steady_cps,
        "steady_window_s": round(window, 1),
        "answered_hold_s": answered_hold,
        "calls": total,
        "placed": len(dialed),
        "ended": len(ends),
        "outcomes": dict(Counter(e.outcome for e in ends)),
        "sip_codes": dict(Counter(e.sip_code for e in ends)),
        "most_calls_up": most_live,
        "elapsed_s": round(elapsed, 1),
        "workers": workers,
        "cpu_ms_per_call_pool": per_call(workers_cpu + cpu["node"]),
        "cpu_ms_per_call_workers": {
            k.removeprefix("worker_"): per_call(v)
            for k, v in sorted(cpu.items())
            if k.startswith("worker_") and per_call(v) > 0
        },
        "cpu_ms_per_call_node": per_call(cpu["node"]),
        "cpu_ms_per_call_carrier": per_call(cpu["carrier"]),
        "cpu_cores_busy": round((workers_cpu + cpu["node"] + cpu["carrier"]) / elapsed, 2),
        "rtp_loss_pct": round(100 * lost / max(1, received + lost), 4),
        "worker_restarts": pool.restarts,
        "load_average": os.getloadavg(),
    }
