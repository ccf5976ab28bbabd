"""Register the demo's callbacks and its manual counter at startup."""

from django.apps import AppConfig


class MetricSiteConfig(AppConfig):
    """The demo project's own app: process callbacks and the seed's manual counter."""

    name = "metricsite"
    verbose_name = "metricsite demo"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from metricsite import demo

        demo.register_process_callbacks()
        demo.start_manual_counter()
