"""SIP trunks as the TOML configuration defines them (settings shown, secrets never), and a
"test" button that sends the carrier a SIP OPTIONS ping."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, render_template
from sqlalchemy import select

from campaigns.models import Campaign
from sip_config import SipConfig, SipConfigError, Trunk, load
from sip_config.check import ping
from web import db
from web.permissions import allow

bp = Blueprint("trunks", __name__, url_prefix="/trunks")


def sip_config() -> SipConfig:
    """The file named by the app's SIP_CONFIG, else by $DIALER_SIP_CONFIG (read per request:
    an edited file shows at once)."""
    return load(current_app.config.get("SIP_CONFIG"))


def configured_trunks() -> tuple[list[str], str | None]:
    """The trunk names, and why the configuration could not be read (None when it could)."""
    try:
        return sorted(sip_config().trunks), None
    except SipConfigError as error:
        return [], str(error)


def settings_shown(trunk: Trunk) -> list[tuple[str, str]]:
    """What the page shows of a trunk: everything but where its password lives."""
    if trunk.password_env or trunk.password_file:
        auth = "digest (password from the environment or a file)"
    else:
        auth = "none"
    rows = [
        ("Host", f"{trunk.host}:{trunk.port}"),
        ("Transport", trunk.transport.upper()),
        ("User name", trunk.username or "—"),
        ("Authentication", auth),
        ("Realm", trunk.realm or "any"),
        ("Registers", f"yes, every {trunk.register_expires} s" if trunk.register else "no"),
        ("Outbound proxy", trunk.outbound_proxy or "—"),
        ("Caller ID", trunk.caller_id or "—"),
        ("P-Asserted-Identity", trunk.p_asserted_identity or "—"),
        ("Number format", trunk.number_format),
        ("Dial prefix", trunk.dial_prefix or "—"),
        ("Codecs", ", ".join(trunk.codecs)),
        ("Channels", str(trunk.max_channels)),
        ("Calls per second", f"{trunk.max_cps:g}"),
        ("Ring timeout", f"{trunk.ring_timeout:g} s"),
        ("No-response timeout", f"{trunk.no_response_timeout:g} s"),
    ]
    if trunk.transport == "tls":
        rows.append(("TLS CA bundle", str(trunk.tls_ca_file or "the system's")))
        rows.append(("TLS server check", "on" if trunk.tls_verify_server else "off"))
    return rows


def _page(results: dict[str, Any] | None = None) -> Any:
    try:
        config: SipConfig | None = sip_config()
        problem = None
    except SipConfigError as error:
        config, problem = None, str(error)
    used: dict[str, list[Campaign]] = {}
    for campaign in db.session().scalars(
        select(Campaign).where(Campaign.trunk_name.is_not(None)).order_by(Campaign.name)
    ):
        used.setdefault(campaign.trunk_name or "", []).append(campaign)
    trunks = sorted(config.trunks.values(), key=lambda t: t.name) if config else []
    return render_template(
        "trunks/index.html",
        trunks=trunks,
        settings={t.name: settings_shown(t) for t in trunks},
        used=used,
        problem=problem,
        results=results or {},
    )


@bp.route("/")
@allow("trunks.view")
def index() -> Any:
    return _page()


@bp.route("/<name>/test", methods=["POST"])
@allow("trunks.test")
def test(name: str) -> Any:
    try:
        trunk = sip_config().trunk(name)
    except SipConfigError:
        abort(404)
    result = ping(
        trunk,
        timeout=float(current_app.config["TRUNK_PING_TIMEOUT"]),
        bind_address=current_app.config["TRUNK_PING_BIND"],
    )
    current_app.logger.info("trunk %s OPTIONS ping: %s", name, result)
    return _page({name: result})
