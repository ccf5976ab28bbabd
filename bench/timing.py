"""Time several ways of doing the same work side by side and take medians."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class Samples:
    """Seconds per run of each case, one entry per round."""

    seconds: dict[str, list[float]]

    def __getitem__(self, name: str) -> float:
        """Return the median seconds of `name`."""
        return statistics.median(self.seconds[name])

    def ratio(self, name: str, reference: str) -> float:
        """Return the median of the per-round ratios of `name` to `reference`.

        Both were timed in the same round, moments apart, so load that comes
        and goes on the machine cancels out of each ratio.
        """
        return statistics.median(
            a / b
            for a, b in zip(self.seconds[name], self.seconds[reference], strict=True)
        )


def interleaved(
    cases: dict[str, Callable[[], Any]], *, rounds: int, warmup: int
) -> Samples:
    """Run every case once per round and return the timings.

    The cases take turns (A B C, B C A, C A B, ...) so that drift in the
    machine's speed falls on all of them alike; warm-up rounds are not counted.
    The garbage collector is paused while a round runs, as timeit does: a full
    collection would otherwise land on whichever case happens to cross its
    threshold, which with a fixed rotation is mostly the same one.
    `with_collector` measures what the collector adds.
    """
    names = list(cases)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(warmup + rounds):
        gc.collect()
        gc.disable()
        try:
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                started = time.perf_counter()
                cases[name]()
                elapsed = time.perf_counter() - started
                if round_number >= warmup:
                    samples[name].append(elapsed)
        finally:
            gc.enable()
    return Samples(samples)


def with_collector(work: Callable[[], Any], times: int) -> tuple[float, float]:
    """Return the mean seconds of `times` runs in a row, collector on and paused.

    Runs in a row let the collector work at its natural pace, so the
    difference is what its collections cost per run in a steady state.
    """

    def mean(enabled: bool) -> float:
        gc.collect()
        if not enabled:
            gc.disable()
        try:
            started = time.perf_counter()
            for _ in range(times):
                work()
            return (time.perf_counter() - started) / times
        finally:
            gc.enable()

    work()
    return mean(True), mean(False)
