"""Own the app's MetricReader: one per provider, collected on demand."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk.metrics.export import MetricReader, MetricsData


class ExpositionReader(MetricReader):
    """Hand the SDK's MetricsData to whoever asks: /metrics and the OTLP push alike.

    The SDK runs every observable callback once per reader collection, so a
    provider gets this one reader and both consumers share its collections:
    a definition is evaluated once per collection, however many ways its
    values leave the process. Temporality is cumulative, as Prometheus
    expects.
    """

    def __init__(self, cardinality_limits: dict | None = None) -> None:
        super().__init__(cardinality_limits=cardinality_limits)
        self._received: MetricsData | None = None
        self.shut_down = False

    def collect_now(self, timeout_millis: float = 10_000) -> MetricsData | None:
        """Collect the provider now and return its MetricsData (None if unregistered).

        Callers serialize collections (the collector's lock).
        """
        self._received = None
        self.collect(timeout_millis=timeout_millis)
        data, self._received = self._received, None
        return data

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        self._received = metrics_data

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Stop: the collector drops a reader shut down (with its provider)."""
        self._received = None
        self.shut_down = True
