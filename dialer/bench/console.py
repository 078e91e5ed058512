"""`dialer bench console`: the console under load, as a call centre's managers use it.

A database of a million leads and five million attempts over 30 days (`console_fill`), the
console's real app under waitress as `dialer serve` runs it, 20 signed-in managers going over
every manager page and keeping the dashboard's event stream open, 50 agents working through
the agent service, and headless Chromium watching the dashboard and uploading a lead file of a
million rows while the managers go on.

Each process has its part, so that none steals the console's interpreter: this one serves the
console and times every request inside it (`PageTimer`, server-side: from the request's arrival
in the app to its last byte); the managers, the floor of agents and the browser run in
processes of their own, and write to the database as other processes do.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import logging
import math
import multiprocessing
import os
import queue
import random
import re
import secrets
import statistics
import tempfile
import threading
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from campaigns import db
from campaigns.models import utcnow
from dialer.bench import console_fill
from dialer.bench.console_fill import BENCH_NODE

PAGE_TARGET_S = 0.100
REPORT_TARGET_S = 1.0
DASHBOARD_TARGET_S = 1.0
PAGE_HEADER = "X-Bench-Page"
# The dashboard is given this long to show a change before the bench gives up on it.
LATENCY_GIVE_UP_S = 10
# The kinds of page: a report or an export is judged against the report target.
REPORT_PREFIXES = ("report:", "export:")
PASSWORD = "bench-console-password"


# -- timing inside the console


@dataclass(frozen=True)
class Timing:
    page: str
    ended: float  # time.monotonic(): the same clock in every process of the machine
    seconds: float
    status: int


class PageTimer:
    """WSGI middleware: the time each labelled request spends in the app, from its arrival to
    its last byte written (a streamed export included). The label is the client's
    `X-Bench-Page` header; requests without one (the event streams) are not timed."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self.timings: list[Timing] = []
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        page = environ.get("HTTP_" + PAGE_HEADER.upper().replace("-", "_"))
        if page is None:
            return self.app(environ, start_response)
        started = time.monotonic()
        status = [0]

        def starting(code: str, headers: list[tuple[str, str]], *args: Any) -> Any:
            status[0] = int(code.split(" ", 1)[0])
            return start_response(code, headers, *args)

        body = self.app(environ, starting)
        return self._timed(body, page, started, status)

    def _timed(self, body: Iterable[bytes], page: str, started: float, status: list[int]) -> Any:
        try:
            yield from body
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
            ended = time.monotonic()
            with self.lock:
                self.timings.append(Timing(page, ended, ended - started, status[0]))

    def between(self, start: float, end: float) -> list[Timing]:
        with self.lock:
            return [t for t in self.timings if start <= t.ended < end]


class QueueWatch:
    """Samples waitress' queue of requests waiting for a thread (time the middleware does not
    see) ten times a second."""

    def __init__(self, dispatcher: Any) -> None:
        self.dispatcher = dispatcher
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="queue-watch", daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        while not self.stop.wait(0.1):
            self.samples.append((time.monotonic(), len(self.dispatcher.queue)))

    def deepest(self, start: float, end: float) -> int:
        return max((depth for at, depth in self.samples if start <= at < end), default=0)


# -- the managers (a process of their own, one thread per manager)


class Browserless:
    """A signed-in user over plain HTTP/1.1 on one kept-alive connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.connection = http.client.HTTPConnection(host, port, timeout=120)
        self.cookies: dict[str, str] = {}

    def request(
        self, method: str, path: str, *, page: str | None = None, form: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if page is not None:
            headers[PAGE_HEADER] = page
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=body, headers=headers)
                response = self.connection.getresponse()
                content = response.read()
                break
            except (http.client.HTTPException, OSError):
                # The server closed a kept-alive connection between two requests: once more.
                self.connection.close()
                self.connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
                if attempt == 2:
                    raise
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        return response.status, content

    def sign_in(self, username: str, password: str) -> None:
        status, page = self.request("GET", "/auth/login")
        token = re.search(rb'name="csrf_token" type="hidden" value="([^"]+)"', page)
        if status != 200 or token is None:
            raise RuntimeError(f"the sign-in page answered {status} without a form token")
        form = {"username": username, "password": password, "csrf_token": token[1].decode()}
        status, _ = self.request("POST", "/auth/login", form=form)
        if status != 302:
            raise RuntimeError(f"{username} could not sign in: the console answered {status}")


@dataclass(frozen=True)
class Plan:
    """What the managers open: ids of the filled database and the report periods."""

    host: str
    port: int
    usernames: list[str]
    campaign_ids: list[int]
    group_id: int
    first_lead_id: int
    leads: int
    month_from: str
    today: str
    yesterday: str
    think_s: float
    seed: int = 1


# A manager opens every page each round but exports (whole days of calls, the whole
# do-not-call list) in one round in this many, drawn at random (and in the first).
EXPORT_ROUNDS = 4


def pages(plan: Plan, rng: random.Random, exports: bool = True) -> list[tuple[str, str]]:
    """Every manager page once, with ids drawn for this round: (label, path); the exports
    only when `exports`."""
    campaign = rng.choice(plan.campaign_ids)
    lead = rng.randrange(plan.leads)
    month = f"from={plan.month_from}&to={plan.today}"
    chart = rng.choice(("hourly", "outcomes", "abandon"))
    phone = urllib.parse.quote(console_fill.phone_of(rng.randrange(plan.leads)))
    dnc_phone = urllib.parse.quote(console_fill.phone_of(rng.randrange(plan.leads // 20) * 20 + 15))
    name = f"{console_fill.FIRST_NAMES[lead % len(console_fill.FIRST_NAMES)]}+Lead{lead}"
    every = [
        ("dashboard", "/dashboard/"),
        ("dashboard chart", f"/dashboard/campaigns/{campaign}/{chart}.svg"),
        ("campaigns", "/campaigns/"),
        ("campaign page", f"/campaigns/{campaign}"),
        ("campaign settings", f"/campaigns/{campaign}/edit"),
        ("lists", f"/campaigns/{campaign}/lists"),
        ("leads search: phone", f"/leads/?q={phone}"),
        ("leads search: name", f"/leads/?q={name}"),
        ("leads search: account", f"/leads/?q=ACC-{rng.randrange(plan.leads)}"),
        ("lead history", f"/leads/{plan.first_lead_id + lead}"),
        ("dnc", "/dnc/"),
        ("dnc search", f"/dnc/?q={dnc_phone}"),
        ("users", "/users/"),
        ("trunks", "/trunks/"),
        ("agent groups", "/agent-groups/"),
        ("agent group", f"/agent-groups/{plan.group_id}"),
        ("reports", "/reports/"),
        ("report: call detail", f"/reports/calls?{month}&campaign_id={campaign}"),
        ("report: campaign summary", f"/reports/campaigns/{campaign}?{month}"),
        ("report: agent performance", f"/reports/agents?{month}"),
        ("report: compliance", f"/reports/compliance?{month}"),
    ]
    if not exports:
        return every
    return [
        *every,
        # Yesterday, a whole day whatever the hour: today's calls are few after midnight.
        (
            "export: calls of a day",
            f"/reports/calls.csv?from={plan.yesterday}&to={plan.yesterday}&campaign_id={campaign}",
        ),
        ("export: campaign summary", f"/reports/campaigns/{campaign}?{month}&format=xlsx"),
        ("export: agent performance", f"/reports/agents?{month}&format=csv"),
        ("export: do-not-call list", "/dnc/export.csv"),
    ]


def _manager(plan: Plan, username: str, stop: Any, out: Any) -> None:
    """Signs in, keeps the dashboard's event stream open beside, and goes over every page in a
    new order each round; says when the first round is done (the console's caches warm)."""
    rng = random.Random(f"{plan.seed}-{username}")
    client = Browserless(plan.host, plan.port)
    with SIGNING_IN:
        client.sign_in(username, PASSWORD)
    listener = threading.Thread(
        target=_guarded, args=(_listener, plan, dict(client.cookies), stop, out), daemon=True
    )
    listener.start()
    refused: dict[str, int] = defaultdict(int)
    requests = 0
    rounds = 0
    while not stop.is_set():
        round_ = pages(plan, rng, exports=rounds == 0 or rng.random() < 1 / EXPORT_ROUNDS)
        rng.shuffle(round_)
        for page, path in round_:
            if stop.is_set():
                break
            status, _ = client.request("GET", path, page=page)
            requests += 1
            if status != 200:
                refused[f"{page} {status}"] += 1
            # A manager reads the page before opening the next.
            stop.wait(rng.uniform(0.5, 1.5) * plan.think_s)
        rounds += 1
        if rounds == 1:
            out.put({"warm": username})
    listener.join()
    out.put({"manager": username, "requests": requests, "refused": dict(refused)})


# Managers arrive one after another, as people do, not all in the same millisecond.
SIGNING_IN = threading.Lock()


def _listener(plan: Plan, cookies: dict[str, str], stop: Any, out: Any) -> None:
    """The dashboard's event stream, open as a dashboard keeps it: board events counted (and
    the "busy" answers of a console whose stream slots are all taken)."""
    events = busy = 0
    cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
    while not stop.is_set():
        # Longer than the stream's keep-alive: a quiet stream is not a dead one.
        connection = http.client.HTTPConnection(plan.host, plan.port, timeout=60)
        try:
            connection.request("GET", "/dashboard/events", headers={"Cookie": cookie})
            response = connection.getresponse()
            if response.status != 200:
                stop.wait(1.0)
                continue
            while not stop.is_set():
                line = response.fp.readline()
                if not line:
                    break  # the stream's time is up: the browser reconnects, so do we
                if line.startswith(b"event: board"):
                    events += 1
                elif line.startswith(b"event: busy"):
                    busy += 1
        except (TimeoutError, OSError, http.client.HTTPException):
            stop.wait(1.0)
        finally:
            connection.close()
    out.put({"listener": True, "events": events, "busy": busy})


def run_managers(plan: Plan, stop: Any, out: Any) -> None:
    """Process entry: each manager on a thread of its own."""
    threads = []
    for username in plan.usernames:
        thread = threading.Thread(target=_guarded, args=(_manager, plan, username, stop, out))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join()


def _guarded(target: Callable[..., None], plan: Plan, who: Any, stop: Any, out: Any) -> None:
    try:
        target(plan, who, stop, out)
    except Exception as error:
        # Said with the figures, not lost in a thread.
        out.put({"failed": f"{target.__name__}: {type(error).__name__}: {error}"})


# -- the floor: agents working through the agent service (a process of its own)


@dataclass
class AgentClock:
    """When the bot next acts, and how long its calls and pauses last."""

    due: float = 0.0


def run_floor(url: str, floor: dict[str, Any], stop: Any, out: Any, seed: int = 3) -> None:
    """Process entry: 50 bot agents log in, go ready, take a call (an attempt the node would
    have placed, bridged to them), talk, wrap up, disposition; now and then a break. The node
    of the floor beats its heart and refreshes its campaigns' runs every second."""
    from campaigns import agents
    from campaigns.models import AgentSession, CallAttempt, CampaignRun, Node

    engine = db.make_engine(url)
    rng = random.Random(seed)
    campaign_ids: list[int] = floor["campaign_ids"]
    clocks = {user_id: AgentClock() for user_id in floor["agent_ids"]}
    moves = 0
    errors = 0
    heartbeat = 0.0
    codes = {
        "telemarketing": ("SALE", "NO_SALE", "NOT_INTERESTED"),
        "collections": ("RPC", "REFUSED"),
    }
    while not stop.is_set():
        now = time.monotonic()
        with Session(engine) as session:
            if now - heartbeat >= 1.0:
                heartbeat = now
                moment = utcnow()
                try:
                    session.execute(
                        update(Node).where(Node.name == BENCH_NODE).values(heartbeat_at=moment)
                    )
                    session.execute(
                        update(CampaignRun)
                        .where(CampaignRun.node == BENCH_NODE)
                        .values(updated_at=moment)
                    )
                    session.commit()
                except OperationalError:
                    # The database's write lock was not had within its busy timeout: counted,
                    # and tried again at the next beat, as a node does.
                    session.rollback()
                    errors += 1
            for index, (user_id, clock) in enumerate(clocks.items()):
                if clock.due > now:
                    continue
                campaign_id = campaign_ids[index % len(campaign_ids)]
                try:
                    row = session.get(AgentSession, user_id, populate_existing=True)
                    state = row.state if row is not None else "logged_out"
                    if state == "logged_out":
                        agents.login(session, user_id, campaign_id)
                        session.execute(
                            update(AgentSession)
                            .where(AgentSession.user_id == user_id)
                            .values(node=BENCH_NODE)
                        )
                        session.commit()
                        clock.due = now + rng.uniform(1, 3)
                    elif state == "paused":
                        agents.ready(session, user_id)
                        clock.due = now + rng.uniform(2, 8)
                    elif state == "ready":
                        if rng.random() < 0.05:
                            agents.pause(session, user_id, "BREAK")
                            clock.due = now + rng.uniform(10, 30)
                        else:
                            _answer(session, agents, CallAttempt, floor, user_id, campaign_id, rng)
                            clock.due = now + rng.uniform(10, 40)
                    elif state in ("reserved", "on_call"):
                        attempt_id = row.current_attempt_id  # type: ignore[union-attr]
                        agents.call_ended(session, user_id, attempt_id, connected=True, at=utcnow())
                        session.execute(
                            update(CallAttempt)
                            .where(CallAttempt.id == attempt_id)
                            .values(ended_at=utcnow())
                        )
                        session.commit()
                        clock.due = now + rng.uniform(3, 10)
                    elif state == "wrap_up":
                        kind = floor["kinds"][str(row.campaign_id)]  # type: ignore[union-attr]
                        agents.disposition(session, user_id, rng.choice(codes[kind]))
                        clock.due = now + rng.uniform(1, 5)
                    moves += 1
                except Exception:
                    session.rollback()
                    errors += 1
                    clock.due = now + 1.0
        stop.wait(0.2)
    out.put({"floor_moves": moves, "floor_errors": errors})
    engine.dispose()


def _answer(
    session: Session,
    agents: Any,
    attempt_model: Any,
    floor: dict[str, Any],
    user_id: int,
    campaign_id: int,
    rng: random.Random,
) -> None:
    """A person answered a lead of the agent's campaign: the attempt as the node writes it,
    the agent reserved and bridged."""
    count = len(floor["campaign_ids"])
    position = floor["campaign_ids"].index(campaign_id)
    index = rng.randrange(max(1, floor["leads"] // count)) * count + position
    index = min(index, floor["leads"] - 1)
    now = utcnow()
    attempt = attempt_model(
        lead_id=floor["first_lead_id"] + index,
        campaign_id=campaign_id,
        phone_e164=console_fill.phone_of(index),
        node=BENCH_NODE,
        trunk_name="carrier1",
        dial_mode="automatic",
        started_at=now - dt.timedelta(seconds=12),
        answered_at=now - dt.timedelta(seconds=2),
        sip_code=200,
        outcome="human",
        amd_verdict="human",
        conversation=True,
    )
    session.add(attempt)
    session.flush()
    if agents.reserve_for_call(session, user_id, attempt.id, {"name": f"Lead{index}"}) is None:
        session.rollback()
        return
    agents.bridged(session, user_id, attempt.id, now)
    session.execute(
        update(attempt_model)
        .where(attempt_model.id == attempt.id)
        .values(agent_id=user_id, bridged_at=now, connect_delay_ms=400)
    )
    session.commit()


# -- the browser (a process of its own)


def run_browser(
    base: str, username: str, url: str, job: dict[str, Any], go_upload: Any, out: Any
) -> None:
    """Process entry: headless Chromium signs in, times the dashboard showing changes written
    to the database by another process, then (when told) uploads the lead file through the
    mapping step and watches the import's progress bar to the end."""
    from playwright.sync_api import expect, sync_playwright

    from campaigns.models import CampaignRun

    engine = db.make_engine(url)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            context = browser.new_context(viewport={"width": 1366, "height": 860})
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(base + "/auth/login")
            page.fill("#username", username)
            page.fill("#password", PASSWORD)
            page.click("button:has-text('Sign in')")
            expect(page.locator("h1")).to_have_text("Dashboard")
            card = page.locator(f'[data-campaign="{job["campaign_id"]}"]')
            expect(page.locator("#live-status")).to_have_text("live", timeout=30_000)
            latencies = []
            for up in job["ups"]:
                with Session(engine) as session:
                    session.execute(
                        update(CampaignRun)
                        .where(CampaignRun.campaign_id == job["campaign_id"])
                        .values(up=up)
                    )
                    session.commit()
                committed = time.monotonic()
                try:
                    expect(card.locator('[data-field="up"]')).to_have_text(
                        str(up), timeout=LATENCY_GIVE_UP_S * 1000
                    )
                except AssertionError:
                    latencies.append(math.inf)  # said as "more than 10 s"
                else:
                    latencies.append(time.monotonic() - committed)
                time.sleep(0.5)
            out.put({"dashboard_latencies": latencies})
            if job.get("csv") is None:
                return
            while not go_upload.wait(0.5):
                pass
            out.put({"upload": _upload(page, base, job)})
            browser.close()
    except Exception as error:
        out.put({"failed": f"browser: {type(error).__name__}: {error}"})
    finally:
        engine.dispose()


def _expect_heading(page: Any, text: str, timeout_s: float) -> None:
    from playwright.sync_api import expect

    try:
        expect(page.locator("h1")).to_contain_text(text, timeout=timeout_s * 1000)
    except AssertionError:
        raise RuntimeError(f"no page {text!r} after {timeout_s:.0f} s: {_seen(page)}") from None


def _seen(page: Any) -> str:
    """What the page shows, to say where an upload stopped."""
    said = [f"at {page.url}"]
    with contextlib.suppress(Exception):
        said.append(f"heading {page.locator('h1').first.inner_text(timeout=2_000)!r}")
        flashes = page.locator(".flash").all_inner_texts()
        said += [f"message {text.strip()!r}" for text in flashes if text.strip()]
    return "; ".join(said)


def _upload(page: Any, base: str, job: dict[str, Any]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    started = time.monotonic()
    page.goto(f"{base}/campaigns/{job['campaign_id']}/lists")
    page.set_input_files("#file", job["csv"])
    page.click("button:has-text('Upload and preview')")
    _expect_heading(page, "Match the columns", job["timeout_s"])
    figures["upload_started"] = started
    figures["upload_ended"] = time.monotonic()
    figures["upload_s"] = figures["upload_ended"] - started
    if page.input_value("#map_phone") == "":
        page.select_option("#map_phone", "Phone")
    page.fill("#new_list", "bench upload")
    clicked = time.monotonic()
    page.click("button:has-text('Import')")
    _expect_heading(page, "Import of", job["timeout_s"])
    figures["import_started"] = clicked
    seen: list[tuple[float, int]] = []
    deadline = clicked + job["timeout_s"]
    status = ""
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):  # the page reloads itself when the import ends
            status = page.locator("#import-status").inner_text(timeout=5_000).strip()
            if status != "running":
                break
            value = page.locator("#import-bar").evaluate("bar => bar.value", timeout=5_000)
            seen.append((time.monotonic() - clicked, int(value)))
        time.sleep(0.5)
    figures["import_ended"] = time.monotonic()
    figures["import_s"] = figures["import_ended"] - clicked
    if status == "running":
        raise RuntimeError(
            f"the import still ran {job['timeout_s']:.0f} s after it began: {_seen(page)}"
        )
    figures["status"] = status
    figures["bar_values"] = sorted({value for _, value in seen})
    figures["bar_samples"] = len(seen)
    with contextlib.suppress(Exception):
        figures["imported"] = page.locator("[data-count=imported]").inner_text(timeout=30_000)
    return figures


# -- the bench


@dataclass
class Settings:
    leads: int = 1_000_000
    attempts: int = 5_000_000
    csv_rows: int = 1_000_000
    managers: int = 20
    agents: int = 50
    seconds: float = 60.0
    think_s: float = 1.0
    database_url: str | None = None
    upload: bool = True
    browser: bool = True
    upload_timeout_s: float = 1800.0


@dataclass
class PageFigures:
    page: str
    requests: int
    p50_s: float
    p95_s: float
    max_s: float
    target_s: float
    errors: int

    @property
    def passed(self) -> bool:
        return self.p95_s <= self.target_s


@dataclass
class Results:
    settings: Settings
    database: str
    fill_s: float
    steady: list[PageFigures] = field(default_factory=list)
    during_upload: list[PageFigures] = field(default_factory=list)
    during_import: list[PageFigures] = field(default_factory=list)
    dashboard_latencies: list[float] = field(default_factory=list)
    upload: dict[str, Any] = field(default_factory=dict)
    managers: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    # Every page timed over the whole run (the first round, in the warm-up, has them all).
    pages_timed: set[str] = field(default_factory=set)
    # The deepest waitress queue per phase (requests waiting for a thread).
    queued: dict[str, int] = field(default_factory=dict)


def target_of(page: str) -> float:
    return REPORT_TARGET_S if page.startswith(REPORT_PREFIXES) else PAGE_TARGET_S


def quantile(values: list[float], share: float) -> float:
    """The nearest-rank quantile: `share` of the values are at most this."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def figures_of(timings: list[Timing]) -> list[PageFigures]:
    by_page: dict[str, list[Timing]] = defaultdict(list)
    for timing in timings:
        by_page[timing.page].append(timing)
    rows = []
    for page, timed in by_page.items():
        seconds = [t.seconds for t in timed]
        rows.append(
            PageFigures(
                page,
                len(timed),
                statistics.median(seconds),
                quantile(seconds, 0.95),
                max(seconds),
                target_of(page),
                sum(1 for t in timed if t.status != 200),
            )
        )
    return sorted(rows, key=lambda r: (r.target_s, r.page))


def _collect(out: Any, until: float) -> list[dict[str, Any]]:
    """What the other processes said until `until` (time.monotonic())."""
    got = []
    while (left := until - time.monotonic()) > 0:
        with contextlib.suppress(queue.Empty):
            got.append(out.get(timeout=min(left, 0.5)))
    return got


def _absorb(results: Results, items: list[dict[str, Any]]) -> None:
    m = results.managers
    for item in items:
        if "failed" in item:
            results.failures.append(item["failed"])
        if "dashboard_latencies" in item:
            results.dashboard_latencies = item["dashboard_latencies"]
        if "upload" in item:
            results.upload = item["upload"]
        if "manager" in item:
            m["requests"] = m.get("requests", 0) + item["requests"]
            for key, count in item["refused"].items():
                m.setdefault("refused", {})[key] = m.get("refused", {}).get(key, 0) + count
        if "listener" in item:
            m["events"] = m.get("events", 0) + item["events"]
            m["busy"] = m.get("busy", 0) + item["busy"]
        if "floor_moves" in item:
            m["agent_moves"] = item["floor_moves"]
            m["agent_move_errors"] = item["floor_errors"]


def run(settings: Settings, say: Callable[[str], None] = print) -> Results:
    """Fills a database (a temporary SQLite file, or a new schema of the PostgreSQL database at
    `settings.database_url`), serves it and measures; every figure is returned and said."""
    with tempfile.TemporaryDirectory(prefix="dialer-bench-console-") as folder:
        work = Path(folder)
        if settings.database_url:
            with db.migrated_schema(settings.database_url, "bench_console") as scoped:
                return _run(settings, scoped, work, say)
        url = f"sqlite:///{work / 'console.db'}"
        db.upgrade(url)
        return _run(settings, url, work, say)


def _run(settings: Settings, url: str, work: Path, say: Callable[[str], None]) -> Results:
    from web.security import hash_password
    from web.server import ConsoleServer, prepare

    engine = db.make_engine(url)
    now = utcnow()
    say(f"filling: {settings.leads:,} leads, {settings.attempts:,} attempts over 30 days ...")
    started = time.monotonic()
    floor = console_fill.fill(
        engine,
        leads=settings.leads,
        attempts=settings.attempts,
        agents=settings.agents,
        managers=settings.managers + 1,
        password_hash=hash_password(PASSWORD),
        now=now,
    )
    results = Results(settings, engine.dialect.name, time.monotonic() - started)
    engine.dispose()
    say(f"filled in {results.fill_s:.1f} s (roll-ups caught up)")
    csv_path = None
    if settings.upload and settings.browser:
        from dialer.bench.imports import generate

        csv_path = work / "bench-leads.csv"
        generate(csv_path, settings.csv_rows)
        say(f"lead file: {settings.csv_rows:,} rows, {csv_path.stat().st_size / 2**20:.0f} MB")

    # As `dialer serve` builds and serves it (the filled database has administrators already).
    app, _ = prepare(
        "127.0.0.1",
        {
            "DATABASE_URL": url,
            "SECRET_KEY": secrets.token_urlsafe(48),
            "UPLOAD_FOLDER": str(work / "uploads"),
            # The managers all sign in from this machine's one address: the per-address
            # throttle would take them for someone guessing passwords. (Not by switching the
            # limiter off: it is one object for every app of the process.)
            "LOGIN_LIMIT_PER_ADDRESS": "1000 per minute",
        },
    )
    timer = PageTimer(app.wsgi_app)
    app.wsgi_app = timer  # type: ignore[method-assign]
    server = ConsoleServer(app, "127.0.0.1", port=0).start()
    # Sampled instead (QueueWatch): a warning per queued request would drown the figures.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    watch = QueueWatch(server.server.task_dispatcher)  # type: ignore[attr-defined]
    base = server.url
    host, port = base.removeprefix("http://").rsplit(":", 1)
    spawn = multiprocessing.get_context("spawn")
    stop, go_upload, out = spawn.Event(), spawn.Event(), spawn.Queue()
    usernames = [f"manager{n:02d}" for n in range(settings.managers)]
    today = now.date()
    plan = Plan(
        host,
        int(port),
        usernames,
        floor.campaign_ids,
        floor.group_id,
        floor.first_lead_id,
        floor.leads,
        (today - dt.timedelta(days=29)).isoformat(),
        today.isoformat(),
        (today - dt.timedelta(days=1)).isoformat(),
        settings.think_s,
    )
    floor_job = asdict(floor) | {"kinds": {str(k): v for k, v in floor.kinds.items()}}
    browser_job = {
        "campaign_id": floor.campaign_ids[0],
        "ups": [31, 27, 35, 22, 40],
        "csv": str(csv_path) if csv_path else None,
        "timeout_s": settings.upload_timeout_s,
    }
    children = [
        spawn.Process(target=run_floor, args=(url, floor_job, stop, out), name="floor"),
        spawn.Process(target=run_managers, args=(plan, stop, out), name="managers"),
    ]
    browser = spawn.Process(
        target=run_browser,
        args=(base, f"manager{settings.managers:02d}", url, browser_job, go_upload, out),
        name="browser",
    )
    try:
        for child in children:
            child.start()
        say(f"console at {base}: {settings.managers} managers, {settings.agents} agents working")
        # Signed in and past a first round of pages: cold caches (templates compiled at first
        # use) are not what a manager sees all day.
        warm: set[str] = set()
        deadline = time.monotonic() + 600
        while len(warm) < settings.managers and time.monotonic() < deadline:
            items = _collect(out, time.monotonic() + 1.0)
            warm |= {item["warm"] for item in items if "warm" in item}
            _absorb(results, items)
            if results.failures:
                raise RuntimeError("; ".join(results.failures))
        steady_from = time.monotonic()
        if settings.browser:
            browser.start()
        _absorb(results, _collect(out, steady_from + settings.seconds))
        steady_to = time.monotonic()
        results.steady = figures_of(timer.between(steady_from, steady_to))
        results.queued["steady"] = watch.deepest(steady_from, steady_to)
        say(f"steady: {steady_to - steady_from:.0f} s measured")
        if csv_path is not None and settings.browser:
            go_upload.set()
            say("uploading the lead file through Chromium ...")
            # The browser gives up on its own after the upload's timeout; this is in case it
            # cannot even do that (a Chromium that stopped answering).
            deadline = time.monotonic() + 3 * settings.upload_timeout_s + 60
            while not results.upload and (browser.is_alive() or not out.empty()):
                if time.monotonic() > deadline:
                    results.failures.append("browser: no word of the upload; stopped waiting")
                    break
                _absorb(results, _collect(out, time.monotonic() + 1.0))
            if results.upload:
                window = (results.upload["upload_started"], results.upload["upload_ended"])
                results.during_upload = figures_of(timer.between(*window))
                results.queued["upload"] = watch.deepest(*window)
                window = (results.upload["import_started"], results.upload["import_ended"])
                results.during_import = figures_of(timer.between(*window))
                results.queued["import"] = watch.deepest(*window)
    finally:
        stop.set()
        go_upload.set()
        for child in [*children, browser]:
            if child.pid is not None:
                child.join(timeout=60)
                if child.is_alive():
                    child.terminate()
        _absorb(results, _collect(out, time.monotonic() + 1.0))
        watch.stop.set()
        server.stop()
        results.pages_timed = {t.page for t in timer.timings}
    for line in report(results):
        say(line)
    return results


# -- printing


def _table(rows: list[PageFigures]) -> Iterator[str]:
    yield f"  {'page':30} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  target  result"
    for r in rows:
        verdict = "pass" if r.passed else "FAIL"
        errors = f"  ({r.errors} not 200)" if r.errors else ""
        yield (
            f"  {r.page:30} {r.requests:8d} {r.p50_s * 1000:8.1f} {r.p95_s * 1000:8.1f} "
            f"{r.max_s * 1000:8.1f}  {r.target_s * 1000:>4.0f} ms  {verdict}{errors}"
        )


def report(results: Results) -> Iterator[str]:
    s = results.settings
    yield ""
    yield (
        f"database {results.database}: {s.leads:,} leads, {s.attempts:,} attempts over 30 days, "
        f"filled and rolled up in {results.fill_s:.1f} s"
    )
    yield (
        f"{s.managers} managers (think time {s.think_s:g} s, exports one round in "
        f"{EXPORT_ROUNDS}), {s.agents} agents; server-side time "
        f"per request; pages p95 <= {PAGE_TARGET_S * 1000:.0f} ms, reports and exports "
        f"<= {REPORT_TARGET_S:g} s"
    )
    yield (
        f"steady load ({results.queued.get('steady', 0)} requests at most waiting for a "
        "server thread):"
    )
    yield from _table(results.steady)
    pages_ok = all(r.passed for r in results.steady if r.target_s == PAGE_TARGET_S)
    reports_ok = all(r.passed for r in results.steady if r.target_s == REPORT_TARGET_S)
    yield f"  pages within {PAGE_TARGET_S * 1000:.0f} ms at p95: {'PASS' if pages_ok else 'FAIL'}"
    yield f"  reports within {REPORT_TARGET_S:g} s at p95: {'PASS' if reports_ok else 'FAIL'}"
    m = results.managers
    yield (
        f"  managers' requests {m.get('requests', 0)}, dashboard stream events received "
        f"{m.get('events', 0)} ({m.get('busy', 0)} busy), agents' moves {m.get('agent_moves', 0)} "
        f"({m.get('agent_move_errors', 0)} retried: no write lock in 10 s, or a raced move)"
    )
    if m.get("refused"):
        yield f"  answers other than 200: {m['refused']}"
    if results.dashboard_latencies:
        worst = max(results.dashboard_latencies)
        shown = ", ".join(
            f"{t * 1000:.0f}" if t != math.inf else f"more than {LATENCY_GIVE_UP_S * 1000}"
            for t in results.dashboard_latencies
        )
        verdict = "pass" if worst <= DASHBOARD_TARGET_S else "FAIL"
        yield (
            f"dashboard in Chromium showed a database change after {shown} ms "
            f"(target {DASHBOARD_TARGET_S * 1000:.0f} ms): {verdict}"
        )
    if results.upload:
        u = results.upload
        values = u["bar_values"]
        moved = len([v for v in values if 0 < v < s.csv_rows]) >= 2
        yield (
            f"upload of {s.csv_rows:,} rows through Chromium: file sent and previewed in "
            f"{u['upload_s']:.1f} s, import {u['status']} in {u['import_s']:.1f} s "
            f"({u.get('imported', '?')} leads imported)"
        )
        yield (
            f"  progress bar: {u['bar_samples']} looks, {len(values)} distinct values "
            f"({', '.join(f'{v:,}' for v in values[:3])}{' ...' if len(values) > 3 else ''}): "
            f"{'moved' if moved else 'did NOT move'}"
        )
        for phase, rows, queued in (
            ("while the file was sent and previewed", results.during_upload, "upload"),
            ("during the import", results.during_import, "import"),
        ):
            yield f"{phase} ({results.queued.get(queued, 0)} at most waiting for a thread):"
            yield from _table(rows)
            ok = all(r.passed for r in rows if r.target_s == PAGE_TARGET_S)
            yield f"  pages within {PAGE_TARGET_S * 1000:.0f} ms at p95 {phase}: " + (
                "PASS" if ok else "FAIL"
            )
    for failure in results.failures:
        yield f"FAILED: {failure}"
    yield f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
