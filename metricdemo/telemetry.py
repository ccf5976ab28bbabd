"""Own the MeterProvider, its readers and the definitions' instruments."""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import DatabaseError, router
from opentelemetry import metrics as otel_metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk import metrics as sdk_metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.resources import Resource
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.registry import Collector

import metricdemo
from metricdemo import evaluation, naming, otlp, scheduler, sources
from metricdemo.conf import app_settings
from metricdemo.models import ChangeStamp, Kind, MetricDefinition
from metricdemo.reserved import SELF_METRICS

logger = logging.getLogger("metricdemo")

# Seconds fork() waits for a collection in progress to finish.
FORK_WAIT = 30.0

# (name, kind, unit, description): what makes two instruments the same to the SDK.
InstrumentKey = tuple[str, str, str, str]


@dataclass(frozen=True)
class ActiveDefinition:
    """An enabled definition as loaded, with the key of its instrument."""

    key: InstrumentKey
    definition: MetricDefinition  # a detached row

    @property
    def name(self) -> str:
        return self.key[0]


@dataclass
class DefinitionStats:
    """What the self-metrics report about one definition."""

    outcomes: Counter = field(default_factory=Counter)
    seconds: float | None = None
    last_success: float | None = None


class DefinitionsProvider:
    """Hold the definitions' instruments on a MeterProvider of their own.

    OpenTelemetry can never remove an instrument from a MeterProvider; only
    dropping the provider frees them. So the definitions live apart from the
    long-lived (global) provider of the code instruments and the self-metrics,
    on one that is replaced when a definition's instrument is retired.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        cardinality_limits: dict[type, int],
        *,
        for_push: bool = False,
    ) -> None:
        # target_info comes from the long-lived provider's reader: a second
        # one in the same exposition would make it invalid.
        self.reader = PrometheusMetricReader(
            disable_target_info=True,
            registry=registry,
            cardinality_limits=cardinality_limits,
        )
        readers: list = [self.reader]
        # Readers cannot be added to a provider later, and the pusher belongs
        # to the long-lived one: it takes this reader's collection along.
        self.push_reader = None
        if for_push:
            self.push_reader = InMemoryMetricReader(
                cardinality_limits=cardinality_limits
            )
            readers.append(self.push_reader)
        # shutdown_on_exit would keep the provider alive in atexit for ever.
        self.meter_provider = MeterProvider(
            metric_readers=readers,
            resource=process_resource(os.getpid()),
            shutdown_on_exit=False,
        )
        self.meter = self.meter_provider.get_meter(
            app_settings.METER_NAME, metricdemo.__version__
        )
        self.instruments: dict[InstrumentKey, object] = {}

    def collect_for_push(self) -> MetricsData | None:
        """Collect the definitions for an OTLP push, or None when nobody pushes."""
        if self.push_reader is None:
            return None
        return self.push_reader.get_metrics_data()

    def shutdown(self) -> None:
        """Take the reader out of the registry and free the instruments now."""
        self.meter_provider.shutdown()
        self.instruments.clear()
        # The SDK's instruments and its measurement consumer refer to each
        # other, so only the cycle collector would free them, at its own pace:
        # the garbage of many replacements would pile up first, and the process
        # keep the memory it reached (a full collection per replacement costs
        # more than the rebuild). Emptying the consumer breaks those cycles.
        # These are SDK internals: where they differ, the collector still
        # frees everything, later.
        consumer = getattr(self.meter_provider, "_measurement_consumer", None)
        for name in ("_async_instruments", "_reader_storages"):
            held = getattr(consumer, name, None)
            if isinstance(held, list | dict):
                held.clear()


@functools.lru_cache(maxsize=1)
def process_resource(pid: int) -> Resource:
    """Return the resource of this process, as a MeterProvider makes by default.

    Made once per process (the pid tells a forked child apart, whose
    service.instance.id differs): Resource.create() starts a thread pool for
    its detectors, which would cost more than rebuilding a small provider.
    """
    return Resource.create()


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
        meter: otel_metrics.Meter,
        new_provider: Callable[[], DefinitionsProvider],
    ) -> None:
        self._meter = meter
        self._new_provider = new_provider
        self._provider: DefinitionsProvider | None = None
        self._active: dict[InstrumentKey, ActiveDefinition] = {}
        self._observations: dict[InstrumentKey, list[Observation]] = {}
        # Observations of static definitions (constants), made once per load.
        self._static: dict[InstrumentKey, list[Observation]] = {}
        self._dynamic: list[ActiveDefinition] = []
        self._token: str | None = None
        self._failures: dict[str, str] = {}
        self._load_failure: str | None = None
        self._stats: dict[str, DefinitionStats] = {}
        self._loads: Counter = Counter()
        # Definitions the exposition cannot carry, and why; see _exportable().
        self._left_out: dict[str, str] = {}
        self._judged_against: frozenset[str] = frozenset()
        #: {exported family: definition} of the definitions exported.
        self._families: dict[str, ActiveDefinition] = {}
        #: {taken name: family} of the families served last that are not
        #: definitions (None before the first collection).
        self.seen_families: dict[str, str] | None = None
        self._lock = threading.RLock()
        self._create_self_metrics()

    def prepare(self, deadline: float | None = None) -> None:
        """Reload definitions if they changed, then evaluate them for one collection.

        Evaluations are not waited for past `deadline` (a time.monotonic()
        value; by default the scrape budget from now).
        """
        with self._lock:
            served = naming.served_names(naming.registry_families())
            if frozenset(served) != self._judged_against:
                # A family appeared that a definition may clash with: judge again.
                self._token = None
            self.refresh()
            for name, problem in self._left_out.items():
                self._record(
                    name, evaluation.Evaluation(name, evaluation.ERROR, error=problem)
                )
            items = self._dynamic
            scheduler.start_if_needed([i.definition for i in items])
            results = evaluation.get_evaluator().collect(
                [i.definition for i in items], deadline=deadline
            )
            observations = dict(self._static)
            for item, result in zip(items, results, strict=True):
                self._record(item.name, result)
                if result.ok and result.observations:
                    observations[item.key] = [
                        Observation(value, attributes)
                        for value, attributes in result.observations
                    ]
            self._observations = observations

    def forget_observations(self) -> None:
        """Export nothing from definitions until the next successful preparation."""
        self._observations = {}

    def refresh(self) -> None:
        """Reload the enabled definitions when the change stamp moved."""
        using = router.db_for_read(MetricDefinition)
        try:
            with evaluation.savepoint_if_in_transaction(using):
                token = ChangeStamp.current(using)
                if token == self._token:
                    self._loads["unchanged"] += 1
                    return
                rows = list(MetricDefinition.objects.using(using).filter(enabled=True))
        except DatabaseError as exc:
            # The database is down, locked, or not migrated yet: keep exporting
            # the definitions loaded last (none before the first load) and try
            # again on the next collection.
            self._loads["error"] += 1
            self._token = None
            message = str(exc)
            if self._load_failure != message:
                self._load_failure = message
                logger.warning(
                    "Cannot load the metric definitions (is the database up and "
                    "migrated?); exporting the %d loaded before: %s",
                    len(self._active),
                    message,
                )
            return
        self._loads["reloaded"] += 1
        if self._load_failure is not None:
            self._load_failure = None
            logger.info("The metric definitions load again.")
        self._apply(self._exportable(rows))
        self._token = token

    def _apply(self, rows: Iterable[MetricDefinition]) -> None:
        active = {}
        static: dict[InstrumentKey, list[Observation]] = {}
        dynamic = []
        for row in rows:
            key: InstrumentKey = (row.name, row.kind, row.unit, row.description)
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
            else:
                self._log_failure(item.name, result.error)
        self._hold_instruments(active.keys())
        self._active, self._static, self._dynamic = active, static, dynamic
        self._families = {
            naming.exported_names(item.name, item.key[1], item.key[2])[0]: item
            for item in active.values()
        }
        current = {item.name for item in active.values()} | set(self._left_out)
        for name in set(self._failures) - current:
            self._failures.pop(name, None)
        # Self-metrics describe the definitions evaluated on every scrape.
        for name in (
            set(self._stats) - {item.name for item in dynamic} - set(self._left_out)
        ):
            del self._stats[name]

    def _exportable(self, rows: Iterable[MetricDefinition]) -> list[MetricDefinition]:
        """Return the rows the exposition can carry; leave out and log the others.

        Rows saved without validation (bulk writes, raw SQL, an older release)
        may hold text that cannot be encoded, an instrument the SDK refuses, or
        an exported name that another family (or an older definition) takes;
        each is left out alone rather than breaking the whole scrape.
        """
        served = naming.served_names(naming.registry_families())
        self._judged_against = frozenset(served)
        index = naming.ExportedNameIndex(served=served)
        kept, left_out = [], {}
        # The older definition keeps a contested name.
        for row in sorted(rows, key=lambda row: (row.pk is None, row.pk or 0)):
            problem = naming.exposition_problem(row, index, Kind.values)
            if problem is None:
                kept.append(row)
            else:
                left_out[row.name] = problem
                self._log_failure(row.name, problem)
        self._left_out = left_out
        return kept

    def without_clashes(self, families: list) -> list:
        """Drop definitions' families that clash with a family served beside them.

        A code instrument or a collector can appear after the definitions were
        judged (for example on the first scrape); this keeps that scrape valid,
        and the next load leaves the definition out with an error.
        """
        scope = app_settings.METER_NAME

        def ours(sample) -> bool:
            return sample.labels.get("otel_scope_name") == scope

        others: dict[str, str] = {}
        for family in families:
            if family.name in self._families and all(map(ours, family.samples)):
                continue
            shown = family.name + {"counter": "_total", "info": "_info"}.get(
                family.type, ""
            )
            for name in naming.family_names(family.name, family.type):
                others[name] = shown
        self.seen_families = others
        index = naming.ExportedNameIndex(served=others)
        kept = []
        for family in families:
            item = self._families.get(family.name)
            if item is None:
                kept.append(family)
                continue
            theirs = [sample for sample in family.samples if not ours(sample)]
            if len(theirs) == len(family.samples):
                kept.append(family)
                continue
            name, kind, unit, _description = item.key
            clash = naming.clash(name, kind, unit, index)
            if clash is None and not theirs:
                kept.append(family)
                continue
            if clash is None:
                # A family of another scope under the very same name.
                exported = naming.exported_names(name, kind, unit)[1]
                clash = naming.Clash(naming.SERVED_FAMILY, name, exported, family.name)
            self._log_failure(name, naming.field_problem("name", clash.message))
            if theirs:
                family.samples = theirs
                kept.append(family)
        return kept

    @property
    def provider(self) -> DefinitionsProvider | None:
        """Return the provider of the current definitions' instruments."""
        return self._provider

    def collect_for_push(self) -> MetricsData | None:
        """Collect the definitions' instruments for an OTLP push."""
        provider = self._provider
        return None if provider is None else provider.collect_for_push()

    def _hold_instruments(self, keys: Iterable[InstrumentKey]) -> None:
        """Make the instruments of `keys`, on a fresh provider if one is retired."""
        # In the definitions' order, which is the order /metrics shows them in.
        keys = list(keys)
        current = self._provider
        if current is not None and current.instruments.keys() <= set(keys):
            for key in keys:
                if key not in current.instruments:
                    instrument = self._create_instrument(current.meter, key)
                    current.instruments[key] = instrument
            return
        replacement = self._new_provider()
        try:
            for key in keys:
                replacement.instruments[key] = self._create_instrument(
                    replacement.meter, key
                )
        except BaseException:
            replacement.shutdown()
            raise
        # Callers hold the collection lock: no collection sees both providers.
        self._provider = replacement
        if current is not None:
            current.shutdown()

    def _create_instrument(self, meter: otel_metrics.Meter, key: InstrumentKey):
        name, kind, unit, description = key
        create = {
            "counter": meter.create_observable_counter,
            "updowncounter": meter.create_observable_up_down_counter,
            "gauge": meter.create_observable_gauge,
        }[kind]
        return create(
            name,
            callbacks=[self._callback_for(key)],
            unit=unit,
            description=description,
        )

    def _callback_for(
        self, key: InstrumentKey
    ) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def callback(options: CallbackOptions) -> Iterable[Observation]:
            return self._observations.get(key, ())

        return callback

    def _record(self, name: str, result: evaluation.Evaluation) -> None:
        stats = self._stats.get(name)
        if stats is None:
            stats = self._stats[name] = DefinitionStats()
        stats.outcomes[result.outcome] += 1
        if result.outcome != evaluation.CACHED:
            stats.seconds = result.seconds
        if result.computed_at is not None:
            # Served from a refresh (this process's or another's): its time.
            stats.last_success = result.computed_at
        elif result.outcome == evaluation.SUCCESS:
            stats.last_success = time.time()
        if result.ok:
            self._clear_failure(name)
        else:
            self._log_failure(name, result.error)

    def _create_self_metrics(self) -> None:
        meter = self._meter

        def per_definition(read: Callable[[DefinitionStats], float | None]):
            def callback(options: CallbackOptions) -> Iterable[Observation]:
                for name, stats in list(self._stats.items()):
                    value = read(stats)
                    if value is not None:
                        yield Observation(value, {"definition": name})

            return callback

        def evaluations(options: CallbackOptions) -> Iterable[Observation]:
            # Only outcomes that happened: four series per definition, most of
            # them zero, would cost more than the definitions themselves.
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
            callbacks=[lambda options: [Observation(len(self._active))]],
            unit="{definition}",
            description="Enabled metric definitions this process exports.",
        )

    def _log_failure(self, name: str, message: str) -> None:
        # Log a failure once, not on every scrape, until it changes or recovers.
        if self._failures.get(name) != message:
            self._failures[name] = message
            logger.warning("Metric %s is left out of the export: %s", name, message)

    def _clear_failure(self, name: str) -> None:
        if self._failures.pop(name, None) is not None:
            logger.info("Metric %s is exported again.", name)


class DefinitionsCollector(Collector):
    """Serve the app's reader to a prometheus_client registry, one collection at a time.

    The reader's own collector is not safe for concurrent scrapes, and the
    definitions must be evaluated just before the SDK runs the callbacks, so
    the reader lives in a private registry and this collector wraps it.
    """

    def __init__(self, private: CollectorRegistry, instruments: DefinitionInstruments):
        self._private = private
        self._instruments = instruments
        self._lock = threading.Lock()
        self._held_for_fork = False

    def describe(self) -> list:
        """Describe nothing, so registering runs no collection (and no query)."""
        return []

    def collect(self):
        with self.prepared():
            families = self._instruments.without_clashes(list(self._private.collect()))
        yield from families

    def learn_families(self) -> None:
        """Collect once, without evaluating, to learn the families served beside.

        Validation in a process that has not been scraped yet needs the names
        of code instruments; skipped while another collection runs.
        """
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._instruments.without_clashes(list(self._private.collect()))
        finally:
            self._lock.release()

    @contextmanager
    def prepared(self) -> Iterator[None]:
        """Hold the collection lock, with the definitions evaluated for one collection.

        Scrapes and OTLP pushes collect inside this block, one at a time.
        """
        # The budget starts before the lock: a scrape queued behind another
        # gets what is left of its own budget, not a whole one more.
        deadline = evaluation.scrape_deadline()
        with self._lock:
            try:
                self._instruments.prepare(deadline)
            except Exception:  # noqa: BLE001 - never fail a scrape or a push
                logger.exception("Preparing the metric definitions failed.")
                self._instruments.forget_observations()
            yield

    def before_fork(self) -> None:
        """Wait, for a while, for a collection in progress to finish before fork()."""
        # A child forked mid-collection (for example while a thread of a preloaded
        # gunicorn master collects) would start with this lock, and the SDK's own
        # collection state, held by a thread that does not exist there.
        self._held_for_fork = self._lock.acquire(timeout=FORK_WAIT)

    def after_fork_in_parent(self) -> None:
        """Let collections run again after fork()."""
        if self._held_for_fork:
            self._lock.release()

    def after_fork_in_child(self) -> None:
        """Start the child with a free collection lock."""
        self._lock = threading.Lock()


@dataclass
class Telemetry:
    """The app's OpenTelemetry wiring, made once per process."""

    meter_provider: MeterProvider
    reader: PrometheusMetricReader
    instruments: DefinitionInstruments
    collector: DefinitionsCollector
    registry: CollectorRegistry
    is_global: bool
    pusher: otlp.OTLPPusher | None = None


_telemetry: Telemetry | None = None
_setup_lock = threading.Lock()


def setup(registry: CollectorRegistry = REGISTRY) -> Telemetry:
    """Create the MeterProvider and reader once; later calls return the same wiring."""
    global _telemetry
    with _setup_lock:
        if _telemetry is not None:
            return _telemetry
        private = CollectorRegistry(auto_describe=False)
        limits = cardinality_limits()
        reader = PrometheusMetricReader(registry=private, cardinality_limits=limits)
        pusher = otlp.create_pusher(cardinality_limits=limits)
        # Readers can only be given to a MeterProvider when it is made.
        readers = [reader] if pusher is None else [reader, pusher]
        provider = MeterProvider(metric_readers=readers)
        is_global = False
        if app_settings.SET_GLOBAL_METER_PROVIDER:
            is_global = _set_global_meter_provider(provider)
        meter = provider.get_meter(app_settings.METER_NAME, metricdemo.__version__)
        new_provider = functools.partial(
            DefinitionsProvider, private, limits, for_push=pusher is not None
        )
        instruments = DefinitionInstruments(meter, new_provider)
        collector = DefinitionsCollector(private, instruments)
        registry.register(collector)
        os.register_at_fork(
            before=collector.before_fork,
            after_in_parent=collector.after_fork_in_parent,
            after_in_child=collector.after_fork_in_child,
        )
        if pusher is not None:
            pusher.start(collector.prepared, instruments.collect_for_push)
        naming.register_served_families(_served_families)
        _telemetry = Telemetry(
            provider, reader, instruments, collector, registry, is_global, pusher
        )
        return _telemetry


def cardinality_limits() -> dict[type, int]:
    """Return the series each observable instrument may export per collection.

    The SDK's default of 2000 would fold a grouped row count with more groups,
    or the per-definition self-metrics of a site with thousands of
    definitions, into one overflow series.
    """
    limit = int(app_settings.CARDINALITY_LIMIT)
    return {
        sdk_metrics.ObservableCounter: limit,
        sdk_metrics.ObservableUpDownCounter: limit,
        sdk_metrics.ObservableGauge: limit,
    }


def get_telemetry() -> Telemetry:
    """Return the process's wiring, creating it if the app has not been readied."""
    return _telemetry or setup()


def _set_global_meter_provider(provider: MeterProvider) -> bool:
    current = otel_metrics.get_meter_provider()
    if isinstance(current, MeterProvider):
        logger.info(
            "A global MeterProvider is already set (%r); metricdemo exports its "
            "definitions through its own provider. See the README to export your "
            "code instruments on /metrics too.",
            current,
        )
        return False
    otel_metrics.set_meter_provider(provider)
    return otel_metrics.get_meter_provider() is provider


def _served_families() -> dict[str, str]:
    """Return {taken name: family} for the served registry's other families.

    Registered with naming, so that validation, which must not import this
    module, knows them: what the registry's collectors describe, and the
    families (code instruments, target_info) that the last collection served.
    """
    telemetry = _telemetry
    if telemetry is None:
        return {}
    if telemetry.instruments.seen_families is None:
        telemetry.collector.learn_families()
    names = {name: name for name in _described_names(telemetry.registry)}
    names.update(telemetry.instruments.seen_families or {})
    return names


def _described_names(registry: CollectorRegistry) -> list[str]:
    # prometheus_client keeps the names its collectors describe (or yielded
    # when registered) only in this private map; without it, the static list
    # and the last collection still cover the usual families.
    return list(getattr(registry, "_names_to_collectors", {}))
