"""Hold a histogram's value: its bucket bounds, cumulative counts, sum and count.

A histogram definition yields one Distribution per series where the other
kinds yield a number. This module also owns what a definition's `buckets`
may hold, the presets the admin offers, the estimate of a quantile (as
Prometheus's `histogram_quantile()` makes it) and the JSON form kept for
scheduled values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

#: The most bucket bounds a definition may have (+Inf is implied, not counted).
MAX_BUCKETS = 50

#: Bucket bounds the admin offers: {key: (label, bounds)}.
PRESETS: dict[str, tuple[Any, tuple[float, ...]]] = {
    "seconds": (
        gettext_lazy("Durations, seconds to days"),
        (
            1,
            5,
            15,
            30,
            60,
            300,
            900,
            1800,
            3600,
            7200,
            21600,
            43200,
            86400,
            259200,
            604800,
        ),
    ),
    "latency": (
        gettext_lazy("Short durations, 5 ms to 10 s (Prometheus's default)"),
        (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    ),
    "days": (
        gettext_lazy("Ages, an hour to a year"),
        (
            3600,
            21600,
            86400,
            172800,
            604800,
            1209600,
            2592000,
            7776000,
            15552000,
            31536000,
        ),
    ),
    "powers_of_ten": (
        gettext_lazy("Amounts, powers of ten from 1 to 1,000,000"),
        (1, 10, 100, 1000, 10000, 100000, 1000000),
    ),
    "one_two_five": (
        gettext_lazy("Amounts, 1-2-5 steps from 1 to 10,000"),
        (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000),
    ),
}


@dataclass(frozen=True)
class Distribution:
    """One histogram series: how many values fell at or below each bound.

    `cumulative[i]` counts the values at most `bounds[i]`; `count` counts all
    of them (the +Inf bucket) and `sum` adds them up.
    """

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]
    count: int
    sum: float
    #: The least and greatest value, where known (OTLP carries them).
    minimum: float | None = field(default=None, compare=False)
    maximum: float | None = field(default=None, compare=False)

    @classmethod
    def empty(cls, bounds: Sequence[float]) -> Distribution:
        """Return the distribution of no values over `bounds`: every bucket 0."""
        return cls(tuple(bounds), (0,) * len(bounds), 0, 0.0)

    @classmethod
    def of(cls, bounds: Sequence[float], values: Sequence[float]) -> Distribution:
        """Return the distribution of `values` (computed here, in Python)."""
        return cls(
            tuple(float(b) for b in bounds),
            tuple(sum(1 for v in values if v <= b) for b in bounds),
            len(values),
            float(math.fsum(values)),
            float(min(values)) if values else None,
            float(max(values)) if values else None,
        )

    def bucket_counts(self) -> tuple[int, ...]:
        """Return the count of each bucket alone, +Inf last, as OpenTelemetry wants."""
        counts, below = [], 0
        for total in (*self.cumulative, self.count):
            counts.append(total - below)
            below = total
        return tuple(counts)

    def quantile(self, q: float) -> float | None:
        """Return an estimate of the q-quantile, as `histogram_quantile()` makes it.

        Linear within the bucket it falls in; the lowest bucket starts at 0
        (or at its bound, if that is negative); a quantile in the +Inf bucket
        is the highest bound. None when there are no values.
        """
        if self.count <= 0 or not 0 <= q <= 1:
            return None
        rank = q * self.count
        lower, below = 0.0, 0
        for index, (bound, total) in enumerate(
            zip(self.bounds, self.cumulative, strict=True)
        ):
            if total >= rank and total > 0:
                if index == 0 and bound <= 0:
                    return float(bound)
                if total == below:
                    return float(bound)
                return lower + (bound - lower) * (rank - below) / (total - below)
            lower, below = float(bound), total
        return float(self.bounds[-1]) if self.bounds else None

    def as_json(self) -> dict[str, Any]:
        """Return the JSON form kept for a scheduled value."""
        return {
            "bounds": list(self.bounds),
            "cumulative": list(self.cumulative),
            "count": self.count,
            "sum": self.sum,
        }

    @classmethod
    def from_json(cls, data: Any) -> Distribution:
        """Read back what as_json() wrote, checking every part.

        Raises:
            ValueError: the data is not a consistent distribution; says why.
        """
        if not isinstance(data, dict) or set(data) != {
            "bounds",
            "cumulative",
            "count",
            "sum",
        }:
            raise ValueError(_("%(data)r is not a histogram value") % {"data": data})
        problem = bucket_problem(data["bounds"])
        cumulative, count, total = data["cumulative"], data["count"], data["sum"]
        if problem is None and not (
            isinstance(cumulative, list)
            and len(cumulative) == len(data["bounds"])
            and all(_is_count(c) for c in cumulative)
            and all(a <= b for a, b in zip(cumulative, cumulative[1:], strict=False))
            and _is_count(count)
            and (not cumulative or cumulative[-1] <= count)
            and _is_number(total)
        ):
            problem = _("its counts are not increasing whole numbers")
        if problem:
            raise ValueError(
                _("the histogram value %(data)r is unusable: %(problem)s")
                % {"data": data, "problem": problem}
            )
        return cls(
            tuple(float(b) for b in data["bounds"]),
            tuple(int(c) for c in cumulative),
            int(count),
            float(total),
        )


def bucket_problem(buckets: Any) -> str | None:
    """Return why `buckets` cannot be a histogram's bounds, and the fix; or None."""
    example = "[10, 50, 100, 500, 1000]"
    if not isinstance(buckets, list | tuple) or not buckets:
        return _(
            "A histogram needs its buckets: a JSON list of increasing upper bounds "
            "such as %(example)s (+Inf is added), or pick a preset."
        ) % {"example": example}
    for bound in buckets:
        if not _is_number(bound) or not _is_finite(bound):
            return _(
                "The bucket bound %(bound)r is not a finite number; give numbers "
                "only, such as %(example)s (+Inf is added by itself)."
            ) % {"bound": bound, "example": example}
    if len(buckets) > MAX_BUCKETS:
        return _(
            "%(count)d buckets are too many; give at most %(max)d bounds (each "
            "bucket is a series in every scrape)."
        ) % {"count": len(buckets), "max": MAX_BUCKETS}
    for lower, upper in zip(buckets, buckets[1:], strict=False):
        if not lower < upper:
            return _(
                "The bucket bounds must increase, but %(upper)r follows %(lower)r; "
                "sort them and give each once, such as %(example)s."
            ) % {"upper": upper, "lower": lower, "example": example}
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_finite(value: int | float) -> bool:
    # JSON may hold an integer too large for a float, which isfinite() cannot
    # convert: no bound either.
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
