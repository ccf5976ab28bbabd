"""The overview's parts: its filters, and what a card says."""

from __future__ import annotations

import time

import pytest

from metricdemo import presentation
from metricdemo.admin_overview import Card, Looked, OverviewFilters
from metricdemo.evaluation import Evaluation, Outcome
from metricdemo.models import MetricDefinition
from metricdemo.presentation import State


def test_filters__defaults_and_values_that_are_not_choices():
    assert OverviewFilters({}).chosen() == {
        "state": "",
        "kind": "",
        "source": "",
        "sort": "name",
    }
    form = OverviewFilters({"state": "asleep", "kind": "counter", "sort": "cost"})
    assert form.chosen() == {
        "state": "",
        "kind": "counter",
        "source": "",
        "sort": "cost",
    }
    assert list(form.errors) == ["state"]


def card(looked: Looked, **fields) -> Card:
    definition = MetricDefinition(name="shop.orders", kind="gauge", **fields)
    return Card(definition, looked, "/change/")


def test_card__evaluated_now_with_its_cost():
    shown = presentation.shown(
        MetricDefinition(name="x"), Evaluation("x", Outcome.SUCCESS, [(1, {})])
    )
    assert card(Looked(shown, 0.0034, time.time(), now=True)).when == (
        "evaluated now in 3.4 ms"
    )


def test_card__served_from_before_with_its_age():
    shown = presentation.Shown(State.OK)
    looked = Looked(shown, 0.25, time.time() - 125)
    assert card(looked).when == "computed 2 min ago in 250 ms"
    assert card(Looked(shown, None, time.time() - 7200)).when == "computed 2 h ago"
    assert card(Looked(shown)).when == ""


@pytest.mark.parametrize(
    ("count", "max_series", "text"),
    [(3, None, "3 series"), (900, 1000, "900 of at most 1,000 series")],
)
def test_card__series_against_max_series(count, max_series, text):
    shown = presentation.Shown(State.OK, series_count=count)
    assert card(Looked(shown), max_series=max_series).series == text


def test_card__what_has_series_to_show():
    assert card(Looked(presentation.Shown(State.OK))).exported  # no series: 0
    assert not card(Looked(presentation.Shown(State.ERROR, message="x"))).exported
    assert not card(Looked(presentation.Shown(State.HIDDEN))).exported
