"""Profile a piece of work with cProfile and say which code its time went to."""

from __future__ import annotations

import cProfile
import gc
import pstats
import re
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from bench.config import Config
from bench.table import render

# (substring of a file path, area), first match wins.
AREAS = [
    ("metricdemo/telemetry/", "metricdemo.telemetry"),
    ("metricdemo/evaluation/", "metricdemo.evaluation"),
    ("metricdemo/sources.py", "metricdemo.sources"),
    ("metricdemo/exposition/", "metricdemo.exposition (rendering)"),
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


def report(work: Callable[[], Any], config: Config) -> list[str]:
    """Profile `work` and return the lines that say where its time went.

    The areas come first, then the top functions by self time and, for a long
    profile, by cumulative time.
    """
    runs = config.profile_scrapes
    stats = profile(work, runs)
    area_rows = [
        [area, f"{share:.0%}", f"{seconds / runs * 1000:.2f}"]
        for area, seconds, share in areas(stats)
        if share >= 0.005
    ]
    lines = [
        f"cProfile, {runs} runs; self time by area, builtins counted with "
        "their callers (the profiler inflates code that makes many small "
        "calls):",
        render(["area", "share", "ms/run, profiled"], area_rows),
    ]
    orders = ["tottime", "cumtime"] if config.long_profile else ["tottime"]
    for order in orders:
        what = "self" if order == "tottime" else "cumulative"
        rows = [
            [
                name,
                calls // runs,
                f"{own / runs * 1000:.2f}",
                f"{cumulative / runs * 1000:.2f}",
            ]
            for name, calls, own, cumulative in top(stats, config.top_functions, order)
        ]
        lines += [
            f"Top functions by {what} time:",
            render(["function", "calls/run", "self ms", "cumulative ms"], rows),
        ]
    return lines


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
