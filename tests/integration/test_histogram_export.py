"""Histograms reach Prometheus and OTLP as real histograms: buckets, sum, count."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)

from metricdemo.distributions import Distribution
from tests.scraping import SCOPE_LABELS, scrape
from tests.shop.models import Order

# Evaluations run on worker threads, which see only committed rows.
pytestmark = pytest.mark.django_db(transaction=True)

BOUNDS = [10, 50, 100]
TOTALS = {"pending": [5, 10, 60], "paid": [20, 150], "shipped": []}


@pytest.fixture
def priced_orders(transactional_db):
    created = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
    for status, totals in TOTALS.items():
        for total in totals:
            Order.objects.create(status=status, total=Decimal(total), created=created)


def order_values(define, **more):
    """Define the histogram of order totals over BOUNDS, with `more` fields."""
    name = more.pop("name", "shop.order.value")
    fields = {"kind": "histogram", "source": "row_count", "model": "shop.Order"}
    fields = {**fields, "field": "total", "buckets": BOUNDS, **more}
    return define(name=name, **fields)


def buckets(families, family: str) -> dict[tuple, dict[str, float]]:
    """Return {labels without le: {le: count}} of a histogram family's buckets."""
    found: dict[tuple, dict[str, float]] = {}
    for sample in families[family].samples:
        if sample.name != family + "_bucket":
            continue
        labels = {k: v for k, v in sample.labels.items() if k not in SCOPE_LABELS}
        le = labels.pop("le")
        found.setdefault(tuple(sorted(labels.items())), {})[le] = sample.value
    return found


def sample(families, family: str, name: str, **labels) -> float:
    (found,) = [
        s.value
        for s in families[family].samples
        if s.name == name
        and {k: v for k, v in s.labels.items() if k not in SCOPE_LABELS} == labels
    ]
    return found


def expected_buckets(values) -> dict[str, float]:
    distribution = Distribution.of(BOUNDS, values)
    found = {
        f"{float(bound)}": float(count)
        for bound, count in zip(BOUNDS, distribution.cumulative, strict=True)
    }
    found["+Inf"] = float(distribution.count)
    return found


def test_a_grouped_histogram_is_a_histogram_family_per_group(
    define, priced_orders, client
):
    define(
        name="shop.order.value",
        description="Order totals.",
        kind="histogram",
        source="row_count",
        model="shop.Order",
        field="total",
        group_by="status",
        buckets=BOUNDS,
    )
    families = scrape(client)
    family = families["shop_order_value"]
    assert family.type == "histogram"
    assert family.documentation == "Order totals."
    found = buckets(families, "shop_order_value")
    # A group without rows (shipped) is no series.
    assert found == {
        (("status", status),): expected_buckets(values)
        for status, values in TOTALS.items()
        if values
    }
    for status, values in TOTALS.items():
        if values:
            assert sample(
                families, "shop_order_value", "shop_order_value_sum", status=status
            ) == float(sum(values))
            assert sample(
                families, "shop_order_value", "shop_order_value_count", status=status
            ) == float(len(values))


def test_an_ungrouped_histogram_over_no_rows_has_every_bucket_zero(define, client):
    define(
        name="shop.wait",
        kind="histogram",
        unit="s",
        source="row_count",
        model="shop.Order",
        field="now - created",
        buckets=BOUNDS,
    )
    families = scrape(client)
    assert buckets(families, "shop_wait_seconds") == {(): expected_buckets([])}
    assert sample(families, "shop_wait_seconds", "shop_wait_seconds_sum") == 0.0
    assert sample(families, "shop_wait_seconds", "shop_wait_seconds_count") == 0.0


def test_openmetrics_carries_the_created_time_of_a_histogram(
    define, priced_orders, client
):
    order_values(define)
    response = client.get(
        "/metrics", HTTP_ACCEPT="application/openmetrics-text;version=1.0.0"
    )
    text = response.content.decode()
    families = {f.name: f for f in openmetrics_families(text)}
    family = families["shop_order_value"]
    assert family.type == "histogram"
    names = {s.name for s in family.samples}
    assert {
        "shop_order_value_bucket",
        "shop_order_value_sum",
        "shop_order_value_count",
        "shop_order_value_created",
    } <= names
    values = [v for vs in TOTALS.values() for v in vs]
    assert buckets({"shop_order_value": family}, "shop_order_value") == {
        (): expected_buckets(values)
    }


def test_a_push_sends_a_histogram_with_explicit_bounds(define, priced_orders, client):
    from metricdemo import otlp
    from metricdemo.telemetry import get_telemetry
    from tests.integration.test_otlp import Receiver

    order_values(define, group_by="status")
    with Receiver() as receiver:
        pusher = otlp.OTLPPusher(otlp.metrics_url(receiver.url), 3600)
        pusher.start(source=get_telemetry().collector.collect_for_push)
        try:
            assert pusher.push()
        finally:
            pusher.shutdown()
    found = {
        attributes["status"]: point
        for name, attributes, point in receiver.histograms
        if name == "shop.order.value"
    }
    assert set(found) == {"pending", "paid"}
    for status, point in found.items():
        expected = Distribution.of(BOUNDS, TOTALS[status])
        assert list(point.explicit_bounds) == [float(b) for b in BOUNDS]
        assert list(point.bucket_counts) == list(expected.bucket_counts())
        assert point.count == expected.count
        assert point.sum == expected.sum
        assert point.min == min(TOTALS[status])
        assert point.max == max(TOTALS[status])


def test_a_histogram_counts_against_max_series_per_group_not_per_bucket(
    define, priced_orders, client
):
    # Two groups of four buckets each (three bounds and +Inf) fit max_series 2.
    fields = {
        "kind": "histogram",
        "source": "row_count",
        "model": "shop.Order",
        "field": "total",
        "group_by": "status",
        "buckets": BOUNDS,
    }
    define(name="fits", max_series=2, **fields)
    define(name="over", max_series=1, **fields)
    families = scrape(client)
    assert set(buckets(families, "fits")) == {
        (("status", "paid"),),
        (("status", "pending"),),
    }
    assert "over" not in families
    errors = {
        s.labels["definition"]: s.value
        for s in families["metricdemo_evaluations"].samples
        if s.name == "metricdemo_evaluations_total" and s.labels["outcome"] == "error"
    }
    assert errors == {"over": 1.0}


def test_a_scheduled_histogram_is_stored_and_served_as_a_histogram(
    define, priced_orders, client
):
    from metricdemo.models import ScheduledValue
    from metricdemo.scheduler import Refresher

    definition = order_values(define, refresh_interval=60)
    refresher = Refresher()
    try:
        assert refresher.tick() == ["shop.order.value"]
        refresher.wait_idle(30)
    finally:
        refresher.stop()
    row = ScheduledValue.objects.get(definition_id=definition.pk)
    assert '"cumulative"' in row.observations
    Order.objects.all().delete()  # served from the stored value, not the rows
    values = [v for vs in TOTALS.values() for v in vs]
    families = scrape(client)
    assert buckets(families, "shop_order_value") == {(): expected_buckets(values)}
    assert sample(families, "shop_order_value", "shop_order_value_sum") == sum(values)


@pytest.mark.parametrize(
    "stored",
    [
        "[[3.0, {}]]",  # a number where a histogram is kept
        '[[{"bounds": [10], "cumulative": [5], "count": 2, "sum": 1}, {}]]',
        '[[{"bounds": [10, 5], "cumulative": [0, 0], "count": 0, "sum": 0}, {}]]',
        '[[{"bounds": [10], "cumulative": [1]}, {}]]',
    ],
)
def test_a_bad_stored_histogram_costs_only_its_definition(
    define, priced_orders, client, stored
):
    from django.utils import timezone

    from metricdemo.models import ScheduledValue
    from metricdemo.values.fingerprint import fingerprint
    from metricdemo.values.scheduled import NOT_IN_FINGERPRINT

    histogram = order_values(define, refresh_interval=60)
    define(name="other", source="constant", value=4)
    ScheduledValue.objects.create(
        definition_id=histogram.pk,
        fingerprint=fingerprint(histogram, leave_out=NOT_IN_FINGERPRINT),
        observations=stored,
        computed_at=timezone.now(),
        attempted_at=timezone.now(),
        outcome="success",
    )
    families = scrape(client)
    assert "shop_order_value" not in families
    assert families["other"].samples[0].value == 4.0
    errors = {
        s.labels["definition"]
        for s in families["metricdemo_evaluations"].samples
        if s.name == "metricdemo_evaluations_total" and s.labels["outcome"] == "error"
    }
    assert errors == {"shop.order.value"}


def test_a_cached_histogram_is_served_from_the_cache(define, priced_orders, client):
    order_values(define, cache_seconds=300)
    values = [v for vs in TOTALS.values() for v in vs]
    assert buckets(scrape(client), "shop_order_value") == {(): expected_buckets(values)}
    Order.objects.all().delete()
    assert buckets(scrape(client), "shop_order_value") == {(): expected_buckets(values)}


@pytest.mark.parametrize("suffix", ["bucket", "count", "sum", "created"])
def test_a_gauge_may_not_take_a_name_a_histogram_writes(define, suffix):
    from django.core.exceptions import ValidationError

    from metricdemo.models import MetricDefinition

    order_values(define)
    clashing = MetricDefinition(
        name=f"shop.order.value.{suffix}", source="constant", value=1
    )
    with pytest.raises(ValidationError) as info:
        clashing.full_clean()
    assert "shop_order_value" in " ".join(info.value.message_dict["name"])


@pytest.mark.parametrize("unit", ["h", "ms", "min", "d"])
def test_a_duration_is_in_seconds_so_another_time_unit_is_refused(unit, db):
    from django.core.exceptions import ValidationError

    from metricdemo.models import MetricDefinition

    for fields in (
        {"kind": "histogram", "field": "paid - created", "buckets": BOUNDS},
        {"aggregate": "avg", "field": "now - created"},
        {"aggregate": "max", "field": "handling"},
    ):
        definition = MetricDefinition(
            name="x", unit=unit, source="row_count", model="shop.Order", **fields
        )
        with pytest.raises(ValidationError) as info:
            definition.full_clean()
        assert "set the unit to s" in " ".join(info.value.message_dict["unit"])
