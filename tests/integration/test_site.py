"""The demo project: django-prometheus on the same /metrics, databases and cache."""

from __future__ import annotations

import os
import uuid

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import connection

from metricsite.settings import cache_settings, database_settings
from tests.processes import run_django
from tests.scraping import scrape, series, value


@pytest.mark.django_db(transaction=True)
def test_django_prometheus_families_sit_next_to_the_definitions(client, define):
    """Request and database metrics share /metrics, and no family appears twice."""
    define(name="shop.target", source="constant", value=500)
    assert client.get("/admin/login/").status_code == 200
    families = scrape(client)  # refuses a family that appears twice

    assert value(families, "shop_target") == 500.0
    by_method = series(families, "django_http_requests_total_by_method_total")
    assert by_method[frozenset({("method", "GET")})] >= 1
    executed = series(families, "django_db_execute_total")
    database = frozenset({("alias", "default"), ("vendor", connection.vendor)})
    assert executed[database] >= 1
    assert families["django_db_query_duration_seconds"].type == "histogram"


@pytest.mark.urls("tests.django_prometheus_urls")
@pytest.mark.django_db(transaction=True)
def test_django_prometheus_endpoint_alone_serves_the_definitions(client, define):
    """A host that keeps django_prometheus.urls needs no second endpoint."""
    define(name="shop.target", source="constant", value=500)
    families = scrape(client)
    assert value(families, "shop_target") == 500.0
    assert "django_http_requests_total_by_method" in families
    assert "target_info" in families


def test_the_demo_database_is_wrapped_by_django_prometheus():
    assert settings.DATABASES["default"]["ENGINE"].startswith(
        "django_prometheus.db.backends."
    )


@pytest.mark.parametrize(
    ("url", "engine"),
    [
        (None, "django_prometheus.db.backends.sqlite3"),
        ("sqlite:////tmp/x.sqlite3", "django_prometheus.db.backends.sqlite3"),
        (
            "postgres://u@127.0.0.1:5432/shop",
            "django_prometheus.db.backends.postgresql",
        ),
        ("mysql://root@127.0.0.1:3306/shop", "django_prometheus.db.backends.mysql"),
    ],
)
def test_database_settings__each_engine_gets_its_wrapper(url, engine):
    database = database_settings(url)
    assert database["ENGINE"] == engine
    assert database["CONN_MAX_AGE"] == 60


def test_cache_settings__redis_url_or_local_memory():
    assert cache_settings("redis://127.0.0.1:6379/0") == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/0",
    }
    assert cache_settings(None)["BACKEND"].endswith("LocMemCache")


@pytest.mark.skipif(
    not os.environ.get("REDIS_URL"),
    reason="REDIS_URL is not set; make test-all runs this against Redis",
)
def test_the_redis_cache_is_shared_between_processes():
    token = uuid.uuid4().hex
    cache.set("shared-check", token, timeout=60)
    try:
        result = run_django(
            "from django.core.cache import cache\n"
            "print(cache.get('shared-check'))\n"
            "cache.set('shared-check', 'seen', timeout=60)\n"
        )
        assert result.stdout.strip() == token
        assert cache.get("shared-check") == "seen"
    finally:
        cache.delete("shared-check")
