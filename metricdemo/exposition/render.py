"""Render OpenTelemetry's MetricsData and prometheus_client families as exposition text.

One pass writes the lines: no translation into prometheus_client objects
first. What does not change between scrapes (a family's HELP and TYPE lines,
a series' label set, a one-series family's whole text while its value is the
same object) is kept from the scrape before, so a steady scrape formats little
more than the values that moved.

Under the default negotiation (text 0.0.4, names escaped to underscores) and
the default strategy, every line is the one opentelemetry-exporter-prometheus
and prometheus_client wrote: the same names, label sets (scope labels,
sorted, a label missing from one point of a family written empty), value
formatting and HELP escaping.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    MetricsData,
    Sum,
)
from opentelemetry.sdk.resources import Resource

from metricdemo.exposition import names
from metricdemo.exposition.negotiation import Negotiated

logger = logging.getLogger("metricdemo")

SCOPE_NAME = "otel_scope_name"
SCOPE_VERSION = "otel_scope_version"
SCOPE_SCHEMA_URL = "otel_scope_schema_url"
SCOPE_ATTRIBUTE_PREFIX = "otel_scope_"
TARGET_INFO = "target"
TARGET_INFO_HELP = "Target metadata"

_INF = math.inf


@dataclass(frozen=True)
class Collected:
    """What one collection of the app's readers gave, ready to be rendered.

    `data` holds each provider's MetricsData, in the order they are served;
    `resource` is the one target_info describes (None: no target_info).
    """

    data: tuple[MetricsData, ...]
    resource: Resource | None = None


def format_value(value: float) -> str:
    """Return a sample value as Go (and so prometheus_client) writes it."""
    d = float(value)
    if d == _INF:
        return "+Inf"
    if d == -_INF:
        return "-Inf"
    if d != d:
        return "NaN"
    s = repr(d)
    dot = s.find(".")
    if d > 0 and dot > 6:
        mantissa = f"{s[0]}.{s[1:dot]}{s[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return s


def label_value(value: Any) -> str:
    """Return an attribute value as a label value: strings as they are, else JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def help_text(documentation: str, openmetrics: bool) -> str:
    """Return HELP text escaped for the format (OpenMetrics also escapes quotes)."""
    if openmetrics:
        return names.quote(documentation)
    if "\\" in documentation or "\n" in documentation:
        return documentation.replace("\\", r"\\").replace("\n", r"\n")
    return documentation


def _header(
    name: str,
    kind: str,
    unit: str,
    description: str,
    negotiated: Negotiated,
    strategy: str,
) -> tuple[str, str]:
    """Return (HELP/TYPE/UNIT lines, escaped sample name) of a family."""
    escaping = negotiated.escaping
    if kind == "counter":
        base = name[: -len("_total")] if name.endswith("_total") else name
        if negotiated.openmetrics:
            # OpenMetrics names a counter without, and its sample with, _total.
            shown = names.escape_metric_name(base, escaping)
            sample = names.suffixed(base, "_total", escaping)
        elif names.adds_suffixes(strategy):
            # The classic text format names a counter by its sample.
            shown = sample = names.suffixed(base, "_total", escaping)
        else:
            shown = sample = names.escape_metric_name(name, escaping)
    else:
        shown = sample = names.escape_metric_name(name, escaping)
    lines = [
        f"# HELP {shown} {help_text(description, negotiated.openmetrics)}\n",
        f"# TYPE {shown} {kind}\n",
    ]
    if negotiated.openmetrics and unit and name.endswith("_" + unit):
        # OpenMetrics wants the name to end with the unit, both as written.
        escaped_unit = names.escape_metric_name(unit, escaping)
        if shown.strip('"').endswith("_" + escaped_unit):
            lines.append(f"# UNIT {shown} {escaped_unit}\n")
    return "".join(lines), sample


class _Plan:
    """How one metric is written under one negotiation: kept between scrapes.

    Valid while the metric keeps its description, unit and data type. For a
    metric of one series (most definitions), it keeps that series' whole text
    instead, lines before it included, while the series keeps its label set: a
    steady scrape then writes it as it is, or with a new value.
    """

    __slots__ = (
        "description",
        "unit",
        "token",
        "family",
        "unit_word",
        "kind",
        "header",
        "sample",
        "attributes",
        "scope",
        "value",
        "line",
        "cut",
        "taken",
    )

    def __init__(self, description, unit, token, family, unit_word, kind):  # noqa: ANN001
        self.description = description
        self.unit = unit
        self.token = token
        self.family = family  # the family name under the strategy, unescaped
        self.unit_word = unit_word  # what an OpenMetrics UNIT line states
        self.kind = kind  # counter, gauge or histogram
        self.header: str | None = None  # the HELP, TYPE (and UNIT) lines
        self.sample: str | None = None  # the escaped sample name (_total and all)
        # The one series' attributes, scope labels and value (the object: a
        # constant observes the same float on every scrape), and its text:
        # header, sample name, labels and value; the value starts at `cut`.
        self.attributes = None
        self.scope = None
        self.value = None
        self.line: str | None = None
        self.cut = 0
        # Every name the family takes in the exposition (see _claim()).
        self.taken = (family, *(family + s for s in names.TYPE_SUFFIXES.get(kind, ())))

    def names(self, negotiated: Negotiated, strategy: str) -> tuple[str, str]:
        """Return (header lines, escaped sample name), worked out again if dropped."""
        if self.header is None or self.sample is None:
            self.header, self.sample = _header(
                self.family,
                self.kind,
                self.unit_word,
                self.description or "",
                negotiated,
                strategy,
            )
        return self.header, self.sample


_SKIP = object()


def _same_family(one: _Plan, other: _Plan) -> bool:
    """Return whether two metrics make one family (as the exporter merged them)."""
    return (
        one.kind == other.kind
        and one.unit_word == other.unit_word
        and (one.description or "") == (other.description or "")
    )


class Renderer:
    """Write exposition text; keep what a steady scrape would work out again.

    One per process. What it keeps is small: per metric, its HELP and TYPE
    lines and sample name under each negotiation in use (for a metric of one
    series, that series' whole line instead); per shape of label set (the same
    keys in the same scope), how to write it. Other label values are written
    on every scrape. Concurrent renders share what is kept; the worst a race
    costs is a line worked out twice.
    """

    def __init__(self) -> None:
        # {(format, escaping, strategy): {metric name: _Plan}}
        self._plans: dict[tuple, dict[str, Any]] = {}
        # {(id(scope labels), attribute keys, label names, strategy,
        # escaping): (scope labels, pieces)}
        self._templates: dict[tuple, tuple] = {}
        self._targets: dict[tuple, tuple[Resource, str]] = {}

    def render(
        self,
        families: Iterable[Any],
        negotiated: Negotiated,
        strategy: str = names.DEFAULT_STRATEGY,
    ) -> bytes:
        """Return the exposition of `families` as UTF-8.

        `families` holds prometheus_client Metric objects (what a registry's
        collectors yield) and Collected items (the app's OpenTelemetry
        collections), in the order they are written. A family name written
        once is not written again: a later family of the same name is left
        out and logged.
        """
        out: list[str] = []
        written: set[str] = set()
        for item in families:
            if isinstance(item, Collected):
                self._render_collected(item, negotiated, strategy, out, written)
            else:
                self._render_client_family(item, negotiated, out, written)
        if negotiated.openmetrics:
            out.append("# EOF\n")
        return "".join(out).encode("utf-8", "replace")

    # The app's OpenTelemetry collections.

    def _render_collected(self, collected, negotiated, strategy, out, written) -> None:
        if collected.resource is not None:
            self._render_target_info(
                collected.resource, negotiated, strategy, out, written
            )
        variant = (negotiated.format, negotiated.escaping, strategy)
        if len(self._plans) >= 8 and variant not in self._plans:
            self._plans.clear()
        # The plans of this render replace the last render's, so that a
        # metric gone (a definition renamed or deleted) leaves none behind.
        plans = self._plans.get(variant, {})
        used: dict[str, Any] = {}
        for data in collected.data:
            # {family name: [plan, [(scope labels, points)]]}, in order.
            groups: dict[str, list] = {}
            for resource_metrics in data.resource_metrics:
                for scope_metrics in resource_metrics.scope_metrics:
                    scope_labels = _scope_labels(scope_metrics.scope, strategy)
                    for metric in scope_metrics.metrics:
                        plan = self._plan(plans, metric, negotiated, strategy)
                        used[metric.name] = plan
                        if plan is _SKIP:
                            continue
                        group = groups.get(plan.family)
                        if group is None:
                            groups[plan.family] = [
                                plan,
                                [(scope_labels, metric.data.data_points)],
                            ]
                        elif _same_family(group[0], plan):
                            # The same family in another scope: one family.
                            group[1].append((scope_labels, metric.data.data_points))
                        else:
                            _claim(plan.family, plan.kind, written, plan.taken)
            for plan, parts in groups.values():
                if not _claim(plan.family, plan.kind, written, plan.taken):
                    continue
                if plan.kind != "histogram" and len(parts) == 1:
                    scope_labels, points = parts[0]
                    if len(points) == 1:
                        point = points[0]
                        if (
                            plan.attributes is not point.attributes
                            or plan.scope is not scope_labels
                        ):
                            self._keep_line(
                                plan, scope_labels, point, negotiated, strategy
                            )
                        elif plan.value is not point.value:
                            # The line first: a render that finds the value
                            # kept finds its line kept too.
                            value = format_value(point.value)
                            plan.line = f"{plan.line[: plan.cut]}{value}\n"
                            plan.value = point.value
                        out.append(plan.line)
                        continue
                header, _sample = plan.names(negotiated, strategy)
                out.append(header)
                if plan.kind == "histogram":
                    self._render_histograms(plan, parts, negotiated, strategy, out)
                else:
                    self._render_numbers(plan, parts, negotiated, strategy, out)
        self._plans[variant] = used

    def _plan(self, plans, metric, negotiated, strategy):  # noqa: ANN001, ANN202
        data = metric.data
        token = data.__class__
        if token is Sum:
            token = (Sum, data.is_monotonic, data.aggregation_temporality)
        plan = plans.get(metric.name)
        if plan is _SKIP:
            return plan  # warned about once
        if (
            plan is not None
            and plan.token == token
            and plan.description == metric.description
            and plan.unit == metric.unit
        ):
            return plan
        kind = _kind(data)
        if kind is None:
            logger.warning(
                "Metric %s is not exported: /metrics has no format for %s.",
                metric.name,
                type(data).__name__,
            )
            return _SKIP
        family, unit_word = names.family_name(
            metric.name, metric.unit or "", kind == "counter", strategy
        )
        plan = _Plan(metric.description, metric.unit, token, family, unit_word, kind)
        return plan

    def _keep_line(self, plan, scope_labels, point, negotiated, strategy) -> None:  # noqa: ANN001
        """Keep the text of a metric's one series, the lines before it included."""
        header, sample = plan.names(negotiated, strategy)
        text = self._label_text(
            scope_labels, point.attributes, None, strategy, negotiated.escaping
        )
        if sample.startswith('"'):
            line = f"{{{sample},{text}}} " if text else f"{{{sample}}} "
        else:
            line = f"{sample}{{{text}}} " if text else f"{sample} "
        block = header + line
        plan.line = f"{block}{format_value(point.value)}\n"
        plan.cut = len(block)
        plan.attributes, plan.scope, plan.value = (
            point.attributes,
            scope_labels,
            point.value,
        )
        # The line holds them: kept twice, they would cost memory per metric.
        plan.header = plan.sample = None

    def _render_numbers(self, plan, parts, negotiated, strategy, out) -> None:
        escaping = negotiated.escaping
        _header_lines, sample = plan.names(negotiated, strategy)
        quoted = sample.startswith('"')
        if len(parts) == 1 and len(parts[0][1]) == 1:
            label_names = None  # worked out from the one point's keys
        else:
            label_names = _label_names(parts, strategy)
        for scope_labels, points in parts:
            for point in points:
                text = self._label_text(
                    scope_labels, point.attributes, label_names, strategy, escaping
                )
                value = format_value(point.value)
                if quoted:
                    out.append(
                        f"{{{sample},{text}}} {value}\n"
                        if text
                        else f"{{{sample}}} {value}\n"
                    )
                elif text:
                    out.append(f"{sample}{{{text}}} {value}\n")
                else:
                    out.append(f"{sample} {value}\n")

    def _label_text(self, scope_labels, attributes, label_names, strategy, escaping):  # noqa: ANN001, ANN202
        """Return a point's label set as written, by a template kept per key shape."""
        attributes = attributes or {}
        key = (id(scope_labels), tuple(attributes), label_names, strategy, escaping)
        kept = self._templates.get(key)
        if kept is None or kept[0] is not scope_labels:
            if len(self._templates) > 10_000:
                self._templates.clear()
            kept = self._templates[key] = (
                scope_labels,
                _template(scope_labels, attributes, label_names, strategy, escaping),
            )
        pieces = []
        for fixed, attribute in kept[1]:
            if attribute is None:
                pieces.append(fixed)
                continue
            value = attributes[attribute]
            if value.__class__ is not str:
                value = label_value(value)
            if "\\" in value or "\n" in value or '"' in value:
                value = names.quote(value)
            pieces.append(f'{fixed}{value}"')
        return ",".join(pieces)

    def _render_histograms(self, plan, parts, negotiated, strategy, out) -> None:
        escaping = negotiated.escaping
        label_names = _label_names(parts, strategy)
        base = plan.family
        bucket, count, total, created = (
            names.suffixed(base, suffix, escaping)
            for suffix in ("_bucket", "_count", "_sum", "_created")
        )
        for scope_labels, points in parts:
            for point in points:
                labels = _labels(scope_labels, point.attributes, label_names, strategy)
                cumulative = 0
                bounds = [*(f"{bound}" for bound in point.explicit_bounds), "+Inf"]
                for bound, bucket_count in zip(
                    bounds, point.bucket_counts, strict=False
                ):
                    cumulative += bucket_count
                    out.append(
                        _line(bucket, {**labels, "le": bound}, cumulative, escaping)
                    )
                if point.explicit_bounds and point.explicit_bounds[0] < 0:
                    # prometheus_client writes no sum and count then, nor do we.
                    continue
                out.append(_line(count, labels, cumulative, escaping))
                out.append(_line(total, labels, point.sum, escaping))
                if negotiated.openmetrics and point.start_time_unix_nano:
                    out.append(
                        _line(
                            created, labels, point.start_time_unix_nano / 1e9, escaping
                        )
                    )

    def _render_target_info(self, resource, negotiated, strategy, out, written) -> None:
        if not _claim(TARGET_INFO, "info", written):
            return
        key = (negotiated, strategy)
        cached = self._targets.get(key)
        if cached is None or cached[0] is not resource:
            escaping = negotiated.escaping
            labels = {
                names.label_name(k, strategy): label_value(v)
                for k, v in resource.attributes.items()
            }
            sample = names.suffixed(TARGET_INFO, "_info", escaping)
            if negotiated.openmetrics:
                shown = names.escape_metric_name(TARGET_INFO, escaping)
                header = f"# HELP {shown} {TARGET_INFO_HELP}\n# TYPE {shown} info\n"
            else:
                header = f"# HELP {sample} {TARGET_INFO_HELP}\n# TYPE {sample} gauge\n"
            text = header + _line(sample, labels, 1.0, escaping)
            cached = self._targets[key] = (resource, text)
        out.append(cached[1])

    # prometheus_client families (the registry's other collectors).

    def _render_client_family(self, metric, negotiated, out, written) -> None:
        """Write a prometheus_client family as prometheus_client would.

        Except under the dots and values escapings: a sample's name is its
        family's escaped name plus the suffix, as Prometheus's own encoders
        write it, so that parsers still find the family.
        """
        if not _claim(metric.name, metric.type, written):
            return
        escaping = negotiated.escaping

        def sample_name(name: str) -> str:
            if name.startswith(metric.name):
                return names.suffixed(metric.name, name[len(metric.name) :], escaping)
            return names.escape_metric_name(name, escaping)

        if negotiated.openmetrics:
            name = names.escape_metric_name(metric.name, escaping)
            out.append(f"# HELP {name} {help_text(metric.documentation, True)}\n")
            out.append(f"# TYPE {name} {metric.type}\n")
            if metric.unit:
                out.append(f"# UNIT {name} {metric.unit}\n")
            for sample in metric.samples:
                if getattr(sample, "native_histogram", None):
                    continue  # not in OpenMetrics 1.0
                line = _line(
                    sample_name(sample.name), sample.labels, sample.value, escaping
                )
                if sample.timestamp is not None:
                    line = f"{line[:-1]} {sample.timestamp}\n"
                if sample.exemplar:
                    line = line[:-1] + _exemplar(sample.exemplar) + "\n"
                out.append(line)
            return
        suffix, kind = "", metric.type
        if kind == "counter":
            suffix = "_total"
        elif kind == "info":
            suffix, kind = "_info", "gauge"
        elif kind == "stateset":
            kind = "gauge"
        elif kind == "gaugehistogram":
            kind = "histogram"
        elif kind == "unknown":
            kind = "untyped"
        escaped = names.suffixed(metric.name, suffix, escaping)
        documentation = help_text(metric.documentation, False)
        out.append(f"# HELP {escaped} {documentation}\n# TYPE {escaped} {kind}\n")
        extra: dict[str, list[str]] = {}
        for sample in metric.samples:
            if getattr(sample, "native_histogram", None):
                continue
            line = _line(
                sample_name(sample.name), sample.labels, sample.value, escaping
            )
            if sample.timestamp is not None:
                line = f"{line[:-1]} {int(float(sample.timestamp) * 1000):d}\n"
            for extra_suffix in ("_created", "_gsum", "_gcount"):
                if sample.name == metric.name + extra_suffix:
                    # OpenMetrics-only samples: a gauge of their own, after.
                    extra.setdefault(extra_suffix, []).append(line)
                    break
            else:
                out.append(line)
        for extra_suffix, lines in sorted(extra.items()):
            escaped = names.suffixed(metric.name, extra_suffix, escaping)
            out.append(f"# HELP {escaped} {documentation}\n# TYPE {escaped} gauge\n")
            out.extend(lines)


_warned: set[str] = set()


def _claim(
    name: str,
    family_type: str,
    written: set[str],
    taken: tuple[str, ...] | None = None,
) -> bool:
    """Return whether a family may be written: no name it takes is taken yet.

    `taken` is every name the family takes (worked out from `family_type` if
    not given); they are added to `written` when it may.
    """
    if taken is None:
        suffixes = names.TYPE_SUFFIXES.get(family_type, ())
        taken = (name, *(name + suffix for suffix in suffixes))
    if written.isdisjoint(taken):
        written.update(taken)
        return True
    if name not in _warned:
        _warned.add(name)
        logger.warning(
            "Two families of /metrics take the name %s; it serves the first.", name
        )
    return False


def _kind(data: Any) -> str | None:
    if isinstance(data, Sum):
        if data.is_monotonic:
            return "counter"
        # Cumulative sums that may go down are gauges to Prometheus.
        return (
            "gauge"
            if data.aggregation_temporality == AggregationTemporality.CUMULATIVE
            else None
        )
    if isinstance(data, Gauge):
        return "gauge"
    if isinstance(data, Histogram):
        return "histogram"
    return None


_scope_cache: dict[tuple, dict[str, str]] = {}


def _scope_labels(scope: Any, strategy: str) -> dict[str, str]:
    """Return the otel_scope_* labels of a scope (the same object while it lasts)."""
    attributes = tuple(sorted((scope.attributes or {}).items(), key=str))
    key = (scope.name, scope.version, scope.schema_url, attributes, strategy)
    cached = _scope_cache.get(key)
    if cached is None:
        labels = {
            names.label_name(SCOPE_ATTRIBUTE_PREFIX + str(k), strategy): label_value(v)
            for k, v in attributes
        }
        labels[SCOPE_NAME] = scope.name or ""
        labels[SCOPE_VERSION] = scope.version or ""
        labels[SCOPE_SCHEMA_URL] = scope.schema_url or ""
        if len(_scope_cache) > 1000:
            _scope_cache.clear()
        cached = _scope_cache[key] = labels
    return cached


# {(attribute and scope label keys, strategy): sorted label names}: families
# mostly share a few key sets, which need translating and sorting only once.
_label_names_cache: dict[tuple[frozenset[str], str], tuple[str, ...]] = {}


def _label_names(parts: Sequence, strategy: str) -> tuple[str, ...]:
    """Return a family's label names, sorted: every point writes each of them."""
    keys: set[str] = set()
    for scope_labels, points in parts:
        keys.update(scope_labels)
        for point in points:
            keys.update(point.attributes or ())
    return _sorted_label_names(frozenset(keys), strategy)


def _sorted_label_names(keys: frozenset[str], strategy: str) -> tuple[str, ...]:
    key = (keys, strategy)
    cached = _label_names_cache.get(key)
    if cached is None:
        cached = tuple(sorted({names.label_name(k, strategy) for k in keys}))
        if len(_label_names_cache) > 1000:
            _label_names_cache.clear()
        _label_names_cache[key] = cached
    return cached


def _template(scope_labels, attributes, label_names, strategy, escaping) -> list:  # noqa: ANN001
    """Return how to write a label set of this shape: [(text, attribute key or None)].

    A piece with an attribute key is that label's `name="` before the
    point's value; one without is written as it is (the scope's labels, an
    absent label's empty value), runs of them joined.
    """
    if label_names is None:
        label_names = _sorted_label_names(
            frozenset((*scope_labels, *attributes)), strategy
        )
    # Which attribute writes each label: the last key that becomes it, as
    # the exporter's dict of labels kept it.
    source: dict[str, str] = {}
    for key in attributes:
        source[names.label_name(key, strategy)] = key
    pieces: list[tuple[str, str | None]] = []
    for label in label_names:
        escaped = names.escape_label_name(label, escaping)
        attribute = source.get(label)
        if attribute is not None:
            pieces.append((f'{escaped}="', attribute))
            continue
        text = f'{escaped}="{names.quote(scope_labels.get(label, ""))}"'
        if pieces and pieces[-1][1] is None:
            pieces[-1] = (f"{pieces[-1][0]},{text}", None)
        else:
            pieces.append((text, None))
    return pieces


def _labels(
    scope_labels: Mapping[str, str],
    attributes: Mapping[str, Any] | None,
    label_names: Sequence[str],
    strategy: str,
) -> dict[str, str]:
    labels = dict.fromkeys(label_names, "")
    labels.update(scope_labels)
    for key, value in (attributes or {}).items():
        labels[names.label_name(key, strategy)] = label_value(value)
    return labels


def _label_pairs(labels: Mapping[str, str], escaping: str) -> str:
    return ",".join(
        f'{names.escape_label_name(key, escaping)}="{names.quote(value)}"'
        for key, value in sorted(labels.items())
    )


def _line(escaped: str, labels: Mapping[str, str], value: float, escaping: str) -> str:
    """Return a sample line of an escaped name; a quoted name goes inside the braces."""
    text = _label_pairs(labels, escaping)
    formatted = format_value(value)
    if escaped.startswith('"'):
        return (
            f"{{{escaped},{text}}} {formatted}\n"
            if text
            else f"{{{escaped}}} {formatted}\n"
        )
    if text:
        return f"{escaped}{{{text}}} {formatted}\n"
    return f"{escaped} {formatted}\n"


def _exemplar(exemplar: Any) -> str:
    labels = ",".join(
        f'{key}="{names.quote(value)}"'
        for key, value in sorted(exemplar.labels.items())
    )
    text = f" # {{{labels}}} {format_value(exemplar.value)}"
    if exemplar.timestamp is not None:
        text += f" {exemplar.timestamp}"
    return text
