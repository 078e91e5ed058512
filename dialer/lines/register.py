"""`dialer trunk check` for trunks with `register = true`: one REGISTER through pjsua2.

It runs in a spawned process of its own, since a process holds at most one pjsua2 Endpoint
and the caller (the CLI, a test, the node) may hold one already or want one later."""

from __future__ import annotations

import multiprocessing as mp
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

from sip_config import Trunk


@dataclass(frozen=True)
class RegistrationResult:
    registered: bool
    sip_code: int | None
    reason: str
    expires: int | None


def check_registration(
    trunk: Trunk, bind_address: str = "127.0.0.1", timeout: float = 10.0
) -> RegistrationResult:
    context = mp.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(
        target=_register, args=(trunk, bind_address, timeout, send), daemon=True
    )
    process.start()
    send.close()
    try:
        if receive.poll(timeout + 10):
            result: RegistrationResult = receive.recv()
            return result
        return RegistrationResult(False, None, f"no registration result in {timeout:g} s", None)
    except EOFError:
        return RegistrationResult(False, None, "the registration process died", None)
    finally:
        process.join(timeout=5)
        if process.is_alive():
            process.kill()
            process.join()


def _register(trunk: Trunk, bind_address: str, timeout: float, out: Connection) -> None:
    import pjsua2 as pj

    from dialer.lines.transport import KINDS, transport_config
    from dialer.lines.worker import quiet_signalling_endpoint

    class Registration(pj.Account):
        def __init__(self) -> None:
            super().__init__()
            self.result: RegistrationResult | None = None

        def onRegState(self, prm: pj.OnRegStateParam) -> None:  # pjsua2 callback
            try:
                code = int(prm.code)
                if code >= 200:
                    self.result = RegistrationResult(
                        200 <= code < 300, code, str(prm.reason), int(prm.expiration)
                    )
            except Exception as error:  # an escaping exception keeps objects alive (SWIG)
                self.result = RegistrationResult(False, None, f"callback failed: {error}", None)

    ep = quiet_signalling_endpoint()
    ep.transportCreate(
        KINDS[trunk.transport], transport_config(trunk.transport, bind_address, [trunk])
    )
    ep.libStart()
    acfg = pj.AccountConfig()
    acfg.idUri = f"sip:{trunk.username}@{trunk.host}"
    registrar = f"sip:{trunk.host}:{trunk.port}"
    acfg.regConfig.registrarUri = (
        registrar if trunk.transport == "udp" else f"{registrar};transport={trunk.transport}"
    )
    acfg.regConfig.timeoutSec = trunk.register_expires
    acfg.regConfig.retryIntervalSec = 0  # one attempt: this is a check, not a keep-alive
    if trunk.outbound_proxy:
        acfg.sipConfig.proxies.append(f"sip:{trunk.outbound_proxy};lr")
    password = trunk.password()
    if trunk.username and password is not None:
        acfg.sipConfig.authCreds.append(
            pj.AuthCredInfo("digest", trunk.realm or "*", trunk.username, 0, password)
        )
    account = Registration()
    account.create(acfg)
    deadline = time.monotonic() + timeout
    while account.result is None and time.monotonic() < deadline:
        ep.libHandleEvents(10)
    result = account.result or RegistrationResult(
        False, None, f"no response to REGISTER in {timeout:g} s", None
    )
    out.send(result)
    out.close()
    # Unregistering on the way out is polite but not needed for a check; shut down quietly.
    account.shutdown()
    del account
    ep.libDestroy(pj.PJSUA_DESTROY_NO_NETWORK)
