"""The demo shop's app configuration."""

from django.apps import AppConfig


class DemoShopConfig(AppConfig):
    """Customers and orders that the demo's row-based definitions aggregate."""

    name = "metricsite.demoshop"
    label = "demoshop"
    verbose_name = "demo shop"
    default_auto_field = "django.db.models.BigAutoField"
