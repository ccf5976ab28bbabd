"""Name the families served beside the definitions: the app's own and the usual ones.

Plain data, read by naming, which refuses definitions that would take these
names, and by the self-metrics, which export the app's own.
"""

from __future__ import annotations

#: The app's own metrics, exported next to the definitions, as
#: (instrument name, kind, unit); their exported names are reserved.
SELF_METRICS: dict[str, tuple[str, str, str]] = {
    "evaluations": ("metricdemo.evaluations", "counter", "{evaluation}"),
    "duration": ("metricdemo.evaluation.duration", "gauge", "s"),
    "last_success": ("metricdemo.last_success.timestamp", "gauge", "s"),
    "loads": ("metricdemo.definitions.loads", "counter", "{check}"),
    "active": ("metricdemo.definitions.active", "gauge", "{definition}"),
}

#: Families served before any scrape, as (name, type): OpenTelemetry's
#: target_info and prometheus_client's platform collector.
STATIC_FAMILIES: tuple[tuple[str, str], ...] = (("target", "info"), ("python", "info"))
#: Name prefixes of prometheus_client's process and garbage-collector
#: families, whose set varies by platform and version.
STATIC_PREFIXES = ("process_", "python_gc_")
