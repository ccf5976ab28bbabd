"""Name the metric families that definitions may not export: the app's own and others.

Validation runs in low modules that must not import telemetry, so telemetry
registers a function here that reports the families the served registry holds
besides the definitions (code instruments, other collectors); a static list
covers what every registry serves, so validation works before the first scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

import metricdemo.validators as validators

logger = logging.getLogger("metricdemo")

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

#: Returns {taken name: family that takes it} for families that are not definitions.
ServedFamilies = Callable[[], Mapping[str, str]]
_sources: list[ServedFamilies] = []


def register_served_families(source: ServedFamilies) -> None:
    """Add a function reporting the names that the served registry's families take."""
    if source not in _sources:
        _sources.append(source)


def unregister_served_families(source: ServedFamilies) -> None:
    """Remove a function added with register_served_families()."""
    if source in _sources:
        _sources.remove(source)


def self_metric_names() -> dict[str, str]:
    """Return {taken name: instrument name} for the app's own metrics."""
    return {
        taken: name
        for name, kind, unit in SELF_METRICS.values()
        for taken in validators.taken_names(name, kind, unit)
    }


def served_names() -> dict[str, str]:
    """Return {taken name: family} for every served family that is not a definition."""
    names = {
        taken: family + ("_info" if family_type == "info" else "")
        for family, family_type in STATIC_FAMILIES
        for taken in validators.family_names(family, family_type)
    }
    for source in list(_sources):
        try:
            names.update(source())
        except Exception:  # noqa: BLE001 - validation must work without the hook
            logger.exception("Reading the served metric families failed.")
    return names


def claimant(taken: Iterable[str], served: Mapping[str, str]) -> str | None:
    """Return the served family that takes one of the names in `taken`, or None."""
    for name in sorted(taken):
        if name in served:
            return served[name]
        if name.startswith(STATIC_PREFIXES):
            return name
    return None
