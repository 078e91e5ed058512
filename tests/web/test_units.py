"""The console's pure helpers: audit differences, form conversions, how values look."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from web.audit import changes
from web.campaigns import amd_label, parse_holidays, rule_keys
from web.display import duration


def test_an_update_keeps_only_what_changed_and_never_a_secret() -> None:
    before = {"role": "agent", "active": True, "password_hash": "x"}
    after = {"role": "manager", "active": True, "password_hash": "y"}
    assert changes(before, after) == {"before": {"role": "agent"}, "after": {"role": "manager"}}
    created = changes(None, {"at": dt.date(2026, 1, 2), "amount": Decimal("1.50")})
    assert created == {"before": {}, "after": {"at": "2026-01-02", "amount": "1.50"}}


def test_holidays_are_sorted_once_each_and_a_bad_one_is_named() -> None:
    assert parse_holidays("2026-12-25, 2026-01-01\n2026-12-25") == ["2026-01-01", "2026-12-25"]
    with pytest.raises(ValueError, match="'25/12/2026' is not a date"):
        parse_holidays("25/12/2026")


def test_an_opt_out_is_never_offered_for_recycling() -> None:
    for kind in ("telemarketing", "collections", "survey", "appointment"):
        assert "DNC" not in rule_keys(kind) and "busy" in rule_keys(kind)


@pytest.mark.parametrize(
    ("minutes", "words"),
    [(15, "15 min"), (120, "2 h"), (90, "1 h 30 min"), (1440, "1 day"), (10080, "7 days")],
)
def test_durations_read_as_people_say_them(minutes: int, words: str) -> None:
    assert duration(dt.timedelta(minutes=minutes)) == words


def test_amd_settings_are_labelled_with_their_units() -> None:
    assert amd_label("greeting_max_ms") == "Greeting max (ms)"
    assert amd_label("voice_above_noise_db") == "Voice above noise (dB)"
