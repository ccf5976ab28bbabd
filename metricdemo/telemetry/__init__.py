"""Own the app's OpenTelemetry wiring: made once per process by setup()."""

from __future__ import annotations

import functools
import os
import threading
from dataclasses import dataclass

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import REGISTRY, CollectorRegistry

import metricdemo
from metricdemo import naming, otlp
from metricdemo.conf import app_settings
from metricdemo.telemetry.collector import DefinitionsCollector
from metricdemo.telemetry.instruments import DefinitionInstruments
from metricdemo.telemetry.provider import (
    DefinitionsProvider,
    cardinality_limits,
    long_lived_provider,
    set_global_meter_provider,
)
from metricdemo.telemetry.self_metrics import SelfMetrics


@dataclass
class Telemetry:
    """The app's OpenTelemetry wiring, made once per process."""

    meter_provider: MeterProvider
    reader: PrometheusMetricReader
    instruments: DefinitionInstruments
    collector: DefinitionsCollector
    registry: CollectorRegistry
    is_global: bool
    pusher: otlp.OTLPPusher | None = None


_telemetry: Telemetry | None = None
_setup_lock = threading.Lock()


def setup(registry: CollectorRegistry = REGISTRY) -> Telemetry:
    """Create the MeterProvider and reader once; later calls return the same wiring.

    The first call registers a collector in `registry`, fork hooks with the
    os module, and the served families with naming; with an OTLP endpoint set
    it starts the push thread, and with SET_GLOBAL_METER_PROVIDER it sets
    OpenTelemetry's global provider.
    """
    global _telemetry
    with _setup_lock:
        if _telemetry is not None:
            return _telemetry
        private = CollectorRegistry(auto_describe=False)
        limits = cardinality_limits()
        reader = PrometheusMetricReader(registry=private, cardinality_limits=limits)
        pusher = otlp.create_pusher(cardinality_limits=limits)
        provider = long_lived_provider([reader] if pusher is None else [reader, pusher])
        is_global = False
        if app_settings.SET_GLOBAL_METER_PROVIDER:
            is_global = set_global_meter_provider(provider)
        meter = provider.get_meter(app_settings.METER_NAME, metricdemo.__version__)
        new_provider = functools.partial(
            DefinitionsProvider, private, limits, for_push=pusher is not None
        )
        instruments = DefinitionInstruments(SelfMetrics(meter), new_provider)
        collector = DefinitionsCollector(private, instruments, registry)
        registry.register(collector)
        os.register_at_fork(
            before=collector.before_fork,
            after_in_parent=collector.after_fork_in_parent,
            after_in_child=collector.after_fork_in_child,
        )
        if pusher is not None:
            pusher.start(collector.prepared, instruments.collect_for_push)
        naming.register_served_families(collector.served_families)
        _telemetry = Telemetry(
            provider, reader, instruments, collector, registry, is_global, pusher
        )
        return _telemetry


def get_telemetry() -> Telemetry:
    """Return the process's wiring, creating it if the app has not been readied."""
    return _telemetry or setup()
