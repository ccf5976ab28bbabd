"""Describe evaluations for people: values, series and outcomes, as short text."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from metricdemo import naming, validators
from metricdemo.distributions import Distribution
from metricdemo.evaluation import Evaluation
from metricdemo.models import MetricDefinition


@dataclass(frozen=True)
class Series:
    """One exported series as Prometheus would show it."""

    name: str
    labels: tuple[tuple[str, str], ...]
    #: A number, or a histogram's Distribution.
    value: float | Distribution

    @property
    def labels_text(self) -> str:
        """Return the labels as `key="value",...`, without braces."""
        return ",".join(f'{key}="{text}"' for key, text in self.labels)

    @property
    def value_text(self) -> str:
        """Return the value as a short number, or a histogram's count and median."""
        if isinstance(self.value, Distribution):
            return format_distribution(self.value)
        return format_number(self.value)

    def __str__(self) -> str:
        labels = f"{{{self.labels_text}}}" if self.labels else ""
        return f"{self.name}{labels} {self.value_text}"


def format_number(value: float) -> str:
    """Return `value` as people write it: 12, 0.25, 1.5e+20."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def format_distribution(value: Distribution) -> str:
    """Return a histogram's count, sum and median: `count 12, sum 340, p50 25`."""
    text = f"count {value.count}, sum {format_number(value.sum)}"
    median = value.quantile(0.5)
    if median is not None:
        text += f", p50 {format_number(median)}"
    return text


def series(definition: MetricDefinition, evaluation: Evaluation) -> list[Series]:
    """Return the series `evaluation` would export for `definition`, sorted."""
    name = naming.exported_names(definition.name, definition.kind, definition.unit)[1]
    found = [
        Series(
            name,
            tuple(
                sorted(
                    (validators.label_name(key), group_value(item))
                    for key, item in attributes.items()
                )
            ),
            value,
        )
        for value, attributes in evaluation.observations
    ]
    return sorted(found, key=lambda item: item.labels)


def summary(
    definition: MetricDefinition, evaluation: Evaluation, limit: int = 3
) -> str:
    """Return a one-line account of an evaluation: a value, some series or why not."""
    if not evaluation.ok:
        return f"{evaluation.outcome}: {evaluation.error}"
    found = series(definition, evaluation)
    # A value not computed now says why (kept, and for example slow).
    note = f" ({evaluation.outcome}: {evaluation.error})" if evaluation.error else ""
    if not found:
        return "no series" + note
    if len(found) == 1 and not found[0].labels:
        return found[0].value_text + note
    # A histogram's value has commas of its own, so semicolons part its series.
    separator = (
        "; " if any(isinstance(item.value, Distribution) for item in found) else ", "
    )
    shown = separator.join(
        f"{{{item.labels_text}}} {item.value_text}" for item in found[:limit]
    )
    more = f"{separator}and {len(found) - limit} more" if len(found) > limit else ""
    return f"{len(found)} series: {shown}{more}{note}"


def brief(definition: MetricDefinition, evaluation: Evaluation) -> str:
    """Return the value of a single series, else the series count or the outcome."""
    if not evaluation.ok:
        return evaluation.outcome
    found = series(definition, evaluation)
    if len(found) == 1:
        return found[0].value_text
    return f"{len(found)} series"


def group_value(value: Any) -> str:
    """Return the label text for an attribute value (empty for NULL)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
