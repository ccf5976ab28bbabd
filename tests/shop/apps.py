"""The tests' shop app."""

from django.apps import AppConfig


class ShopConfig(AppConfig):
    """Test models for row counts."""

    name = "tests.shop"
    label = "shop"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        import os

        from metricdemo import register_callback

        # A value that differs in every process, to tell whose value is served.
        register_callback("test.pid", os.getpid, description="this process's id")
