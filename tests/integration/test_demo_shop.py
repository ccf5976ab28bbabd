"""The demo shop: seeded once, and its business metrics on /metrics match the ORM."""

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db.models import Avg, Count, Min, Sum

from metricdemo.distributions import Distribution
from metricdemo.models import MetricDefinition
from metricdemo.sources import SOURCES
from metricsite.demoshop.models import Customer, Order
from tests.scraping import scrape, series, value

# Evaluations run on worker threads with their own connections: commit the rows.
pytestmark = pytest.mark.django_db(transaction=True)

NOW = dt.datetime(2026, 3, 11, 15, 0, tzinfo=dt.UTC)


@pytest.fixture
def seeded(monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)
    call_command("seed_shop", stdout=io.StringIO())
    call_command("load_demo_metrics", stdout=io.StringIO())


def test_seed_shop__makes_the_same_shop_once(seeded):
    orders = list(Order.objects.order_by("pk").values_list("status", "total"))
    assert 2000 <= len(orders) <= 5000
    assert Customer.objects.count() >= 100
    out = io.StringIO()
    call_command("seed_shop", stdout=out)
    assert "nothing to do" in out.getvalue()
    assert list(Order.objects.order_by("pk").values_list("status", "total")) == orders
    call_command("seed_shop", "--reset", stdout=io.StringIO())
    again = list(Order.objects.order_by("pk").values_list("status", "total"))
    assert again == orders
    assert {status for status, _ in orders} == {
        "pending",
        "paid",
        "shipped",
        "cancelled",
    }


def test_demo_definitions__export_the_shop_as_the_orm_computes_it(client, seeded):
    families = scrape(client)
    open_orders = (
        Order.objects.filter(status__in=["pending", "paid"])
        .values("status", "customer__country")
        .annotate(n=Count("pk"))
    )
    assert series(families, "metricdemo_demo_shop_orders_open") == {
        frozenset({("status", row["status"]), ("country", row["customer__country"])}): (
            float(row["n"])
        )
        for row in open_orders
    }
    paid = Order.objects.filter(paid_at__gte=NOW - dt.timedelta(hours=24))
    revenue = float(paid.aggregate(s=Sum("total"))["s"])
    assert value(families, "metricdemo_demo_shop_revenue_24h") == pytest.approx(revenue)
    midnight = NOW.replace(hour=0)
    today = Order.objects.filter(created_at__gte=midnight)
    average = float(today.aggregate(a=Avg("total"))["a"])
    assert value(families, "metricdemo_demo_shop_order_value_today") == pytest.approx(
        average
    )
    oldest = Order.objects.filter(status="pending").aggregate(m=Min("created_at"))
    assert value(
        families, "metricdemo_demo_shop_oldest_pending_order_created_seconds"
    ) == pytest.approx(oldest["m"].timestamp(), abs=1e-3)
    week = Order.objects.filter(created_at__gte=NOW - dt.timedelta(days=7))
    customers = week.aggregate(n=Count("customer", distinct=True))["n"]
    assert value(families, "metricdemo_demo_shop_customers_7d") == float(customers)


#: The demo's histograms and the gauges of durations, with their kinds.
DURATIONS_AND_HISTOGRAMS = {
    "metricdemo.demo.shop.oldest_pending_order.age": "gauge",
    "metricdemo.demo.shop.order_value": "histogram",
    "metricdemo.demo.shop.time_to_payment": "histogram",
    "metricdemo.demo.shop.time_to_payment.average": "gauge",
}


def test_demo_definitions__seed_histograms_and_durations_that_validate(seeded):
    stored = MetricDefinition.objects.filter(name__in=DURATIONS_AND_HISTOGRAMS)
    assert {d.name: d.kind for d in stored} == DURATIONS_AND_HISTOGRAMS
    for definition in stored:
        definition.full_clean()


def seconds_to_payment() -> list[float]:
    paid = Order.objects.filter(paid_at__isnull=False)
    return [
        (paid_at - created_at).total_seconds()
        for paid_at, created_at in paid.values_list("paid_at", "created_at")
    ]


def test_demo_definitions__durations_export_as_the_orm_computes_them(client, seeded):
    families = scrape(client)
    waits = seconds_to_payment()
    assert value(
        families, "metricdemo_demo_shop_time_to_payment_average_seconds"
    ) == pytest.approx(sum(waits) / len(waits), rel=1e-9)
    oldest = Order.objects.filter(status="pending").aggregate(m=Min("created_at"))
    assert value(
        families, "metricdemo_demo_shop_oldest_pending_order_age_seconds"
    ) == pytest.approx((NOW - oldest["m"]).total_seconds(), abs=1e-3)


def observe(name: str) -> Distribution:
    """Evaluate a demo histogram as a scrape would; return its one distribution."""
    definition = MetricDefinition.objects.get(name=name)
    ((distribution, attributes),) = SOURCES[definition.source].observe(definition)
    assert attributes == {}
    return distribution


def assert_same(found: Distribution, expected: Distribution) -> None:
    assert (found.bounds, found.cumulative, found.count) == (
        expected.bounds,
        expected.cumulative,
        expected.count,
    )
    assert found.sum == pytest.approx(expected.sum, rel=1e-9)


def test_demo_histograms__count_the_orders_as_the_orm_does(seeded):
    totals = [float(t) for t in Order.objects.values_list("total", flat=True)]
    order_value = observe("metricdemo.demo.shop.order_value")
    assert_same(order_value, Distribution.of([10, 25, 50, 100, 250, 500, 1000], totals))
    # The seeded totals spread over the buckets: none is empty below the top.
    counts = order_value.bucket_counts()
    assert all(counts[:-2]), counts

    waits = seconds_to_payment()
    to_payment = observe("metricdemo.demo.shop.time_to_payment")
    bounds = [60, 300, 900, 1800, 3600, 7200, 21600, 86400, 259200]
    assert_same(to_payment, Distribution.of(bounds, waits))
    # Orders are paid 1 to 90 minutes after they are placed.
    assert to_payment.cumulative[0] == 0
    assert to_payment.cumulative[bounds.index(7200)] == len(waits) > 1000


def test_demo_histograms__export_their_buckets_sum_and_count(client, seeded):
    families = scrape(client)
    for name in DURATIONS_AND_HISTOGRAMS:
        definition = MetricDefinition.objects.get(name=name)
        if definition.kind != "histogram":
            continue
        family = definition.exported_name
        assert families[family].type == "histogram"
        expected = observe(name)
        buckets = {
            float(dict(labels)["le"]): count
            for labels, count in series(families, f"{family}_bucket").items()
        }
        assert buckets == {
            **dict(zip(expected.bounds, map(float, expected.cumulative), strict=True)),
            float("inf"): float(expected.count),
        }
        assert value(families, f"{family}_count") == expected.count
        assert value(families, f"{family}_sum") == pytest.approx(expected.sum)
