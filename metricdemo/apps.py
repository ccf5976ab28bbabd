"""Wire the app up at startup: signals, checks and the meter provider."""

from django.apps import AppConfig
from django.core import checks
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext_lazy as _


class MetricDemoConfig(AppConfig):
    """Configure metricdemo; ready() runs no queries and may run twice."""

    name = "metricdemo"
    verbose_name = _("Metrics")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # These modules import the models, which only exist once apps load.
        from metricdemo import checks as metricdemo_checks
        from metricdemo import signals, telemetry

        definition = self.get_model("MetricDefinition")
        post_save.connect(
            signals.bump_change_stamp,
            sender=definition,
            dispatch_uid="metricdemo.bump_on_save",
        )
        post_delete.connect(
            signals.bump_change_stamp,
            sender=definition,
            dispatch_uid="metricdemo.bump_on_delete",
        )
        checks.register(metricdemo_checks.check_settings, "metricdemo")
        checks.register(
            metricdemo_checks.check_definitions, "metricdemo", checks.Tags.database
        )
        checks.register(
            metricdemo_checks.check_last_editors, "metricdemo", checks.Tags.database
        )
        checks.register(
            metricdemo_checks.check_metrics_exposure,
            "metricdemo",
            checks.Tags.security,
            deploy=True,
        )
        telemetry.setup()
