"""Own the MeterProviders: the long-lived one, the definitions' own, their readers."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence

from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk import metrics as sdk_metrics
from opentelemetry.sdk.metrics import AlwaysOffExemplarFilter, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource

import metricdemo
from metricdemo.conf import app_settings
from metricdemo.telemetry.reader import ExpositionReader

logger = logging.getLogger("metricdemo")

# (name, kind, unit, description): what makes two instruments the same to the SDK.
InstrumentKey = tuple[str, str, str, str]


def long_lived_provider(readers: list[MetricReader]) -> MeterProvider:
    """Return the provider of the code instruments and the self-metrics.

    Its one reader is the app's ExpositionReader, which /metrics and the
    OTLP pusher share: the SDK runs the observable callbacks once per reader
    collection, so a second reader would run them twice.
    """
    return MeterProvider(metric_readers=readers)


class Reporter:
    """Be one instrument's callback: report the Observations last handed to it.

    A scrape calls every definition's callback; this one only reads an
    attribute, where a lookup in a dict keyed by the instrument's key would
    hash and compare four strings per definition.
    """

    __slots__ = ("observations",)

    def __init__(self) -> None:
        self.observations: Sequence[Observation] = ()

    def __call__(self, options: CallbackOptions) -> Sequence[Observation]:
        """Return the Observations handed over last (none at first)."""
        return self.observations


class DefinitionsProvider:
    """Hold the definitions' instruments on a MeterProvider of their own.

    OpenTelemetry can never remove an instrument from a MeterProvider; only
    dropping the provider frees them. So the definitions live apart from the
    long-lived (global) provider of the code instruments and the self-metrics,
    on one that is replaced when a definition's instrument is retired.
    """

    def __init__(self, cardinality_limits: dict[type, int]) -> None:
        """Make the provider, with the one reader that /metrics and pushes share."""
        self.reader = ExpositionReader(cardinality_limits=cardinality_limits)
        # The provider is shut down when it is replaced; at exit the current
        # one has nothing to flush (its reader is only ever collected), so it
        # needs no atexit handler. Observable callbacks carry no trace
        # context, so no measurement is offered as an exemplar. (A View that
        # gave the instruments no reservoir at all would save a little more
        # per scrape, but the SDK checks each instrument a View matches
        # against every other: seconds for the first scrape of 10,000.)
        self.meter_provider = MeterProvider(
            metric_readers=[self.reader],
            resource=process_resource(os.getpid()),
            shutdown_on_exit=False,
            exemplar_filter=AlwaysOffExemplarFilter(),
        )
        self.meter = self.meter_provider.get_meter(
            app_settings.METER_NAME, metricdemo.__version__
        )
        self.instruments: dict[InstrumentKey, object] = {}
        #: {key: the callback of its instrument}.
        self.reporters: dict[InstrumentKey, Reporter] = {}

    def shutdown(self) -> None:
        """Shut the provider down and free the instruments now."""
        self.meter_provider.shutdown()
        self.instruments.clear()
        self.reporters.clear()
        # The SDK's instruments and its measurement consumer refer to each
        # other, so only the cycle collector would free them, at its own pace:
        # the garbage of many replacements would pile up first, and the process
        # keep the memory it reached (a full collection per replacement costs
        # more than the rebuild). Emptying the consumer breaks those cycles.
        # These are SDK internals: where they differ, the collector still
        # frees everything, later.
        consumer = getattr(self.meter_provider, "_measurement_consumer", None)
        for name in ("_async_instruments", "_reader_storages"):
            held = getattr(consumer, name, None)
            if isinstance(held, list | dict):
                held.clear()


@functools.lru_cache(maxsize=1)
def process_resource(pid: int) -> Resource:
    """Return the resource of this process, as a MeterProvider makes by default.

    Made once per process (the pid tells a forked child apart, whose
    service.instance.id differs): Resource.create() starts a thread pool for
    its detectors, which would cost more than rebuilding a small provider.
    """
    return Resource.create()


def cardinality_limits() -> dict[type, int]:
    """Return the series each observable instrument may export per collection.

    The SDK's default of 2000 would fold a grouped row count with more groups,
    or the per-definition self-metrics of a site with thousands of
    definitions, into one overflow series.
    """
    limit = int(app_settings.CARDINALITY_LIMIT)
    return {
        sdk_metrics.ObservableCounter: limit,
        sdk_metrics.ObservableUpDownCounter: limit,
        sdk_metrics.ObservableGauge: limit,
    }


def set_global_meter_provider(provider: MeterProvider) -> bool:
    """Make `provider` OpenTelemetry's global one, unless another is set already.

    Returns whether it is the global provider now; logs why not otherwise.
    """
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
