"""Format a definition's value for people, by its unit: bytes, durations, times, money.

Pure functions: `format_value(value, unit, kind_of_value)` gives a `short`
text for a card and a `full` one, at full precision, for a hover title.

The text is plain English formatting (a comma between thousands, a point
before decimals) whatever the active language: Django's `number_format`
would follow the request's language and USE_THOUSAND_SEPARATOR, which the
durations, sizes and ages below (English unit words) could not match.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.utils import timezone

#: What `kind_of_value` may say besides the unit: the value is a date or a
#: datetime as Unix time in seconds (a min or max of such a field), or a
#: duration in seconds. The same words as metricdemo.aggregates.DATE,
#: DATETIME and DURATION (a test keeps them equal).
DATE, DATETIME, DURATION = "date", "datetime", "duration"

#: Byte units with SI prefixes (UCUM `kBy`; OpenTelemetry writes `KBy` too),
#: shown in steps of 1000 (kB, MB, GB), and with binary prefixes, shown in
#: steps of 1024 (KiB, MiB, GiB). The unit decides, so a label never misleads.
SI_BYTES = {"By": 0, "kBy": 1, "KBy": 1, "MBy": 2, "GBy": 3, "TBy": 4, "PBy": 5}
BINARY_BYTES = {"KiBy": 1, "MiBy": 2, "GiBy": 3, "TiBy": 4, "PiBy": 5}
_SI_SYMBOLS = ("B", "kB", "MB", "GB", "TB", "PB", "EB")
_BINARY_SYMBOLS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")

#: Time units (UCUM) in seconds.
SECONDS = {
    "ns": Decimal("1e-9"),
    "us": Decimal("1e-6"),
    "ms": Decimal("1e-3"),
    "s": Decimal(1),
    "min": Decimal(60),
    "h": Decimal(3600),
    "d": Decimal(86400),
}

#: A currency: an ISO 4217 code as a UCUM annotation, `{EUR}`.
CURRENCY_RE = re.compile(r"\{([A-Z]{3})\}")
#: Units of a plain count: no unit, `1`, or an annotation such as `{order}`.
#: `1` is read as a count, not as a ratio from 0 to 1: OpenTelemetry uses it
#: for both, and showing a count of 3 as 300 % would be worse than showing a
#: utilization of 0.25 as 0.25.
COUNT_RE = re.compile(r"(1|\{[^{}]*\})?")

#: From this size on, a short number is written with an exponent (1e+15).
_HUGE = Decimal("1e15")
#: Below this size, a number other than 0 is written with an exponent.
_TINY = Decimal("1e-6")


@dataclass(frozen=True)
class Formatted:
    """A value as text: `short` for a card, `full` (full precision) for a title."""

    short: str
    full: str

    def __str__(self) -> str:
        return self.short


def format_value(
    value: float,
    unit: str,
    kind_of_value: str | None = None,
    *,
    now: float | dt.datetime | None = None,
) -> Formatted:
    """Return `value` formatted for people, by its `unit` and what it measures.

    `kind_of_value` is "date" or "datetime" for a min or max of a date or
    datetime field (Unix time in seconds, shown as a date and an age from
    `now`), "duration" for a time between two dates (seconds); anything else
    leaves the unit to decide. Units: bytes (`By`, `kBy`... in steps of 1000,
    `KiBy`... in steps of 1024), times (`s`, `ms`... as a duration),
    currencies (`{EUR}`), `%`, counts (`{order}`, `1`, none) and any other
    unit after the number.
    """
    value = float(value)
    if not math.isfinite(value):
        return _non_finite(value)
    unit = (unit or "").strip()
    if kind_of_value in (DATE, DATETIME):
        return _moment(value, kind_of_value == DATE, now)
    if kind_of_value == DURATION and unit in ("", "1"):
        unit = "s"
    if unit in SI_BYTES:
        return _bytes(value, unit, 1000, SI_BYTES[unit], _SI_SYMBOLS)
    if unit in BINARY_BYTES:
        return _bytes(value, unit, 1024, BINARY_BYTES[unit], _BINARY_SYMBOLS)
    if unit in SECONDS:
        seconds = _decimal(value) * SECONDS[unit]
        return Formatted(format_duration(seconds), f"{full_number(value)} {unit}")
    currency = CURRENCY_RE.fullmatch(unit)
    if currency:
        code = currency.group(1)
        return Formatted(
            f"{short_number(value, cents=True)} {code}", f"{full_number(value)} {code}"
        )
    if unit == "%":
        return Formatted(f"{short_number(value)}%", f"{full_number(value)}%")
    if COUNT_RE.fullmatch(unit):
        suffix = f" {unit}" if unit not in ("", "1") else ""
        return Formatted(short_number(value), full_number(value) + suffix)
    shown = re.sub(r"\{([^{}]*)\}", r"\1", unit)
    return Formatted(f"{short_number(value)} {shown}", f"{full_number(value)} {unit}")


def short_number(value: float | Decimal, *, cents: bool = False) -> str:
    """Return a number for a card: `12,579.07`, `0.000123`, `1.5e+15`.

    Whole numbers without decimals; others rounded (half up) to 2 decimals,
    or to 3 significant digits below 1; with `cents`, a number that has
    decimals shows two (12.50). Exponents from 1e15 on, and below 1e-6.
    """
    number = _decimal(value)
    if number.is_zero():
        return "0"
    size = abs(number)
    if size >= _HUGE or size < _TINY:
        return f"{float(number):.3g}"
    if size >= 1:
        rounded = _round(number, 2)
    else:
        rounded = _round(number, 2 - number.adjusted())
    if cents and number != number.to_integral_value():
        return f"{rounded.quantize(Decimal('0.01')):,f}"
    return _plain(rounded)


def full_number(value: float | Decimal) -> str:
    """Return a number at full precision: the shortest text that reads back as it.

    `12,579.073`, `0.30000000000000004`, `1,000,000,000,000,000`; with an
    exponent from 1e21 on and below 1e-6, as Python writes floats.
    """
    number = _decimal(value)
    if number.is_zero():
        return "0"
    size = abs(number)
    if size >= Decimal("1e21") or size < _TINY:
        return repr(float(number))
    return _plain(number)


def format_duration(seconds: float | Decimal) -> str:
    """Return a duration as people say it: `850 ms`, `2.5 s`, `3 h 12 min`, `4 d 2 h`.

    Two units at most, the smaller one rounded (half up); from 100 days on,
    whole days.
    """
    amount = _decimal(seconds)
    if amount.is_zero():
        return "0 s"
    sign = "-" if amount < 0 else ""
    amount = abs(amount)
    for limit, unit, scale in _SMALL_DURATIONS:
        if amount < limit:
            text = _significant(amount / scale, 3)
            # 999.6 ms rounds to 1000 ms: that is the next unit's 1.
            if _decimal(text.replace(",", "")) < limit / scale:
                return f"{sign}{text} {unit}"
    for big, big_unit, small, small_unit, upper in _LARGE_DURATIONS:
        parts = int(_round(amount / small, 0))
        whole, rest = divmod(parts, big // small)
        if upper is None or whole * big < upper:
            if whole == 0:
                return f"{sign}{rest:,} {small_unit}"
            if rest == 0:
                return f"{sign}{whole:,} {big_unit}"
            return f"{sign}{whole:,} {big_unit} {rest} {small_unit}"
    days = int(_round(amount / 86400, 0))
    return f"{sign}{days:,} d"


# (below this many seconds, the unit, its seconds); values under 1 s, and
# seconds under a minute, with 3 significant digits.
_SMALL_DURATIONS = (
    (Decimal("1e-6"), "ns", Decimal("1e-9")),
    (Decimal("1e-3"), "µs", Decimal("1e-6")),
    (Decimal(1), "ms", Decimal("1e-3")),
    (Decimal(60), "s", Decimal(1)),
)
# (big unit's seconds, its name, small unit's seconds, its name, the limit
# below which the pair is used): minutes and seconds, hours and minutes,
# days and hours.
_LARGE_DURATIONS = (
    (60, "min", 1, "s", 3600),
    (3600, "h", 60, "min", 86400),
    (86400, "d", 3600, "h", 100 * 86400),
)


def format_age(seconds: float, *, future: bool = False) -> str:
    """Return how long ago (or, with `future`, how soon) in its largest whole unit.

    `45 s ago`, `12 min ago`, `3 h ago`, `5 d ago`, `in 2 h`; `now` under a
    second.
    """
    seconds = abs(seconds)
    if seconds < 1:
        return "now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min"), (1, "s")):
        if seconds >= size:
            count = f"{int(seconds // size):,} {unit}"
            return f"in {count}" if future else f"{count} ago"
    raise AssertionError("unreachable")  # pragma: no cover


def format_series_count(count: int, max_series: int | None = None) -> str:
    """Return how many series a definition exports, and how near its limit.

    `1 series`, `12 series`; from 80 % of `max_series` on, `900 of at most
    1,000 series`; above it, `1,200 series, over the limit of 1,000`.
    """
    text = f"{count:,} series"
    if not max_series:
        return text
    if count > max_series:
        return f"{text}, over the limit of {max_series:,}"
    if count >= 0.8 * max_series:
        return f"{count:,} of at most {max_series:,} series"
    return text


def _non_finite(value: float) -> Formatted:
    if math.isnan(value):
        return Formatted("NaN", "NaN (not a number)")
    if value > 0:
        return Formatted("+Inf", "+Inf (positive infinity)")
    return Formatted("-Inf", "-Inf (negative infinity)")


def _bytes(
    value: float, unit: str, base: int, power: int, symbols: tuple[str, ...]
) -> Formatted:
    count = _decimal(value) * Decimal(base) ** power
    full = f"{full_number(count)} B"
    if count.is_zero():
        return Formatted("0 B", full)
    sign = "-" if count < 0 else ""
    size = abs(count)
    step = 0
    while step < len(symbols) - 1 and size >= Decimal(base) ** (step + 1):
        step += 1
    scaled = size / Decimal(base) ** step
    text = _significant(scaled, 3)
    if _decimal(text.replace(",", "")) >= base and step < len(symbols) - 1:
        # 999.5 B rounds to 1000 B: that is 1 kB.
        step += 1
        text = _significant(size / Decimal(base) ** step, 3)
    if _decimal(text.replace(",", "")) >= base:
        # Past the largest unit (1e+03 EB).
        text = f"{float(size / Decimal(base) ** step):.3g}"
    return Formatted(f"{sign}{text} {symbols[step]}", full)


def _moment(
    value: float, date_only: bool, now: float | dt.datetime | None
) -> Formatted:
    current = _now(now)
    zone = _zone(default=date_only)
    try:
        moment = dt.datetime.fromtimestamp(value, tz=zone)
    except (OverflowError, OSError, ValueError):
        return Formatted(
            f"Unix time {short_number(value)}",
            f"Unix time {full_number(value)} s, not a date of the years 1 to 9999",
        )
    # Without separators: a Unix time is copied, not read.
    unix = f"Unix time {value:.0f}" if value.is_integer() else f"Unix time {value!r}"
    if date_only:
        day = moment.date()
        today = dt.datetime.fromtimestamp(current, tz=zone).date()
        days = (today - day).days
        if days == 0:
            age = "today"
        elif days == 1:
            age = "yesterday"
        elif days == -1:
            age = "tomorrow"
        elif days > 0:
            age = f"{days:,} d ago"
        else:
            age = f"in {-days:,} d"
        return Formatted(f"{day.isoformat()}, {age}", f"{day.isoformat()} ({unix})")
    zone_name = f" {moment.tzname()}" if moment.tzname() else ""
    seconds = f"{moment:%S}"
    if moment.microsecond:
        seconds += f".{moment.microsecond:06d}".rstrip("0")
    age = format_age(current - value, future=value > current)
    return Formatted(
        f"{moment:%Y-%m-%d %H:%M}{zone_name}, {age}",
        f"{moment:%Y-%m-%d %H:%M}:{seconds}{zone_name} ({unix})",
    )


def _now(now: float | dt.datetime | None) -> float:
    if now is None:
        return dt.datetime.now(dt.UTC).timestamp()
    if isinstance(now, dt.datetime):
        return now.timestamp()
    return float(now)


def _zone(*, default: bool) -> dt.tzinfo:
    """Return TIME_ZONE for dates (their midnight is there), else the active zone."""
    if not settings.configured:
        return dt.UTC
    if default:
        return timezone.get_default_timezone()
    return timezone.get_current_timezone()


def _decimal(value: float | Decimal) -> Decimal:
    """Return `value` as the decimal people read: the shortest text of the float."""
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(float(value)))


def _round(number: Decimal, decimals: int) -> Decimal:
    return number.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def _significant(number: Decimal, digits: int) -> str:
    """Return `number` (>= 0) with `digits` significant digits, or all whole ones."""
    if number.is_zero():
        return "0"
    decimals = max(0, digits - 1 - number.adjusted())
    return _plain(_round(number, decimals))


def _plain(number: Decimal) -> str:
    """Return `number` with thousands separators and no trailing zeros."""
    if number == number.to_integral_value():
        number = number.quantize(Decimal(1))
    else:
        number = number.normalize()
    text = f"{number:,f}"
    return "0" if text == "-0" else text
