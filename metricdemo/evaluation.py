"""Evaluate definitions into observations, one at a time or for a whole collection."""

from __future__ import annotations

import time
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

from django.db import connections, router, transaction

from metricdemo import sources

SUCCESS = "success"
ERROR = "error"
TIMEOUT = "timeout"


@dataclass(frozen=True)
class Evaluation:
    """The outcome of evaluating one definition once."""

    name: str
    outcome: str
    observations: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Return whether the definition produced its series."""
        return self.outcome == SUCCESS


def evaluate(definition: Any, *, timeout: float | None = None) -> Evaluation:
    """Evaluate one definition (saved or not), never raising for its failures."""
    (result,) = evaluate_many([definition], timeout=timeout)
    return result


def evaluate_many(
    definitions: Iterable[Any], *, timeout: float | None = None
) -> list[Evaluation]:
    """Evaluate definitions in order; each failure is confined to its definition."""
    return [_evaluate_one(definition) for definition in definitions]


def _evaluate_one(definition: Any) -> Evaluation:
    started = time.perf_counter()
    source = sources.SOURCES.get(definition.source)
    try:
        if source is None:
            raise sources.EvaluationError(f"Unknown source {definition.source!r}.")
        if source.uses_database:
            with _savepoint_if_in_transaction(router.db_for_read(type(definition))):
                pairs = sources.observe(definition)
        else:
            pairs = sources.observe(definition)
    except Exception as exc:  # noqa: BLE001 - one definition must not fail the rest
        return Evaluation(
            definition.name, ERROR, error=describe(exc), seconds=_since(started)
        )
    return Evaluation(definition.name, SUCCESS, pairs, seconds=_since(started))


def describe(exc: BaseException) -> str:
    """Return a one-line description of why an evaluation failed."""
    if isinstance(exc, sources.EvaluationError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _since(started: float) -> float:
    return time.perf_counter() - started


def _savepoint_if_in_transaction(using: str):
    # On PostgreSQL a failed query aborts the surrounding transaction; a
    # savepoint keeps the caller's transaction usable. Outside a transaction
    # (the usual scrape) no savepoint, and no extra query, is needed.
    if connections[using].in_atomic_block:
        return transaction.atomic(using=using)
    return nullcontext()
