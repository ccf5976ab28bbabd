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
        "metricdemo.demo.counter",
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
        "name": "metricdemo.demo.observable_counter",
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
        "name": "metricdemo.demo.shop.orders_open",
        "description": "Orders waiting for payment or shipping, by status and country",
        "unit": "{order}",
        "kind": "gauge",
        "source": "row_count",
        "model": "demoshop.Order",
        "filters": {"status__in": ["pending", "paid"]},
        "group_by": "status, customer__country",
        "max_series": 100,
    },
    {
        "name": "metricdemo.demo.shop.revenue_24h",
        "description": "Revenue of the orders paid in the last 24 hours, in euros",
        "unit": "{EUR}",
        "kind": "gauge",
        "source": "row_count",
        "model": "demoshop.Order",
        "aggregate": "sum",
        "field": "total",
        "filters": {"paid_at__gte": "now-24h"},
    },
    {
        "name": "metricdemo.demo.shop.order_value_today",
        "description": "Average value of the orders placed today, in euros",
        "unit": "{EUR}",
        "kind": "gauge",
        "source": "row_count",
        "model": "demoshop.Order",
        "aggregate": "avg",
        "field": "total",
        "filters": {"created_at__gte": "now/d"},
    },
    {
        "name": "metricdemo.demo.shop.oldest_pending_order.created",
        "description": "When the oldest order still waiting for payment was placed "
        "(Unix time; time() - this is its age)",
        "unit": "s",
        "kind": "gauge",
        "source": "row_count",
        "model": "demoshop.Order",
        "aggregate": "min",
        "field": "created_at",
        "filters": {"status": "pending"},
    },
    {
        "name": "metricdemo.demo.shop.oldest_pending_order.age",
        "description": "How long the oldest order still waiting for payment has waited",
        "unit": "s",
        "kind": "gauge",
        "source": "row_count",
        "model": "demoshop.Order",
        "aggregate": "max",
        "field": "now - created_at",
        "filters": {"status": "pending"},
    },
    {
        "name": "metricdemo.demo.shop.order_value",
        "description": "Values of the orders placed, in euros",
        "unit": "{EUR}",
        "kind": "histogram",
        "source": "row_count",
        "model": "demoshop.Order",
        "field": "total",
        "buckets": [10, 25, 50, 100, 250, 500, 1000],
    },
    {
        "name": "metricdemo.demo.shop.time_to_payment",
        "description": "Time from placing an order to paying it, for the paid orders",
        "unit": "s",
        "kind": "histogram",
        "source": "row_count",
        "model": "demoshop.Order",
        "field": "paid_at - created_at",
        "filters": {"paid_at__isnull": False},
        # 1, 5, 15 and 30 minutes, 1, 2 and 6 hours, 1 and 3 days.
        "buckets": [60, 300, 900, 1800, 3600, 7200, 21600, 86400, 259200],
    },
    {
        "name": "metricdemo.demo.shop.time_to_payment.average",
        "description": "Average time from placing an order to paying it",
        "unit": "s",
        "kind": "gauge",
        "source": "row_count",
        "model": "demoshop.Order",
        "aggregate": "avg",
        "field": "paid_at - created_at",
        "filters": {"paid_at__isnull": False},
    },
    {
        "name": "metricdemo.demo.shop.customers_7d",
        "description": "Distinct customers who ordered in the last 7 days",
        "unit": "{customer}",
        "kind": "gauge",
        "source": "row_count",
        "model": "demoshop.Order",
        "aggregate": "count_distinct",
        "field": "customer",
        "filters": {"created_at__gte": "now-7d"},
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

#: The demo's alert rules, by the name of their definition: what `metrics rules`
#: writes for the demo (docs/alerts.md).
DEMO_ALERT_RULES = {
    "metricdemo.demo.shop.orders_open": [
        {
            "name": "OrdersWaitingForPayment",
            "operator": ">",
            "threshold": 20,
            "label_filter": {"status": "pending"},
            # Every process exports the same count: max, not sum, per country.
            "aggregation": "max",
            "by_labels": "country",
            "for_duration": 600,
            "severity": "warning",
            "summary": "{{ $value }} orders from {{ $labels.country }} wait "
            "for payment",
            "runbook_url": "https://wiki.example.com/shop/payments",
        },
        {
            "name": "ShopOrdersMissing",
            "operator": "absent",
            "for_duration": 300,
            "severity": "critical",
            "summary": "The shop's open orders are not exported",
            "description": "Check the definition in the admin and the database.",
        },
    ],
    "metricdemo.demo.shop.time_to_payment": [
        {
            "name": "SlowPayments",
            "operator": ">",
            "threshold": 86400,
            "quantile": 0.9,
            "aggregation": "sum",
            "for_duration": 1800,
            "severity": "info",
            "summary": "The slowest tenth of payments take over "
            "{{ $value | humanizeDuration }}",
        },
    ],
}
