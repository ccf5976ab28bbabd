"""Own the prometheus_client Collector over the app's readers, and its fork hooks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry
from prometheus_client.registry import Collector

from metricdemo import evaluation, naming
from metricdemo.conf import app_settings
from metricdemo.telemetry.flight import SingleFlight
from metricdemo.telemetry.instruments import DefinitionInstruments

logger = logging.getLogger("metricdemo")

# Seconds fork() waits for a collection in progress to finish.
FORK_WAIT = 30.0


class DefinitionsCollector(Collector):
    """Serve the app's readers to a registry, one collection at a time.

    The reader's own collector is not safe for concurrent scrapes, and the
    definitions must be evaluated just before the SDK runs the callbacks, so
    the readers live in a private registry and this collector wraps it. It
    also learns, from each collection and from the served registry, the
    families served beside the definitions.
    """

    def __init__(
        self,
        private: CollectorRegistry,
        instruments: DefinitionInstruments,
        served: CollectorRegistry,
    ) -> None:
        """Wrap `private`; `served` is the registry this collector is served from."""
        self._private = private
        self._instruments = instruments
        self._served = served
        #: {taken name: family} of the families served last that are not
        #: definitions (None before the first collection).
        self._seen: dict[str, str] | None = None
        self._lock = threading.Lock()
        self._held_for_fork = False
        # Scrapes that arrive during a collection are served its families.
        self._flight: SingleFlight[list] = SingleFlight()

    def describe(self) -> list:
        """Describe nothing, so registering runs no collection (and no query)."""
        return []

    def collect(self):
        families = self._flight.run(self._collect_once, evaluation.scrape_deadline())
        yield from families

    def _collect_once(self) -> list:
        with self.prepared():
            return self._without_clashes(list(self._private.collect()))

    def served_families(self) -> dict[str, str]:
        """Return {taken name: family} for the served registry's other families.

        Registered with naming, so that validation, which must not import this
        package, knows them: what the registry's collectors describe, and the
        families (code instruments, target_info) that the last collection
        served. Collects once first, without evaluating, if none has run yet.
        """
        if self._seen is None:
            self.learn_families()
        return self._registry_families()

    def learn_families(self) -> None:
        """Collect once, without evaluating, to learn the families served beside.

        Validation in a process that has not been scraped yet needs the names
        of code instruments; skipped while another collection runs.
        """
        if not self._lock.acquire(blocking=False):
            return
        try:
            self._without_clashes(list(self._private.collect()))
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
                served = naming.served_names(self._registry_families())
                self._instruments.prepare(deadline, served)
            except Exception:  # noqa: BLE001 - never fail a scrape or a push
                logger.exception("Preparing the metric definitions failed.")
                self._instruments.forget_points()
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
        self._flight.forget()

    def _registry_families(self) -> dict[str, str]:
        names = {name: name for name in _described_names(self._served)}
        names.update(self._seen or {})
        return names

    def _without_clashes(self, families: list) -> list:
        """Drop definitions' families that clash with a family served beside them.

        Also notes the families served beside the definitions, for the next
        load and for validation. A code instrument or a collector can appear
        after the definitions were judged (for example on the first scrape);
        this keeps that scrape valid, and the next load leaves the definition
        out with an error.
        """
        scope = app_settings.METER_NAME
        ours_by_family = self._instruments.families

        def ours(sample) -> bool:
            return sample.labels.get("otel_scope_name") == scope

        others: dict[str, str] = {}
        for family in families:
            if family.name in ours_by_family and all(map(ours, family.samples)):
                continue
            shown = family.name + {"counter": "_total", "info": "_info"}.get(
                family.type, ""
            )
            for name in naming.family_names(family.name, family.type):
                others[name] = shown
        self._seen = others
        index = naming.ExportedNameIndex(served=others)
        kept = []
        for family in families:
            item = ours_by_family.get(family.name)
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
                # Another scope's instrument under the very same name.
                exported = naming.exported_names(name, kind, unit)[1]
                clash = naming.Clash(naming.SERVED_FAMILY, name, exported, family.name)
            problem = naming.field_problem("name", clash.message)
            self._instruments.log_failure(name, problem)
            if theirs:
                family.samples = theirs
                kept.append(family)
        return kept


def _described_names(registry: CollectorRegistry) -> list[str]:
    # prometheus_client keeps the names its collectors describe (or yielded
    # when registered) only in this private map; without it, the static list
    # and the last collection still cover the usual families.
    return list(getattr(registry, "_names_to_collectors", {}))
