"""The scrape budget: METRICDEMO["SCRAPE_TIMEOUT"] bounds the whole collection."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from django.core import checks
from django.core.exceptions import ValidationError
from django.test import override_settings

from metricdemo import evaluation
from metricdemo.models import MetricDefinition
from tests.scraping import evaluations, scrape, series

pytestmark = pytest.mark.django_db


def store_unvalidated(**fields) -> MetricDefinition:
    """Store a definition as an old database or a raw write could: no validation."""
    return MetricDefinition.objects.create(**fields)


def test_scrape_budget__slow_callbacks_are_left_out_and_counted(client, gate, caplog):
    names = [f"slow.{i}" for i in range(5)]
    for name in names:
        store_unvalidated(name=name, source="callback", callback=gate.name, timeout=3)
    store_unvalidated(name="quick", source="constant", value=2)
    caplog.set_level(logging.WARNING, logger="metricdemo")
    # The gate opens well within each definition's own 3 s, but after the
    # scrape budget of 1 s: only a scrape bounded by the budget misses it.
    timer = threading.Timer(2.5, gate.release.set)
    with override_settings(METRICDEMO={"SCRAPE_TIMEOUT": 1}):
        timer.start()
        try:
            families = scrape(client)
            released_before_the_answer = gate.release.is_set()
        finally:
            timer.cancel()
            gate.release.set()
    assert not released_before_the_answer
    assert series(families, "quick") == {frozenset(): 2.0}
    for name in names:
        assert name.replace(".", "_") not in families
        assert evaluations(families, name) == {"timeout": 1.0}
    warnings = [r.getMessage() for r in caplog.records if "slow." in r.getMessage()]
    assert len(warnings) == 5
    assert all("SCRAPE_TIMEOUT" in warning for warning in warnings), warnings


def test_evaluate_many__nothing_starts_once_the_budget_ran_out(db, gate):
    definitions = [
        MetricDefinition(name=f"late.{i}", source="callback", callback=gate.name)
        for i in range(3)
    ]
    evaluator = evaluation.Evaluator(threads=2)
    results = evaluator.evaluate_many(definitions, deadline=time.monotonic() - 1)
    assert [r.outcome for r in results] == [evaluation.Outcome.TIMEOUT] * 3
    assert all("SCRAPE_TIMEOUT" in r.error for r in results)
    assert gate.calls == 0


def test_evaluate_many__a_task_waits_no_longer_than_the_budget(db, gate):
    definition = MetricDefinition(
        name="budgeted", source="callback", callback=gate.name, timeout=30
    )
    evaluator = evaluation.Evaluator(threads=1)
    (result,) = evaluator.evaluate_many([definition], deadline=time.monotonic() + 0.2)
    # The gate is still closed: the budget, not the 30 s timeout, ended the wait.
    assert not gate.release.is_set()
    assert result.outcome == evaluation.Outcome.TIMEOUT
    assert "SCRAPE_TIMEOUT" in result.error


def test_timeout_of__clamped_to_the_scrape_budget():
    definition = MetricDefinition(name="long", timeout=30)
    with override_settings(METRICDEMO={"SCRAPE_TIMEOUT": 2}):
        assert evaluation.timeout_of(definition) == 2.0
        assert evaluation.timeout_of(MetricDefinition(name="short", timeout=1)) == 1
    with override_settings(METRICDEMO={"SCRAPE_TIMEOUT": 3, "TIMEOUT": 5}):
        assert evaluation.timeout_of(MetricDefinition(name="default")) == 3.0


def test_validate_timeout__refuses_more_than_the_scrape_budget():
    definition = MetricDefinition(
        name="too.slow", source="constant", value=1, timeout=9
    )
    with pytest.raises(ValidationError) as info:
        definition.full_clean()
    (message,) = info.value.message_dict["timeout"]
    assert "SCRAPE_TIMEOUT" in message and "8" in message
    with override_settings(METRICDEMO={"SCRAPE_TIMEOUT": 10}):
        definition.full_clean()


@pytest.mark.parametrize("value", [0, -1, "8", True, float("inf"), 301])
def test_check_settings__scrape_timeout_must_be_seconds(value):
    with override_settings(METRICDEMO={"SCRAPE_TIMEOUT": value}):
        found = checks.run_checks(tags=["metricdemo"])
    (error,) = [m for m in found if m.id == "metricdemo.E020"]
    assert "SCRAPE_TIMEOUT" in error.msg and error.hint


def test_check_settings__timeout_above_the_scrape_budget_warns():
    with override_settings(METRICDEMO={"SCRAPE_TIMEOUT": 2, "TIMEOUT": 5}):
        found = checks.run_checks(tags=["metricdemo"])
    (warning,) = [m for m in found if m.id == "metricdemo.W013"]
    assert "SCRAPE_TIMEOUT" in warning.msg and warning.hint
    with override_settings(METRICDEMO={"SCRAPE_TIMEOUT": 6}):
        assert checks.run_checks(tags=["metricdemo"]) == []
