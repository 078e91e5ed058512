"""The gate against the rules of ARCHITECTURE §5, each restated here independently."""

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from campaigns.compliance import (
    TICK,
    AnswerLog,
    CampaignRules,
    DialHistory,
    LeadFacts,
    capped_abandon_rate,
    may_dial,
    next_dial_time,
    next_window_start,
    not_before,
)

UTC = dt.UTC
ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Puerto_Rico",
    "Europe/London",
    "Europe/Paris",
    "Europe/Dublin",
    "Australia/Sydney",
    "Asia/Kolkata",
]
# Instants where clocks jump: US and EU spring-forward and fall-back, 2025–2027.
TRANSITIONS = [
    dt.datetime(2025, 3, 9, 7, tzinfo=UTC),
    dt.datetime(2025, 11, 2, 6, tzinfo=UTC),
    dt.datetime(2026, 3, 8, 7, tzinfo=UTC),
    dt.datetime(2026, 11, 1, 6, tzinfo=UTC),
    dt.datetime(2027, 3, 14, 7, tzinfo=UTC),
    dt.datetime(2027, 11, 7, 6, tzinfo=UTC),
    dt.datetime(2025, 3, 30, 1, tzinfo=UTC),
    dt.datetime(2025, 10, 26, 1, tzinfo=UTC),
    dt.datetime(2026, 3, 29, 1, tzinfo=UTC),
    dt.datetime(2026, 10, 25, 1, tzinfo=UTC),
]
KINDS = ["predictive", "progressive", "callback", "preview", "manual"]
MINUTE = dt.timedelta(minutes=1)


@st.composite
def instants(draw: st.DrawFn) -> dt.datetime:
    near_transition = st.builds(
        lambda base, minutes: base + minutes * MINUTE,
        st.sampled_from(TRANSITIONS),
        st.integers(-36 * 60, 36 * 60),
    )
    anywhere = st.datetimes(
        min_value=dt.datetime(2025, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
        max_value=dt.datetime(2028, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    )
    # Afternoon UTC is daytime across the Americas and evening in Europe: where rules bite.
    us_daytime = st.builds(
        lambda day, minutes: (
            dt.datetime(2025, 1, 1, 13, tzinfo=UTC) + day * 24 * 60 * MINUTE + minutes * MINUTE
        ),
        st.integers(0, 3 * 365),
        st.integers(0, 10 * 60),
    )
    return draw(st.one_of(near_transition, anywhere, us_daytime, us_daytime))


def times_before(now: dt.datetime, max_days: float) -> st.SearchStrategy[tuple[dt.datetime, ...]]:
    offsets = st.integers(0, int(max_days * 24 * 60))
    return st.lists(offsets, max_size=10).map(
        lambda minutes: tuple(now - m * MINUTE for m in minutes)
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[LeadFacts, CampaignRules, dt.datetime, DialHistory, str]:
    """Mostly dialable cases, each rule's trigger drawn rarely, so many cases reach `allowed`."""
    now = draw(instants())

    def rarely(strategy: st.SearchStrategy, usual: object) -> object:
        # One draw in eight breaks the usual; hypothesis shrinks towards 0, i.e. the usual.
        return draw(strategy) if draw(st.integers(0, 7)) == 7 else usual

    lead = LeadFacts(
        phone_e164="+12125550100",
        phone_type=draw(st.sampled_from(["fixed_line", "mobile", "fixed_line_or_mobile", "voip"])),
        time_zones=rarely(
            st.just(()), tuple(draw(st.lists(st.sampled_from(ZONES), min_size=1, max_size=2)))
        ),
        state=draw(st.sampled_from([None, "NY", "FL", "OK", "TX"])),
        status=draw(st.sampled_from(["new", "recycled", "callback", "claimed"]))
        if draw(st.booleans())
        else rarely(st.sampled_from(["done", "dnc", "invalid"]), "new"),
        attempts=rarely(st.integers(0, 10), draw(st.integers(0, 2))),
        next_dial_at=rarely(st.builds(lambda m: now + m * MINUTE, st.integers(-600, 600)), None),
        consent_automated=rarely(st.just(False), True),
    )
    start_hour = draw(st.sampled_from([0, 0, 0, 7, 8, 9, 12]))
    campaign = CampaignRules(
        kind=draw(st.sampled_from(["telemarketing", "collections", "survey", "appointment"])),
        calling_days=rarely(st.frozensets(st.integers(0, 6), min_size=1), frozenset(range(7))),
        calling_start=dt.time(start_hour, draw(st.sampled_from([0, 30]))),
        calling_end=dt.time(draw(st.integers(start_hour + 1, 23)), draw(st.sampled_from([0, 30]))),
        holidays=rarely(
            st.frozensets(
                st.builds(lambda d: now.date() + dt.timedelta(days=d), st.integers(-1, 1))
            ),
            frozenset(),
        ),
        max_attempts=draw(st.integers(1, 10)),
        abandon_target=draw(st.sampled_from([0.01, 0.02, 0.03])),
        uk_mode=draw(st.booleans()),
    )
    answers = draw(st.integers(0, 500))
    history = DialHistory(
        on_dnc=rarely(st.just(True), False),
        number_dials=draw(times_before(now, 2)),
        debt_dials=draw(times_before(now, 9)),
        last_debt_conversation=draw(st.none() | times_before(now, 10).map(latest)),
        last_abandon=draw(st.none() | times_before(now, 4).map(latest)),
        window_live_answers=answers,
        window_abandons=draw(st.integers(0, answers)),
    )
    return lead, campaign, now, history, draw(st.sampled_from(KINDS))


def latest(instants: tuple[dt.datetime, ...]) -> dt.datetime | None:
    return max(instants, default=None)


def local_minutes(now: dt.datetime, zone: str) -> tuple[dt.date, int, int]:
    """Local date, minutes since midnight and ISO weekday, computed from the epoch."""
    local = dt.datetime.fromtimestamp(now.timestamp(), ZoneInfo(zone))
    return local.date(), local.hour * 60 + local.minute, local.isoweekday()


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_no_allowed_dial_breaks_a_rule(case) -> None:  # type: ignore[no-untyped-def]
    lead, campaign, now, history, kind = case
    verdict = may_dial(lead, campaign, now, history, kind)
    event("allowed" if verdict.allowed else f"refused: {verdict.reason}")
    if not verdict.allowed:
        return

    assert lead.status in {"new", "recycled", "callback", "claimed"}
    assert lead.attempts < campaign.max_attempts
    assert lead.next_dial_at is None or lead.next_dial_at <= now
    assert not history.on_dnc
    if kind in {"predictive", "progressive", "callback"}:
        assert lead.phone_type not in {"mobile", "fixed_line_or_mobile"} or lead.consent_automated

    assert lead.time_zones, "a number of unknown zone can never be shown to be in hours"
    strict = lead.state in {"FL", "OK"}
    latest = (20 if strict else 21) * 60
    for zone in lead.time_zones:
        day, minutes, isoweekday = local_minutes(now, zone)
        assert 8 * 60 <= minutes < latest, (zone, minutes)
        start = campaign.calling_start.hour * 60 + campaign.calling_start.minute
        end = campaign.calling_end.hour * 60 + campaign.calling_end.minute
        assert start <= minutes < end
        assert isoweekday - 1 in campaign.calling_days
        assert day not in campaign.holidays

    day_ago = now - dt.timedelta(hours=24)
    if strict:
        assert sum(day_ago <= t <= now for t in history.number_dials) + 1 <= 3

    if campaign.kind == "collections":
        week = dt.timedelta(days=7)
        # 12 CFR 1006.14: at most 7 calls in any 7 consecutive (local calendar) days ...
        for zone in lead.time_zones:
            today = local_minutes(now, zone)[0]
            same_week = [
                t
                for t in history.debt_dials
                if today - dt.timedelta(days=6) <= local_minutes(t, zone)[0] <= today
            ]
            assert len(same_week) + 1 <= 7
        # ... and none on the conversation's day or the 6 days after it.
        if history.last_debt_conversation is not None:
            for zone in lead.time_zones:
                talked = local_minutes(history.last_debt_conversation, zone)[0]
                assert local_minutes(now, zone)[0] >= talked + week

    if campaign.uk_mode and history.last_abandon is not None:
        assert now - history.last_abandon >= dt.timedelta(hours=72)

    if kind == "predictive" and history.window_live_answers:
        assert history.window_abandons / history.window_live_answers < campaign.abandon_target


@settings(max_examples=2000, deadline=None)
@given(instants(), st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True))
def test_clean_lead_is_allowed_exactly_when_every_zone_is_in_hours(
    now: dt.datetime, zones: list[str]
) -> None:
    lead = LeadFacts("+12125550100", "fixed_line", tuple(zones))
    verdict = may_dial(lead, CampaignRules(), now, DialHistory())
    in_hours = all(8 * 60 <= local_minutes(now, z)[1] < 21 * 60 for z in zones)
    assert verdict.allowed == in_hours, verdict.detail
    if not in_hours:
        assert verdict.reason == "outside_calling_hours"


NY = ("America/New_York",)
NOON_NY = dt.datetime(2026, 6, 10, 16, tzinfo=UTC)  # a Wednesday, 12:00 EDT


def verdict_for(
    lead: LeadFacts | None = None,
    campaign: CampaignRules | None = None,
    now: dt.datetime = NOON_NY,
    history: DialHistory | None = None,
    kind: str = "predictive",
):  # type: ignore[no-untyped-def]
    return may_dial(
        lead or LeadFacts("+12125550100", "fixed_line", NY),
        campaign or CampaignRules(),
        now,
        history or DialHistory(),
        kind,  # type: ignore[arg-type]
    )


def test_spring_forward_morning_follows_the_local_clock() -> None:
    # 2026-03-08: New York moves to EDT at 07:00 UTC. 12:30 UTC is 08:30 EDT, legal;
    # the same UTC instant a day before is 07:30 EST, too early.
    assert verdict_for(now=dt.datetime(2026, 3, 8, 12, 30, tzinfo=UTC)).allowed
    early = verdict_for(now=dt.datetime(2026, 3, 7, 12, 30, tzinfo=UTC))
    assert early.reason == "outside_calling_hours" and "07:30" in early.detail


def test_a_number_in_two_zones_must_be_in_hours_in_both() -> None:
    lead = LeadFacts("+12125550100", "fixed_line", ("America/New_York", "America/Los_Angeles"))
    # 08:30 in New York is 05:30 in Los Angeles.
    verdict = verdict_for(lead, now=dt.datetime(2026, 6, 10, 12, 30, tzinfo=UTC))
    assert verdict.reason == "outside_calling_hours" and "Los_Angeles" in verdict.detail


def test_florida_stops_at_eight_and_after_three_calls_a_day() -> None:
    lead = LeadFacts("+13055550100", "fixed_line", NY, state="FL")
    assert verdict_for(lead, now=dt.datetime(2026, 6, 11, 0, 30, tzinfo=UTC)).reason == (
        "outside_calling_hours"
    )
    three = DialHistory(number_dials=tuple(NOON_NY - dt.timedelta(hours=h) for h in (1, 5, 23)))
    assert verdict_for(lead, history=three).reason == "state_daily_cap"
    older = DialHistory(number_dials=tuple(NOON_NY - dt.timedelta(hours=h) for h in (1, 5, 25)))
    assert verdict_for(lead, history=older).allowed


def test_regulation_f_caps_collections_calls_per_debt() -> None:
    collections = CampaignRules(kind="collections")
    seven = DialHistory(debt_dials=tuple(NOON_NY - dt.timedelta(hours=20 * i) for i in range(7)))
    assert verdict_for(campaign=collections, history=seven).reason == "reg_f_weekly_cap"
    talked = DialHistory(last_debt_conversation=NOON_NY - dt.timedelta(days=6, hours=23))
    assert verdict_for(campaign=collections, history=talked).reason == "reg_f_after_conversation"
    assert verdict_for(campaign=CampaignRules(), history=seven).allowed


def test_mobile_without_consent_is_for_preview_and_manual_only() -> None:
    mobile = LeadFacts("+12125550100", "mobile", NY)
    assert verdict_for(mobile).reason == "mobile_needs_consent"
    assert verdict_for(mobile, kind="preview").allowed
    consented = LeadFacts("+12125550100", "mobile", NY, consent_automated=True)
    assert verdict_for(consented).allowed


def test_abandon_cap_stops_predictive_but_not_progressive() -> None:
    over = DialHistory(window_live_answers=100, window_abandons=3)
    assert verdict_for(history=over).reason == "abandon_cap"
    assert verdict_for(history=over, kind="progressive").allowed


def test_uk_mode_keeps_72_hours_after_an_abandon() -> None:
    uk = CampaignRules(uk_mode=True)
    recent = DialHistory(last_abandon=NOON_NY - dt.timedelta(hours=71))
    assert verdict_for(campaign=uk, history=recent).reason == "uk_abandon_quiet"
    assert verdict_for(history=recent).allowed


def test_dnc_unknown_zone_attempts_and_due_time_refuse() -> None:
    assert verdict_for(history=DialHistory(on_dnc=True)).reason == "dnc"
    assert verdict_for(LeadFacts("+12125550100", "fixed_line", ())).reason == "unknown_time_zone"
    assert verdict_for(LeadFacts("+1", "fixed_line", NY, attempts=6)).reason == "max_attempts"
    later = LeadFacts("+1", "fixed_line", NY, next_dial_at=NOON_NY + MINUTE)
    assert verdict_for(later).reason == "not_due"


# -- When a refused lead passes: next_window_start, next_dial_time, AnswerLog ------------------


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.lists(st.integers(0, 14 * 24 * 60), max_size=40))
def test_next_dial_time_is_the_first_instant_the_gate_allows(case, probes) -> None:  # type: ignore[no-untyped-def]
    lead, campaign, now, history, kind = case
    at = next_dial_time(lead, campaign, now, history, kind)
    verdict = may_dial(lead, campaign, now, history, kind)
    event("now" if at == now else "later" if at else f"never: {verdict.reason}")
    if at is None:
        for minutes in probes:
            assert not may_dial(lead, campaign, now + minutes * MINUTE, history, kind)
        return
    assert now <= not_before(lead, campaign, now, history) <= at
    assert may_dial(lead, campaign, at, history, kind).allowed
    assert (at == now) == verdict.allowed
    if at > now:
        assert not may_dial(lead, campaign, at - TICK, history, kind).allowed
    for minutes in probes:
        probe = now + minutes * MINUTE
        if probe < at:
            assert not may_dial(lead, campaign, probe, history, kind).allowed, probe


@settings(max_examples=500, deadline=None)
@given(
    instants(),
    st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True),
    st.sampled_from([None, "FL", "NY"]),
    st.frozensets(st.integers(0, 6), min_size=1),
    st.sampled_from([(0, 23), (9, 17), (8, 21), (12, 13), (20, 23)]),
    st.lists(st.integers(0, 20 * 24 * 60), max_size=30),
)
def test_next_window_start_is_the_first_instant_inside_every_zone_window(  # type: ignore[no-untyped-def]
    now, zones, state, days, hours, probes
) -> None:
    lead = LeadFacts("+12125550100", "fixed_line", tuple(zones), state=state)
    campaign = CampaignRules(
        calling_days=days,
        calling_start=dt.time(hours[0]),
        calling_end=dt.time(hours[1]),
        holidays=frozenset({now.date() + dt.timedelta(days=1)}),
    )
    opens = next_window_start(lead, campaign, now)

    def in_hours(at: dt.datetime) -> bool:
        return may_dial(lead, campaign, at, DialHistory(), "manual").allowed

    if opens is None:
        event("never")
        assert not any(in_hours(now + m * MINUTE) for m in probes)
        return
    event("now" if opens == now else "later")
    assert opens >= now and in_hours(opens)
    if opens > now:
        assert not in_hours(opens - TICK)
    assert not any(in_hours(p) for p in (now + m * MINUTE for m in probes) if p < opens)


def test_next_window_opens_at_the_local_start_of_the_zone_that_opens_last() -> None:
    # 12:30 UTC on a Wednesday: 08:30 in New York, 05:30 in Los Angeles.
    both = LeadFacts("+1", "fixed_line", ("America/New_York", "America/Los_Angeles"))
    now = dt.datetime(2026, 6, 10, 12, 30, tzinfo=UTC)
    assert next_window_start(both, CampaignRules(), now) == dt.datetime(2026, 6, 10, 15, tzinfo=UTC)
    # Saturday night in New York, the campaign calls Monday to Friday from 09:00.
    weekdays = CampaignRules(calling_days=frozenset(range(5)), calling_start=dt.time(9))
    saturday = dt.datetime(2026, 6, 14, 2, tzinfo=UTC)
    ny = LeadFacts("+1", "fixed_line", NY)
    assert next_window_start(ny, weekdays, saturday) == dt.datetime(2026, 6, 15, 13, tzinfo=UTC)
    # Florida closes at 20:00, and the unknown zone never opens.
    florida = LeadFacts("+1", "fixed_line", NY, state="FL")
    evening = dt.datetime(2026, 6, 11, 0, 30, tzinfo=UTC)  # 20:30 EDT
    assert next_window_start(florida, CampaignRules(), evening) == dt.datetime(
        2026, 6, 11, 12, tzinfo=UTC
    )
    assert next_window_start(LeadFacts("+1", "fixed_line", ()), CampaignRules(), now) is None


def test_next_dial_time_waits_for_each_rule_that_passes_with_time() -> None:
    ny = LeadFacts("+12125550100", "fixed_line", NY)
    # The first of three calls in 24 h to a Florida number was at 13:00 UTC: once it is more
    # than 24 h old (the gate counts the call made exactly 24 h before).
    florida = replace(ny, state="FL")
    three = DialHistory(number_dials=tuple(NOON_NY - dt.timedelta(hours=h) for h in (1, 3, 2)))
    assert next_dial_time(florida, CampaignRules(), NOON_NY, three) == (
        NOON_NY - dt.timedelta(hours=3) + dt.timedelta(hours=24) + TICK
    )
    # Had it been at 10:00 UTC, 06:00 in New York, the window opens later, at 08:00 there.
    early = DialHistory(number_dials=tuple(NOON_NY - dt.timedelta(hours=h) for h in (1, 6, 2)))
    assert next_dial_time(florida, CampaignRules(), NOON_NY, early) == dt.datetime(
        2026, 6, 11, 12, tzinfo=UTC
    )
    # A conversation about the debt 2 days ago: 5 days from now, in New York's window.
    talked = DialHistory(last_debt_conversation=NOON_NY - dt.timedelta(days=2))
    collections = CampaignRules(kind="collections")
    assert next_dial_time(ny, collections, NOON_NY, talked) == NOON_NY + dt.timedelta(days=5)
    # A recycle delay ending at 02:00 in New York waits for 08:00 there.
    late = replace(ny, next_dial_at=dt.datetime(2026, 6, 11, 6, tzinfo=UTC))
    assert next_dial_time(late, CampaignRules(), NOON_NY, DialHistory()) == dt.datetime(
        2026, 6, 11, 12, tzinfo=UTC
    )
    # Lasting reasons never pass, however long one waits.
    assert next_dial_time(ny, CampaignRules(), NOON_NY, DialHistory(on_dnc=True)) is None
    maxed = replace(ny, attempts=6)
    assert next_dial_time(maxed, CampaignRules(), NOON_NY, DialHistory()) is None
    mobile = replace(ny, phone_type="mobile")
    assert next_dial_time(mobile, CampaignRules(), NOON_NY, DialHistory()) is None
    assert next_dial_time(mobile, CampaignRules(), NOON_NY, DialHistory(), "preview") == NOON_NY


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 30 * 24 * 60), st.booleans()), max_size=40),
    st.sampled_from([0.01, 0.03, 0.2]),
    st.integers(0, 40 * 24 * 60),
)
def test_answer_log_says_when_the_rate_first_falls_under_the_target(  # type: ignore[no-untyped-def]
    answers, target, later
) -> None:
    log = AnswerLog(tuple((NOON_NY - m * MINUTE, abandoned) for m, abandoned in answers))
    after = NOON_NY + later * MINUTE

    def capped(at: dt.datetime) -> bool:
        window = [a for m, a in answers if NOON_NY - m * MINUTE > at - dt.timedelta(days=30)]
        assert log.counts(at) == (len(window), sum(window))
        return capped_abandon_rate(len(window), sum(window), target) is not None

    clear = log.clears_at(after, target)
    assert clear >= after and not capped(clear)
    # The rate changes only when an answer leaves the window: check each instant it could.
    leaving = [NOON_NY - m * MINUTE + dt.timedelta(days=30) for m, _ in answers]
    for at in (after, *leaving):
        if after <= at < clear:
            assert capped(at)
    if clear > after:
        assert capped(clear - TICK)


def test_abandon_cap_lifts_when_the_rate_falls_and_the_window_is_open() -> None:
    # Three abandons among 50 live answers (6%) 29 days ago, 50 clean answers 10 days ago:
    # the old ones leave at 16:00 UTC tomorrow, at noon in New York.
    old = tuple((NOON_NY - dt.timedelta(days=29), i < 3) for i in range(50))
    recent = tuple((NOON_NY - dt.timedelta(days=10), False) for _ in range(50))
    log = AnswerLog(old + recent)
    live, abandons = log.counts(NOON_NY)
    history = DialHistory(window_live_answers=live, window_abandons=abandons)
    ny = LeadFacts("+12125550100", "fixed_line", NY)
    assert may_dial(ny, CampaignRules(), NOON_NY, history).reason == "abandon_cap"
    assert next_dial_time(ny, CampaignRules(), NOON_NY, history) is None
    assert next_dial_time(ny, CampaignRules(), NOON_NY, history, answers=log) == (
        NOON_NY + dt.timedelta(days=1)
    )
    assert next_dial_time(ny, CampaignRules(), NOON_NY, history, "progressive") == NOON_NY
