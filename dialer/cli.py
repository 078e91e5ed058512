"""The `dialer` command: the one place that assembles console, scheduler and dialer node."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from dialer.demo.mix import DEFAULT_MIX

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from campaigns.models import Campaign
    from dialer.demo.sipp import SippPeer
    from dialer.node.priority import NodePriority


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dialer")
def main() -> None:
    """Outbound dialer and campaign manager."""


@main.group()
def bench() -> None:
    """Benchmarks that print figures (never asserted in tests)."""


def _engine() -> Engine:
    from campaigns.db import make_engine

    return make_engine()


def _campaign_id(session: Session, name: str | None) -> int | None:
    from sqlalchemy import select

    from campaigns.models import Campaign

    if name is None:
        return None
    campaign_id = session.scalar(select(Campaign.id).where(Campaign.name == name))
    if campaign_id is None:
        raise click.BadParameter(f"no campaign named {name!r}", param_hint="--campaign")
    return campaign_id


def _expiry(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None
    return dt.datetime.combine(day, dt.time(), dt.UTC)


@main.group()
def db() -> None:
    """The database (DATABASE_URL; default sqlite:///dialer.db)."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the schema to the latest version."""
    from campaigns.db import database_url, upgrade

    upgrade()
    click.echo(f"database at {database_url()} is up to date")


@db.command("current")
def db_current() -> None:
    """Print the schema version."""
    from campaigns.db import current_revision

    click.echo(current_revision() or "empty (run: dialer db upgrade)")


@main.group()
def campaign() -> None:
    """Campaigns."""


@campaign.command("create")
@click.argument("name")
@click.option(
    "--kind",
    required=True,
    type=click.Choice(["telemarketing", "collections", "survey", "appointment"]),
)
@click.option(
    "--dial-mode",
    default="predictive",
    type=click.Choice(["preview", "progressive", "power", "predictive"]),
)
@click.option("--trunk", "trunk_name", default=None, help="Trunk name in the SIP configuration.")
@click.option("--caller-id", default=None, help="E.164 number the calls show.")
@click.option("--seller", default="", help="Seller named in the safe-harbor message.")
@click.option(
    "--callback-number", default=None, help="E.164 number for do-not-call requests (message)."
)
@click.option("--hours", default="09:00-20:00", show_default=True, help="Local to the lead.")
@click.option("--days", default="mon-sat", show_default=True, help="e.g. mon-fri or mon-sun.")
@click.option(
    "--amd-action",
    default="hangup",
    show_default=True,
    type=click.Choice(["hangup", "message"]),
    help="An answering machine: hang up, or leave --voicemail-message after its beep.",
)
@click.option(
    "--voicemail-message",
    default="",
    help="What --amd-action message leaves; {seller} and {callback} are filled in.",
)
@click.option(
    "--agentless",
    is_flag=True,
    help="Survey and appointment: the IVR asks the questions or the reminder, no agents.",
)
@click.option(
    "--max-lines",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Lines at once (0: four per agent logged in; an agentless campaign needs a number).",
)
def campaign_create(
    name: str,
    kind: str,
    dial_mode: str,
    trunk_name: str | None,
    caller_id: str | None,
    seller: str,
    callback_number: str | None,
    hours: str,
    days: str,
    amd_action: str,
    voicemail_message: str,
    agentless: bool,
    max_lines: int,
) -> None:
    """Create a campaign with compliant defaults."""
    from sqlalchemy.orm import Session

    from campaigns.manage import SetupError, create_campaign
    from campaigns.schedules import ScheduleError, parse_days, parse_hours
    from dialer.prompts import voicemail_text

    if agentless and kind not in ("survey", "appointment"):
        raise click.BadParameter(
            f"only survey and appointment campaigns run without agents, not {kind}",
            param_hint="--agentless",
        )
    if agentless and not max_lines:
        raise click.BadParameter(
            "an agentless campaign has no agents to pace its lines by: give --max-lines",
            param_hint="--max-lines",
        )
    if amd_action == "message":
        try:
            voicemail_text(voicemail_message, seller, callback_number or caller_id)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--voicemail-message") from None
    try:
        start, end = parse_hours(hours)
        with Session(_engine()) as session:
            new = create_campaign(
                session,
                name,
                kind,
                dial_mode=dial_mode,
                trunk_name=trunk_name,
                caller_id=caller_id,
                seller_name=seller,
                callback_number=callback_number,
                calling_start=start,
                calling_end=end,
                calling_days=parse_days(days),
                amd_action=amd_action,
                voicemail_message=voicemail_message.strip(),
                agentless=agentless,
                max_lines=max_lines,
            )
            click.echo(f"campaign {name!r} created (id {new.id}, {kind}, {dial_mode})")
    except (SetupError, ScheduleError) as error:
        raise click.ClickException(str(error)) from None


def _steer(name: str, action: str) -> None:
    from sqlalchemy.orm import Session

    from campaigns.manage import SetupError, campaign_named, steer

    with Session(_engine()) as session:
        try:
            status = steer(session, campaign_named(session, name), action)
        except SetupError as error:
            raise click.ClickException(str(error)) from None
    click.echo(f"campaign {name!r} is {status}; running nodes act on it within a second")


@campaign.command("start")
@click.argument("name")
def campaign_start(name: str) -> None:
    """Dial the campaign (running nodes start within a second)."""
    _steer(name, "start")


@campaign.command("pause")
@click.argument("name")
def campaign_pause(name: str) -> None:
    """No new calls; calls up and agents stay."""
    _steer(name, "pause")


@campaign.command("stop")
@click.argument("name")
def campaign_stop(name: str) -> None:
    """No new calls, and calls still ringing are cancelled."""
    _steer(name, "stop")


@campaign.command("list")
def campaign_list() -> None:
    """List campaigns."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from campaigns.models import Campaign, Lead

    with Session(_engine()) as session:
        leads = dict(
            session.execute(select(Lead.campaign_id, func.count()).group_by(Lead.campaign_id)).all()
        )
        for row in session.scalars(select(Campaign).order_by(Campaign.name)):
            click.echo(
                f"{row.name:30} {row.kind:14} {row.dial_mode:12} {row.status:9} "
                f"{leads.get(row.id, 0):>9} leads"
            )


def _campaign(session: Session, name: str) -> Campaign:
    from campaigns.manage import SetupError, campaign_named

    try:
        return campaign_named(session, name)
    except SetupError as error:
        raise click.ClickException(str(error)) from None


@campaign.command("survey")
@click.argument("name")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
def campaign_survey(name: str, file: Path | None) -> None:
    """A survey campaign's questions: FILE (JSON) replaces them; without FILE they are printed
    as JSON, to edit and give back. Each question: key, text, digits that answer it, branches
    (digit -> next question's key, or "end"), then; and intro, end_message, tries."""
    from sqlalchemy.orm import Session

    from campaigns import surveys

    with Session(_engine()) as session:
        campaign = _campaign(session, name)
        if file is None:
            current = surveys.load(session, campaign.id)
            if current is None:
                raise click.ClickException(f"campaign {name!r} has no survey yet")
            click.echo(json.dumps(current.to_dict(), indent=2))
            return
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            raise click.BadParameter(str(error), param_hint="FILE") from None
        except json.JSONDecodeError as error:
            raise click.BadParameter(
                f"{file}: not JSON (line {error.lineno}, column {error.colno}: {error.msg})",
                param_hint="FILE",
            ) from None
        try:
            survey = surveys.from_dict(data)
            surveys.save(session, campaign, survey)
        except surveys.SurveyError as error:
            raise click.ClickException(f"{file}: {error}") from None
        session.commit()
    click.echo(f"survey of {name!r} saved: {len(survey.questions)} questions; new calls ask them")


@campaign.command("slots")
@click.argument("name")
@click.option("--add", "first", default=None, help="First slot, e.g. 2026-12-07T09:00.")
@click.option("--count", default=1, show_default=True, help="Slots to add.")
@click.option("--every", "every_minutes", default=30, show_default=True, help="Minutes apart.")
@click.option("--capacity", default=1, show_default=True, help="Appointments a slot takes.")
@click.option("--tz", "zone", default="UTC", show_default=True, help="Zone of --add and the list.")
def campaign_slots(
    name: str, first: str | None, count: int, every_minutes: int, capacity: int, zone: str
) -> None:
    """An appointment campaign's calendar: --add puts COUNT slots from FIRST, EVERY minutes
    apart (times already there are kept); the slots to come are listed with their bookings."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from campaigns import appointments
    from campaigns.models import AppointmentSlot, utcnow

    try:
        where = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"{zone!r} is not a time zone", param_hint="--tz") from None
    with Session(_engine()) as session:
        campaign = _campaign(session, name)
        if first is not None:
            start = _instant(first, "--add", where)
            try:
                made = appointments.add_slots(
                    session,
                    campaign,
                    start,
                    count,
                    every_minutes=every_minutes,
                    capacity=capacity,
                )
            except appointments.AppointmentError as error:
                raise click.ClickException(str(error)) from None
            session.commit()
            click.echo(f"{len(made)} slots added to {name!r} ({count - len(made)} already there)")
        slots = session.scalars(
            select(AppointmentSlot)
            .where(
                AppointmentSlot.campaign_id == campaign.id,
                AppointmentSlot.starts_at >= utcnow(),
            )
            .order_by(AppointmentSlot.starts_at)
        ).all()
        for slot in slots:
            click.echo(
                f"{slot.starts_at.astimezone(where):%a %Y-%m-%d %H:%M %Z}  {slot.minutes:>3} min"
                f"  booked {slot.booked}/{slot.capacity}"
            )
        if not slots:
            click.echo("no slots to come")


# -- Why is nothing dialing? (issue 13 item 4) and campaign reports (issue 12 item 7) --------


def _instant(value: str, hint: str = "--at", zone: dt.tzinfo = dt.UTC) -> dt.datetime:
    """An ISO 8601 instant; without an offset, in `zone`."""
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 instant, e.g. 2026-06-10T08:00-04:00", param_hint=hint
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


@campaign.command("why")
@click.argument("name")
@click.option("--at", "at", default=None, help="Explain this instant (ISO 8601; UTC if no offset).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def campaign_why(name: str, at: str | None, as_json: bool) -> None:
    """Why is nothing dialing? The campaign's leads by status and by what keeps each from being
    dialed now (the compliance gate's reason, or the hopper's), and when the next one will be."""
    import time

    from campaigns.models import utcnow
    from campaigns.why import CampaignNotFound, why

    moment = _instant(at) if at else utcnow()
    engine = _engine()
    started = time.perf_counter()
    try:
        explanation = why(engine, name, moment)
    except CampaignNotFound as error:
        raise click.ClickException(str(error)) from None
    finally:
        engine.dispose()
    explanation = dataclasses.replace(explanation, elapsed_s=time.perf_counter() - started)
    click.echo(json.dumps(explanation.as_json()) if as_json else explanation.report())


@main.group()
def report() -> None:
    """Reports."""


@report.command("campaign")
@click.argument("name")
@click.option("--at", "at", default=None, help="As of this instant (ISO 8601; UTC if no offset).")
@click.option("--tz", "zone", default="UTC", show_default=True, help="Where 'today' starts.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def report_campaign(name: str, at: str | None, zone: str, as_json: bool) -> None:
    """Attempts by outcome, live answers, abandons and the abandon rate (today and the rolling
    30 days), dispositions by code, promises to pay (collections), leads by status."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from campaigns.models import utcnow
    from campaigns.reports import campaign_report
    from campaigns.why import CampaignNotFound

    try:
        where = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(
            f"{zone!r} is not a time zone, e.g. America/New_York", param_hint="--tz"
        ) from None
    moment = (_instant(at) if at else utcnow()).astimezone(where)
    engine = _engine()
    try:
        result = campaign_report(engine, name, moment, where)
    except CampaignNotFound as error:
        raise click.ClickException(str(error)) from None
    finally:
        engine.dispose()
    click.echo(json.dumps(result.as_json()) if as_json else result.text())


@main.group("callerid")
def callerid_group() -> None:
    """A campaign's caller-ID pool: local presence, daily caps, answer rates."""


def _pool_change(campaign_name: str, change: Callable[[Session, Campaign], str]) -> None:
    from sqlalchemy.orm import Session

    from campaigns.callerids import CallerIdError
    from campaigns.manage import SetupError, campaign_named

    with Session(_engine()) as session:
        try:
            message = change(session, campaign_named(session, campaign_name))
        except (SetupError, CallerIdError) as error:
            raise click.ClickException(str(error)) from None
        session.commit()  # nodes read the pool with each call they place
    click.echo(message)


@callerid_group.command("add")
@click.argument("campaign_name", metavar="CAMPAIGN")
@click.argument("number")
@click.option("--daily-cap", type=int, default=None, help="Calls a day at most (default: no cap).")
def callerid_add(campaign_name: str, number: str, daily_cap: int | None) -> None:
    """Add a number to the campaign's pool (or change its cap)."""
    from campaigns import callerids

    def change(session: Session, campaign: Campaign) -> str:
        entry = callerids.add(session, campaign, number, daily_cap)
        cap = f"at most {entry.daily_cap} calls a day" if entry.daily_cap else "no daily cap"
        return f"{entry.phone_e164} is in the caller-ID pool of {campaign.name!r} ({cap})"

    _pool_change(campaign_name, change)


@callerid_group.command("remove")
@click.argument("campaign_name", metavar="CAMPAIGN")
@click.argument("number")
def callerid_remove(campaign_name: str, number: str) -> None:
    """Take a number out of the campaign's pool (its calls stay in the report)."""
    from campaigns import callerids

    def change(session: Session, campaign: Campaign) -> str:
        entry = callerids.remove(session, campaign, number)
        return f"{entry.phone_e164} removed from the caller-ID pool of {campaign.name!r}"

    _pool_change(campaign_name, change)


@callerid_group.command("list")
@click.argument("campaign_name", metavar="CAMPAIGN")
def callerid_list(campaign_name: str) -> None:
    """The campaign's pool: number, area code, state, daily cap."""
    from sqlalchemy.orm import Session

    from campaigns import callerids
    from campaigns.manage import SetupError, campaign_named

    with Session(_engine()) as session:
        try:
            campaign = campaign_named(session, campaign_name)
        except SetupError as error:
            raise click.ClickException(str(error)) from None
        entries = callerids.pool(session, campaign.id)
    for entry in entries:
        cap = entry.daily_cap if entry.daily_cap is not None else "no cap"
        click.echo(
            f"{entry.phone_e164:16} {callerids.area_code(entry.phone_e164) or '—':>4} "
            f"{callerids.state_of(entry.phone_e164) or '—':>3}  {cap}"
        )
    if not entries:
        click.echo(f"the caller-ID pool of {campaign_name!r} is empty: calls show its caller ID")


@callerid_group.command("report")
@click.argument("campaign_name", metavar="CAMPAIGN")
@click.option("--days", default=7, show_default=True, help="Days counted (1-90).")
@click.option("--at", "at", default=None, help="As of this instant (ISO 8601; UTC if no offset).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def callerid_report(campaign_name: str, days: int, at: str | None, as_json: bool) -> None:
    """Each number's calls today and its answer rate against the campaign's: burnt numbers
    (labelled as spam, or blocked) answer far less."""
    from sqlalchemy.orm import Session

    from campaigns import callerids
    from campaigns.manage import SetupError, campaign_named
    from campaigns.models import utcnow

    moment = _instant(at) if at else utcnow()
    with Session(_engine()) as session:
        try:
            found = callerids.report(session, campaign_named(session, campaign_name), moment, days)
        except SetupError as error:
            raise click.ClickException(str(error)) from None
        except callerids.CallerIdError as error:
            raise click.BadParameter(str(error), param_hint="--days") from None
    click.echo(json.dumps(found.as_json()) if as_json else found.text())


@bench.command("why")
@click.option("--leads", default=1_000_000, show_default=True)
@click.option(
    "--kind", default="telemarketing", type=click.Choice(["telemarketing", "collections"])
)
@click.option("--runs", default=5, show_default=True, help="Explanations timed per instant.")
@click.option("--postgres", "postgres_url", default=None, envvar="TEST_POSTGRES_URL")
@click.option("--skip-sqlite", is_flag=True)
def bench_why(
    leads: int, kind: str, runs: int, postgres_url: str | None, skip_sqlite: bool
) -> None:
    """`dialer campaign why` on a generated campaign, at midday and at night: time and counts."""
    import os

    from dialer.bench.why import run_postgres, run_sqlite

    backends: dict[str, Callable[[], list[dict[str, object]]]] = (
        {} if skip_sqlite else {"sqlite": lambda: run_sqlite(leads, kind, runs)}
    )
    if postgres_url:
        backends["postgresql"] = lambda: run_postgres(postgres_url, leads, kind, runs)
    for backend, run in backends.items():
        for figures in run():
            explanation = figures.pop("explanation")
            click.echo(f"{backend}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))
            click.echo(explanation.report())  # type: ignore[attr-defined]
    click.echo(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


@main.command()
@click.option("--campaign", "campaign_name", required=True)
@click.option("--agents", type=click.IntRange(1, 2000), help="Default: the active agents.")
@click.option("--days", default=30, show_default=True, help="History the statistics come from.")
@click.option("--hours", default=2.0, show_default=True, help="Simulated hours per seed.")
@click.option("--json", "as_json", is_flag=True)
def forecast(
    campaign_name: str, agents: int | None, days: int, hours: float, as_json: bool
) -> None:
    """Contacts per hour, utilisation and abandon rate for each dial mode, from the campaign's
    observed statistics run through the simulator."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from campaigns.models import Campaign, User
    from dialer.forecast import MIN_ATTEMPTS, forecast, observed_stats
    from sip_config import calls_per_second

    with Session(_engine()) as session:
        campaign_id = _campaign_id(session, campaign_name)
        assert campaign_id is not None
        if agents is None:
            active = select(func.count()).where(User.role == "agent", User.active.is_(True))
            agents = max(1, session.scalar(active) or 0)
        stats = observed_stats(session, campaign_id, agents, days)
        trunk_name = session.get_one(Campaign, campaign_id).trunk_name
    stats = dataclasses.replace(stats, calls_per_second=calls_per_second(trunk_name))
    rows = forecast(stats, hours)
    if as_json:
        click.echo(json.dumps({"stats": dataclasses.asdict(stats), "forecast": rows}))
        return
    if stats.attempts < MIN_ATTEMPTS:
        click.echo(
            f"only {stats.attempts} attempts in the last {days} days: "
            "forecasting with a typical campaign's figures"
        )
    click.echo(
        f"{stats.agents} agents, live {stats.live_rate:.1%}, machine {stats.machine_rate:.1%}, "
        f"talk {stats.talk_mean:.0f} s, wrap-up {stats.wrap_mean:.0f} s"
    )
    click.echo(f"{'mode':12} {'contacts/h':>10} {'util':>6} {'abandon':>8}")
    for row in rows:
        flag = "" if row["compliant"] else "  over the 3% cap"
        click.echo(
            f"{row['mode']:12} {row['contacts_per_hour']:10.1f} {row['utilisation']:6.3f} "
            f"{row['abandon_rate']:8.2%}{flag}"
        )


@main.group()
def agent() -> None:
    """Agents (accounts with a SIP phone that the dialer calls)."""


@agent.command("add")
@click.argument("name")
@click.option("--phone", required=True, help="The agent's SIP phone, e.g. sip:1001@pbx.local.")
@click.option("--campaign", "campaign_name", default=None, help="Put the agent in its group.")
def agent_add(name: str, phone: str, campaign_name: str | None) -> None:
    """Add an agent (or change their phone), optionally to a campaign's agents."""
    from sqlalchemy.orm import Session

    from campaigns.manage import SetupError, add_agent, campaign_named

    with Session(_engine()) as session:
        try:
            campaign = campaign_named(session, campaign_name) if campaign_name else None
            user = add_agent(session, name, phone, campaign)
        except SetupError as error:
            raise click.ClickException(str(error)) from None
        where = f" in campaign {campaign_name!r}" if campaign_name else ""
        click.echo(f"agent {user.username} (id {user.id}) with phone {phone}{where}")


@main.group()
def leads() -> None:
    """Lead lists."""


@leads.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--campaign", "campaign_name", required=True)
@click.option("--list", "list_name", default=None, help="List name (default: the file's name).")
@click.option("--region", default=None, help="Default country for numbers without +code.")
@click.option("--map", "mappings", multiple=True, metavar="FIELD=COLUMN")
@click.option("--errors-csv", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
def leads_import(
    file: Path,
    campaign_name: str,
    list_name: str | None,
    region: str | None,
    mappings: tuple[str, ...],
    errors_csv: Path | None,
    as_json: bool,
) -> None:
    """Import leads from a CSV file."""
    from campaigns.imports import ImportFileError, import_leads, write_error_report

    mapping = {}
    for item in mappings:
        field, sep, column = item.partition("=")
        if not sep or not field or not column:
            raise click.BadParameter(f"{item!r} is not FIELD=COLUMN", param_hint="--map")
        mapping[field.strip()] = column.strip()
    engine = _engine()
    try:
        summary = import_leads(
            engine, file, campaign_name, list_name=list_name, region=region, mapping=mapping
        )
    except ImportFileError as error:
        if as_json:
            click.echo(json.dumps({"error": str(error)}))
        raise click.ClickException(f"import failed, nothing was stored: {error}") from None
    if errors_csv is not None:
        with errors_csv.open("w", newline="", encoding="utf-8") as out:
            write_error_report(engine, summary.import_id, out)
    if as_json:
        click.echo(summary.as_json())
        return
    click.echo(
        f"{summary.rows} rows: {summary.imported} imported, {summary.duplicates} duplicates, "
        f"{summary.invalid} invalid, {summary.dnc} on do-not-call lists "
        f"(import {summary.import_id})"
    )
    for error in summary.errors[:20]:
        click.echo(f"  row {error.row}, {error.field} {error.value!r}: {error.reason}")
    if summary.invalid > 20:
        click.echo(f"  ... {summary.invalid - 20} more: --errors-csv FILE writes them all")


@main.group("dnc")
def dnc_group() -> None:
    """Do-not-call lists (global, or per campaign with --campaign)."""


@dnc_group.command("add")
@click.argument("number")
@click.option("--campaign", "campaign_name", default=None)
@click.option("--expires", default=None, help="YYYY-MM-DD (default: never).")
@click.option("--region", default="US")
@click.option("--reason", default="")
def dnc_add(
    number: str, campaign_name: str | None, expires: str | None, region: str, reason: str
) -> None:
    """Add a number."""
    from sqlalchemy.orm import Session

    from campaigns import dnc
    from campaigns.db import begin_write

    try:
        e164 = dnc.normalise(number, region)
    except dnc.DncError as error:
        raise click.BadParameter(str(error), param_hint="NUMBER") from None
    with Session(_engine()) as session:
        campaign_id = _campaign_id(session, campaign_name)
        begin_write(session)  # a running node writes meanwhile
        dnc.add(session, e164, campaign_id=campaign_id, expires_at=_expiry(expires), reason=reason)
        session.commit()
    click.echo(f"{e164} added to the {campaign_name or 'global'} do-not-call list")


@dnc_group.command("check")
@click.argument("number")
@click.option("--campaign", "campaign_name", default=None)
@click.option("--region", default="US")
def dnc_check(number: str, campaign_name: str | None, region: str) -> None:
    """Exit 0 if the number may be called, 1 if a list in force blocks it."""
    from sqlalchemy.orm import Session

    from campaigns import dnc
    from campaigns.models import utcnow

    try:
        e164 = dnc.normalise(number, region)
    except dnc.DncError as error:
        raise click.BadParameter(str(error), param_hint="NUMBER") from None
    with Session(_engine()) as session:
        entry = dnc.blocking_entry(session, e164, _campaign_id(session, campaign_name), utcnow())
    if entry is None:
        click.echo(f"{e164} is not on any do-not-call list in force")
        return
    until = entry.expires_at.date().isoformat() if entry.expires_at else "no expiry"
    click.echo(f"{e164} is blocked: {entry.scope} list, since {entry.created_at:%Y-%m-%d}, {until}")
    sys.exit(1)


@dnc_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--campaign", "campaign_name", default=None)
@click.option("--expires", default=None, help="YYYY-MM-DD (default: never).")
@click.option("--region", default="US")
def dnc_import(file: Path, campaign_name: str | None, expires: str | None, region: str) -> None:
    """Import numbers (one a line, or a CSV with a phone column)."""
    from sqlalchemy.orm import Session

    from campaigns import dnc

    engine = _engine()
    with Session(engine) as session:
        campaign_id = _campaign_id(session, campaign_name)
    summary = dnc.import_file(
        engine, file, campaign_id=campaign_id, expires_at=_expiry(expires), region=region
    )
    click.echo(
        f"{summary.lines} lines: {summary.added} added, {summary.already} renewed, "
        f"{summary.invalid} invalid"
    )
    for error in summary.errors[:20]:
        click.echo(f"  line {error.row}: {error.value!r}: {error.reason}")


@bench.command("import")
@click.option("--rows", default=1_000_000, show_default=True)
@click.option("--db", "url", default=None, help="Database URL (default: a temporary SQLite file).")
@click.option("--json", "as_json", is_flag=True)
def bench_import(rows: int, url: str | None, as_json: bool) -> None:
    """Import a generated CSV end to end; print rows/s and peak memory."""
    from dialer.bench.imports import run

    figures = run(rows, url)
    if as_json:
        click.echo(json.dumps(figures))
        return
    for key, value in figures.items():
        click.echo(f"{key:22} {value}")


@bench.command("console")
@click.option("--leads", default=1_000_000, show_default=True, type=click.IntRange(100))
@click.option("--attempts", default=5_000_000, show_default=True, type=click.IntRange(100))
@click.option(
    "--csv-rows",
    default=None,
    type=click.IntRange(10),
    help="Rows of the lead file uploaded through the browser (default: as many as --leads).",
)
@click.option("--managers", default=20, show_default=True, type=click.IntRange(1, 40))
@click.option("--agents", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option(
    "--seconds", default=60.0, show_default=True, help="Steady load measured before the upload."
)
@click.option(
    "--think", default=1.0, show_default=True, help="Mean seconds a manager reads each page."
)
@click.option(
    "--database-url",
    default=None,
    help="PostgreSQL URL (a new schema is made and dropped); default a temporary SQLite file.",
)
@click.option("--no-upload", is_flag=True, help="Skip the browser upload of the lead file.")
@click.option("--no-browser", is_flag=True, help="Skip Chromium: no dashboard latency, no upload.")
def bench_console(
    leads: int,
    attempts: int,
    csv_rows: int | None,
    managers: int,
    agents: int,
    seconds: float,
    think: float,
    database_url: str | None,
    no_upload: bool,
    no_browser: bool,
) -> None:
    """The console under 20 managers and 50 agents on a database of 1,000,000 leads and
    5,000,000 attempts: server-side p50/p95 per page, reports' times, the dashboard's latency in
    Chromium, and a lead file uploaded through the browser while the managers go on."""
    from dialer.bench.console import Settings, run

    _postgres_only(database_url)
    run(
        Settings(
            leads=leads,
            attempts=attempts,
            csv_rows=csv_rows or leads,
            managers=managers,
            agents=agents,
            seconds=seconds,
            think_s=think,
            database_url=database_url,
            upload=not no_upload,
            browser=not no_browser,
        ),
        say=click.echo,
    )


@main.command()
@click.option(
    "--demo",
    is_flag=True,
    help="Add a simulated carrier, agents' phones and agents, and a demo campaign to watch.",
)
@click.option(
    "--config", "config_path", default=None, help="SIP trunks TOML (default: $DIALER_SIP_CONFIG)."
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Console address.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--once", is_flag=True, help="Migrate, run every scheduler job once and exit.")
def serve(demo: bool, config_path: str | None, host: str, port: int, once: bool) -> None:
    """Run the dialer: the web console, the scheduler and a dialer node on one database."""
    import contextlib
    import os
    import signal
    import threading

    from campaigns.db import database_url, upgrade
    from dialer.node.jobs import build_scheduler
    from dialer.node.launch import build_node, stop_on_signals
    from web.config import ConsoleConfigError
    from web.server import ConsoleServer, prepare

    _log_to_stderr()
    upgrade()
    engine = _engine()
    scheduler = build_scheduler(engine)
    click.echo(f"database: {database_url()}")
    if once:
        for job in scheduler.get_jobs():
            job.func()
            click.echo(f"ran job {job.id}")
        return
    try:
        app, admin = prepare(host)
    except (ConsoleConfigError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    try:
        console = ConsoleServer(app, host, port).start()
    except OSError as error:
        raise click.ClickException(f"the console cannot listen on {host}:{port}: {error}") from None
    click.echo(f"console: {console.url}/")
    if admin is not None:
        name, password = admin
        click.echo(f"first start: sign in as {name!r} with the one-time password {password}")
        click.echo("(shown only now; you choose your own at the first sign-in)")
    world = None
    try:
        if demo:
            from dialer.demo.world import start_demo

            world = start_demo(engine)
            click.echo(world.summary)
            click.echo(
                f"simulated carrier on {world.carrier.host}:{world.carrier.port}, agents' "
                f"phones on port {world.phones.port}"
            )
            config = world.config
        elif config_path or os.environ.get("DIALER_SIP_CONFIG"):
            config = _sip_config(config_path)
        else:
            config = None
            click.echo("no SIP trunks configured (DIALER_SIP_CONFIG): no dialer node runs")
        scheduler.start()
        if config is None:
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            with contextlib.suppress(KeyboardInterrupt):
                stop.wait()
            return
        node = build_node(engine, config, priority=_node_priority())
        stop_on_signals(node)
        click.echo("dialing: watch with `dialer status --watch`; Ctrl-C stops (calls end first)")
        node.run()
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)
        console.stop()
        if world is not None:
            world.stop()


@main.command("web")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--threads",
    default=64,
    show_default=True,
    help="Requests served at once; each open agent desktop or live dashboard holds one.",
)
def web_command(host: str, port: int, threads: int) -> None:
    """Run the web console alone (several can share one PostgreSQL behind a load balancer)."""
    import waitress

    from campaigns.db import database_url, upgrade
    from web import streams
    from web.config import ConsoleConfigError
    from web.server import prepare

    _log_to_stderr()
    upgrade()
    try:
        app, admin = prepare(host)
    except (ConsoleConfigError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    if admin is not None:
        name, password = admin
        click.echo(f"first start: administrator {name!r} created with the one-time password")
        click.echo(f"    {password}")
        click.echo("it is shown only now; it must be changed at the first sign-in")
    click.echo(f"database: {database_url()}")
    click.echo(f"console: http://{host}:{port}/ (press Ctrl-C to stop)")
    streams.serve_with(app, threads)
    waitress.serve(app, host=host, port=port, threads=threads, ident="dialer")


@main.command("node")
@click.option("--name", default=None, help="Node name (default: $DIALER_NODE_NAME or the host).")
@click.option("--workers", type=int, default=None, help="Line workers (4 calls each).")
@click.option(
    "--config", "config_path", default=None, help="SIP trunks TOML (default: $DIALER_SIP_CONFIG)."
)
@click.option("--grace", default=30.0, show_default=True, help="Seconds calls get on SIGTERM.")
@click.option("--until-idle", is_flag=True, help="Exit when nothing is dialable and no call is up.")
@click.option("--bind", "bind_address", default="127.0.0.1", show_default=True)
def node_command(
    name: str | None,
    workers: int | None,
    config_path: str | None,
    grace: float,
    until_idle: bool,
    bind_address: str,
) -> None:
    """Run a dialer node: it dials the active campaigns and connects their agents."""
    from dialer.node.launch import build_node, stop_on_signals

    _log_to_stderr()
    node = build_node(
        _engine(),
        _sip_config(config_path),
        name=name,
        workers=workers,
        grace_s=grace,
        bind_address=bind_address,
        priority=_node_priority(),
    )
    stop_on_signals(node)
    node.run(until_idle=until_idle)


def _node_priority() -> NodePriority:
    from dialer.node.priority import node_priority

    try:
        return node_priority()
    except ValueError as error:
        raise click.ClickException(str(error)) from None


def _postgres_only(database_url: str | None) -> None:
    """A bench's `--database-url` names a PostgreSQL database: SQLite is its default."""
    if database_url and not database_url.startswith("postgresql"):
        raise click.BadParameter(
            f"{database_url!r}: give a postgresql:// URL (SQLite is the default)",
            param_hint="--database-url",
        )


def _log_to_stderr() -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # The scheduler tells of every job it adds and runs; its warnings and errors are enough.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


@main.command("status")
@click.option("--watch", is_flag=True, help="Refresh every second until Ctrl-C.")
@click.option("--json", "as_json", is_flag=True)
def status_command(watch: bool, as_json: bool) -> None:
    """Campaigns and agents right now: state, lines, calls, abandon rates, agents by state."""
    import time

    from campaigns.db import session_factory

    sessions = session_factory(_engine())
    while True:
        with sessions() as session:
            text = _status_json(session) if as_json else _status_text(session)
        if watch and not as_json:
            click.clear()
        click.echo(text)
        if not watch:
            return
        try:
            time.sleep(1.0)
        except KeyboardInterrupt:
            return


def _status_json(session: Session) -> str:
    from campaigns.models import utcnow
    from campaigns.monitor import agent_statuses, campaign_statuses

    now = utcnow()
    return json.dumps(
        {
            "at": now.isoformat(),
            "campaigns": [c.as_json() for c in campaign_statuses(session, now)],
            "agents": [dataclasses.asdict(a) for a in agent_statuses(session, now)],
        }
    )


def _status_text(session: Session) -> str:
    from campaigns.models import utcnow
    from campaigns.monitor import agent_statuses, campaign_statuses

    now = utcnow()
    lines = [f"{now.astimezone():%Y-%m-%d %H:%M:%S %Z}"]
    campaigns = campaign_statuses(session, now)
    if not campaigns:
        lines.append("no campaign is active (dialer campaign start NAME)")
    header = (
        f"{'campaign':24} {'status':8} {'state':11} {'mode':11} {'level':>5} {'lines':>5} "
        f"{'ring':>4} {'up':>4} {'wait':>4} {'live today':>10} {'aband.':>6} "
        f"{'live 30d':>8} {'aband.':>6} {'dialable':>8}  agents"
    )
    if campaigns:
        lines += [header, "-" * len(header)]
    for c in campaigns:
        near = c.last_30_days.abandon_rate >= 0.8 * c.abandon_target and c.last_30_days.live
        agents = " ".join(f"{state} {count}" for state, count in sorted(c.agents.items()))
        lines.append(
            f"{c.name[:24]:24} {c.status:8} {c.state:11} {c.dial_mode:11} {c.dial_level:5.2f} "
            f"{c.lines:5d} {c.ringing:4d} {c.up:4d} {c.waiting:4d} {c.today.live:10d} "
            f"{c.today.abandon_rate:6.1%} {c.last_30_days.live:8d} "
            f"{c.last_30_days.abandon_rate:6.1%}{'!' if near else ' '}{c.dialable:8d}  "
            f"{agents or 'none logged in'}"
        )
        if c.detail:
            lines.append(f"{'':24} {c.detail}")
    agents = agent_statuses(session, now)
    if agents:
        lines += ["", f"{'agent':16} {'campaign':24} {'state':14} {'for':>8} {'calls':>5}  node"]
    for a in agents:
        state = f"{a.state} {a.pause_code}" if a.pause_code and a.state == "paused" else a.state
        minutes, seconds = divmod(int(a.seconds_in_state), 60)
        lines.append(
            f"{a.username[:16]:16} {(a.campaign or '-')[:24]:24} {state[:14]:14} "
            f"{minutes:5d}:{seconds:02d} {a.calls_taken:5d}  {a.node or '-'}"
        )
    return "\n".join(lines)


@main.group()
def simulate() -> None:
    """Simulated parties for demos and rehearsals: agents, carrier, phones."""


@simulate.command("agents")
@click.option("--campaign", "campaign_name", required=True)
@click.option("--talk", default="20-90", show_default=True, help="Seconds of talk per call.")
@click.option("--wrap", default="5-15", show_default=True, help="Seconds of wrap-up per call.")
@click.option("--seed", type=int, default=None)
def simulate_agents(campaign_name: str, talk: str, wrap: str, seed: int | None) -> None:
    """Log in every agent of the campaign and work their calls until stopped."""
    import threading

    from sqlalchemy.orm import Session

    from campaigns.manage import SetupError, campaign_named
    from dialer.demo.agents import Range, SimulatedAgents

    _log_to_stderr()
    engine = _engine()
    with Session(engine) as session:
        try:
            campaign_id = campaign_named(session, campaign_name).id
        except SetupError as error:
            raise click.ClickException(str(error)) from None
    try:
        bots = SimulatedAgents(
            engine, campaign_id, talk=Range.parse(talk), wrap=Range.parse(wrap), seed=seed
        )
    except ValueError as error:
        raise click.BadParameter(str(error)) from None
    if not bots.agent_ids():
        raise click.ClickException(
            f"campaign {campaign_name!r} has no agents: dialer agent add NAME --phone URI "
            f"--campaign {campaign_name!r}"
        )
    stop = threading.Event()
    click.echo(f"working the calls of {len(bots.agent_ids())} agents; Ctrl-C to stop")
    try:
        bots.run(stop)
    except KeyboardInterrupt:
        stop.set()
    click.echo(f"{bots.handled} calls dispositioned")


@bench.command("hopper")
@click.option("--leads", default=10_000_000, show_default=True)
@click.option("--claims", default=300, show_default=True)
@click.option("--batch", default=100, show_default=True)
@click.option(
    "--postgres",
    "postgres_url",
    default=None,
    envvar="TEST_POSTGRES_URL",
    help="PostgreSQL URL (a temporary schema is created and dropped); default $TEST_POSTGRES_URL.",
)
@click.option(
    "--keep-schema",
    default=None,
    help="PostgreSQL schema filled on first use and kept: later runs skip the fill and claim "
    "the next leads.",
)
@click.option("--skip-sqlite", is_flag=True, help="Measure PostgreSQL only.")
@click.option("--json", "as_json", is_flag=True)
def bench_hopper(
    leads: int,
    claims: int,
    batch: int,
    postgres_url: str | None,
    keep_schema: str | None,
    skip_sqlite: bool,
    as_json: bool,
) -> None:
    """Claim latency (median, p99) for batches of leads in SQLite and PostgreSQL."""
    from dialer.bench.hopper import run_postgres, run_sqlite

    runs: dict[str, Callable[[], dict[str, float]]] = (
        {} if skip_sqlite else {"sqlite": lambda: run_sqlite(leads, claims, batch)}
    )
    if postgres_url:
        runs["postgresql"] = lambda: run_postgres(postgres_url, leads, claims, batch, keep_schema)
    for backend, run in runs.items():
        figures = run()
        if as_json:
            click.echo(json.dumps({"backend": backend, **figures}))
        else:
            click.echo(f"{backend}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))


@bench.command("node")
@click.option("--agents", default=100, show_default=True, help="Simulated agents.")
@click.option("--minutes", default=10.0, show_default=True, help="Minutes the campaign dials.")
@click.option("--mix", default=None, help="Carrier mix (default: the demo's).")
@click.option("--talk", default="20-90", show_default=True, help="Seconds of talk per call.")
@click.option("--wrap", default="5-15", show_default=True, help="Seconds of wrap-up per call.")
@click.option("--workers", type=int, default=None, help="Line workers (default: 2 slots/line).")
@click.option(
    "--database-url",
    default=None,
    help="PostgreSQL URL (a new schema is made and dropped); default a temporary SQLite file.",
)
@click.option("--json", "as_json", is_flag=True)
def bench_node(
    agents: int,
    minutes: float,
    mix: str | None,
    talk: str,
    wrap: str,
    workers: int | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """A predictive campaign end to end: SIPp carrier and phones, simulated agents, one node."""
    from dialer.bench.node import run
    from dialer.demo.mix import DEFAULT_MIX

    _postgres_only(database_url)
    _log_to_stderr()
    import logging

    logging.getLogger("dialer.node.node").setLevel(logging.WARNING)
    figures = run(
        agents,
        minutes,
        mix=mix or DEFAULT_MIX,
        talk=talk,
        wrap=wrap,
        workers=workers,
        database_url=database_url,
    )
    if as_json:
        click.echo(json.dumps(figures))
        return
    for key, value in figures.items():
        click.echo(f"{key:28} {value}")


@bench.command("pacing")
@click.option(
    "--workloads", "path", default=None, help="Workloads JSON (default: the bundled W1-W6)."
)
@click.option("--seeds", default="0-9", show_default=True, help="A range A-B or a list 1,2,3.")
@click.option("--hours", default=8.0, show_default=True)
@click.option("--modes", default="progressive,power,predictive,clairvoyant", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def bench_pacing(path: str | None, seeds: str, hours: float, modes: str, as_json: bool) -> None:
    """Simulate every pacing mode over the workloads; print utilisation and abandon rates."""
    from dialer.bench.pacing import MODES, run, table

    if "-" in seeds:
        low, _, high = seeds.partition("-")
        seed_list = list(range(int(low), int(high) + 1))
    else:
        seed_list = [int(s) for s in seeds.split(",")]
    mode_list = [m.strip() for m in modes.split(",") if m.strip()]
    for mode in mode_list:
        if mode not in MODES:
            raise click.BadParameter(
                f"{mode!r} is not one of {', '.join(MODES)}", param_hint="--modes"
            )
    rows = run(path, seed_list, hours, mode_list)
    click.echo(json.dumps(rows) if as_json else table(rows))


@bench.command("amd")
@click.option("--count", default=240, show_default=True, help="Greetings per seed (half human).")
@click.option(
    "--seeds",
    default="1,2",
    show_default=True,
    help="Corpus seeds; the defaults were tuned on seed 1 only, seed 2 is held out.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where generated WAVs are kept (default: ~/.cache/dialer/amd-corpus).",
)
@click.option(
    "--sip",
    "through_sip",
    is_flag=True,
    help="Also play every greeting through a real SIP call (SIPp to the line pool).",
)
@click.option("--concurrency", default=3, show_default=True, help="SIP calls at once.")
@click.option("--json", "as_json", is_flag=True)
def bench_amd(
    count: int,
    seeds: str,
    cache_dir: Path | None,
    through_sip: bool,
    concurrency: int,
    as_json: bool,
) -> None:
    """Answering-machine detection over a generated corpus: confusion matrix, decision times."""
    from dialer.bench.amd import run, run_sip, table

    for seed in (int(s) for s in seeds.split(",") if s.strip()):
        results = [run(count, seed, cache_dir)]
        if through_sip:
            results.append(run_sip(count, seed, cache_dir, concurrency))
        for result in results:
            click.echo(json.dumps(result) if as_json else table(result) + "\n")


# -- SIP trunks and single calls (issue 4): kept together at the end of the file -------------


if TYPE_CHECKING:
    from sip_config import SipConfig


def _sip_config(path: str | None) -> SipConfig:
    from sip_config import SipConfigError, load

    try:
        return load(path)
    except SipConfigError as error:
        raise click.ClickException(str(error)) from None


@main.group()
def trunk() -> None:
    """SIP trunks (in the TOML file named by $DIALER_SIP_CONFIG; see sip.example.toml)."""


@trunk.command("check")
@click.argument("name")
@click.option(
    "--config", "config_path", default=None, help="TOML file (default: $DIALER_SIP_CONFIG)."
)
@click.option("--timeout", default=4.0, show_default=True, help="Seconds to wait for answers.")
@click.option("--bind", "bind_address", default="127.0.0.1", show_default=True)
def trunk_check(name: str, config_path: str | None, timeout: float, bind_address: str) -> None:
    """Ping a trunk with SIP OPTIONS, and register when it is configured to; exit 1 on failure."""
    from sip_config import SipConfigError
    from sip_config.check import ping

    config = _sip_config(config_path)
    try:
        spec = config.trunk(name)
    except SipConfigError as error:
        raise click.ClickException(str(error)) from None
    where = f"{spec.host}:{spec.port}/{spec.transport}"
    result = ping(spec, timeout=timeout, bind_address=bind_address)
    healthy = result.reachable
    if result.reachable:
        click.echo(
            f"OPTIONS {where}: {result.sip_code} {result.reason} in {result.round_trip_ms} ms"
        )
    else:
        click.echo(f"OPTIONS {where}: unreachable: {result.reason}")
    if spec.register:
        from dialer.lines.register import check_registration

        try:
            registration = check_registration(spec, bind_address, timeout=max(timeout, 5.0))
        except SipConfigError as error:
            raise click.ClickException(str(error)) from None
        if registration.registered:
            click.echo(
                f"REGISTER {spec.username}@{spec.host}: {registration.sip_code} "
                f"{registration.reason}, expires in {registration.expires} s"
            )
        else:
            code = registration.sip_code or "no response"
            click.echo(
                f"REGISTER {spec.username}@{spec.host}: failed: {code} {registration.reason}"
            )
            healthy = False
    if not healthy:
        sys.exit(1)


@main.command("call")
@click.argument("number")
@click.option("--trunk", "trunk_name", required=True, help="Trunk name in the SIP configuration.")
@click.option(
    "--config", "config_path", default=None, help="TOML file (default: $DIALER_SIP_CONFIG)."
)
@click.option(
    "--play",
    "prompt",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="WAV prompt to play on answer; the call ends when it has played.",
)
@click.option(
    "--hold",
    default=5.0,
    show_default=True,
    help="Seconds to stay on an answered call without --play.",
)
@click.option(
    "--ring-timeout",
    type=float,
    default=None,
    help="Seconds of ringing before giving up (>= 15; default: the trunk's).",
)
@click.option("--bind", "bind_address", default="127.0.0.1", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="End with one JSON line: the outcome.")
def call(
    number: str,
    trunk_name: str,
    config_path: str | None,
    prompt: str | None,
    hold: float,
    ring_timeout: float | None,
    bind_address: str,
    as_json: bool,
) -> None:
    """Place one call over a trunk, print its progress and its outcome."""
    import contextlib
    import dataclasses
    import time
    import uuid

    from dialer.lines import (
        AmdVerdict,
        Answered,
        CommandFailed,
        DtmfReceived,
        Ended,
        LinePool,
        NoSuchAttempt,
        Progress,
        PromptFinished,
        Registration,
    )
    from dialer.lines.outcome import SIT_OUTCOMES
    from dialer.sit import sit_tap
    from sip_config import SipConfigError

    config = _sip_config(config_path)
    attempt_id = f"cli-{uuid.uuid4().hex[:12]}"
    started = time.time()

    def at(moment: float) -> str:
        return f"{moment - started:6.2f}s"

    with LinePool(config, workers=1, bind_address=bind_address) as pool:
        try:
            # A carrier's "not in service" tone in early media or after the answer ends the
            # call as invalid or congestion rather than no_answer or human.
            pool.originate(attempt_id, trunk_name, number, ring_timeout=ring_timeout, tap=sit_tap())
        except SipConfigError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"{at(time.time())} dialing {number} via {trunk_name}")
        hang_up_at: float | None = None
        result: Ended | None = None
        interrupted = False
        while result is None:
            try:
                event = pool.next_event(timeout=0.1)
            except KeyboardInterrupt:
                if interrupted:
                    raise
                # The first Ctrl-C hangs up and still prints the outcome; a second one aborts.
                interrupted = True
                click.echo(f"{at(time.time())} interrupted: hanging up")
                with contextlib.suppress(NoSuchAttempt):
                    pool.hangup(attempt_id)
                continue
            if hang_up_at is not None and time.time() >= hang_up_at:
                hang_up_at = None
                pool.hangup(attempt_id)
            if isinstance(event, Registration) and event.trunk == trunk_name:
                state = "registered" if event.registered else "not registered"
                click.echo(f"{at(time.time())} {state}: {event.reason}")
            if event is None or getattr(event, "attempt_id", None) != attempt_id:
                continue
            if isinstance(event, Progress):
                what = "ringing" if event.sip_code != 183 else "session progress (early media)"
                click.echo(f"{at(event.at)} {what} ({event.sip_code})")
            elif isinstance(event, Answered):
                click.echo(f"{at(event.at)} answered")
                if prompt is not None:
                    pool.play(attempt_id, prompt)
                else:
                    hang_up_at = time.time() + hold
            elif isinstance(event, PromptFinished):
                click.echo(f"{at(time.time())} prompt played: {event.path}")
                pool.hangup(attempt_id)
            elif isinstance(event, DtmfReceived):
                click.echo(f"{at(time.time())} key pressed: {event.digit}")
            elif isinstance(event, AmdVerdict) and event.verdict in SIT_OUTCOMES:
                click.echo(f"{at(event.at)} special information tone: {event.reason}")
                with contextlib.suppress(NoSuchAttempt):
                    pool.hangup(attempt_id)
            elif isinstance(event, AmdVerdict):
                click.echo(f"{at(event.at)} answering-machine detection: {event.verdict}")
            elif isinstance(event, CommandFailed):
                click.echo(f"{at(time.time())} {event.command} failed: {event.reason}")
                if event.command == "Play":
                    pool.hangup(attempt_id)
            elif isinstance(event, Ended):
                result = event
    click.echo(
        f"{at(result.timings.ended_at)} ended: {result.outcome} "
        f"(SIP {result.sip_code} {result.reason})"
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "attempt_id": result.attempt_id,
                    "number": number,
                    "trunk": trunk_name,
                    "outcome": result.outcome,
                    "sip_code": result.sip_code,
                    "reason": result.reason,
                    "amd_verdict": result.amd_verdict,
                    "timings": dataclasses.asdict(result.timings),
                }
            )
        )


@bench.command("sip")
@click.option("--calls", default=200, show_default=True, help="Calls held at once with media.")
@click.option("--hold", default=60.0, show_default=True, help="Seconds the calls are held.")
@click.option("--setup-rate", default=40.0, show_default=True, help="Calls/s while ramping up.")
@click.option("--cps", default=100.0, show_default=True, help="Calls/s for the rate run.")
@click.option("--duration", default=60.0, show_default=True, help="Seconds of the rate run.")
@click.option(
    "--answered-hold",
    default=0.0,
    show_default=True,
    help="Rate run: answer each call and hang up after this many seconds (0: answer 486).",
)
@click.option("--workers", type=int, default=None, help="Line workers (default: as needed).")
@click.option("--bridged", is_flag=True, help="Hold the calls as bridged pairs (customer+agent).")
@click.option(
    "--run",
    "runs",
    multiple=True,
    type=click.Choice(["held", "rate"]),
    default=("held", "rate"),
    show_default=True,
)
@click.option("--json", "as_json", is_flag=True)
def bench_sip(
    calls: int,
    hold: float,
    setup_rate: float,
    cps: float,
    duration: float,
    answered_hold: float,
    workers: int | None,
    bridged: bool,
    runs: tuple[str, ...],
    as_json: bool,
) -> None:
    """Concurrent calls with media and calls per second against SIPp on loopback."""
    from dialer.bench import sip

    for run in runs:
        if run == "held":
            figures = sip.held(calls, hold, setup_rate, workers, bridged)
        else:
            figures = sip.rate(cps, duration, workers, answered_hold)
        if as_json:
            click.echo(json.dumps(figures))
        else:
            click.echo(", ".join(f"{key} {value}" for key, value in figures.items()))


@bench.command("connect")
@click.option("--calls", default=100, show_default=True, help="Customer calls to connect.")
@click.option("--workers", default=4, show_default=True, help="Line workers (2 customers each).")
@click.option("--hold", default=1.0, show_default=True, help="Seconds each bridged call lasts.")
@click.option(
    "--amd/--immediate",
    default=False,
    show_default=True,
    help="Run the real AMD detector on a greeting (--greeting) instead of a tap that says "
    "human at the first frame.",
)
@click.option(
    "--greeting",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="8 kHz mono WAV the customers play (default: none, SIPp echoes).",
)
@click.option(
    "--agent-rings",
    is_flag=True,
    help="The agent's phone never answers: every call is abandoned; times the safe-harbor start.",
)
@click.option("--json", "as_json", is_flag=True)
def bench_connect(
    calls: int,
    workers: int,
    hold: float,
    amd: bool,
    greeting: Path | None,
    agent_rings: bool,
    as_json: bool,
) -> None:
    """Connect delay (human verdict -> agent bridged) against SIPp customers and agent phone."""
    from dialer.bench import connect

    figures = connect.run(
        calls, workers, hold, amd=amd, greeting=greeting, agent_answers=not agent_rings
    )
    if as_json:
        click.echo(json.dumps(figures))
    else:
        click.echo(", ".join(f"{key} {value}" for key, value in figures.items()))


@main.group()
def prompts() -> None:
    """The dialer's voice prompts (IVR menus, safe-harbor message), rendered with espeak-ng."""


@prompts.command("build")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the WAVs go (default: $DIALER_PROMPTS_DIR or ~/.cache/dialer/prompts).",
)
@click.option(
    "--campaign",
    "campaign_names",
    multiple=True,
    help="Also render this campaign's prompts: its kind's menus and its safe-harbor message.",
)
def prompts_build(directory: Path | None, campaign_names: tuple[str, ...]) -> None:
    """Render the bundled prompts (cached: only new or changed texts are spoken)."""
    from sqlalchemy import select

    from campaigns.db import session_factory
    from campaigns.models import Campaign
    from dialer import prompts as bundled

    try:
        built = bundled.build_bundled(directory)
        if campaign_names:
            engine = _engine()
            with session_factory(engine)() as session:
                for name in campaign_names:
                    campaign = session.scalar(select(Campaign).where(Campaign.name == name))
                    if campaign is None:
                        raise click.BadParameter(
                            f"no campaign named {name!r}", param_hint="--campaign"
                        )
                    for prompt, path in bundled.campaign_prompts(campaign, directory).items():
                        built[f"{name}: {prompt}"] = path
            engine.dispose()
    except (bundled.PromptError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    for name, path in built.items():
        click.echo(f"{name}: {path}")


@bench.command("sit")
@click.option("--trials", default=20, show_default=True, help="Tones of each SIT code per SNR.")
@click.option("--snrs", default="clean,20,10,6,3,0", show_default=True, help="SNRs in dB.")
@click.option("--greetings", default=240, show_default=True, help="AMD corpus size.")
@click.option("--seed", default=1, show_default=True)
@click.option(
    "--sip",
    "sip_trials",
    default=0,
    show_default=True,
    help="Also play each code this many times through real calls (SIPp answers, 10 dB SNR).",
)
@click.option("--concurrency", default=4, show_default=True, help="SIP calls at once.")
@click.option("--json", "as_json", is_flag=True)
def bench_sit(
    trials: int,
    snrs: str,
    greetings: int,
    seed: int,
    sip_trials: int,
    concurrency: int,
    as_json: bool,
) -> None:
    """SIT detection per SNR, false SITs on speech, CPU per frame (SIT, AMD, both)."""
    from dialer.bench import sit

    levels = [None if s.strip() == "clean" else float(s) for s in snrs.split(",")]
    rows = sit.detection(levels, trials, seed)
    on_corpus = sit.corpus(greetings, seed, None)
    if sip_trials:
        on_corpus.update(sit.through_sip(sip_trials, 10.0, seed, concurrency))
    if as_json:
        click.echo(json.dumps({"detection": rows, "corpus": on_corpus}))
        return
    for row in rows:
        click.echo(", ".join(f"{key} {value}" for key, value in row.items()))
    click.echo(", ".join(f"{key} {value}" for key, value in on_corpus.items()))


# -- simulated telephony peers (dialer/demo): rehearse a campaign on loopback


def _run_peer(
    peer: SippPeer,
    started: str,
    describe: Callable[[Any], str | None],
    summary: Callable[[], str],
) -> None:
    """Run a simulated peer until Ctrl-C or SIGTERM, printing a line per call as it comes."""
    import signal
    import threading

    from dialer.demo.sipp import SippError

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        peer.start()
    except (SippError, ValueError) as error:
        raise click.ClickException(str(error)) from None
    failed = ""
    try:
        click.echo(started.format(port=peer.port), err=True)
        while not stop.wait(0.2):
            for call in peer.poll():
                line = describe(call)
                if line is not None:
                    click.echo(line)
            if not peer.running:
                failed = peer.problem() or "SIPp exited"
                break
    except KeyboardInterrupt:
        pass
    finally:
        peer.stop()
    for call in peer.poll():
        line = describe(call)
        if line is not None:
            click.echo(line)
    click.echo(summary(), err=True)
    if failed:
        raise click.ClickException(f"SIPp stopped: {failed}")


_WAIT_WORDS = {"busy": "486", "invalid": "intercept"}


def _clock(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).astimezone().strftime("%H:%M:%S.%f")[:-3]


@simulate.command("carrier")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Default: a free one.")
@click.option(
    "--mix",
    default=DEFAULT_MIX,
    show_default=True,
    help="branch=weight,... over human, machine, busy, no_answer, invalid, survey.",
)
@click.option(
    "--quick",
    is_flag=True,
    help="Pick up within a second, busy at once (default: the pacing workloads' ring times).",
)
def simulate_carrier(port: int | None, mix: str, quick: bool) -> None:
    """A carrier (SIPp on 127.0.0.1) answering each INVITE as one branch of the mix, until
    stopped: one line per call received (time, number, branch), a summary at the end."""
    from dialer.demo.carrier import Invite, SimulatedCarrier
    from dialer.demo.mix import CarrierTimings, MixError

    try:
        carrier = SimulatedCarrier(
            mix, port=port, timings=CarrierTimings.quick() if quick else None
        )
    except MixError as error:
        raise click.BadParameter(str(error), param_hint="--mix") from None

    seen: set[str] = set()

    def describe(invite: Invite) -> str | None:
        if invite.call_id in seen:
            return None  # one line per call, when it arrives (poll also gives it as it ends)
        seen.add(invite.call_id)
        detail = [invite.variant] if invite.variant != "-" else []
        if invite.branch == "no_answer":
            detail.append("rings until cancelled")
        elif invite.wait_s:
            what = _WAIT_WORDS.get(invite.branch, "answers")
            detail.append(f"{what} after {invite.wait_s:.1f} s")
        if invite.keys:
            detail.append("keys " + " ".join(f"{d}@{s:g}s" for s, d in invite.keys))
        return "\t".join((_clock(invite.at), invite.number, invite.branch, ", ".join(detail)))

    def summary() -> str:
        from collections import Counter

        counts = carrier.counts()
        ends = Counter(invite.ended or "still up" for invite in carrier.invites())
        return (
            f"{sum(counts.values())} calls: "
            + ", ".join(f"{branch} {count}" for branch, count in sorted(counts.items()))
            + "; ended: "
            + ", ".join(f"{how} {count}" for how, count in sorted(ends.items()))
        )

    _run_peer(
        carrier,
        f"carrier on 127.0.0.1:{{port}} (UDP), mix {carrier.mix}; Ctrl-C stops it",
        describe,
        summary,
    )


@simulate.command("phones")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Default: a free one.")
@click.option(
    "--hang-up-after",
    type=click.FloatRange(1),
    default=3600.0,
    show_default=True,
    help="Seconds after which a phone hangs up a call the dialer left up.",
)
def simulate_phones(port: int | None, hang_up_after: float) -> None:
    """Agents' phones (SIPp on 127.0.0.1) that answer every call at once, whatever the user
    part (sip:ANYNAME@127.0.0.1:PORT), and echo the audio, until stopped."""
    from dialer.demo.phones import AgentCall, AgentPhones

    phones = AgentPhones(port=port, hangs_up_s=hang_up_after)
    seen: set[str] = set()

    def describe(call: AgentCall) -> str | None:
        if call.call_id in seen:
            return None
        seen.add(call.call_id)
        asked = "auto-answer asked" if call.auto_answer else "no auto-answer header"
        return "\t".join((_clock(call.at), call.agent, "answered", asked))

    def summary() -> str:
        counts = phones.counts()
        return f"{sum(counts.values())} calls answered: " + ", ".join(
            f"{agent} {count}" for agent, count in sorted(counts.items())
        )

    _run_peer(
        phones,
        "agents' phones on 127.0.0.1:{port} (UDP): sip:NAME@127.0.0.1:{port}; Ctrl-C stops them",
        describe,
        summary,
    )
