"""Own the definitions' instruments: load the enabled definitions, keep one each."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from django.db import DatabaseError, router
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
)

from metricdemo import evaluation, naming, outages, scheduler, sources
from metricdemo.distributions import Distribution
from metricdemo.evaluation import Outcome
from metricdemo.models import ChangeStamp, Kind, MetricDefinition
from metricdemo.observations import Observations
from metricdemo.telemetry.provider import (
    DefinitionsProvider,
    InstrumentKey,
    Reporter,
)
from metricdemo.telemetry.self_metrics import SelfMetrics
from metricdemo.values import history

logger = logging.getLogger("metricdemo")


def help_text(definition: MetricDefinition) -> str:
    """Return the HELP text a definition exports: its description, else its name.

    An empty HELP line tells a reader of /metrics nothing; the definition's
    name at least says which definition to look up in the admin.
    """
    description = definition.description or ""
    return description if description.strip() else definition.name


@dataclass(frozen=True)
class ActiveDefinition:
    """An enabled definition as loaded, with the key of its instrument."""

    key: InstrumentKey
    #: The detached row, for definitions evaluated per collection; None for
    #: static ones (constants), whose points are made once per load: a row
    #: costs about 1.5 KB, and a site may hold thousands of constants.
    definition: MetricDefinition | None

    @property
    def name(self) -> str:
        return self.key[0]


class DefinitionInstruments:
    """Keep one observable instrument per enabled definition, in step with the database.

    Each instrument's callback reports what the current definitions say about
    it. When a definition is deleted, disabled or changed into another
    instrument (a new name, kind, unit or description), the definitions move
    to a fresh DefinitionsProvider, swapped in under the collection lock, and
    the old one is shut down and freed with its instruments.
    """

    def __init__(
        self,
        self_metrics: SelfMetrics,
        new_provider: Callable[[], DefinitionsProvider],
    ) -> None:
        self._self_metrics = self_metrics
        self._new_provider = new_provider
        self._provider: DefinitionsProvider | None = None
        self._active: dict[InstrumentKey, ActiveDefinition] = {}
        # The provider's reporters hold the OpenTelemetry Observation objects
        # each instrument's callback yields, made from the evaluations'
        # (value, attributes) pairs once per collection; "points" here, so
        # that "observations" keeps meaning pairs. Those of static definitions
        # (constants) are made once per load, and handed again at the next
        # preparation after forget_points() emptied the reporters.
        self._static_points: dict[InstrumentKey, list[Observation]] = {}
        self._static_handed = True
        # Histograms, which OpenTelemetry has no observable instrument for:
        # {key: series} of the last preparation, made into points by
        # histogram_metrics(), and when each was first loaded (its start).
        self._histograms: dict[InstrumentKey, Observations] = {}
        self._started: dict[InstrumentKey, int] = {}
        self._dynamic: list[ActiveDefinition] = []
        self._token: str | None = None
        self._failures: dict[str, str] = {}
        self._load_failure: str | None = None
        # Definitions the exposition cannot carry, and why; see
        # _leave_out_unexportable().
        self._left_out: dict[str, str] = {}
        # Static definitions whose one evaluation per load failed, and why.
        self._failed: dict[str, str] = {}
        # The served families the definitions were judged against.
        self._served: Mapping[str, str] = naming.served_names({})
        self._judged_against: frozenset[str] = frozenset()
        #: {exported family: definition} of the definitions exported.
        self._families: dict[str, ActiveDefinition] = {}
        self._lock = threading.RLock()

    def prepare(
        self, deadline: float | None = None, served: Mapping[str, str] | None = None
    ) -> None:
        """Reload definitions if they changed, then evaluate them for one collection.

        Evaluations are not waited for past `deadline` (a time.monotonic()
        value; by default the scrape budget from now). `served` maps the names
        the families served beside the definitions take (naming.served_names());
        without it, those handed down last stand.
        """
        with self._lock:
            if served is not None:
                self._served = served
            if frozenset(self._served) != self._judged_against:
                # A family appeared that a definition may clash with: judge again.
                self._token = None
            self.refresh(deadline)
            for name, problem in (*self._left_out.items(), *self._failed.items()):
                self._record(
                    name, evaluation.Evaluation(name, Outcome.ERROR, error=problem)
                )
            items = self._dynamic
            scheduler.start_if_needed([i.definition for i in items])
            results = evaluation.get_evaluator().collect(
                [i.definition for i in items], deadline=deadline
            )
            if not self._static_handed:
                self._hand_static_points()
            reporters = {} if self._provider is None else self._provider.reporters
            histograms = {}
            for item, result in zip(items, results, strict=True):
                self._record(item.name, result)
                observations = result.observations if result.ok else None
                if item.key[1] == Kind.HISTOGRAM:
                    if observations:
                        histograms[item.key] = observations
                    continue
                reporter = reporters.get(item.key)
                if reporter is not None:
                    reporter.observations = [
                        Observation(value, attributes)
                        for value, attributes in observations or ()
                    ]
            self._histograms = histograms
            # Once per interval, queued for a thread of its own; never raises.
            history.record((i.definition for i in items), results)

    def histogram_metrics(self) -> list[Metric]:
        """Return the histograms of the last preparation as the SDK's metrics.

        OpenTelemetry's API has no observable histogram, so the app makes the
        points itself, cumulative from when the definition was loaded, and
        the collector adds them to the definitions' collection.
        """
        now = time.time_ns()
        metrics = []
        for key, observations in self._histograms.items():
            name, _kind, unit, description = key
            points = [
                HistogramDataPoint(
                    attributes=attributes,
                    start_time_unix_nano=self._started.get(key, now),
                    time_unix_nano=now,
                    count=value.count,
                    sum=value.sum,
                    bucket_counts=value.bucket_counts(),
                    explicit_bounds=value.bounds,
                    min=math.nan if value.minimum is None else value.minimum,
                    max=math.nan if value.maximum is None else value.maximum,
                )
                for value, attributes in observations
                # Checked where values are made and read back; never fail here.
                if isinstance(value, Distribution)
            ]
            metrics.append(
                Metric(
                    name=name.lower(),
                    description=description,
                    unit=unit,
                    data=Histogram(
                        data_points=points,
                        aggregation_temporality=AggregationTemporality.CUMULATIVE,
                    ),
                )
            )
        return metrics

    def forget_points(self) -> None:
        """Export nothing from definitions until the next successful preparation."""
        if self._provider is not None:
            for reporter in self._provider.reporters.values():
                reporter.observations = ()
        self._static_handed = False
        self._histograms = {}

    def refresh(self, deadline: float | None = None) -> None:
        """Reload the enabled definitions when the change stamp moved.

        The database is not waited on past `deadline` (a time.monotonic()
        value), nor at all while an earlier check is left unanswered.
        """
        using = router.db_for_read(MetricDefinition)

        def read() -> tuple[str, list[MetricDefinition] | None]:
            token = ChangeStamp.current(using)
            if token == self._token:
                return token, None
            enabled = MetricDefinition.objects.using(using).filter(enabled=True)
            return token, list(enabled)

        try:
            token, rows = outages.read_database(using, read, deadline)
        except (DatabaseError, outages.Unanswered) as exc:
            # The database is down, locked, not answering, or not migrated yet:
            # keep exporting the definitions loaded last (none before the first
            # load) and try again on the next collection.
            self._self_metrics.count_load("error")
            if isinstance(exc, DatabaseError):
                self._token = None
            # Logged once while the same service stays silent, or the same
            # error recurs.
            failure = getattr(exc, "service", None) or str(exc)
            if self._load_failure != failure:
                self._load_failure = failure
                logger.warning(
                    "Cannot load the metric definitions (is the database up and "
                    "migrated?); exporting the %d loaded before: %s",
                    len(self._active),
                    exc,
                )
            return
        if rows is None:
            self._self_metrics.count_load("unchanged")
            return
        self._self_metrics.count_load("reloaded")
        if self._load_failure is not None:
            self._load_failure = None
            logger.info("The metric definitions load again.")
        self._apply(self._leave_out_unexportable(rows))
        self._token = token

    @property
    def judged_against(self) -> frozenset[str]:
        """Return the served names the loaded definitions were judged against."""
        return self._judged_against

    @property
    def families(self) -> Mapping[str, ActiveDefinition]:
        """Return {exported family: definition} of the definitions exported."""
        return self._families

    @property
    def provider(self) -> DefinitionsProvider | None:
        """Return the provider of the current definitions' instruments."""
        return self._provider

    def log_failure(self, name: str, message: str) -> None:
        """Log that a definition is left out, once, until the reason changes."""
        if self._failures.get(name) != message:
            self._failures[name] = message
            logger.warning("Metric %s is left out of the export: %s", name, message)

    def _apply(self, rows: Iterable[MetricDefinition]) -> None:
        active = {}
        static: dict[InstrumentKey, list[Observation]] = {}
        dynamic = []
        failed = {}
        for row in rows:
            key: InstrumentKey = (row.name, row.kind, row.unit, help_text(row))
            item = ActiveDefinition(key, row)
            active[key] = item
            source = sources.SOURCES.get(row.source)
            if source is None or not source.static:
                dynamic.append(item)
                continue
            result = evaluation.evaluate_here(row)
            if result.ok:
                static[key] = [Observation(v, a) for v, a in result.observations]
                self._clear_failure(item.name)
                active[key] = ActiveDefinition(key, None)
            else:
                failed[item.name] = result.error
                self.log_failure(item.name, result.error)
        self._hold_instruments(key for key in active if key[1] != Kind.HISTOGRAM)
        now = time.time_ns()
        self._started = {key: self._started.get(key, now) for key in active}
        self._active, self._static_points, self._dynamic = active, static, dynamic
        self._hand_static_points()
        self._failed = failed
        self._families = {
            naming.exported_names(item.name, item.key[1], item.key[2])[0]: item
            for item in active.values()
        }
        current = {item.name for item in active.values()} | set(self._left_out)
        for name in set(self._failures) - current:
            self._failures.pop(name, None)
        self._self_metrics.loaded(
            len(active), {item.name for item in dynamic} | set(self._left_out)
        )

    def _hand_static_points(self) -> None:
        """Hand each reporter its static points; the others none until evaluated."""
        if self._provider is not None:
            static = self._static_points
            for key, reporter in self._provider.reporters.items():
                reporter.observations = static.get(key, ())
        self._static_handed = True

    def _leave_out_unexportable(
        self, rows: Iterable[MetricDefinition]
    ) -> list[MetricDefinition]:
        """Return the rows the exposition can carry; record and log why not the others.

        Rows saved without validation (bulk writes, raw SQL, an older release)
        may hold text that cannot be encoded, an instrument the SDK refuses, or
        an exported name that another family (or an older definition) takes;
        each is left out alone rather than breaking the whole scrape.
        """
        self._judged_against = frozenset(self._served)
        index = naming.ExportedNameIndex(served=self._served)
        kept, left_out = [], {}
        kinds = Kind.values
        # The older definition keeps a contested name.
        for row in sorted(rows, key=lambda row: (row.pk is None, row.pk or 0)):
            problem = naming.exposition_problem(row, index, kinds)
            if problem is None:
                kept.append(row)
            else:
                left_out[row.name] = problem
                self.log_failure(row.name, problem)
        self._left_out = left_out
        return kept

    def _hold_instruments(self, keys: Iterable[InstrumentKey]) -> None:
        """Make the instruments of `keys`, on a fresh provider if one is retired."""
        # In the definitions' order, which is the order /metrics shows them in.
        keys = list(keys)
        current = self._provider
        if current is not None and current.instruments.keys() <= set(keys):
            for key in keys:
                if key not in current.instruments:
                    self._create_instrument(current, key)
            return
        replacement = self._new_provider()
        try:
            self._self_metrics.add_per_definition(replacement.meter)
            for key in keys:
                self._create_instrument(replacement, key)
        except BaseException:
            replacement.shutdown()
            raise
        # Callers hold the collection lock: no collection sees both providers.
        self._provider = replacement
        if current is not None:
            current.shutdown()

    def _create_instrument(
        self, provider: DefinitionsProvider, key: InstrumentKey
    ) -> None:
        """Make the instrument of `key` on `provider`, with a reporter as callback."""
        name, kind, unit, description = key
        meter = provider.meter
        create = {
            "counter": meter.create_observable_counter,
            "updowncounter": meter.create_observable_up_down_counter,
            "gauge": meter.create_observable_gauge,
        }[kind]
        reporter = Reporter()
        provider.instruments[key] = create(
            name, callbacks=[reporter], unit=unit, description=description
        )
        provider.reporters[key] = reporter

    def _record(self, name: str, result: evaluation.Evaluation) -> None:
        self._self_metrics.record(name, result)
        if result.ok:
            self._clear_failure(name)
        else:
            self.log_failure(name, result.error)

    def _clear_failure(self, name: str) -> None:
        if self._failures.pop(name, None) is not None:
            logger.info("Metric %s is exported again.", name)
