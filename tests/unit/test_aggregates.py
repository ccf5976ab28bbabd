"""Aggregates, time windows and several group-by paths, checked against the ORM.

Every value the app computes is compared with the same value computed here,
independently, with plain ORM calls.
"""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.db.models import Avg, Count, Max, Min, Sum
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from metricdemo import aggregates, rowquery
from metricdemo.observations import EvaluationError
from metricdemo.rowquery import compute_rows
from metricdemo.validators import group_by_keys
from tests.aggregate_rows import NOW, row_based
from tests.shop.models import Customer, Order

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")
FUNCTIONS = {"sum": Sum, "avg": Avg, "min": Min, "max": Max}


def exported(value) -> float:
    """Return what a value of the ORM exports as: numbers, seconds, Unix time."""
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, dt.date):
        # The start of that day in the site's time zone.
        midnight = dt.datetime.combine(value, dt.time())
        return midnight.replace(tzinfo=timezone.get_default_timezone()).timestamp()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return float(value)


def expected(queryset, aggregate: str, field: str) -> list:
    """Return the observations the ORM gives for `aggregate` of `field`."""
    if aggregate == "count":
        return [(float(queryset.count()), {})]
    if aggregate == "count_distinct":
        found = queryset.aggregate(n=Count(field, distinct=True))["n"]
        return [(float(found), {})]
    found = queryset.aggregate(v=FUNCTIONS[aggregate](field))["v"]
    if found is None:
        return [(0.0, {})] if aggregate == "sum" else []
    return [(pytest.approx(exported(found), abs=1e-3), {})]


@pytest.fixture
def clock(monkeypatch):
    """Set the clock that relative times read; return a function to move it."""

    def set_clock(moment: dt.datetime) -> None:
        monkeypatch.setattr("django.utils.timezone.now", lambda: moment)

    set_clock(NOW)
    return set_clock


CASES = [
    ("count", "", {}),
    ("count", "", {"status": "pending"}),
    ("count_distinct", "customer", {}),
    ("count_distinct", "customer__country", {}),
    ("count_distinct", "status", {"total__gte": 5}),
    ("sum", "total", {}),
    ("sum", "total", {"status": "pending"}),
    ("sum", "quantity", {"status": "paid"}),
    ("sum", "handling", {}),
    ("avg", "total", {}),
    ("avg", "quantity", {}),
    ("avg", "handling", {"status": "paid"}),
    ("min", "created", {}),
    ("max", "created", {"status": "pending"}),
    ("min", "shipped_on", {}),
    ("max", "shipped_on", {"status": "shipped"}),
    ("min", "total", {}),
    ("max", "quantity", {}),
    ("min", "handling", {}),
    ("sum", "total", {"customer__country": "DE"}),
    # Nothing matches: 0 for count, count_distinct and sum, no series else.
    ("count", "", {"status": "refunded"}),
    ("count_distinct", "customer", {"status": "refunded"}),
    ("sum", "total", {"status": "refunded"}),
    ("avg", "total", {"status": "refunded"}),
    ("min", "created", {"status": "refunded"}),
    ("max", "shipped_on", {"status": "refunded"}),
    # Only NULLs: a sum of 0, and no average.
    ("sum", "quantity", {"quantity__isnull": True}),
    ("avg", "quantity", {"quantity__isnull": True}),
]


@override_settings(TIME_ZONE="Europe/Berlin")
@pytest.mark.parametrize(("aggregate", "field", "filters"), CASES)
def test_compute_rows__each_aggregate_alone_and_together_matches_the_orm(
    shop, aggregate, field, filters
):
    want = expected(Order.objects.filter(**filters), aggregate, field)
    alone = compute_rows([row_based(aggregate=aggregate, field=field, filters=filters)])
    assert alone == [want]


@override_settings(TIME_ZONE="Europe/Berlin")
def test_compute_rows__all_cases_in_one_pass_match_the_orm(shop):
    """The same cases computed together: one statement, one scan of the table."""
    definitions = [row_based(aggregate=a, field=f, filters=q) for a, f, q in CASES]
    with CaptureQueriesContext(connection) as queries:
        found = compute_rows(definitions)
    assert len(queries.captured_queries) == 1
    assert "UNION ALL" not in queries.captured_queries[0]["sql"]
    for (aggregate, field, filters), got in zip(CASES, found, strict=True):
        want = expected(Order.objects.filter(**filters), aggregate, field)
        assert got == want, (aggregate, field, filters)


def grouped_expected(queryset, paths, aggregate, field) -> dict:
    """Return {labels: value} from the ORM for a grouped aggregate."""
    if aggregate == "count":
        measure = Count("pk")
    elif aggregate == "count_distinct":
        measure = Count(field, distinct=True)
    else:
        measure = FUNCTIONS[aggregate](field)
    result = {}
    for row in queryset.order_by().values(*paths).annotate(v=measure):
        if row["v"] is None and aggregate in ("avg", "min", "max"):
            continue
        labels = frozenset(
            (path, "" if row[path] is None else str(row[path])) for path in paths
        )
        result[labels] = pytest.approx(exported(row["v"] or 0), abs=1e-3)
    return result


def as_dict(observations, keys: dict) -> dict:
    """Return {labels by path: value}, renaming attribute keys back to paths."""
    back = {key: path for path, key in keys.items()}
    return {
        frozenset((back[k], v) for k, v in attributes.items()): value
        for value, attributes in observations
    }


GROUPED = [
    ("status", "count", "", {}),
    ("status, customer__country", "count", "", {}),
    ("status, customer__country", "sum", "total", {}),
    ("status, customer__country", "avg", "quantity", {"total__gte": 1}),
    ("customer__country, status", "max", "created", {}),
    ("status", "count_distinct", "customer", {"status__in": ["paid", "shipped"]}),
    ("status", "sum", "quantity", {"quantity__isnull": True}),
    ("customer__country", "min", "shipped_on", {}),
    ("status, express", "count", "", {"status": "pending"}),
    ("status", "sum", "total", {"status": "refunded"}),
    # Fields that are never NULL: the value alone tells which groups matched.
    ("status", "sum", "total", {"customer__country": "DE"}),
    ("status", "count_distinct", "created", {"total__gte": 50}),
]


@pytest.mark.parametrize(("group_by", "aggregate", "field", "filters"), GROUPED)
def test_compute_rows__grouped_aggregates_match_the_orm(
    shop, group_by, aggregate, field, filters
):
    keys = group_by_keys(group_by)
    definition = row_based(
        aggregate=aggregate, field=field, filters=filters, group_by=group_by
    )
    want = grouped_expected(
        Order.objects.filter(**filters), list(keys), aggregate, field
    )
    want = {
        frozenset(
            (p, "true" if v == "True" else "false" if v == "False" else v)
            for p, v in labels
        ): value
        for labels, value in want.items()
    }
    (alone,) = compute_rows([definition])
    assert as_dict(alone, keys) == want
    # The same, sharing a pass with every other case of the same grouping.
    together = [
        row_based(aggregate=a, field=f, filters=q, group_by=group_by)
        for g, a, f, q in GROUPED
        if g == group_by
    ]
    found = compute_rows([*together, definition])
    assert as_dict(found[-1], keys) == want


#: Totals whose sums, added as floats, are off in the last digits (0.1 + 0.2).
DECIMAL_TOTALS = ["0.10", "0.20", "1234.56", "0.07", "99.99", "10.01", "0.33"]


@pytest.fixture
def decimal_orders(db):
    customer = Customer.objects.create(name="decimal", country="DE")
    for i, total in enumerate(DECIMAL_TOTALS):
        Order.objects.create(
            customer=customer,
            status=("pending", "paid")[i % 2],
            total=Decimal(total),
            created=NOW,
        )


@pytest.mark.parametrize("aggregate", ["sum", "min", "max"])
def test_compute_rows__decimal_results_keep_the_fields_decimal_places(
    decimal_orders, aggregate
):
    """A sum of 0.10 and 0.20 is 0.3 on every database, as the ORM's Decimal is."""
    function = FUNCTIONS[aggregate]
    whole = Order.objects.aggregate(v=function("total"))["v"]
    by_status = Order.objects.order_by().values("status").annotate(v=function("total"))
    assert isinstance(whole, Decimal)
    found = compute_rows(
        [
            row_based(aggregate=aggregate, field="total"),
            row_based(aggregate=aggregate, field="total", group_by="status"),
            # An average shares the pass and is left as the database computes it.
            row_based(aggregate="avg", field="total"),
        ]
    )
    assert found[0] == [(float(whole), {})]
    assert sorted(found[1], key=lambda o: o[1]["status"]) == [
        (float(row["v"]), {"status": row["status"]})
        for row in sorted(by_status, key=lambda row: row["status"])
    ]
    (average,) = found[2]
    assert average[0] == pytest.approx(
        float(Order.objects.aggregate(v=Avg("total"))["v"])
    )


def test_compute_rows__several_paths_are_labelled_by_their_last_part(shop):
    (found,) = compute_rows([row_based(group_by="status, customer__country")])
    labels = {frozenset(attributes) for _, attributes in found}
    assert labels == {frozenset({"status", "country"})}


@override_settings(TIME_ZONE="Europe/Berlin")
def test_compute_rows__windows_match_the_orm_with_the_same_times(shop, clock):
    windows = {
        "created__gte": "now-1h",
        "created__lt": "now-15m",
    }
    resolved = {
        "created__gte": NOW - dt.timedelta(hours=1),
        "created__lt": NOW - dt.timedelta(minutes=15),
    }
    (found,) = compute_rows([row_based(filters=windows)])
    assert found == [(float(Order.objects.filter(**resolved).count()), {})]
    assert found == [(2.0, {})]


@override_settings(TIME_ZONE="Europe/Berlin")
def test_compute_rows__today_starts_at_midnight_in_time_zone(shop, clock):
    """At 00:30 in Berlin, today holds only the last half hour (UTC: yesterday)."""
    midnight = dt.datetime(2026, 3, 11, tzinfo=BERLIN)
    found = compute_rows(
        [
            row_based(filters={"created__gte": "now/d"}),
            row_based(
                aggregate="sum", field="total", filters={"created__gte": "now/d"}
            ),
            row_based(filters={"created__gte": "now-1d/d", "created__lt": "now/d"}),
            row_based(filters={"shipped_on": "now/d"}),
            row_based(filters={"shipped_on__lt": "now-1d"}),
        ]
    )
    today = Order.objects.filter(created__gte=midnight)
    yesterday = Order.objects.filter(
        created__gte=midnight - dt.timedelta(days=1), created__lt=midnight
    )
    assert found[0] == [(float(today.count()), {})]
    assert found[0] == [(2.0, {})]
    total = float(today.aggregate(s=Sum("total"))["s"])
    assert found[1] == [(pytest.approx(total), {})]
    assert found[2] == [(float(yesterday.count()), {})]
    # A DateField compares with the local date: 2026-03-11 in Berlin.
    assert found[3] == [
        (float(Order.objects.filter(shipped_on=dt.date(2026, 3, 11)).count()), {})
    ]
    assert found[3] == [(1.0, {})]
    assert found[4] == [
        (float(Order.objects.filter(shipped_on__lt=dt.date(2026, 3, 10)).count()), {})
    ]


def test_compute_rows__a_window_moves_with_the_clock_and_keeps_its_sql(
    shop, clock, monkeypatch
):
    builds = []
    build_plan = rowquery.plan.build_plan
    monkeypatch.setattr(
        rowquery.plan,
        "build_plan",
        lambda *a, **k: builds.append(1) or build_plan(*a, **k),
    )
    definition = row_based(filters={"created__gte": "now-1h"})
    since = NOW - dt.timedelta(hours=1)
    assert compute_rows([definition]) == [
        [(float(Order.objects.filter(created__gte=since).count()), {})]
    ]
    assert compute_rows([definition]) == [[(3.0, {})]]
    later = NOW + dt.timedelta(minutes=45)
    clock(later)
    since = later - dt.timedelta(hours=1)
    assert compute_rows([definition]) == [
        [(float(Order.objects.filter(created__gte=since).count()), {})]
    ]
    assert compute_rows([definition]) == [[(1.0, {})]]
    # Compiled once; each evaluation only bound the window's start again.
    assert len(builds) == 1


def test_compute_rows__an_edit_builds_a_new_plan(shop):
    definition = row_based(filters={"status": "pending"})
    assert compute_rows([definition]) == [[(3.0, {})]]
    definition.filters = {"status": "paid"}
    assert compute_rows([definition]) == [[(2.0, {})]]


def test_compute_rows__a_bad_filter_value_is_an_error_in_its_place(shop):
    found = compute_rows(
        [
            row_based(aggregate="sum", field="total"),
            row_based(filters={"total": "abc"}),
            row_based(filters={"status": "paid"}),
        ]
    )
    assert found[0] == [(pytest.approx(178.85), {})]
    assert isinstance(found[1], EvaluationError)
    assert "abc" in str(found[1])
    assert found[2] == [(2.0, {})]


def test_compute_rows__a_malformed_window_is_an_error_in_its_place(shop):
    found = compute_rows([row_based(filters={"created__gte": "now-1x"}), row_based()])
    assert isinstance(found[0], EvaluationError)
    assert "'now-1x' is not a relative time" in str(found[0])
    assert found[1] == [(7.0, {})]


def test_compute_rows__a_shared_pass_over_its_bound_says_who_is_over(shop):
    """Two definitions within their bounds of 2 share a pass that reads 4 groups."""
    found = compute_rows(
        [
            row_based(filters={"status": "pending"}, group_by="customer", max_series=2),
            row_based(filters={"status": "paid"}, group_by="customer", max_series=2),
            row_based(group_by="customer", max_series=2),
        ]
    )
    assert len(found[0]) == 2
    assert len(found[1]) == 2
    assert isinstance(found[2], EvaluationError)
    assert "more than 2 groups" in str(found[2])


def test_compute_rows__a_join_to_many_rows_gets_a_pass_of_its_own(shop):
    """A filter across a reverse relation repeats customers; the others must not."""
    definitions = [
        row_based("shop.Customer"),
        row_based("shop.Customer", filters={"order__status": "pending"}),
        row_based("shop.Customer", "count_distinct", "order__status"),
    ]
    found = compute_rows(definitions)
    assert found[0] == [(float(Customer.objects.count()), {})]
    pending = Customer.objects.filter(order__status="pending")
    assert found[1] == [(float(pending.count()), {})]
    distinct = Customer.objects.aggregate(n=Count("order__status", distinct=True))
    assert found[2] == [(float(distinct["n"]), {})]


@pytest.mark.parametrize(
    ("model", "path", "never"),
    [
        (Order, "total", True),
        (Order, "created", True),
        (Order, "quantity", False),  # null=True
        (Order, "customer", False),  # a nullable relation
        (Order, "customer__name", False),  # through a nullable relation
        (Customer, "name", True),
        (Customer, "order", False),  # reverse: a customer may have no order
        (Order, "created__year", False),  # a transform: cannot tell
        (Order, "nothing", False),
    ],
)
def test_never_null__only_non_nullable_columns_and_relations(model, path, never):
    assert aggregates.never_null(model, path) is never


def test_compute_rows__a_pass_reads_whether_a_group_matched_only_where_needed(shop):
    """A filtered sum of a nullable field needs a column saying a group matched."""
    nullable = row_based(aggregate="sum", field="quantity", group_by="status")
    nullable.filters = {"status": "paid"}
    never = row_based(aggregate="sum", field="total", group_by="status")
    never.filters = {"status": "paid"}
    count = row_based(group_by="status")
    for definitions, columns in [([never, count], 2), ([nullable, count], 3)]:
        rowquery.clear_plans()
        (statement,) = rowquery.plan_for(definitions).statements
        (computed,) = statement.passes.values()
        assert computed.layout.width == columns
    # Both give the paid orders' group alone: one has a quantity of 2 and one
    # none, a total of 100.00.
    found = compute_rows([nullable, never, count])
    assert found[0] == [(2.0, {"status": "paid"})]
    assert found[1] == [(pytest.approx(100.0), {"status": "paid"})]
