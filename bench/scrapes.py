"""The two scrapes under measurement: GET /metrics, and the app's collector alone."""

from __future__ import annotations

from django.test import Client
from prometheus_client import CollectorRegistry, generate_latest

from metricdemo import telemetry


class Scrapes:
    """Scrape the app through the full request path or through its collector."""

    def __init__(self) -> None:
        self.client = Client()
        # The app's collector alone, without Django, the process collectors or
        # django-prometheus: what the OpenTelemetry floor is compared with.
        self._app_registry = CollectorRegistry(auto_describe=False)
        self._app_registry.register(telemetry.get_telemetry().collector)

    def endpoint(self) -> bytes:
        """Scrape /metrics through Django's test client: the full request path."""
        response = self.client.get("/metrics")
        if response.status_code != 200:
            raise RuntimeError(f"/metrics answered {response.status_code}")
        return response.content

    def app_collector(self) -> bytes:
        """Scrape the app's collector alone."""
        return generate_latest(self._app_registry)
