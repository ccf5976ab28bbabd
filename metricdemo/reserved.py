"""Name the metric families that definitions may not export: the app's own."""

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
