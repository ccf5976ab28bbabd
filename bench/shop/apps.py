"""The benchmark's shop app."""

from django.apps import AppConfig


class BenchShopConfig(AppConfig):
    """Ten small models whose rows the benchmark's row counts count."""

    name = "bench.shop"
    label = "bench_shop"
    default_auto_field = "django.db.models.BigAutoField"
