"""OTLP push: a local receiver decodes what the pusher and real servers send."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import override_settings
from opentelemetry.metrics import Observation
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID

from metricdemo import otlp
from tests.processes import free_port, run_django, wait_until
from tests.scraping import demo_definitions, parse
from tests.servers import (
    demo_database,
    get,
    gunicorn_args,
    running,
    server_env,
    set_value,
)

OBSERVABLE = "metricdemo.demo.observable_counter"
DEFINITIONS = "metricdemo.demo.definitions"
EXPORTER_LOGGER = "opentelemetry.exporter.otlp.proto.http.metric_exporter"


@dataclass(frozen=True)
class Point:
    """One data point as it arrived, with where it came from."""

    push: int  # the number of the request it came in, from 0
    instance: str  # the resource's service.instance.id
    name: str
    attributes: dict
    value: float
    cumulative: bool | None  # None for a gauge


class Receiver:
    """An OTLP/HTTP receiver on 127.0.0.1 that decodes and keeps every data point."""

    def __init__(self) -> None:
        self.points: list[Point] = []
        #: Histogram data points as they arrived: (name, attributes, point).
        self.histograms: list[tuple[str, dict, object]] = []
        self.pushes = 0
        self.status = 200
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.receiver = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Return the base URL, as OTEL_EXPORTER_OTLP_ENDPOINT takes it."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def record(self, request: ExportMetricsServiceRequest) -> None:
        """Keep the data points of one decoded request."""
        with self._lock:
            push = self.pushes
            self.pushes += 1
            for resource_metrics in request.resource_metrics:
                resource = _attributes(resource_metrics.resource.attributes)
                for scope_metrics in resource_metrics.scope_metrics:
                    for metric in scope_metrics.metrics:
                        kind = metric.WhichOneof("data")
                        if kind == "histogram":
                            self.histograms.extend(
                                (metric.name, _attributes(p.attributes), p)
                                for p in metric.histogram.data_points
                            )
                        if kind not in ("sum", "gauge"):
                            continue
                        data = getattr(metric, kind)
                        cumulative = None
                        if kind == "sum":
                            cumulative = data.aggregation_temporality == 2
                        for point in data.data_points:
                            value = getattr(point, point.WhichOneof("value"))
                            self.points.append(
                                Point(
                                    push,
                                    resource[SERVICE_INSTANCE_ID],
                                    metric.name,
                                    _attributes(point.attributes),
                                    float(value),
                                    cumulative,
                                )
                            )

    def latest(self, name: str, *, since: int = 0, **attributes) -> dict[str, float]:
        """Return {instance: last value} of the series with exactly these attributes."""
        with self._lock:
            return {
                point.instance: point.value
                for point in self.points
                if point.push >= since
                and point.name == name
                and point.attributes == attributes
            }


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        body = self.rfile.read(int(self.headers["Content-Length"]))
        receiver: Receiver = self.server.receiver  # type: ignore[attr-defined]
        status = receiver.status if self.path == "/v1/metrics" else 404
        if status == 200:
            receiver.record(ExportMetricsServiceRequest.FromString(body))
        reply = ExportMetricsServiceResponse().SerializeToString()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args) -> None:
        pass


def _attributes(key_values) -> dict:
    return {
        kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in key_values
    }


@pytest.fixture
def receiver():
    """Run a receiver for one test."""
    with Receiver() as running_receiver:
        yield running_receiver


def push_env(receiver: Receiver) -> dict[str, str]:
    """Return the environment that makes a server push to `receiver` twice a second."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        # Empty means unset: a developer's own settings must not redirect pushes.
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "",
        "OTEL_METRICS_EXPORTER": "",
        "OTEL_METRIC_EXPORT_INTERVAL": "500",
    }


# Real servers ----------------------------------------------------------------


@contextmanager
def gunicorn_pushing(tmp_path, receiver, *options: str) -> Iterator[tuple[str, str]]:
    """Run the demo under gunicorn, two workers pushing to `receiver`.

    Yields the URL of /metrics and the demo database's URL.
    """
    db_url = demo_database(tmp_path)
    port = free_port()
    env = server_env(
        db_url,
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="2",
        **push_env(receiver),
    )
    url = f"http://127.0.0.1:{port}/metrics"
    with running([*gunicorn_args(), *options], env, url):
        yield url, db_url


def from_instances(count: int, values: dict[str, float]) -> dict[str, float] | None:
    """Return `values` once they come from `count` instances or more, else None."""
    return values if len(values) >= count else None


def test_gunicorn_workers_push_definitions_each_as_its_own_instance(tmp_path, receiver):
    with gunicorn_pushing(tmp_path, receiver) as (url, db_url):
        pushed = wait_until(
            lambda: from_instances(2, receiver.latest(OBSERVABLE, const_attr_3="3")),
            timeout=60,
            what="both workers to push the observable counter",
        )
        assert set(pushed.values()) == {10.0}
        for instance in pushed:
            # A row count, a code counter and a self-metric, from each worker.
            assert receiver.latest(DEFINITIONS, kind="counter")[instance] == 3.0
            assert receiver.latest(DEFINITIONS, kind="gauge")[
                instance
            ] == demo_definitions("gauge")
            counter = receiver.latest("metricdemo.demo.counter", const_attr_1="1")
            assert counter[instance] == 11.0
            active = sum(map(demo_definitions, ("gauge", "counter", "histogram")))
            assert receiver.latest("metricdemo.definitions.active")[instance] == active
        assert {
            point.cumulative for point in receiver.points if point.name == OBSERVABLE
        } == {True}

        # /metrics names the same instance as the pushes of the worker answering.
        status, body = get(url)
        assert status == 200
        (target,) = parse(body)["target_info"].samples
        assert target.labels["service_instance_id"] in pushed

        since = receiver.pushes
        set_value(db_url, OBSERVABLE, 25)

        def edited() -> dict[str, float]:
            latest = receiver.latest(OBSERVABLE, since=since, const_attr_3="3")
            return {instance: v for instance, v in latest.items() if v == 25.0}

        after = wait_until(
            lambda: from_instances(2, edited()),
            timeout=30,
            what="both workers to push the edited value",
        )
        assert set(after) == set(pushed)


def test_a_preloaded_gunicorn_pushes_from_every_worker(tmp_path, receiver):
    """With --preload the workers are forked after setup; each restarts the push."""
    with gunicorn_pushing(tmp_path, receiver, "--preload") as (url, _):
        # The master pushes too, as a third instance.
        pushed = wait_until(
            lambda: from_instances(3, receiver.latest(OBSERVABLE, const_attr_3="3")),
            timeout=60,
            what="the master and both workers to push",
        )
        assert set(pushed.values()) == {10.0}
        for _ in range(4):
            status, body = get(url)
            assert status == 200
            (target,) = parse(body)["target_info"].samples
            assert target.labels["service_instance_id"] in pushed


def test_without_an_endpoint_no_push_thread_starts():
    result = run_django(
        "import sys, threading\n"
        "from metricdemo.telemetry import get_telemetry\n"
        "assert get_telemetry().pusher is None\n"
        "names = [thread.name for thread in threading.enumerate()]\n"
        "assert 'metricdemo-otlp-push' not in names, names\n"
        "prefix = 'opentelemetry.exporter.otlp'\n"
        "print('exporter loaded:', any(m.startswith(prefix) for m in sys.modules))\n",
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": "",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "",
        },
    )
    assert "exporter loaded: False" in result.stdout


@pytest.mark.django_db(transaction=True)
def test_pushes_after_an_instrument_is_retired_carry_definitions_and_code(
    receiver, define
):
    """A rename moves the definitions to a new provider; pushes follow it."""
    define(name="push.before", source="constant", value=2, attributes={"k": "v"})
    run_django(
        "from metricdemo.models import MetricDefinition\n"
        "from metricdemo.telemetry import get_telemetry\n"
        "pusher = get_telemetry().pusher\n"
        "assert pusher.push()\n"
        "d = MetricDefinition.objects.get(name='push.before')\n"
        "d.name = 'push.after'\n"
        "d.full_clean()\n"
        "d.save()\n"
        "assert pusher.push()\n",
        # No push from the thread in between: only the two above.
        env={**push_env(receiver), "OTEL_METRIC_EXPORT_INTERVAL": "600000"},
    )
    assert receiver.pushes == 2
    (instance,) = receiver.latest("push.before", k="v")
    assert receiver.latest("push.before", since=1, k="v") == {}
    assert receiver.latest("push.after", since=1, k="v") == {instance: 2.0}
    counter = receiver.latest("metricdemo.demo.counter", since=1, const_attr_1="1")
    assert counter == {instance: 11.0}
    active = receiver.latest("metricdemo.definitions.active", since=1)
    assert active == {instance: 1.0}


# The pusher in this process --------------------------------------------------


@pytest.fixture
def provider_with(receiver):
    """Return a function that makes a MeterProvider with a pusher to `receiver`."""
    providers: list[MeterProvider] = []

    def make(url: str | None = None, seconds: float = 60.0):
        pusher = otlp.OTLPPusher(url or otlp.metrics_url(receiver.url), seconds)
        provider = MeterProvider(metric_readers=[pusher], shutdown_on_exit=False)
        providers.append(provider)
        return provider, pusher

    yield make
    for provider in providers:
        provider.shutdown()


def test_a_push_sends_instruments_with_the_provider_resource(receiver, provider_with):
    provider, pusher = provider_with()
    counter = provider.get_meter("test").create_counter("test.pushed")
    counter.add(2, {"colour": "red"})
    assert pusher.push()
    counter.add(3, {"colour": "red"})
    assert pusher.push()
    instance = provider._sdk_config.resource.attributes[SERVICE_INSTANCE_ID]
    # Cumulative, as on /metrics: the second push carries the total.
    assert receiver.latest("test.pushed", since=1, colour="red") == {instance: 5.0}


def test_the_push_thread_prepares_every_collection(receiver, provider_with):
    """Each push runs the prepared block first, as the definitions need."""
    provider, pusher = provider_with(seconds=0.1)
    preparations = []

    @contextmanager
    def prepared():
        preparations.append(1)
        yield

    provider.get_meter("test").create_observable_gauge(
        "test.preparations",
        callbacks=[lambda options: [Observation(len(preparations))]],
    )
    pusher.start(prepared)
    assert pusher.running
    values = wait_until(
        lambda: (
            found if len(found := {p.value for p in receiver.points}) >= 3 else None
        ),
        timeout=30,
        what="three pushes",
    )
    # Every collection saw its own preparation: 1, 2, 3, ...
    assert sorted(values)[:3] == [1.0, 2.0, 3.0]
    pusher.shutdown()
    wait_until(
        lambda: None if pusher.running else True, timeout=10, what="the thread to end"
    )


def test_a_refused_push_is_logged_once_until_it_recovers(
    receiver, provider_with, caplog
):
    provider, pusher = provider_with()
    provider.get_meter("test").create_counter("test.refused").add(1)
    receiver.status = 400
    with caplog.at_level(logging.INFO):
        assert not pusher.push()
        assert not pusher.push()
        receiver.status = 200
        assert pusher.push()
        assert pusher.push()
    ours = [r for r in caplog.records if r.name == "metricdemo"]
    assert [r.levelname for r in ours] == ["WARNING", "INFO"]
    assert "400" in ours[0].getMessage() and receiver.url in ours[0].getMessage()
    assert "works again" in ours[1].getMessage()
    # The exporter's own lines for those pushes were held back.
    assert [r for r in caplog.records if r.name == EXPORTER_LOGGER] == []


def test_an_unreachable_receiver_never_raises(provider_with, caplog, monkeypatch):
    # A short exporter timeout leaves no time for its retries.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "0.5")
    nowhere = f"http://127.0.0.1:{free_port()}/v1/metrics"
    provider, pusher = provider_with(nowhere)
    provider.get_meter("test").create_counter("test.lost").add(1)
    with caplog.at_level(logging.WARNING):
        assert not pusher.push()
        assert not pusher.push()
    (warning,) = [r for r in caplog.records if r.name == "metricdemo"]
    assert nowhere in warning.getMessage()


# Configuration ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "metricdemo", "expected"),
    [
        ({}, {}, None),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318/"},
            {},
            "http://c:4318/v1/metrics",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m:9/push",
            },
            {},
            "http://m:9/push",
        ),
        (
            {"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://m:9/push"},
            {"OTLP_ENDPOINT": "https://s:4318"},
            "https://s:4318/v1/metrics",
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                "OTEL_METRICS_EXPORTER": "none",
            },
            {},
            None,
        ),
        (
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
                "OTEL_METRICS_EXPORTER": "prometheus, otlp",
            },
            {},
            "http://c:4318/v1/metrics",
        ),
    ],
)
def test_endpoint(monkeypatch, environ, metricdemo, expected):
    for name in (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "OTEL_METRICS_EXPORTER",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with override_settings(METRICDEMO=metricdemo):
        assert otlp.endpoint() == expected


@pytest.mark.parametrize(
    ("environ", "metricdemo", "expected"),
    [
        ("", {}, 60.0),
        ("500", {}, 0.5),
        ("500", {"OTLP_INTERVAL": 2}, 2.0),
        ("soon", {}, 60.0),
        ("-5", {}, 60.0),
    ],
)
def test_interval(monkeypatch, environ, metricdemo, expected):
    monkeypatch.setenv("OTEL_METRIC_EXPORT_INTERVAL", environ)
    with override_settings(METRICDEMO=metricdemo):
        assert otlp.interval() == expected


# One collection for pull and push ---------------------------------------------


# The evaluation threads read with connections of their own: rows must be committed.
@pytest.mark.django_db(transaction=True)
def test_a_push_and_a_scrape_each_evaluate_a_definition_once(
    receiver, define, orders, callback, client
):
    """Pushing shares the scrape's reader: every collection evaluates once."""
    from metricdemo.telemetry import get_telemetry
    from tests.queries import all_queries

    calls = []
    callback("test.push.calls", lambda: calls.append(1) or len(calls))
    define(name="push.calls", source="callback", callback="test.push.calls")
    define(
        name="push.orders",
        source="row_count",
        model="shop.Order",
        filters={"status": "pending"},
    )
    pusher = otlp.OTLPPusher(otlp.metrics_url(receiver.url), 3600)
    pusher.start(source=get_telemetry().collector.collect_for_push)
    try:
        assert client.get("/metrics").status_code == 200  # loads the definitions
        for collect in (pusher.push, lambda: client.get("/metrics")):
            before = len(calls)
            with all_queries() as statements:
                assert collect()
            orders_table = [sql for sql in statements if "shop_order" in sql]
            assert len(orders_table) == 1, orders_table
            assert len(calls) == before + 1
        assert pusher.push()
    finally:
        pusher.shutdown()
    (instance,) = receiver.latest("push.orders")
    assert receiver.latest("push.orders") == {instance: 3.0}
    assert receiver.latest("push.calls")[instance] == float(len(calls))
