"""Scheduled definitions: refreshed in the background once, served from their table."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from metricdemo import evaluation, rowquery, scheduler
from metricdemo.evaluation import Evaluator, Outcome
from metricdemo.evaluation.work import definition_database
from metricdemo.models import MetricDefinition, ScheduledValue
from metricdemo.scheduler import Refresher
from metricdemo.values import scheduled as scheduled_values
from tests.processes import wait_until
from tests.scraping import evaluations, scrape, series, value

# Refreshes run on other threads, with connections of their own: commit.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def counter(callback):
    """Register test.counter: returns how often it was called; and the calls."""
    calls: list[int] = []

    def count() -> int:
        calls.append(1)
        return len(calls)

    callback("test.counter", count)
    return calls


@pytest.fixture
def refreshers():
    """Make refreshers (as other processes would run them); stop them afterwards."""
    made: list[Refresher] = []

    def make() -> Refresher:
        made.append(Refresher())
        return made[-1]

    yield make
    for refresher in made:
        refresher.stop()


def refresh(refresher: Refresher) -> list[str]:
    """Run one tick and store what it started; return the names it refreshed."""
    started = refresher.tick()
    refresher.wait_idle(30)
    return started


def scheduled(define, name="slow.total", interval=60, **fields):
    fields = {"source": "callback", "callback": "test.counter", **fields}
    return define(name=name, refresh_interval=interval, **fields)


def test_refresh__one_of_several_processes_evaluates_and_all_serve_it(
    client, define, counter, refreshers
):
    definition = scheduled(define)
    first, second, third = refreshers(), refreshers(), refreshers()
    assert refresh(first) == ["slow.total"]
    assert refresh(second) == [] and refresh(third) == []
    assert len(counter) == 1

    row = ScheduledValue.objects.get(definition_id=definition.pk)
    assert row.holder == "" and row.outcome == Outcome.SUCCESS
    for _ in range(3):
        families = scrape(client)
        assert value(families, "slow_total") == 1.0
    assert len(counter) == 1  # scrapes never evaluate a scheduled definition
    assert "success" not in evaluations(families, "slow.total")
    assert evaluations(families, "slow.total")["stored"] >= 3.0
    assert value(
        families, "metricdemo_last_success_timestamp_seconds", definition="slow.total"
    ) == pytest.approx(row.computed_at.timestamp())


def test_take_lease__exactly_one_of_many_concurrent_takers(define, counter):
    definition = scheduled(define)
    scheduled_values.due([definition])  # creates the row
    barrier = threading.Barrier(8)
    taken: list[bool] = []

    def take(holder: str) -> None:
        barrier.wait(10)
        try:
            taken.append(scheduled_values.take_lease(definition, holder, 5))
        finally:
            connection.close()

    threads = [threading.Thread(target=take, args=(f"p{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(taken) == [False] * 7 + [True]


def test_take_lease__a_dead_holders_lease_is_taken_over_once_it_expires(
    define, counter
):
    definition = scheduled(define)
    scheduled_values.due([definition])
    now = timezone.now()
    ScheduledValue.objects.filter(definition_id=definition.pk).update(
        holder="dead:1:x", expires_at=now + dt.timedelta(seconds=5)
    )
    assert not scheduled_values.take_lease(definition, "alive", 5, now=now)
    later = now + dt.timedelta(seconds=6)
    assert scheduled_values.take_lease(definition, "alive", 5, now=later)
    assert scheduled_values.holder_of(definition.pk) == "alive"


def test_refresh__due_again_one_interval_after_the_last_start(define, counter):
    definition = scheduled(define, interval=10)
    now = timezone.now()
    assert scheduled_values.due([definition], now) == [definition]
    assert scheduled_values.take_lease(definition, "a", 5, now=now)
    scheduled_values.save(
        definition,
        "a",
        started=now,
        outcome=Outcome.SUCCESS,
        observations=[(1.0, {})],
        seconds=0.1,
    )
    assert scheduled_values.due([definition], now + dt.timedelta(seconds=9)) == []
    assert not scheduled_values.take_lease(
        definition, "b", 5, now=now + dt.timedelta(seconds=9)
    )
    assert scheduled_values.take_lease(
        definition, "b", 5, now=now + dt.timedelta(seconds=10)
    )


def test_serve__a_value_older_than_three_intervals_is_not_exported(
    client, define, counter, refreshers
):
    definition = scheduled(define, interval=10)
    refresh(refreshers())
    assert value(scrape(client), "slow_total") == 1.0
    ScheduledValue.objects.filter(definition_id=definition.pk).update(
        computed_at=timezone.now() - dt.timedelta(seconds=31)
    )
    families = scrape(client)
    assert "slow_total" not in families
    assert evaluations(families, "slow.total")["stale"] == 1.0


def test_serve__an_edited_definition_waits_for_its_own_value(
    client, define, counter, refreshers
):
    definition = scheduled(define, attributes={"v": 1})
    refresher = refreshers()
    refresh(refresher)
    assert value(scrape(client), "slow_total", v="1") == 1.0
    definition.attributes = {"v": 2}
    definition.save()
    families = scrape(client)
    assert "slow_total" not in families  # not computed from this version
    assert evaluations(families, "slow.total")["pending"] >= 1.0
    assert refresh(refresher) == ["slow.total"]  # due at once, not in 60 s
    assert series(scrape(client), "slow_total") == {frozenset({("v", "2")}): 2.0}


def test_serve__a_failed_refresh_keeps_the_last_value(
    client, define, callback, refreshers
):
    answers = iter([3, RuntimeError("down")])

    def flaky() -> int:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    callback("test.flaky", flaky)
    definition = scheduled(define, callback="test.flaky", interval=1)
    refresher = refreshers()
    refresh(refresher)
    ScheduledValue.objects.filter(definition_id=definition.pk).update(
        attempted_at=timezone.now() - dt.timedelta(seconds=2)
    )
    assert refresh(refresher) == ["slow.total"]
    row = ScheduledValue.objects.get(definition_id=definition.pk)
    assert row.outcome == "error" and "down" in row.error
    assert value(scrape(client), "slow_total") == 3.0


def test_scrape__returns_while_a_scheduled_refresh_is_still_running(
    client, define, callback, refreshers
):
    """The scrape serves what is stored; it never waits for the refresh."""
    started, release = threading.Event(), threading.Event()

    def blocked() -> int:
        started.set()
        release.wait(60)
        return 42

    callback("test.blocked", blocked)
    scheduled(define, callback="test.blocked", timeout=120)
    define(name="quick", source="constant", value=1)
    refresher = refreshers()
    refresher.ensure_started()
    try:
        assert started.wait(30)
        families = scrape(client)
        assert not release.is_set()  # the refresh is still running
        assert value(families, "quick") == 1.0
        assert "slow_total" not in families
        assert evaluations(families, "slow.total")["pending"] >= 1.0
    finally:
        release.set()
    assert (
        wait_until(
            lambda: value(scrape(client), "slow_total"), timeout=30, what="the value"
        )
        == 42.0
    )


def test_scrape__starts_the_refresher_only_where_refreshing_is_on(
    client, define, counter, monkeypatch
):
    scheduled(define)
    scheduler.stop_refresher()
    scrape(client)  # REFRESH is False in the test settings
    assert scheduler._refresher.peek() is None
    monkeypatch.setenv("METRICDEMO_REFRESH", "1")
    try:
        scrape(client)
        assert scheduler._refresher.peek() is not None
        wait_until(lambda: counter or None, timeout=30, what="the first refresh")
    finally:
        scheduler.stop_refresher()


@pytest.mark.parametrize(
    ("environ", "setting", "expected"),
    [("", True, True), ("", False, False), ("0", True, False), ("1", False, True)],
)
def test_enabled__the_environment_variable_wins(
    monkeypatch, environ, setting, expected
):
    monkeypatch.setenv("METRICDEMO_REFRESH", environ)
    with override_settings(METRICDEMO={"REFRESH": setting}):
        assert scheduler.enabled() is expected


def test_validate__scheduled_definitions_may_take_longer_than_a_scrape(db):
    long = MetricDefinition(
        name="long", source="constant", value=1, timeout=120, refresh_interval=600
    )
    long.full_clean()
    long.refresh_interval = None
    with pytest.raises(ValidationError) as caught:
        long.full_clean()
    assert caught.value.error_dict["timeout"][0].code == "timeout_over_scrape_budget"


@pytest.mark.parametrize("interval", [86401, 10**6])
def test_validate__refresh_interval_bounds(db, interval):
    definition = MetricDefinition(
        name="x", source="constant", value=1, refresh_interval=interval
    )
    with pytest.raises(ValidationError) as caught:
        definition.full_clean()
    assert caught.value.error_dict["refresh_interval"][0].code == (
        "invalid_refresh_interval"
    )


def test_timeout_of__scheduled_definitions_are_not_cut_to_the_scrape_budget():
    definition = MetricDefinition(source="callback", timeout=120, refresh_interval=60)
    assert evaluation.timeout_of(definition) == 120.0
    definition.timeout = None
    assert evaluation.timeout_of(definition) == 60.0  # REFRESH_TIMEOUT
    definition.refresh_interval = None
    assert evaluation.timeout_of(definition) == 5.0


@pytest.mark.slow
def test_batch_overrun__members_keep_their_values_and_the_slow_one_is_found_apart(
    orders, define, monkeypatch
):
    """A batch that overruns is not re-run member by member in the same scrape."""
    counts = [
        define(
            name=f"orders.{status}",
            source="row_count",
            model="shop.Order",
            filters={"status": status},
        )
        for status in ("pending", "paid", "shipped")
    ]
    evaluator = Evaluator(2)
    real = rowquery.compute_rows
    calls: list[list[str]] = []
    slow = threading.Event()

    def compute_rows(definitions):
        names = [d.name for d in definitions]
        calls.append(names)
        if len(names) > 1 or names == ["orders.paid"]:
            slow.wait(5)  # the batch, and paid alone, are slow
        return real(definitions)

    try:
        first = evaluator.evaluate_many(counts, timeout=5)
        assert [r.observations for r in first] == [
            [(3.0, {})],
            [(2.0, {})],
            [(1.0, {})],
        ]
        monkeypatch.setattr(rowquery, "compute_rows", compute_rows)
        calls.clear()
        results = evaluator.evaluate_many(counts, timeout=0.2)
        assert [r.outcome for r in results] == [Outcome.KEPT] * 3
        assert [r.observations for r in results] == [
            [(3.0, {})],
            [(2.0, {})],
            [(1.0, {})],
        ]
        assert calls[0] == ["orders.pending", "orders.paid", "orders.shipped"]
        # Meanwhile each runs alone in the background; a scrape serves the kept values.
        again = evaluator.evaluate_many(counts, timeout=0.2)
        assert all(r.ok for r in again)
        wait_until(
            lambda: not any(evaluator.is_suspect(d) for d in counts) or None,
            timeout=30,
            what="the background to find the slow count",
        )
        alone = [names for names in calls if len(names) == 1]
        assert sorted(alone) == [
            ["orders.paid"],
            ["orders.pending"],
            ["orders.shipped"],
        ]
        slow.set()
        calls.clear()
        assert all(
            r.outcome == Outcome.SUCCESS
            for r in evaluator.evaluate_many(counts, timeout=5)
        )
        # The slow one runs alone from now on; the others are batched again.
        assert sorted(calls) == [["orders.paid"], ["orders.pending", "orders.shipped"]]
    finally:
        slow.set()
        evaluator.close_connections()


def test_batch_overrun__members_that_overrun_only_together_run_in_parts(
    orders, define, monkeypatch
):
    """Four counts that each take 0.3 s: alone within 1 s, together not."""
    counts = [
        define(
            name=f"orders.{n}",
            source="row_count",
            model="shop.Order",
            filters={"status": "pending"},
        )
        for n in range(4)
    ]
    evaluator = Evaluator(2)
    real = rowquery.compute_rows
    calls: list[list[str]] = []

    def compute_rows(definitions):
        calls.append([d.name for d in definitions])
        threading.Event().wait(0.3 * len(definitions))
        return real(definitions)

    try:
        assert all(r.ok for r in evaluator.evaluate_many(counts, timeout=5))
        monkeypatch.setattr(rowquery, "compute_rows", compute_rows)
        results = evaluator.evaluate_many(counts, timeout=1)
        assert [r.outcome for r in results] == [Outcome.KEPT] * 4
        wait_until(
            lambda: not any(evaluator.is_suspect(d) for d in counts) or None,
            timeout=30,
            what="the background to run each count alone",
        )
        # Nobody was slow alone: 0.3 s each, parts of at most half the timeout.
        calls.clear()
        results = evaluator.evaluate_many(counts, timeout=1)
        assert [r.outcome for r in results] == [Outcome.SUCCESS] * 4
        assert [r.observations for r in results] == [[(3.0, {})]] * 4
        assert sorted(calls) == [[f"orders.{n}"] for n in range(4)]
    finally:
        evaluator.close_connections()


class ReadsElsewhere:
    """A router that sends reads of the shop's models to a replica alias."""

    def db_for_read(self, model, **hints):
        return "replica" if model._meta.app_label == "shop" else None


def test_row_counts__read_the_database_named_by_the_setting(orders, define):
    """METRICDEMO['DATABASE'] wins over the router, which wins by default."""
    definition = define(name="orders.all", source="row_count", model="shop.Order")
    with override_settings(DATABASE_ROUTERS=[f"{__name__}.ReadsElsewhere"]):
        assert definition_database(definition) == "replica"
        with override_settings(METRICDEMO={"DATABASE": "default"}):
            assert definition_database(definition) == "default"
            # The router's "replica" alias does not exist: only a count that
            # reads "default" can succeed.
            (found,) = rowquery.compute_rows([definition])
            assert found == [(6.0, {})]
            (result,) = Evaluator(1).evaluate_many([definition], timeout=5)
            assert result.observations == [(6.0, {})]


def server_connections() -> int | None:
    """Return the sessions on the test database besides this thread's, or None.

    Counted by the server itself: pg_stat_activity on PostgreSQL, the
    process list on MariaDB; SQLite has no server to ask.
    """
    queries = {
        "postgresql": "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
        "mysql": "SELECT count(*) FROM information_schema.processlist "
        "WHERE db = DATABASE() AND id <> CONNECTION_ID()",
    }
    if connection.vendor not in queries:
        return None
    with connection.cursor() as cursor:
        cursor.execute(queries[connection.vendor])
        return cursor.fetchone()[0]


def held_by_threads(evaluator: Evaluator) -> int:
    """Return how many of the evaluator's threads hold an open connection."""
    from django.db import connections

    held: list[bool] = []
    evaluator.on_each_worker(
        lambda: held.append(
            any(
                c.connection is not None for c in connections.all(initialized_only=True)
            )
        )
    )
    return sum(held)


def test_evaluation_threads__hold_connections_only_while_busy(
    orders, callback, monkeypatch
):
    """At most one connection per evaluation thread, none once they are idle."""
    from django.db import connections

    from tests.shop.models import Order

    # Connections are kept for CONN_MAX_AGE; idle threads give them back then.
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 1)
    threads = 4
    together = threading.Barrier(threads)

    def query() -> int:
        count = Order.objects.count()
        together.wait(10)  # every thread holds its connection at once
        return count

    callback("test.query", query)
    evaluator = Evaluator(threads)
    before = server_connections()
    try:
        definitions = [
            MetricDefinition(name=f"q{i}", source="callback", callback="test.query")
            for i in range(threads)
        ]
        results = evaluator.evaluate_many(definitions, timeout=30)
        assert [r.observations for r in results] == [[(6.0, {})]] * threads
        busy = server_connections()
        assert held_by_threads(evaluator) == threads
        if before is not None:
            assert 1 <= busy - before <= threads
        # Each look is a task for every thread: look less often than they idle.
        wait_until(
            lambda: held_by_threads(evaluator) == 0 or None,
            timeout=30,
            what="idle evaluation threads to close their connections",
            interval=2.5,
        )
        if before is not None:
            assert server_connections() <= before
    finally:
        evaluator.close_connections()


@pytest.mark.parametrize(
    ("key", "bad", "check_id"),
    [
        ("REFRESH", "yes", "metricdemo.E030"),
        ("REFRESH_TIMEOUT", 0, "metricdemo.E031"),
        ("DATABASE", "nowhere", "metricdemo.E032"),
    ],
)
def test_check_settings__refresh_settings(key, bad, check_id):
    from metricdemo.checks import check_settings

    with override_settings(METRICDEMO={key: bad}):
        assert [error.id for error in check_settings()] == [check_id]
