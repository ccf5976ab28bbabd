"""Push the metrics to an OpenTelemetry Collector over OTLP/HTTP."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from typing import Any

from django.db import connections
from opentelemetry.sdk.metrics.export import (
    MetricExportResult,
    MetricReader,
    MetricsData,
)

from metricdemo.conf import app_settings

logger = logging.getLogger("metricdemo")

#: The path of the metrics signal under an OTLP/HTTP base URL.
METRICS_PATH = "v1/metrics"
#: Seconds between pushes when neither the setting nor the environment says.
DEFAULT_INTERVAL = 60.0

# OpenTelemetry's standard SDK environment variables.
ENDPOINT_VAR = "OTEL_EXPORTER_OTLP_ENDPOINT"
METRICS_ENDPOINT_VAR = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"
INTERVAL_VAR = "OTEL_METRIC_EXPORT_INTERVAL"
EXPORTERS_VAR = "OTEL_METRICS_EXPORTER"


def endpoint() -> str | None:
    """Return the URL that pushes go to, or None when pushing is off."""
    base = app_settings.OTLP_ENDPOINT
    if base:
        return metrics_url(base)
    exporters = os.environ.get(EXPORTERS_VAR, "").strip().lower()
    if exporters and "otlp" not in {name.strip() for name in exporters.split(",")}:
        # for example OTEL_METRICS_EXPORTER=none while the endpoint is set for traces.
        return None
    url = os.environ.get(METRICS_ENDPOINT_VAR, "").strip()
    if url:
        return url
    base = os.environ.get(ENDPOINT_VAR, "").strip()
    return metrics_url(base) if base else None


def metrics_url(base: str) -> str:
    """Return the metrics URL under an OTLP/HTTP base URL."""
    return f"{base.rstrip('/')}/{METRICS_PATH}"


def interval() -> float:
    """Return the seconds between pushes."""
    seconds = app_settings.OTLP_INTERVAL
    if seconds is not None:
        return float(seconds)
    raw = os.environ.get(INTERVAL_VAR, "").strip()
    if not raw:
        return DEFAULT_INTERVAL
    try:
        millis = float(raw)
    except ValueError:
        millis = math.nan
    if not 0 < millis < math.inf:
        logger.warning(
            "%s=%r is not a positive number of milliseconds; pushing every %g s.",
            INTERVAL_VAR,
            raw,
            DEFAULT_INTERVAL,
        )
        return DEFAULT_INTERVAL
    return millis / 1000


def create_pusher(cardinality_limits: dict | None = None) -> OTLPPusher | None:
    """Return a pusher if an endpoint is configured, else None."""
    url = endpoint()
    if url is None:
        return None
    pusher = OTLPPusher(url, interval(), cardinality_limits=cardinality_limits)
    logger.info("Pushing metrics over OTLP to %s every %g s.", url, pusher.interval)
    return pusher


class OTLPPusher(MetricReader):
    """Push metrics every interval, each collection prepared like a scrape.

    The app starts it with a `source`: the collection /metrics takes (the
    definitions evaluated under the scrape's lock), so that no provider has a
    second reader. Registered with a MeterProvider of its own instead, it is
    a reader that collects only when its thread (or `push()`) asks, inside
    `prepared`. The export runs after the collection lock is released, so a
    slow Collector never holds up /metrics. Temporality is cumulative, as on
    /metrics.
    """

    def __init__(
        self, url: str, seconds: float, *, cardinality_limits: dict | None = None
    ) -> None:
        super().__init__(cardinality_limits=cardinality_limits)
        self.url = url
        self.interval = seconds
        self._exporter = _new_exporter(url)
        self._prepared: Callable[[], AbstractContextManager] = nullcontext
        self._also: Callable[[], MetricsData | None] = _nothing
        self._collected: MetricsData | None = None
        self._source: Callable[[], MetricsData | None] | None = None
        self._push_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: str | None = None
        self._shut_down = False
        weak = weakref.WeakMethod(self._after_fork_in_child)

        def after_fork_in_child() -> None:
            method = weak()
            if method is not None:
                method()

        os.register_at_fork(after_in_child=after_fork_in_child)

    def start(
        self,
        prepared: Callable[[], AbstractContextManager] | None = None,
        also: Callable[[], MetricsData | None] | None = None,
        *,
        source: Callable[[], MetricsData | None] | None = None,
    ) -> None:
        """Push every interval from a daemon thread.

        With `source`, each push exports what it returns (the app passes
        the collection /metrics shares, so the pusher need not be a reader
        of any provider). Otherwise the pusher is a reader: it collects its
        provider inside `prepared()`, and `also` collects another provider's
        metrics to push with this one's.
        """
        self._prepared = prepared or nullcontext
        self._also = also or _nothing
        self._source = source
        self._start_thread()

    @property
    def running(self) -> bool:
        """Return whether this process's push thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def push(self) -> bool:
        """Collect and export once, now; return whether the receiver took it."""
        with self._push_lock:
            if self._shut_down:
                return False
            try:
                data = self._gather()
                if data is None:
                    return False  # nothing to collect from
                with _held_back_exporter_log() as records:
                    result = self._exporter.export(data)
            except Exception as exc:  # noqa: BLE001 - the thread must keep pushing
                reason = f"{type(exc).__name__}: {exc}"
                self._failed(reason, reason)
                return False
            if result is MetricExportResult.SUCCESS:
                if self._failure is not None:
                    self._failure = None
                    logger.info("Pushing metrics to %s works again.", self.url)
                return True
            self._failed(*_describe(records))
            return False

    def _gather(self) -> MetricsData | None:
        if self._source is not None:
            return self._source()
        with self._prepared():
            self.collect()
            data, self._collected = self._collected, None
            if data is not None:
                data = combined(data, self._also())
        return data

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Push now (MeterProvider.force_flush() calls this)."""
        return self.push()

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """Stop pushing (the MeterProvider calls this at exit)."""
        self._stop.set()
        if not self._shut_down:
            self._shut_down = True
            self._exporter.shutdown()

    def _receive_metrics(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> None:
        self._collected = metrics_data

    def _start_thread(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="metricdemo-otlp-push", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        stop = self._stop
        due = time.monotonic() + self.interval
        while not stop.wait(max(0.0, due - time.monotonic())):
            try:
                self.push()
            finally:
                # Preparing opened this thread's database connection; keep
                # none between pushes. One that cannot close is gone anyway.
                with contextlib.suppress(Exception):
                    connections.close_all()
            # After a push that overran the interval, the next one is due
            # now: no burst of pushes to catch up.
            due = max(due + self.interval, time.monotonic())

    def _after_fork_in_child(self) -> None:
        # Only the forking thread survives fork(), and the parent's HTTP
        # connections are not the child's to use (a preloaded gunicorn worker).
        self._push_lock = threading.Lock()
        self._failure = None
        if self._shut_down:
            return
        self._exporter = _new_exporter(self.url)
        if self._thread is not None and not self._stop.is_set():
            self._start_thread()

    def _failed(self, key: str, reason: str) -> None:
        # Log a failure once, not on every push, until it changes or recovers.
        if self._failure != key:
            self._failure = key
            logger.warning(
                "Pushing metrics to %s failed; trying again every %g s: %s",
                self.url,
                self.interval,
                reason,
            )


def combined(data: MetricsData, more: MetricsData | None) -> MetricsData:
    """Return `data` with the metrics of `more` added under its first resource.

    Both come from this process, so they describe the same resource; and a
    scope that both hold (the app's, for its self-metrics and the
    definitions) must be one ScopeMetrics, since the OTLP encoder keeps only
    the last of several with the same scope.
    """
    if more is None or not more.resource_metrics:
        return data
    if not data.resource_metrics:
        return more
    first, *rest = data.resource_metrics
    scopes = {scope.scope: scope for scope in first.scope_metrics}
    for resource_metrics in more.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            same = scopes.get(scope.scope)
            if same is None:
                scopes[scope.scope] = scope
            else:
                metrics = [*same.metrics, *scope.metrics]
                scopes[scope.scope] = replace(same, metrics=metrics)
    first = replace(first, scope_metrics=list(scopes.values()))
    return MetricsData(resource_metrics=[first, *rest])


def _nothing() -> None:
    return None


def _describe(records: list[logging.LogRecord]) -> tuple[str, str]:
    """Return a key that stays the same while the cause does, and a reason."""
    if not records:
        return "", "the exporter gave no reason."
    # The exporter logs each attempt, with a retry delay that varies; its first
    # record names the cause, and its template and other arguments stay the
    # same while the cause does.
    first, last = records[0], records[-1]
    args = first.args if isinstance(first.args, tuple) else ()
    same = [str(arg) for arg in args if not isinstance(arg, float)]
    # Object addresses ("at 0x7f...") in urllib3 1.x errors vary too.
    key = _ADDRESS.sub("", repr((first.msg, same)))
    reason = first.getMessage()
    if last is not first:
        reason = f"{reason} {last.getMessage()}"
    return key, reason


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")

_capture = threading.local()


class _HoldBackOnPushingThread(logging.Filter):
    """Keep the exporter's records of a push for the pusher, which logs them once."""

    def filter(self, record: logging.LogRecord) -> bool:
        records = getattr(_capture, "records", None)
        if records is None:
            return True
        records.append(record)
        return False


_HOLD_BACK = _HoldBackOnPushingThread()


@contextlib.contextmanager
def _held_back_exporter_log() -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []
    _capture.records = records
    try:
        yield records
    finally:
        _capture.records = None


def _new_exporter(url: str) -> Any:
    # Imported here: a process that does not push never loads the exporter,
    # requests and protobuf.
    from opentelemetry.exporter.otlp.proto.http import metric_exporter

    # The exporter logs every failed attempt, which on a Collector that is
    # down would be several lines per push, forever; on the pushing thread
    # its records go to the pusher instead. Other threads' records pass.
    exporter_logger = logging.getLogger(metric_exporter.__name__)
    if _HOLD_BACK not in exporter_logger.filters:
        exporter_logger.addFilter(_HOLD_BACK)
    return metric_exporter.OTLPMetricExporter(endpoint=url)
