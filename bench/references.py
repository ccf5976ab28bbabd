"""What the app's scrape is measured against: exporters with no Django and no app.

Each exporter reference owns a private prometheus_client registry and scrapes it
with ``generate_latest``; the SDK reference only collects, formatting nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.apps import apps
from django.db.models import CharField, Count, F, IntegerField, Value
from django.db.models.functions import Cast
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    MeterProvider,
)
from opentelemetry.sdk.metrics.export import MetricsData
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

import metricdemo
from metricdemo.display import group_value
from metricdemo.telemetry.reader import ExpositionReader

# The same scope as the app's instruments, so each series carries the same
# otel_scope_* labels and the exposition has the same size.
SCOPE = ("metricdemo", metricdemo.__version__)
SCOPE_LABELS = ("otel_scope_name", "otel_scope_version", "otel_scope_schema_url")

Observe = Callable[[], Iterable[tuple[float, dict[str, Any]]]]


class _Observable:
    """A bare MeterProvider whose meter makes observable instruments."""

    def add(
        self, kind: str, name: str, description: str, unit: str, observe: Observe
    ) -> None:
        """Add an observable instrument whose callback reports what `observe` gives."""
        create = {
            "gauge": self._meter.create_observable_gauge,
            "counter": self._meter.create_observable_counter,
            "updowncounter": self._meter.create_observable_up_down_counter,
        }[kind]

        def callback(options: CallbackOptions) -> list[Observation]:
            return [Observation(value, attributes) for value, attributes in observe()]

        create(name, callbacks=[callback], unit=unit, description=description)

    def close(self) -> None:
        """Shut the provider down."""
        self._provider.shutdown()

    def add_constants(self, definitions: Sequence[Any]) -> None:
        """Add one constant observable per definition, with its attributes."""
        for definition in definitions:
            value, attributes = float(definition.value), dict(definition.attributes)
            self.add(
                definition.kind,
                definition.name,
                definition.description,
                definition.unit,
                lambda v=value, a=attributes: [(v, a)],
            )


class OtelExporter(_Observable):
    """A bare MeterProvider and PrometheusMetricReader in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._reader = PrometheusMetricReader(registry=self.registry)
        self._provider = MeterProvider(
            metric_readers=[self._reader], shutdown_on_exit=False
        )
        self._meter = self._provider.get_meter(*SCOPE)

    def scrape(self) -> bytes:
        """Return the exposition text, running every callback once."""
        return generate_latest(self.registry)


class SdkCollect(_Observable):
    """A bare MeterProvider and metricdemo's ExpositionReader: collection, no text.

    Configured as the app's definitions provider is (no measurement offered
    as an exemplar), so that it shows what the SDK's own collection of the
    same instruments costs before anything is formatted.
    """

    def __init__(self) -> None:
        self._reader = ExpositionReader()
        self._provider = MeterProvider(
            metric_readers=[self._reader],
            shutdown_on_exit=False,
            exemplar_filter=AlwaysOffExemplarFilter(),
        )
        self._meter = self._provider.get_meter(*SCOPE)

    def collect(self, timeout_millis: float = 10_000) -> MetricsData | None:
        """Run every callback once and return the SDK's MetricsData."""
        return self._reader.collect_now(timeout_millis)


def otel_floor(definitions: Sequence[Any]) -> OtelExporter:
    """Return a bare exporter of one constant gauge per definition, same attributes."""
    exporter = OtelExporter()
    exporter.add_constants(definitions)
    return exporter


def sdk_collect(definitions: Sequence[Any]) -> SdkCollect:
    """Return a bare provider of one constant gauge per definition, to collect."""
    reference = SdkCollect()
    reference.add_constants(definitions)
    # The SDK makes each instrument's storage on its first collection: done
    # here, untimed, so that the timed ones are steady.
    reference.collect(timeout_millis=600_000)
    return reference


def otel_copy(exposition: bytes) -> OtelExporter:
    """Return a bare exporter of every series in `exposition` but target_info.

    Built from the app's own output, it shows what OpenTelemetry alone costs for
    everything the app exports, self-metrics included.
    """
    exporter = OtelExporter()
    for family in text_string_to_metric_families(exposition.decode()):
        if family.type not in ("gauge", "counter") or family.name == "target":
            continue
        samples = [
            (
                sample.value,
                {k: v for k, v in sample.labels.items() if k not in SCOPE_LABELS},
            )
            for sample in family.samples
            if sample.name in (family.name, f"{family.name}_total")
        ]
        exporter.add(
            family.type,
            family.name,
            family.documentation,
            "",
            lambda s=samples: s,
        )
    return exporter


class PlainCollector(Collector):
    """A prometheus_client custom collector: one GaugeMetricFamily per series."""

    def __init__(self, series: Sequence[tuple[str, str, float, dict[str, str]]]):
        self._series = series

    def collect(self):
        """Yield one family per definition."""
        for name, documentation, value, attributes in self._series:
            family = GaugeMetricFamily(name, documentation, labels=list(attributes))
            family.add_metric([str(v) for v in attributes.values()], value)
            yield family


def plain_registry(
    definitions: Sequence[Any], scope_labels: bool = False
) -> CollectorRegistry:
    """Return a registry with a PlainCollector of the constant definitions.

    With `scope_labels`, each series also carries the otel_scope_* labels the
    app writes, so that it has the app's five labels, sorted as the app sorts
    them.
    """
    scope = dict(zip(SCOPE_LABELS, (*SCOPE, ""), strict=True)) if scope_labels else {}
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        PlainCollector(
            [
                (
                    d.name.replace(".", "_"),
                    d.description,
                    float(d.value),
                    dict(sorted({**d.attributes, **scope}.items())),
                )
                for d in definitions
            ]
        )
    )
    return registry


def count_rows(definition: Any) -> list[tuple[float, dict[str, Any]]]:
    """Count a row-count definition's rows with the ORM, as a hand-written callback."""
    model = apps.get_model(definition.model)
    rows = model._default_manager.filter(**definition.filters)
    constant = dict(definition.attributes)
    if not definition.group_by:
        return [(float(rows.count()), constant)]
    key = definition.group_by
    grouped = rows.order_by().values_list(key).annotate(n=Count("*"))
    return [(float(n), {**constant, key: group_value(value)}) for value, n in grouped]


def otel_row_counts(definitions: Sequence[Any]) -> OtelExporter:
    """Return a bare exporter whose callbacks each run their own ORM count."""
    exporter = OtelExporter()
    for definition in definitions:
        exporter.add(
            definition.kind,
            definition.name,
            definition.description,
            definition.unit,
            lambda d=definition: count_rows(d),
        )
    return exporter


def one_statement(definitions: Sequence[Any]):
    """Return a queryset that computes every row count in one UNION ALL statement.

    Its rows are (definition index, group value as text, count); evaluating it
    shows what the database needs when all counts travel in one statement.
    """
    parts = []
    for i, definition in enumerate(definitions):
        model = apps.get_model(definition.model)
        rows = model._default_manager.filter(**definition.filters).order_by()
        if definition.group_by:
            group = Cast(F(definition.group_by), output_field=CharField())
        else:
            group = Value("", output_field=CharField())
        parts.append(
            rows.annotate(bench_i=Value(i, output_field=IntegerField()), bench_g=group)
            .values("bench_i", "bench_g")
            .annotate(bench_n=Count("*"))
            .values_list("bench_i", "bench_g", "bench_n")
        )
    return parts[0].union(*parts[1:], all=True)
