"""Row counts run as one statement, and one bad definition cannot sink the rest."""

import pytest
from django.db import connection

from metricdemo.models import MetricDefinition
from tests.queries import steady_statements
from tests.row_counts import MODELS, create_counts
from tests.scraping import scrape, series, value

# Row counts run on worker threads with their own connections: commit the rows.
pytestmark = pytest.mark.django_db(transaction=True)

#: A filter that compiles but that the database refuses once the statement runs:
#: a pattern its regular expressions refuse (SQLite refuses regex lookups
#: before running them), or on SQLite an integer it cannot hold.
FAILS_WHEN_RUN = {"sqlite": {"customer_id": 2**70}}


def test_a_hundred_row_counts_cost_two_statements_per_scrape(client, orders):
    """The change check, and every count in one UNION ALL statement.

    Counts of one model with one group-by share one pass over the table, so
    the statement has one part per (model, group-by) pair of MODELS.
    """
    create_counts(100)
    statements = steady_statements(lambda: scrape(client))
    families = scrape(client)
    assert len(statements) == 2, statements
    assert "metricdemo_changestamp" in statements[0]
    assert statements[1].count("UNION ALL") == len(MODELS) - 1
    assert value(families, "counts_n0") == 3.0
    assert series(families, "counts_n1") == {
        frozenset({("status", "pending")}): 3.0,
        frozenset({("status", "paid")}): 2.0,
        frozenset({("status", "shipped")}): 1.0,
    }
    assert value(families, "counts_n3") == 3.0
    assert series(families, "counts_n8") == {frozenset({("kind", "gauge")}): 100.0}


def test_batched_and_single_counts_agree(client, orders):
    """The same definition gives the same series alone and in a batch."""
    create_counts(len(MODELS))
    batched = scrape(client)
    MetricDefinition.objects.exclude(name="counts.n1").delete()
    alone = scrape(client)
    assert series(batched, "counts_n1") == series(alone, "counts_n1")


def test_boolean_groups_are_named_alike_on_every_database(client, orders, define):
    from tests.shop.models import Order

    Order.objects.filter(status="paid").update(express=True)
    define(
        name="orders.express",
        source="row_count",
        model="shop.Order",
        group_by="express",
    )
    assert series(scrape(client), "orders_express") == {
        frozenset({("express", "true")}): 2.0,
        frozenset({("express", "false")}): 4.0,
    }


def test_a_failing_count_is_found_and_the_batch_still_exports(client, orders, define):
    create_counts(5)
    broken = MetricDefinition(
        name="counts.broken",
        source="row_count",
        model="shop.Order",
        filters=FAILS_WHEN_RUN.get(connection.vendor, {"status__regex": "(unclosed"}),
    )
    broken.save()  # saved without validation, as an old row may have been
    families = scrape(client)
    assert "counts_broken" not in families
    for i in range(5):
        assert f"counts_n{i}" in families
    errors = series(families, "metricdemo_evaluations_total")
    assert (
        errors[frozenset({("definition", "counts.broken"), ("outcome", "error")})]
        == 1.0
    )

    # From then on the broken one runs alone and the others stay batched.
    statements = steady_statements(lambda: scrape(client))
    families = scrape(client)
    assert len(statements) == 3, statements
    assert value(families, "counts_n0") == 3.0
