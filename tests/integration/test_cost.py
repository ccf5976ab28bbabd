"""The database's own estimate of a row-based definition's cost, on every backend."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import OperationalError, connection

from metricdemo import cost
from metricdemo.models import MetricDefinition
from tests.shop.models import Customer, Order

pytestmark = pytest.mark.django_db

ORDERS = 2000
CUSTOMERS = 100


@pytest.fixture
def many_orders(db) -> list[Customer]:
    """Create ORDERS orders spread over CUSTOMERS customers and three statuses."""
    customers = Customer.objects.bulk_create(
        Customer(name=f"customer {i}") for i in range(CUSTOMERS)
    )
    day = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    Order.objects.bulk_create(
        Order(
            customer=customers[i % CUSTOMERS],
            status=("pending", "paid", "shipped")[i % 3],
            created=day + dt.timedelta(minutes=i),
        )
        for i in range(ORDERS)
    )
    return customers


def orders(filters=None, **fields) -> MetricDefinition:
    """Return an unsaved row count of shop orders."""
    return MetricDefinition(
        name="shop.orders",
        source="row_count",
        model="shop.Order",
        filters=filters or {},
        **fields,
    )


def analyze() -> None:
    """Have the database gather the statistics its planner estimates from."""
    statements = {
        "postgresql": "ANALYZE shop_order, shop_customer",
        "mysql": "ANALYZE TABLE shop_order, shop_customer",
        "sqlite": "ANALYZE",
    }
    with connection.cursor() as cursor:
        cursor.execute(statements[connection.vendor])
        if connection.vendor == "mysql":
            cursor.fetchall()  # ANALYZE TABLE answers with a table of its own


@pytest.fixture
def no_sqlite_statistics():
    """Forget SQLite's statistics at the end, so later tests plan without them."""
    yield
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM sqlite_stat1")
            cursor.execute("ANALYZE sqlite_master")  # reload: no statistics


def test_estimate__an_indexed_filter_is_served_by_its_index(many_orders):
    # Django indexes a foreign key; the field is named, not its index.
    found = cost.estimate(orders({"customer": many_orders[3].pk}))
    assert (found.indexes, found.filtered, found.failed) == (("customer",), True, False)
    # An order that exists: MariaDB looks a missing primary key up while
    # planning, and then reads nothing.
    assert cost.estimate(orders({"pk": Order.objects.last().pk})).indexes == ("id",)


def test_estimate__an_unindexed_filter_reads_the_whole_table(many_orders):
    for filters in ({"status": "paid"}, {"created__gte": "now-1h"}):
        found = cost.estimate(orders(filters))
        assert (found.indexes, found.filtered, found.failed) == ((), True, False)


def test_estimate__no_filters_read_the_whole_table():
    found = cost.estimate(orders(group_by="status"))
    assert (found.indexes, found.filtered, found.failed) == ((), False, False)


@pytest.mark.django_db(transaction=True)  # MariaDB's ANALYZE TABLE commits
def test_estimate__rows_within_an_order_of_magnitude_after_analyze(
    many_orders, no_sqlite_statistics
):
    analyze()
    whole = cost.estimate(orders({"status": "paid"}))
    one_customer = cost.estimate(orders({"customer": many_orders[3].pk}))
    assert ORDERS / 10 <= whole.rows <= ORDERS * 10
    per_customer = ORDERS / CUSTOMERS
    assert per_customer / 10 <= one_customer.rows <= per_customer * 10
    assert cost.estimate(orders({"pk": Order.objects.last().pk})).rows == 1
    assert not whole.at_most and not one_customer.at_most


def test_estimate__sqlite_gives_no_rows_before_analyze(many_orders):
    found = cost.estimate(orders({"status": "paid"}))
    if connection.vendor == "sqlite":
        assert found.rows is None
        assert found.note == "SQLite estimates no row counts before ANALYZE has run."
    else:
        # The servers estimate from the table's size without statistics.
        assert found.rows > 0 and found.note == ""


def test_estimate__filters_that_match_nothing_read_no_rows():
    found = cost.estimate(orders({"status__in": []}))
    assert (found.rows, found.nothing) == (0, True)


def test_estimate__only_row_based_definitions_that_compile():
    constant = MetricDefinition(name="x", source="constant", value=1)
    assert cost.estimate(constant) is None
    assert cost.estimate(orders({"no_such_field": 1})) is None


def test_estimate__an_explain_that_fails_gives_the_reason(monkeypatch):
    def fail(*args):
        raise OperationalError("the server went away")

    monkeypatch.setattr(cost, "_explain", fail)
    found = cost.estimate(orders({"status": "paid"}))
    assert (found.rows, found.failed) == (None, True)
    assert found.note == "OperationalError: the server went away"
