"""Histograms and durations computed in the database, checked against Python.

Every bucket, sum and count the app computes is compared with the same
values computed here: the rows read with plain `values_list()` calls, the
durations subtracted in Python, the buckets counted by Distribution.of().
"""

import datetime as dt
import math
from collections import defaultdict
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from metricdemo import rowquery
from metricdemo.distributions import MAX_BUCKETS, Distribution
from metricdemo.models import MetricDefinition
from metricdemo.observations import EvaluationError
from metricdemo.rowquery import compute_rows
from metricdemo.validators import group_by_keys
from tests.aggregate_rows import NOW, row_based
from tests.shop.models import Customer, Order

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")
TOTALS = [1, 10, 50, 100]
QUANTITIES = [1, 2, 5]
SECONDS = [0, 60, 300, 1800, 3600, 86400]
DURATIONS = ["paid - created", "now - created", "shipped_on - created"]


@pytest.fixture
def clock(monkeypatch):
    """Set the evaluation's clock; return a function to move it."""

    def set_clock(moment: dt.datetime) -> None:
        monkeypatch.setattr("django.utils.timezone.now", lambda: moment)

    set_clock(NOW)
    return set_clock


@pytest.fixture(autouse=True)
def _fresh_plans():
    # Plans are kept per process; each test starts and ends without them.
    rowquery.clear_plans()
    yield
    rowquery.clear_plans()


@pytest.fixture
def sales(db, clock):
    """Orders with values on bucket bounds, NULLs, negative and long durations."""
    de = Customer.objects.create(name="Anna", country="DE")
    fr = Customer.objects.create(name="Bea", country="FR")
    nowhere = Customer.objects.create(name="Cid", country=None)
    rows = [
        # status, customer, total, quantity, seconds before NOW, seconds to
        # payment, shipped on, handling seconds
        ("pending", de, "10.00", 1, 600, None, None, None),
        ("pending", de, "20.25", None, 3000, 60, None, 1800),
        ("pending", fr, "5.00", 3, 5400, None, None, None),
        ("paid", fr, "99.99", 2, 1200, 3600, dt.date(2026, 3, 10), 3600),
        ("paid", nowhere, "0.01", None, 108000, 90.5, dt.date(2026, 3, 11), 5400),
        ("paid", None, "100.00", None, 60, 86400, None, None),
        ("shipped", de, "42.00", 7, 9 * 86400, 300.25, dt.date(2026, 3, 1), 2700),
        ("shipped", None, "1.10", 5, 40 * 86400, 10**6, dt.date(2026, 1, 31), None),
        ("shipped", fr, "500.00", None, 2 * 86400, None, dt.date(2026, 3, 9), 0),
        ("pending", nowhere, "50.00", 2, 86399, 59.999999, None, 60),
    ]
    orders = []
    for status, customer, total, quantity, ago, to_pay, shipped, handling in rows:
        created = NOW - dt.timedelta(seconds=ago)
        orders.append(
            Order(
                status=status,
                customer=customer,
                total=Decimal(total),
                quantity=quantity,
                created=created,
                paid=None if to_pay is None else created + dt.timedelta(seconds=to_pay),
                shipped_on=shipped,
                handling=None if handling is None else dt.timedelta(seconds=handling),
            )
        )
    Order.objects.bulk_create(orders)
    return Order.objects.all()


def instant(value: dt.date) -> dt.datetime:
    """Return the instant a date or datetime stands for, in UTC.

    A date is its midnight in TIME_ZONE, and a naive datetime (USE_TZ=False)
    wall-clock time in TIME_ZONE.
    """
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.get_default_timezone())
    # In UTC: aware arithmetic within one zone would move the wall clock.
    return value.astimezone(dt.UTC)


def number(value) -> float | None:
    """Return a value of the ORM as the app measures it: durations in seconds."""
    if value is None:
        return None
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return float(value)


def measured(queryset, field: str, paths=()) -> list[tuple[tuple, float | None]]:
    """Return (group values, measured value) per row, read with the ORM."""
    later, _minus, earlier = (part.strip() for part in field.partition("-"))
    if not earlier:
        return [
            (row[:-1], number(row[-1])) for row in queryset.values_list(*paths, field)
        ]
    ends = [end for end in (later, earlier) if end != "now"]
    now = timezone.now()  # the patched clock
    found = []
    for row in queryset.values_list(*paths, *ends):
        values = {"now": now, **dict(zip(ends, row[len(paths) :], strict=True))}
        if values[later] is None or values[earlier] is None:
            found.append((row[: len(paths)], None))
            continue
        seconds = (instant(values[later]) - instant(values[earlier])).total_seconds()
        found.append((row[: len(paths)], seconds))
    return found


def label(value) -> str:
    return "" if value is None else str(value)


def grouped_values(queryset, field: str, group_by: str) -> dict[tuple, list[float]]:
    """Return {label values: the non-NULL values of the group} for every group."""
    paths = list(group_by_keys(group_by)) if group_by else []
    groups: dict[tuple, list[float]] = defaultdict(list)
    for group, value in measured(queryset, field, paths):
        values = groups[tuple(label(v) for v in group)]
        if value is not None:
            values.append(value)
    return groups


def comparable(distribution: Distribution) -> tuple:
    """Return a distribution with its sum compared approximately."""
    return (
        distribution.bounds,
        distribution.cumulative,
        distribution.count,
        pytest.approx(distribution.sum, rel=1e-12, abs=1e-6),
    )


def expected_histograms(queryset, field, bounds, group_by="") -> dict:
    """Return {label values: distribution} as Python counts them."""
    groups = grouped_values(queryset, field, group_by)
    if not group_by:
        return {(): comparable(Distribution.of(bounds, groups.get((), [])))}
    return {
        labels: comparable(Distribution.of(bounds, values))
        for labels, values in groups.items()
        if values  # a group without a value is no series
    }


def by_labels(observations, group_by="") -> dict:
    """Return {label values: value} of the app's observations, each group once."""
    assert not isinstance(observations, EvaluationError), observations
    keys = list(group_by_keys(group_by).values()) if group_by else []
    found = {}
    for value, labels in observations:
        assert sorted(labels) == sorted(keys)
        found[tuple(labels[key] for key in keys)] = value
    assert len(found) == len(observations), observations
    return found


def histograms(observations, group_by="") -> dict:
    found = by_labels(observations, group_by)
    assert all(isinstance(value, Distribution) for value in found.values())
    return {labels: comparable(value) for labels, value in found.items()}


def statements(queries: CaptureQueriesContext) -> list[str]:
    """Return the SQL of the statements that read rows.

    Left out: MariaDB's check of its time zone tables, once a process and zone.
    """
    return [
        query["sql"]
        for query in queries.captured_queries
        if not query["sql"].startswith("SELECT CONVERT_TZ(")
    ]


def histogram(field, bounds, filters=None, group_by="", **more):
    return row_based(
        kind="histogram",
        field=field,
        buckets=list(bounds),
        filters=filters,
        group_by=group_by,
        **more,
    )


# What the relative times of these tests mean at NOW, worked out by hand.
AT_NOW = {"now-1d": NOW - dt.timedelta(days=1)}


def expected(definition, queryset) -> dict:
    """Return {label values: value} of `definition` as Python computes it."""
    filters = {
        lookup: AT_NOW.get(value, value) if isinstance(value, str) else value
        for lookup, value in definition.filters.items()
    }
    rows = queryset.filter(**filters)
    field, group_by = definition.field, definition.group_by
    if definition.kind == "histogram":
        return expected_histograms(rows, field, definition.buckets, group_by)
    if definition.aggregate == "count":
        assert not group_by
        return {(): float(rows.count())}
    return expected_aggregates(rows, definition.aggregate, field, group_by)


def observed(definition, observations) -> dict:
    """Return {label values: value} of the app's observations of `definition`."""
    if definition.kind == "histogram":
        return histograms(observations, definition.group_by)
    return by_labels(observations, definition.group_by)


def expected_aggregates(queryset, aggregate, field, group_by="") -> dict:
    """Return {label values: value} as Python computes the aggregate."""
    found = {}
    for labels, values in grouped_values(queryset, field, group_by).items():
        if aggregate == "sum":
            found[labels] = math.fsum(values)  # 0 for a group of NULLs
        elif values:
            function = {"min": min, "max": max}.get(aggregate)
            found[labels] = (
                math.fsum(values) / len(values)
                if function is None
                else function(values)
            )
    if not group_by and aggregate == "sum":
        found.setdefault((), 0.0)
    return {
        labels: pytest.approx(value, rel=1e-12, abs=1e-6)
        for labels, value in found.items()
    }


# --- Histograms of numbers ---------------------------------------------------

NUMBER_CASES = [
    # field, bounds, filters, group by
    ("total", TOTALS, {}, ""),
    ("quantity", QUANTITIES, {}, ""),
    ("total", TOTALS, {"status__in": ["paid", "shipped"]}, ""),
    ("total", TOTALS, {"created__gte": "now-1d"}, ""),
    ("quantity", QUANTITIES, {"quantity__isnull": True}, ""),
    ("total", TOTALS, {}, "status"),
    ("quantity", QUANTITIES, {}, "status"),
    ("total", TOTALS, {}, "status, customer__country"),
    ("quantity", QUANTITIES, {}, "status, customer__country"),
    ("total", TOTALS, {"created__gte": "now-1d"}, "status"),
    (
        "quantity",
        QUANTITIES,
        {"created__gte": "now-1d", "total__lte": 50},
        "status, customer__country",
    ),
    # Bounds between and below the values, fractional and negative.
    ("total", [-1, 0.01, 20.25, 99.99], {}, "customer__country"),
]


@pytest.mark.parametrize(("field", "bounds", "filters", "group_by"), NUMBER_CASES)
def test_histogram__of_a_number_matches_python(sales, field, bounds, filters, group_by):
    definition = histogram(field, bounds, filters, group_by)
    (got,) = compute_rows([definition])
    assert observed(definition, got) == expected(definition, sales)


def test_histogram__a_value_on_a_bound_counts_in_that_bucket(sales):
    # 10.00, 50.00 and 100.00 are bounds; the quantities 1, 2 and 5 too.
    (totals, quantities) = compute_rows(
        [histogram("total", [10, 50, 100]), histogram("quantity", [1, 2, 5])]
    )
    ((value, _labels),) = totals
    assert value.cumulative == (4, 7, 9)  # 0.01 1.10 5 10 | 20.25 42 50 | 99.99 100
    assert value.count == 10
    ((value, _labels),) = quantities
    assert value.cumulative == (1, 3, 5)  # 1 | 2 2 | 3 5 (and 7 above)
    assert value.count == 6


def test_histogram__a_group_without_values_is_no_series(sales):
    # The paid orders of no country have no quantity; the shipped one of FR neither.
    (got,) = compute_rows(
        [histogram("quantity", QUANTITIES, group_by="status, customer__country")]
    )
    groups = by_labels(got, "status, customer__country")
    assert ("paid", "") not in groups
    assert ("shipped", "FR") not in groups
    assert ("paid", "FR") in groups


@pytest.mark.parametrize(
    "filters", [{"status": "refunded"}, {"status__in": []}, {"quantity__isnull": True}]
)
def test_histogram__of_no_values_is_every_bucket_zero_ungrouped(sales, filters):
    (got,) = compute_rows([histogram("quantity", QUANTITIES, filters)])
    assert got == [(Distribution(tuple(map(float, QUANTITIES)), (0, 0, 0), 0, 0.0), {})]
    (got,) = compute_rows([histogram("quantity", QUANTITIES, filters, "status")])
    assert got == []


def test_histogram__of_an_empty_table(db, clock):
    found = compute_rows(
        [
            histogram("total", TOTALS),
            histogram("now - created", SECONDS),
            histogram("total", TOTALS, group_by="status"),
        ]
    )
    assert found == [
        [(Distribution.empty(tuple(map(float, TOTALS))), {})],
        [(Distribution.empty(tuple(map(float, SECONDS))), {})],
        [],
    ]


# --- Histograms of durations ------------------------------------------------

DURATION_CASES = [
    # field, filters, group by
    ("handling", {}, ""),
    ("handling", {}, "status"),
    ("paid - created", {}, ""),
    ("paid - created", {"status__in": ["paid", "shipped"]}, "status"),
    ("now - created", {}, ""),
    ("now - created", {}, "status, customer__country"),
    ("shipped_on - created", {}, ""),
    ("shipped_on - created", {}, "customer__country"),
    ("now - shipped_on", {}, ""),
    # A time left: negative once it passed.
    ("shipped_on - now", {}, "status"),
    ("paid - shipped_on", {}, "status"),
]


@pytest.mark.parametrize(("field", "filters", "group_by"), DURATION_CASES)
def test_histogram__of_a_duration_matches_python(sales, field, filters, group_by):
    definition = histogram(field, SECONDS, filters, group_by)
    (got,) = compute_rows([definition])
    assert observed(definition, got) == expected(definition, sales)


def test_histogram__of_a_duration_across_a_relation(sales):
    # From each customer, the age of each of their orders (a join to many rows).
    customers = Customer.objects.all()
    field = "now - order__created"
    want = expected_histograms(customers, field, SECONDS, "country")
    (got,) = compute_rows(
        [histogram(field, SECONDS, group_by="country", model="shop.Customer")]
    )
    assert histograms(got, "country") == want
    # Each order counted once: the customers' orders, not their rows.
    with_customer = Order.objects.filter(customer__isnull=False).count()
    assert sum(value.count for value, _labels in got) == with_customer


RELATED_CASES = [
    # field, filters, group by
    ("now - order__created", {"order__status": "paid"}, "country"),
    ("now - order__created", {"order__status": "paid"}, ""),
    ("order__paid - order__created", {}, "country"),
    ("order__paid - order__created", {"order__total__lt": 100}, "country"),
    ("order__shipped_on - order__created", {"order__status": "shipped"}, "country"),
    # Grouped along the same relation: each order's status.
    ("now - order__created", {"order__total__gte": 10}, "order__status"),
]


@pytest.mark.parametrize("aggregate", ["histogram", "sum", "avg", "min", "max"])
@pytest.mark.parametrize(("field", "filters", "group_by"), RELATED_CASES)
def test_duration__across_a_relation_reads_the_rows_its_filters_chose(
    sales, aggregate, field, filters, group_by
):
    # As the ORM does in one filter(): the orders filtered are those measured,
    # and each once.
    if aggregate == "histogram":
        definition = histogram(field, SECONDS, filters, group_by, model="shop.Customer")
    else:
        definition = row_based(
            model="shop.Customer",
            aggregate=aggregate,
            field=field,
            filters=filters,
            group_by=group_by,
        )
    (got,) = compute_rows([definition])
    assert observed(definition, got) == expected(definition, Customer.objects.all())


def test_duration__of_users_between_joining_and_the_last_login(db, clock):
    joined = NOW - dt.timedelta(days=30)
    for name, login in [("a", 0), ("b", 59), ("c", 86400.5), ("d", None)]:
        User.objects.create(
            username=name,
            date_joined=joined,
            last_login=None if login is None else joined + dt.timedelta(seconds=login),
        )
    field = "last_login - date_joined"
    found = compute_rows(
        [
            histogram(field, SECONDS, model="auth.User"),
            row_based(model="auth.User", aggregate="avg", field=field),
        ]
    )
    assert found == [
        [(Distribution.of(SECONDS, [0, 59, 86400.5]), {})],
        [(pytest.approx((59 + 86400.5) / 3), {})],
    ]
    assert histograms(found[0]) == expected_histograms(
        User.objects.all(), field, SECONDS
    )


def test_histogram__now_is_the_clock_of_each_evaluation(sales, clock):
    definition = histogram("now - created", SECONDS)
    (before,) = compute_rows([definition])
    clock(NOW + dt.timedelta(hours=1))
    with CaptureQueriesContext(connection) as queries:
        (after,) = compute_rows([definition])
    assert len(statements(queries)) == 1
    assert histograms(after) == expected_histograms(sales, "now - created", SECONDS)
    assert after[0][0].sum == pytest.approx(before[0][0].sum + 3600 * sales.count())


# --- Aggregates of durations ---------------------------------------------------


@pytest.mark.parametrize("aggregate", ["sum", "avg", "min", "max"])
@pytest.mark.parametrize("field", [*DURATIONS, "now - shipped_on", "handling"])
@pytest.mark.parametrize("group_by", ["", "status"])
def test_aggregate__of_a_duration_matches_python(sales, aggregate, field, group_by):
    definition = row_based(aggregate=aggregate, field=field, group_by=group_by)
    (got,) = compute_rows([definition])
    assert observed(definition, got) == expected(definition, sales)


def test_aggregate__of_a_duration_with_filters_over_no_values(sales):
    found = compute_rows(
        [
            row_based(aggregate=aggregate, field="paid - created", filters=filters)
            for aggregate in ("sum", "avg", "min", "max")
            for filters in ({"status": "refunded"}, {"paid__isnull": True})
        ]
    )
    # The sum of no values is 0; there is no average, minimum or maximum.
    assert found == [[(0.0, {})], [(0.0, {})], [], [], [], [], [], []]


# --- One pass ------------------------------------------------------------------


def test_histograms_and_aggregates_share_one_statement(sales):
    """Many histograms and aggregates: one statement, whatever the buckets."""
    many = [float(n) for n in range(MAX_BUCKETS)]
    paid = {"status": "paid"}
    day = {"created__gte": "now-1d"}
    definitions = [
        histogram("total", TOTALS),
        histogram("total", many),
        histogram("quantity", QUANTITIES, paid),
        histogram("paid - created", SECONDS),
        histogram("now - created", SECONDS, day),
        histogram("shipped_on - created", SECONDS),
        histogram("handling", SECONDS),
        row_based(),
        row_based(aggregate="sum", field="total"),
        row_based(aggregate="avg", field="paid - created"),
        row_based(aggregate="max", field="now - created", filters=paid),
        histogram("total", TOTALS, group_by="status"),
        histogram("paid - created", SECONDS, day, "status"),
        histogram("handling", SECONDS, paid, "status"),
        row_based(aggregate="sum", field="paid - created", group_by="status"),
        histogram("quantity", QUANTITIES, group_by="status, customer__country"),
    ]
    with CaptureQueriesContext(connection) as queries:
        found = compute_rows(definitions)
    assert len(statements(queries)) == 1, statements(queries)
    for definition, got in zip(definitions, found, strict=True):
        assert observed(definition, got) == expected(definition, sales), (
            definition.field,
            definition.filters,
            definition.group_by,
        )
    # Kept and run again: still one statement, the same values.
    with CaptureQueriesContext(connection) as queries:
        again = compute_rows(definitions)
    assert len(statements(queries)) == 1
    assert again == found


def test_histograms_of_many_buckets_split_into_passes_of_one_statement(sales):
    """Histograms wider than a pass's columns: more passes, still one statement."""
    many = [float(n) for n in range(-10, MAX_BUCKETS - 10)]
    fields = ["total", "quantity", "handling", *DURATIONS] * 2
    definitions = [histogram(field, many) for field in fields]
    definitions.append(row_based(aggregate="sum", field="total"))
    with CaptureQueriesContext(connection) as queries:
        found = compute_rows(definitions)
    assert len(statements(queries)) == 1
    assert statements(queries)[0].count("UNION ALL") >= 1
    for field, got in zip(fields, found, strict=False):
        assert histograms(got) == expected_histograms(sales, field, many), field
    total = math.fsum(float(t) for t in sales.values_list("total", flat=True))
    assert found[-1] == [(pytest.approx(total), {})]


@pytest.mark.parametrize("shared", [False, True])
def test_histogram__more_groups_than_max_series_is_an_error_in_its_place(sales, shared):
    over = histogram("total", TOTALS, group_by="status", max_series=2)
    fits = histogram("total", TOTALS, group_by="status", max_series=3)
    definitions = [over, fits, row_based(group_by="status")] if shared else [over]
    found = compute_rows(definitions)
    assert isinstance(found[0], EvaluationError)
    assert "more than 2 groups" in str(found[0])
    if shared:
        want = expected_histograms(sales, "total", TOTALS, "status")
        assert histograms(found[1], "status") == want
        assert len(found[2]) == 3


AMOUNTS = st.integers(min_value=-(10**6), max_value=10**6)  # cents
MICROSECONDS = st.integers(min_value=-(10**11), max_value=10**11)
ROWS = st.lists(st.tuples(AMOUNTS, st.none() | MICROSECONDS), max_size=12)


def some_bounds(draw, values: list[float]) -> list[float]:
    """Draw increasing bounds: some of the values themselves, some in between."""
    exact = st.sampled_from(values) if values else st.nothing()
    bound = exact | st.floats(-2e5, 2e5, allow_nan=False)
    return sorted(set(draw(st.lists(bound, min_size=1, max_size=8))))


@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
    ],
)
@given(ROWS, st.data())
def test_histogram__of_drawn_values_matches_python(db, clock, rows, data):
    Order.objects.all().delete()
    Order.objects.bulk_create(
        Order(
            total=Decimal(cents) / 100,
            created=NOW,
            paid=None if to_pay is None else NOW + dt.timedelta(microseconds=to_pay),
        )
        for cents, to_pay in rows
    )
    totals = [cents / 100 for cents, _to_pay in rows]
    waits = [to_pay / 10**6 for _cents, to_pay in rows if to_pay is not None]
    total_bounds = some_bounds(data.draw, totals)
    wait_bounds = some_bounds(data.draw, waits)
    found = compute_rows(
        [histogram("total", total_bounds), histogram("paid - created", wait_bounds)]
    )
    orders = Order.objects.all()
    assert histograms(found[0]) == expected_histograms(orders, "total", total_bounds)
    assert histograms(found[1]) == {(): comparable(Distribution.of(wait_bounds, waits))}
    assert histograms(found[1]) == expected_histograms(
        orders, "paid - created", wait_bounds
    )


# --- Time zones ----------------------------------------------------------------


def berlin(year, month, day, hour=0, minute=0) -> dt.datetime:
    """Return a wall-clock time in Berlin as an instant."""
    return dt.datetime(year, month, day, hour, minute, tzinfo=BERLIN)


# The rows of the time zone tests, one quantity each: created, paid, shipped on.
ACROSS = {
    # Midnight: 23:30 to 00:30 is an hour; midnight of the 11th is 30 minutes on.
    1: (berlin(2026, 3, 10, 23, 30), berlin(2026, 3, 11, 0, 30), dt.date(2026, 3, 11)),
    # The clocks go forward at 02:00: 01:30 to 03:30 is one hour, and
    # midnight of the 30th is 21.5 hours after 01:30 of the 29th.
    2: (berlin(2026, 3, 29, 1, 30), berlin(2026, 3, 29, 3, 30), dt.date(2026, 3, 30)),
    # Two midnights with the change between them are 47 hours apart.
    3: (berlin(2026, 3, 28), None, dt.date(2026, 3, 30)),
    # The clocks go back at 03:00: 01:30 to 03:30 is three hours, and
    # midnight of the 26th is 23.5 hours after 01:30 of the 25th.
    4: (
        berlin(2026, 10, 25, 1, 30),
        berlin(2026, 10, 25, 3, 30),
        dt.date(2026, 10, 26),
    ),
    # The day the clocks go forward starts at 23:00 UTC, 11 hours before its
    # noon (10:00 UTC).
    5: (berlin(2026, 3, 29, 12), None, dt.date(2026, 3, 29)),
}
# The clock of these tests: noon UTC (14:00 in Berlin) of the spring change.
SPRING_NOON = dt.datetime(2026, 3, 29, 12, tzinfo=dt.UTC)
# What each duration is, by quantity, in seconds.
ELAPSED = {
    "paid - created": {1: 3600, 2: 3600, 4: 10800},
    "shipped_on - created": {1: 1800, 2: 77400, 3: 169200, 4: 84600, 5: -39600},
    "now - shipped_on": {
        1: 18 * 86400 + 13 * 3600,
        2: -10 * 3600,
        3: -10 * 3600,
        4: -(210 * 86400 + 11 * 3600),
        5: 13 * 3600,
    },
    "now - created": {
        1: 18 * 86400 + 13.5 * 3600,
        2: 11.5 * 3600,
        3: 37 * 3600,
        4: -(209 * 86400 + 11.5 * 3600),
        5: 2 * 3600,
    },
}


@pytest.fixture
def in_berlin(settings, clock):
    """TIME_ZONE Europe/Berlin and the clock at SPRING_NOON."""
    settings.TIME_ZONE = "Europe/Berlin"
    clock(SPRING_NOON)
    return settings


def make_across(naive: bool) -> None:
    for quantity, (created, paid, shipped) in ACROSS.items():
        if naive:
            # Without time zone support the database holds wall-clock times.
            created = created.replace(tzinfo=None)
            paid = paid and paid.replace(tzinfo=None)
        Order.objects.create(
            quantity=quantity, created=created, paid=paid, shipped_on=shipped
        )


def per_row(field: str) -> list[EvaluationError | dict]:
    """Return each row's duration (grouped by quantity) as the app computes it."""
    (got,) = compute_rows(
        [row_based(aggregate="max", field=field, group_by="quantity")]
    )
    if isinstance(got, EvaluationError):
        return got
    return {int(labels["quantity"]): value for value, labels in got}


@pytest.fixture(params=[True, False], ids=["USE_TZ", "wall-clock"])
def across(request, in_berlin, clock):
    """The rows of ACROSS, stored as instants or (USE_TZ=False) wall-clock times."""
    use_tz = request.param
    in_berlin.USE_TZ = use_tz
    if not use_tz:
        # Django's clock gives naive local time then.
        clock(SPRING_NOON.astimezone(BERLIN).replace(tzinfo=None))
    make_across(naive=not use_tz)
    return Order.objects.all()


@pytest.mark.parametrize("field", list(ELAPSED))
def test_time_zone__durations_are_elapsed_seconds(across, field):
    want = ELAPSED[field]
    assert per_row(field) == want
    python = expected_aggregates(across, "max", field, "quantity")
    assert {int(labels[0]): value for labels, value in python.items()} == want


def test_time_zone__histograms_count_elapsed_seconds(across):
    # Each value is a bound: an hour off and it would count in another bucket.
    fields = list(ELAPSED)
    bounds = {field: sorted(set(ELAPSED[field].values())) for field in fields}
    start_of_day = dt.datetime(2026, 3, 29)  # now/d, in Berlin
    if django_settings.USE_TZ:
        start_of_day = start_of_day.replace(tzinfo=BERLIN)
    definitions = [
        *(histogram(field, bounds[field]) for field in fields),
        histogram("now - created", SECONDS, {"created__gte": "now/d"}),
        *(
            row_based(aggregate=a, field=f)
            for a in ("sum", "min", "max")
            for f in fields
        ),
    ]
    with CaptureQueriesContext(connection) as queries:
        found = compute_rows(definitions)
    assert len(statements(queries)) == 1
    for field, got in zip(fields, found, strict=False):
        values = list(ELAPSED[field].values())
        assert histograms(got) == {
            (): comparable(Distribution.of(bounds[field], values))
        }
        assert histograms(got) == expected_histograms(across, field, bounds[field])
    # Created since midnight in Berlin: 01:30, 12:00 and in October.
    assert histograms(found[len(fields)]) == expected_histograms(
        across.filter(created__gte=start_of_day), "now - created", SECONDS
    )
    assert found[len(fields)][0][0].count == 3
    aggregates = iter(found[len(fields) + 1 :])
    for function in (math.fsum, min, max):
        for field in fields:
            want = function(ELAPSED[field].values())
            assert next(aggregates) == [(pytest.approx(want, abs=1e-6), {})], field


def test_time_zone__windows_and_now_move_with_the_clock_in_one_kept_statement(
    sales, in_berlin, clock
):
    filters = {"shipped_on__gte": "now-30d", "created__lt": "now-1h"}
    definitions = [
        histogram("now - shipped_on", SECONDS + [30 * 86400], filters),
        row_based(aggregate="min", field="now - created", filters=filters),
    ]
    compute_rows(definitions)  # planned once, kept
    later = NOW + dt.timedelta(days=1, minutes=15)
    for moment, matching in ((NOW, 3), (later, 4)):
        clock(moment)
        with CaptureQueriesContext(connection) as queries:
            found = compute_rows(definitions)
        assert len(statements(queries)) == 1
        # The windows by hand: dates in Berlin, where NOW is already the 11th.
        day = moment.astimezone(BERLIN).date() - dt.timedelta(days=30)
        rows = sales.filter(
            shipped_on__gte=day, created__lt=moment - dt.timedelta(hours=1)
        )
        assert rows.count() == matching
        assert histograms(found[0]) == expected_histograms(
            rows, "now - shipped_on", SECONDS + [30 * 86400]
        )
        assert by_labels(found[1]) == expected_aggregates(rows, "min", "now - created")


def mysql_time_zones_loaded() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT CONVERT_TZ('2000-01-01', 'Europe/Berlin', '+00:00')")
        return cursor.fetchone()[0] is not None


def test_time_zone__mariadb_without_its_time_zone_tables_says_how_to_load_them(
    in_berlin, monkeypatch
):
    from metricdemo.rowquery import sql

    make_across(naive=False)
    batch = [
        row_based(aggregate="max", field="shipped_on - created"),
        histogram("now - shipped_on", SECONDS),
        # Two instants need no time zone.
        row_based(aggregate="max", field="paid - created"),
    ]
    found = compute_rows(batch)
    if connection.vendor == "mysql" and not mysql_time_zones_loaded():
        assert all(isinstance(error, EvaluationError) for error in found[:2])
    else:
        # The other backends need no tables; MariaDB here has them loaded.
        assert not any(isinstance(result, EvaluationError) for result in found)
    if connection.vendor != "mysql":
        return
    # As a server without the tables answers CONVERT_TZ: NULL.
    monkeypatch.setitem(sql._zones_checked, (connection.alias, "Europe/Berlin"), False)
    rowquery.clear_plans()
    found = compute_rows(batch)
    for error in found[:2]:
        assert isinstance(error, EvaluationError)
        assert "time zone tables are not loaded" in str(error)
        assert "mariadb-tzinfo-to-sql /usr/share/zoneinfo" in str(error)
    assert found[2] == [(10800.0, {})]


# --- Validation ------------------------------------------------------------------


def refused(**fields) -> dict[str, list[str]]:
    """Return the field-keyed messages full_clean() gives these fields."""
    fields.setdefault("source", "row_count")
    definition = MetricDefinition(name="x", **fields)
    with pytest.raises(ValidationError) as info:
        definition.full_clean()
    return info.value.message_dict


def histogram_of(field="total", **more) -> dict:
    return {"kind": "histogram", "model": "shop.Order", "field": field, **more}


BUCKETS_REFUSED = [
    # buckets, key words of the message
    ([10, 5], ["must increase", "5 follows 10", "sort them"]),
    ([10, 10], ["must increase", "give each once"]),
    (["1", 2], ["'1' is not a finite number", "give numbers only"]),
    ([True, 2], ["True is not a finite number", "give numbers only"]),
    ([1, None], ["None is not a finite number"]),
    ([1, float("inf")], ["inf is not a finite number", "+Inf is added by itself"]),
    ([float("nan")], ["nan is not a finite number"]),
    # JSON holds integers of any size; this one is beyond a float.
    ([1, 10**400], ["is not a finite number", "give numbers only"]),
    ([], ["needs its buckets", "JSON list of increasing upper bounds", "preset"]),
    ("[1, 2]", ["needs its buckets", "JSON list"]),
    ({"le": 1}, ["needs its buckets", "JSON list"]),
    (
        list(range(MAX_BUCKETS + 1)),
        [f"{MAX_BUCKETS + 1} buckets are too many", f"at most {MAX_BUCKETS} bounds"],
    ),
]


@pytest.mark.parametrize(("buckets", "texts"), BUCKETS_REFUSED)
def test_validation__buckets_that_are_no_bounds(buckets, texts):
    messages = refused(**histogram_of(buckets=buckets))
    assert list(messages) == ["buckets"], messages
    for text in texts:
        assert text in messages["buckets"][0]


def test_evaluation__buckets_that_are_no_bounds_are_an_error_in_their_place(sales):
    # Saved without validation: the other definitions are computed all the same.
    found = compute_rows(
        [
            histogram("total", [1, 10**400]),
            histogram("total", [2, 1]),
            histogram("total", TOTALS),
        ]
    )
    assert "is not a finite number" in str(found[0])
    assert "must increase" in str(found[1])
    assert histograms(found[2]) == expected_histograms(sales, "total", TOTALS)


REFUSED = [
    # fields, key, key words of the message
    (
        {"model": "shop.Order", "aggregate": "sum", "field": "total", "buckets": [1]},
        "buckets",
        ["Buckets are for the histogram kind", "a gauge", "clear them", "make it a"],
    ),
    (
        {"kind": "histogram", "source": "constant", "value": 1.0, "buckets": [1]},
        "kind",
        ["computed from rows of a model", "choose the source", "another kind"],
    ),
    (
        {"kind": "histogram", "source": "setting", "setting": "SESSION_COOKIE_AGE"},
        "kind",
        ["computed from rows of a model", "choose the source"],
    ),
    (
        histogram_of(aggregate="sum", buckets=[1]),
        "aggregate",
        ["takes no aggregate", "'sum'", "leave it at count", "another kind"],
    ),
    (
        histogram_of(aggregate="count_distinct", buckets=[1]),
        "aggregate",
        ["takes no aggregate", "leave it at count"],
    ),
    (
        histogram_of("total - created", buckets=[1]),
        "field",
        [
            "between two date or datetime fields",
            "'total' in 'total - created' is a DecimalField",
            "Date and datetime fields of shop.Order: created, paid, shipped_on.",
        ],
    ),
    (
        {"model": "shop.Order", "aggregate": "avg", "field": "created - quantity"},
        "field",
        ["'quantity' in 'created - quantity' is a IntegerField", "created, paid"],
    ),
    (
        {"model": "shop.Order", "aggregate": "min", "field": "paid - nope"},
        "field",
        ["'nope' in 'paid - nope' is not a field of shop.Order", "created, paid"],
    ),
    (
        {"model": "shop.Order", "aggregate": "count_distinct", "field": "now - paid"},
        "field",
        [
            "count_distinct cannot take a duration",
            "sum, avg, min, max or the histogram",
        ],
    ),
    (
        {"model": "shop.Order", "aggregate": "sum", "field": "created - created"},
        "field",
        ["subtracts a value from itself", "two different dates"],
    ),
    (
        {"model": "shop.Order", "aggregate": "sum", "field": "paid - "},
        "field",
        ["not a duration of the form `later - earlier`", "now - created_at"],
    ),
    (
        histogram_of("status", buckets=[1]),
        "field",
        [
            "histogram needs a numeric or duration field",
            "the time between two dates",
            "shop.Order.status is a CharField",
            "Fields of shop.Order that fit: handling, quantity, total.",
        ],
    ),
    (
        histogram_of("created", buckets=[1]),
        "field",
        ["is a DateTimeField", "the time between two dates such as paid_at"],
    ),
    (
        histogram_of("", buckets=[1]),
        "field",
        ["histogram needs a field", "for example total"],
    ),
    (
        {
            "kind": "histogram",
            "model": "sessions.Session",
            "field": "expire_date - now",
            "buckets": [1],
        },
        "model",
        ["may not read sessions.Session", "ROW_COUNT_EXCLUDED_MODELS"],
    ),
    (
        {"kind": "histogram", "model": "shop.Voucher", "field": "key", "buckets": [1]},
        "field",
        ["'key' of shop.Voucher, which is sensitive", "Use another field"],
    ),
    (
        {
            "kind": "histogram",
            "model": "shop.Customer",
            "field": "now - vouchers__key",
            "buckets": [1],
        },
        "field",
        ["'vouchers__key' touches 'key' of shop.Voucher", "sensitive"],
    ),
    (
        histogram_of(buckets=[1], group_by="le"),
        "group_by",
        ["buckets carry the label le", "group by a field whose label is not le"],
    ),
    (
        histogram_of(buckets=[1], group_by="status, customer__le"),
        "group_by",
        ["buckets carry the label le"],
    ),
    (
        histogram_of(buckets=[1], attributes={"le": "x"}),
        "attributes",
        ["buckets carry the label le", "rename the attribute le"],
    ),
]


@pytest.mark.parametrize(("fields", "key", "texts"), REFUSED)
def test_validation__names_the_problem_and_the_fix(fields, key, texts):
    messages = refused(**fields)
    assert key in messages, messages
    for text in texts:
        assert text in " ".join(messages[key]), messages[key]


ACCEPTED = [
    histogram_of(buckets=[10, 50, 100]),
    histogram_of("quantity", buckets=[-1, 0.5, 2]),
    histogram_of("handling", buckets=list(range(MAX_BUCKETS))),
    histogram_of(
        "paid - created", buckets=SECONDS, group_by="status, customer__country"
    ),
    histogram_of("now - created", buckets=SECONDS, filters={"created__gte": "now-1d"}),
    histogram_of("shipped_on - created", buckets=SECONDS),
    histogram_of("now - order__created", buckets=SECONDS, model="shop.Customer"),
    {
        "kind": "histogram",
        "model": "auth.User",
        "field": "last_login - date_joined",
        "buckets": SECONDS,
    },
    {"model": "auth.User", "aggregate": "avg", "field": "now - date_joined"},
    {"model": "shop.Order", "aggregate": "max", "field": "now - shipped_on"},
    # An attribute LE is no le: label names tell case.
    histogram_of(buckets=[1], attributes={"LE": "x"}),
]


@pytest.mark.parametrize("fields", ACCEPTED)
def test_validation__histograms_and_durations_that_work(fields):
    MetricDefinition(name="x", source="row_count", **fields).full_clean()


def test_validation__a_personal_or_sensitive_end_of_a_duration_is_refused(settings):
    allowed = {"kind": "histogram", "model": "auth.User", "buckets": SECONDS}
    MetricDefinition(
        name="x", source="row_count", field="last_login - date_joined", **allowed
    ).full_clean()
    settings.METRICDEMO = {
        **settings.METRICDEMO,
        "PERSONAL_FIELDS": ("date_joined",),
        "SENSITIVE_FIELDS": ("last_login",),
    }
    messages = refused(field="now - date_joined", **allowed)
    assert "identifies a person" in messages["field"][0]
    assert "auth.User.date_joined" in messages["field"][0]
    assert "measure other fields" in messages["field"][0]
    messages = refused(field="now - last_login", **allowed)
    assert "'last_login' of auth.User, which is sensitive" in messages["field"][0]
    messages = refused(
        model="auth.User", aggregate="max", field="last_login - date_joined"
    )
    assert "sensitive" in messages["field"][0]
    # A number of a personal field is refused as a histogram as for a sum.
    settings.METRICDEMO = {**settings.METRICDEMO, "PERSONAL_FIELDS": ("quantity",)}
    messages = refused(**histogram_of("quantity", buckets=[1]))
    assert "identifies a person" in messages["field"][0]
