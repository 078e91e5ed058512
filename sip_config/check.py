"""`dialer trunk check`: is the carrier there? A SIP OPTIONS ping over the trunk's transport.

pjsua2 has no API to send an out-of-dialog OPTIONS, and the ping must not need a line worker,
so this is a plain socket and a hand-written request (RFC 3261 §11). Any final response proves
the carrier is reachable; 401/407 count too, since many carriers challenge OPTIONS."""

from __future__ import annotations

import secrets
import socket
import ssl
import time
from dataclasses import dataclass

from sip_config.trunks import Trunk

# RFC 3261 timer T1: UDP retransmissions at 0.5, 1, 2, 4 s ...
T1 = 0.5


@dataclass(frozen=True)
class PingResult:
    reachable: bool
    sip_code: int | None
    reason: str
    round_trip_ms: float | None


def options_request(trunk: Trunk, local_host: str, local_port: int, transport: str) -> bytes:
    branch = "z9hG4bK" + secrets.token_hex(8)
    user = trunk.username or "dialer"
    lines = [
        f"OPTIONS sip:{trunk.host}:{trunk.port} SIP/2.0",
        f"Via: SIP/2.0/{transport.upper()} {local_host}:{local_port};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@{trunk.host}>;tag={secrets.token_hex(4)}",
        f"To: <sip:{trunk.host}:{trunk.port}>",
        f"Call-ID: {secrets.token_hex(12)}@{local_host}",
        "CSeq: 1 OPTIONS",
        f"Contact: <sip:{user}@{local_host}:{local_port}>",
        "Accept: application/sdp",
        "User-Agent: dialer trunk check",
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


def _status(response: bytes) -> tuple[int, str] | None:
    first = response.split(b"\r\n", 1)[0].decode(errors="replace")
    parts = first.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("SIP/2.0") or not parts[1].isdigit():
        return None
    return int(parts[1]), parts[2] if len(parts) > 2 else ""


def ping(trunk: Trunk, timeout: float = 4.0, bind_address: str = "0.0.0.0") -> PingResult:
    """Send OPTIONS to the trunk (or its outbound proxy) and wait for a final response."""
    host, port = trunk.host, trunk.port
    if trunk.outbound_proxy:
        proxy_host, _, proxy_port = trunk.outbound_proxy.partition(":")
        host, port = proxy_host, int(proxy_port or 5060)
    started = time.monotonic()
    try:
        address = socket.getaddrinfo(host, port, socket.AF_INET)[0][4]
    except OSError as error:
        return PingResult(False, None, f"cannot resolve {host}: {error}", None)
    try:
        if trunk.transport == "udp":
            code_reason = _ping_udp(trunk, address, timeout, bind_address)
        else:
            code_reason = _ping_stream(trunk, address, timeout, bind_address)
    except OSError as error:
        return PingResult(False, None, f"{trunk.transport} to {host}:{port}: {error}", None)
    if code_reason is None:
        return PingResult(False, None, f"no response from {host}:{port} in {timeout:g} s", None)
    code, reason = code_reason
    elapsed = (time.monotonic() - started) * 1000
    return PingResult(True, code, reason, round(elapsed, 1))


def _ping_udp(
    trunk: Trunk, address: tuple[str, int], timeout: float, bind_address: str
) -> tuple[int, str] | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((bind_address, 0))
        sock.connect(address)
        local_host, local_port = sock.getsockname()
        request = options_request(trunk, local_host, local_port, "udp")
        deadline = time.monotonic() + timeout
        interval = T1
        while time.monotonic() < deadline:
            sock.send(request)
            wait_until = min(deadline, time.monotonic() + interval)
            while (remaining := wait_until - time.monotonic()) > 0:
                sock.settimeout(remaining)
                try:
                    status = _status(sock.recv(65535))
                except TimeoutError:
                    break
                except ConnectionRefusedError:
                    raise OSError("connection refused (ICMP port unreachable)") from None
                if status is not None and status[0] >= 200:
                    return status
            interval = min(interval * 2, 4.0)
    return None


def _ping_stream(
    trunk: Trunk, address: tuple[str, int], timeout: float, bind_address: str
) -> tuple[int, str] | None:
    raw = socket.create_connection(address, timeout=timeout, source_address=(bind_address, 0))
    sock: socket.socket = raw
    if trunk.transport == "tls":
        ca_file = str(trunk.tls_ca_file) if trunk.tls_ca_file else None
        context = ssl.create_default_context(cafile=ca_file)
        if not trunk.tls_verify_server:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        sock = context.wrap_socket(raw, server_hostname=trunk.host)
    with sock:
        local_host, local_port = sock.getsockname()[:2]
        sock.sendall(options_request(trunk, local_host, local_port, trunk.transport))
        buffer = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65535)
            except TimeoutError:
                return None
            if not chunk:
                return None
            buffer += chunk
            while b"\r\n\r\n" in buffer:
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                status = _status(head)
                if status is not None and status[0] >= 200:
                    return status
    return None
