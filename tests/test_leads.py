"""Phone analysis without phonenumbers' geocoder: the area-code table and what it saves."""

import importlib.util
import subprocess
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from campaigns.leads import AMOUNT_NOISE, FORMATTING_CHARS, NANP_FORMATTING, PhoneAnalyzer
from campaigns.us_area_codes import AREA_CODE_STATES

ROOT = Path(__file__).resolve().parent.parent


def test_area_code_table_matches_the_installed_phonenumbers() -> None:
    script_path = ROOT / "scripts" / "us_area_codes.py"
    spec = importlib.util.spec_from_file_location("us_area_codes", script_path)
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.area_code_states() == AREA_CODE_STATES, (
        "phonenumbers changed its area codes: run scripts/us_area_codes.py"
    )


def test_every_us_geographic_number_gets_its_state() -> None:
    analyzer = PhoneAnalyzer("US")
    for raw, state in [
        ("(206) 386-1234", "WA"),  # the geocoder names it "Washington State"
        ("203 234 5678", "CT"),  # no entry of its own, only its exchanges'
        ("(305) 555-0199", "FL"),
        ("405-555-0123", "OK"),
    ]:
        facts = analyzer.analyse(raw)
        assert not isinstance(facts, str) and facts.state == state, raw
    for area in range(200, 1000):
        facts = analyzer.analyse(f"{area}2345678")
        if isinstance(facts, str) or facts.region != "US" or facts.phone_type == "toll_free":
            continue
        if facts.phone_type != "personal_number":
            assert facts.state is not None, area


def test_analysing_numbers_does_not_load_the_geocoder() -> None:
    # Its data costs ~100 MB in every process that imports leads.
    code = (
        "import sys; from campaigns.leads import PhoneAnalyzer; a = PhoneAnalyzer('US');"
        "[a.analyse(n) for n in ('2065550100', '+44 20 7946 0018', '+1 800 555 0100')];"
        "print('phonenumbers.geocoder' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "False"


def test_formatting_chars_are_exactly_what_the_formatting_pattern_matches() -> None:
    # str.translate stands in for NANP_FORMATTING.sub on every imported number.
    matched = {chr(c) for c in range(sys.maxunicode + 1) if NANP_FORMATTING.fullmatch(chr(c))}
    assert matched == set(FORMATTING_CHARS)


def test_repeated_numbers_that_need_phonenumbers_get_the_same_verdict() -> None:
    analyzer = PhoneAnalyzer("US")
    raws = [
        "n/a",
        "+44 20 7946 0018",
        "555-01",
        "+44 20 7946 0018 ext. 12",
        "n/a",
        "+44 20 7946 0018",
    ]
    first = [analyzer.analyse(raw) for raw in raws]
    again = [analyzer.analyse(raw) for raw in raws]
    fresh = [PhoneAnalyzer("US").analyse(raw) for raw in raws]
    assert first == again == fresh
    assert first[0].startswith("not a phone number")
    assert not isinstance(first[1], str) and first[1].e164 == "+442079460018"


@given(st.text(alphabet="0123456789.,-+eE_ $€£\t\u00a0\u2003", max_size=12) | st.text(max_size=8))
def test_an_amount_decimal_reads_as_it_is_has_nothing_to_strip(text: str) -> None:
    # The validator tries Decimal on the cell first and strips AMOUNT_NOISE only on failure.
    value = text.strip()
    try:
        Decimal(value)
    except InvalidOperation:
        return
    assert AMOUNT_NOISE.sub("", value) == value
