"""Refresh scheduled definitions in the background, once across all processes.

Each process that serves metrics runs one refresher thread, started on its
first collection that includes a scheduled definition (never at startup).
Once a second it reads which refreshes are due, takes the lease of each with
one atomic UPDATE (values.scheduled.take_lease), evaluates the ones it took on threads
of its own and stores the values, which every process then serves.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from django.db import DatabaseError, connections, router
from django.utils import timezone

from metricdemo import evaluation
from metricdemo.conf import app_settings
from metricdemo.models import ChangeStamp, MetricDefinition
from metricdemo.observations import describe
from metricdemo.values import scheduled
from metricdemo.workers import PerProcess, WorkerPool

logger = logging.getLogger("metricdemo")

#: Seconds between two looks at what is due.
TICK = 1.0
#: Refreshes one process runs at once; each holds its leases meanwhile.
REFRESH_THREADS = 2
#: The environment variable that turns the refresher on (1) or off (0) for one
#: process, over METRICDEMO['REFRESH'].
ENVIRONMENT_VARIABLE = "METRICDEMO_REFRESH"


def enabled() -> bool:
    """Return whether this process refreshes scheduled definitions."""
    value = os.environ.get(ENVIRONMENT_VARIABLE, "").strip().lower()
    if value:
        return value not in {"0", "false", "no", "off"}
    return bool(app_settings.REFRESH)


def start_if_needed(definitions: Sequence[MetricDefinition]) -> None:
    """Start this process's refresher if a definition is scheduled and it may."""
    if any(getattr(d, "refresh_interval", None) for d in definitions) and enabled():
        get_refresher().ensure_started()


class Refresher:
    """Take due leases and refresh the definitions, in a thread of this process."""

    def __init__(self, threads: int = REFRESH_THREADS) -> None:
        #: Names this process in the lease rows: host, process id and a nonce.
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._threads = threads
        self._evaluator = evaluation.Evaluator(threads)
        self._jobs = WorkerPool(threads)
        self._definitions: list[MetricDefinition] = []
        self._token: str | None = None
        self._in_flight: set[Any] = set()
        self._jobs_running: list[Future] = []
        self._finished: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._failure: str | None = None

    def ensure_started(self) -> None:
        """Start the refresher thread unless it runs."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping.clear()
            self._thread = threading.Thread(
                target=self._loop, name="metricdemo-refresher", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread, after the refresh in progress is stored."""
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._evaluator.close_connections()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self.tick()
            self._wake.wait(TICK)
            self._wake.clear()
        self.wait_idle()
        connections.close_all()

    def tick(self) -> list[str]:
        """Store finished refreshes, then lease and start the due ones; never raise.

        Returns the names of the definitions this call started refreshing.
        """
        try:
            self.store_finished()
            self._reload()
            return self._start_due()
        except DatabaseError as exc:
            # Down, or not migrated yet: try again on the next tick.
            if self._failure != str(exc):
                self._failure = str(exc)
                logger.warning("Scheduled refreshes cannot run now: %s", exc)
            return []
        except Exception:  # noqa: BLE001 - the thread must keep running
            logger.exception("A scheduled refresh failed.")
            return []
        finally:
            for connection in connections.all(initialized_only=True):
                connection.close_if_unusable_or_obsolete()

    def wait_idle(self, timeout: float | None = None) -> None:
        """Wait for the refreshes in progress, then store them (for tests, stop)."""
        with self._lock:
            pending = list(self._jobs_running)
        for job in pending:
            try:
                job.result(timeout)
            except Exception:  # noqa: BLE001, S110 - store_finished reports it
                pass
        self.store_finished()

    def _reload(self) -> None:
        using = router.db_for_read(MetricDefinition)
        token = ChangeStamp.current(using)
        if token == self._token:
            return
        self._definitions = list(
            MetricDefinition.objects.using(using).filter(
                enabled=True, refresh_interval__gt=0
            )
        )
        scheduled.forget_others([d.pk for d in self._definitions])
        self._token = token

    def _start_due(self) -> list[str]:
        with self._lock:
            if len(self._jobs_running) >= self._threads:
                # Leases taken now would wait in a queue, and could expire there.
                return []
            busy = set(self._in_flight)
        leased = [
            definition
            for definition in scheduled.due(self._definitions)
            if evaluation.definition_key(definition) not in busy
            and scheduled.take_lease(
                definition, self.holder, evaluation.timeout_of(definition)
            )
        ]
        if leased:
            self._start(leased)
        return [d.name for d in leased]

    def _start(self, leased: list[MetricDefinition]) -> None:
        started = timezone.now()
        keys = [evaluation.definition_key(d) for d in leased]

        def refresh() -> None:
            try:
                results = self._evaluator.evaluate_many(leased)
            except Exception as exc:  # noqa: BLE001 - recorded as each one's error
                error = describe(exc)
                results = [
                    evaluation.Evaluation(d.name, evaluation.Outcome.ERROR, error=error)
                    for d in leased
                ]
            # Queued before the job ends, so that waiting for it is enough.
            self._finished.put((leased, started, results))
            self._wake.set()

        with self._lock:
            self._in_flight.update(keys)
            self._jobs_running.append(self._jobs.submit(refresh))

    def store_finished(self) -> None:
        """Write the results of the refreshes that ended, and free their leases."""
        while True:
            try:
                leased, started, results = self._finished.get_nowait()
            except queue.Empty:
                break
            try:
                for definition, result in zip(leased, results, strict=True):
                    self._store(definition, result, started)
            finally:
                with self._lock:
                    self._in_flight.difference_update(
                        evaluation.definition_key(d) for d in leased
                    )
        with self._lock:
            self._jobs_running = [j for j in self._jobs_running if not j.done()]

    def _store(
        self,
        definition: MetricDefinition,
        result: evaluation.Evaluation,
        started: Any,
    ) -> None:
        if result.outcome == evaluation.Outcome.SUCCESS:
            scheduled.save(
                definition,
                self.holder,
                started=started,
                outcome=result.outcome,
                observations=result.observations,
                seconds=result.seconds,
            )
        elif result.outcome == evaluation.Outcome.KEPT or self._evaluator.is_suspect(
            definition
        ):
            # Its batch overran: due again at once, to run alone once the
            # background has found the slow member.
            scheduled.release(definition, self.holder)
        else:
            scheduled.save(
                definition,
                self.holder,
                started=started,
                outcome=result.outcome,
                observations=None,
                seconds=result.seconds,
                error=result.error,
            )


_refresher: PerProcess[Refresher] = PerProcess(Refresher)


def get_refresher() -> Refresher:
    """Return this process's refresher, created (not started) on first use."""
    return _refresher.get()


def stop_refresher() -> None:
    """Stop this process's refresher if it runs (tests, shutdown)."""
    refresher = _refresher.take()
    if refresher is not None:
        refresher.stop()
