"""Turn alert rules into Prometheus rules: expressions, rule files and previews.

A rule reads its definition's series by the names and labels /metrics
serves under the default translation strategy, so a rename or a kind change
of the definition changes the expression with it. The same module judges a
rule against the definition's current value (what Preview shows) and checks
the Go templates of its annotations before Prometheus would refuse them.
"""

from __future__ import annotations

import math
import operator as operators
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from metricdemo import naming, validators
from metricdemo.alerting import by_labels
from metricdemo.distributions import Distribution
from metricdemo.models import (
    Aggregation,
    AlertRule,
    Kind,
    MetricDefinition,
    Operator,
)

#: The label every generated rule carries, naming its definition.
DEFINITION_LABEL = "metricdemo_definition"
#: The prefix of each rule group's name; one group per definition.
GROUP_PREFIX = "metricdemo:"

COMPARE = {
    Operator.GT: operators.gt,
    Operator.GE: operators.ge,
    Operator.LT: operators.lt,
    Operator.LE: operators.le,
    Operator.EQ: operators.eq,
    Operator.NE: operators.ne,
}


# Expressions.


def promql_string(value: Any) -> str:
    """Return `value` as a PromQL double-quoted string."""
    text = naming_text(value)
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def naming_text(value: Any) -> str:
    """Return a label value as /metrics writes it (booleans as true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def number(value: float) -> str:
    """Return a threshold as PromQL reads it: 50, 0.25, 1e+20."""
    value = float(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def duration(seconds: int) -> str:
    """Return seconds as a Prometheus duration: 90s, 10m, 2h."""
    seconds = int(seconds)
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def selector(name: str, filters: Mapping[str, Any]) -> str:
    """Return `name{label="value",...}` with the filters sorted by label."""
    if not filters:
        return name
    matchers = ", ".join(
        f"{key}={promql_string(value)}" for key, value in sorted(filters.items())
    )
    return f"{name}{{{matchers}}}"


def expression(rule: AlertRule, definition: MetricDefinition | None = None) -> str:
    """Return the PromQL expression of `rule`, with the names /metrics serves."""
    definition = definition or rule.definition
    family, sample = naming.exported_names(
        definition.name, definition.kind, definition.unit
    )
    filters = rule.label_filter if isinstance(rule.label_filter, Mapping) else {}
    histogram = definition.kind == Kind.HISTOGRAM
    if rule.operator == Operator.ABSENT:
        return (
            f"absent({selector(family + '_count' if histogram else sample, filters)})"
        )
    keep = by_labels(rule)
    if histogram:
        buckets = selector(family + "_bucket", filters)
        if rule.aggregation:
            buckets = f"sum by ({', '.join(['le', *keep])}) ({buckets})"
        value = f"histogram_quantile({number(rule.quantile)}, {buckets})"
    else:
        value = selector(sample, filters)
        if rule.aggregation:
            value = (
                f"{rule.aggregation} by ({', '.join(keep)}) ({value})"
                if keep
                else f"{rule.aggregation}({value})"
            )
    return f"{value} {rule.operator} {number(rule.threshold)}"


# Rule files.


def enabled_rules(rules: Iterable[AlertRule] | None = None) -> list[AlertRule]:
    """Return the rules to write: enabled, on enabled definitions, by definition."""
    if rules is None:
        rules = AlertRule.objects.select_related("definition").filter(
            enabled=True, definition__enabled=True
        )
    return sorted(
        (r for r in rules if r.enabled and r.definition.enabled),
        key=lambda r: (r.definition.name, r.name),
    )


def rule_entry(rule: AlertRule) -> dict[str, Any]:
    """Return one rule as Prometheus's rule file writes it."""
    entry: dict[str, Any] = {"alert": rule.name, "expr": expression(rule)}
    if rule.for_duration:
        entry["for"] = duration(rule.for_duration)
    if rule.keep_firing_for:
        entry["keep_firing_for"] = duration(rule.keep_firing_for)
    entry["labels"] = {
        "severity": rule.severity,
        DEFINITION_LABEL: rule.definition.name,
    }
    annotations = {}
    for field in ("summary", "description", "runbook_url"):
        if getattr(rule, field):
            annotations[field] = getattr(rule, field)
    if annotations:
        entry["annotations"] = annotations
    return entry


def groups(rules: Sequence[AlertRule]) -> list[dict[str, Any]]:
    """Return the rule groups: one per definition, named after it."""
    found: dict[str, dict[str, Any]] = {}
    for rule in rules:
        name = GROUP_PREFIX + rule.definition.name
        found.setdefault(name, {"name": name, "rules": []})["rules"].append(
            rule_entry(rule)
        )
    return list(found.values())


def rule_file(rules: Sequence[AlertRule]) -> dict[str, Any]:
    """Return the Prometheus rule file of `rules`."""
    return {"groups": groups(rules)}


def prometheus_rule(
    rules: Sequence[AlertRule], name: str = "metricdemo", namespace: str | None = None
) -> dict[str, Any]:
    """Return the same rules as a Prometheus Operator PrometheusRule resource."""
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {"app.kubernetes.io/managed-by": "metricdemo"},
    }
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata,
        "spec": {"groups": groups(rules)},
    }


# The current value, as Preview shows it.


def firing_now(
    rule: AlertRule, observations: Sequence[tuple[Any, Mapping[str, Any]]]
) -> list[tuple[dict[str, str], float | None]]:
    """Return the series the rule's condition holds for now: (labels, value).

    `observations` are a definition's evaluation (constant attributes
    included), as /metrics would export them. `for` is not waited: this says
    whether the condition holds, not whether Prometheus has fired yet.
    """
    filters = {
        key: naming_text(value) for key, value in (rule.label_filter or {}).items()
    }
    series = []
    for value, attributes in observations:
        labels = {
            validators.label_name(str(key)): naming_text(item)
            for key, item in attributes.items()
            if item is not None
        }
        labels.update(
            {
                validators.label_name(str(key)): ""
                for key, item in attributes.items()
                if item is None
            }
        )
        if all(labels.get(key) == text for key, text in filters.items()):
            series.append((labels, value))
    if rule.operator == Operator.ABSENT:
        return [({}, None)] if not series else []
    if rule.aggregation:
        series = _aggregated(rule, series)
    compare = COMPARE[Operator(rule.operator)]
    firing = []
    for labels, value in series:
        if isinstance(value, Distribution):
            value = value.quantile(rule.quantile or 0.5)
            if value is None:
                continue
        if (
            value is not None
            and not math.isnan(value)
            and compare(value, rule.threshold)
        ):
            firing.append((labels, value))
    return firing


def _aggregated(
    rule: AlertRule, series: list[tuple[dict[str, str], Any]]
) -> list[tuple[dict[str, str], Any]]:
    keep = by_labels(rule)
    grouped: dict[tuple, list[Any]] = {}
    for labels, value in series:
        key = tuple((name, labels.get(name, "")) for name in keep)
        grouped.setdefault(key, []).append(value)
    combined = []
    for key, values in grouped.items():
        if values and isinstance(values[0], Distribution):
            total = values[0]
            for more in values[1:]:
                total = Distribution(
                    total.bounds,
                    tuple(
                        a + b
                        for a, b in zip(total.cumulative, more.cumulative, strict=True)
                    ),
                    total.count + more.count,
                    total.sum + more.sum,
                )
            combined.append((dict(key), total))
            continue
        combined.append((dict(key), _combine(rule.aggregation, values)))
    return combined


def _combine(aggregation: str, values: list[Any]) -> float:
    numbers = [float(v) for v in values]
    if aggregation == Aggregation.SUM:
        return math.fsum(numbers)
    if aggregation == Aggregation.MAX:
        return max(numbers)
    if aggregation == Aggregation.MIN:
        return min(numbers)
    if aggregation == Aggregation.AVG:
        return math.fsum(numbers) / len(numbers)
    return float(len(numbers))
