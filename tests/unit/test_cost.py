"""Unit tests for metricdemo.cost's advice; the estimates are in tests/integration."""

from django.test import override_settings

from metricdemo import cost
from metricdemo.evaluation import Evaluation, Outcome
from metricdemo.models import MetricDefinition

ORDERS = MetricDefinition(name="shop.orders", source="row_count", model="shop.Order")
FAST = Evaluation("shop.orders", Outcome.SUCCESS, [(1.0, {})], seconds=0.01)
SMALL = cost.Estimate(rows=1000)
HINT = (
    "Set its refresh interval (for example 300 s) to compute it in the "
    "background, where no scrape waits for it."
)


def test_schedule_hint__none_for_a_fast_definition_that_reads_little():
    assert cost.schedule_hint(ORDERS, FAST, SMALL) == ""
    assert cost.schedule_hint(ORDERS, FAST, None) == ""
    assert cost.schedule_hint(ORDERS, None, None) == ""


def test_schedule_hint__for_a_large_read_however_fast_the_preview():
    large = cost.Estimate(rows=cost.LARGE_READ)
    assert cost.schedule_hint(ORDERS, FAST, large) == (
        f"The database expects to read 1,000,000 rows or more. {HINT}"
    )
    assert not cost.Estimate(rows=cost.LARGE_READ - 1).large
    assert not cost.Estimate(rows=None).large


def test_schedule_hint__for_an_evaluation_slower_than_slow_evaluation():
    with override_settings(METRICDEMO={"SLOW_EVALUATION": 0.5}):
        slow = Evaluation("shop.orders", Outcome.SUCCESS, seconds=0.6)
        timed_out = Evaluation("shop.orders", Outcome.TIMEOUT, seconds=0.1)
        expected = (
            "Its evaluation took longer than METRICDEMO['SLOW_EVALUATION'] "
            f"(0.5 s). {HINT}"
        )
        assert cost.schedule_hint(ORDERS, slow, SMALL) == expected
        assert cost.schedule_hint(ORDERS, timed_out, None) == expected
        assert cost.schedule_hint(ORDERS, FAST, SMALL) == ""


def test_schedule_hint__none_for_a_definition_refreshed_on_a_schedule():
    scheduled = MetricDefinition(
        name="shop.orders", source="row_count", model="shop.Order", refresh_interval=60
    )
    large = cost.Estimate(rows=cost.LARGE_READ * 10)
    slow = Evaluation("shop.orders", Outcome.TIMEOUT, seconds=9)
    assert cost.schedule_hint(scheduled, slow, large) == ""
