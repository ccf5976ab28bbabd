"""Evaluate definitions: cheap sources inline, the rest on worker threads.

Row counts and callbacks run on the threads of `workers`, bounded by their
timeouts (`budget`); a batch that overran is looked into by `isolation`.
Values not computed now come from `metricdemo.values`: the scheduled table,
the shared cache, and the last good value kept in this process.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from django.db import connections
from django.utils.translation import gettext as _

from metricdemo import outages, sources
from metricdemo.conf import app_settings
from metricdemo.database import (
    idle_seconds,
)
from metricdemo.evaluation import slow
from metricdemo.evaluation.budget import (
    batch_overran,
    out_of_budget,
    scrape_deadline,
    timeout_of,
    within_budget,
)
from metricdemo.evaluation.isolation import Isolation
from metricdemo.evaluation.outcomes import Evaluation, Outcome
from metricdemo.evaluation.work import (
    BATCH_FAILED,
    checked,
    definition_database,
    definition_key,
    evaluate_here,
    run_task,
)
from metricdemo.models import MetricDefinition
from metricdemo.rowquery.plan import COUNTS_PER_STATEMENT
from metricdemo.values import scheduled, shared_cache
from metricdemo.values.fingerprint import fingerprint
from metricdemo.values.kept import KeptValues
from metricdemo.workers import PerProcess, WorkerPool

logger = logging.getLogger("metricdemo")


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


def evaluate_posted(
    definition: MetricDefinition, *, timeout: float | None = None
) -> Evaluation:
    """Evaluate a definition as a form posted it, never from a value kept for one.

    The form may carry a stored definition's id and name with other fields:
    it is evaluated as a new, unsaved definition, so neither the stored
    definition's kept, cached or scheduled value nor its evaluation in
    flight can answer for it.
    """
    posted = copy.copy(definition)
    posted.pk = None
    return evaluate(posted, timeout=timeout)


def serve_scheduled(
    definitions: Sequence[MetricDefinition], deadline: float | None = None
) -> dict[int, Evaluation]:
    """Return {index: Evaluation} of the scheduled definitions, as a scrape serves them.

    Their values come from the scheduled table (one query), never from an
    evaluation now: stored, pending, stale, or an error.
    """
    # Values computed elsewhere are checked as fresh ones are: the kind
    # may have changed since (a gauge made a counter keeps its value).
    return {
        i: checked(
            definitions[i],
            Evaluation(
                definitions[i].name,
                Outcome(served.outcome),
                served.observations,
                served.error,
                served.seconds,
                served.computed_at,
            ),
        )
        for i, served in scheduled.serve(definitions, deadline).items()
    }


class Evaluator:
    """Run evaluations: cheap sources inline, the rest on worker threads.

    A row count or callback runs on a worker thread so that the caller can stop
    waiting at its timeout. An evaluation that is still running is never
    started a second time; the definition counts as timed out until it ends.
    """

    def __init__(self, threads: int) -> None:
        self._pool = _pool(threads)
        self._running: dict[Any, Future] = {}
        self._background: WorkerPool | None = None
        # Reentrant: isolation takes it too, inside _find_slow's hold.
        self._lock = threading.RLock()
        self._isolation = Isolation(self._lock)
        # The last good values, which the suspect members of a batch that
        # overran, slow definitions and evaluations the budget left no time
        # for serve meanwhile.
        self._kept_values = KeptValues()
        self._slow = slow.SlowDefinitions()
        self._refreshing: WorkerPool | None = None
        self._refreshes: list[Future] = []
        # Definitions the budget left out last time: their tasks start first.
        self._missed: set[Any] = set()

    def collect(
        self,
        definitions: Sequence[MetricDefinition],
        *,
        deadline: float | None = None,
    ) -> list[Evaluation]:
        """Serve stored and cached values, then evaluate and cache the rest.

        Reads the scheduled table and the shared cache, and writes fresh
        values to the cache. Nothing is waited for past `deadline` (a
        time.monotonic() value; by default the scrape budget from now).
        """
        if deadline is None:
            deadline = scrape_deadline()
        results: list[Evaluation | None] = [None] * len(definitions)
        for i, served in serve_scheduled(definitions, deadline).items():
            results[i] = served
        for i, observations in shared_cache.read(definitions, deadline).items():
            if results[i] is None:
                results[i] = checked(
                    definitions[i],
                    Evaluation(definitions[i].name, Outcome.CACHED, observations),
                )
        todo = [i for i, result in enumerate(results) if result is None]
        fresh = self.evaluate_many([definitions[i] for i in todo], deadline=deadline)
        for i, result in zip(todo, fresh, strict=True):
            results[i] = result
        shared_cache.write(
            [
                (definitions[i], result.observations)
                for i, result in zip(todo, fresh, strict=True)
                if result.outcome == Outcome.SUCCESS
            ],
            deadline,
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
        silent = outages.services().unanswered()
        for i, definition in enumerate(definitions):
            source = sources.SOURCES.get(definition.source)
            if source is None or not source.blocking:
                results[i] = evaluate_here(definition)
                continue
            served = self._serve_slow(definition)
            if served is not None:
                results[i] = served
                continue
            if self._is_running(definition):
                results[i] = self._last_good(
                    definition,
                    _(
                        "The previous evaluation is still running; its last "
                        "good value is served."
                    ),
                ) or Evaluation(
                    definition.name,
                    Outcome.TIMEOUT,
                    error=_("The previous evaluation is still running."),
                )
                continue
            if source.batchable and silent:
                alias = aliases.get(definition.model)
                if alias is None:
                    alias = aliases[definition.model] = definition_database(definition)
                if outages.database(alias) in silent:
                    results[i] = self._unanswered(definition, outages.database(alias))
                    continue
            seconds = timeout if timeout is not None else timeout_of(definition)
            if source.batchable and not self._isolation.runs_alone(
                definition_key(definition)
            ):
                alias = aliases.get(definition.model)
                if alias is None:
                    alias = aliases[definition.model] = definition_database(definition)
                part = self._isolation.part_of(definition_key(definition))
                batches.setdefault((alias, seconds, part), []).append(i)
            else:
                tasks.append(([i], seconds))
        for key, indices in batches.items():
            tasks.extend((part, key[1]) for part in _statements(definitions, indices))
        # What the budget left out last time goes first, so that a site too
        # large for one scrape is served in full over a few.
        with self._lock:
            missed = set(self._missed)
            self._missed.difference_update(definition_key(d) for d in definitions)
        tasks.sort(
            key=lambda task: (
                not any(definition_key(definitions[i]) in missed for i in task[0])
            )
        )
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
            wait = within_budget(seconds, budget_deadline)
            if wait <= 0:
                # Not started: it could only hold a thread past the scrape.
                for i in indices:
                    results[i] = self._left_out(definitions[i], 0.0)
                continue
            # When the budget is shorter, the database stops at it too.
            future = self._start([definitions[i] for i in indices], wait)
            waiting.append((indices, future, seconds, wait))
        retry: list[tuple[int, float]] = []
        for indices, future, seconds, wait in waiting:
            outcomes = _await(future, wait, budget_deadline)
            if outcomes is None and future.cancel():
                # It waited for a thread all along: no sign of slowness.
                outcomes = [self._left_out(definitions[i], wait) for i in indices]
            elif outcomes is None:
                self._pool.replace_stuck_worker(future)
                # Its timeout counts from when it began; if the budget ended
                # first, that says nothing about the definition.
                ran = time.monotonic() - future.begun[0]  # type: ignore[attr-defined]
                wait = wait if ran >= wait else ran
                outcomes = self._timed_out(definitions, indices, seconds, wait)
            for i, outcome in zip(indices, outcomes, strict=True):
                definition = definitions[i]
                if len(indices) == 1:
                    self._note_slowness(definition, outcome, seconds, wait)
                if outcome.outcome == BATCH_FAILED:
                    self._isolation.run_alone(definition_key(definition))
                    retry.append((i, seconds))
                    continue
                if len(indices) == 1 and outcome.outcome == Outcome.SUCCESS:
                    self._isolation.succeeded_alone(definition_key(definition))
                if outcome.outcome == Outcome.SUCCESS:
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
                    self._left_out(d, wait)
                    if wait < seconds
                    else batch_overran(d, seconds)
                )
                for d in members
            ]
        if wait < seconds:
            # The budget ran out first, which says nothing about the definition.
            return [self._left_out(definitions[i], wait) for i in indices]
        return [
            Evaluation(
                definitions[i].name,
                Outcome.TIMEOUT,
                error=_("No result within the timeout of %(seconds)g s.")
                % {"seconds": seconds},
                seconds=seconds,
            )
            for i in indices
        ]

    def is_suspect(self, definition: MetricDefinition) -> bool:
        """Return whether `definition` waits for the background to find a slow one."""
        return self._isolation.is_suspect(definition_key(definition))

    def _remember(self, definition: MetricDefinition, result: Evaluation) -> None:
        if definition.pk is not None:
            # Kept for this version of the definition alone: the hash of its
            # editable fields, so no other version, and no form posted with
            # its id and name, is ever answered with this value.
            self._kept_values.remember(
                definition_key(definition), fingerprint(definition), result.observations
            )

    def _unanswered(self, definition: MetricDefinition, service: str) -> Evaluation:
        """Return the last good value of a row count whose database does not answer."""
        error = outages.silent(service)
        return self._last_good(
            definition, error + " " + _("Its last good value is served.")
        ) or Evaluation(definition.name, Outcome.ERROR, error=error)

    def _kept(self, definition: MetricDefinition) -> Evaluation | None:
        """Return the last good value of a suspect batch member, or None."""
        if not self._isolation.is_suspect(definition_key(definition)):
            return None
        return self._last_good(
            definition, _("Its batch overran; its last good value is served.")
        )

    def _last_good(self, definition: MetricDefinition, why: str) -> Evaluation | None:
        """Return the last good value kept for this version of `definition`."""
        if definition.pk is None:
            return None
        found = self._kept_values.get(
            definition_key(definition), fingerprint(definition)
        )
        if found is None:
            return None
        observations, computed_at = found
        return Evaluation(
            definition.name,
            Outcome.KEPT,
            observations,
            error=why,
            computed_at=computed_at,
        )

    def _left_out(self, definition: MetricDefinition, waited: float) -> Evaluation:
        """Return what serves for an evaluation the budget left no time for.

        Its last good value if it has one, else a timeout; either way its task
        starts first next time.
        """
        if definition.pk is not None:
            with self._lock:
                self._missed.add(definition_key(definition))
        result = out_of_budget(definition, waited)
        return self._last_good(definition, result.error) or result

    def is_slow(self, definition: MetricDefinition) -> bool:
        """Return whether this process refreshes `definition` in the background."""
        return self.slow_reason(definition) is not None

    def slow_reason(self, definition: MetricDefinition) -> str | None:
        """Return why this process refreshes `definition` in the background, or None."""
        if definition.pk is None:
            return None
        found = self._slow.get(definition_key(definition), fingerprint(definition))
        return None if found is None else found[0]

    def _note_slowness(
        self,
        definition: MetricDefinition,
        result: Evaluation,
        seconds: float,
        wait: float,
    ) -> None:
        """Mark `definition` slow if it timed out or took over SLOW_EVALUATION."""
        if not slow.may_be_slow(definition):
            return
        key = definition_key(definition)
        timed_out = result.outcome == Outcome.TIMEOUT and wait >= seconds
        # An error after a long wait is slow too: a statement the database
        # cut at the timeout fails rather than times out.
        if timed_out or (
            result.outcome in (Outcome.SUCCESS, Outcome.ERROR)
            and result.seconds > slow.slow_seconds()
        ):
            why = _slowness(result, seconds if timed_out else result.seconds)
            self._slow.mark(key, fingerprint(definition), why, result.outcome)
            logger.info("Metric %s: %s", definition.name, why)

    def _serve_slow(self, definition: MetricDefinition) -> Evaluation | None:
        """Serve a slow definition without waiting, and refresh it if that is due.

        Returns None for a definition that is not slow.
        """
        if not slow.may_be_slow(definition):
            return None
        key, version = definition_key(definition), fingerprint(definition)
        found = self._slow.get(key, version)
        if found is None:
            return None
        why, outcome = found
        # An evaluation that timed out and still runs is its refresh: its
        # value is kept when it ends.
        if not self._is_running(definition) and self._slow.take_refresh(key):
            self._refresh_slow(definition, key, version)
        # With no good value yet, it counts as a timeout, or as the error
        # its last evaluation ended with.
        failed = Outcome.ERROR if outcome == Outcome.ERROR else Outcome.TIMEOUT
        return self._last_good(definition, why) or Evaluation(
            definition.name, failed, error=why
        )

    def _refresh_slow(
        self, definition: MetricDefinition, key: Any, version: Any
    ) -> None:
        """Evaluate a slow definition on a background thread; no scrape waits."""
        seconds = slow.refresh_timeout(definition)

        def refresh() -> None:
            try:
                (result,) = run_task([definition], seconds)
            except Exception:  # noqa: BLE001 - _evaluate_on_worker does not raise
                result = Evaluation(definition.name, Outcome.ERROR)
            why = None
            if result.outcome == Outcome.SUCCESS:
                self._remember(definition, result)
            if result.seconds > slow.slow_seconds():
                why = _slowness(result, result.seconds)
            self._slow.refreshed(key, version, why, result.outcome)

        with self._lock:
            if self._refreshing is None:
                self._refreshing = _pool(slow.REFRESH_THREADS)
            self._refreshes = [f for f in self._refreshes if not f.done()]
            self._refreshes.append(self._refreshing.submit(refresh))

    def wait_for_refreshes(self, timeout: float | None = None) -> None:
        """Wait for the background refreshes of slow definitions (for tests)."""
        with self._lock:
            pending = list(self._refreshes)
        for future in pending:
            future.result(timeout)

    def _find_slow(self, members: list[MetricDefinition], seconds: float) -> None:
        """Run each member of a batch that overran alone, in the background.

        Members that succeed alone stay batched (and their value is kept);
        the ones that fail or time out alone run on their own from then on.
        """
        keys = [definition_key(d) for d in members if d.pk is not None]
        with self._lock:
            if not self._isolation.suspect(keys):
                return  # already being looked for
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
                (result,) = run_task([definition], seconds)
            except Exception:  # noqa: BLE001 - _evaluate_on_worker does not raise
                result = Evaluation(definition.name, Outcome.ERROR)
            key = definition_key(definition)
            if result.outcome == Outcome.SUCCESS:
                self._remember(definition, result)
            if not self._isolation.judge(definition, key, result, seconds):
                alone_seconds[key] = result.seconds
        if len(alone_seconds) == len(members) > 1:
            # Nobody is slow alone: together they are too much for the timeout.
            self._isolation.split(members, alone_seconds, seconds)

    def _is_running(self, definition: MetricDefinition) -> bool:
        with self._lock:
            return (
                definition.pk is not None
                and definition_key(definition) in self._running
            )

    def _start(self, definitions: list[MetricDefinition], seconds: float) -> Future:
        keys = [definition_key(d) for d in definitions if d.pk is not None]
        begun: list[float] = []

        def task() -> list[Evaluation]:
            begun.append(time.monotonic())
            return run_task(definitions, seconds)

        with self._lock:
            future = self._pool.submit(task)
            # When it left the queue: its timeout counts from then.
            future.begun = begun  # type: ignore[attr-defined]
            future.submitted = time.monotonic()  # type: ignore[attr-defined]
            for key in keys:
                self._running[key] = future
        # Outside the lock: a future that is already done runs this at once.
        future.add_done_callback(lambda f: self._finished(keys, f, definitions))
        return future

    def _finished(
        self,
        keys: list[Any],
        future: Future,
        definitions: list[MetricDefinition] | None = None,
    ) -> None:
        with self._lock:
            for key in keys:
                if self._running.get(key) is future:
                    del self._running[key]
        if definitions is not None and not future.cancelled():
            # Kept even when no scrape waited any more: the next one serves it.
            try:
                results = future.result()
            except Exception:  # noqa: BLE001 - _evaluate_on_worker does not raise
                return
            for definition, result in zip(definitions, results, strict=False):
                if result.outcome == Outcome.SUCCESS:
                    self._remember(definition, result)

    def on_each_worker(self, fn: Callable[[], Any]) -> None:
        """Run `fn` once on every idle worker thread."""
        self._pool.broadcast(fn)
        for pool in (self._background, self._refreshing):
            if pool is not None:
                pool.broadcast(fn)

    def close_connections(self) -> None:
        """Close the database connections the worker threads hold."""
        self.on_each_worker(connections.close_all)


def _slowness(result: Evaluation, seconds: float) -> str:
    """Return why `result` makes its definition slow."""
    failure = result.error if result.outcome == Outcome.ERROR else ""
    return slow.reason(seconds, result.outcome == Outcome.TIMEOUT, failure)


def _await(
    future: Future, seconds: float, budget_deadline: float | None
) -> list[Evaluation] | None:
    """Wait for a task until `seconds` after it began, or the budget ends.

    Returns None if it did not end by then. A task that waited in the queue
    for a free thread gets its whole timeout once it begins; one that waited
    `seconds` without beginning is given up (and cancelled by the caller).
    """
    budget_end = math.inf if budget_deadline is None else budget_deadline
    queued_end = min(budget_end, future.submitted + seconds)  # type: ignore[attr-defined]
    while True:
        begun = future.begun  # type: ignore[attr-defined]
        end = min(budget_end, begun[0] + seconds) if begun else queued_end
        remaining = end - time.monotonic()
        # Not begun yet: look again shortly, to count its timeout from then.
        step = remaining if begun else min(remaining, 0.05)
        try:
            return future.result(max(0.0, step))
        except FutureTimeout:
            if time.monotonic() >= end:
                return None


def _statements(
    definitions: Sequence[MetricDefinition], indices: list[int]
) -> list[list[int]]:
    """Split a batch of row counts into tasks of one statement each.

    A task is waited for, timed out and looked into as a whole: one statement
    each keeps a large site's batch within its timeout, lets the threads run
    the statements side by side, and lets the scrape serve those that ended.
    Counts of one model and grouping stay together, as they share a pass.
    """
    if len(indices) <= COUNTS_PER_STATEMENT:
        return [indices]
    ordered = sorted(
        indices,
        key=lambda i: (
            str(definitions[i].model),
            str(getattr(definitions[i], "group_by", "") or ""),
        ),
    )
    return [
        ordered[start : start + COUNTS_PER_STATEMENT]
        for start in range(0, len(ordered), COUNTS_PER_STATEMENT)
    ]


def _pool(threads: int) -> WorkerPool:
    # A thread gives back its database connections when it leaves and when it
    # has been idle for a while, so idle evaluation threads hold none.
    return WorkerPool(
        threads,
        on_retire=connections.close_all,
        on_idle=connections.close_all,
        idle_seconds=idle_seconds,
    )


_evaluator: PerProcess[Evaluator] = PerProcess(
    lambda: Evaluator(int(app_settings.EVALUATION_THREADS))
)


def get_evaluator() -> Evaluator:
    """Return the process's evaluator, created on first use."""
    return _evaluator.get()
