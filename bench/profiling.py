"""Profile a piece of work with cProfile and say which code its time went to."""

from __future__ import annotations

import cProfile
import gc
import pstats
import re
from collections import defaultdict
from collections.abc import Callable
from typing import Any

# (substring of a file path, area), first match wins.
AREAS = [
    ("metricdemo/telemetry.py", "metricdemo.telemetry"),
    ("metricdemo/evaluation.py", "metricdemo.evaluation"),
    ("metricdemo/sources.py", "metricdemo.sources"),
    ("metricdemo/", "metricdemo, other modules"),
    ("opentelemetry/sdk/metrics", "OpenTelemetry SDK metrics"),
    ("opentelemetry/exporter/prometheus", "OpenTelemetry Prometheus exporter"),
    ("opentelemetry/", "OpenTelemetry API and utilities"),
    ("prometheus_client/", "prometheus_client exposition"),
    ("django/db/backends", "Django database backend"),
    ("django/db/", "Django ORM"),
    ("django_prometheus/", "django-prometheus"),
    ("django/", "Django, other"),
    ("psycopg", "database driver"),
    ("bench/", "benchmark harness"),
]


def profile(work: Callable[[], Any], times: int) -> pstats.Stats:
    """Run `work` `times` times under cProfile and return the statistics.

    The garbage collector is paused: a collection would be charged to
    whichever allocation happened to trigger it.
    """
    profiler = cProfile.Profile()
    gc.collect()
    gc.disable()
    profiler.enable()
    try:
        for _ in range(times):
            work()
    finally:
        profiler.disable()
        gc.enable()
    return pstats.Stats(profiler)


def area_of(function: tuple[str, int, str]) -> str | None:
    """Return the area a profiled function belongs to (None for builtins)."""
    filename, _, name = function
    if filename == "~":
        if "sqlite3" in name or "psycopg" in name:
            return "database driver"
        if "acquire" in name and "lock" in name:
            return "waiting on a lock"
        return None
    for fragment, area in AREAS:
        if fragment in filename:
            return area
    return "Python standard library"


def areas(stats: pstats.Stats) -> list[tuple[str, float, float]]:
    """Return (area, seconds, share) by self time, most expensive first.

    The self time of a builtin (a dict method, sorted, a string join) counts
    towards the area of the code that called it, split by the callers' shares.
    """
    totals: dict[str, float] = defaultdict(float)
    for function, (_, _, self_time, _, callers) in stats.stats.items():
        area = area_of(function)
        if area is not None:
            totals[area] += self_time
            continue
        by_caller = {caller: edge[2] for caller, edge in callers.items()}
        spread = sum(by_caller.values())
        if not spread:
            totals["Python builtins"] += self_time
            continue
        for caller, seconds in by_caller.items():
            owner = area_of(caller) or "Python builtins"
            totals[owner] += self_time * seconds / spread
    overall = sum(totals.values()) or 1.0
    return sorted(
        ((area, seconds, seconds / overall) for area, seconds in totals.items()),
        key=lambda row: -row[1],
    )


def top(
    stats: pstats.Stats, count: int, key: str
) -> list[tuple[str, int, float, float]]:
    """Return (function, calls, self seconds, cumulative seconds), by `key`."""
    index = {"tottime": 2, "cumtime": 3}[key]
    rows = sorted(stats.stats.items(), key=lambda item: -item[1][index])
    return [
        (label(function), calls, self_time, cumulative)
        for function, (_, calls, self_time, cumulative, _) in rows[:count]
    ]


def label(function: tuple[str, int, str]) -> str:
    """Return `package/module.py:line(function)`, without the install prefix."""
    filename, line, name = function
    if filename == "~":
        return name
    filename = re.sub(r"^.*/(site-packages|python3\.\d+)/", "", filename)
    filename = re.sub(r"^.*/(bench|metricdemo|metricsite)/", r"\1/", filename)
    return f"{filename}:{line}({name})"
