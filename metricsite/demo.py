"""The demo's metrics: a manual counter, process callbacks and stored definitions."""

from __future__ import annotations

import gc
import os
import resource
import threading
from typing import Any

from opentelemetry import metrics

from metricdemo import register_callback

MANUAL_COUNTER_ATTRIBUTES = {"const_attr_1": "1"}
_counter_started = False
_counter_lock = threading.Lock()


def start_manual_counter() -> None:
    """Make the seed's manual counter and add 1, then 10, once per process."""
    global _counter_started
    with _counter_lock:
        if _counter_started:
            return
        _counter_started = True
    meter = metrics.get_meter("metricsite.demo")
    counter = meter.create_counter(
        "metricdemo.demo.manual",
        description="This is a simple demo for Counter usage",
    )
    counter.add(1, MANUAL_COUNTER_ATTRIBUTES)
    counter.add(10, MANUAL_COUNTER_ATTRIBUTES)


def cpu_time() -> list[tuple[float, dict[str, Any]]]:
    """Return this process's CPU time in seconds, split by user and system."""
    times = os.times()
    return [(times.user, {"state": "user"}), (times.system, {"state": "system"})]


def resident_memory() -> float:
    """Return this process's resident memory in bytes."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        # Without /proc (macOS), report the peak instead, which getrusage gives
        # in kilobytes on Linux and bytes on macOS.
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if os.uname().sysname == "Darwin" else peak * 1024


def thread_count() -> int:
    """Return the number of live Python threads."""
    return threading.active_count()


def gc_collections() -> list[tuple[int, dict[str, Any]]]:
    """Return how many collections each garbage-collector generation has run."""
    return [
        (stats["collections"], {"generation": str(generation)})
        for generation, stats in enumerate(gc.get_stats())
    ]


def register_process_callbacks() -> None:
    """Register the process callbacks under the names the demo definitions use."""
    register_callback("process.cpu_time", cpu_time, description="CPU seconds by state")
    register_callback(
        "process.memory.rss", resident_memory, description="resident memory in bytes"
    )
    register_callback("process.threads", thread_count, description="live threads")
    register_callback(
        "process.gc.collections", gc_collections, description="GC runs by generation"
    )


DEMO_DEFINITIONS: list[dict[str, Any]] = [
    {
        "name": "metricdemo.demo.observable",
        "description": "This is a simple demo for ObservableCounter usage",
        "kind": "counter",
        "source": "constant",
        "value": 10,
        "attributes": {"const_attr_3": "3"},
    },
    {
        "name": "metricdemo.demo.users",
        "description": "Registered user accounts",
        "unit": "{user}",
        "kind": "gauge",
        "source": "row_count",
        "model": "auth.User",
    },
    {
        "name": "metricdemo.demo.definitions",
        "description": "Enabled metric definitions by kind",
        "unit": "{definition}",
        "kind": "gauge",
        "source": "row_count",
        "model": "metricdemo.MetricDefinition",
        "filters": {"enabled": True},
        "group_by": "kind",
    },
    {
        "name": "metricdemo.demo.session_cookie_age",
        "description": "Lifetime of a session cookie (SESSION_COOKIE_AGE)",
        "unit": "s",
        "kind": "gauge",
        "source": "setting",
        "setting": "SESSION_COOKIE_AGE",
    },
    {
        "name": "metricdemo.process.cpu_time",
        "description": "CPU time used by this process",
        "unit": "s",
        "kind": "counter",
        "source": "callback",
        "callback": "process.cpu_time",
    },
    {
        "name": "metricdemo.process.memory.rss",
        "description": "Resident memory of this process",
        "unit": "By",
        "kind": "gauge",
        "source": "callback",
        "callback": "process.memory.rss",
    },
    {
        "name": "metricdemo.process.threads",
        "description": "Live Python threads in this process",
        "unit": "{thread}",
        "kind": "gauge",
        "source": "callback",
        "callback": "process.threads",
    },
    {
        "name": "metricdemo.process.gc.collections",
        "description": "Garbage collections run by this process, by generation",
        "unit": "{collection}",
        "kind": "counter",
        "source": "callback",
        "callback": "process.gc.collections",
    },
]
