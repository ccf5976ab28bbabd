"""Own the app's OpenTelemetry wiring: made once per process by setup()."""

from __future__ import annotations

import atexit
import functools
import os
import threading
from dataclasses import dataclass

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
from metricdemo.telemetry.reader import ExpositionReader
from metricdemo.telemetry.self_metrics import SelfMetrics


@dataclass
class Telemetry:
    """The app's OpenTelemetry wiring, made once per process."""

    meter_provider: MeterProvider
    reader: ExpositionReader
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
        limits = cardinality_limits()
        reader = ExpositionReader(cardinality_limits=limits)
        # The pusher is no reader of the provider: it takes the collections
        # /metrics takes, so each observable callback runs once per
        # collection, however the values leave the process.
        pusher = otlp.create_pusher()
        provider = long_lived_provider([reader])
        is_global = False
        if app_settings.SET_GLOBAL_METER_PROVIDER:
            is_global = set_global_meter_provider(provider)
        meter = provider.get_meter(app_settings.METER_NAME, metricdemo.__version__)
        new_provider = functools.partial(DefinitionsProvider, limits)
        instruments = DefinitionInstruments(SelfMetrics(meter), new_provider)
        collector = DefinitionsCollector(reader, instruments, registry)
        registry.register(collector)
        os.register_at_fork(
            before=collector.before_fork,
            after_in_parent=collector.after_fork_in_parent,
            after_in_child=collector.after_fork_in_child,
        )
        if pusher is not None:
            pusher.start(source=collector.collect_for_push)
            atexit.register(pusher.shutdown)
        naming.register_served_families(collector.served_families)
        _telemetry = Telemetry(
            provider, reader, instruments, collector, registry, is_global, pusher
        )
        return _telemetry


def served_reader() -> ExpositionReader:
    """Return a new reader for a MeterProvider of the host's; /metrics serves it too.

    For a project that sets its own global MeterProvider before the app is
    ready: ``MeterProvider(metric_readers=[served_reader()])``. Its families
    are served after the app's own, with their scope labels and no second
    target_info.
    """
    reader = ExpositionReader(cardinality_limits=cardinality_limits())
    get_telemetry().collector.serve(reader)
    return reader


def get_telemetry() -> Telemetry:
    """Return the process's wiring, creating it if the app has not been readied."""
    return _telemetry or setup()
