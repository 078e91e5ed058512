"""Reports: call detail (search, CSV and XLSX export, recordings played in the page), campaign
summary, agent performance and compliance. The figures come from campaigns.reports, which
reads hourly sums and indexed ranges; the REST API serves the same as JSON (web.api.reports).
Days are the viewer's, in their time zone."""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    render_template,
    request,
    send_file,
)
from flask_login import current_user
from sqlalchemy import Connection, select

from campaigns import dnc, reporting, rollups, why
from campaigns.exports import Cell
from campaigns.models import Campaign, User, utcnow
from web import db, export_process
from web.display import viewer_zone
from web.permissions import allow
from web.streams import kept_fresh

bp = Blueprint("reports", __name__, url_prefix="/reports")
PAGE = 50
RECORDINGS_DIR_ENV = "DIALER_RECORDINGS_DIR"
CALL_HEADER = (
    "Started",
    "Campaign",
    "Phone",
    "First name",
    "Last name",
    "Account",
    "Dial mode",
    "Outcome",
    "Abandoned",
    "SIP code",
    "SIP reason",
    "AMD",
    "Agent",
    "Connect delay (ms)",
    "Talk (s)",
    "Disposition",
    "Notes",
    "Recording",
)
AGENT_HEADER = (
    "Agent",
    "Logged in (s)",
    "Ready (s)",
    "Talk (s)",
    "Wrap-up (s)",
    "Pause (s)",
    "Pause by code",
    "Calls",
    "Contacts per hour",
)
DAY_HEADER = (
    "Day",
    "Attempts",
    "Human",
    "Machine",
    "Message left",
    "Busy",
    "No answer",
    "Invalid",
    "Congestion",
    "Failed",
    "Live answers",
    "Abandoned",
    "Abandon rate",
    "Connected",
    "Talk (s)",
    "Contacts per hour",
)


def recordings_root() -> Path:
    """Where the nodes write recordings: a recording is served only from under it. The same
    place dialer.connect.default_recordings_dir names (the console does not import the
    runtime): $DIALER_RECORDINGS_DIR, else the user's data directory."""
    configured = current_app.config.get("RECORDINGS_DIR") or os.environ.get(RECORDINGS_DIR_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "dialer" / "recordings"


def stream_recording(attempt_id: int) -> Any:
    """The attempt's recording as WAV, with HTTP ranges (the browser's player seeks): only the
    file the attempt's row names, and only under the recordings folder."""
    stored = reporting.recording_path(db.session(), attempt_id)
    if not stored:
        abort(404, f"attempt {attempt_id} has no recording")
    path = Path(stored).resolve()
    if not path.is_relative_to(recordings_root().resolve()) or path.suffix.lower() != ".wav":
        current_app.logger.warning(
            "recording of attempt %s refused: %s is not a WAV under %s",
            attempt_id,
            stored,
            recordings_root(),
        )
        abort(404, f"attempt {attempt_id} has no recording")
    if not path.is_file():
        abort(404, f"the recording of attempt {attempt_id} is gone (deleted after its retention)")
    current_app.logger.info(
        "recording of attempt %s played by %s", attempt_id, current_user.username
    )
    return send_file(path, mimetype="audio/wav", conditional=True, max_age=0)


def fresh_rollups() -> None:
    """Brings the hourly sums up to date (a write at most once an hour), then starts a new
    read: SQLite's reads see the snapshot their transaction began with."""
    rollups.catch_up(db.engine())
    db.session().commit()


def call_filter(
    period: reporting.Period,
    *,
    campaign_id: int | None = None,
    outcome: str | None = None,
    agent_id: int | None = None,
    phone: str | None = None,
    disposition: str | None = None,
) -> reporting.CallFilter:
    """Raises ReportError naming the field for a value that cannot be searched."""
    if campaign_id is not None:
        ids: tuple[int, ...] = (campaign_id,)
    else:
        ids = tuple(db.session().scalars(select(Campaign.id)))
    if outcome is not None and outcome not in reporting.CALL_OUTCOMES:
        raise reporting.ReportError(
            "outcome", f"{outcome!r} is not one of {', '.join(reporting.CALL_OUTCOMES)}"
        )
    number = None
    if phone:
        try:
            number = dnc.normalise(phone)
        except dnc.DncError as error:
            raise reporting.ReportError(
                "phone", f"{error}; a phone number, e.g. +12125550100"
            ) from None
    return reporting.CallFilter(
        start=period.start,
        end=period.end,
        campaign_ids=ids,
        outcome=outcome,
        agent_id=agent_id,
        phone=number,
        disposition=disposition.strip().upper() if disposition else None,
    )


class Filters:
    """The report forms' fields as the query string holds them, with the problems found."""

    def __init__(self, args: Any) -> None:
        self.args = args
        self.problems: dict[str, str] = {}
        zone = viewer_zone()
        today = utcnow().astimezone(zone).date()
        first = self._date("from") or today
        last = self._date("to") or first
        self.first, self.last = first, last
        try:
            self.period = reporting.Period.of_days(first, last, zone.key)
        except reporting.ReportError as error:
            self.problems[error.field] = str(error)
            self.period = reporting.Period.of_days(first, first, zone.key)
        self.campaign_id = self._int("campaign_id")
        self.agent_id = self._int("agent_id")
        self.outcome = args.get("outcome") or None
        self.phone = (args.get("phone") or "").strip()[:40] or None
        self.disposition = (args.get("disposition") or "").strip()[:40] or None

    def _date(self, name: str) -> dt.date | None:
        text = (self.args.get(name) or "").strip()
        if not text:
            return None
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            self.problems[name] = f"{name}={text!r} is not a date (YYYY-MM-DD)"
            return None

    def _int(self, name: str) -> int | None:
        text = (self.args.get(name) or "").strip()
        if not text:
            return None
        if not text.isdigit():
            self.problems[name] = f"{name}={text!r} is not an id"
            return None
        return int(text)

    def calls(self) -> reporting.CallFilter | None:
        try:
            return call_filter(
                self.period,
                campaign_id=self.campaign_id,
                outcome=self.outcome,
                agent_id=self.agent_id,
                phone=self.phone,
                disposition=self.disposition,
            )
        except reporting.ReportError as error:
            self.problems[error.field] = str(error)
            return None

    def query(self, **extra: Any) -> dict[str, Any]:
        """The filters as URL arguments (for links to other pages and exports)."""
        values = {
            "from": self.first.isoformat(),
            "to": self.last.isoformat(),
            "campaign_id": self.campaign_id,
            "agent_id": self.agent_id,
            "outcome": self.outcome,
            "phone": self.phone,
            "disposition": self.disposition,
            **extra,
        }
        return {k: v for k, v in values.items() if v not in (None, "")}


def _choices() -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    session = db.session()
    campaigns = session.execute(select(Campaign.id, Campaign.name).order_by(Campaign.name)).all()
    agents = session.execute(
        select(User.id, User.username).where(User.role == "agent").order_by(User.username)
    ).all()
    return [tuple(c) for c in campaigns], [tuple(a) for a in agents]  # type: ignore[misc]


def call_detail_cells(
    connection: Connection, wanted: reporting.CallFilter, zone: zoneinfo.ZoneInfo
) -> Iterator[list[Cell]]:
    """The call detail export's rows, streamed from the database whatever their number;
    `zone`, the viewer's, looked up once per export (per row it was a third of its time)."""
    for started, *rest in reporting.export_rows(connection, wanted):
        yield [_utc(started).astimezone(zone), *rest]


def call_detail_parts(
    connection: Connection, wanted: reporting.CallFilter, zone: zoneinfo.ZoneInfo
) -> list[tuple[reporting.CallFilter, zoneinfo.ZoneInfo]]:
    """A large call detail export as a part for each export process (a day of a busy campaign
    in half the time)."""
    parts = reporting.split_calls(connection, wanted, export_process.PROCESSES)
    return [(part, zone) for part in parts]


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


@bp.route("/")
@allow("reports.view")
def index() -> Any:
    campaigns = db.session().scalars(select(Campaign).order_by(Campaign.name)).all()
    return render_template("reports/index.html", campaigns=campaigns)


def _calls(export: str | None) -> Any:
    filters = Filters(request.args)
    wanted = filters.calls()
    campaigns, agents = _choices()
    if export is not None:
        if wanted is None or filters.problems:
            abort(422, "; ".join(filters.problems.values()))
        name = f"calls-{filters.first.isoformat()}-{filters.last.isoformat()}"
        return export_process.send(
            call_detail_cells,
            (wanted, viewer_zone()),
            CALL_HEADER,
            name,
            export,
            parts=call_detail_parts,
        )
    rows: list[reporting.CallRow] = []
    following = None
    if wanted is not None and not filters.problems:
        after = _after(request.args.get("after"))
        rows, following = reporting.call_page(db.session(), wanted, PAGE, after)
    return render_template(
        "reports/calls.html",
        filters=filters,
        rows=rows,
        next_after=_key(following),
        campaigns=campaigns,
        agents=agents,
        outcomes=reporting.CALL_OUTCOMES,
    )


def _key(key: tuple[dt.datetime, int] | None) -> str | None:
    return None if key is None else f"{key[0].isoformat()}~{key[1]}"


def _after(text: str | None) -> tuple[dt.datetime, int] | None:
    if not text:
        return None
    moment, _, attempt = text.partition("~")
    try:
        return dt.datetime.fromisoformat(moment), int(attempt)
    except ValueError:
        abort(400, f"after={text!r} is not a page of this search")


@bp.route("/calls")
@allow("reports.view")
def calls() -> Any:
    return _calls(None)


@bp.route("/calls.csv")
@allow("reports.view")
def calls_csv() -> Any:
    return _calls("csv")


@bp.route("/calls.xlsx")
@allow("reports.view")
def calls_xlsx() -> Any:
    return _calls("xlsx")


@bp.route("/recordings/<int:attempt_id>.wav")
@allow("recordings.listen")
def recording(attempt_id: int) -> Any:
    return stream_recording(attempt_id)


def _day_cells(day: str, outcomes: reporting.Outcomes) -> list[Cell]:
    return [
        day,
        outcomes.attempts,
        outcomes.human,
        outcomes.machine,
        outcomes.machine_message,
        outcomes.busy,
        outcomes.no_answer,
        outcomes.invalid,
        outcomes.congestion,
        outcomes.failed,
        outcomes.live,
        outcomes.abandoned,
        round(outcomes.abandon_rate, 4),
        outcomes.connected,
        round(outcomes.talk_s, 1),
        round(outcomes.contacts_per_hour, 2),
    ]


def _format() -> str | None:
    kind = request.args.get("format")
    if kind not in (None, "", "csv", "xlsx"):
        abort(400, f"format={kind!r}: csv or xlsx")
    return kind or None


@bp.route("/campaigns/<int:campaign_id>")
@allow("reports.view")
def campaign(campaign_id: int) -> Any:
    campaign = db.session().get(Campaign, campaign_id) or abort(404)
    filters = Filters(request.args)
    fresh_rollups()
    summary = reporting.campaign_summary(db.session(), campaign, filters.period, utcnow())
    kind = _format()
    if kind:
        rows = [_day_cells(d.isoformat(), o) for d, o in summary.by_day]
        rows.append(_day_cells("Total", summary.totals))
        name = f"summary-{campaign.id}-{filters.first.isoformat()}-{filters.last.isoformat()}"
        return export_process.send_written(rows, DAY_HEADER, name, kind)
    return render_template(
        "reports/campaign.html", campaign=campaign, summary=summary, filters=filters
    )


def _agent_cells(figures: reporting.AgentFigures) -> list[Cell]:
    return [
        figures.username,
        round(figures.logged_in_s),
        round(figures.ready_s),
        round(figures.talk_s),
        round(figures.wrap_s),
        round(figures.pause_s),
        ", ".join(f"{code} {round(s)}" for code, s in sorted(figures.pause_by_code.items())),
        figures.calls,
        round(figures.contacts_per_hour, 2),
    ]


@bp.route("/agents")
@allow("reports.view")
def agents() -> Any:
    filters = Filters(request.args)
    fresh_rollups()
    figures = reporting.agent_performance(
        db.session(),
        filters.period.start,
        min(filters.period.end, utcnow()),
        campaign_ids=[filters.campaign_id] if filters.campaign_id else None,
    )
    kind = _format()
    if kind:
        name = f"agents-{filters.first.isoformat()}-{filters.last.isoformat()}"
        return export_process.send_written(
            [_agent_cells(f) for f in figures], AGENT_HEADER, name, kind
        )
    campaigns, _ = _choices()
    return render_template(
        "reports/agents.html", figures=figures, filters=filters, campaigns=campaigns
    )


# Regulation F's counters group a week of a collections campaign's calls by debt (a second at
# a quarter of a million debts): every viewer of the process shares one read, at most this old.
REG_F_FRESH_S = 60.0


def reg_f_counters(campaigns: list[Campaign]) -> tuple[dt.datetime, list[reporting.RegFLine]]:
    """The collections campaigns' Regulation F counters and when they were read: read again in
    the background once older than REG_F_FRESH_S (the first asker waits for the first read)."""
    ids = tuple(sorted(c.id for c in campaigns if c.kind == "collections"))
    sessions = db.sessions()

    def read() -> tuple[dt.datetime, list[reporting.RegFLine]]:
        now = utcnow()
        with sessions() as session:
            chosen = list(
                session.scalars(
                    select(Campaign).where(Campaign.id.in_(ids)).order_by(Campaign.name)
                )
            )
            return now, reporting.reg_f_counters(session, chosen, now)

    return kept_fresh(f"dialer.reg_f:{ids}", read, REG_F_FRESH_S)


@bp.route("/compliance")
@allow("reports.view")
def compliance() -> Any:
    filters = Filters(request.args)
    session = db.session()
    campaigns = list(session.scalars(select(Campaign).order_by(Campaign.name)))
    report = reporting.compliance(
        session, campaigns, filters.period, utcnow(), reg_f_counters(campaigns)
    )
    return render_template(
        "reports/compliance.html", report=report, filters=filters, reason_labels=why.REASONS
    )


@bp.app_template_filter("clock")
def clock(seconds: float | None) -> str:
    """Seconds as h:mm:ss."""
    if seconds is None:
        return "—"
    whole = round(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
