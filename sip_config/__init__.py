"""SIP trunks: typed configuration from TOML (secrets from the environment) and trunk checks."""

from sip_config.trunks import (
    CONFIG_ENV,
    MIN_RING_TIMEOUT,
    SipConfig,
    SipConfigError,
    Trunk,
    calls_per_second,
    load,
    loads,
    parse,
)

__all__ = [
    "CONFIG_ENV",
    "MIN_RING_TIMEOUT",
    "SipConfig",
    "SipConfigError",
    "Trunk",
    "calls_per_second",
    "load",
    "loads",
    "parse",
]
