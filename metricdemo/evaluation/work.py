"""The work of one evaluation task, inline or on a worker thread.

A task is one definition, or a batch of row counts that share one statement:
it runs its source inside the database's own statement timeout, retries once
on a new connection when a kept one died with its server, and checks that
the exposition can carry what it found. The evaluator decides what runs
where and how long to wait; this module only does the work and never raises.
"""

from __future__ import annotations

import time
from typing import Any

from django.db import connections, router
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils.translation import gettext as _

from metricdemo import routing, sources
from metricdemo.database import savepoint_if_in_transaction, statement_timeout
from metricdemo.evaluation.outcomes import Evaluation, Outcome
from metricdemo.models import MetricDefinition
from metricdemo.observations import (
    EvaluationError,
    counter_problem,
    describe,
    encoding_problem,
    shape_problem,
)

# A batch statement failed; its definitions are evaluated again one by one.
BATCH_FAILED = "batch_failed"


def definition_database(definition: MetricDefinition) -> str:
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
            definition.name, Outcome.ERROR, error=describe(exc), seconds=since(started)
        )
    return checked(
        definition,
        Evaluation(definition.name, Outcome.SUCCESS, pairs, seconds=since(started)),
    )


def checked(definition: MetricDefinition, result: Evaluation) -> Evaluation:
    """Turn a result the exposition cannot carry into an error of its definition.

    Its attributes must encode as UTF-8, and a counter's values may not be
    below zero (OpenMetrics parsers refuse the whole exposition for one).
    """
    if not result.ok:
        return result
    problem = (
        encoding_problem(result.observations)
        or shape_problem(definition.kind, result.observations)
        or counter_problem(definition.kind, result.observations)
    )
    if problem is None:
        return result
    return Evaluation(result.name, Outcome.ERROR, error=problem, seconds=result.seconds)


def run_task(definitions: list[MetricDefinition], seconds: float) -> list[Evaluation]:
    """Run one task: a definition, or row counts that share a statement."""
    source = sources.SOURCES[definitions[0].source]
    started = time.perf_counter()
    try:
        if not source.uses_database:
            return [evaluate_here(definitions[0])]
        connection = connections[definition_database(definitions[0])]
        connection.close_if_unusable_or_obsolete()
        results = _observe_with_timeout(connection, source, definitions, seconds)
        failed = any(r.outcome in (Outcome.ERROR, BATCH_FAILED) for r in results)
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
            Evaluation(
                d.name, Outcome.ERROR, error=describe(exc), seconds=since(started)
            )
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
        found = sources.observe_rows(definitions)
    except Exception as exc:  # noqa: BLE001 - the statement failed as a whole
        outcome = BATCH_FAILED if len(definitions) > 1 else Outcome.ERROR
        error, seconds = describe(exc), since(started)
        return [
            Evaluation(d.name, outcome, error=error, seconds=seconds)
            for d in definitions
        ]
    seconds = since(started)
    return [
        Evaluation(d.name, Outcome.ERROR, error=str(item), seconds=seconds)
        if isinstance(item, EvaluationError)
        else checked(d, Evaluation(d.name, Outcome.SUCCESS, item, seconds=seconds))
        for d, item in zip(definitions, found, strict=True)
    ]


def definition_key(definition: MetricDefinition) -> tuple[Any, str]:
    """Return what tells one definition from another while it is evaluated."""
    return (definition.pk, definition.name)


def since(started: float) -> float:
    """Return the seconds since `started` (a time.perf_counter() value)."""
    return time.perf_counter() - started
