"""A carrier on SIP over TLS for tests: this machine's SIPp is built without TLS, so a pjsua2
endpoint with a certificate plays the carrier. It prints its port, answers every call with
200 (OPTIONS too, as pjsua does) and stops when its standard input closes."""

from __future__ import annotations

import select
import sys

import pjsua2 as pj

from dialer.lines.worker import quiet_signalling_endpoint

LOOPBACK = "127.0.0.1"


class Inbound(pj.Call):
    pass


class Carrier(pj.Account):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Inbound] = []

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        call = Inbound(self, prm.callId)
        answer = pj.CallOpParam()
        answer.statusCode = 200
        call.answer(answer)
        self.calls.append(call)


def main(cert_file: str, key_file: str) -> None:
    ep = quiet_signalling_endpoint()
    tc = pj.TransportConfig()
    tc.port = 0
    tc.boundAddress = LOOPBACK
    tc.publicAddress = LOOPBACK
    tc.tlsConfig.certFile = cert_file
    tc.tlsConfig.privKeyFile = key_file
    transport = ep.transportCreate(pj.PJSIP_TRANSPORT_TLS, tc)
    ep.libStart()
    ep.audDevManager().setNullDev()
    account = Carrier()
    config = pj.AccountConfig()
    config.idUri = f"sip:carrier@{LOOPBACK}"
    account.create(config)
    print(ep.transportGetInfo(transport).localName.rsplit(":", 1)[1], flush=True)
    while not select.select([sys.stdin], [], [], 0)[0] or sys.stdin.read(1):
        ep.libHandleEvents(20)
    # Every Call object must be gone before libDestroy, or pjsua2 aborts.
    ep.hangupAllCalls()
    for _ in range(25):
        ep.libHandleEvents(20)
    account.calls.clear()
    account.shutdown()
    del account
    ep.libDestroy()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
