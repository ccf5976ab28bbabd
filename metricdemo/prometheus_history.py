"""Read definitions' recent values from Prometheus, in the local history's shape.

`query_range()` runs one range query through Prometheus's HTTP API with the
standard library; it never raises into its caller: on an error or a timeout
it returns None, and logs once until Prometheus answers again. `history()`
gives {definition id: [(time, value), ...]} as values.history.history()
does, from METRICDEMO['PROMETHEUS_URL'], or None when Prometheus cannot say.

The query of a definition reads the sample name /metrics serves it under
(under the default name translation; a histogram's `_count`). Every
process scraped exports the same series, told apart by `instance`, so
each is summed per target and the largest target's taken:

- additive definitions (counters, up-down counters, row counts and sums,
  histograms' counts): `max(sum by (job, instance) (NAME))`, the sum of
  the series, as the local history keeps it;
- any other: `max(NAME)`, only while each target exports one series (for
  several, the local history keeps no value either).

`history_together()` gives the same answer for a page of definitions in at
most two queries per hundred definitions (one for the additive, one for the
others, their names in one regular expression and grouped by `__name__`),
all within one timeout.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlencode

from django.utils import timezone

from metricdemo import alerts, naming
from metricdemo.conf import app_settings
from metricdemo.exposition import names as exposition_names
from metricdemo.models import Kind, MetricDefinition
from metricdemo.values.history import SPARKLINE_POINTS, as_stored, is_additive

logger = logging.getLogger("metricdemo")

#: Seconds one query may take by default, connection included.
TIMEOUT = 2.0

#: Definitions whose names one query of history_together() selects at most,
#: which keeps its URL well under the limits of servers and proxies.
NAMES_PER_QUERY = 100

#: One series of a range query: its labels and its (Unix time, value) points.
RangeSeries = tuple[dict[str, str], list[tuple[float, float]]]

#: The failure logged last, so that each is logged once until a query answers.
_failure: str | None = None


def query_range(
    base_url: str,
    promql: str,
    start: float | dt.datetime,
    end: float | dt.datetime,
    step: float | dt.timedelta,
    timeout: float = TIMEOUT,
) -> list[RangeSeries] | None:
    """Return the series of a PromQL range query, or None if Prometheus cannot say.

    `start` and `end` are Unix times or aware datetimes, `step` seconds.
    Never raises: a refused connection, a timeout (after about `timeout`
    seconds of silence), an error status or an answer that is not a matrix
    returns None, logged once until a query succeeds again.
    """
    params = {
        "query": promql,
        "start": _unix(start),
        "end": _unix(end),
        "step": f"{_seconds(step):g}",
        # Prometheus gives up too, rather than computing for nobody; seconds
        # as a plain number, since its durations take no fractions (0.5s).
        "timeout": f"{timeout:g}",
    }
    url = f"{base_url.rstrip('/')}/api/v1/query_range?{urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310
            payload = json.loads(response.read())
        series = _matrix(payload)
    except urllib.error.HTTPError as exc:
        _failed(base_url, f"HTTP {exc.code}: {_error_of(exc)}")
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        # URLError, a refused connection and a timeout are OSErrors; a body
        # that is not the API's JSON raises the others.
        _failed(base_url, f"{type(exc).__name__}: {exc}")
        return None
    _answered(base_url)
    return series


def sample_name(definition: MetricDefinition) -> str:
    """Return the sample name a definition's history reads (a histogram's _count)."""
    family, sample = naming.exported_names(
        definition.name, definition.kind, definition.unit
    )
    if definition.kind == Kind.HISTOGRAM:
        return f"{family}_count"
    return sample


def sample_names(definition: MetricDefinition) -> tuple[str, ...]:
    """Return the names Prometheus may keep a definition's history under.

    The classic name (sample_name()), which every scraper that does not ask
    for UTF-8 names stores; and, where METRICDEMO['NAME_TRANSLATION'] keeps
    UTF-8 (`shop.orders.open`), the name a Prometheus 3 that asks for
    `escaping=allow-utf-8` stores, as /metrics writes it then.
    """
    classic = sample_name(definition)
    strategy = exposition_names.strategy_of(app_settings.NAME_TRANSLATION)
    if exposition_names.escapes_to_underscores(strategy):
        return (classic,)
    counter = definition.kind == Kind.COUNTER
    family, _unit = exposition_names.family_name(
        definition.name.lower(), definition.unit or "", counter, strategy
    )
    if definition.kind == Kind.HISTOGRAM:
        family += "_count"
    elif counter and exposition_names.adds_suffixes(strategy):
        family += "_total"
    return (classic,) if family == classic else (classic, family)


def promql_for(definition: MetricDefinition) -> str:
    """Return the query of a definition's value over time, one series at most."""
    found = sample_names(definition)
    if len(found) == 1:
        (sample,) = found
        by = "job, instance"
    else:
        # Kept under either name: each name's series are told apart.
        pattern = "|".join(re.escape(name) for name in found)
        sample = f"{{__name__=~{alerts.promql_string(pattern)}}}"
        by = "__name__, job, instance"
    if is_additive(definition):
        return f"max(sum by ({by}) ({sample}))"
    return f"max({sample}) and on () (max(count by ({by}) ({sample})) == 1)"


def history(
    definitions: Iterable[MetricDefinition],
    since: dt.datetime,
    *,
    until: dt.datetime | None = None,
    points: int = SPARKLINE_POINTS,
    base_url: str | None = None,
    timeout: float = TIMEOUT,
) -> dict[int, list[tuple[dt.datetime, float | None]]] | None:
    """Return {definition id: [(time, value), ...]} from Prometheus, oldest first.

    At most `points` points per definition, `step` apart, each the value
    Prometheus had then (its last sample, within its lookback). None when no
    PROMETHEUS_URL is set or a query fails: the caller falls back to the
    local history. One query per definition; the first failure ends them.
    """
    base_url = base_url or app_settings.PROMETHEUS_URL
    if not base_url:
        return None
    start, end, step = _range(since, until or timezone.now(), points)
    found: dict[int, list[tuple[dt.datetime, float | None]]] = {}
    for definition in definitions:
        result = query_range(
            base_url, promql_for(definition), start, end, step, timeout=timeout
        )
        if result is None:
            return None
        found[definition.pk] = _points(result[0][1] if result else [], points)
    return found


def promql_for_names(names: Sequence[str], *, additive: bool) -> str:
    """Return the query of several definitions' values over time, one series each.

    The same as promql_for() of each, in one query: the series keep their
    `__name__`, which tells whose value each is.
    """
    pattern = "|".join(re.escape(name) for name in names)
    selector = f"{{__name__=~{alerts.promql_string(pattern)}}}"
    if additive:
        return f"max by (__name__) (sum by (__name__, job, instance) ({selector}))"
    return (
        f"max by (__name__) ({selector}) and on (__name__) "
        f"(max by (__name__) (count by (__name__, job, instance) ({selector})) == 1)"
    )


def history_together(
    definitions: Iterable[MetricDefinition],
    since: dt.datetime,
    *,
    until: dt.datetime | None = None,
    points: int = SPARKLINE_POINTS,
    base_url: str | None = None,
    timeout: float = TIMEOUT,
) -> dict[int, list[tuple[dt.datetime, float | None]]] | None:
    """Return what history() returns, from a query per kind of definition.

    One query for the additive definitions and one for the others (per
    NAMES_PER_QUERY of them), all within `timeout` seconds together: a query
    that fails, or time that runs out before the last query, gives None,
    and the caller falls back to the local history.
    """
    base_url = base_url or app_settings.PROMETHEUS_URL
    if not base_url:
        return None
    deadline = time.monotonic() + timeout
    start, end, step = _range(since, until or timezone.now(), points)
    groups: dict[bool, dict[str, list[int]]] = {True: {}, False: {}}
    found: dict[int, list[tuple[dt.datetime, float | None]]] = {}
    for definition in definitions:
        found[definition.pk] = []
        names = groups[is_additive(definition)]
        for name in sample_names(definition):
            names.setdefault(name, []).append(definition.pk)
    for additive, names in groups.items():
        ordered = sorted(names)
        for first in range(0, len(ordered), NAMES_PER_QUERY):
            left = deadline - time.monotonic()
            if left <= 0:
                _failed(base_url, f"no answer within {timeout:g} s")
                return None
            chunk = ordered[first : first + NAMES_PER_QUERY]
            promql = promql_for_names(chunk, additive=additive)
            result = query_range(base_url, promql, start, end, step, timeout=left)
            if result is None:
                return None
            for labels, values in result:
                for pk in names.get(labels.get("__name__", ""), ()):
                    # Stored under both names (scraped both ways): the longer.
                    if len(values) > len(found[pk]):
                        found[pk] = _points(values, points)
    return found


def _range(
    since: dt.datetime, until: dt.datetime, points: int
) -> tuple[float, float, int]:
    """Return the start, end and step of `points` points from `since` to `until`.

    The last point is at `until`, so the newest value is in: Prometheus
    evaluates at start, start + step, ..., and a step rounded up to whole
    seconds would otherwise leave up to a step out at the end.
    """
    end = until.timestamp()
    step = max(1, math.ceil((end - since.timestamp()) / max(1, points - 1)))
    return end - step * max(0, points - 1), end, step


def _points(
    values: list[tuple[float, float]], points: int
) -> list[tuple[dt.datetime, float | None]]:
    return [
        (
            as_stored(dt.datetime.fromtimestamp(moment, tz=dt.UTC)),
            value if math.isfinite(value) else None,
        )
        for moment, value in values[-points:]
    ]


def _matrix(payload: Any) -> list[RangeSeries]:
    if payload.get("status") != "success":
        raise ValueError(f"Prometheus says {payload.get('error')!r}")
    data = payload["data"]
    if data.get("resultType") != "matrix":
        raise ValueError(f"a {data.get('resultType')!r}, not a matrix")
    return [
        (
            dict(item.get("metric") or {}),
            [(float(moment), float(value)) for moment, value in item["values"]],
        )
        for item in data["result"]
    ]


def _error_of(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read()).get("error") or exc.reason)
    except (OSError, ValueError, AttributeError):
        return str(exc.reason)


def _failed(base_url: str, problem: str) -> None:
    global _failure  # noqa: PLW0603 - once per process, until it answers
    failure = f"{base_url}: {problem}"
    if _failure != failure:
        _failure = failure
        logger.warning("Prometheus at %s cannot give a history: %s", base_url, problem)


def _answered(base_url: str) -> None:
    global _failure  # noqa: PLW0603
    if _failure is not None:
        _failure = None
        logger.info("Prometheus at %s answers again.", base_url)


def _unix(moment: float | dt.datetime) -> str:
    if isinstance(moment, dt.datetime):
        moment = moment.timestamp()
    return f"{float(moment):.3f}"


def _seconds(step: float | dt.timedelta) -> float:
    if isinstance(step, dt.timedelta):
        return step.total_seconds()
    return float(step)
