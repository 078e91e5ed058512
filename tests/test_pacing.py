"""The pure pacers: limits that must hold for every view."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dialer.pacing import AgentView, PacingView, make_pacer


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
