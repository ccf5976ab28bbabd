"""The value history: one sample per definition and interval across processes.

Bounded and pruned, written once by several processes, thinned for a
sparkline, never failing or slowing a scrape; and the same history read
from a real Prometheus, or None from one that does not answer.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest
from django.db import DatabaseError

from metricdemo import prometheus_history
from metricdemo.models import ValueSample
from metricdemo.values import history
from tests.processes import ROOT, django_env, wait_until
from tests.scraping import scrape, value

#: 2026-12-07 14:00:00 UTC, the start of a minute.
BASE = 1_796_652_000
MINUTE = dt.timedelta(minutes=1)
BASE_TIME = dt.datetime.fromtimestamp(BASE, tz=dt.UTC)
#: The history's own reading of HISTORY_INTERVAL, which conftest.py turns off.
READ_INTERVAL = history.interval


@pytest.fixture
def recorder():
    """A fresh recorder for this process; its pending write awaited afterwards."""
    history._recorder.take()
    made = history.get_recorder()
    yield made
    try:
        made.wait_idle(30)
    finally:
        history._recorder.take()


@pytest.fixture
def clock(monkeypatch):
    """The history's clock, at BASE + 1 s until a test moves it (clock[0])."""
    now = [BASE + 1.0]
    monkeypatch.setattr(history, "clock", lambda: now[0])
    return now


@pytest.fixture
def history_on(settings, monkeypatch):
    """Turn the history on: every 60 s; more METRICDEMO keys as given."""
    monkeypatch.setattr(history, "interval", READ_INTERVAL)

    def turn_on(**more) -> None:
        settings.METRICDEMO = {**settings.METRICDEMO, "HISTORY_INTERVAL": 60, **more}

    turn_on()
    return turn_on


def at_minute(clock: list[float], minute: int) -> None:
    clock[0] = BASE + 60 * minute + 1


def rows_of(definition) -> list[tuple[dt.datetime, float | None, int, str]]:
    return list(
        ValueSample.objects.filter(definition_id=definition.pk)
        .order_by("time")
        .values_list("time", "value", "series", "outcome")
    )


# Bounded and pruned.


@pytest.mark.django_db(transaction=True)
def test_value_history__keeps_history_points_per_definition(
    define, client, recorder, clock, history_on
):
    history_on(HISTORY_POINTS=5)
    count = define(name="h.orders", source="row_count", model="shop.Order")
    pid = define(name="h.pid", source="callback", callback="test.pid")
    for minute in range(12):
        at_minute(clock, minute)
        families = scrape(client)
        recorder.wait_idle(30)
        # A second scrape in the same interval queues nothing.
        scrape(client)
        recorder.wait_idle(30)
    assert value(families, "h_pid") == os.getpid()
    assert recorder.writes == 12

    # 2 definitions x HISTORY_POINTS rows, the newest five minutes.
    assert ValueSample.objects.count() == 2 * 5
    times = [BASE_TIME + minute * MINUTE for minute in range(7, 12)]
    assert rows_of(count) == [(t, 0.0, 1, "success") for t in times]
    assert rows_of(pid) == [(t, float(os.getpid()), 1, "success") for t in times]


@pytest.mark.django_db(transaction=True)
def test_value_history__an_error_is_a_sample_without_a_value(
    define, client, recorder, clock, history_on, callback
):
    def broken() -> float:
        raise RuntimeError("no value today")

    callback("test.broken", broken)
    failing = define(name="h.broken", source="callback", callback="test.broken")
    scrape(client)
    recorder.wait_idle(30)
    assert rows_of(failing) == [(BASE_TIME, None, 0, "error")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("off", [None, 0])
def test_value_history__off_without_an_interval(
    define, client, recorder, history_on, off
):
    history_on(HISTORY_INTERVAL=off)
    define(name="h.pid", source="callback", callback="test.pid")
    scrape(client)
    recorder.wait_idle(30)
    assert recorder.writes == 0
    assert not ValueSample.objects.exists()


# Written once across processes.

#: Run by each process: wait for the gate, then scrape once in each of
#: ROUNDS intervals (a patched clock), all processes at the same moments.
WRITER = """
import json, os, sys, time
from pathlib import Path
from django.test import Client
from metricdemo.values import history

gate = Path(os.environ["GATE"])
base, rounds = int(os.environ["BASE"]), int(os.environ["ROUNDS"])
(gate / f"ready-{os.getpid()}").touch()
while not (gate / "go").exists():
    time.sleep(0.01)
go = float((gate / "go").read_text())
client = Client()
for r in range(rounds):
    history.clock = lambda r=r: base + 60 * r + 1
    while time.time() < go + 0.5 * r:
        time.sleep(0.001)
    response = client.get("/metrics")
    assert response.status_code == 200, response.status_code
    history.get_recorder().wait_idle(60)
print(json.dumps({"pid": os.getpid(), "writes": history.get_recorder().writes}))
"""


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_value_history__several_processes_write_each_sample_once(define, tmp_path):
    rounds, processes = 4, 3
    pid = define(name="h.pid", source="callback", callback="test.pid")
    count = define(name="h.orders", source="row_count", model="shop.Order")
    env = django_env(
        env={
            "METRICDEMO_TEST_HISTORY_INTERVAL": "60",
            "GATE": str(tmp_path),
            "BASE": str(BASE),
            "ROUNDS": str(rounds),
        }
    )
    script = "import django\ndjango.setup()\n" + WRITER
    started = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    try:

        def all_ready() -> bool | None:
            for process in started:
                # One that exits while starting fails the wait at once.
                assert process.poll() is None, process.communicate()[1]
            return len(list(tmp_path.glob("ready-*"))) == processes or None

        wait_until(all_ready, timeout=60, what="the processes to start")
        # All of them scrape at the same moments, 0.5 s apart.
        (tmp_path / "go").write_text(str(time.time() + 0.5))
        outputs = [process.communicate(timeout=120) for process in started]
    finally:
        for process in started:
            process.kill()
    reports = []
    for process, (out, err) in zip(started, outputs, strict=True):
        assert process.returncode == 0, err
        assert "cannot be written" not in err, err
        reports.append(json.loads(out))
    # Every process wrote every interval...
    assert [report["writes"] for report in reports] == [rounds] * processes
    # ...and each interval has exactly one sample of each definition, the
    # value of whichever process came first.
    times = [BASE_TIME + r * MINUTE for r in range(rounds)]
    pids = {float(report["pid"]) for report in reports}
    samples = rows_of(pid)
    assert [t for t, *_ in samples] == times
    assert {v for _, v, *_ in samples} <= pids
    assert rows_of(count) == [(t, 0.0, 1, "success") for t in times]
    assert ValueSample.objects.count() == 2 * rounds


# Thinned for a sparkline.


@pytest.mark.django_db
def test_value_history__thinned_to_the_newest_of_each_slice(
    django_assert_num_queries,
):
    day = 1440
    ValueSample.objects.bulk_create(
        ValueSample(
            definition_id=pk,
            time=BASE_TIME + minute * MINUTE,
            value=None if minute == 1415 else float(minute + pk * 10_000),
            series=1,
            outcome="success",
        )
        for pk in (1, 2)
        for minute in range(day)
    )
    until = BASE_TIME + (day - 1) * MINUTE
    # One query counts the samples, one reads those of both (slices of 24).
    with django_assert_num_queries(2):
        found = history.history([2, 1, 3], since=BASE_TIME, until=until, points=60)
    assert sorted(found) == [1, 2, 3]
    assert found[3] == []
    # 1440 samples in 60 slices of 24: the newest of each, the newest first.
    minutes = list(range(23, day, 24))
    assert found[1] == [
        (BASE_TIME + m * MINUTE, None if m == 1415 else float(m + 10_000))
        for m in minutes
    ]
    assert [v for _, v in found[2]][-1] == 1439.0 + 20_000

    # A shorter span: fewer samples, thinner slices.
    since = until - 439 * MINUTE
    found = history.history([1], since=since, until=until, points=60)
    assert len(found[1]) == 55  # 440 samples in slices of 8
    assert found[1][-1] == (until, 1439.0 + 10_000)
    assert found[1][0][0] == BASE_TIME + (1439 - 54 * 8) * MINUTE

    # Fewer samples than points: all of them.
    found = history.history([1], since=until - 9 * MINUTE, until=until, points=60)
    assert [t for t, _ in found[1]] == [until - m * MINUTE for m in range(9, -1, -1)]


@pytest.mark.django_db
def test_value_history__a_new_history_is_not_thinned_by_the_span_it_will_fill(
    django_assert_num_queries,
):
    # A day's span, but the site has kept samples for 5 minutes only; another
    # definition has the whole day.
    day = 1440
    until = BASE_TIME + (day - 1) * MINUTE
    ValueSample.objects.bulk_create(
        [
            *(
                ValueSample(definition_id=1, time=until - m * MINUTE, value=float(m))
                for m in range(5)
            ),
            *(
                ValueSample(definition_id=2, time=BASE_TIME + m * MINUTE, value=1.0)
                for m in range(day)
            ),
        ]
    )
    with django_assert_num_queries(3):
        found = history.history([1, 2], since=BASE_TIME, until=until, points=60)
    assert found[1] == [(until - m * MINUTE, float(m)) for m in range(4, -1, -1)]
    assert len(found[2]) == 60


@pytest.mark.django_db
def test_value_history__thinning_keeps_at_most_the_points_despite_gaps():
    # Samples every 30 s (the interval was shorter once): twice as many.
    ValueSample.objects.bulk_create(
        ValueSample(
            definition_id=1,
            time=BASE_TIME + dt.timedelta(seconds=30 * half),
            value=float(half),
            series=1,
            outcome="success",
        )
        for half in range(240)
    )
    until = BASE_TIME + dt.timedelta(seconds=30 * 239)
    found = history.history([1], since=BASE_TIME, until=until, points=10)
    assert len(found[1]) == 10
    assert found[1][-1] == (until, 239.0)
    assert history.history([], since=BASE_TIME) == {}


# Never failing or slowing a scrape.


@pytest.mark.django_db(transaction=True)
def test_value_history__a_failing_write_never_fails_a_scrape(
    define, client, recorder, clock, history_on, monkeypatch, caplog
):
    pid = define(name="h.pid", source="callback", callback="test.pid")
    real_write = history.write

    def broken(*args, **kwargs) -> None:
        raise DatabaseError("the disk is full")

    monkeypatch.setattr(history, "write", broken)
    with caplog.at_level(logging.INFO, logger="metricdemo"):
        for minute in range(3):
            at_minute(clock, minute)
            assert value(scrape(client), "h_pid") == os.getpid()
            recorder.wait_idle(30)
        assert recorder.writes == 3
        # Logged once, not once per interval.
        failures = [r for r in caplog.records if "cannot be written" in r.message]
        assert len(failures) == 1
        assert "the disk is full" in failures[0].getMessage()
        assert not ValueSample.objects.exists()

        monkeypatch.setattr(history, "write", real_write)
        at_minute(clock, 3)
        scrape(client)
        recorder.wait_idle(30)
    assert [t for t, *_ in rows_of(pid)] == [BASE_TIME + 3 * MINUTE]
    assert any("written again" in r.message for r in caplog.records)


@pytest.mark.django_db(transaction=True)
def test_value_history__a_failing_hook_never_fails_a_scrape(
    define, client, clock, history_on, monkeypatch, caplog
):
    define(name="h.pid", source="callback", callback="test.pid")

    def broken() -> history.Recorder:
        raise RuntimeError("no recorder")

    monkeypatch.setattr(history, "get_recorder", broken)
    monkeypatch.setattr(history, "_hook_failed", False)
    with caplog.at_level(logging.WARNING, logger="metricdemo"):
        for minute in range(2):
            at_minute(clock, minute)
            assert value(scrape(client), "h_pid") == os.getpid()
    failures = [r for r in caplog.records if "cannot take" in r.message]
    assert len(failures) == 1


@pytest.mark.django_db(transaction=True)
def test_value_history__a_slow_write_never_slows_a_scrape(
    define, client, recorder, clock, history_on, monkeypatch
):
    define(name="h.pid", source="callback", callback="test.pid")
    release = threading.Event()
    monkeypatch.setattr(history, "write", lambda *args, **kwargs: release.wait(30))
    try:
        started = time.monotonic()
        scrape(client)
        assert time.monotonic() - started < 2  # the write holds for 30 s
        # The next interval's write is skipped while this one still runs.
        at_minute(clock, 1)
        scrape(client)
        assert recorder.writes == 1
        assert time.monotonic() - started < 4
    finally:
        release.set()
    recorder.wait_idle(30)
    at_minute(clock, 2)
    scrape(client)
    assert recorder.writes == 2


@pytest.mark.django_db
def test_value_history__prune_deletes_only_what_is_older(db):
    ValueSample.objects.bulk_create(
        ValueSample(definition_id=pk, time=BASE_TIME + m * MINUTE, series=1)
        for pk in (1, 2)
        for m in range(10)
    )
    # Keeping 4 intervals up to minute 9: minutes 6 to 9.
    assert history.prune(BASE_TIME + 9 * MINUTE, 60, 4) == 2 * 6
    assert sorted({t for t in ValueSample.objects.values_list("time", flat=True)}) == [
        BASE_TIME + m * MINUTE for m in range(6, 10)
    ]


@pytest.mark.django_db
def test_value_history__a_second_write_of_an_interval_is_ignored(db):
    def sample(value: float) -> ValueSample:
        return ValueSample(definition_id=1, time=BASE_TIME, value=value, series=1)

    history.write([sample(1.0)], BASE_TIME, 60)
    history.write([sample(2.0)], BASE_TIME, 60)
    assert list(ValueSample.objects.values_list("value", flat=True)) == [1.0]


# From Prometheus.

PROMETHEUS = shutil.which("prometheus")
PROMETHEUS_MISSING = "prometheus is not installed: apt-get install prometheus"


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.backend_neutral
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(PROMETHEUS is None, reason=PROMETHEUS_MISSING)
def test_value_history__from_a_real_prometheus(define, tmp_path, django_user_model):
    from tests.integration.test_prometheus import demo_server, prometheus

    constant = define(name="h.constant", source="constant", value=7)
    users = define(
        name="h.users", source="row_count", model="auth.User", group_by="is_staff"
    )
    newest = define(
        name="h.newest",
        source="row_count",
        model="auth.User",
        aggregate="max",
        field="date_joined",
        group_by="is_staff",
        unit="s",
    )
    django_user_model.objects.create_user("ann")
    django_user_model.objects.create_user("bea")
    django_user_model.objects.create_user("cid", is_staff=True)

    started = dt.datetime.now(dt.UTC)
    with demo_server(tmp_path) as target, prometheus(tmp_path, target) as api:
        found = wait_until(
            lambda: (
                lambda result: (
                    result if result and len(result[constant.pk]) >= 3 else None
                )
            )(
                prometheus_history.history(
                    [constant, users, newest], since=started, base_url=api
                )
            ),
            timeout=60,
            what="Prometheus to scrape three times",
        )
        assert {v for _, v in found[constant.pk]} == {7.0}
        # The grouped count: the sum of its groups.
        assert {v for _, v in found[users.pk]} == {3.0}
        # Two groups of a maximum add up to nothing: no points, as locally.
        assert found[newest.pk] == []
        times = [t for t, _ in found[constant.pk]]
        assert times == sorted(times) and times[0] >= started - dt.timedelta(seconds=1)

        # A page's history in two queries says the same as a query each.
        until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
        each, together = (
            read([constant, users, newest], since=started, until=until, base_url=api)
            for read in (
                prometheus_history.history,
                prometheus_history.history_together,
            )
        )
        assert together == each and together[constant.pk]

        # query_range itself: the series of a plain selector.
        (series,) = prometheus_history.query_range(
            api, "h_constant", started, dt.datetime.now(dt.UTC), 1
        )
        assert series[0]["__name__"] == "h_constant"
        assert {v for _, v in series[1]} == {7.0}
        # A timeout under a second is one Prometheus takes too.
        assert prometheus_history.query_range(
            api, "h_constant", started, dt.datetime.now(dt.UTC), 1, timeout=0.5
        )
        # A query Prometheus refuses is None, never an exception.
        assert prometheus_history.query_range(api, "max(", started, started, 1) is None


def test_value_history__prometheus_that_never_answers_is_none_in_time(caplog):
    with socket.socket() as silent:
        # Connections complete in the backlog; nothing is ever read or sent.
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with caplog.at_level(logging.WARNING, logger="metricdemo"):
            for _ in range(2):
                started = time.monotonic()
                result = prometheus_history.query_range(
                    url, "up", BASE, BASE + 60, 15, timeout=0.5
                )
                assert result is None
                assert time.monotonic() - started < 1.5
            started = time.monotonic()
            assert (
                prometheus_history.history(
                    [_definition()], since=BASE_TIME, base_url=url, timeout=0.5
                )
                is None
            )
            assert time.monotonic() - started < 1.5
    # Logged once while it stays silent.
    assert len([r for r in caplog.records if url in r.getMessage()]) == 1


def test_value_history__prometheus_refused_or_unset_is_none(settings):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"  # not listening
        assert prometheus_history.query_range(url, "up", BASE, BASE + 60, 15) is None
    settings.METRICDEMO = {**settings.METRICDEMO, "PROMETHEUS_URL": None}
    assert prometheus_history.history([_definition()], since=BASE_TIME) is None


@pytest.mark.parametrize(
    ("fields", "promql"),
    [
        (
            {"name": "shop.orders", "kind": "counter", "unit": "{order}"},
            "max(sum by (job, instance) (shop_orders_total))",
        ),
        (
            {"name": "shop.orders", "source": "row_count", "group_by": "status"},
            "max(sum by (job, instance) (shop_orders))",
        ),
        (
            {"name": "shop.wait", "kind": "histogram", "unit": "s"},
            "max(sum by (job, instance) (shop_wait_seconds_count))",
        ),
        (
            {"name": "shop.load", "source": "callback"},
            "max(shop_load) and on () (max(count by (job, instance) (shop_load)) == 1)",
        ),
    ],
)
def test_value_history__the_query_of_a_definition(fields, promql):
    assert prometheus_history.promql_for(_definition(**fields)) == promql


def _definition(**fields):
    from metricdemo.models import MetricDefinition

    return MetricDefinition(pk=1, **{"name": "h.gauge", "kind": "gauge", **fields})


@pytest.mark.parametrize(
    ("names", "additive", "promql"),
    [
        (
            ["a_total", "b_seconds_count"],
            True,
            "max by (__name__) (sum by (__name__, job, instance) "
            '({__name__=~"a_total|b_seconds_count"}))',
        ),
        (
            ["shop_load"],
            False,
            'max by (__name__) ({__name__=~"shop_load"}) and on (__name__) '
            "(max by (__name__) (count by (__name__, job, instance) "
            '({__name__=~"shop_load"})) == 1)',
        ),
        # Not a name the exporter writes, but one that could not match others.
        (
            ["a.b"],
            True,
            "max by (__name__) (sum by (__name__, job, instance) "
            '({__name__=~"a\\\\.b"}))',
        ),
    ],
)
def test_value_history__the_query_of_several_definitions(names, additive, promql):
    assert prometheus_history.promql_for_names(names, additive=additive) == promql


class SlowPrometheus:
    """An HTTP server on 127.0.0.1 that answers range queries after `delay` seconds.

    Each answer is a matrix of `series` ({name: values}), by default none, as
    from a Prometheus that has no samples of the names asked for;
    /api/v1/alerts answers at once, with none.
    """

    def __init__(
        self, delay: float = 0.0, series: dict[str, list] | None = None
    ) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs, urlsplit

        self.queries: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                url = urlsplit(self.path)
                if url.path == "/api/v1/query_range":
                    server.queries.append(parse_qs(url.query)["query"][0])
                    time.sleep(delay)
                    data = {
                        "resultType": "matrix",
                        "result": [
                            {"metric": {"__name__": name}, "values": values}
                            for name, values in (series or {}).items()
                        ],
                    }
                else:
                    data = {"alerts": []}
                body = json.dumps({"status": "success", "data": data}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up waiting

            def log_message(self, format: str, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> SlowPrometheus:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()


def _many(count: int, start: int = 1, **fields) -> list:
    return [
        _definition(**{"name": f"h.n{pk}", **fields})
        for pk in range(start, start + count)
    ]


def _with_ids(definitions: list) -> list:
    for pk, definition in enumerate(definitions, start=1):
        definition.pk = pk
    return definitions


def test_value_history__a_page_of_definitions_in_two_queries():
    page = _with_ids([*_many(50, kind="counter"), *_many(50, start=51)])
    with SlowPrometheus() as server:
        found = prometheus_history.history_together(
            page, since=BASE_TIME, base_url=server.url
        )
    assert found == {pk: [] for pk in range(1, 101)}
    assert len(server.queries) == 2
    additive, other = server.queries
    assert additive.startswith("max by (__name__) (sum by (__name__, job, instance)")
    assert "h_n1_total|" in additive and "h_n51|" not in additive
    assert "h_n51|" in other and "== 1" in other


#: Prometheus 3's Accept header, which asks for UTF-8 names.
UTF8_SCRAPER = "text/plain;version=1.0.0;escaping=allow-utf-8"


@pytest.mark.django_db
@pytest.mark.parametrize("strategy", ["NoUTF8EscapingWithSuffixes", "NoTranslation"])
def test_value_history__utf8_names_are_read_as_a_prometheus_3_stores_them(
    client, define, settings, strategy
):
    settings.METRICDEMO = {**settings.METRICDEMO, "NAME_TRANSLATION": strategy}
    defined = [
        define(name="shop.orders.open", unit="{order}", value=3),
        define(name="shop.Wait", kind="counter", unit="s", value=4),
        define(name="disk.io", unit="By", value=5),
    ]
    text = client.get("/metrics", HTTP_ACCEPT=UTF8_SCRAPER).content.decode()
    written = set(re.findall(r'^\{"([^"]+)"', text, flags=re.MULTILINE))
    for definition in defined:
        classic, utf8 = prometheus_history.sample_names(definition)
        assert utf8 in written, (utf8, written)
        assert classic == prometheus_history.sample_name(definition)

    # The history of each is found under the name a Prometheus 3 stored.
    points = [[BASE + 60 * n, str(float(n))] for n in range(3)]
    stored = {prometheus_history.sample_names(d)[1]: points for d in defined}
    with SlowPrometheus(series=stored) as server:
        found = prometheus_history.history_together(
            defined, since=BASE_TIME, base_url=server.url
        )
    assert {pk: [v for _, v in items] for pk, items in found.items()} == {
        d.pk: [0.0, 1.0, 2.0] for d in defined
    }
    # A definition's own query asks for both names as well.
    for definition in defined:
        query = prometheus_history.promql_for(definition)
        assert all(
            re.escape(name).replace("\\", "\\\\") in query
            for name in prometheus_history.sample_names(definition)
        ), query


def test_value_history__classic_names_only_under_the_default_translation():
    assert prometheus_history.sample_names(_definition(name="shop.orders.open")) == (
        "shop_orders_open",
    )


def test_value_history__more_names_than_a_query_takes_make_more_queries():
    many = prometheus_history.NAMES_PER_QUERY + 1
    with SlowPrometheus() as server:
        prometheus_history.history_together(
            _with_ids(_many(many)), since=BASE_TIME, base_url=server.url
        )
    assert len(server.queries) == 2


def test_value_history__the_queries_of_a_page_share_one_timeout():
    """Each query answers within the timeout, but both together do not."""
    page = _with_ids([_definition(kind="counter"), _definition(name="h.other")])
    with SlowPrometheus(delay=0.6) as server:
        started = time.monotonic()
        found = prometheus_history.history_together(
            page, since=BASE_TIME, base_url=server.url, timeout=1.0
        )
        took = time.monotonic() - started
    assert found is None
    assert len(server.queries) == 2
    assert took < 1.2 + 0.5  # the timeout, not a timeout per query


def test_value_history__the_points_of_a_range_come_as_the_local_ones(monkeypatch):
    answer = [({}, [(BASE, 1.0), (BASE + 60, float("nan")), (BASE + 120, 3.0)])]
    monkeypatch.setattr(prometheus_history, "query_range", lambda *a, **k: answer)
    found = prometheus_history.history(
        [_definition()], since=BASE_TIME, base_url="http://p", points=2
    )
    assert found == {
        1: [(BASE_TIME + MINUTE, None), (BASE_TIME + 2 * MINUTE, 3.0)],
    }


@pytest.mark.django_db(transaction=True)
def test_value_history__wall_clock_times_without_time_zone_support(
    define, client, recorder, clock, history_on, settings
):
    """With USE_TZ = False, samples are stored and read as naive local times."""
    settings.USE_TZ = False
    settings.TIME_ZONE = "Europe/Berlin"
    pid = define(name="h.pid", source="callback", callback="test.pid")
    scrape(client)
    recorder.wait_idle(30)
    local = dt.datetime(2026, 12, 7, 15, 0)  # BASE in Berlin (CET)
    assert [t for t, *_ in rows_of(pid)] == [local]
    found = history.history([pid.pk], since=local, until=local + MINUTE)
    assert found == {pid.pk: [(local, float(os.getpid()))]}
