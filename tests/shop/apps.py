"""The tests' shop app."""

from django.apps import AppConfig


class ShopConfig(AppConfig):
    """Test models for row counts."""

    name = "tests.shop"
    label = "shop"
    default_auto_field = "django.db.models.BigAutoField"
