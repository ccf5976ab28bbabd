"""Unit tests for metricdemo.evaluation, the shared cache and the worker threads."""

from __future__ import annotations

import itertools
import logging
import re
import threading
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from django.core.cache import caches
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache
from django.core.cache.backends.locmem import LocMemCache
from django.db import (
    DatabaseError,
    OperationalError,
    connection,
    connections,
    transaction,
)
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from metricdemo import sources
from metricdemo.conf import app_settings
from metricdemo.database import (
    savepoint_if_in_transaction,
    scoped_statement_timeout,
    statement_timeout,
)
from metricdemo.evaluation import (
    Evaluation,
    Evaluator,
    Outcome,
    evaluate_here,
    get_evaluator,
    timeout_of,
)
from metricdemo.models import EDITABLE_FIELDS, MetricDefinition
from metricdemo.observations import EvaluationError, describe
from metricdemo.values import shared_cache
from metricdemo.workers import WorkerPool
from tests.connections import on_a_thread, sqlite_connection

#: A statement long enough for SQLite's progress handler to be called.
LONG_SQLITE = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
    "WHERE x < 200000) SELECT count(*) FROM c"
)


def definition(source: str, name: str = "x", **fields) -> MetricDefinition:
    """Return an unsaved definition."""
    return MetricDefinition(name=name, source=source, **fields)


def eventually(check: Callable[[], Any], attempts: int = 200) -> Any:
    """Return check()'s first truthy result, polling while a worker finishes."""
    pause = threading.Event()
    for _ in range(attempts):
        result = check()
        if result:
            return result
        pause.wait(0.05)
    return check()


def local_cache(location: str, backend: str = "locmem.LocMemCache") -> dict:
    """Return a CACHES setting with one cache of its own."""
    if "." in backend and not backend.startswith("tests."):
        backend = f"django.core.cache.backends.{backend}"
    return {"default": {"BACKEND": backend, "LOCATION": location}}


@pytest.fixture
def evaluator():
    """Return an evaluator of two threads of its own."""
    return Evaluator(2)


@dataclass(frozen=True)
class ProbeSource(sources.Source):
    """A cheap source that records the thread it is observed on."""

    key: ClassVar[str] = "probe"
    label: ClassVar[str] = "Probe"
    help_text: ClassVar[str] = "nothing"
    threads: list[str] = field(default_factory=list)

    def validate(self, definition: MetricDefinition) -> None:
        """Accept every definition."""

    def observe(self, definition: MetricDefinition) -> sources.Observations:
        self.threads.append(threading.current_thread().name)
        return [(1.0, {})]


@dataclass(frozen=True)
class BlockingProbeSource(ProbeSource):
    """A source that must run on a worker thread."""

    key: ClassVar[str] = "blocking_probe"
    blocking: ClassVar[bool] = True


@pytest.fixture
def probes(monkeypatch):
    """Add the probe sources to SOURCES for one test."""
    found = ProbeSource(), BlockingProbeSource()
    for source in found:
        monkeypatch.setitem(sources.SOURCES, source.key, source)
    return found


# Evaluation


@pytest.mark.parametrize(
    ("outcome", "ok"),
    [
        (Outcome.SUCCESS, True),
        (Outcome.CACHED, True),
        (Outcome.ERROR, False),
        (Outcome.TIMEOUT, False),
    ],
)
def test_evaluation__ok_when_the_series_were_produced(outcome, ok):
    assert Evaluation("x", outcome).ok is ok


# evaluate_here


def test_evaluate_here__returns_the_series_with_constant_attributes():
    result = evaluate_here(definition("constant", value=4, attributes={"tier": 2}))
    assert (result.name, result.outcome, result.error) == ("x", Outcome.SUCCESS, "")
    assert result.observations == [(4.0, {"tier": 2})]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"source": "nope"}, "Unknown source 'nope'."),
        # A row saved without validation, as an old one may have been.
        ({"source": "constant", "value": None}, "TypeError: float() argument"),
        ({"source": "setting", "setting": "NO_SUCH"}, "no Django setting"),
        ({"source": "callback", "callback": "test.boom"}, "ZeroDivisionError: "),
        ({"source": "callback", "callback": "test.refuses"}, "The callback returned"),
        ({"source": "callback", "callback": "test.gone"}, "'test.gone'"),
    ],
)
def test_evaluate_here__never_raises(callback, fields, error):
    callback("test.boom", lambda: 1 / 0)
    callback("test.refuses", lambda: "many")
    result = evaluate_here(MetricDefinition(name="x", **fields))
    assert result.outcome == Outcome.ERROR and not result.ok
    assert result.observations == []
    assert error in result.error


def test_evaluate_here__a_failing_count_leaves_the_callers_transaction_usable(orders):
    from tests.shop.models import Order

    broken = definition(
        "row_count", model="shop.Order", filters={"status__regex": "(unclosed"}
    )
    with transaction.atomic():
        assert evaluate_here(broken).outcome == Outcome.ERROR
        assert Order.objects.count() == 6


#: A filter that compiles but fails once the statement runs: SQLite refuses a
#: regex before running it, but cannot hold an integer this large.
FAILS_WHEN_RUN = {
    "sqlite": {"customer_id": 2**70},
    "other": {"status__regex": "(unclosed"},
}


def test_savepoint_if_in_transaction__a_savepoint_only_inside_one(db):
    # The db fixture runs each test inside a transaction.
    assert isinstance(savepoint_if_in_transaction("default"), transaction.Atomic)


def test_savepoint_if_in_transaction__nothing_outside_one():
    assert not connections["default"].in_atomic_block
    assert isinstance(savepoint_if_in_transaction("default"), nullcontext)


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (EvaluationError("Setting X is secret."), "Setting X is secret."),
        (ZeroDivisionError("division by zero"), "ZeroDivisionError: division by zero"),
        (OperationalError("no such table"), "OperationalError: no such table"),
    ],
)
def test_describe__names_the_type_of_unexpected_errors(exc, text):
    assert describe(exc) == text


def test_timeout_of__own_timeout_or_the_setting():
    assert timeout_of(definition("constant", timeout=1.5)) == 1.5
    assert timeout_of(definition("constant")) == float(app_settings.TIMEOUT)
    with override_settings(METRICDEMO={"TIMEOUT": 7}):
        assert timeout_of(definition("constant")) == 7.0


def test_get_evaluator__one_per_process():
    assert get_evaluator() is get_evaluator()


# statement_timeout


def test_statement_timeout__sqlite_interrupts_past_the_deadline_inside_the_block(
    django_db_blocker,
):
    with django_db_blocker.unblock():
        sqlite = sqlite_connection()
        try:
            # The deadline has passed as the block starts: any long statement
            # is interrupted, however fast the machine.
            with statement_timeout(sqlite, 0), sqlite.cursor() as cursor:
                with pytest.raises(OperationalError, match="interrupted"):
                    cursor.execute(LONG_SQLITE)
            with sqlite.cursor() as cursor:
                cursor.execute(LONG_SQLITE)
                assert cursor.fetchone() == (200000,)
        finally:
            sqlite.close()


def session_timeout(conn) -> float | None:
    """Return the seconds of the session's statement timeout (None on SQLite)."""
    queries = {
        "postgresql": "SHOW statement_timeout",
        "mysql": "SELECT @@SESSION.max_statement_time",
    }
    if conn.vendor not in queries:
        return None
    with conn.cursor() as cursor:
        cursor.execute(queries[conn.vendor])
        (value,) = cursor.fetchone()
    if conn.vendor == "postgresql":
        number, unit = re.fullmatch(r"(\d+)(ms|s|min)?", value).groups()
        return float(number) / {"ms": 1000, "s": 1, "min": 1 / 60, None: 1000}[unit]
    return float(value)


def test_statement_timeout__sets_the_session_timeout_once_per_value(db):
    def work():
        seen = []
        with CaptureQueriesContext(connection) as queries:
            for seconds in (0.5, 0.5, 0.7, 0.7):
                with statement_timeout(connection, seconds):
                    seen.append(session_timeout(connection))
        sets = [q["sql"] for q in queries.captured_queries if "SET" in q["sql"]]
        return connection.vendor, seen, sets

    vendor, seen, sets = on_a_thread(work)
    if vendor == "sqlite":
        # The progress handler is installed per block; nothing is kept.
        assert (seen, sets) == ([None] * 4, [])
    else:
        assert seen == [0.5, 0.5, 0.7, 0.7]
        assert len(sets) == 2


def test_statement_timeout__every_new_connection_gets_the_timeout(db):
    """After CONN_MAX_AGE or a lost server closes it, the next session is bounded."""

    def work():
        seen = []
        for _ in range(10):
            with statement_timeout(connection, 0.5):
                seen.append(session_timeout(connection))
            connection.close()
        return connection.vendor, seen

    vendor, seen = on_a_thread(work)
    assert seen == [None if vendor == "sqlite" else 0.5] * 10


def test_scoped_statement_timeout__gives_the_session_its_timeout_back(db):
    """A request's connection goes on without the preview's timeout."""

    def work():
        with statement_timeout(connection, 0.7):
            pass  # the session timeout an evaluation thread keeps
        seen = [session_timeout(connection)]
        with scoped_statement_timeout(connection, 0.3):
            seen.append(session_timeout(connection))
        seen.append(session_timeout(connection))
        return connection.vendor, seen

    vendor, seen = on_a_thread(work)
    assert seen == ([None] * 3 if vendor == "sqlite" else [0.7, 0.3, 0.7])


def test_scoped_statement_timeout__a_failed_query_leaves_the_transaction_usable(db):
    with pytest.raises(DatabaseError):
        with scoped_statement_timeout(connection, 1), connection.cursor() as cursor:
            cursor.execute("SELECT * FROM metricdemo_no_such_table")
    assert MetricDefinition.objects.count() == 0  # the test's transaction goes on


# Evaluator


def test_evaluator__cheap_sources_run_inline_and_blocking_ones_on_a_worker(
    evaluator, probes
):
    inline, blocking = probes
    results = evaluator.evaluate_many(
        [definition("probe"), definition("blocking_probe")]
    )
    assert [r.outcome for r in results] == [Outcome.SUCCESS, Outcome.SUCCESS]
    assert inline.threads == [threading.current_thread().name]
    assert blocking.threads == ["metricdemo-evaluation"]


def test_evaluator__results_keep_the_order_of_the_definitions(evaluator, callback):
    callback("test.two", lambda: 2)
    results = evaluator.evaluate_many(
        [
            definition("callback", "a", callback="test.two"),
            definition("constant", "b", value=1),
            definition("nope", "c"),
            definition("callback", "d", callback="test.two", attributes={"q": "d"}),
        ]
    )
    assert [r.name for r in results] == ["a", "b", "c", "d"]
    assert [r.outcome for r in results] == [
        Outcome.SUCCESS,
        Outcome.SUCCESS,
        Outcome.ERROR,
        Outcome.SUCCESS,
    ]
    assert results[3].observations == [(2.0, {"q": "d"})]


def test_evaluator__a_slow_evaluation_times_out_and_the_rest_still_arrive(
    evaluator, gate
):
    slow = definition("callback", "slow", callback=gate.name, timeout=0.05)
    results = evaluator.evaluate_many([slow, definition("constant", value=2)])
    assert gate.started.is_set()
    assert results[0].outcome == Outcome.TIMEOUT and not results[0].ok
    assert results[0].error == "No result within the timeout of 0.05 s."
    assert results[0].observations == []
    assert results[1].observations == [(2.0, {})]


def test_evaluator__the_timeout_argument_overrides_the_definitions(evaluator, gate):
    slow = definition("callback", callback=gate.name, timeout=300)
    (result,) = evaluator.evaluate_many([slow], timeout=0.05)
    assert result.outcome == Outcome.TIMEOUT
    assert "0.05 s" in result.error


def test_evaluator__never_starts_a_running_definition_twice(evaluator, gate, define):
    slow = define(name="slow", source="callback", callback=gate.name, timeout=0.05)
    assert evaluator.evaluate_many([slow])[0].outcome == Outcome.TIMEOUT
    assert gate.started.wait(10)

    # The same row, loaded again, is the same definition: slow since it timed
    # out, and refreshed by the evaluation still running, not a second one.
    for copy in (slow, MetricDefinition.objects.get(pk=slow.pk)):
        (result,) = evaluator.evaluate_many([copy], timeout=10)
        assert result.outcome == Outcome.TIMEOUT
        assert "in the background" in result.error
    assert gate.calls == 1

    gate.release.set()
    result = eventually(
        lambda: (r := evaluator.evaluate_many([slow], timeout=10)[0]).ok and r
    )
    # The value it found late is served; no evaluation was started again.
    assert result.outcome == Outcome.KEPT
    assert result.observations == [(1.0, {})]
    assert gate.calls == 1


def test_evaluator__unsaved_definitions_are_not_tracked(evaluator, gate):
    """A preview of an unsaved definition has no identity to track."""
    slow = definition("callback", callback=gate.name, timeout=0.05)
    evaluator.evaluate_many([slow])
    evaluator.evaluate_many([slow])
    assert eventually(lambda: gate.calls == 2)


def test_evaluator__a_timed_out_evaluation_does_not_hold_up_the_next(gate, callback):
    evaluator = Evaluator(1)
    callback("test.one", lambda: 1)
    hung = definition("callback", callback=gate.name)
    assert evaluator.evaluate_many([hung], timeout=0.05)[0].outcome == Outcome.TIMEOUT
    (result,) = evaluator.evaluate_many(
        [definition("callback", callback="test.one")], timeout=10
    )
    assert result.outcome == Outcome.SUCCESS
    assert gate.calls == 1


@pytest.mark.django_db(transaction=True)
def test_evaluator__batch_failure_isolates_the_bad_definition(orders):
    """A statement that fails for one count still exports the others."""
    evaluator = Evaluator(2)
    counts = [
        definition(
            "row_count", "pending", model="shop.Order", filters={"status": "pending"}
        ),
        definition(
            "row_count",
            "broken",
            model="shop.Order",
            filters=FAILS_WHEN_RUN.get(connection.vendor, FAILS_WHEN_RUN["other"]),
        ),
        definition(
            "row_count",
            "countries",
            model="shop.Customer",
            group_by="country",
            attributes={"region": "eu"},
        ),
    ]
    try:
        # The first time the batch fails and each runs alone; then the bad one
        # keeps running alone.
        for _ in range(2):
            pending, broken, countries = evaluator.evaluate_many(counts, timeout=30)
            assert pending.outcome == Outcome.SUCCESS
            assert pending.observations == [(3.0, {})]
            assert broken.outcome == Outcome.ERROR
            assert "Error" in broken.error or "too large" in broken.error
            assert countries.outcome == Outcome.SUCCESS
            assert sorted(countries.observations, key=lambda o: o[1]["country"]) == [
                (1.0, {"country": "", "region": "eu"}),
                (1.0, {"country": "DE", "region": "eu"}),
                (1.0, {"country": "FR", "region": "eu"}),
            ]
    finally:
        evaluator.close_connections()


@pytest.fixture
def private_cache():
    """Give the test a local-memory cache of its own."""
    with override_settings(CACHES=local_cache("private")):
        caches["default"].clear()
        yield


def test_evaluator__collect_serves_cached_values_and_caches_only_successes(
    evaluator, callback, private_cache
):
    counter = itertools.count(1)
    callback("test.counter", lambda: next(counter))
    callback("test.boom", lambda: 1 / 0)
    definitions = [
        definition("callback", "cached", callback="test.counter", cache_seconds=60),
        definition("callback", "failing", callback="test.boom", cache_seconds=60),
        definition("callback", "fresh", callback="test.counter"),
    ]
    first = evaluator.collect(definitions)
    second = evaluator.collect(definitions)
    assert [r.outcome for r in first] == [
        Outcome.SUCCESS,
        Outcome.ERROR,
        Outcome.SUCCESS,
    ]
    assert [r.outcome for r in second] == [
        Outcome.CACHED,
        Outcome.ERROR,
        Outcome.SUCCESS,
    ]
    assert second[0].ok and second[0].observations == first[0].observations
    assert [r.observations[0][0] for r in (first[2], second[2])] == [2.0, 3.0]


# cache

#: A value other than the base definition's for every editable field.
CHANGES = {
    "name": "y",
    "description": "other",
    "unit": "s",
    "kind": "counter",
    "enabled": False,
    "attributes": {"region": "eu"},
    "source": "setting",
    "value": 2.0,
    "model": "shop.Order",
    "aggregate": "sum",
    "field": "total",
    "filters": {"status": "paid"},
    "group_by": "status",
    "buckets": [1, 2],
    "setting": "DEBUG",
    "callback": "test.other",
    "timeout": 3.0,
    "cache_seconds": 30,
    "refresh_interval": 60,
    "max_series": 10,
}


def cached(name: str = "x", **fields) -> MetricDefinition:
    """Return an unsaved constant definition that caches for 60 s."""
    fields = {"source": "constant", "value": 1.0, "cache_seconds": 60, **fields}
    return MetricDefinition(name=name, **fields)


def test_cache_key__changes_list_covers_every_editable_field():
    assert set(CHANGES) == set(EDITABLE_FIELDS)


@pytest.mark.parametrize("name", EDITABLE_FIELDS)
def test_cache_key__changes_with_every_editable_field(name):
    assert shared_cache.cache_key(
        cached(**{name: CHANGES[name]})
    ) != shared_cache.cache_key(cached())


def test_cache_key__depends_on_the_fields_alone():
    key = shared_cache.cache_key(cached(attributes={"a": 1, "b": 2}))
    assert re.fullmatch(r"metricdemo:value:[0-9a-f]{32}", key)
    same = cached(pk=12, attributes={"b": 2, "a": 1})
    assert shared_cache.cache_key(same) == key


def test_cache__write_then_read_round_trip(private_cache):
    a, b, c = cached("a"), cached("b", cache_seconds=0), cached("c")
    shared_cache.write([(a, [(1.0, {"q": "x"}), (2.0, {"q": "y"})]), (b, [(2.0, {})])])
    assert shared_cache.read([b, a, c]) == {1: [(1.0, {"q": "x"}), (2.0, {"q": "y"})]}
    # A definition that does not cache is neither written nor read.
    assert caches["default"].get(shared_cache.cache_key(b)) is None
    # An edit is a new key, so the old value is not served.
    assert shared_cache.read([cached("a", value=5.0)]) == {}


def test_cache__read_hands_out_copies(private_cache):
    a = cached("a")
    shared_cache.write([(a, [(1.0, {"q": "x"})])])
    shared_cache.read([a])[0][0][1]["q"] = "changed"
    assert shared_cache.read([a]) == {0: [(1.0, {"q": "x"})]}


class RecordingCache(LocMemCache):
    """A local-memory cache that records what each set_many() stores, and how long."""

    stored: ClassVar[list[tuple[list[str], Any]]] = []

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        self.stored.append((sorted(data), timeout))
        return super().set_many(data, timeout, version)


def test_cache__write_stores_each_lifetime_for_its_own_time():
    RecordingCache.stored.clear()
    a, b, c = cached("a"), cached("b", cache_seconds=300), cached("c")
    backend = "tests.unit.test_evaluation.RecordingCache"
    with override_settings(CACHES=local_cache("recording", backend)):
        shared_cache.write(
            [(d, [(1.0, {})]) for d in (a, b, c, cached("d", cache_seconds=0))]
        )
    assert sorted(RecordingCache.stored, key=lambda s: s[1]) == [
        (sorted([shared_cache.cache_key(a), shared_cache.cache_key(c)]), 60),
        ([shared_cache.cache_key(b)], 300),
    ]


def test_cache__uses_the_cache_alias_of_the_setting():
    both = {**local_cache("one"), "metrics": local_cache("two")["default"]}
    a = cached("a")
    with override_settings(CACHES=both, METRICDEMO={"CACHE": "metrics"}):
        shared_cache.write([(a, [(1.0, {})])])
        assert caches["metrics"].get(shared_cache.cache_key(a)) == [(1.0, {})]
        assert caches["default"].get(shared_cache.cache_key(a)) is None


class UnreachableCache(BaseCache):
    """A cache whose server cannot be reached."""

    def __init__(self, location, params):
        super().__init__(params)

    def get_many(self, keys, version=None):
        raise ConnectionError("cache is down")

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        raise ConnectionError("cache is down")


def test_cache__unreachable_cache_falls_back(monkeypatch, caplog, evaluator):
    monkeypatch.setattr(shared_cache, "_cache_failed", False)
    a = cached("a")
    down = local_cache("down", "tests.unit.test_evaluation.UnreachableCache")
    with caplog.at_level(logging.INFO, logger="metricdemo"):
        with override_settings(CACHES=down):
            assert shared_cache.read([a]) == {}
            shared_cache.write([(a, [(1.0, {})])])
            results = evaluator.collect([a, a])
        assert [r.outcome for r in results] == [Outcome.SUCCESS, Outcome.SUCCESS]
        # Said once, not on every scrape.
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert warnings == [
            "The metricdemo cache cannot be used: ConnectionError: cache is down"
        ]
        caplog.clear()
        with override_settings(CACHES=local_cache("up")):
            shared_cache.write([(a, [(1.0, {})])])
            assert shared_cache.read([a]) == {0: [(1.0, {})]}
        assert [r.getMessage() for r in caplog.records] == [
            "The metricdemo cache works again."
        ]


# WorkerPool


def test_worker_pool__submit_returns_the_result_or_the_exception():
    pool = WorkerPool(1)
    assert pool.submit(lambda: 42).result(10) == 42
    error = ValueError("boom")

    def fail():
        raise error

    assert pool.submit(fail).exception(10) is error
    # The worker survives the exception.
    assert pool.submit(lambda: 43).result(10) == 43


def test_worker_pool__threads_are_named_daemons():
    """A hung callback must never keep the interpreter from exiting."""
    thread = WorkerPool(2).submit(threading.current_thread).result(10)
    assert thread.daemon
    assert thread.name == "metricdemo-evaluation"


def test_worker_pool__has_at_least_one_thread():
    assert WorkerPool(0).submit(lambda: 1).result(10) == 1


def test_worker_pool__broadcast_runs_once_on_every_worker():
    pool = WorkerPool(3)
    pool.submit(lambda: None).result(10)
    ran: list[int] = []
    pool.broadcast(lambda: ran.append(threading.get_ident()))
    assert len(ran) == 3
    assert len(set(ran)) == 3


def test_worker_pool__broadcast_before_any_work_runs_nothing():
    ran: list[int] = []
    WorkerPool(3).broadcast(lambda: ran.append(1))
    assert ran == []


def test_worker_pool__replaces_a_stuck_worker():
    pool = WorkerPool(1)
    started, release = threading.Event(), threading.Event()

    def stuck() -> threading.Thread:
        started.set()
        release.wait(30)
        return threading.current_thread()

    try:
        future = pool.submit(stuck)
        assert started.wait(10)
        pool.replace_stuck_worker(future)
        assert pool.submit(lambda: "next").result(10) == "next"
    finally:
        release.set()
    # Once its task ends, the replaced thread leaves: the pool is one thread again.
    stuck_thread = future.result(10)
    stuck_thread.join(10)
    assert not stuck_thread.is_alive()
    ran: list[int] = []
    pool.broadcast(lambda: ran.append(threading.get_ident()))
    assert len(ran) == 1 and ran[0] != stuck_thread.ident


def test_worker_pool__a_finished_task_needs_no_replacement():
    pool = WorkerPool(1)
    future = pool.submit(lambda: 1)
    future.result(10)
    pool.replace_stuck_worker(future)
    ran: list[int] = []
    pool.broadcast(lambda: ran.append(threading.get_ident()))
    assert len(ran) == 1


def test_worker_pool__a_cancelled_task_never_runs():
    pool = WorkerPool(1)
    release = threading.Event()
    ran: list[str] = []
    try:
        blocker = pool.submit(lambda: release.wait(30))
        queued = pool.submit(lambda: ran.append("queued"))
        assert queued.cancel()
    finally:
        release.set()
    assert blocker.result(10) is True
    assert pool.submit(lambda: "after").result(10) == "after"
    assert ran == []


def test_evaluator__close_connections_reaches_every_worker(
    evaluator, callback, monkeypatch
):
    closed: list[str] = []
    monkeypatch.setattr(
        connections,
        "close_all",
        lambda: closed.append(threading.current_thread().name),
    )
    evaluator.close_connections()  # no worker has started yet
    assert closed == []
    callback("test.one", lambda: 1)
    assert evaluator.evaluate_many([definition("callback", callback="test.one")])[0].ok
    evaluator.close_connections()
    assert closed == ["metricdemo-evaluation"] * 2
