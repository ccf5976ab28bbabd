"""Unit tests for metricdemo.timewindows: Grafana's relative times in TIME_ZONE."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from django.test import override_settings

from metricdemo import timewindows

BERLIN = ZoneInfo("Europe/Berlin")
# Wednesday 2026-03-11, 00:30 in Berlin (23:30 UTC the day before).
NOW = dt.datetime(2026, 3, 10, 23, 30, 15, 500, tzinfo=dt.UTC)


def at_berlin(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BERLIN)


@override_settings(TIME_ZONE="Europe/Berlin")
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("now-15m", NOW - dt.timedelta(minutes=15)),
        ("now-1h", NOW - dt.timedelta(hours=1)),
        ("now+2h", NOW + dt.timedelta(hours=2)),
        ("now-7d", at_berlin(2026, 3, 4, 0, 30, 15, 500)),
        # Start of today in Berlin, which is still yesterday in UTC.
        ("now/d", at_berlin(2026, 3, 11)),
        ("now-1d/d", at_berlin(2026, 3, 10)),
        # Weeks start on Monday, as Django's week lookups.
        ("now/w", at_berlin(2026, 3, 9)),
        ("now/M", at_berlin(2026, 3, 1)),
        ("now-1M/M", at_berlin(2026, 2, 1)),
        ("now/y", at_berlin(2026, 1, 1)),
        ("now/h", at_berlin(2026, 3, 11, 0)),
        ("now/d+8h", at_berlin(2026, 3, 11, 8)),
        (" now-1h ", NOW - dt.timedelta(hours=1)),
    ],
)
def test_resolve__grafana_expressions_in_the_site_time_zone(text, expected):
    assert timewindows.resolve(text, NOW) == expected


@override_settings(TIME_ZONE="Europe/Berlin")
def test_resolve__days_move_the_wall_clock_across_daylight_saving():
    """Berlin moves to summer time on 2026-03-29: a day back is 23 hours back."""
    after = dt.datetime(2026, 3, 29, 12, tzinfo=BERLIN)
    assert timewindows.resolve("now-1d", after) == at_berlin(2026, 3, 28, 12)
    # Subtract in UTC: Python subtracts two times of one zone by the wall clock.
    utc = after.astimezone(dt.UTC)
    assert utc - timewindows.resolve("now-1d", after) == dt.timedelta(hours=23)
    assert utc - timewindows.resolve("now-24h", after) == dt.timedelta(hours=24)


def test_resolve__months_end_on_the_last_day_of_a_shorter_month():
    march_31 = dt.datetime(2026, 3, 31, 10, tzinfo=dt.UTC)
    assert timewindows.resolve("now-1M", march_31) == dt.datetime(
        2026, 2, 28, 10, tzinfo=dt.UTC
    )
    assert timewindows.resolve("now-1y", march_31).year == 2025


@override_settings(TIME_ZONE="Europe/Berlin")
def test_resolve_date__is_the_local_date():
    assert timewindows.resolve_date("now", NOW) == dt.date(2026, 3, 11)
    assert timewindows.resolve_date("now-1d/d", NOW) == dt.date(2026, 3, 10)


def test_resolve__reads_the_clock_when_no_time_is_given(monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)
    assert timewindows.resolve("now-1h") == NOW - dt.timedelta(hours=1)


@override_settings(USE_TZ=False, TIME_ZONE="Europe/Berlin")
def test_resolve__naive_without_time_zone_support():
    naive_now = dt.datetime(2026, 3, 11, 0, 30)
    assert timewindows.resolve("now/d", naive_now) == dt.datetime(2026, 3, 11)


@pytest.mark.parametrize(
    "text", ["now-1x", "now-", "now1h", "today", "now-1.5h", "now/2d", "NOW", ""]
)
def test_parse__a_malformed_expression_names_itself(text):
    with pytest.raises(ValueError, match="is not a relative time") as exc:
        timewindows.parse(text)
    assert repr(text) in str(exc.value)
    assert "for example now" in str(exc.value)


@pytest.mark.parametrize(
    ("value", "relative"),
    [
        ("now-1h", True),
        ("now", True),
        ("nowhere", True),
        ("pending", False),
        (3, False),
    ],
)
def test_looks_relative__strings_from_now(value, relative):
    assert timewindows.looks_relative(value) is relative
