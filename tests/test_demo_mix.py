"""The simulated carrier's pure parts: the mix, the drawn waits, the scenario text and the lines
SIPp logs."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dialer.demo.mix import (
    BRANCHES,
    DEFAULT_MIX,
    DELAY_POINTS,
    CarrierTimings,
    Delay,
    Mix,
    MixError,
    parse_mix,
)
from dialer.demo.scenario import (
    CarrierMedia,
    LoggedEnd,
    LoggedInvite,
    carrier_scenario,
    parse_log_line,
    phones_scenario,
)


def test_the_issue_mix_reads_as_written() -> None:
    mix = parse_mix(DEFAULT_MIX)
    assert [branch for branch, _ in mix.shares] == [
        "human",
        "machine",
        "busy",
        "no_answer",
        "invalid",
    ]
    expected = {"human": 0.3, "machine": 0.2, "busy": 0.1, "no_answer": 0.3, "invalid": 0.1}
    for branch, share in expected.items():
        assert math.isclose(mix.share(branch), share)
    assert mix.share("survey") == 0.0


def test_weights_are_normalised_and_zero_weights_left_out() -> None:
    mix = parse_mix(" survey = 2 , busy=0, human=6,machine=2 ")
    assert mix.shares == (("human", 0.6), ("machine", 0.2), ("survey", 0.2))
    assert [branch for branch, _ in mix.thresholds()] == ["human", "machine", "survey"]
    assert mix.thresholds()[-1][1] == 1.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("people=.5", r"mix branch 'people': expected one of human, machine, busy"),
        ("human=.5,human=.2", r"mix branch 'human' is given twice"),
        ("human", r"mix item 'human': expected branch=weight"),
        ("human=lots", r"mix weight human='lots': expected a number"),
        ("human=-0.1,busy=1", r"mix weight human=-0.1: expected a number of at least 0"),
        ("human=nan", r"mix weight human=nan"),
        ("human=inf", r"mix weight human=inf"),
        ("human=0,busy=0", r"they add up to 0"),
        ("", r"expected branch=weight items"),
        (" , ", r"expected branch=weight items"),
    ],
)
def test_a_bad_mix_is_refused_saying_what_would_do(text: str, message: str) -> None:
    with pytest.raises(MixError, match=message):
        parse_mix(text)


@given(
    st.dictionaries(
        st.sampled_from(BRANCHES),
        st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False),
        min_size=1,
    ).filter(lambda weights: sum(weights.values()) > 0)
)
def test_shares_are_the_weights_normalised(weights: dict[str, float]) -> None:
    mix = Mix.of(weights)
    total = sum(weights.values())
    # A weight too small to leave a share after dividing by the total drops out like a zero.
    kept = [b for b in BRANCHES if weights.get(b, 0) / total > 0]
    assert [branch for branch, _ in mix.shares] == kept
    for branch in BRANCHES:
        assert math.isclose(mix.share(branch), weights.get(branch, 0) / total, abs_tol=1e-12)
    bounds = [bound for _, bound in mix.thresholds()]
    assert bounds == sorted(bounds) and bounds[-1] == 1.0
    # A uniform draw lands in a branch with the branch's share of the unit interval.
    lower = 0.0
    for (branch, bound), (_, share) in zip(mix.thresholds(), mix.shares, strict=True):
        assert math.isclose(bound - lower, share, abs_tol=1e-9), branch
        lower = bound
    assert parse_mix(",".join(f"{b}={w!r}" for b, w in weights.items())) == mix


def test_lognormal_waits_are_its_quantiles() -> None:
    delay = Delay.lognormal(9.0, 0.45)
    assert len(delay.points) == DELAY_POINTS
    assert list(delay.points) == sorted(delay.points)
    # Symmetric around the median in log space, as a lognormal is.
    logs = [math.log(p) for p in delay.points]
    assert math.isclose(sum(logs) / len(logs), math.log(9.0), abs_tol=1e-9)
    assert math.isclose(math.exp(logs[0]) * math.exp(logs[-1]), 81.0, rel_tol=1e-9)
    assert 3.0 < delay.points[0] < 5.0 and 17.0 < delay.points[-1] < 19.0
    assert Delay.lognormal(2.0, 0.0).points == (2.0,) * DELAY_POINTS


def test_uniform_and_fixed_waits() -> None:
    delay = Delay.uniform(2.0, 6.0)
    assert delay.points[0] == 2.25 and delay.points[-1] == 5.75
    assert math.isclose(delay.mean, 4.0)
    assert Delay.fixed(0.5).milliseconds() == (500,)
    with pytest.raises(ValueError, match="expected 0 <= low <= high"):
        Delay.uniform(3.0, 1.0)
    with pytest.raises(ValueError, match="expected median > 0"):
        Delay.lognormal(0.0, 0.5)


def test_timings_refuse_what_the_scenario_could_not_do() -> None:
    with pytest.raises(ValueError, match=r"human_hangs_up_s=0\.5: expected at least 1 s"):
        CarrierTimings(human_hangs_up_s=0.5)
    with pytest.raises(ValueError, match="survey_digits='12x'"):
        CarrierTimings(survey_digits="12x")
    with pytest.raises(ValueError, match=r"expected gaps of at least 0\.5 s"):
        CarrierTimings(survey_key_gap=Delay.fixed(0.1))


MEDIA = CarrierMedia(
    human=(("hello", "human-hello.pcap"), ("yes", "human-yes.pcap")),
    machine=(("maria", "machine-maria.pcap"),),
    invalid=(("intercept", "invalid-intercept.pcap"), ("vacant", "invalid-vacant.pcap")),
    survey=(("survey0", "survey-survey0.pcap"),),
)


def test_the_scenario_holds_the_mixs_branches_only_and_every_jump_lands() -> None:
    text = carrier_scenario(parse_mix("human=1,busy=1,survey=1"), CarrierTimings(), MEDIA)
    root = ET.fromstring(text.split("\n", 2)[2])  # past the XML declaration and DOCTYPE
    labels = {element.get("id") for element in root.iter("label")}
    targets = {
        element.get(attribute)
        for element in root
        for attribute in ("next", "ontimeout")
        if element.get(attribute)
    }
    assert targets <= labels
    assert {"human", "busy", "survey"} <= labels
    assert not {"machine", "no_answer", "invalid"} & labels
    assert "machine-maria.pcap" not in text and "human-yes.pcap" in text
    # Every branch's ring time is one of its drawn points, logged with the call.
    for wait_ms in CarrierTimings().human_pickup.milliseconds():
        assert f"|human|[$variant]|{wait_ms}|" in text
        assert f'timeout="{wait_ms}" ontimeout="human_answer"' in text
    # SIPp refuses a scenario with a variable used only once.
    for name, uses in _variable_uses(text).items():
        assert uses >= 2, name


def _variable_uses(text: str) -> dict[str, int]:
    uses: dict[str, int] = {}
    assigned = re.findall(r'assign_to="([^"]+)"', text)
    for names in assigned:
        for name in names.split(","):
            uses[name] = uses.get(name, 0) + 1
    for name in re.findall(r"\[\$([a-z_0-9]+)\]", text):
        uses[name] = uses.get(name, 0) + 1
    for name in re.findall(r'(?:variable|test)="([^"]+)"', text):
        uses[name] = uses.get(name, 0) + 1
    return uses


def test_the_phones_scenario_answers_and_waits_for_the_bye() -> None:
    text = phones_scenario(3600)
    assert 'timeout="3600000" ontimeout="customer_bye"' in text
    assert "180 Ringing" not in text  # an auto-answering phone does not ring
    for name, uses in _variable_uses(text).items():
        assert uses >= 2, name


def test_log_lines_read_back() -> None:
    invite = parse_log_line(
        "invite|1796318290.000000|165689.000000|17|abc@host|human|hello|9350|"
        "INVITE sip:%2B12125550100@"
    )
    assert invite == LoggedInvite(
        at=1796318290.165689,
        call_number=17,
        call_id="abc@host",
        branch="human",
        variant="hello",
        wait_ms=9350,
        number="+12125550100",
    )
    # No user part in the Request-URI: the ereg found nothing.
    assert parse_log_line("invite|1.000000|0.000000|3|x|busy||0|").number == ""  # type: ignore[union-attr]
    assert parse_log_line("end|2.000000|500000.000000|17|dialer_bye") == LoggedEnd(
        at=2.5, call_number=17, how="dialer_bye"
    )
    with pytest.raises(ValueError, match="expected an invite or end line"):
        parse_log_line("Resolving remote host")
