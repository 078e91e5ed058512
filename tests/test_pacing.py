"""The pure pacers: limits that must hold for every view."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.pacing import (
    Abandoned,
    AgentView,
    Connected,
    PacingView,
    PredictivePacer,
    PredictiveSettings,
    Resolved,
    TalkEnded,
    WrapEnded,
    make_pacer,
)
from dialer.pacing.predictive import Durations, OutcomeModel, free_within


@st.composite
def views(draw: st.DrawFn) -> PacingView:
    agents = tuple(
        AgentView(draw(st.sampled_from(["idle", "talk", "wrap"])), draw(st.floats(0, 600)))
        for _ in range(draw(st.integers(0, 40)))
    )
    max_lines = draw(st.integers(0, 160))
    dialing = tuple(draw(st.lists(st.floats(0, 40), max_size=max_lines)))
    return PacingView(draw(st.floats(0, 1e6)), agents, dialing, draw(st.integers(0, 5)), max_lines)


MODES = [("preview", {}), ("progressive", {}), ("power", {"ratio": 2.5})]


@pytest.mark.parametrize(("mode", "config"), MODES)
@settings(max_examples=500, deadline=None)
@given(view=views())
def test_never_beyond_the_free_lines_and_never_without_idle_agents(
    mode: str, config: dict[str, float], view: PacingView
) -> None:
    launch = make_pacer(mode, **config).decide(view)
    assert 0 <= launch <= max(0, view.max_lines - len(view.dialing))
    if view.idle == 0:
        assert launch == 0


@pytest.mark.parametrize(("mode", "config"), MODES)
@settings(max_examples=500, deadline=None)
@given(view=views())
def test_one_more_idle_agent_never_means_fewer_calls(
    mode: str, config: dict[str, float], view: PacingView
) -> None:
    pacer = make_pacer(mode, **config)
    more = PacingView(
        view.now,
        (*view.agents, AgentView("idle", 0.0)),
        view.dialing,
        view.waiting,
        view.max_lines,
    )
    assert pacer.decide(more) >= pacer.decide(view)


def test_progressive_keeps_one_attempt_per_idle_agent() -> None:
    idle = tuple(AgentView("idle", 1.0) for _ in range(3))
    pacer = make_pacer("progressive")
    assert pacer.decide(PacingView(0.0, idle, (), 0, 100)) == 3
    assert pacer.decide(PacingView(0.0, idle, (4.0, 2.0), 0, 100)) == 1
    assert pacer.decide(PacingView(0.0, idle, (4.0,), 2, 100)) == 0
    assert make_pacer("power", ratio=2).decide(PacingView(0.0, idle, (), 0, 4)) == 4
    assert make_pacer("preview").decide(PacingView(0.0, idle, (), 0, 100)) == 0


def test_unknown_modes_and_ratios_are_refused() -> None:
    with pytest.raises(ValueError, match="not one of"):
        make_pacer("turbo")
    with pytest.raises(ValueError, match="between 1 and 10"):
        make_pacer("power", ratio=0.5)


def warmed(pacer: PredictivePacer | None = None, live_answers: int = 200) -> PredictivePacer:
    """A predictive pacer that has seen a steady campaign: 25% persons after about 11 s, talk
    about 120 s, wrap-up about 20 s, and live answers without an abandon."""
    pacer = pacer or PredictivePacer()
    for i in range(800):
        kind = ("human", "machine", "no_answer", "busy")[i % 4]
        after = {"human": 9.0 + i % 5, "machine": 18.0 + i % 4, "no_answer": 25.0, "busy": 4.0}
        pacer.observe(Resolved(kind, after[kind]))
    for i in range(200):
        pacer.observe(TalkEnded(60.0 + (i * 37) % 120))
        pacer.observe(WrapEnded(10.0 + i % 20))
    for _ in range(live_answers):
        pacer.observe(Connected(0.5))
    return pacer


@settings(max_examples=300, deadline=None)
@given(view=views())
def test_predictive_keeps_the_limits_and_more_idle_agents_never_mean_fewer_calls(
    view: PacingView,
) -> None:
    pacer = warmed()
    launch = pacer.decide(view)
    assert 0 <= launch <= max(0, view.max_lines - len(view.dialing))
    if not view.agents:
        assert launch == 0
    # Never fewer than progressive: one attempt per idle agent cannot abandon.
    assert launch >= min(view.free_lines, max(0, view.idle - len(view.dialing) - view.waiting))
    more = PacingView(
        view.now, (*view.agents, AgentView("idle", 0.0)), view.dialing, view.waiting, view.max_lines
    )
    # A new pacer: the calls a decision launches make the one deciding next more cautious.
    assert warmed().decide(more) >= launch


def test_predictive_dials_ahead_of_agents_about_to_free_and_not_of_fresh_talkers() -> None:
    pacer = warmed()
    wrapping = tuple(AgentView("wrap", 25.0) for _ in range(10))
    talking = tuple(AgentView("talk", 1.0) for _ in range(10))
    about_to_free = pacer.decide(PacingView(0.0, wrapping, (), 0, 40))
    assert about_to_free > 0
    assert warmed().decide(PacingView(0.0, talking, (), 0, 40)) < about_to_free


def test_cold_start_is_progressive() -> None:
    idle = tuple(AgentView("idle", 0.0) for _ in range(5))
    assert make_pacer("predictive").decide(PacingView(0.0, idle, (), 0, 20)) == 5


def test_abandons_lower_the_threshold_and_a_bad_window_makes_it_cautious() -> None:
    pacer = warmed()
    before = pacer.risk_threshold
    for _ in range(3):
        pacer.observe(Abandoned())
    assert pacer.risk_threshold < before
    bad_month = warmed(
        PredictivePacer(PredictiveSettings(window_live_answers=1000, window_abandons=60))
    )
    assert bad_month.risk_threshold == bad_month.settings.min_risk
    wrapping = PacingView(0.0, tuple(AgentView("wrap", 15.0) for _ in range(10)), (), 0, 40)
    assert bad_month.decide(wrapping) < warmed().decide(wrapping)


def test_the_threshold_falls_faster_past_the_cushion_than_it_rises_short_of_it() -> None:
    """Near the gate's cap a burst of abandons sends the campaign to progressive for hours:
    each abandon past the cushion weighs more than one abandon spared."""

    def threshold(abandons: float) -> float:
        settings = PredictiveSettings(window_live_answers=1000, window_abandons=abandons)
        return PredictivePacer(settings).risk_threshold

    s = PredictiveSettings()
    allowed = (s.target_abandon - s.amd_false_machine) * 1000
    balanced = allowed - s.cushion - s.confidence * (s.amd_false_machine * 1000) ** 0.5
    bolder = threshold(balanced - 4) / threshold(balanced)
    more_careful = threshold(balanced) / threshold(balanced + 4)
    assert more_careful > 2 * bolder > 2


def test_a_good_month_makes_it_bolder_by_a_bounded_factor() -> None:
    cold = warmed()
    good = warmed(
        PredictivePacer(PredictiveSettings(window_live_answers=50_000, window_abandons=0))
    )
    assert cold.risk_threshold < good.risk_threshold <= 2 * 2.72**2 * cold.risk_threshold


def test_the_level_holds_the_predicted_abandons_at_the_rate_goal() -> None:
    """Launches the model predicts to abandon beyond the goal make the pacer cautious, fewer
    bolder; abandons seen beyond the predictions make each prediction weigh more."""
    goal = PredictiveSettings().rate_goal

    def level_after(
        predicted_per_answer: float, abandoned_every: int = 0, prior: float = 1e9
    ) -> float:
        # A prior that large holds the calibration at 1 whatever the abandons seen.
        pacer = PredictivePacer(PredictiveSettings(calibration_prior=prior))
        for i in range(300):
            abandoned = abandoned_every and i % abandoned_every == 0
            pacer.observe(Abandoned() if abandoned else Connected(0.5))
            pacer._learn_predicted(predicted_per_answer)
        return pacer.risk_level

    start = PredictivePacer().risk_level
    assert level_after(2 * goal) < start < level_after(goal / 2)
    assert abs(level_after(goal) - start) < 1e-6
    assert level_after(goal, abandoned_every=15, prior=10) < level_after(goal, prior=10)


def test_outcome_shares_follow_a_drifting_answer_rate() -> None:
    model = OutcomeModel(half_life=300)
    for i in range(2000):
        model.add("human" if i % 10 < 3 else "no_answer", 10.0)
    for i in range(2000):
        model.add("human" if i % 10 < 1 else "no_answer", 10.0)
    assert abs(model.share("human") - 0.1) < 0.01


def test_an_attempt_ringing_past_every_person_pickup_is_no_longer_a_person() -> None:
    model = OutcomeModel(half_life=300)
    for i in range(100):
        model.add("human", 8.0 + i % 6)
        model.add("no_answer", 25.0)
    ringing, new_call = model.person_within(model.horizons())
    assert ringing[:, int(15.0 / 0.5)].max() == 0.0
    assert 0.0 < new_call.max() <= 0.5


def test_agents_deep_in_wrap_up_are_likelier_free_than_fresh_talkers() -> None:
    talk, wrap = Durations(), Durations()
    for i in range(100):
        talk.add(60.0 + i)
        wrap.add(10.0 + i % 10)
    from_talk, from_wrap = free_within(talk, wrap, np.array([30.0]))
    assert from_wrap[0, int(15.0 / 0.5)] > 0.9
    assert from_talk[0, 0] == 0.0
    assert from_talk[0, int(150.0 / 0.5)] > from_talk[0, int(30.0 / 0.5)]


def test_predictive_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown predictive settings: turbo"):
        make_pacer("predictive", turbo=1.0)
    with pytest.raises(ValueError, match="more abandons than live answers"):
        PredictiveSettings(window_live_answers=1, window_abandons=2)
