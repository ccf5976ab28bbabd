"""A scrape that never breaks: isolation, timeouts, caching and self-metrics."""

import threading
import time

import pytest
from django.db import OperationalError, connection, connections
from django.test import override_settings

from metricdemo.database import statement_timeout
from metricdemo.models import MetricDefinition
from tests.processes import run_django
from tests.queries import all_queries
from tests.scraping import evaluations, parse, scrape, series, value

pytestmark = pytest.mark.django_db


@pytest.fixture
def hang(callback):
    """Register a callback that blocks until the test ends."""
    release = threading.Event()
    started = threading.Event()

    def blocked():
        started.set()
        release.wait(60)
        return 1

    callback("test.hang", blocked)
    yield started
    release.set()


def test_hanging_callback_is_timed_out_and_the_scrape_returns(client, define, hang):
    define(name="ok.constant", source="constant", value=1)
    define(name="slow.callback", source="callback", callback="test.hang", timeout=0.3)
    began = time.monotonic()
    families = scrape(client)
    # The callback blocks for up to 60 s; the scrape does not wait for it.
    assert time.monotonic() - began < 30
    assert hang.is_set()
    assert value(families, "ok_constant") == 1.0
    assert "slow_callback" not in families
    assert evaluations(families, "slow.callback")["timeout"] == 1

    # Still running: not started again, counted as a timeout again, no waiting.
    families = scrape(client)
    assert evaluations(families, "slow.callback")["timeout"] == 2
    assert value(families, "ok_constant") == 1.0


def test_a_callback_that_recovers_is_exported_again(client, define, callback):
    gate = threading.Event()
    callback("test.gate", lambda: 5 if gate.wait(10) else 0)
    define(name="gated", source="callback", callback="test.gate", timeout=0.2)
    assert "gated" not in scrape(client)
    gate.set()
    for _ in range(50):  # the first evaluation ends once the gate opens
        families = scrape(client)
        if "gated" in families:
            break
        time.sleep(0.05)
    assert value(families, "gated") == 5.0
    # It timed out once, so it is slow: the value its late evaluation found is
    # served while it is refreshed in the background.
    assert evaluations(families, "gated")["kept"] >= 1


def test_self_metrics_describe_each_definition(client, define, callback):
    started = time.time()
    callback("test.boom", lambda: 1 / 0)
    callback("test.one", lambda: 1)
    define(name="good", source="callback", callback="test.one")
    define(name="bad", source="callback", callback="test.boom")
    define(name="fixed", source="constant", value=1)
    scrape(client)
    families = scrape(client)

    # Only outcomes that happened have a series.
    assert evaluations(families, "good") == {"success": 2.0}
    assert evaluations(families, "bad")["error"] == 2.0
    duration = value(
        families, "metricdemo_evaluation_duration_seconds", definition="good"
    )
    assert duration is not None and duration >= 0
    last = value(
        families, "metricdemo_last_success_timestamp_seconds", definition="good"
    )
    assert last >= started - 1
    assert (
        value(families, "metricdemo_last_success_timestamp_seconds", definition="bad")
        is None
    )
    assert value(families, "metricdemo_definitions_active") == 3.0
    assert families["metricdemo_evaluations"].type == "counter"
    # A constant is observed once per load, not per scrape: no self-metrics.
    assert evaluations(families, "fixed") == {}
    assert value(families, "fixed") == 1.0


def test_self_metric_series_leave_with_their_definition(client, define, callback):
    callback("test.one", lambda: 1)
    definition = define(name="short.lived", source="callback", callback="test.one")
    assert evaluations(scrape(client), "short.lived")["success"] == 1
    definition.delete()
    assert evaluations(scrape(client), "short.lived") == {}


@pytest.mark.django_db(transaction=True)
def test_a_grouped_count_with_many_groups_does_not_overflow(client, define):
    """More series than the SDK's default limit of 2000 still export one by one.

    They are more than the default max series (1000), so the definition raises it.
    """
    from tests.shop.models import Customer

    Customer.objects.bulk_create(Customer(name=f"c{i}") for i in range(2100))
    define(
        name="customers.by_name",
        source="row_count",
        model="shop.Customer",
        group_by="name",
        max_series=2100,
    )
    found = series(scrape(client), "customers_by_name")
    assert len(found) == 2100
    assert frozenset({("name", "c2099")}) in found
    assert not any(("otel_metric_overflow", "true") in labels for labels in found)


def test_self_metric_names_are_reserved(db):
    from django.core.exceptions import ValidationError

    definition = MetricDefinition(
        name="metricdemo.evaluations", kind="counter", source="constant", value=1
    )
    with pytest.raises(ValidationError) as info:
        definition.full_clean()
    assert "metricdemo_evaluations_total" in info.value.message_dict["name"][0]


@pytest.mark.django_db(transaction=True)
def test_cached_row_count_runs_no_query_until_it_expires(client, define, orders):
    from tests.shop.models import Order

    define(
        name="cached.orders", source="row_count", model="shop.Order", cache_seconds=300
    )
    define(name="fresh.orders", source="row_count", model="shop.Order")
    assert value(scrape(client), "cached_orders") == 6.0

    Order.objects.filter(status="pending").delete()
    with all_queries() as statements:
        families = scrape(client)
    counts = [sql for sql in statements if "shop_order" in sql]
    # Only the uncached definition counted; the cached one served its last value.
    assert len(counts) == 1, statements
    assert value(families, "cached_orders") == 6.0
    assert value(families, "fresh_orders") == 3.0
    assert evaluations(families, "cached.orders")["cached"] == 1

    # An edit changes the cache key, so the new definition is evaluated at once.
    MetricDefinition.objects.filter(name="cached.orders").update(
        filters={"status": "paid"}
    )
    assert value(scrape(client), "cached_orders") == 2.0


def test_cache_seconds_zero_evaluates_every_scrape(client, define, callback):
    calls = []
    callback("test.calls", lambda: calls.append(1) or len(calls))
    define(name="calls", source="callback", callback="test.calls")
    assert value(scrape(client), "calls") == 1.0
    assert value(scrape(client), "calls") == 2.0


@pytest.mark.django_db(transaction=True)
def test_a_shared_cache_serves_one_value_to_every_process(client, define, tmp_path):
    """With a cache every process reaches, they all serve the first value cached."""
    cache = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path),
        }
    }
    define(name="cached.pid", source="callback", callback="test.pid", cache_seconds=300)
    with override_settings(CACHES=cache):
        here = value(scrape(client), "cached_pid")
    import os

    assert here == float(os.getpid())
    result = run_django(
        "from django.test import Client\n"
        "print(Client().get('/metrics').content.decode())\n",
        env={"METRICDEMO_TEST_CACHE_DIR": str(tmp_path)},
    )
    assert value(parse(result.stdout), "cached_pid") == here


@pytest.mark.django_db(transaction=True)
def test_an_unusable_cache_falls_back_to_evaluating(client, define):
    broken = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            # Nothing listens on port 9 (discard) on this host.
            "LOCATION": "redis://127.0.0.1:9/0",
        }
    }
    define(name="cached.const", source="constant", value=3, cache_seconds=60)
    with override_settings(CACHES=broken):
        assert value(scrape(client), "cached_const") == 3.0
        assert value(scrape(client), "cached_const") == 3.0


@pytest.mark.django_db(transaction=True)
def test_statement_timeout_interrupts_a_long_query_in_the_database():
    """The database itself stops a query that runs past the timeout."""
    queries = {
        "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
        "SELECT count(*) FROM c",
        "postgresql": "SELECT pg_sleep(30)",
        "mysql": "SELECT SLEEP(30) FROM (SELECT 1 UNION SELECT 2) AS t",
    }
    outcome = {}

    def run() -> None:
        # On a thread of its own, as evaluations run, so the session timeout
        # stays on a connection that is closed afterwards.
        began = time.monotonic()
        try:
            with statement_timeout(connection, 0.3):
                with connection.cursor() as cursor:
                    cursor.execute(queries[connection.vendor])
                    outcome["rows"] = cursor.fetchall()
        except OperationalError as exc:
            outcome["error"] = exc
        finally:
            outcome["seconds"] = time.monotonic() - began
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    assert "error" in outcome, outcome
    assert outcome["seconds"] < 25
