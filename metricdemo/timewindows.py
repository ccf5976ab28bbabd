"""Resolve relative times in Grafana's syntax (now-1h, now/d) in the site's time zone.

A filter on a date or datetime field may compare with `now`, moved by steps
such as `-15m`, `+2h` or `-7d` and rounded down with `/d`, `/w` (Monday, as
Django's week lookups), `/M` or `/y`, in that order: `now-1d/d` is the start
of yesterday. Seconds, minutes and hours move the instant; days, weeks,
months and years move the wall clock of TIME_ZONE, so `now-1d` at noon is
noon yesterday even across a daylight-saving change.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

UNITS = "smhdwMy"
RELATIVE_RE = re.compile(rf"now(?:[+-]\d{{1,9}}[{UNITS}]|/[{UNITS}])*")
STEP_RE = re.compile(rf"([+-])(\d+)([{UNITS}])|/([{UNITS}])")
#: What the error message and the admin show as examples.
EXAMPLES = ("now", "now-15m", "now-1h", "now-7d", "now/d", "now/w", "now-1d/d")

# Steps: ("+", amount, unit) moves, ("/", 0, unit) rounds down.
Step = tuple[str, int, str]


def clock() -> dt.datetime:
    """Return the current time; tests move it by patching django's timezone.now."""
    return timezone.now()


def looks_relative(value: Any) -> bool:
    """Return whether `value` is meant as a relative time (a string from `now`)."""
    return isinstance(value, str) and value.strip().startswith("now")


def parse(text: str) -> tuple[Step, ...]:
    """Return the steps of a relative time such as now-1d/d.

    Raises:
        ValueError: with a message that names the expression and the syntax.
    """
    compact = text.strip() if isinstance(text, str) else ""
    if not RELATIVE_RE.fullmatch(compact):
        raise ValueError(
            _(
                "%(value)r is not a relative time: write now, then optionally steps "
                "such as -15m, +2h or -7d (units s, m, h, d, w, M, y) and /d, /w, "
                "/M or /y to round down to the start of that unit, for example "
                "%(examples)s."
            )
            % {"value": text, "examples": ", ".join(EXAMPLES)}
        )
    steps = []
    for sign, amount, unit, rounding in STEP_RE.findall(compact[3:]):
        if rounding:
            steps.append(("/", 0, rounding))
        else:
            steps.append(("+", int(amount) * (-1 if sign == "-" else 1), unit))
    return tuple(steps)


def resolve(text: str, now: dt.datetime | None = None) -> dt.datetime:
    """Return the datetime that `text` means at `now` (the clock by default).

    The result is aware when USE_TZ is on, and naive local time otherwise, as
    Django's own datetimes are.

    Raises:
        ValueError: `text` is not a relative time, or it reaches past the
            years 1 to 9999 that dates can hold.
    """
    steps = parse(text)
    try:
        return _apply(steps, now)
    except (OverflowError, ValueError):
        raise ValueError(
            _(
                "%(text)r reaches past the years 1 to 9999 that dates can hold; "
                "use a shorter window, for example now-10y."
            )
            % {"text": text}
        ) from None


def resolve_date(text: str, now: dt.datetime | None = None) -> dt.date:
    """Return the date in TIME_ZONE that `text` means at `now`, for a DateField."""
    moment = resolve(text, now)
    if timezone.is_aware(moment):
        moment = moment.astimezone(timezone.get_default_timezone())
    return moment.date()


def _apply(steps: tuple[Step, ...], now: dt.datetime | None) -> dt.datetime:
    zone = timezone.get_default_timezone()
    moment = clock() if now is None else now
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, zone)
    # Aware arithmetic within one zone moves the wall clock; UTC moves the instant.
    moment = moment.astimezone(dt.UTC)
    for kind, amount, unit in steps:
        if kind == "+" and unit in "smh":
            seconds = {"s": 1, "m": 60, "h": 3600}[unit] * amount
            moment = moment + dt.timedelta(seconds=seconds)
            continue
        # Calendar steps work on the wall clock of the site's time zone.
        local = timezone.localtime(moment, zone).replace(tzinfo=None)
        local = _shift(local, amount, unit) if kind == "+" else _floor(local, unit)
        moment = timezone.make_aware(local, zone).astimezone(dt.UTC)
    if settings.USE_TZ:
        return moment
    return timezone.make_naive(moment, zone)


def _shift(local: dt.datetime, amount: int, unit: str) -> dt.datetime:
    if unit == "d":
        return local + dt.timedelta(days=amount)
    if unit == "w":
        return local + dt.timedelta(weeks=amount)
    months = amount * (12 if unit == "y" else 1)
    year, month = divmod(local.month - 1 + months, 12)
    year += local.year
    # The 31st minus a month is the last day of the shorter month.
    day = min(local.day, calendar.monthrange(year, month + 1)[1])
    return local.replace(year=year, month=month + 1, day=day)


def _floor(local: dt.datetime, unit: str) -> dt.datetime:
    if unit == "s":
        return local.replace(microsecond=0)
    if unit == "m":
        return local.replace(second=0, microsecond=0)
    if unit == "h":
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "d":
        return day
    if unit == "w":
        return day - dt.timedelta(days=day.weekday())
    if unit == "M":
        return day.replace(day=1)
    return day.replace(month=1, day=1)
