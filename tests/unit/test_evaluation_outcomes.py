"""Unit tests for metricdemo.evaluation.outcomes: the outcome labels stay the same."""

from __future__ import annotations

import pytest

from metricdemo.evaluation import Evaluation, Outcome
from metricdemo.values import scheduled


def test_outcome__values_are_the_exported_labels():
    """The values are the self-metrics' `outcome` label: they must never change."""
    assert {o.name: str(o) for o in Outcome} == {
        "SUCCESS": "success",
        "ERROR": "error",
        "TIMEOUT": "timeout",
        "CACHED": "cached",
        "STORED": "stored",
        "KEPT": "kept",
        "PENDING": "pending",
        "STALE": "stale",
    }


def test_outcome__compares_and_formats_as_its_string():
    assert Outcome.SUCCESS == "success"
    assert f"{Outcome.KEPT}: why" == "kept: why"
    assert Evaluation("x", "success").ok


@pytest.mark.parametrize(
    "served", [scheduled.STORED, scheduled.PENDING, scheduled.STALE, scheduled.ERROR]
)
def test_outcome__covers_what_the_scheduled_table_serves(served):
    assert Outcome(served) == served
