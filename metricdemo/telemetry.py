"""Own the MeterProvider, the Prometheus reader and the definitions' instruments."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import DatabaseError, router
from opentelemetry import metrics as otel_metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.registry import Collector

import metricdemo
from metricdemo import evaluation
from metricdemo.conf import app_settings

logger = logging.getLogger("metricdemo")

# (name, kind, unit, description): what makes two instruments the same to the SDK.
InstrumentKey = tuple[str, str, str, str]


@dataclass(frozen=True)
class ActiveDefinition:
    """An enabled definition as loaded, with the key of its instrument."""

    key: InstrumentKey
    definition: object  # a detached MetricDefinition row

    @property
    def name(self) -> str:
        return self.key[0]


class DefinitionInstruments:
    """Keep one observable instrument per enabled definition, in step with the database.

    OpenTelemetry cannot remove an instrument, so each instrument's callback
    reports what the current definitions say about it: nothing, once its
    definition is deleted, disabled or changed into another instrument, which
    makes its series disappear from the next collection.
    """

    def __init__(self, meter: otel_metrics.Meter) -> None:
        self._meter = meter
        self._instruments: dict[InstrumentKey, object] = {}
        self._active: dict[InstrumentKey, ActiveDefinition] = {}
        self._observations: dict[InstrumentKey, list[Observation]] = {}
        self._token: str | None = None
        self._failures: dict[str, str] = {}
        self._lock = threading.RLock()

    @property
    def active(self) -> list[ActiveDefinition]:
        """Return the definitions currently turned into instruments."""
        return list(self._active.values())

    def prepare(self) -> None:
        """Reload definitions if they changed, then evaluate them for one collection."""
        with self._lock:
            self.refresh()
            self._observations = {
                key: observations
                for key, observations in (
                    (item.key, self._evaluate(item)) for item in self._active.values()
                )
                if observations
            }

    def refresh(self) -> None:
        """Reload the enabled definitions when the change stamp moved."""
        from metricdemo.models import ChangeStamp, MetricDefinition

        using = router.db_for_read(MetricDefinition)
        try:
            with evaluation._savepoint_if_in_transaction(using):
                token = ChangeStamp.current(using)
                if token == self._token:
                    return
                rows = list(MetricDefinition.objects.using(using).filter(enabled=True))
        except DatabaseError as exc:
            # Before `migrate` the tables do not exist: export nothing from the
            # database, and look again on the next collection.
            self._forget_all()
            self._log_failure(
                "<definitions>", f"cannot load definitions (has `migrate` run?): {exc}"
            )
            return
        self._clear_failure("<definitions>")
        self._apply(rows)
        self._token = token

    def _apply(self, rows: Iterable) -> None:
        active = {}
        for row in rows:
            key: InstrumentKey = (row.name, row.kind, row.unit, row.description)
            active[key] = ActiveDefinition(key, row)
            if key not in self._instruments:
                self._instruments[key] = self._create_instrument(key)
        self._active = active
        for name in set(self._failures) - {item.name for item in active.values()}:
            self._failures.pop(name, None)

    def _forget_all(self) -> None:
        self._active = {}
        self._token = None

    def _create_instrument(self, key: InstrumentKey):
        name, kind, unit, description = key
        create = {
            "counter": self._meter.create_observable_counter,
            "updowncounter": self._meter.create_observable_up_down_counter,
            "gauge": self._meter.create_observable_gauge,
        }[kind]
        return create(
            name,
            callbacks=[self._callback_for(key)],
            unit=unit,
            description=description,
        )

    def _callback_for(
        self, key: InstrumentKey
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            return self._observations.get(key, ())

        return callback

    def _evaluate(self, item: ActiveDefinition) -> list[Observation]:
        result = evaluation.evaluate(item.definition)
        if not result.ok:
            self._log_failure(item.name, result.error)
            return []
        self._clear_failure(item.name)
        return [
            Observation(value, attributes) for value, attributes in result.observations
        ]

    def _log_failure(self, name: str, message: str) -> None:
        # Log a failure once, not on every scrape, until it changes or recovers.
        if self._failures.get(name) != message:
            self._failures[name] = message
            logger.warning("Metric %s is left out of the export: %s", name, message)

    def _clear_failure(self, name: str) -> None:
        if self._failures.pop(name, None) is not None:
            logger.info("Metric %s is exported again.", name)


class DefinitionsCollector(Collector):
    """Serve the app's reader to a prometheus_client registry, one collection at a time.

    The reader's own collector is not safe for concurrent scrapes, and the
    definitions must be evaluated just before the SDK runs the callbacks, so
    the reader lives in a private registry and this collector wraps it.
    """

    def __init__(self, private: CollectorRegistry, instruments: DefinitionInstruments):
        self._private = private
        self._instruments = instruments
        self._lock = threading.Lock()

    def describe(self) -> list:
        """Describe nothing, so registering runs no collection (and no query)."""
        return []

    def collect(self):
        with self._lock:
            self._instruments.prepare()
            families = list(self._private.collect())
        yield from families


@dataclass
class Telemetry:
    """The app's OpenTelemetry wiring, made once per process."""

    meter_provider: MeterProvider
    reader: PrometheusMetricReader
    instruments: DefinitionInstruments
    collector: DefinitionsCollector
    registry: CollectorRegistry
    is_global: bool


_telemetry: Telemetry | None = None
_setup_lock = threading.Lock()


def setup(registry: CollectorRegistry = REGISTRY) -> Telemetry:
    """Create the MeterProvider and reader once; later calls return the same wiring."""
    global _telemetry
    with _setup_lock:
        if _telemetry is not None:
            return _telemetry
        private = CollectorRegistry(auto_describe=False)
        reader = PrometheusMetricReader(registry=private)
        provider = MeterProvider(metric_readers=[reader])
        is_global = False
        if app_settings.SET_GLOBAL_METER_PROVIDER:
            is_global = _set_global_meter_provider(provider)
        meter = provider.get_meter(app_settings.METER_NAME, metricdemo.__version__)
        instruments = DefinitionInstruments(meter)
        collector = DefinitionsCollector(private, instruments)
        registry.register(collector)
        _telemetry = Telemetry(
            provider, reader, instruments, collector, registry, is_global
        )
        return _telemetry


def get_telemetry() -> Telemetry:
    """Return the process's wiring, creating it if the app has not been readied."""
    return _telemetry or setup()


def _set_global_meter_provider(provider: MeterProvider) -> bool:
    current = otel_metrics.get_meter_provider()
    if isinstance(current, MeterProvider):
        logger.info(
            "A global MeterProvider is already set (%r); metricdemo exports its "
            "definitions through its own provider. See the README to export your "
            "code instruments on /metrics too.",
            current,
        )
        return False
    otel_metrics.set_meter_provider(provider)
    return otel_metrics.get_meter_provider() is provider
