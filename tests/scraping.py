"""Scrape /metrics and read the parsed families, for assertions in tests."""

from __future__ import annotations

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

SCOPE_LABELS = ("otel_scope_name", "otel_scope_version", "otel_scope_schema_url")


def parse(text: str) -> dict[str, Metric]:
    """Parse Prometheus text into families by name, refusing duplicated families."""
    families: dict[str, Metric] = {}
    for family in text_string_to_metric_families(text):
        assert family.name not in families, f"duplicated family {family.name}"
        families[family.name] = family
    return families


def scrape(client, path: str = "/metrics", **headers) -> dict[str, Metric]:
    """GET /metrics with the Django test client, check it is 200, and parse it."""
    response = client.get(path, **headers)
    assert response.status_code == 200, response.content
    return parse(response.content.decode())


def series(families: dict[str, Metric], sample_name: str) -> dict[frozenset, float]:
    """Return {labels without the otel_scope_* ones: value} for one sample name."""
    found: dict[frozenset, float] = {}
    for family in families.values():
        for sample in family.samples:
            if sample.name != sample_name:
                continue
            labels = frozenset(
                (k, v) for k, v in sample.labels.items() if k not in SCOPE_LABELS
            )
            assert labels not in found, f"duplicated series {sample_name}{dict(labels)}"
            found[labels] = sample.value
    return found


def value(families: dict[str, Metric], sample_name: str, **labels: str) -> float | None:
    """Return the value of the one series with exactly these labels, or None."""
    return series(families, sample_name).get(frozenset(labels.items()))


def evaluations(families, name: str) -> dict[str, float]:
    """Return {outcome: count} of the self-metric for one definition."""
    return {
        dict(labels)["outcome"]: count
        for labels, count in series(families, "metricdemo_evaluations_total").items()
        if dict(labels)["definition"] == name
    }


def demo_definitions(kind: str) -> float:
    """Return how many of the demo's enabled definitions are of `kind`, as a value."""
    from metricsite.demo import DEMO_DEFINITIONS

    return float(
        sum(
            d.get("kind", "gauge") == kind and d.get("enabled", True)
            for d in DEMO_DEFINITIONS
        )
    )


def demo_definitions_by_kind() -> dict[frozenset, float]:
    """Return the series metricdemo.demo.definitions exports for the demo's own."""
    from metricsite.demo import DEMO_DEFINITIONS

    kinds = {d.get("kind", "gauge") for d in DEMO_DEFINITIONS}
    counts = {kind: demo_definitions(kind) for kind in sorted(kinds)}
    return {frozenset({("kind", kind)}): n for kind, n in counts.items() if n}
