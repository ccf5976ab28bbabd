"""The two scrapes under measurement: GET /metrics, and the app's collection alone."""

from __future__ import annotations

from django.test import Client

from metricdemo import exposition, telemetry
from metricdemo.conf import app_settings


class Scrapes:
    """Scrape the app through the full request path or through its collection."""

    def __init__(self) -> None:
        self.client = Client()
        # One renderer, kept between scrapes as the view keeps its own, so its
        # header and label caches work as they do in /metrics.
        self.renderer = exposition.Renderer()

    def endpoint(self) -> bytes:
        """Scrape /metrics through Django's test client: the full request path."""
        response = self.client.get("/metrics")
        if response.status_code != 200:
            raise RuntimeError(f"/metrics answered {response.status_code}")
        return response.content

    def app_collector(self) -> bytes:
        """Collect the app's readers and render them, as the view does.

        No Django, no process or django-prometheus collectors: one evaluated
        collection of the app (change check, definitions, self-metrics, the
        SDK's collect) and its rendering in the default format.
        """
        collected = telemetry.get_telemetry().collector.collected()
        return self.render(collected)

    def render(self, collected: exposition.Collected) -> bytes:
        """Render one collection of the app in the default format."""
        return self.renderer.render(
            [collected], exposition.DEFAULT, app_settings.NAME_TRANSLATION
        )
