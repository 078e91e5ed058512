"""The SIP tests pick a zone inside calling hours and one in the night whatever the hour they
run at: a gap in the harness's zones would fail them at some hours of the day only."""

import datetime as dt

from tests.node_harness import NUMBER_IN_ZONE, ZONES, zone_in_hours, zone_out_of_hours


def test_some_zone_is_in_hours_and_some_at_night_at_every_quarter_hour_of_the_year() -> None:
    assert set(NUMBER_IN_ZONE) == set(ZONES)
    for day in (dt.date(2026, 1, 15), dt.date(2026, 7, 15)):  # winter and summer time
        midnight = dt.datetime.combine(day, dt.time(), dt.UTC)
        for quarter in range(96):
            at = midnight + dt.timedelta(minutes=15 * quarter)
            zone_in_hours(at)
            zone_out_of_hours(at)
