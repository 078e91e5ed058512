"""Report pages: call detail (filters in the viewer's time zone, CSV and XLSX read back with
formula cells neutralised, recordings in an <audio> element for those who may hear them),
campaign summary and agent performance from the hourly sums, compliance."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from openpyxl import load_workbook
from sqlalchemy import Connection, delete, update
from sqlalchemy.orm import Session

from campaigns import reporting
from campaigns.models import AgentSession, AgentStateChange, CampaignHour
from tests.web.api_helpers import DAY, FORMULA, NOON, seed_calls
from tests.web.conftest import Console, signed_in
from web import db as web_db
from web import export_process


def test_call_detail_filters_by_the_viewers_days_and_pages(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed_calls(app)
    manager = signed_in(app, "manager")  # America/New_York
    page = manager.get(f"/reports/calls?from={DAY.isoformat()}").get_data(as_text=True)
    assert "+12125550170" in page and "+12125550171" in page
    # The abandoned call at 02:30 UTC is the evening before in New York.
    assert "+12125550172" not in page
    assert "2026-03-10 08:00:00" in page  # noon UTC, shown in New York time
    assert "=HYPERLINK(&#34;http://x&#34;,&#34;y&#34;)" in page  # escaped, never markup
    page = manager.get("/reports/calls?from=2026-03-09&to=2026-03-10&outcome=abandoned")
    text = page.get_data(as_text=True)
    assert "+12125550172" in text and "+12125550170" not in text
    text = manager.get(
        f"/reports/calls?from=2026-03-09&to=2026-03-10&campaign_id={seeded['campaign_id']}"
        f"&agent_id={seeded['agent_id']}&disposition=ptp"
    ).get_data(as_text=True)
    assert "+12125550170" in text and "+12125550171" not in text
    text = manager.get("/reports/calls?from=2026-03-09&phone=not a number").get_data(as_text=True)
    assert "not a number" in text and "No call matches." in text
    # Pages of one call each, newest first.
    monkeypatch.setattr("web.reports.PAGE", 1)
    text = manager.get("/reports/calls?from=2026-03-09&to=2026-03-10").get_data(as_text=True)
    assert text.count("<tr>") == 2  # the header and one call
    following = text.split('href="/reports/calls?after=')[1].split('"')[0]
    second = manager.get(f"/reports/calls?after={following.replace('&amp;', '&')}")
    assert "+12125550171" in second.get_data(as_text=True)


def test_exports_read_back_with_formula_cells_neutralised(app: Flask) -> None:
    seed_calls(app)
    manager = signed_in(app, "manager")
    query = "from=2026-03-09&to=2026-03-10"
    response = manager.get(f"/reports/calls.csv?{query}")
    assert response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    header, calls = rows[0], rows[1:]
    assert header[:3] == ["Started", "Campaign", "Phone"] and len(calls) == 3
    # A number starts with "+": neutralised too, as every text cell is (campaigns.exports).
    connected = next(r for r in calls if r[2] == "'+12125550170")
    assert connected[3] == "'" + FORMULA  # first name
    assert connected[16] == "'" + FORMULA  # the disposition's notes
    assert connected[0] == "2026-03-10T08:00:00-04:00"  # the viewer's zone
    assert next(r for r in calls if r[2] == "'+12125550172")[3] == "'-- call after 5pm"

    response = manager.get(f"/reports/calls.xlsx?{query}")
    assert response.mimetype.endswith("spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(response.data)).active
    cells = list(sheet.iter_rows(values_only=True))
    assert cells[0][2] == "Phone" and len(cells) == 4
    connected_row = next(r for r in cells if r[2] == "'+12125550170")
    assert connected_row[3] == "'" + FORMULA
    # Excel has no zones: the viewer's wall-clock time.
    assert connected_row[0] == dt.datetime(2026, 3, 10, 8, 0, tzinfo=dt.UTC).replace(tzinfo=None)
    for row in sheet.iter_rows():
        for cell in row:
            assert cell.data_type != "f", cell.coordinate
    assert manager.get("/reports/calls.csv?from=garbage").status_code == 422


def test_a_call_export_written_in_parts_is_one_file(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeded = seed_calls(app)
    manager = signed_in(app, "manager")
    query = "from=2026-03-09&to=2026-03-10"
    whole = manager.get(f"/reports/calls.csv?{query}").get_data(as_text=True)
    monkeypatch.setattr(reporting, "SPLIT_LEAST", 1)
    with app.app_context(), web_db.engine().connect() as connection:
        wanted = reporting.CallFilter(
            dt.datetime(2026, 3, 9, tzinfo=dt.UTC),
            dt.datetime(2026, 3, 11, tzinfo=dt.UTC),
            (seeded["campaign_id"],),
        )
        assert len(reporting.split_calls(connection, wanted, export_process.PROCESSES)) == 2
    in_parts = manager.get(f"/reports/calls.csv?{query}").get_data(as_text=True)
    assert in_parts == whole and in_parts.count('"Started"') == 1


def test_recordings_play_in_the_page_for_those_who_may_hear_them(
    app: Flask, tmp_path: Path
) -> None:
    folder = tmp_path / "recordings"
    folder.mkdir()
    wav = folder / "1.wav"
    wav.write_bytes(b"RIFF" + bytes(100))
    app.config["RECORDINGS_DIR"] = str(folder)
    seeded = seed_calls(app, recording=str(wav))
    supervisor = signed_in(app, "supervisor")
    page = supervisor.get(f"/reports/calls?from={DAY.isoformat()}").get_data(as_text=True)
    src = f"/reports/recordings/{seeded['connected_id']}.wav"
    assert f'<audio controls preload="none" src="{src}">' in page
    played = supervisor.get(src)
    assert played.status_code == 200 and played.mimetype == "audio/wav"
    assert played.headers["Accept-Ranges"] == "bytes"
    assert signed_in(app, "agent").get(src).status_code == 403
    assert Console(app.test_client()).get(src).status_code == 302
    # A row pointing outside the recordings folder is never served.
    outside = tmp_path / "secret.wav"
    outside.write_bytes(b"RIFF")
    with app.app_context(), Session(web_db.engine()) as session:
        from campaigns.models import CallAttempt

        session.execute(
            update(CallAttempt)
            .where(CallAttempt.id == seeded["connected_id"])
            .values(recording_path=str(folder / ".." / "secret.wav"))
        )
        session.commit()
    assert supervisor.get(src).status_code == 404


def test_the_summary_reads_the_hourly_sums_not_the_attempts(app: Flask) -> None:
    seeded = seed_calls(app)
    with app.app_context(), Session(web_db.engine()) as session:
        # An hour with 900 attempts summed and none of its rows kept: only the sums can say so.
        session.add(
            CampaignHour(
                campaign_id=seeded["campaign_id"],
                hour=NOON - dt.timedelta(hours=3),
                attempts=900,
                busy=900,
            )
        )
        session.commit()
    admin = signed_in(app, "admin")
    page = admin.get(f"/reports/campaigns/{seeded['campaign_id']}?from={DAY.isoformat()}").get_data(
        as_text=True
    )
    assert "903" in page and "250.00" in page and "PTP" in page
    rows = list(
        csv.reader(
            io.StringIO(
                admin.get(
                    f"/reports/campaigns/{seeded['campaign_id']}?from={DAY.isoformat()}&format=csv"
                ).get_data(as_text=True)
            )
        )
    )
    assert rows[0][:2] == ["Day", "Attempts"]
    assert rows[-1][:2] == ["Total", "903"] and rows[-1][rows[0].index("Busy")] == "900"


def test_agent_performance_from_state_changes_after_they_are_summed(app: Flask) -> None:
    seeded = seed_calls(app)
    agent = seeded["agent_id"]
    with app.app_context(), Session(web_db.engine()) as session:
        for minutes, state, code in (
            (0, "ready", None),
            (5, "on_call", None),
            (15, "wrap_up", None),
            (16, "paused", "LUNCH"),
            (46, "logged_out", None),
        ):
            session.execute(
                update(AgentSession)
                .where(AgentSession.user_id == agent)
                .values(
                    state=state, pause_code=code, state_since=NOON + dt.timedelta(minutes=minutes)
                )
            )
            session.commit()
    admin = signed_in(app, "admin")
    expected = ["agnes", "3360", "300", "600", "60", "2400", "LOGIN 600, LUNCH 1800", "1", "1.07"]
    url = f"/reports/agents?from={DAY.isoformat()}&format=csv"
    rows = list(csv.reader(io.StringIO(admin.get(url).get_data(as_text=True))))
    assert rows[1] == expected
    # Summed into hours by now: the report reads the sums even once the changes are gone.
    with app.app_context(), Session(web_db.engine()) as session:
        session.execute(delete(AgentStateChange))
        session.commit()
    rows = list(csv.reader(io.StringIO(admin.get(url).get_data(as_text=True))))
    assert rows[1] == expected
    page = admin.get(f"/reports/agents?from={DAY.isoformat()}").get_data(as_text=True)
    assert "0:10:00" in page and "LUNCH 0:30:00" in page
    sheet = load_workbook(io.BytesIO(admin.get(url.replace("csv", "xlsx")).data)).active
    assert [c.value for c in sheet[2]][:2] == ["agnes", 3360]


def test_the_compliance_report_shows_abandonment_refusals_regulation_f_and_opt_outs(
    app: Flask,
) -> None:
    seed_calls(app)
    supervisor = signed_in(app, "supervisor")
    page = supervisor.get(f"/reports/compliance?from={DAY.isoformat()}").get_data(as_text=True)
    # The abandoned call is months ago by the clock, so the 30-day window holds none of it;
    # the refusals and opt-outs are those of the chosen day.
    assert "Collections Q3" in page and "calling_hours" in page
    assert "pressed the opt-out key" in page
    assert "Regulation F" in page
    assert supervisor.get("/reports/compliance?from=2026-13-01").status_code == 200
    assert "is not a date" in supervisor.get("/reports/compliance?from=2026-13-01").get_data(
        as_text=True
    )


def test_the_reports_index_links_every_report(app: Flask) -> None:
    seeded = seed_calls(app)
    page = signed_in(app, "manager").get("/reports/").get_data(as_text=True)
    for url in (
        "/reports/calls",
        "/reports/agents",
        "/reports/compliance",
        f"/reports/campaigns/{seeded['campaign_id']}",
    ):
        assert f'href="{url}"' in page
    assert signed_in(app, "agent").get("/reports/").status_code == 403


def where_exported(connection: Connection, tag: str) -> Iterator[list[object]]:
    """An export's rows saying which process wrote them, at what CPU priority."""
    yield [tag, os.getpid(), os.nice(0)]


def _exported_by(app: Flask, tag: str) -> list[str]:
    with app.test_request_context():
        response = export_process.send(where_exported, (tag,), ("tag", "pid", "nice"), tag)
        response.direct_passthrough = False
        rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
        response.close()
    assert rows[0] == ["tag", "pid", "nice"]
    return rows[1]


def test_large_exports_are_written_by_a_process_of_their_own(app: Flask) -> None:
    """A month of calls written in the console's interpreter held every page of every user
    behind it: exports run in processes of their own, at the console's CPU priority (a lower
    one starved them on a busy machine), and one that died is replaced by the next export."""
    tag, pid, nice = _exported_by(app, "first")
    assert tag == "first"
    assert int(pid) != os.getpid()
    assert int(nice) == os.nice(0)
    os.kill(int(pid), signal.SIGKILL)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    tag, other, _ = _exported_by(app, "after the kill")
    assert tag == "after the kill"
    assert other != pid
