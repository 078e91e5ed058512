"""The SIP transports a pjsua2 endpoint opens for its trunks, TLS with the trunks' CA policy."""

from __future__ import annotations

import ssl
from collections.abc import Iterable

import pjsua2 as pj

from sip_config.trunks import Trunk

KINDS = {
    "udp": pj.PJSIP_TRANSPORT_UDP,
    "tcp": pj.PJSIP_TRANSPORT_TCP,
    "tls": pj.PJSIP_TRANSPORT_TLS,
}


def transport_config(
    transport: str, bind_address: str, trunks: Iterable[Trunk]
) -> pj.TransportConfig:
    """Port 0: the kernel picks a free port, as other pools and SIPp share the machine; the
    transport puts its own port in the Contact it sends."""
    tc = pj.TransportConfig()
    tc.port = 0
    tc.boundAddress = bind_address
    tc.publicAddress = bind_address
    tls = [t for t in trunks if t.transport == "tls"]
    if transport == "tls" and tls:
        # sip_config gives every TLS trunk the same CA bundle and policy (one transport).
        trunk = tls[0]
        ca_file = trunk.tls_ca_file or ssl.get_default_verify_paths().openssl_cafile
        tc.tlsConfig.CaListFile = str(ca_file)
        tc.tlsConfig.verifyServer = trunk.tls_verify_server
    return tc
