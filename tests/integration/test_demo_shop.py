"""The demo shop: seeded once, and its business metrics on /metrics match the ORM."""

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db.models import Avg, Count, Min, Sum

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
