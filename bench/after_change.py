"""Section 3: the first scrape after one definition changes, against a steady one."""

from __future__ import annotations

import gc
import statistics
import time

from bench import statements, workload
from bench.config import Config
from bench.progress import progress
from bench.scrapes import Scrapes
from bench.table import ms, ratio, render, verdict
from metricdemo.models import MetricDefinition

CHANGE_EXTRA = 0.050  # target: seconds more for the first scrape after a change


def measure(size: int, config: Config, scrapes: Scrapes) -> str:
    """Time steady scrapes against scrapes right after one definition's edit."""
    progress(f"first scrape after a change: N={size}, {config.change_rounds} pairs")
    definition = MetricDefinition.objects.get(name=workload.series_name(0))

    def edit() -> None:
        definition.value += 1
        definition.save()

    steady, changed = [], []
    for round_number in range(config.warmup + config.change_rounds):
        # The collector is paused, as in every interleaved measurement.
        gc.collect()
        gc.disable()
        try:
            started = time.perf_counter()
            scrapes.endpoint()
            steady_seconds = time.perf_counter() - started
            edit()
            started = time.perf_counter()
            scrapes.endpoint()
            changed_seconds = time.perf_counter() - started
        finally:
            gc.enable()
        if round_number >= config.warmup:
            steady.append(steady_seconds)
            changed.append(changed_seconds)
    steady_statements = len(statements.steady(scrapes.endpoint))
    edit()
    after_statements = len(statements.of_one(scrapes.endpoint))
    steady_median = statistics.median(steady)
    changed_median = statistics.median(changed)
    # Each pair was timed moments apart: the median of the differences.
    extra = statistics.median(c - s for c, s in zip(changed, steady, strict=True))
    after_steady = statistics.median(
        c / s for c, s in zip(changed, steady, strict=True)
    )
    table = render(
        [
            "N",
            "pairs",
            "steady",
            "after change",
            "extra",
            "after/steady",
            "SQL steady",
            "SQL after",
            f"extra <= {CHANGE_EXTRA * 1000:g} ms",
        ],
        [
            [
                size,
                config.change_rounds,
                ms(steady_median),
                ms(changed_median),
                ms(extra),
                ratio(after_steady),
                steady_statements,
                after_statements,
                verdict(extra <= CHANGE_EXTRA),
            ]
        ],
    )
    return (
        "3. First scrape after one definition changes (endpoint, ms)\n"
        + table
        + "\n\nEach pair: a steady scrape, then save() of one definition's value "
        "(not timed), then the scrape that reloads the definitions."
    )
