"""Definitions that share a pass give what each gives alone, whatever the mix.

A seeded random mix of aggregates, fields, filters and groupings over the
shop's orders is computed alone and together; a shared pass's conditional
aggregates, presence columns and bounds must not change any definition's value.
"""

import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from metricdemo import rowquery
from metricdemo.rowquery import compute_rows
from tests.aggregate_rows import row_based

pytestmark = pytest.mark.django_db

FIELDS = {
    "count": [""],
    "count_distinct": [
        "customer",
        "status",
        "quantity",
        "created",
        "customer__country",
    ],
    "sum": ["total", "quantity", "handling"],
    "avg": ["total", "quantity", "handling"],
    "min": ["created", "shipped_on", "total", "quantity"],
    "max": ["created", "shipped_on", "handling"],
}
FILTERS = [
    {},
    {"status": "pending"},
    {"status": "refunded"},
    {"quantity__isnull": True},
    {"quantity__gte": 3},
    {"total__lt": 20},
    {"customer__country": "DE"},
    {"created__gte": "now-1h"},
    {"created__gte": "now/d"},
    {"shipped_on__isnull": False, "status": "paid"},
]
GROUPINGS = ["", "status", "status, customer__country", "express", "customer__country"]


#: Customers, through the reverse relation to their orders (a pass of its own).
CUSTOMER_SHAPES = [
    ("count", "", {}, "country"),
    ("count", "", {"order__status": "paid"}, ""),
    ("sum", "order__total", {}, "country"),
    ("count_distinct", "order__status", {"country": "DE"}, ""),
    ("max", "order__created", {}, "country"),
    ("count", "", {"name__startswith": "A"}, "country"),
]


def random_definitions(seed: int, size: int) -> list:
    rng = random.Random(seed)
    made = []
    for _ in range(size // 5):
        aggregate, field, filters, group_by = rng.choice(CUSTOMER_SHAPES)
        made.append(
            row_based(
                model="shop.Customer",
                aggregate=aggregate,
                field=field,
                filters=dict(filters),
                group_by=group_by,
                max_series=rng.choice([None, 2]),
            )
        )
    for _ in range(size - len(made)):
        aggregate = rng.choice(list(FIELDS))
        made.append(
            row_based(
                aggregate=aggregate,
                field=rng.choice(FIELDS[aggregate]),
                filters=dict(rng.choice(FILTERS)),
                group_by=rng.choice(GROUPINGS),
                max_series=rng.choice([None, None, 2, 3]),
            )
        )
    rng.shuffle(made)
    return made


def comparable(result):
    """Return a result as something == compares: observations or the error text."""
    if isinstance(result, list):
        return sorted(
            (sorted(attributes.items()), pytest.approx(value, abs=1e-6))
            for value, attributes in result
        )
    return str(result)


@pytest.mark.parametrize("seed", range(20))
def test_compute_rows__together_gives_what_each_gives_alone(shop, seed):
    rowquery.clear_plans()
    definitions = random_definitions(seed, 40)
    alone = [compute_rows([d])[0] for d in definitions]
    with CaptureQueriesContext(connection) as queries:
        together = compute_rows(definitions)
    for definition, one, shared in zip(definitions, alone, together, strict=True):
        described = (
            definition.aggregate,
            definition.field,
            definition.filters,
            definition.group_by,
            definition.max_series,
        )
        assert comparable(shared) == comparable(one), described
    assert queries.captured_queries


def test_compute_rows__groups_without_values_hide_no_series_of_an_average(shop):
    """5 groups have a quantity and 1 has none: with max series 3, an error.

    Reading max series + 1 groups, where one of them has no value, would
    otherwise give 3 series and hide the other 2.
    """
    definition = row_based(
        aggregate="avg", field="quantity", group_by="status, customer__country"
    )
    definition.max_series = 5
    (found,) = compute_rows([definition])
    assert len(found) == 5
    definition.max_series = 4
    (found,) = compute_rows([definition])
    assert "more than 4 groups" in str(found)
