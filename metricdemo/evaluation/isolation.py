"""Find the slow member of a batch that overran, and split batches that overran."""

from __future__ import annotations

import logging
import threading
from typing import Any

from metricdemo.evaluation.outcomes import Evaluation, Outcome
from metricdemo.models import MetricDefinition

logger = logging.getLogger("metricdemo")


class Isolation:
    """Say which row counts run alone, in smaller batches, or are suspects.

    A row count whose batch failed, or that was found slow, runs alone until
    it succeeds, so one bad definition cannot sink the batch. The members of
    a batch that overran are suspects until the background has run each
    alone; members that overran together although none was slow alone run in
    smaller batches, one per part.
    """

    def __init__(self, lock: threading.RLock) -> None:
        # The evaluator's lock: it marks a batch's suspects and starts their
        # background run in one step.
        self._lock = lock
        self._alone: set[Any] = set()
        self._suspects: set[Any] = set()
        #: {key: part} of the members that run in smaller batches.
        self._parts: dict[Any, int] = {}
        self._next_part = 0

    def runs_alone(self, key: Any) -> bool:
        """Return whether the definition `key` runs on its own."""
        return key in self._alone

    def part_of(self, key: Any) -> int | None:
        """Return the smaller batch `key` runs in, or None for the usual batch."""
        return self._parts.get(key)

    def run_alone(self, key: Any) -> None:
        """Run `key` on its own from now on, until it succeeds alone."""
        self._alone.add(key)

    def succeeded_alone(self, key: Any) -> None:
        """Let `key` join batches again: it succeeded on its own."""
        self._alone.discard(key)

    def is_suspect(self, key: Any) -> bool:
        """Return whether `key` waits for the background to find a slow member."""
        with self._lock:
            return key in self._suspects

    def suspect(self, keys: list[Any]) -> bool:
        """Make suspects of a batch's members; False if they are looked into already."""
        with self._lock:
            if any(key in self._suspects for key in keys):
                return False
            self._suspects.update(keys)
            return True

    def judge(
        self, definition: MetricDefinition, key: Any, result: Evaluation, seconds: float
    ) -> bool:
        """Clear a suspect by its result alone; return whether it is slow, and log so.

        Slow even alone (a callback inside the count is not cut by the
        database's statement timeout), or failing: it runs on its own.
        """
        slow = result.outcome != Outcome.SUCCESS or result.seconds > seconds
        if slow:
            logger.info(
                "Metric %s is slow or fails alone (%s); it runs on its own.",
                definition.name,
                result.error or f"{result.seconds:.3g} s",
            )
        with self._lock:
            if slow:
                self._alone.add(key)
            self._suspects.discard(key)
        return slow

    def split(
        self,
        members: list[MetricDefinition],
        alone_seconds: dict[Any, float],
        seconds: float,
    ) -> None:
        """Put the members of a batch into parts that each fit half the timeout; log.

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
