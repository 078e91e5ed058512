"""What the simulated carrier does with each call: the weighted mix of called parties, and the
waits (ringing before a pickup, a busy signal) drawn per call. Pure: text and numbers in, values
out; `dialer.demo.scenario` turns them into the SIPp scenario.

A mix reads `human=.3,machine=.2,busy=.1,no_answer=.3,invalid=.1`: every call goes one of these
ways, each with its weight's share of the total (weights need not add up to 1; a weight of 0
leaves the branch out). The branches, from the dialer's side:

- human: rings, a person answers with a short "Hello?", then stays on the line, silent, until
  the dialer hangs up (the line pool's outcome: human, AMD verdict human);
- machine: rings, a voicemail answers with a 6-10 s greeting ending in a beep and records
  whatever the dialer says until it hangs up (machine);
- busy: 486 Busy Here (busy);
- no_answer: rings until the dialer gives up (CANCEL, 487: no_answer);
- invalid: 183 with early media, an intercept tone and "the number you have dialed is not in
  service", never answered (invalid, from the tone);
- survey: a person answers like `human`, then keys survey answers by RFC 2833 (human, with
  DtmfReceived events).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass

BRANCHES = ("human", "machine", "busy", "no_answer", "invalid", "survey")
DEFAULT_MIX = "human=.3,machine=.2,busy=.1,no_answer=.3,invalid=.1"
# Equally likely points a drawn wait takes: SIPp waits for a CANCEL with a fixed timeout, so a
# random ring time is one of these, chosen per call (the quantile midpoints of the distribution).
DELAY_POINTS = 8


class MixError(ValueError):
    pass


@dataclass(frozen=True)
class Mix:
    """Each branch's share of the calls, in `BRANCHES` order; the shares add up to 1."""

    shares: tuple[tuple[str, float], ...]

    def __post_init__(self) -> None:
        for name, share in self.shares:
            if name not in BRANCHES:
                raise MixError(f"mix branch {name!r}: expected one of {', '.join(BRANCHES)}")
            if not (math.isfinite(share) and share > 0):
                raise MixError(f"mix share {name}={share!r}: expected a number above 0")
        if not self.shares:
            raise MixError("the mix has no branch with a weight above 0")
        if abs(sum(share for _, share in self.shares) - 1.0) > 1e-9:
            raise MixError(f"mix shares {self.shares}: expected them to add up to 1")

    @classmethod
    def of(cls, weights: Mapping[str, float]) -> Mix:
        """Normalised weights; branches weighing 0 are left out."""
        for name, weight in weights.items():
            if name not in BRANCHES:
                raise MixError(f"mix branch {name!r}: expected one of {', '.join(BRANCHES)}")
            if isinstance(weight, bool) or not (math.isfinite(weight) and weight >= 0):
                raise MixError(f"mix weight {name}={weight!r}: expected a number of at least 0")
        total = sum(weights.values())
        if total <= 0:
            raise MixError(
                f"mix weights {dict(weights)}: they add up to 0; give at least one branch a "
                "weight above 0"
            )
        shares = ((name, weights.get(name, 0) / total) for name in BRANCHES)
        return cls(tuple((name, share) for name, share in shares if share > 0))

    def share(self, branch: str) -> float:
        return dict(self.shares).get(branch, 0.0)

    def thresholds(self) -> tuple[tuple[str, float], ...]:
        """(branch, upper bound) for a uniform draw u in [0, 1]: the first branch whose bound
        is above u takes the call; the last bound is 1, so every draw falls somewhere."""
        bounds = []
        total = 0.0
        for name, share in self.shares:
            total += share
            bounds.append((name, min(total, 1.0)))  # rounding must not pass the last bound
        bounds[-1] = (bounds[-1][0], 1.0)
        return tuple(bounds)

    def __str__(self) -> str:
        return ",".join(f"{name}={share:.4g}" for name, share in self.shares)


def parse_mix(text: str) -> Mix:
    """`human=.3,machine=.2,...` (names from `BRANCHES`, weights >= 0, not all 0)."""
    weights: dict[str, float] = {}
    for part in text.split(","):
        item = part.strip()
        if not item:
            continue
        name, equals, value = item.partition("=")
        name = name.strip()
        if not equals:
            raise MixError(f"mix item {item!r}: expected branch=weight, e.g. human=.3")
        if name not in BRANCHES:
            raise MixError(f"mix branch {name!r}: expected one of {', '.join(BRANCHES)}")
        if name in weights:
            raise MixError(f"mix branch {name!r} is given twice")
        try:
            weight = float(value)
        except ValueError:
            raise MixError(f"mix weight {name}={value.strip()!r}: expected a number") from None
        weights[name] = weight
    if not weights:
        raise MixError(f"mix {text!r}: expected branch=weight items, e.g. {DEFAULT_MIX}")
    return Mix.of(weights)


@dataclass(frozen=True)
class Delay:
    """A wait drawn per call, as `DELAY_POINTS` (or one) equally likely values in seconds."""

    points: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.points:
            raise ValueError("a delay needs at least one value")
        for value in self.points:
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"delay value {value!r} s: expected a finite number >= 0")

    @classmethod
    def fixed(cls, seconds: float) -> Delay:
        return cls((float(seconds),))

    @classmethod
    def uniform(cls, low: float, high: float) -> Delay:
        if not 0 <= low <= high:
            raise ValueError(f"uniform delay {low!r}-{high!r} s: expected 0 <= low <= high")
        step = (high - low) / DELAY_POINTS
        return cls(tuple(low + step * (i + 0.5) for i in range(DELAY_POINTS)))

    @classmethod
    def lognormal(cls, median: float, sigma: float) -> Delay:
        """As the simulator draws pickups: exp(N(ln median, sigma))."""
        if not (median > 0 and sigma >= 0):
            raise ValueError(
                f"lognormal delay median {median!r} s, sigma {sigma!r}: expected median > 0 "
                "and sigma >= 0"
            )
        normal = statistics.NormalDist()
        return cls(
            tuple(
                median * math.exp(sigma * normal.inv_cdf((i + 0.5) / DELAY_POINTS))
                for i in range(DELAY_POINTS)
            )
        )

    @property
    def mean(self) -> float:
        return sum(self.points) / len(self.points)

    def milliseconds(self) -> tuple[int, ...]:
        return tuple(round(value * 1000) for value in self.points)


# The pacing workloads' figures (dialer/workloads.json "about" and "defaults").
LIVE_PICKUP = Delay.lognormal(9.0, 0.45)
MACHINE_PICKUP = Delay.lognormal(17.0, 0.25)
BUSY_AFTER = Delay.uniform(2.0, 6.0)
INVALID_AFTER = Delay.uniform(0.5, 2.5)
SURVEY_KEY_GAP = Delay.uniform(4.0, 6.0)


@dataclass(frozen=True)
class CarrierTimings:
    """How long the simulated called parties take. The defaults are the pacing workloads'
    (dialer/workloads.json): people pick up after lognormal(9 s, 0.45), voicemail after
    lognormal(17 s, 0.25), busy is heard after 2-6 s, a dead number's intercept after 1-4 s.
    A dialer's ring timeout cuts the slow pickups into no_answer, as it would on a real line."""

    human_pickup: Delay = LIVE_PICKUP
    machine_pickup: Delay = MACHINE_PICKUP
    busy_after: Delay = BUSY_AFTER
    # 183 and its announcement start this long after the INVITE; the tone decides ~1.4 s later.
    invalid_after: Delay = INVALID_AFTER
    # Nobody picks up: after this the carrier gives up itself with 480 Temporarily Unavailable.
    no_answer_gives_up_s: float = 120.0
    # The intercept is never answered: 404 Not Found this long after the 183 if not cancelled.
    invalid_gives_up_s: float = 10.0
    # Safety nets: the called party hangs up by itself this long after answering.
    human_hangs_up_s: float = 600.0
    machine_hangs_up_s: float = 60.0
    survey_hangs_up_s: float = 180.0
    # The survey answers: `survey_keys` digits from `survey_digits`, the first
    # `survey_first_key_s` after the answer, then one every `survey_key_gap` (drawn per pattern).
    survey_keys: int = 3
    survey_digits: str = "12345"
    survey_first_key_s: float = 9.0
    survey_key_gap: Delay = SURVEY_KEY_GAP
    survey_patterns: int = 12
    # Fixed answers instead of drawn ones: each string is one pattern's digits (an empty one
    # keys nothing), and a call's pattern is the one its number's last digit picks (digit d:
    # pattern d mod their count), so a test knows beforehand which lead answers what.
    survey_fixed: tuple[str, ...] = ()
    # The person hangs up this long after their last key (a survey cut half way); a pattern
    # without keys stays until survey_hangs_up_s. None: until the dialer's BYE.
    survey_hangs_up_after_keys_s: float | None = None

    def __post_init__(self) -> None:
        for name in (
            "no_answer_gives_up_s",
            "invalid_gives_up_s",
            "human_hangs_up_s",
            "machine_hangs_up_s",
            "survey_hangs_up_s",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 1):
                raise ValueError(f"{name}={value!r}: expected at least 1 s")
        if not 1 <= self.survey_keys <= 10:
            raise ValueError(f"survey_keys={self.survey_keys!r}: expected 1 to 10")
        if not self.survey_digits or any(d not in "0123456789*#" for d in self.survey_digits):
            raise ValueError(f"survey_digits={self.survey_digits!r}: expected digits, * or #")
        if len(self.survey_fixed) > 10 or any(
            len(p) > 10 or any(d not in "0123456789*#" for d in p) for p in self.survey_fixed
        ):
            raise ValueError(
                f"survey_fixed={self.survey_fixed!r}: expected at most 10 patterns of at most 10 "
                "digits, * or #"
            )
        after = self.survey_hangs_up_after_keys_s
        if after is not None and not (math.isfinite(after) and after >= 1):
            raise ValueError(f"survey_hangs_up_after_keys_s={after!r}: expected at least 1 s")
        if not 1 <= self.survey_patterns <= 50:
            raise ValueError(f"survey_patterns={self.survey_patterns!r}: expected 1 to 50")
        if not self.survey_first_key_s >= 1:
            raise ValueError(f"survey_first_key_s={self.survey_first_key_s!r}: expected >= 1 s")
        if min(self.survey_key_gap.points) < 0.5:
            raise ValueError(
                f"survey_key_gap {self.survey_key_gap.points}: expected gaps of at least 0.5 s"
            )

    @classmethod
    def quick(cls) -> CarrierTimings:
        """Pickups within a second and no wait for busy: for tests and for rehearsing flows
        without the ringing."""
        return cls(
            human_pickup=Delay.uniform(0.2, 1.0),
            machine_pickup=Delay.uniform(0.2, 1.0),
            busy_after=Delay.fixed(0.0),
            invalid_after=Delay.fixed(0.0),
        )
