"""Own the collection of the app's readers, its clash rule, and its fork hooks."""

from __future__ import annotations

import contextvars
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from opentelemetry.sdk.metrics.export import (
    Histogram,
    Metric,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

import metricdemo
from metricdemo import evaluation, exposition, naming
from metricdemo.conf import app_settings
from metricdemo.exposition.render import Collected
from metricdemo.telemetry.flight import SingleFlight
from metricdemo.telemetry.instruments import DefinitionInstruments
from metricdemo.telemetry.provider import process_resource
from metricdemo.telemetry.reader import ExpositionReader

logger = logging.getLogger("metricdemo")

# Seconds fork() waits for a collection in progress to finish.
FORK_WAIT = 30.0

# Set while /metrics renders the served registry: this collector then yields
# its collection as it is, for the renderer, instead of prometheus_client
# families.
_rendering: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "metricdemo_rendering", default=False
)


@contextmanager
def rendering() -> Iterator[None]:
    """Make DefinitionsCollector.collect() yield a Collected item in this block."""
    token = _rendering.set(True)
    try:
        yield
    finally:
        _rendering.reset(token)


class DefinitionsCollector(Collector):
    """Collect the app's readers, one collection at a time, for scrapes and pushes.

    Registered in the served registry, so that /metrics, and anything else
    that serves that registry, finds the app's metrics in it: /metrics
    renders the collection itself; another consumer (django-prometheus's
    view, prometheus_client's own server) gets prometheus_client families
    with today's names. It also learns, from each collection and from the
    served registry, the families served beside the definitions.
    """

    def __init__(
        self,
        reader: ExpositionReader,
        instruments: DefinitionInstruments,
        served: CollectorRegistry,
    ) -> None:
        """Collect `reader` (the long-lived provider's) and the definitions' reader.

        `served` is the registry this collector is served from.
        """
        self._reader = reader
        self._instruments = instruments
        self._served = served
        #: {taken name: family} of the families served last that are not
        #: definitions (None before the first collection).
        self._seen: dict[str, str] | None = None
        # (the names others take, the definitions' families, the dropped
        # definitions' names) of the last clash check.
        self._clashes: tuple | None = None
        self._lock = threading.Lock()
        self._held_for_fork = False
        # Scrapes and pushes that arrive during a collection share it.
        self._flight: SingleFlight[Collected] = SingleFlight()
        self._fallback = exposition.Renderer()
        # Readers of the host's own providers (telemetry.served_reader()).
        self._extra: list[ExpositionReader] = []

    def serve(self, reader: ExpositionReader) -> None:
        """Collect `reader` with the app's own, after them, on every collection."""
        self._extra.append(reader)

    def describe(self) -> list:
        """Describe nothing, so registering runs no collection (and no query)."""
        return []

    def collect(self):
        collected = self.collected()
        if _rendering.get():
            yield collected
            return
        # Someone other than /metrics serves the registry: give it
        # prometheus_client families, with the names of the classic format.
        text = self._fallback.render([collected], exposition.DEFAULT).decode()
        yield from text_string_to_metric_families(text)

    def collected(self) -> Collected:
        """Return one collection of the app's readers, with the definitions evaluated.

        A call made while another collection runs waits for it and shares it.
        """
        return self._flight.run(self._collect_once, evaluation.scrape_deadline())

    def collect_for_push(self) -> MetricsData | None:
        """Return one collection as a single MetricsData, for an OTLP push."""
        from metricdemo import otlp

        data = [d for d in self.collected().data if d is not None]
        if not data:
            return None
        first, *rest = data
        for more in rest:
            first = otlp.combined(first, more)
        return first

    def _collect_once(self) -> Collected:
        with self.prepared():
            return self._gather()

    def _gather(self) -> Collected:
        own = self._reader.collect_now()
        provider = self._instruments.provider
        definitions = None if provider is None else provider.reader.collect_now()
        definitions = _with_metrics(definitions, self._instruments.histogram_metrics())
        if any(reader.shut_down for reader in self._extra):
            self._extra = [reader for reader in self._extra if not reader.shut_down]
        extra = [self._collect_extra(reader) for reader in self._extra]
        extra = [data for data in extra if data is not None]
        others = self._learn(own, *extra)
        if definitions is not None:
            definitions = self._without_clashes(definitions, others)
        resource = None
        if own is not None and own.resource_metrics:
            resource = own.resource_metrics[0].resource
        data = tuple(d for d in (own, *extra, definitions) if d is not None)
        return Collected(data, resource)

    def _collect_extra(self, reader: ExpositionReader) -> MetricsData | None:
        try:
            return reader.collect_now()
        except Exception:  # noqa: BLE001 - a host's provider must not fail the scrape
            logger.exception("Collecting a host's MeterProvider failed.")
            return None

    def served_families(self) -> dict[str, str]:
        """Return {taken name: family} for the served registry's other families.

        Registered with naming, so that validation, which must not import this
        package, knows them: what the registry's collectors describe, and the
        families (code instruments, target_info) that the last collection
        served. Collects once first, without evaluating, if none has run yet.
        """
        if self._seen is None:
            self.learn_families()
        return self._registry_families()

    def learn_families(self) -> None:
        """Collect the long-lived provider once, not evaluating, to learn its families.

        Validation in a process that has not been scraped yet needs the names
        of code instruments; skipped while another collection runs.
        """
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._learn(self._reader.collect_now())
        finally:
            self._lock.release()

    @contextmanager
    def prepared(self) -> Iterator[None]:
        """Hold the collection lock, with the definitions evaluated for one collection.

        Scrapes and OTLP pushes collect inside this block, one at a time.
        """
        # The budget starts before the lock: a scrape queued behind another
        # gets what is left of its own budget, not a whole one more.
        deadline = evaluation.scrape_deadline()
        with self._lock:
            try:
                served = naming.served_names(self._registry_families())
                self._instruments.prepare(deadline, served)
            except Exception:  # noqa: BLE001 - never fail a scrape or a push
                logger.exception("Preparing the metric definitions failed.")
                self._instruments.forget_points()
            yield

    def before_fork(self) -> None:
        """Wait, for a while, for a collection in progress to finish before fork()."""
        # A child forked mid-collection (for example while a thread of a preloaded
        # gunicorn master collects) would start with this lock, and the SDK's own
        # collection state, held by a thread that does not exist there.
        self._held_for_fork = self._lock.acquire(timeout=FORK_WAIT)

    def after_fork_in_parent(self) -> None:
        """Let collections run again after fork()."""
        if self._held_for_fork:
            self._lock.release()

    def after_fork_in_child(self) -> None:
        """Start the child with a free collection lock."""
        self._lock = threading.Lock()
        self._flight.forget()

    def _registry_families(self) -> dict[str, str]:
        names = {name: name for name in _described_names(self._served)}
        names.update(self._seen or {})
        return names

    def _learn(self, *collections: MetricsData | None) -> dict[str, str]:
        """Note and return {taken name: family} of what is served beside definitions.

        That is the long-lived provider's families (code instruments, the
        self-metrics, target_info) and what the served registry describes.
        """
        others: dict[str, str] = {}
        resources = [r for data in collections if data for r in data.resource_metrics]
        for resource_metrics in resources:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    family_type = _family_type(metric.data)
                    family = naming.exported_names(
                        metric.name,
                        "counter" if family_type == "counter" else "gauge",
                        metric.unit or "",
                    )[0]
                    shown = family + ("_total" if family_type == "counter" else "")
                    for name in naming.family_names(family, family_type):
                        others[name] = shown
        for name in naming.family_names("target", "info"):
            others[name] = "target_info"
        self._seen = others
        return {**{name: name for name in _described_names(self._served)}, **others}

    def _without_clashes(
        self, data: MetricsData, others: dict[str, str]
    ) -> MetricsData:
        """Drop definitions whose family clashes with a family served beside them.

        A code instrument or a collector can appear after the definitions were
        judged (for example on the first scrape); this keeps that scrape
        valid, and the next load leaves the definition out with an error. The
        verdict is kept while neither side changes.
        """
        if others.keys() <= self._instruments.judged_against:
            # Every name served beside was known when the definitions were
            # loaded, and those that take one were left out then.
            return data
        families = self._instruments.families
        taken = frozenset(others.items())
        last = self._clashes
        if last is not None and last[0] == taken and last[1] is families:
            dropped = last[2]
        else:
            index = naming.ExportedNameIndex(served=others)
            dropped = {}
            for item in families.values():
                name, kind, unit, _description = item.key
                clash = naming.clash(name, kind, unit, index)
                if clash is not None:
                    dropped[name.lower()] = (
                        name,
                        naming.field_problem("name", clash.message),
                    )
            self._clashes = (taken, families, dropped)
        if not dropped:
            return data
        for name, problem in dropped.values():
            self._instruments.log_failure(name, problem)
        return replace(
            data,
            resource_metrics=[
                replace(
                    resource_metrics,
                    scope_metrics=[
                        replace(
                            scope_metrics,
                            metrics=[
                                m
                                for m in scope_metrics.metrics
                                if m.name not in dropped
                            ],
                        )
                        for scope_metrics in resource_metrics.scope_metrics
                    ],
                )
                for resource_metrics in data.resource_metrics
            ],
        )


def _with_metrics(
    data: MetricsData | None, metrics: list[Metric]
) -> MetricsData | None:
    """Return `data` with `metrics` added to the app's scope (made if missing)."""
    if not metrics:
        return data
    scope = InstrumentationScope(app_settings.METER_NAME, metricdemo.__version__)
    if data is None or not data.resource_metrics:
        return MetricsData(
            resource_metrics=[
                ResourceMetrics(
                    resource=process_resource(os.getpid()),
                    scope_metrics=[ScopeMetrics(scope, metrics, schema_url="")],
                    schema_url="",
                )
            ]
        )
    first, *rest = data.resource_metrics
    scopes = list(first.scope_metrics)
    for index, scope_metrics in enumerate(scopes):
        if scope_metrics.scope.name == scope.name:
            scopes[index] = replace(
                scope_metrics, metrics=[*scope_metrics.metrics, *metrics]
            )
            break
    else:
        scopes.append(ScopeMetrics(scope, metrics, schema_url=""))
    return replace(data, resource_metrics=[replace(first, scope_metrics=scopes), *rest])


def _family_type(data) -> str:  # noqa: ANN001
    if isinstance(data, Sum) and data.is_monotonic:
        return "counter"
    if isinstance(data, Histogram):
        return "histogram"
    return "gauge"


def _described_names(registry: CollectorRegistry) -> list[str]:
    # prometheus_client keeps the names its collectors describe (or yielded
    # when registered) only in this private map; without it, the static list
    # and the last collection still cover the usual families.
    return list(getattr(registry, "_names_to_collectors", {}))
