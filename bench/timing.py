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
    machine's speed and the garbage collector's rhythm fall on all of them
    alike; warm-up rounds are not counted.
    """
    names = list(cases)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(warmup + rounds):
        gc.collect()
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            cases[name]()
            elapsed = time.perf_counter() - started
            if round_number >= warmup:
                samples[name].append(elapsed)
    return Samples(samples)
