"""Write the Prometheus exposition: negotiate the format, translate names, render.

Pure formatting: it knows OpenTelemetry's MetricsData and prometheus_client's
families, and nothing of the app's definitions or providers.
"""

from metricdemo.exposition.names import DEFAULT_STRATEGY, STRATEGIES
from metricdemo.exposition.negotiation import (
    DEFAULT,
    Negotiated,
    gzip_accepted,
    negotiate,
)
from metricdemo.exposition.render import Collected, Renderer

__all__ = [
    "DEFAULT",
    "DEFAULT_STRATEGY",
    "STRATEGIES",
    "Collected",
    "Negotiated",
    "Renderer",
    "gzip_accepted",
    "negotiate",
]
