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
        register_callback(
            "test.count_calls",
            count_calls,
            description="records each call in shop.Call; returns the calls so far",
        )


def count_calls() -> int:
    """Record this call in the database, wait a while, and return the calls so far.

    METRICDEMO_TEST_CALL_SECONDS makes each call last that long, so that a
    test can stop the process in the middle of one.
    """
    import os
    import time

    from tests.shop.models import Call

    Call.objects.create(pid=os.getpid())
    time.sleep(float(os.environ.get("METRICDEMO_TEST_CALL_SECONDS") or 0))
    return Call.objects.count()
