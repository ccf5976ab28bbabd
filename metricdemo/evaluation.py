"""Evaluate definitions into observations, with timeouts, caching and isolation.

Cheap sources run inline; row counts and callbacks run on the threads of
`workers`, bounded by their timeouts; values of definitions that cache come
from `cache`, and those of scheduled definitions from `store`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError, connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils.translation import gettext as _

from metricdemo import cache, routing, rowquery, sources, store, validators
from metricdemo.conf import app_settings
from metricdemo.models import MetricDefinition
from metricdemo.observations import (
    EvaluationError,
    Observations,
    encoding_problem,
    with_constant_attributes,
)
from metricdemo.workers import PerProcess, WorkerPool

logger = logging.getLogger("metricdemo")

SUCCESS = "success"
ERROR = "error"
TIMEOUT = "timeout"
CACHED = "cached"
# Served from the shared store: the value a background refresh computed.
STORED = "stored"
# The last good value, kept because the batch it ran in overran.
KEPT = "kept"
# A scheduled definition not refreshed yet, or refreshed too long ago.
PENDING = "pending"
STALE = "stale"
# A batch statement failed; its definitions are evaluated again one by one.
_BATCH_FAILED = "batch_failed"


@dataclass(frozen=True)
class Evaluation:
    """The outcome of evaluating one definition once."""

    name: str
    outcome: str
    observations: Observations = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0
    #: Unix time the served value was computed, when it was not computed now.
    computed_at: float | None = None

    @property
    def ok(self) -> bool:
        """Return whether the definition produced its series (fresh or kept)."""
        return self.outcome in (SUCCESS, CACHED, STORED, KEPT)


def evaluate(
    definition: MetricDefinition, *, timeout: float | None = None
) -> Evaluation:
    """Evaluate one definition (saved or not) without the cache; never raise."""
    (result,) = evaluate_many([definition], timeout=timeout)
    return result


def evaluate_many(
    definitions: Sequence[MetricDefinition], *, timeout: float | None = None
) -> list[Evaluation]:
    """Evaluate definitions without the cache, each bounded by its timeout."""
    return get_evaluator().evaluate_many(definitions, timeout=timeout)


def timeout_of(definition: MetricDefinition) -> float:
    """Return the seconds `definition` may take: its own timeout or the default.

    Never more than the scrape budget: a definition stored with a longer
    timeout (before the budget was lowered, or without validation) is clamped.
    A scheduled definition is refreshed in the background, where no scrape
    waits: its own timeout or REFRESH_TIMEOUT, up to TIMEOUT_MAX.
    """
    if getattr(definition, "refresh_interval", None):
        seconds = getattr(definition, "timeout", None) or app_settings.REFRESH_TIMEOUT
        return min(float(seconds), validators.TIMEOUT_MAX)
    seconds = float(getattr(definition, "timeout", None) or app_settings.TIMEOUT)
    budget = validators.scrape_budget()
    return seconds if budget is None else min(seconds, budget)


def scrape_deadline() -> float | None:
    """Return the time.monotonic() by which a scrape starting now must be done."""
    budget = validators.scrape_budget()
    return None if budget is None else time.monotonic() + budget


class Evaluator:
    """Run evaluations: cheap sources inline, the rest on worker threads.

    A row count or callback runs on a worker thread so that the caller can stop
    waiting at its timeout. An evaluation that is still running is never
    started a second time; the definition counts as timed out until it ends.
    """

    def __init__(self, threads: int) -> None:
        self._pool = _pool(threads)
        self._running: dict[Any, Future] = {}
        # Row counts whose batch failed, or that were found slow; they run on
        # their own until they succeed, so one bad definition cannot sink the batch.
        self._alone: set[Any] = set()
        # Members of a batch that overran, until the background finds the slow
        # one: they serve their last good value meanwhile.
        self._suspects: set[Any] = set()
        # {key: part}: members of a batch that overran although none was slow
        # alone run in smaller batches, one per part.
        self._parts: dict[Any, int] = {}
        self._next_part = 0
        #: {key: (updated_at, observations, Unix time)} of the last success.
        self._last_good: dict[Any, tuple[Any, Observations, float]] = {}
        self._background: WorkerPool | None = None
        self._lock = threading.Lock()

    def collect(
        self,
        definitions: Sequence[MetricDefinition],
        *,
        deadline: float | None = None,
    ) -> list[Evaluation]:
        """Serve cached values, then evaluate and cache the rest.

        Nothing is waited for past `deadline` (a time.monotonic() value; by
        default the scrape budget from now).
        """
        if deadline is None:
            deadline = scrape_deadline()
        results: list[Evaluation | None] = [None] * len(definitions)
        for i, result in serve_scheduled(definitions).items():
            results[i] = result
        for i, observations in cache.read(definitions).items():
            if results[i] is None:
                results[i] = Evaluation(definitions[i].name, CACHED, observations)
        todo = [i for i, result in enumerate(results) if result is None]
        fresh = self.evaluate_many([definitions[i] for i in todo], deadline=deadline)
        for i, result in zip(todo, fresh, strict=True):
            results[i] = result
        cache.write(
            (definitions[i], result.observations)
            for i, result in zip(todo, fresh, strict=True)
            if result.outcome == SUCCESS
        )
        return results  # type: ignore[return-value]

    def evaluate_many(
        self,
        definitions: Sequence[MetricDefinition],
        *,
        timeout: float | None = None,
        deadline: float | None = None,
    ) -> list[Evaluation]:
        """Evaluate each definition once, waiting for none beyond its timeout.

        Row counts that share a database and a timeout run as one statement on
        one worker; a definition whose batch failed runs alone until it works.
        With a `deadline` (a time.monotonic() value), nothing is waited for, nor
        started, past it: the rest count as timed out.
        """
        results: list[Evaluation | None] = [None] * len(definitions)
        batches: dict[tuple[str, float, int | None], list[int]] = {}
        tasks: list[tuple[list[int], float]] = []
        aliases: dict[str, str] = {}  # each model's read database, found once
        for i, definition in enumerate(definitions):
            source = sources.SOURCES.get(definition.source)
            if source is None or not source.blocking:
                results[i] = evaluate_here(definition)
                continue
            if self._is_running(definition):
                results[i] = self._kept(definition) or Evaluation(
                    definition.name,
                    TIMEOUT,
                    error=_("The previous evaluation is still running."),
                )
                continue
            seconds = timeout if timeout is not None else timeout_of(definition)
            if source.batchable and definition_key(definition) not in self._alone:
                alias = aliases.get(definition.model)
                if alias is None:
                    alias = aliases[definition.model] = read_alias(definition)
                part = self._parts.get(definition_key(definition))
                batches.setdefault((alias, seconds, part), []).append(i)
            else:
                tasks.append(([i], seconds))
        tasks.extend((indices, key[1]) for key, indices in batches.items())
        retry = self._run(definitions, tasks, results, deadline)
        if retry:
            # A batch failed for one of its definitions: find which, alone.
            self._run(definitions, [([i], s) for i, s in retry], results, deadline)
        return results  # type: ignore[return-value]

    def _run(
        self,
        definitions: Sequence[MetricDefinition],
        tasks: list[tuple[list[int], float]],
        results: list[Evaluation | None],
        budget_deadline: float | None = None,
    ) -> list[tuple[int, float]]:
        """Start the tasks, wait for each until its deadline, and fill `results`."""
        waiting = []
        for indices, seconds in tasks:
            wait = _within_budget(seconds, budget_deadline)
            if wait <= 0:
                # Not started: it could only hold a thread past the scrape.
                for i in indices:
                    results[i] = _out_of_budget(definitions[i], 0.0)
                continue
            # When the budget is shorter, the database stops at it too.
            future = self._start([definitions[i] for i in indices], wait)
            waiting.append((time.monotonic() + wait, indices, future, seconds, wait))
        retry: list[tuple[int, float]] = []
        for deadline, indices, future, seconds, wait in sorted(
            waiting, key=lambda w: w[0]
        ):
            try:
                outcomes = future.result(max(0.0, deadline - time.monotonic()))
            except FutureTimeout:
                if not future.cancel():
                    self._pool.replace_stuck_worker(future)
                outcomes = self._timed_out(definitions, indices, seconds, wait)
            for i, outcome in zip(indices, outcomes, strict=True):
                definition = definitions[i]
                if outcome.outcome == _BATCH_FAILED:
                    self._alone.add(definition_key(definition))
                    retry.append((i, seconds))
                    continue
                if len(indices) == 1 and outcome.outcome == SUCCESS:
                    self._alone.discard(definition_key(definition))
                if outcome.outcome == SUCCESS:
                    self._remember(definition, outcome)
                results[i] = outcome
        return retry

    def _timed_out(
        self,
        definitions: Sequence[MetricDefinition],
        indices: list[int],
        seconds: float,
        wait: float,
    ) -> list[Evaluation]:
        """Return the outcomes of a task that did not finish in time."""
        if len(indices) > 1:
            # One batch that overran is not a definition that failed: its
            # members keep their last values while the background finds the
            # slow one, rather than each timing out alone in the next scrapes.
            members = [definitions[i] for i in indices]
            if wait >= seconds:
                self._find_slow(members, seconds)
            return [
                self._kept(d)
                or (
                    _out_of_budget(d, wait)
                    if wait < seconds
                    else _batch_overran(d, seconds)
                )
                for d in members
            ]
        if wait < seconds:
            # The budget ran out first, which says nothing about the definition.
            return [_out_of_budget(definitions[i], wait) for i in indices]
        return [
            Evaluation(
                definitions[i].name,
                TIMEOUT,
                error=_("No result within the timeout of %(seconds)g s.")
                % {"seconds": seconds},
                seconds=seconds,
            )
            for i in indices
        ]

    def is_suspect(self, definition: MetricDefinition) -> bool:
        """Return whether `definition` waits for the background to find a slow one."""
        with self._lock:
            return definition_key(definition) in self._suspects

    def _remember(self, definition: MetricDefinition, result: Evaluation) -> None:
        if definition.pk is not None:
            updated = getattr(definition, "updated_at", None)
            self._last_good[definition_key(definition)] = (
                updated,
                result.observations,
                time.time(),
            )

    def _kept(self, definition: MetricDefinition) -> Evaluation | None:
        """Return the last good value of a suspect batch member, or None."""
        key = definition_key(definition)
        with self._lock:
            if key not in self._suspects:
                return None
        found = self._last_good.get(key)
        # A value computed before the definition was edited is not its value.
        if found is None or found[0] != getattr(definition, "updated_at", None):
            return None
        return Evaluation(
            definition.name,
            KEPT,
            found[1],
            error=_("Its batch overran; its last good value is served."),
            computed_at=found[2],
        )

    def _find_slow(self, members: list[MetricDefinition], seconds: float) -> None:
        """Run each member of a batch that overran alone, in the background.

        Members that succeed alone stay batched (and their value is kept);
        the ones that fail or time out alone run on their own from then on.
        """
        keys = [definition_key(d) for d in members if d.pk is not None]
        with self._lock:
            if any(key in self._suspects for key in keys):
                return  # already being looked for
            self._suspects.update(keys)
            if self._background is None:
                self._background = _pool(1)
            future = self._background.submit(lambda: self._run_alone(members, seconds))
            for key in keys:
                self._running[key] = future
        future.add_done_callback(lambda f: self._finished(keys, f))

    def _run_alone(self, members: list[MetricDefinition], seconds: float) -> None:
        alone_seconds: dict[Any, float] = {}
        for definition in members:
            try:
                (result,) = _evaluate_on_worker([definition], seconds)
            except Exception:  # noqa: BLE001 - _evaluate_on_worker does not raise
                result = Evaluation(definition.name, ERROR)
            key = definition_key(definition)
            if result.outcome == SUCCESS:
                self._remember(definition, result)
            # Slow even alone (a callback inside the count is not cut by the
            # database's statement timeout), or failing: it runs on its own.
            slow = result.outcome != SUCCESS or result.seconds > seconds
            if slow:
                logger.info(
                    "Metric %s is slow or fails alone (%s); it runs on its own.",
                    definition.name,
                    result.error or f"{result.seconds:.3g} s",
                )
            else:
                alone_seconds[key] = result.seconds
            with self._lock:
                if slow:
                    self._alone.add(key)
                self._suspects.discard(key)
        if len(alone_seconds) == len(members) > 1:
            # Nobody is slow alone: together they are too much for the timeout.
            self._split(members, alone_seconds, seconds)

    def _split(
        self,
        members: list[MetricDefinition],
        alone_seconds: dict[Any, float],
        seconds: float,
    ) -> None:
        """Put the members of a batch into parts that each fit half the timeout.

        Largest first, each into the first part with room (by the time it took
        alone); at least two parts, so every overrun halves the batch at worst.
        """
        room = seconds / 2
        totals: list[float] = []
        parts: list[list[Any]] = []
        for key, took in sorted(alone_seconds.items(), key=lambda kv: -kv[1]):
            fits = [n for n, total in enumerate(totals) if total + took <= room]
            if fits:
                totals[fits[0]] += took
                parts[fits[0]].append(key)
            else:
                totals.append(took)
                parts.append([key])
        if len(parts) == 1:
            parts = [parts[0][::2], parts[0][1::2]]
        with self._lock:
            for keys in parts:
                self._next_part += 1
                for key in keys:
                    self._parts[key] = self._next_part
        logger.info(
            "Metrics %s overran their timeout of %g s together but not alone; "
            "they now run in %d smaller batches.",
            ", ".join(d.name for d in members),
            seconds,
            len(parts),
        )

    def _is_running(self, definition: MetricDefinition) -> bool:
        with self._lock:
            return (
                definition.pk is not None
                and definition_key(definition) in self._running
            )

    def _start(self, definitions: list[MetricDefinition], seconds: float) -> Future:
        keys = [definition_key(d) for d in definitions if d.pk is not None]
        with self._lock:
            future = self._pool.submit(
                lambda: _evaluate_on_worker(definitions, seconds)
            )
            for key in keys:
                self._running[key] = future
        # Outside the lock: a future that is already done runs this at once.
        future.add_done_callback(lambda f: self._finished(keys, f))
        return future

    def _finished(self, keys: list[Any], future: Future) -> None:
        with self._lock:
            for key in keys:
                if self._running.get(key) is future:
                    del self._running[key]

    def on_each_worker(self, fn: Callable[[], Any]) -> None:
        """Run `fn` once on every idle worker thread."""
        self._pool.broadcast(fn)
        if self._background is not None:
            self._background.broadcast(fn)

    def close_connections(self) -> None:
        """Close the database connections the worker threads hold."""
        self.on_each_worker(connections.close_all)


def serve_scheduled(definitions: Sequence[MetricDefinition]) -> dict[int, Evaluation]:
    """Return {index: result} for the scheduled definitions, from the shared store.

    A scrape never evaluates them: it serves what the last background refresh
    stored, unless that is older than STALE_INTERVALS intervals.
    """
    scheduled = [i for i, d in enumerate(definitions) if _interval(d)]
    if not scheduled:
        return {}
    alias = router.db_for_read(store.ScheduledValue)
    try:
        with savepoint_if_in_transaction(alias):
            found = store.read([definitions[i] for i in scheduled], using=alias)
    except DatabaseError as exc:
        error = _("The stored values cannot be read: %(error)s") % {
            "error": describe(exc)
        }
        return {
            i: Evaluation(definitions[i].name, ERROR, error=error) for i in scheduled
        }
    now = time.time()
    return {
        i: _served(definitions[i], found.get(n), now) for n, i in enumerate(scheduled)
    }


def _served(
    definition: MetricDefinition, stored: store.Stored | None, now: float
) -> Evaluation:
    interval = _interval(definition)
    if stored is None or stored.observations is None:
        if stored is not None and stored.error:
            return Evaluation(
                definition.name, ERROR, error=stored.error, seconds=stored.seconds or 0
            )
        return Evaluation(
            definition.name,
            PENDING,
            error=_("Not refreshed yet: its first refresh is under way or due."),
        )
    age = now - stored.computed_at
    if age > validators.STALE_INTERVALS * interval:
        return Evaluation(
            definition.name,
            STALE,
            error=_(
                "Its last refresh was %(age)d s ago, more than %(count)d intervals "
                "of %(interval)d s: is any process refreshing (METRICDEMO['REFRESH'])?"
            )
            % {"age": age, "count": validators.STALE_INTERVALS, "interval": interval},
            computed_at=stored.computed_at,
        )
    return Evaluation(
        definition.name,
        STORED,
        stored.observations,
        seconds=stored.seconds or 0.0,
        computed_at=stored.computed_at,
    )


def _interval(definition: MetricDefinition) -> int:
    return getattr(definition, "refresh_interval", None) or 0


def read_alias(definition: MetricDefinition) -> str:
    """Return the database alias a definition's evaluation reads.

    A row count reads METRICDEMO['DATABASE'] or its model's read database; a
    callback, where the router sends reads of the definitions.
    """
    source = sources.SOURCES.get(definition.source)
    if source is not None and source.batchable:
        try:
            return routing.model_database(routing.resolve_model(definition.model))
        except LookupError:
            pass
    return router.db_for_read(type(definition))


def _pool(threads: int) -> WorkerPool:
    # A thread gives back its database connections when it leaves and when it
    # has been idle for a while, so idle evaluation threads hold none.
    return WorkerPool(
        threads,
        on_retire=connections.close_all,
        on_idle=connections.close_all,
        idle_seconds=idle_seconds,
    )


#: The longest an idle evaluation thread keeps its database connections.
IDLE_MAX = 60.0


def idle_seconds() -> float:
    """Return how long an idle evaluation thread keeps its connections.

    CONN_MAX_AGE, as Django keeps a request's connection, but at most
    IDLE_MAX, and never for ever (CONN_MAX_AGE None).
    """
    ages = [
        IDLE_MAX if age is None else age
        for age in (
            connections.settings[alias].get("CONN_MAX_AGE", 0)
            for alias in connections.settings
        )
    ]
    return min(IDLE_MAX, max(ages, default=0))


_evaluator: PerProcess[Evaluator] = PerProcess(
    lambda: Evaluator(int(app_settings.EVALUATION_THREADS))
)


def get_evaluator() -> Evaluator:
    """Return the process's evaluator, created on first use."""
    return _evaluator.get()


def evaluate_here(definition: MetricDefinition) -> Evaluation:
    """Evaluate one definition in this thread, with no timeout; never raise."""
    started = time.perf_counter()
    source = sources.SOURCES.get(definition.source)
    try:
        if source is None:
            raise EvaluationError(
                _("Unknown source %(source)r.") % {"source": definition.source}
            )
        if source.uses_database:
            with savepoint_if_in_transaction(router.db_for_read(type(definition))):
                pairs = sources.observe(definition)
        else:
            pairs = sources.observe(definition)
    except Exception as exc:  # noqa: BLE001 - one definition must not fail the rest
        return Evaluation(
            definition.name, ERROR, error=describe(exc), seconds=_since(started)
        )
    return _exportable(
        Evaluation(definition.name, SUCCESS, pairs, seconds=_since(started))
    )


def _exportable(result: Evaluation) -> Evaluation:
    """Turn a success whose attributes cannot be encoded into an error."""
    problem = encoding_problem(result.observations) if result.ok else None
    if problem is None:
        return result
    return Evaluation(result.name, ERROR, error=problem, seconds=result.seconds)


def _evaluate_on_worker(
    definitions: list[MetricDefinition], seconds: float
) -> list[Evaluation]:
    source = sources.SOURCES[definitions[0].source]
    started = time.perf_counter()
    try:
        if not source.uses_database:
            return [evaluate_here(definitions[0])]
        connection = connections[read_alias(definitions[0])]
        connection.close_if_unusable_or_obsolete()
        results = _observe_with_timeout(connection, source, definitions, seconds)
        failed = any(r.outcome in (ERROR, _BATCH_FAILED) for r in results)
        if failed and connection.errors_occurred and connection.connection is not None:
            if not connection.is_usable():
                # A kept connection died with its server (a restart): try once
                # more on a new one rather than fail until CONN_MAX_AGE ends.
                connection.close()
                results = _observe_with_timeout(
                    connection, source, definitions, seconds
                )
        return results
    except Exception as exc:  # noqa: BLE001 - for example the database refused to connect
        return [
            Evaluation(d.name, ERROR, error=describe(exc), seconds=_since(started))
            for d in definitions
        ]
    finally:
        # Honour CONN_MAX_AGE as a request does, for every connection the
        # evaluation (or a callback's own queries) opened on this thread.
        for connection in connections.all(initialized_only=True):
            connection.close_if_unusable_or_obsolete()


def _observe_with_timeout(
    connection: BaseDatabaseWrapper,
    source: sources.Source,
    definitions: list[MetricDefinition],
    seconds: float,
) -> list[Evaluation]:
    with statement_timeout(connection, seconds):
        if source.batchable:
            return _count(definitions)
        return [evaluate_here(definitions[0])]


def _count(definitions: list[MetricDefinition]) -> list[Evaluation]:
    started = time.perf_counter()
    try:
        found = rowquery.compute_rows(definitions)
    except Exception as exc:  # noqa: BLE001 - the statement failed as a whole
        outcome = _BATCH_FAILED if len(definitions) > 1 else ERROR
        error, seconds = describe(exc), _since(started)
        return [
            Evaluation(d.name, outcome, error=error, seconds=seconds)
            for d in definitions
        ]
    seconds = _since(started)
    return [
        Evaluation(d.name, ERROR, error=str(item), seconds=seconds)
        if isinstance(item, EvaluationError)
        else _exportable(
            Evaluation(
                d.name, SUCCESS, with_constant_attributes(d, item), seconds=seconds
            )
        )
        for d, item in zip(definitions, found, strict=True)
    ]


def _within_budget(seconds: float, deadline: float | None) -> float:
    """Return how long a task may run: its timeout, cut to what is left."""
    if deadline is None:
        return seconds
    return min(seconds, deadline - time.monotonic())


def _batch_overran(definition: MetricDefinition, seconds: float) -> Evaluation:
    return Evaluation(
        definition.name,
        TIMEOUT,
        error=_(
            "Its batch gave no result within the timeout of %(seconds)g s; each "
            "member now runs alone in the background to find the slow one."
        )
        % {"seconds": seconds},
        seconds=seconds,
    )


def _out_of_budget(definition: MetricDefinition, waited: float) -> Evaluation:
    budget = validators.scrape_budget()
    return Evaluation(
        definition.name,
        TIMEOUT,
        error=_(
            "The scrape budget, METRICDEMO['SCRAPE_TIMEOUT'] (%(budget)s s), ran "
            "out before this evaluation finished; it is left out of this scrape."
        )
        % {"budget": "?" if budget is None else f"{budget:g}"},
        seconds=max(0.0, waited),
    )


def definition_key(definition: MetricDefinition) -> tuple[Any, str]:
    """Return what tells one definition from another while it is evaluated."""
    return (definition.pk, definition.name)


@contextmanager
def statement_timeout(
    connection: BaseDatabaseWrapper, seconds: float
) -> Iterator[None]:
    """Bound the queries run in this block in the database itself, where it can.

    PostgreSQL and MariaDB/MySQL get a session timeout, set again only when it
    changes; SQLite gets a progress handler that interrupts the query.
    """
    connection.ensure_connection()
    vendor = connection.vendor
    if vendor == "sqlite":
        deadline = time.monotonic() + seconds
        raw = connection.connection
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            yield
        finally:
            raw.set_progress_handler(None, 0)
        return
    statement = None
    if vendor == "postgresql":
        statement = f"SET statement_timeout = {int(seconds * 1000)}"
    elif vendor == "mysql":
        statement = (
            f"SET SESSION max_statement_time = {seconds:.3f}"
            if connection.mysql_is_mariadb
            else f"SET SESSION max_execution_time = {int(seconds * 1000)}"
        )
    # Remember the raw connection itself, not its id(): a new connection may
    # reuse the id of a closed one, and its session has no timeout yet.
    raw, done = connection.connection, getattr(connection, "_metricdemo_timeout", None)
    if statement and (done is None or done[0] is not raw or done[1] != statement):
        with connection.cursor() as cursor:
            cursor.execute(statement)
        connection._metricdemo_timeout = (raw, statement)
    yield


def describe(exc: BaseException) -> str:
    """Return a one-line description of why an evaluation failed."""
    if isinstance(exc, EvaluationError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _since(started: float) -> float:
    return time.perf_counter() - started


def savepoint_if_in_transaction(using: str) -> AbstractContextManager:
    """Return a savepoint inside a transaction, and a no-op context outside one."""
    # On PostgreSQL a failed query aborts the surrounding transaction; a
    # savepoint keeps the caller's transaction usable. Outside a transaction
    # (the usual scrape) no savepoint, and no extra query, is needed.
    if connections[using].in_atomic_block:
        return transaction.atomic(using=using)
    return nullcontext()
