"""Keep a short history of each definition's value: one sample per interval, everywhere.

After each collection (a scrape or an OTLP push), `record()` hands the
evaluations to a writer thread of this process, at most once per interval
(METRICDEMO['HISTORY_INTERVAL']): the scrape only compares two numbers and,
once per interval, queues a job. The writer deletes the samples older than
HISTORY_POINTS intervals and inserts one row per definition, keyed by
(definition id, start of the interval). Every process that is scraped
does the same; the unique constraint keeps the first row of each interval
and the database ignores the others' (`bulk_create(ignore_conflicts=True)`),
so a sample is written once across processes and hosts without a lease.

The table holds at most HISTORY_POINTS rows per definition sampled in the
last HISTORY_POINTS intervals (definitions x 1440 rows by default); a
deleted definition's rows go once they are that old.

What a sample holds: the value of a single series; for several series the
sum when the definition is additive (a counter, an up-down counter, a row
count, a sum of a field; a histogram's count of observations), else no
value; and the number of series and the outcome. NaN and infinities are
stored as no value, since MariaDB cannot store them. Constants are not
sampled: their value is the definition's own.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future

from django.conf import settings
from django.db import connections, router
from django.db.models import Count, F, Window
from django.db.models.functions import Mod, RowNumber
from django.utils import timezone

from metricdemo import aggregates
from metricdemo.conf import app_settings
from metricdemo.database import statement_timeout
from metricdemo.distributions import Distribution
from metricdemo.models import Kind, MetricDefinition, ValueSample
from metricdemo.observations import describe
from metricdemo.workers import PerProcess, WorkerPool

logger = logging.getLogger("metricdemo")

#: Points per definition that history() returns by default: a sparkline's.
SPARKLINE_POINTS = 60
#: Seconds the writer's statements may take in the database.
WRITE_TIMEOUT = 10.0
#: The kinds whose series add up to a total (OpenTelemetry's additive sums).
ADDITIVE_KINDS = (Kind.COUNTER, Kind.UPDOWNCOUNTER, Kind.HISTOGRAM)
#: The row-based aggregates whose groups add up to the ungrouped value.
ADDITIVE_AGGREGATES = (aggregates.COUNT, aggregates.SUM)


def clock() -> float:
    """Return the Unix time the sample intervals are counted in (tests patch it)."""
    return time.time()


def interval() -> int | None:
    """Return METRICDEMO['HISTORY_INTERVAL'] in seconds, or None when it is off."""
    seconds = app_settings.HISTORY_INTERVAL
    return int(seconds) if seconds else None


def interval_start(now: float, seconds: int) -> dt.datetime:
    """Return the start of the interval of `seconds` that Unix time `now` falls in.

    An aware datetime in UTC, or with USE_TZ = False the naive local time
    that Django stores then (see as_stored()).
    """
    return as_stored(dt.datetime.fromtimestamp((now // seconds) * seconds, tz=dt.UTC))


def as_stored(moment: dt.datetime) -> dt.datetime:
    """Return an aware `moment` as stored: naive local time without USE_TZ."""
    if settings.USE_TZ:
        return moment
    return timezone.make_naive(moment, timezone.get_default_timezone())


def is_additive(definition: MetricDefinition) -> bool:
    """Return whether the definition's series add up to a meaningful total."""
    if definition.kind in ADDITIVE_KINDS:
        return True
    if definition.source != "row_count":
        return False
    return (definition.aggregate or aggregates.COUNT) in ADDITIVE_AGGREGATES


def summarize(definition: MetricDefinition, evaluation) -> tuple[float | None, int]:
    """Return (value, series) of one evaluation, as a sample keeps them.

    The value of a single series; the sum of several (0 for none) when the
    definition is additive, else None; None for a failed evaluation and for
    NaN and infinities. A histogram's value is its count of observations.
    """
    if not evaluation.ok:
        return None, 0
    numbers = [
        value.count if isinstance(value, Distribution) else value
        for value, _attributes in evaluation.observations
    ]
    if len(numbers) == 1:
        total: float | None = float(numbers[0])
    elif is_additive(definition):
        total = float(math.fsum(numbers))
    else:
        total = None
    if total is not None and not math.isfinite(total):
        total = None
    return total, len(numbers)


def samples(
    definitions: Sequence[MetricDefinition], evaluations: Sequence, at: dt.datetime
) -> list[ValueSample]:
    """Return the unsaved samples of one collection, all at `at`."""
    found = []
    for definition, evaluation in zip(definitions, evaluations, strict=True):
        if definition is None or definition.pk is None:
            continue
        value, series = summarize(definition, evaluation)
        found.append(
            ValueSample(
                definition_id=definition.pk,
                time=at,
                value=value,
                series=series,
                outcome=str(evaluation.outcome)[:16],
            )
        )
    return found


def prune(at: dt.datetime, seconds: int, points: int, using: str | None = None) -> int:
    """Delete the samples more than `points` intervals before `at`'s; return how many.

    Together with the sample of `at` itself, `points` intervals remain.
    """
    cutoff = at - dt.timedelta(seconds=seconds * (points - 1))
    alias = using or router.db_for_write(ValueSample)
    deleted, _ = ValueSample.objects.using(alias).filter(time__lt=cutoff).delete()
    return deleted


def write(
    rows: Sequence[ValueSample],
    at: dt.datetime,
    seconds: int,
    points: int | None = None,
    using: str | None = None,
) -> None:
    """Prune, then insert `rows`, keeping a row another process inserted first."""
    alias = using or router.db_for_write(ValueSample)
    points = points or app_settings.HISTORY_POINTS
    with statement_timeout(connections[alias], WRITE_TIMEOUT):
        prune(at, seconds, points, using=alias)
        if rows:
            ValueSample.objects.using(alias).bulk_create(rows, ignore_conflicts=True)


class Recorder:
    """Write this process's samples on a thread of its own, once per interval."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = WorkerPool(1)
        #: (interval seconds, interval number) this process last queued.
        self._queued: tuple[int, int] | None = None
        self._pending: Future | None = None
        self._failure: str | None = None
        #: Intervals this process queued, for tests and the log.
        self.writes = 0

    def offer(
        self,
        definitions: Iterable[MetricDefinition | None],
        evaluations: Iterable,
        now: float | None = None,
    ) -> bool:
        """Queue one collection's samples unless this interval's are queued already.

        Returns whether they were queued. Cheap: no query, no waiting, and
        `definitions` (which may be a generator) is only read when queued; a
        write that is still running (a slow database) skips the interval.
        """
        seconds = interval()
        if not seconds:
            return False
        now = clock() if now is None else now
        key = (seconds, int(now // seconds))
        with self._lock:
            if key == self._queued:
                return False
            if self._pending is not None and not self._pending.done():
                return False
            self._queued = key
            self.writes += 1
            rows, results = list(definitions), list(evaluations)
            at = interval_start(now, seconds)
            self._pending = self._pool.submit(
                lambda: self._write(rows, results, at, seconds)
            )
        return True

    def wait_idle(self, timeout: float | None = None) -> None:
        """Wait until the queued write is done (for tests)."""
        pending = self._pending
        if pending is not None:
            pending.result(timeout)

    def _write(
        self,
        definitions: list[MetricDefinition | None],
        evaluations: list,
        at: dt.datetime,
        seconds: int,
    ) -> None:
        try:
            write(samples(definitions, evaluations, at), at, seconds)
        except Exception as exc:  # noqa: BLE001 - a history never fails anything
            failure = describe(exc)
            if self._failure != failure:
                self._failure = failure
                logger.warning("The value history cannot be written: %s", failure)
        else:
            if self._failure is not None:
                self._failure = None
                logger.info("The value history is written again.")
        finally:
            # This thread writes once per interval: no connection is kept.
            connections.close_all()


_recorder: PerProcess[Recorder] = PerProcess(Recorder)


def get_recorder() -> Recorder:
    """Return this process's recorder, made on first use."""
    return _recorder.get()


def record(
    definitions: Iterable[MetricDefinition | None], evaluations: Iterable
) -> bool:
    """Offer one collection's evaluations to the history; never raise, never wait.

    The collection's hook, on every scrape: between two intervals it only
    compares two numbers (`definitions` may be a generator, read only when
    a write is queued). Returns whether a write was queued.
    """
    try:
        return get_recorder().offer(definitions, evaluations)
    except Exception:  # noqa: BLE001 - a scrape never fails for its history
        _log_hook_failure()
        return False


_hook_failed = False


def _log_hook_failure() -> None:
    global _hook_failed  # noqa: PLW0603 - logged once per process
    if not _hook_failed:
        _hook_failed = True
        logger.exception("The value history cannot take this collection's values.")


def history(
    definition_ids: Iterable[int],
    since: dt.datetime,
    *,
    until: dt.datetime | None = None,
    points: int = SPARKLINE_POINTS,
    using: str | None = None,
) -> dict[int, list[tuple[dt.datetime, float | None]]]:
    """Return {definition id: [(time, value), ...]} since `since`, oldest first.

    At most `points` samples per definition: when a definition has more
    between `since` and `until` (now), they are taken in slices of
    consecutive samples and the last (newest) of each is kept, the newest
    sample always among them; a definition with fewer keeps them all.
    Every id asked for is a key; a value is None where the sample has none.

    One query counts each definition's samples, and one reads those of all
    the definitions that share a slice's size (usually all of them).
    """
    ids = sorted({int(pk) for pk in definition_ids})
    found: dict[int, list[tuple[dt.datetime, float | None]]] = {pk: [] for pk in ids}
    if not ids:
        return found
    points = max(1, points)
    until = until or timezone.now()
    rows = ValueSample.objects.using(using or router.db_for_read(ValueSample)).filter(
        definition_id__in=ids, time__gte=since, time__lte=until
    )
    counts = rows.values_list("definition_id").annotate(n=Count("pk")).order_by()
    by_stride: dict[int, list[int]] = {}
    for pk, count in counts:
        by_stride.setdefault(max(1, math.ceil(count / points)), []).append(pk)
    for stride, pks in sorted(by_stride.items()):
        part = rows.filter(definition_id__in=pks)
        if stride > 1:
            part = part.annotate(
                newer=Window(
                    RowNumber(),
                    partition_by=[F("definition_id")],
                    order_by=F("time").desc(),
                )
            ).filter(newer__lte=points * stride)
            part = part.annotate(slot=Mod(F("newer") - 1, stride)).filter(slot=0)
        for pk, moment, value in part.order_by("definition_id", "time").values_list(
            "definition_id", "time", "value"
        ):
            found[pk].append((moment, value))
    return found
