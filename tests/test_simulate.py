"""The campaign simulator: deterministic, and faithful to the model's bounds."""

import dataclasses

from dialer import simulate as simulation
from dialer.connect import CONNECT_WITHIN_S, ConnectSettings
from dialer.pacing import PacingView, make_pacer
from dialer.simulate import simulate, workloads


def short(name: str, hours: float = 1.0):  # type: ignore[no-untyped-def]
    workload = next(w for w in workloads() if w.name.startswith(name))
    return dataclasses.replace(workload, hours=hours)


def test_same_seed_same_numbers_other_seed_other_numbers() -> None:
    w1 = short("W1")
    first = simulate(w1, make_pacer("power", ratio=2), seed=3)
    again = simulate(w1, make_pacer("power", ratio=2), seed=3)
    other = simulate(w1, make_pacer("power", ratio=2), seed=4)
    assert (first.dials, first.connects, first.talk_time) == (
        again.dials,
        again.connects,
        again.talk_time,
    )
    assert (first.dials, first.talk_time) != (other.dials, other.talk_time)


class _Dials:
    """Launches `total` calls, `per_decision` at a time, then none."""

    def __init__(self, total: int, per_decision: int) -> None:
        self.left, self.per_decision = total, per_decision

    def decide(self, view: PacingView) -> int:
        count = min(self.left, self.per_decision, view.free_lines)
        self.left -= count
        return count

    def observe(self, event: object) -> None:
        pass


def test_every_pacer_dials_the_same_leads_in_the_same_order() -> None:
    # Modes are compared on the same campaign: the n-th lead answers (or not) alike whenever
    # and however fast it is dialled.
    w2 = short("W2", hours=0.5)
    at_once = simulate(w2, _Dials(40, 40), seed=5)
    one_by_one = simulate(w2, _Dials(40, 1), seed=5)
    other_seed = simulate(w2, _Dials(40, 40), seed=6)
    assert at_once.dials == one_by_one.dials == 40
    assert at_once.live_answers == one_by_one.live_answers
    assert at_once.live_answers != other_seed.live_answers


class _Greedy:
    """Asks for every free line; notes the calls in flight at each decision."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, int]] = []

    def decide(self, view: PacingView) -> int:
        self.seen.append((view.now, len(view.dialing)))
        return view.free_lines

    def observe(self, event: object) -> None:
        pass


def test_a_trunks_calls_per_second_spreads_a_cold_starts_burst() -> None:
    # As the node: launches within the trunk's rate (a call more for a fraction carried).
    w2 = short("W2", hours=0.01)
    unlimited, limited = _Greedy(), _Greedy()
    simulate(w2, unlimited, seed=1)
    simulate(dataclasses.replace(w2, calls_per_second=5.0), limited, seed=1)
    assert max(dialing for now, dialing in unlimited.seen if now <= 1) >= 30
    early = [(now, dialing) for now, dialing in limited.seen if now < 4]
    assert early and all(dialing <= 6 + 5 * now + 1e-9 for now, dialing in early)
    assert max(dialing for _, dialing in early) >= 15


def test_utilisation_stays_under_the_talk_and_wrap_bound() -> None:
    for name in ("W1", "W4"):
        workload = short(name)
        result = simulate(workload, make_pacer("power", ratio=4), seed=0)
        assert 0 < result.utilisation <= workload.upper_bound


def test_preview_places_no_call_and_progressive_abandons_only_amd_errors() -> None:
    w3 = short("W3", hours=2)
    assert simulate(w3, make_pacer("preview"), seed=0).dials == 0
    progressive = simulate(w3, make_pacer("progressive"), seed=0)
    # Every human answer finds its reserved agent; only AMD's false machines (0.5%) are lost.
    assert progressive.abandon_rate < 0.02
    assert progressive.connects > 0


def test_drifting_answer_rate_is_interpolated() -> None:
    w6 = short("W6")
    assert w6.live_at(0) == 0.30 and w6.live_at(1) == 0.26 and w6.live_at(4.5) == 0.12


def test_predictive_beats_progressive_under_the_cap_on_small_and_single_agent_teams() -> None:
    import dataclasses as dc

    from dialer.simulate import clairvoyant

    for agents in (1, 5):
        team = dc.replace(short("W1", hours=3), agents=agents)
        predictive = simulate(team, make_pacer("predictive"), seed=1)
        progressive = simulate(team, make_pacer("progressive"), seed=1)
        assert predictive.abandon_rate <= 0.03
        # A lone agent leaves no room to dial ahead safely: predictive is then progressive.
        assert progressive.utilisation < predictive.utilisation or agents == 1
        assert progressive.utilisation <= predictive.utilisation
        assert predictive.utilisation < clairvoyant(team, seed=1).utilisation


def test_forecast_ranks_the_modes_on_the_campaign_figures() -> None:
    from dialer.forecast import CampaignStats, forecast

    rows = {row["mode"]: row for row in forecast(CampaignStats.typical(10), hours=1, seeds=(0,))}
    assert rows["power 3"]["abandon_rate"] > rows["progressive"]["abandon_rate"]
    assert rows["power 3"]["utilisation"] > rows["progressive"]["utilisation"]
    assert rows["predictive"]["utilisation"] > rows["progressive"]["utilisation"]
    assert not rows["power 3"]["compliant"]


def test_bench_pacing_prints_a_row_per_workload_and_mode_against_the_bound() -> None:
    import json

    from click.testing import CliRunner

    from dialer.cli import main

    args = ["bench", "pacing", "--seeds", "0,1", "--hours", "0.1", "--modes", "progressive"]
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [row["workload"][:2] for row in rows] == ["W1", "W2", "W3", "W4", "W5", "W6"]
    assert all(len(row["abandon_per_seed"]) == 2 and 0 < row["ratio_to_bound"] < 1 for row in rows)
    wrong = CliRunner().invoke(main, ["bench", "pacing", "--modes", "turbo"])
    assert wrong.exit_code != 0 and "'turbo' is not one of" in wrong.output


def test_the_simulated_connect_window_is_the_nodes() -> None:
    """The forecast's abandons come from the window the node gives a waiting person."""
    from dialer.node.node import AGENTS_READ_WHILE_WAITING

    assert simulation.AGENT_SEEN_AFTER == AGENTS_READ_WHILE_WAITING / 2
    window = ConnectSettings(safe_harbor_prompt="").offer_window_s
    seen = AGENTS_READ_WHILE_WAITING / 2
    assert simulation.CONNECT_DEADLINE == window - seen < CONNECT_WITHIN_S
