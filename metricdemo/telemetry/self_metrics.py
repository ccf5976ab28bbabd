"""Own the app's self-metrics: evaluations, their time, loads, active definitions."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from opentelemetry import metrics as otel_metrics
from opentelemetry.metrics import CallbackOptions, Observation

from metricdemo import evaluation
from metricdemo.evaluation import Outcome
from metricdemo.reserved import SELF_METRICS


@dataclass
class DefinitionStats:
    """What the self-metrics report about one definition."""

    outcomes: Counter = field(default_factory=Counter)
    seconds: float | None = None
    last_success: float | None = None


class SelfMetrics:
    """Count what happens to the definitions, and report it as the app's own metrics."""

    def __init__(self, meter: otel_metrics.Meter) -> None:
        """Create the instruments about loads and active definitions on `meter`.

        The per-definition ones are made on the definitions' own provider
        (add_per_definition()): the SDK keeps a series' state for as long as
        its provider lives, so on the long-lived one every definition ever
        evaluated, deleted ones included, would be collected on every scrape.
        """
        self._stats: dict[str, DefinitionStats] = {}
        self._loads: Counter = Counter()
        self._active = 0
        self._create_instruments(meter)

    def record(self, name: str, result: evaluation.Evaluation) -> None:
        """Count one evaluation of the definition `name`, with its time."""
        stats = self._stats.get(name)
        if stats is None:
            stats = self._stats[name] = DefinitionStats()
        stats.outcomes[result.outcome] += 1
        if result.outcome != Outcome.CACHED:
            stats.seconds = result.seconds
        if result.computed_at is not None:
            # Served from a refresh (this process's or another's): its time.
            stats.last_success = result.computed_at
        elif result.outcome == Outcome.SUCCESS:
            stats.last_success = time.time()

    def count_load(self, outcome: str) -> None:
        """Count one check for changed definitions: unchanged, reloaded or error."""
        self._loads[outcome] += 1

    def loaded(self, active: int, evaluated: Collection[str]) -> None:
        """Report `active` definitions; forget the stats of any not in `evaluated`.

        Per-definition series describe the definitions evaluated on every
        scrape (and those left out, as errors).
        """
        self._active = active
        for name in set(self._stats) - set(evaluated):
            del self._stats[name]

    def add_per_definition(self, meter: otel_metrics.Meter) -> None:
        """Create the per-definition instruments on the definitions' meter."""

        def per_definition(read: Callable[[DefinitionStats], float | None]):
            def callback(options: CallbackOptions) -> Iterable[Observation]:
                for name, stats in list(self._stats.items()):
                    value = read(stats)
                    if value is not None:
                        yield Observation(value, {"definition": name})

            return callback

        def evaluations(options: CallbackOptions) -> Iterable[Observation]:
            # Only outcomes that happened: a series for every outcome of every
            # definition, most of them zero, would cost more than the
            # definitions themselves.
            for name, stats in list(self._stats.items()):
                for outcome, count in list(stats.outcomes.items()):
                    yield Observation(count, {"definition": name, "outcome": outcome})

        meter.create_observable_counter(
            SELF_METRICS["evaluations"][0],
            callbacks=[evaluations],
            unit="{evaluation}",
            description="Evaluations of each metric definition, by outcome.",
        )
        meter.create_observable_gauge(
            SELF_METRICS["duration"][0],
            callbacks=[per_definition(lambda stats: stats.seconds)],
            unit="s",
            description="Time the last evaluation of each metric definition took.",
        )
        meter.create_observable_gauge(
            SELF_METRICS["last_success"][0],
            callbacks=[per_definition(lambda stats: stats.last_success)],
            unit="s",
            description="Unix time of each metric definition's last successful "
            "evaluation.",
        )

    def _create_instruments(self, meter: otel_metrics.Meter) -> None:
        meter.create_observable_counter(
            SELF_METRICS["loads"][0],
            callbacks=[
                lambda options: [
                    Observation(count, {"outcome": outcome})
                    for outcome, count in list(self._loads.items())
                ]
            ],
            unit="{check}",
            description="Checks for changed metric definitions, by outcome.",
        )
        meter.create_observable_gauge(
            SELF_METRICS["active"][0],
            callbacks=[lambda options: [Observation(self._active)]],
            unit="{definition}",
            description="Enabled metric definitions this process exports.",
        )
