"""`dialer serve --demo` as a newcomer runs it (`make demo`): within a minute calls are placed,
answered and put through to the simulated agents, `dialer status` shows them, the log has a
line per call, the console answers, and SIGTERM stops it all cleanly. Beside the telemarketing
campaign, the agentless survey collects answers and the reminders settle appointments."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import func, select

from campaigns import db
from campaigns.models import Appointment, CallAttempt, Campaign, SurveyAnswer

pytestmark = pytest.mark.sip
ROOT = Path(__file__).parent.parent


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_demo_places_answers_and_connects_calls_within_a_minute(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dialer.db'}"
    port = free_tcp_port()
    env = {**os.environ, "DATABASE_URL": url, "DIALER_ADMIN_PASSWORD": "correct-horse-battery-42"}
    log = tmp_path / "serve.log"
    started = time.monotonic()
    with log.open("wb") as out:
        serve = subprocess.Popen(
            [sys.executable, "-m", "dialer", "serve", "--demo", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        connected = 0
        engine = None
        while time.monotonic() - started < 60 and serve.poll() is None:
            time.sleep(1.0)
            if not (tmp_path / "dialer.db").exists():
                continue
            engine = engine or db.make_engine(url)
            try:
                with engine.connect() as connection:
                    connected = connection.scalar(
                        select(func.count()).where(CallAttempt.bridged_at.is_not(None))
                    )
            except Exception:  # the schema is being created
                continue
            if connected:
                break
        assert serve.poll() is None, log.read_text()[-3000:]
        assert connected, "no call was put through to an agent within a minute"
        # The agentless campaigns: a person keys the survey's first answer about 9 s after
        # the answer, a reminder's menu takes about 12 s.
        answered = reminded = 0
        while time.monotonic() - started < 120 and not (answered and reminded):
            assert engine is not None
            with engine.connect() as connection:
                answered = connection.scalar(select(func.count()).select_from(SurveyAnswer))
                reminded = connection.scalar(
                    select(func.count()).where(Appointment.reminder_result.is_not(None))
                )
            time.sleep(1.0)
        assert answered, "the survey stored no answer within two minutes"
        assert reminded, "no reminder call settled an appointment within two minutes"
        status = subprocess.run(
            [sys.executable, "-m", "dialer", "status", "--json"],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        figures = json.loads(status.stdout)
        campaigns = {campaign["name"]: campaign for campaign in figures["campaigns"]}
        assert set(campaigns) == {
            "Demo telemarketing",
            "Demo survey",
            "Demo reminders",
            "Demo collections",
        }
        for campaign in campaigns.values():
            assert campaign["status"] == "active"
            assert campaign["state"] in ("dialing", "no_leads"), campaign
        assert len(figures["agents"]) == 8
        # Calls show the pool's number of the lead's area or state, else the campaign's own.
        local = {"+1212": "+12125550101", "+1312": "+13125550101", "+1213": "+14155550101"}
        assert engine is not None
        with engine.connect() as connection:
            shown = connection.execute(
                select(CallAttempt.phone_e164, CallAttempt.caller_id)
                .join(Campaign, Campaign.id == CallAttempt.campaign_id)
                .where(Campaign.name == "Demo telemarketing")
            ).all()
        assert shown and all(
            caller_id == local.get(phone[:5], "+12125550100") for phone, caller_id in shown
        ), shown
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/auth/login", timeout=5) as page:
            assert page.status == 200
        assert "put through to demo" in log.read_text()
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(90) == 0, log.read_text()[-3000:]
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        if engine is not None:
            engine.dispose()
