"""Unit tests for metricdemo.formatting: values for people, by unit."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from django.test import override_settings
from django.utils import timezone

from metricdemo import aggregates
from metricdemo.formatting import (
    DATE,
    DATETIME,
    DURATION,
    Formatted,
    format_age,
    format_duration,
    format_series_count,
    format_value,
    full_number,
    short_number,
)

#: 2026-12-07 14:05:23 UTC.
NOW = 1796652323.0
HOUR = 3600
DAY = 86400


@pytest.mark.parametrize(
    ("value", "unit", "short", "full"),
    [
        # Bytes with SI prefixes: steps of 1000 (kB, MB, GB).
        (0, "By", "0 B", "0 B"),
        (512, "By", "512 B", "512 B"),
        (999, "By", "999 B", "999 B"),
        (999.5, "By", "1 kB", "999.5 B"),  # rounds up into the next unit
        (1000, "By", "1 kB", "1,000 B"),
        (1536, "By", "1.54 kB", "1,536 B"),
        (1_500_000, "By", "1.5 MB", "1,500,000 B"),
        (123_456_789, "By", "123 MB", "123,456,789 B"),
        (2.5, "GBy", "2.5 GB", "2,500,000,000 B"),
        (1.1, "MBy", "1.1 MB", "1,100,000 B"),  # no float noise in the full bytes
        (3, "kBy", "3 kB", "3,000 B"),
        (3, "KBy", "3 kB", "3,000 B"),
        (1e15, "By", "1 PB", "1,000,000,000,000,000 B"),
        (1e30, "By", "1e+12 EB", "1e+30 B"),  # past the largest unit
        (-2048, "By", "-2.05 kB", "-2,048 B"),
        (5.5, "By", "5.5 B", "5.5 B"),
        # Binary prefixes: steps of 1024 (KiB, MiB, GiB).
        (1.5, "KiBy", "1.5 KiB", "1,536 B"),
        (1024, "KiBy", "1 MiB", "1,048,576 B"),
        (1000, "KiBy", "1,000 KiB", "1,024,000 B"),
        (1023.9, "KiBy", "1 MiB", "1,048,473.6 B"),
        (0.5, "KiBy", "512 B", "512 B"),
        (4, "GiBy", "4 GiB", "4,294,967,296 B"),
        # Durations.
        (0, "s", "0 s", "0 s"),
        (0.85, "s", "850 ms", "0.85 s"),
        (850, "ms", "850 ms", "850 ms"),
        (2.5, "s", "2.5 s", "2.5 s"),
        (2500, "ms", "2.5 s", "2,500 ms"),
        (0.0001234, "s", "123 µs", "0.0001234 s"),
        (1.5e-9, "s", "1.5 ns", "1.5e-09 s"),
        (1e-12, "s", "0.001 ns", "1e-12 s"),
        (0.9996, "s", "1 s", "0.9996 s"),  # 999.6 ms is 1 s once rounded
        (59.96, "s", "1 min", "59.96 s"),
        (90, "s", "1 min 30 s", "90 s"),
        (-90, "s", "-1 min 30 s", "-90 s"),
        (3599.6, "s", "1 h", "3,599.6 s"),
        (11_520, "s", "3 h 12 min", "11,520 s"),
        (3 * HOUR + 12 * 60 + 29, "s", "3 h 12 min", "11,549 s"),
        (86_399, "s", "1 d", "86,399 s"),
        (90_000, "s", "1 d 1 h", "90,000 s"),
        (1.5, "h", "1 h 30 min", "1.5 h"),
        (2, "d", "2 d", "2 d"),
        (99 * DAY + 23 * HOUR, "s", "99 d 23 h", "8,636,400 s"),
        (1e10, "s", "115,741 d", "10,000,000,000 s"),
        (1e15, "s", "11,574,074,074 d", "1,000,000,000,000,000 s"),
        # Currencies: thousands separators, cents when there are decimals.
        (12_579.07, "{EUR}", "12,579.07 EUR", "12,579.07 EUR"),
        (12_579.073, "{USD}", "12,579.07 USD", "12,579.073 USD"),
        (12_579, "{EUR}", "12,579 EUR", "12,579 EUR"),
        (12.5, "{CHF}", "12.50 CHF", "12.5 CHF"),
        (-0.5, "{EUR}", "-0.50 EUR", "-0.5 EUR"),
        (1_234_567_890.12, "{JPY}", "1,234,567,890.12 JPY", "1,234,567,890.12 JPY"),
        # Counts: no unit, 1, or an annotation.
        (0, "", "0", "0"),
        (-0.0, "", "0", "0"),
        (12_579, "{order}", "12,579", "12,579 {order}"),
        (12_579.07, "", "12,579.07", "12,579.07"),  # not cut to 6 digits
        (123_456_789.12, "1", "123,456,789.12", "123,456,789.12"),
        (3, "1", "3", "3"),  # 1 is a count, never a ratio shown as 300 %
        (0.25, "1", "0.25", "0.25"),
        (-7, "{order}", "-7", "-7 {order}"),
        (0.1 + 0.2, "", "0.3", "0.30000000000000004"),
        (2 / 3, "", "0.667", "0.6666666666666666"),
        (7 / 3, "", "2.33", "2.3333333333333335"),
        (0.000123456, "", "0.000123", "0.000123456"),
        (1e-20, "", "1e-20", "1e-20"),
        (999_999_999_999_999, "", "999,999,999,999,999", "999,999,999,999,999"),
        (1e15, "", "1e+15", "1,000,000,000,000,000"),
        (1.2345e20, "", "1.23e+20", "123,450,000,000,000,000,000"),
        (1e21, "", "1e+21", "1e+21"),
        (-12_579.075, "", "-12,579.08", "-12,579.075"),  # half up, away from 0
        # Percent.
        (50, "%", "50%", "50%"),
        (12.345, "%", "12.35%", "12.345%"),
        (0, "%", "0%", "0%"),
        # Any other unit follows the number, its annotations unbraced.
        (3, "m", "3 m", "3 m"),
        (2.5, "{req}/s", "2.5 req/s", "2.5 {req}/s"),
        (21.5, "Cel", "21.5 Cel", "21.5 Cel"),
        # NaN and infinities, in any unit.
        (math.nan, "", "NaN", "NaN (not a number)"),
        (math.nan, "By", "NaN", "NaN (not a number)"),
        (math.inf, "s", "+Inf", "+Inf (positive infinity)"),
        (-math.inf, "{EUR}", "-Inf", "-Inf (negative infinity)"),
    ],
)
def test_formatting__value_by_unit(value, unit, short, full):
    assert format_value(value, unit) == Formatted(short, full)


@pytest.mark.parametrize(
    ("value", "kind", "short", "full"),
    [
        (NOW, DATETIME, "2026-12-07 14:05 UTC, now", "2026-12-07 14:05:23 UTC"),
        (
            NOW - 3 * HOUR - 100,
            DATETIME,
            "2026-12-07 11:03 UTC, 3 h ago",
            "2026-12-07 11:03:43 UTC",
        ),
        (
            NOW - 30,
            DATETIME,
            "2026-12-07 14:04 UTC, 30 s ago",
            "2026-12-07 14:04:53 UTC",
        ),
        (
            NOW - 0.25,
            DATETIME,
            "2026-12-07 14:05 UTC, now",
            "2026-12-07 14:05:22.75 UTC",
        ),
        (
            NOW + 600,
            DATETIME,
            "2026-12-07 14:15 UTC, in 10 min",
            "2026-12-07 14:15:23 UTC",
        ),
        (
            NOW - 400 * DAY,
            DATETIME,
            "2025-11-02 14:05 UTC, 400 d ago",
            "2025-11-02 14:05:23 UTC",
        ),
        (0, DATETIME, "1970-01-01 00:00 UTC, 20,794 d ago", "1970-01-01 00:00:00 UTC"),
        (
            -DAY,
            DATETIME,
            "1969-12-31 00:00 UTC, 20,795 d ago",
            "1969-12-31 00:00:00 UTC",
        ),
        (1796601600, DATE, "2026-12-07, today", "2026-12-07"),
        (1796601600 - DAY, DATE, "2026-12-06, yesterday", "2026-12-06"),
        (1796601600 + DAY, DATE, "2026-12-08, tomorrow", "2026-12-08"),
        (1796601600 - 5 * DAY, DATE, "2026-12-02, 5 d ago", "2026-12-02"),
        (1796601600 + 3 * DAY, DATE, "2026-12-10, in 3 d", "2026-12-10"),
    ],
)
def test_formatting__dates_and_datetimes_with_their_age(value, kind, short, full):
    formatted = format_value(value, "s", kind, now=NOW)
    assert formatted.short == short
    assert formatted.full.startswith(full + " (Unix time ")
    assert formatted.full.endswith(f"{value:.0f})" if value == int(value) else ")")


def test_formatting__a_unix_time_is_not_read_with_separators():
    assert format_value(NOW, "s", DATETIME, now=NOW).full == (
        "2026-12-07 14:05:23 UTC (Unix time 1796652323)"
    )


def test_formatting__now_may_be_a_datetime():
    moment = dt.datetime.fromtimestamp(NOW + 7200, tz=dt.UTC)
    assert format_value(NOW, "", DATETIME, now=moment).short.endswith(", 2 h ago")


@pytest.mark.parametrize("value", [1e15, -1e15, 1e300])
def test_formatting__a_time_past_the_calendar_is_a_number(value):
    formatted = format_value(value, "s", DATETIME, now=NOW)
    assert formatted.short.startswith("Unix time ")
    assert "not a date" in formatted.full


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_formatting__a_date_that_is_not_finite_is_readable(value):
    assert format_value(value, "s", DATE).short in ("NaN", "+Inf")


def test_formatting__datetimes_in_the_active_zone_dates_in_time_zone():
    """A date counts from midnight in TIME_ZONE; a datetime shows in the active zone."""
    midnight_berlin = 1796598000  # 2026-12-07 00:00 CET
    with override_settings(TIME_ZONE="Europe/Berlin"):
        assert format_value(NOW, "", DATETIME, now=NOW).short == (
            "2026-12-07 15:05 CET, now"
        )
        assert format_value(midnight_berlin, "", DATE, now=NOW).short == (
            "2026-12-07, today"
        )
        with timezone.override("America/New_York"):
            assert format_value(NOW, "", DATETIME, now=NOW).short == (
                "2026-12-07 09:05 EST, now"
            )
            assert format_value(midnight_berlin, "", DATE, now=NOW).short == (
                "2026-12-07, today"
            )


def test_formatting__a_duration_kind_is_in_seconds():
    assert format_value(11_520, "", DURATION).short == "3 h 12 min"
    assert format_value(11_520, "s", DURATION).short == "3 h 12 min"
    # The unit says otherwise: the unit wins.
    assert format_value(1536, "By", DURATION).short == "1.54 kB"


def test_formatting__the_kinds_are_the_aggregates_words():
    assert (DATE, DATETIME, DURATION) == (
        aggregates.DATE,
        aggregates.DATETIME,
        aggregates.DURATION,
    )


def test_formatting__a_number_kind_leaves_the_unit_to_decide():
    assert format_value(1536, "By", aggregates.NUMBER).short == "1.54 kB"
    assert format_value(1536, "", None).short == "1,536"


def test_formatting__formatted_prints_its_short_text():
    assert str(format_value(1536, "By")) == "1.54 kB"


@pytest.mark.parametrize(
    ("value", "cents", "text"),
    [
        (0.5, True, "0.50"),
        (0.001, True, "0.00"),
        (3, True, "3"),
        (2.999, False, "3"),
        (2.999, True, "3.00"),
        (1e15, True, "1e+15"),
    ],
)
def test_formatting__short_numbers(value, cents, text):
    assert short_number(value, cents=cents) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [(1e16, "10,000,000,000,000,000"), (0.000001, "0.000001"), (1e-7, "1e-07")],
)
def test_formatting__full_numbers(value, text):
    assert full_number(value) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.5, "now"),
        (1, "1 s ago"),
        (59.9, "59 s ago"),
        (60, "1 min ago"),
        (3 * HOUR + 3599, "3 h ago"),
        (DAY * 1000, "1,000 d ago"),
    ],
)
def test_formatting__ages_take_their_largest_whole_unit(seconds, text):
    assert format_age(seconds) == text
    assert format_age(seconds, future=True) == (
        "now" if text == "now" else "in " + text.removesuffix(" ago")
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-0.0, "0 s"), (-0.85, "-850 ms"), (1e-6, "1 µs"), (0.000999, "999 µs")],
)
def test_formatting__durations(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize(
    ("count", "max_series", "text"),
    [
        (0, None, "0 series"),
        (1, None, "1 series"),
        (12_000, None, "12,000 series"),
        (12, 1000, "12 series"),
        (799, 1000, "799 series"),
        (800, 1000, "800 of at most 1,000 series"),
        (1000, 1000, "1,000 of at most 1,000 series"),
        (1200, 1000, "1,200 series, over the limit of 1,000"),
    ],
)
def test_formatting__series_count(count, max_series, text):
    assert format_series_count(count, max_series) == text
