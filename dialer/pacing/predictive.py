"""The predictive pacer: as many calls as the campaign's abandon budget allows, no more.

The model, learned online from the protocol's events only:
- how attempts resolve: the share of each outcome (decayed, so a drifting answer rate is
  followed) and the distribution of time-to-classification per outcome, which gives each
  attempt still ringing its chance of turning into a person within a horizon;
- talk and wrap-up time distributions, which give each busy agent its chance of being free
  within a horizon given how long it has been talking or wrapping.

A candidate call is launched while the probability that, were it a person, it would find no
free agent (more persons arriving before it than agents free by then: exact sums of those
chances for small teams, a skew-corrected normal approximation for large ones) stays under a
threshold. The threshold has two parts. Its level keeps the abandons the model predicts for
the calls it launches (calibrated by the abandons seen) at a rate a little under the target,
so the pacer finds its footing from its first launches, not from its first abandons. Around
that level it follows the abandon budget of the rolling 30-day window (47 CFR 64.1200(a)(7):
3% of live answers, less a reserve for the persons AMD hangs up on unseen): it rises with
unspent budget and falls with every abandon, faster below its cushion than it rises above
it (past the cap the gate allows progressive dialing only); the budget it may draw on is
capped, so a good month is not spent in an hour, and a bad hour makes it cautious until the
budget is earned back. It never dials fewer calls than progressive would, as those cannot
abandon, and is progressive until it has seen enough calls to trust its model (a cold start).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from dialer.pacing.protocol import (
    OUTCOMES,
    Abandoned,
    Connected,
    Event,
    PacingView,
    Resolved,
    TalkEnded,
    WrapEnded,
)

STEP = 0.5  # seconds per bin of every learned table
MAX_RING = 120.0  # no attempt rings longer than this (ring timeouts are 15-60 s)


@dataclass(frozen=True)
class PredictiveSettings:
    target_abandon: float = 0.03
    # The rolling 30-day window as it stands when the pacer starts (from the database).
    window_live_answers: float = 0.0
    window_abandons: float = 0.0
    # Persons AMD wrongly hangs up on count as abandons the pacer never sees.
    amd_false_machine: float = 0.005
    # Abandons kept unspent: `cushion` plus `confidence` standard deviations of the unseen AMD
    # abandons, so the window's rate stays under the target on every day, not on average. A
    # fresh campaign's window is small: with a cushion of 1, 100 agents' first ten minutes
    # crossed the gate's cap in a third of simulated shifts and dialed progressive after.
    cushion: float = 3.0
    confidence: float = 2.5
    # Seconds an answered person may wait for an agent before the call counts as abandoned,
    # counted from the AMD verdict: the rule gives 2 s from the greeting's end, the verdict
    # comes 0.8 s after it, and the node offers an agent until 1.65 s after it
    # (`ConnectSettings.offer_window_s`), seeing one freed about 25 ms late (it reads its
    # agents every 50 ms while a person waits).
    connect_grace: float = 0.8
    # The threshold on a candidate's abandon chance is exp(level + gain x surplus). The surplus
    # is the window's unspent budget beyond the cushion, in standard deviations of the abandon
    # count and capped at `budget_cap`: a bad hour makes the pacer cautious, a good month
    # bolder by a bounded factor, never spent at once. The level holds the abandons the model
    # predicts for the calls it launches, calibrated by the abandons seen, at the rate goal
    # (the target less `goal_margin` of it and the unseen AMD abandons) per live answer: each live
    # answer lifts it by a step, each predicted abandon lowers it by step / rate goal.
    # Predictions come with every launch, so a 5-agent team finds its level in its first hour
    # instead of waiting for a handful of abandons (measured: a level driven by the abandons
    # seen sank to a threshold of .006 for two hours on W1, then overshot).
    base_risk: float = 0.02
    risk_per_abandon: float = 0.6
    # Below the cushion the threshold falls faster than it rises above it: a campaign near the
    # gate's cap is one burst from dialing progressive for hours (with both gains at 0.6, one
    # 8-hour shift of W1 in five ended at 3.11%).
    risk_per_deficit: float = 2.0
    budget_cap: float = 3.0
    min_risk: float = 0.002
    max_risk: float = 0.6
    goal_margin: float = 0.1
    level_step: float = 0.01
    # Past this many abandons expected, the step shrinks with their square root.
    step_abandons: float = 30.0
    # Abandons the calibration (seen / predicted) starts from, as if the model were exact.
    calibration_prior: float = 10.0
    # Attempts of history for the outcome shares: long enough to be stable, short enough to
    # follow an answer rate that drifts over the day.
    outcome_half_life: float = 300.0
    # Persons answered and calls ended before the model is trusted; until then: progressive.
    warmup_humans: float = 20.0
    warmup_calls: float = 10.0

    def __post_init__(self) -> None:
        if not 0.0 < self.target_abandon <= 0.2:
            raise ValueError(f"target_abandon {self.target_abandon!r} must be in (0, 0.2]")
        if self.window_live_answers < 0 or self.window_abandons < 0:
            raise ValueError("the window's starting counts cannot be negative")
        if self.window_abandons > self.window_live_answers:
            raise ValueError("the window cannot hold more abandons than live answers")
        if self.rate_goal <= 0:
            raise ValueError(
                f"target_abandon {self.target_abandon!r} leaves no abandons to plan for once"
                f" goal_margin ({self.goal_margin!r}) of it and the persons AMD hangs up on"
                f" ({self.amd_false_machine!r}) are kept"
            )

    @property
    def rate_goal(self) -> float:
        return self.target_abandon * (1.0 - self.goal_margin) - self.amd_false_machine

    @classmethod
    def from_settings(cls, settings: dict[str, float]) -> PredictiveSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"unknown predictive settings: {', '.join(unknown)}")
        return cls(**{k: float(v) for k, v in settings.items()})


class Durations:
    """The latest observed durations of one kind, as a distribution on the grid.

    Durations still running count too, as lower bounds (Kaplan-Meier): when a whole team logs
    in at once, the first calls to end are the short ones, and a distribution of finished calls
    alone would promise agents free far too soon (measured: 589 abandons in the first half hour
    of a 200-agent campaign)."""

    def __init__(self, keep: int = 1000) -> None:
        self.samples: deque[float] = deque(maxlen=keep)
        self.running: np.ndarray = np.zeros(0)
        self._steps: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, seconds: float) -> None:
        self.samples.append(max(0.0, seconds))
        self._steps = None

    def still_running(self, seconds: Sequence[float]) -> None:
        self.running = np.sort(np.asarray(seconds, dtype=float))
        self._steps = None

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def longest(self) -> float:
        running = float(self.running[-1]) if self.running.size else 0.0
        return max(max(self.samples, default=0.0), running)

    def at_risk(self, grid: np.ndarray) -> np.ndarray:
        """How many durations, finished or running, reached each x of the grid."""
        ended = np.sort(np.fromiter(self.samples, float, len(self.samples)))
        return (ended.size - np.searchsorted(ended, grid, side="left")) + (
            self.running.size - np.searchsorted(self.running, grid, side="left")
        )

    def cdf(self, grid: np.ndarray) -> np.ndarray:
        """P(duration <= x) for every x of the grid."""
        if self._steps is None:
            ended = np.sort(np.fromiter(self.samples, float, len(self.samples)))
            at_risk = (ended.size - np.arange(ended.size)) + (
                self.running.size - np.searchsorted(self.running, ended, side="left")
            )
            with np.errstate(divide="ignore"):
                survival = np.exp(np.cumsum(np.log1p(-1.0 / at_risk)))
            self._steps = (ended, survival)
        ended, survival = self._steps
        if ended.size == 0:
            return np.zeros_like(grid)
        index = np.searchsorted(ended, grid, side="right")
        return 1.0 - np.where(index > 0, survival[np.maximum(index - 1, 0)], 1.0)


class OutcomeModel:
    """Decayed outcome shares and per-outcome times to classification."""

    def __init__(self, half_life: float) -> None:
        self.decay = 0.5 ** (1.0 / half_life)
        self.weights = dict.fromkeys(OUTCOMES, 0.0)
        self.times = {outcome: Durations(500) for outcome in OUTCOMES}

    def add(self, outcome: str, after: float) -> None:
        for key in self.weights:
            self.weights[key] *= self.decay
        self.weights[outcome] = self.weights.get(outcome, 0.0) + 1.0
        self.times.setdefault(outcome, Durations(500)).add(after)

    def share(self, outcome: str) -> float:
        total = sum(self.weights.values())
        return self.weights.get(outcome, 0.0) / total if total else 0.0

    def horizons(self) -> np.ndarray:
        """When a new call's person answers: the quartiles of the time to a human verdict."""
        ordered = sorted(self.times["human"].samples)
        return np.array([ordered[int(q * (len(ordered) - 1))] for q in (0.25, 0.5, 0.75)])

    def person_within(self, horizons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For an attempt still unclassified at each age of the grid: the chance it becomes a
        person within each horizon (rows: horizons); and for a new call the same from age 0."""
        ages = np.arange(0.0, MAX_RING, STEP)
        unresolved = np.zeros_like(ages)
        for outcome, durations in self.times.items():
            if len(durations):
                unresolved += self.share(outcome) * (1.0 - durations.cdf(ages))
        person = self.times["human"]
        p_human = self.share("human")
        within = np.empty((len(horizons), ages.size))
        for row, horizon in enumerate(horizons):
            gained = p_human * (person.cdf(ages + horizon) - person.cdf(ages))
            within[row] = np.divide(
                gained, unresolved, out=np.zeros_like(ages), where=unresolved > 1e-9
            )
        return np.clip(within, 0.0, 1.0), within[:, 0].copy()


def free_within(
    talk: Durations, wrap: Durations, horizons: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Chance that an agent is free within each horizon, given seconds already spent talking
    (then it must also finish wrapping) or wrapping. Rows: horizons; columns: time in state."""
    spent = np.arange(0.0, max(talk.longest, wrap.longest) + STEP, STEP)
    talk_cdf, wrap_cdf = talk.cdf(spent), wrap.cdf(spent)
    # Beyond the last few durations the conditional chances are noise: hold the last sound one.
    talk_sound = int(np.searchsorted(-talk.at_risk(spent), -5, side="right"))
    wrap_sound = int(np.searchsorted(-wrap.at_risk(spent), -5, side="right"))
    from_talk = np.zeros((len(horizons), spent.size))
    from_wrap = np.zeros((len(horizons), spent.size))
    wrap_mass = np.diff(np.concatenate(([0.0], wrap_cdf)))
    for row, horizon in enumerate(horizons):
        bins = int(horizon / STEP) + 1
        ended = np.zeros_like(spent)
        # P(T + W <= s + h, T > s) = sum over wrap lengths w <= h of P(W = w) P(s < T <= s+h-w)
        for k in range(min(bins, wrap_mass.size)):
            finished_by = talk.cdf(spent + horizon - k * STEP)
            ended += wrap_mass[k] * np.maximum(finished_by - talk_cdf, 0.0)
        still_talking = 1.0 - talk_cdf
        from_talk[row] = np.divide(
            ended, still_talking, out=np.zeros_like(spent), where=still_talking > 1e-9
        )
        still_wrapping = 1.0 - wrap_cdf
        from_wrap[row] = np.divide(
            wrap.cdf(spent + horizon) - wrap_cdf,
            still_wrapping,
            out=np.zeros_like(spent),
            where=still_wrapping > 1e-9,
        )
        from_talk[row, talk_sound:] = from_talk[row, max(0, talk_sound - 1)]
        from_wrap[row, wrap_sound:] = from_wrap[row, max(0, wrap_sound - 1)]
    return np.clip(from_talk, 0.0, 1.0), np.clip(from_wrap, 0.0, 1.0)


# Agents and attempts up to which the shortfall is computed exactly (cost grows with the square).
EXACT_UP_TO = 24
SQRT2 = math.sqrt(2.0)
SQRT2PI = math.sqrt(2.0 * math.pi)


class Shortfall:
    """Persons arriving minus agents free, a sum of independent Bernoulli terms, per horizon:
    its first three cumulants, so that `chance(k, per_call)` is P(shortfall >= 0) once k more
    calls, each a person in time with `per_call`, are added. A normal approximation refined by
    the skewness term: with a handful of agents the plain normal misjudges the tail."""

    def __init__(self, persons: np.ndarray, free: np.ndarray, offset: float) -> None:
        def cumulants(chances: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            spread = chances * (1.0 - chances)
            return chances.sum(1), spread.sum(1), (spread * (1.0 - 2.0 * chances)).sum(1)

        coming, coming_var, coming_third = cumulants(persons)
        freed, freed_var, freed_third = cumulants(free)
        self.mean = (coming - freed + offset).tolist()
        self.variance = (coming_var + freed_var).tolist()
        self.third = (coming_third - freed_third).tolist()

    def chance(self, calls: int, per_call: list[float]) -> float:
        """Averaged over the horizons."""
        total = 0.0
        for mean, variance, third, p in zip(
            self.mean, self.variance, self.third, per_call, strict=True
        ):
            spread = p * (1.0 - p)
            sd = math.sqrt(variance + calls * spread + 0.25)
            # P(shortfall <= -1), continuity-corrected at -0.5.
            x = (-0.5 - mean - calls * p) / sd
            skew = (third + calls * spread * (1.0 - 2.0 * p)) / (6.0 * sd**3)
            below = (
                0.5 * math.erfc(-x / SQRT2) + skew * (1.0 - x * x) * math.exp(-x * x / 2) / SQRT2PI
            )
            total += 1.0 - min(1.0, max(0.0, below))
        return total / len(self.mean)


def _bernoulli_sum(chances: np.ndarray) -> np.ndarray:
    """Distribution of the number of successes of independent trials, per row."""
    rows, trials = chances.shape
    pmf = np.zeros((rows, trials + 1))
    pmf[:, 0] = 1.0
    for j in range(trials):
        chance = chances[:, j : j + 1]
        moved = pmf[:, : j + 1] * chance
        pmf[:, : j + 1] *= 1.0 - chance
        pmf[:, 1 : j + 2] += moved
    return pmf


def _binomial(trials: int, chance: float) -> np.ndarray:
    chance = min(max(chance, 0.0), 1.0 - 1e-12)
    k = np.arange(trials)
    steps = (trials - k) / (k + 1.0) * (chance / (1.0 - chance))
    return (1.0 - chance) ** trials * np.concatenate(([1.0], np.cumprod(steps)))


class ExactShortfall:
    """The same question as `Shortfall`, answered with the exact distributions: for a handful
    of agents and attempts, where even the refined normal misjudges the tail."""

    def __init__(self, persons: np.ndarray, free: np.ndarray, offset: float) -> None:
        coming, freed = _bernoulli_sum(persons), _bernoulli_sum(free)
        # Index i of each row holds P(persons - freed = i - free.shape[1]).
        self.rows = [np.convolve(c, f[::-1]) for c, f in zip(coming, freed, strict=True)]
        self.first = free.shape[1] - round(offset)

    def chance(self, calls: int, per_call: list[float]) -> float:
        total = 0.0
        for row, p in zip(self.rows, per_call, strict=True):
            pmf = np.convolve(row, _binomial(calls, p)) if calls else row
            total += float(pmf[max(0, self.first) :].sum()) if self.first < pmf.size else 0.0
        return total / len(self.rows)


class PredictivePacer:
    def __init__(self, settings: PredictiveSettings | None = None) -> None:
        self.settings = settings or PredictiveSettings()
        s = self.settings
        self.outcomes = OutcomeModel(s.outcome_half_life)
        self.talk = Durations()
        self.wrap = Durations()
        self.live_answers = s.window_live_answers
        self.abandons = s.window_abandons
        self.risk_level = math.log(s.base_risk)
        self.predicted_abandons = 0.0  # since the pacer started
        # Tables rebuilt from the learned distributions every few hundred events.
        self.horizons = np.zeros(0)
        self.ringing = self.new_call = self.free_talk = self.free_wrap = np.zeros((0, 0))
        self._tables_from = -1
        self._changes = 0

    # -- learning -----------------------------------------------------------------------------
    def observe(self, event: Event) -> None:
        if isinstance(event, Resolved):
            self.outcomes.add(event.outcome, event.after)
        elif isinstance(event, Connected):
            self.live_answers += 1
            self._learn_level()
        elif isinstance(event, Abandoned):
            self.live_answers += 1
            self.abandons += 1
            self._learn_level()
        elif isinstance(event, TalkEnded):
            self.talk.add(event.duration)
        elif isinstance(event, WrapEnded):
            self.wrap.add(event.duration)
        self._changes += 1

    def _surplus(self, live_answers: float, abandons: float) -> float:
        """Abandons that can still come and keep the rate under target beyond the cushion, in
        standard deviations of the abandon count: one abandon moves a 5-agent campaign more
        than a 200-agent one."""
        s = self.settings
        unseen = s.amd_false_machine * live_answers
        allowed = s.target_abandon * live_answers - unseen
        cushion = s.cushion + s.confidence * math.sqrt(unseen)
        return min((allowed - abandons - cushion) / math.sqrt(1.0 + allowed), s.budget_cap)

    @property
    def risk_threshold(self) -> float:
        s = self.settings
        surplus = self._surplus(self.live_answers, self.abandons)
        gain = s.risk_per_abandon if surplus >= 0 else s.risk_per_deficit
        risk = math.exp(self.risk_level + gain * surplus)
        return min(s.max_risk, max(s.min_risk, risk))

    def _step(self) -> float:
        s = self.settings
        expected = s.rate_goal * (self.live_answers - s.window_live_answers)
        return s.level_step / math.sqrt(1.0 + expected / s.step_abandons)

    def _move_level(self, by: float) -> None:
        s = self.settings
        # Never so high that the capped surplus could lift the threshold past max_risk.
        lowest = math.log(s.min_risk)
        highest = math.log(s.max_risk) - s.risk_per_abandon * s.budget_cap
        self.risk_level = min(highest, max(lowest, self.risk_level + by))

    def _learn_level(self) -> None:
        self._move_level(self._step())

    def _learn_predicted(self, abandons: float) -> None:
        s = self.settings
        self.predicted_abandons += abandons
        seen = self.abandons - s.window_abandons
        calibration = (seen + s.calibration_prior) / (self.predicted_abandons + s.calibration_prior)
        self._move_level(-self._step() * calibration * abandons / s.rate_goal)

    def _ready(self) -> bool:
        s = self.settings
        return (
            len(self.outcomes.times["human"]) >= s.warmup_humans
            and len(self.talk) >= s.warmup_calls
            and len(self.wrap) >= s.warmup_calls
        )

    def _refresh(self, talking: list[float], wrapping: list[float]) -> None:
        # Rebuilding the tables costs milliseconds: do it after a batch of new events.
        if self._tables_from >= 0 and self._changes - self._tables_from < 200:
            return
        self._tables_from = self._changes
        self.talk.still_running(talking)
        self.wrap.still_running(wrapping)
        self.horizons = self.outcomes.horizons()
        self.ringing, self.new_call = self.outcomes.person_within(self.horizons)
        self.free_talk, self.free_wrap = free_within(
            self.talk, self.wrap, self.horizons + self.settings.connect_grace
        )

    # -- deciding -----------------------------------------------------------------------------
    def decide(self, view: PacingView) -> int:
        free_lines = view.free_lines
        if not view.agents or free_lines == 0:
            return 0
        idle, talking, wrapping = 0, [], []
        for state, since in view.agents:
            if state == "idle":
                idle += 1
            elif state == "talk":
                talking.append(since)
            else:
                wrapping.append(since)
        # One attempt per idle agent cannot abandon: never fewer than that.
        progressive = min(free_lines, max(0, idle - len(view.dialing) - view.waiting))
        if not self._ready():
            return progressive
        self._refresh(talking, wrapping)
        free = np.concatenate(
            (self._chances(talking, self.free_talk), self._chances(wrapping, self.free_wrap)), 1
        )
        persons = self._chances(view.dialing, self.ringing)
        exact = persons.shape[1] + free.shape[1] <= EXACT_UP_TO
        shortfall = (ExactShortfall if exact else Shortfall)(persons, free, view.waiting - idle)
        per_call = self.new_call.tolist()
        threshold = self.risk_threshold
        # The n-th new call risks finding no agent when the n-1 before it are persons too.
        low, high = progressive, free_lines
        if high <= low or shortfall.chance(low, per_call) > threshold:
            return low
        first = low
        low += 1
        while low < high:
            middle = (low + high + 1) // 2
            if shortfall.chance(middle - 1, per_call) <= threshold:
                low = middle
            else:
                high = middle - 1
        # Each call launched beyond progressive, were it a person, risks what the search saw.
        risks = sum(shortfall.chance(k, per_call) for k in range(first, low))
        self._learn_predicted(self.outcomes.share("human") * risks)
        return low

    def _chances(self, seconds: Sequence[float], table: np.ndarray) -> np.ndarray:
        """Each row: the table's chance for every attempt or agent, by its seconds in state."""
        if not seconds:
            return np.zeros((table.shape[0], 0))
        bins = np.minimum((np.asarray(seconds) / STEP).astype(int), table.shape[1] - 1)
        return table[:, bins]
