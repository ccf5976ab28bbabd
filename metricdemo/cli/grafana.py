"""Print a Grafana dashboard with a panel per enabled definition (metrics grafana)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from django.core.management.base import CommandError
from django.db import DatabaseError

from metricdemo import aggregates, naming, reserved, validators
from metricdemo.models import Kind, MetricDefinition
from metricdemo.presentation import aggregated_kind, measured_kind

help = "Print a Grafana dashboard (JSON) with a panel per enabled metric definition."


# The app's own metrics, shown together in the last panel. A name ending in
# _total is a counter, one ending in _timestamp_seconds a point in time, and
# any other _seconds a histogram of durations.
def _self_metric(key: str) -> str:
    return naming.exported_names(*reserved.SELF_METRICS[key])[1]


#: The app's own metrics charted in the last panel, as exported sample names.
SELF_METRICS = [
    _self_metric("evaluations"),
    _self_metric("duration"),
    _self_metric("last_success"),
]

# The import-time input Grafana asks the user to map to a Prometheus data source.
DATASOURCE_INPUT = "DS_PROMETHEUS"
RATE_WINDOW = "$__rate_interval"
PANEL_WIDTH = 12
PANEL_HEIGHT = 8
# Grafana's unit ids for a gauge's unit, and for the per-second rate of a
# counter's unit; other units are shown as plain numbers.
GAUGE_UNITS = {"s": "s", "ms": "ms", "By": "bytes", "%": "percent", "By/s": "Bps"}
RATE_UNITS = {"s": "percentunit", "By": "Bps"}
#: The quantiles a histogram's second panel draws.
QUANTILES = (0.5, 0.9, 0.99)


def add_arguments(parser) -> None:
    """Add --datasource."""
    parser.add_argument(
        "--datasource",
        metavar="NAME",
        help=(
            "Name or uid of the Prometheus data source to query, for example "
            "prometheus. "
            f"By default the dashboard refers to ${{{DATASOURCE_INPUT}}} and Grafana "
            "asks for the data source when it is imported."
        ),
    )


def handle(command, options: dict[str, Any]) -> None:
    """Write the dashboard for the enabled definitions to stdout."""
    try:
        definitions = list(
            MetricDefinition.objects.filter(enabled=True).prefetch_related(
                "alert_rules"
            )
        )
    except DatabaseError as exc:
        raise CommandError(
            f"Cannot read the metric definitions ({exc}); run `manage.py migrate`."
        ) from None
    dashboard = build_dashboard(definitions, datasource=options.get("datasource"))
    command.stdout.write(json.dumps(dashboard, indent=2, sort_keys=True))


def build_dashboard(
    definitions: Iterable[MetricDefinition], *, datasource: str | None = None
) -> dict[str, Any]:
    """Return the dashboard: each definition's panels by name, then the self-metrics.

    A histogram has two panels, side by side; any other kind has one.
    """
    source = {
        "type": "prometheus",
        "uid": datasource or f"${{{DATASOURCE_INPUT}}}",
    }
    groups = [
        definition_panels(definition, source)
        for definition in sorted(definitions, key=lambda d: d.name)
    ]
    groups.append([self_metrics_panel(source)])
    panels = lay_out(groups)
    dashboard: dict[str, Any] = {
        "title": "metricdemo",
        "uid": "metricdemo",
        "tags": ["metricdemo"],
        "editable": True,
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "annotations": {"list": []},
        "templating": {"list": []},
        "panels": panels,
    }
    if datasource is None:
        dashboard["__inputs"] = [
            {
                "name": DATASOURCE_INPUT,
                "label": "Prometheus",
                "description": "The Prometheus that scrapes /metrics.",
                "type": "datasource",
                "pluginId": "prometheus",
                "pluginName": "Prometheus",
            }
        ]
        dashboard["__requires"] = [
            {
                "type": "datasource",
                "id": "prometheus",
                "name": "Prometheus",
                "version": "1.0.0",
            },
            {"type": "panel", "id": "timeseries", "name": "Time series", "version": ""},
        ]
        if any(panel["type"] == "heatmap" for panel in panels):
            dashboard["__requires"].append(
                {"type": "panel", "id": "heatmap", "name": "Heatmap", "version": ""}
            )
    return dashboard


def lay_out(groups: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Number the panels and place them two to a row, in order.

    A group of two (a histogram's heatmap and quantiles) starts a row, so
    that its panels sit side by side.
    """
    panels: list[dict[str, Any]] = []
    column = row = 0
    for group in groups:
        if len(group) > 1 and column:
            column, row = 0, row + 1
        for panel in group:
            panel["id"] = len(panels) + 1
            panel["gridPos"] = {
                "h": PANEL_HEIGHT,
                "w": PANEL_WIDTH,
                "x": column * PANEL_WIDTH,
                "y": row * PANEL_HEIGHT,
            }
            panels.append(panel)
            column += 1
            if column == 2:
                column, row = 0, row + 1
    return panels


def definition_panels(
    definition: MetricDefinition, source: dict[str, str]
) -> list[dict[str, Any]]:
    """Return a definition's panels: a histogram's two, or one time series."""
    rules = threshold_rules(definition)
    if definition.kind == Kind.HISTOGRAM:
        heatmap, quantiles = histogram_panels(definition, source)
        # The quantiles are what a histogram's rules compare.
        return [heatmap, with_thresholds(quantiles, rules)]
    panel = definition_panel(definition, source)
    # A counter's panel charts its rate, and a date's its age: neither is the
    # value the rules compare, so their thresholds would mislead there.
    plain = definition.kind != Kind.COUNTER and aggregated_kind(definition) not in (
        aggregates.DATE,
        aggregates.DATETIME,
    )
    return [with_thresholds(panel, rules) if plain else panel]


#: The color of a threshold line, by the rule's severity.
SEVERITY_COLORS = {"critical": "red", "warning": "orange"}


def threshold_rules(definition: MetricDefinition) -> list[Any]:
    """Return the definition's enabled rules that compare with a threshold."""
    if definition.pk is None:
        return []
    return [
        rule
        for rule in definition.alert_rules.all()
        if rule.enabled and rule.threshold is not None and rule.operator != "absent"
    ]


def with_thresholds(panel: dict[str, Any], rules: list[Any]) -> dict[str, Any]:
    """Draw each rule's threshold on the panel as a line, colored by severity."""
    if not rules:
        return panel
    steps = [{"color": "green", "value": None}]
    for rule in sorted(rules, key=lambda r: r.threshold):
        color = SEVERITY_COLORS.get(rule.severity, "yellow")
        steps.append({"color": color, "value": rule.threshold})
    defaults = panel["fieldConfig"]["defaults"]
    defaults["thresholds"] = {"mode": "absolute", "steps": steps}
    defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
    names = ", ".join(sorted(rule.name for rule in rules))
    panel["description"] += f" Lines: the thresholds of {names}."
    return panel


def definition_panel(
    definition: MetricDefinition, source: dict[str, str]
) -> dict[str, Any]:
    """Return a time-series panel: the value of a gauge, the rate of a counter."""
    sample = definition.exported_name
    is_counter = definition.kind == Kind.COUNTER
    query = f"rate({sample}[{RATE_WINDOW}])" if is_counter else sample
    legend = "__auto"
    labels = group_labels(definition)
    if labels:
        # A row count reads the shared database, so every process reports the
        # same numbers: max keeps one series per value, not one per process.
        query = f"max by ({', '.join(labels)}) ({query})"
        legend = " ".join(f"{{{{{label}}}}}" for label in labels)
    unit = (RATE_UNITS if is_counter else GAUGE_UNITS).get(definition.unit)
    kind = aggregated_kind(definition)
    title = definition.name
    if kind in (aggregates.DATE, aggregates.DATETIME) and not is_counter:
        # A point in time (Unix seconds) reads best as how long ago it was.
        query = f"time() - {query}"
        unit, title = "s", f"{definition.name} (age)"
    elif kind == aggregates.DURATION:
        unit = "s"
    description = definition.description or definition.name
    return _panel(
        title,
        f"{description} ({sample})",
        source,
        [_target("A", query, legend, source)],
        unit,
    )


def histogram_panels(
    definition: MetricDefinition, source: dict[str, str]
) -> list[dict[str, Any]]:
    """Return a histogram's heatmap of its buckets and its quantiles over time.

    The buckets are charted as scraped, without rate(): a histogram
    definition is not a stream of events but a snapshot of the rows that
    match now, computed again at each evaluation, and its counts go down
    whenever rows stop matching (an open order paid, an order older than a
    window). rate() reads every such fall as a counter reset and draws
    spikes; each scrape here is already the whole distribution at its time.

    Every process reads the same database, so `max by (le, ...)` keeps one
    copy of each bucket across processes and hosts, as the other row-based
    panels do. A grouped histogram's groups are then added up (`sum by
    (le)`), which is exact for bucket counts, into the distribution of all
    its rows: one heatmap and three lines, however many groups there are.
    Replacing `by (le)` with `by (le, LABEL)` charts a group's own.
    """
    buckets = histogram_buckets_query(definition)
    family = naming.exported_names(definition.name, definition.kind, definition.unit)[0]
    description = definition.description or definition.name
    unit = "s" if measured_kind(definition) == aggregates.DURATION else None
    unit = unit or GAUGE_UNITS.get(definition.unit)
    heatmap = _panel(
        definition.name,
        f"{description} ({family}_bucket): how many rows fall in each bucket.",
        source,
        [{**_target("A", buckets, "{{le}}", source), "format": "heatmap"}],
        None,
    )
    heatmap["type"] = "heatmap"
    heatmap["options"] = {
        # The buckets come from Prometheus; the panel computes none.
        "calculate": False,
        "cellGap": 1,
        "color": {
            "mode": "scheme",
            "scheme": "Oranges",
            "fill": "dark",
            "scale": "exponential",
            "exponent": 0.5,
            "steps": 64,
            "reverse": False,
        },
        "legend": {"show": True},
        "rowsFrame": {"layout": "le"},
        "tooltip": {"mode": "single", "yHistogram": False},
        "yAxis": {"axisPlacement": "left", "reverse": False, "unit": unit or "short"},
    }
    quantile_targets = [
        _target(
            chr(ord("A") + index),
            f"histogram_quantile({quantile}, {buckets})",
            f"p{round(quantile * 100)}",
            source,
        )
        for index, quantile in enumerate(QUANTILES)
    ]
    quantiles = _panel(
        f"{definition.name} (p50, p90, p99)",
        f"{description} ({family}_bucket): the median, 90th and 99th percentile, "
        "estimated within the buckets.",
        source,
        quantile_targets,
        unit,
    )
    return [heatmap, quantiles]


def histogram_buckets_query(definition: MetricDefinition) -> str:
    """Return the PromQL of a histogram's buckets, one series per `le`."""
    family = naming.exported_names(definition.name, definition.kind, definition.unit)[0]
    bucket = f"{family}_bucket"
    labels = group_labels(definition)
    if labels:
        return f"sum by (le) (max by (le, {', '.join(labels)}) ({bucket}))"
    return f"max by (le) ({bucket})"


def group_labels(definition: MetricDefinition) -> list[str]:
    """Return the labels a row-based definition's group-by exports, in order."""
    if not definition.group_by:
        return []
    return [
        validators.label_name(key)
        for key in validators.group_by_keys(definition.group_by).values()
    ]


def self_metrics_panel(source: dict[str, str]) -> dict[str, Any]:
    """Return the panel of metricdemo's own metrics about its evaluations."""
    targets = []
    for index, name in enumerate(SELF_METRICS):
        query, legend = self_metric_query(name)
        targets.append(_target(chr(ord("A") + index), query, legend, source))
    return _panel(
        "metricdemo evaluations",
        "How often definitions are evaluated, how long that takes, and how long "
        "ago the last one succeeded.",
        source,
        targets,
        None,
    )


def self_metric_query(name: str) -> tuple[str, str]:
    """Return the PromQL and legend that chart one of SELF_METRICS."""
    evaluations, duration, last_success = SELF_METRICS
    if name == evaluations:
        # Every process evaluates, so sum their rates per outcome.
        return (
            f"sum by (outcome) (rate({name}[{RATE_WINDOW}]))",
            "{{outcome}} per second",
        )
    if name == duration:
        return f"max by (definition) ({name})", "{{definition}} seconds"
    if name == last_success:
        return (
            f"time() - max by (definition) ({name})",
            "{{definition}} seconds since success",
        )
    return f"max({name})", name


def _panel(
    title: str,
    description: str,
    source: dict[str, str],
    targets: list[dict[str, Any]],
    unit: str | None,
) -> dict[str, Any]:
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": source,
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": unit} if unit else {}, "overrides": []},
        "options": {
            "legend": {
                "displayMode": "list",
                "placement": "bottom",
                "showLegend": True,
            },
            "tooltip": {"mode": "multi", "sort": "none"},
        },
    }


def _target(
    ref_id: str, query: str, legend: str, source: dict[str, str]
) -> dict[str, Any]:
    return {
        "refId": ref_id,
        "expr": query,
        "legendFormat": legend,
        "range": True,
        "datasource": source,
    }
