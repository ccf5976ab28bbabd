"""Slow definitions are waited for once, then refreshed in the background."""

from __future__ import annotations

import io
import threading
import time

import pytest
from django.core import checks
from django.core.management import call_command
from django.test import override_settings

from metricdemo import evaluation
from metricdemo.evaluation import Outcome, slow
from metricdemo.models import MetricDefinition
from tests.processes import wait_until
from tests.row_counts import MODELS, create_counts
from tests.scraping import evaluations, scrape, value

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sleeper(callback):
    """Register test.sleeper: a callback that sleeps `delay[0]` s and counts calls."""
    delay = [0.0]
    calls: list[float] = []
    lock = threading.Lock()

    def sleep() -> int:
        with lock:
            calls.append(time.monotonic())
            count = len(calls)
        time.sleep(delay[0])
        return count

    callback("test.sleeper", sleep)
    return delay, calls


def test_slow_evaluation__a_quarter_of_the_budget_unless_set():
    with override_settings(METRICDEMO={"SCRAPE_TIMEOUT": 8}):
        assert slow.slow_seconds() == 2.0
    with override_settings(METRICDEMO={"SCRAPE_TIMEOUT": 8, "SLOW_EVALUATION": 0.5}):
        assert slow.slow_seconds() == 0.5


@pytest.mark.parametrize("setting", [0, -1, "1", True])
def test_check_settings__slow_evaluation_must_be_seconds(setting):
    with override_settings(METRICDEMO={"SLOW_EVALUATION": setting}):
        found = checks.run_checks(tags=["metricdemo"])
        assert slow.slow_seconds() == 2.0  # the default stands meanwhile
    (error,) = [m for m in found if m.id == "metricdemo.E033"]
    assert "SLOW_EVALUATION" in error.msg


def test_a_slow_callback_is_waited_for_once_then_served_kept(
    define, sleeper, monkeypatch
):
    delay, calls = sleeper
    delay[0] = 0.4
    definition = define(name="slow.one", source="callback", callback="test.sleeper")
    evaluator = evaluation.Evaluator(threads=2)
    with override_settings(METRICDEMO={"SLOW_EVALUATION": 0.1}):
        (first,) = evaluator.evaluate_many([definition])
        assert first.outcome == Outcome.SUCCESS
        assert first.observations == [(1, {})]
        # Slow: from now on its last good value, without waiting for a call.
        (second,) = evaluator.evaluate_many([definition])
        assert second.outcome == Outcome.KEPT
        assert second.observations == [(1, {})]
        assert "refresh_interval" in second.error
        assert len(calls) == 1  # no refresh is due yet
        assert evaluator.is_slow(definition)

        # Once a refresh is due, one runs in the background at a time.
        monkeypatch.setattr(slow, "REFRESH_EVERY", 0.0)
        for _ in range(3):
            (kept,) = evaluator.evaluate_many([definition])
            assert kept.outcome == Outcome.KEPT
        evaluator.wait_for_refreshes(10)
        assert len(calls) == 2
        assert evaluator.is_slow(definition)  # it took 0.4 s again
        # Fast again: back on the scrape's own path after its next refresh.
        delay[0] = 0.0
        (kept,) = evaluator.evaluate_many([definition])
        assert kept.outcome == Outcome.KEPT
        assert kept.observations == [(2, {})]
        evaluator.wait_for_refreshes(10)
        assert not evaluator.is_slow(definition)
        (back,) = evaluator.evaluate_many([definition])
        assert back.outcome == Outcome.SUCCESS
        assert back.observations == [(4, {})]


def test_a_callback_that_timed_out_serves_the_value_it_found_late(define, sleeper):
    delay, calls = sleeper
    delay[0] = 1.0
    definition = define(
        name="slow.late", source="callback", callback="test.sleeper", timeout=0.3
    )
    evaluator = evaluation.Evaluator(threads=2)
    (first,) = evaluator.evaluate_many([definition])
    assert first.outcome == Outcome.TIMEOUT
    assert evaluator.is_slow(definition)
    late = wait_until(
        lambda: r if (r := evaluator.evaluate_many([definition])[0]).ok else None,
        timeout=10,
        what="the late value",
    )
    assert late.outcome == Outcome.KEPT
    assert late.observations == [(1, {})]
    assert len(calls) == 1


def test_a_callback_that_fails_slowly_is_not_waited_for_again(define, callback):
    calls = []

    def fails_slowly() -> int:
        calls.append(1)
        time.sleep(0.3)
        raise RuntimeError("upstream down")

    callback("test.fails_slowly", fails_slowly)
    definition = define(
        name="slow.failing", source="callback", callback="test.fails_slowly"
    )
    evaluator = evaluation.Evaluator(threads=2)
    with override_settings(METRICDEMO={"SLOW_EVALUATION": 0.1}):
        (first,) = evaluator.evaluate_many([definition])
        (second,) = evaluator.evaluate_many([definition])
    assert first.outcome == Outcome.ERROR
    assert second.outcome == Outcome.ERROR
    assert "refresh_interval" in second.error and "upstream down" in second.error
    assert len(calls) == 1


def test_an_edited_slow_definition_is_evaluated_again(define, sleeper):
    delay, calls = sleeper
    delay[0] = 0.3
    definition = define(name="slow.edit", source="callback", callback="test.sleeper")
    evaluator = evaluation.Evaluator(threads=2)
    with override_settings(METRICDEMO={"SLOW_EVALUATION": 0.1}):
        evaluator.evaluate_many([definition])
        definition.attributes = {"edited": "yes"}
        definition.save()
        (result,) = evaluator.evaluate_many([definition])
    assert result.outcome == Outcome.SUCCESS
    assert len(calls) == 2


def test_the_admin_says_a_slow_definition_is_refreshed_in_the_background(
    admin_client, client, define, sleeper
):
    delay, _ = sleeper
    delay[0] = 0.3
    define(name="slow.admin", source="callback", callback="test.sleeper")
    with override_settings(METRICDEMO={"SLOW_EVALUATION": 0.1}):
        scrape(client)
        families = scrape(client)
        assert evaluations(families, "slow.admin") == {"success": 1.0, "kept": 1.0}
        assert value(families, "slow_admin") == 1.0
        page = admin_client.get("/admin/metricdemo/metricdefinition/")
    text = page.content.decode()
    assert "in the background" in text
    assert "refresh_interval" in text


@pytest.mark.long
def test_every_one_of_thousands_of_row_counts_is_served_within_a_few_scrapes(
    client, orders
):
    """A batch too large for the timeout is split, and no count is left out for long."""
    count = 4000
    # Every one exports a series (the tests have no users to group).
    create_counts(count, "many", [m for m in MODELS if m[0] != "auth.User"])
    names = {f"many_n{i}" for i in range(count)}
    served: set[str] = set()
    # A timeout twelve times what one statement of 250 counts takes alone on
    # this machine: one statement meets it while the 4 evaluation threads
    # share the interpreter, the whole batch (16 of them) on one does not.
    sample = list(MetricDefinition.objects.filter(name__startswith="many.")[:250])
    started = time.perf_counter()
    evaluation.Evaluator(threads=1).evaluate_many(sample, timeout=60)
    timeout = max(12 * (time.perf_counter() - started), 0.2)
    budget = max(3 * timeout, 2)
    with override_settings(METRICDEMO={"TIMEOUT": timeout, "SCRAPE_TIMEOUT": budget}):
        # A statement that overran is looked into in the background for a
        # few scrapes (its counts alone, then in smaller batches).
        for _ in range(12):
            families = scrape(client)
            served |= names & set(families)
            if served == names:
                break
        last = scrape(client)
    missing = sorted(names - served)
    assert not missing, (len(missing), evaluations(last, missing[0].replace("_", ".")))
    assert names <= set(last)


def test_metrics_check_says_which_definitions_are_slow(define, sleeper):
    delay, _ = sleeper
    delay[0] = 0.3
    define(name="slow.checked", source="callback", callback="test.sleeper")
    define(name="quick.checked", source="constant", value=1)
    out = io.StringIO()
    with override_settings(METRICDEMO={"SLOW_EVALUATION": 0.1}):
        call_command("metrics", "check", stdout=out)
    lines = {line.split()[0]: line for line in out.getvalue().splitlines() if line}
    assert "refresh_interval" in lines["slow.checked"]
    assert "refresh_interval" not in lines["quick.checked"]
