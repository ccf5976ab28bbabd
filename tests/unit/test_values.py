"""Unit tests for metricdemo.values: the last good value kept, a history sample."""

from __future__ import annotations

import math

import pytest

from metricdemo.values.kept import KeptValues


def test_kept_values__serve_the_version_they_were_computed_for():
    kept = KeptValues()
    assert kept.get("a", 1) is None
    kept.remember("a", 1, [(2.0, {"q": "x"})])
    observations, computed_at = kept.get("a", 1)
    assert observations == [(2.0, {"q": "x"})]
    assert computed_at > 0


def test_kept_values__an_edited_definition_has_no_kept_value():
    kept = KeptValues()
    kept.remember("a", 1, [(2.0, {})])
    assert kept.get("a", 2) is None
    assert kept.get("b", 1) is None


# The value history: what one sample keeps of an evaluation.


def _definition(**fields):
    from metricdemo.models import MetricDefinition

    return MetricDefinition(name="d", pk=1, **fields)


def _evaluation(*values, outcome="success", error=""):
    from metricdemo.evaluation import Evaluation

    return Evaluation(
        "d",
        outcome,
        observations=[(value, {"g": str(i)}) for i, value in enumerate(values)],
        error=error,
    )


@pytest.mark.parametrize(
    ("fields", "values", "summary"),
    [
        # A single series is its value, whatever the definition.
        ({"kind": "gauge", "source": "callback"}, [2.5], (2.5, 1)),
        ({"source": "row_count", "aggregate": "avg"}, [4.0], (4.0, 1)),
        # Several series add up for counters, up-down counters, counts and sums.
        ({"kind": "counter", "source": "callback"}, [1, 2, 3], (6.0, 3)),
        ({"kind": "updowncounter", "source": "callback"}, [5, -2], (3.0, 2)),
        ({"source": "row_count", "aggregate": "count"}, [3, 4], (7.0, 2)),
        ({"source": "row_count", "aggregate": ""}, [3, 4], (7.0, 2)),
        ({"source": "row_count", "aggregate": "sum"}, [0.5, 0.25], (0.75, 2)),
        ({"source": "row_count", "aggregate": "count"}, [], (0.0, 0)),
        # Not for averages, extremes, distinct counts or gauges of a callback.
        ({"source": "row_count", "aggregate": "avg"}, [1, 2], (None, 2)),
        ({"source": "row_count", "aggregate": "max"}, [1, 2], (None, 2)),
        ({"source": "row_count", "aggregate": "count_distinct"}, [1, 2], (None, 2)),
        ({"kind": "gauge", "source": "callback"}, [1, 2], (None, 2)),
        ({"kind": "gauge", "source": "callback"}, [], (None, 0)),
        # NaN and infinities are no value (MariaDB cannot store them).
        ({"kind": "gauge", "source": "callback"}, [math.nan], (None, 1)),
        ({"kind": "counter", "source": "callback"}, [1, math.inf], (None, 2)),
    ],
)
def test_history_summarize__one_value_per_evaluation(fields, values, summary):
    from metricdemo.values.history import summarize

    assert summarize(_definition(**fields), _evaluation(*values)) == summary


def test_history_summarize__a_histogram_is_its_count_of_observations():
    from metricdemo.distributions import Distribution
    from metricdemo.values.history import summarize

    one = Distribution.of([10, 100], [1, 50, 500])
    two = Distribution.of([10, 100], [5])
    definition = _definition(kind="histogram", source="row_count")
    assert summarize(definition, _evaluation(one)) == (3.0, 1)
    assert summarize(definition, _evaluation(one, two)) == (4.0, 2)


@pytest.mark.parametrize("outcome", ["error", "timeout", "pending", "stale"])
def test_history_summarize__a_failure_is_no_value(outcome):
    from metricdemo.values.history import summarize

    failed = _evaluation(outcome=outcome, error="no")
    assert summarize(_definition(kind="gauge"), failed) == (None, 0)


@pytest.mark.parametrize("outcome", ["cached", "stored", "kept"])
def test_history_summarize__a_value_served_again_is_a_value(outcome):
    from metricdemo.values.history import summarize

    assert summarize(_definition(kind="gauge"), _evaluation(8, outcome=outcome)) == (
        8.0,
        1,
    )


def test_history_interval_start__floors_to_the_interval():
    import datetime as dt

    from metricdemo.values.history import interval_start

    assert interval_start(1796652323.7, 60) == dt.datetime(
        2026, 12, 7, 14, 5, tzinfo=dt.UTC
    )
    assert interval_start(1796652323.7, 3600) == dt.datetime(
        2026, 12, 7, 14, tzinfo=dt.UTC
    )
