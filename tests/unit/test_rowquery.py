"""Unit tests for metricdemo.rowquery: many row counts in few statements."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from metricdemo import rowquery
from metricdemo.models import MetricDefinition
from metricdemo.observations import EvaluationError
from metricdemo.rowquery import compute_rows

pytestmark = pytest.mark.django_db


def count(model: str, filters=None, group_by: str = "", **fields) -> MetricDefinition:
    """Return an unsaved row-count definition."""
    return MetricDefinition(
        name="x",
        source="row_count",
        model=model,
        filters=filters or {},
        group_by=group_by,
        **fields,
    )


def grouped(observations) -> dict[str, float]:
    """Return {label value: count} of a one-label grouped count."""
    found = {}
    for value, attributes in observations:
        ((_, label),) = attributes.items()
        assert label not in found, f"group {label!r} twice"
        found[label] = value
    return found


def counted(definitions):
    """Return compute_rows' result and the statements it ran on this connection."""
    with CaptureQueriesContext(connection) as queries:
        found = compute_rows(definitions)
    return found, [query["sql"] for query in queries.captured_queries]


def test_compute_rows__counts_the_selection(orders):
    found, statements = counted([count("shop.Order", {"status": "pending"})])
    assert found == [[(3.0, {})]]
    assert len(statements) == 1


def test_compute_rows__an_empty_selection_is_zero_and_no_groups(orders):
    nothing = {"status": "refunded"}
    found = compute_rows(
        [count("shop.Order", nothing), count("shop.Order", nothing, "status")]
    )
    assert found == [[(0.0, {})], []]


def test_compute_rows__one_series_per_group_named_after_the_group_by(orders):
    (found,) = compute_rows([count("shop.Order", group_by="status")])
    assert {key for _, attributes in found for key in attributes} == {"status"}
    assert grouped(found) == {"pending": 3.0, "paid": 2.0, "shipped": 1.0}


def test_compute_rows__boolean_groups_are_true_and_false(orders):
    from tests.shop.models import Order

    Order.objects.filter(status="paid").update(express=True)
    (found,) = compute_rows([count("shop.Order", group_by="express")])
    assert grouped(found) == {"true": 2.0, "false": 4.0}


def test_compute_rows__only_boolean_fields_become_true_and_false(db):
    from django.contrib.auth.models import User

    from tests.shop.models import Customer

    User.objects.create(username="staff", is_staff=True)
    User.objects.create(username="user")
    (found,) = compute_rows([count("auth.User", group_by="is_staff")])
    assert grouped(found) == {"true": 1.0, "false": 1.0}
    # A text field whose values look like booleans keeps them as stored.
    Customer.objects.create(name="t", country="t")
    (found,) = compute_rows([count("shop.Customer", group_by="country")])
    assert grouped(found) == {"t": 1.0}


def test_compute_rows__null_groups_are_an_empty_label(orders):
    from tests.shop.models import Order

    Order.objects.create(status="paid", customer=None, created=orders[0].created)
    found = compute_rows(
        [
            count("shop.Customer", group_by="country"),
            # No customer and a customer without a country meet in one group.
            count("shop.Order", group_by="customer__country"),
        ]
    )
    assert grouped(found[0]) == {"DE": 1.0, "FR": 1.0, "": 1.0}
    assert grouped(found[1]) == {"DE": 3.0, "FR": 2.0, "": 2.0}


def test_compute_rows__groups_by_a_relation_are_its_keys_as_text(orders):
    from tests.shop.models import Customer

    (found,) = compute_rows([count("shop.Order", group_by="customer")])
    anna = Customer.objects.get(name="Anna")
    assert grouped(found)[str(anna.pk)] == 3.0


def test_compute_rows__leaves_constant_attributes_to_the_caller(orders):
    definition = count("shop.Order", attributes={"region": "eu"})
    assert compute_rows([definition]) == [[(6.0, {})]]


def test_compute_rows__many_definitions_share_one_statement(orders):
    definitions = [
        count("shop.Order", {"status": "pending"}),
        count("shop.Customer", {}, "country"),
        count("shop.Order", {"created__year": 2025}),
        count("auth.User"),
    ]
    found, statements = counted(definitions)
    assert len(statements) == 1
    # The two counts of shop.Order share one pass over its table.
    assert statements[0].count("UNION ALL") == 2
    assert found[0] == [(3.0, {})]
    assert grouped(found[1]) == {"DE": 1.0, "FR": 1.0, "": 1.0}
    assert found[2] == [(1.0, {})]
    assert found[3] == [(0.0, {})]


@pytest.mark.parametrize(
    ("definition", "text"),
    [
        (count("shop.Nope"), "'shop.Nope'"),
        (count("sessions.Session"), "ROW_COUNT_EXCLUDED_MODELS"),
        (count("shop.Customer", {"vouchers__key": "x"}), "sensitive"),
        (count("shop.Customer", group_by="vouchers"), "sensitive"),
    ],
    ids=["unknown-model", "excluded-model", "sensitive-filter", "sensitive-group"],
)
def test_compute_rows__a_refused_definition_is_an_error_in_its_place(
    orders, definition, text
):
    found, statements = counted(
        [count("shop.Order"), definition, count("shop.Customer")]
    )
    assert found[0] == [(6.0, {})]
    assert isinstance(found[1], EvaluationError)
    assert text in str(found[1])
    assert found[2] == [(3.0, {})]
    assert len(statements) == 1


@override_settings(METRICDEMO={"ROW_COUNT_MODELS": ["auth"]})
def test_compute_rows__nothing_countable_runs_no_statement(orders):
    found, statements = counted([count("shop.Order"), count("shop.Customer")])
    assert all(isinstance(item, EvaluationError) for item in found)
    assert statements == []


def test_compute_rows__chunks_at_counts_per_statement(orders, monkeypatch):
    monkeypatch.setattr(rowquery.plan, "COUNTS_PER_STATEMENT", 2)
    # One definition per pass, so that each pass is one part of a statement.
    monkeypatch.setattr(rowquery.plan, "MEMBERS_PER_PASS", 1)
    statuses = ["pending", "paid", "shipped", "pending", "paid"]
    definitions = [count("shop.Order", {"status": status}) for status in statuses]
    # A refused definition takes no place in a statement.
    definitions.insert(2, count("shop.Nope"))
    found, statements = counted(definitions)
    assert len(statements) == 3
    assert [s.count("UNION ALL") for s in statements] == [1, 1, 0]
    assert isinstance(found.pop(2), EvaluationError)
    assert found == [[(n, {})] for n in (3.0, 2.0, 1.0, 3.0, 2.0)]


def test_compute_rows__the_largest_statement_is_accepted_by_the_database(
    orders, monkeypatch
):
    """SQLite refuses compound statements of more than 500 SELECTs."""
    monkeypatch.setattr(rowquery.plan, "MEMBERS_PER_PASS", 1)
    definitions = [
        count("shop.Customer", {"pk__gte": i % 3})
        for i in range(rowquery.plan.COUNTS_PER_STATEMENT + 1)
    ]
    found, statements = counted(definitions)
    assert len(statements) == 2
    assert statements[0].count("UNION ALL") == rowquery.plan.COUNTS_PER_STATEMENT - 1
    assert all(len(item) == 1 and item[0][0] >= 0 for item in found)
    assert found[0] == [(3.0, {})]


def test_compute_rows__a_failing_statement_raises_a_database_error(orders):
    """Which definition broke it is the caller's question (it retries each alone)."""
    # SQLite refuses a regex before running it, but cannot hold this integer.
    if connection.vendor == "sqlite":
        broken, error = count("shop.Order", {"customer_id": 2**70}), OverflowError
    else:
        broken, error = (
            count("shop.Order", {"status__regex": "(unclosed"}),
            DatabaseError,
        )
    with pytest.raises(error), transaction.atomic():
        compute_rows([count("shop.Order"), broken])
    # The caller's transaction is still usable.
    assert compute_rows([count("shop.Order")]) == [[(6.0, {})]]


def test_statement__one_limit_after_the_last_part_bounds_the_whole_statement(orders):
    """On every backend the LIMIT bounds the UNION ALL, not its last part."""
    rowquery.clear_plans()
    definitions = [
        count("shop.Order", group_by="status", max_series=1),
        count("shop.Customer", group_by="country", max_series=1),
    ]
    (statement,) = rowquery.plan_for(definitions).statements
    assert statement.limit == 4  # (1 + 1) for each grouped pass
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, statement.params)
        rows = cursor.fetchall()
    # 3 statuses and 3 countries: cut at 4 rows, whichever parts they come from.
    assert len(rows) == 4
    # Reaching the LIMIT runs the statement again, each pass bounded alone.
    found, statements = counted(definitions)
    assert len(statements) == 2
    assert statement.bounded
    assert [str(result) for result in found] == [
        "shop.Order grouped by status has more than 1 groups (max_series); group "
        "by a field with fewer distinct values or raise max series.",
        "shop.Customer grouped by country has more than 1 groups (max_series); "
        "group by a field with fewer distinct values or raise max series.",
    ]
    # Then it starts with the bounded form: one statement.
    found, statements = counted(definitions)
    assert len(statements) == 1
