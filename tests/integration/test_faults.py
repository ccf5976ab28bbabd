"""The scrape budget holds when a database or the cache is locked or stops answering.

A lock is cut by the database itself; a server that does not answer at all
(stopped with SIGSTOP: the kernel still accepts its connections) is left
behind by the scrape, which serves what it can and does not wait on that
server again until the call it left behind returns.
"""

from __future__ import annotations

import importlib.util
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import connection, connections
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from metricdemo.models import MetricDefinition, ScheduledValue
from metricdemo.values import scheduled
from metricdemo.values.fingerprint import fingerprint
from tests.postgres import Cluster, needs_cluster
from tests.processes import django_env, free_port, run_django, wait_until
from tests.scraping import evaluations, parse, scrape, series, value
from tests.servers import get, gunicorn_args, running

#: The scrape budget these tests set, and the margin their answers get.
BUDGET = 2.0
MARGIN = 3.0
#: How long a lock is held, or a server stopped, at most: far past the budget,
#: so that a scrape that waits for it cannot pass.
HELD = 15.0
#: A scrape that does not wait on anything answers well within this.
QUICK = 1.5


def timed_scrape(client) -> tuple[dict, float]:
    """Scrape /metrics with the test client; return the families and the seconds."""
    started = time.monotonic()
    families = scrape(client)
    return families, time.monotonic() - started


@contextmanager
def table_locked(table: str) -> Iterator[None]:
    """Hold a lock on `table` from another connection that blocks reading it.

    PostgreSQL: ACCESS EXCLUSIVE; MariaDB: LOCK TABLES ... WRITE; SQLite: an
    exclusive transaction (which, in the WAL mode the demo uses, readers do
    not wait for). Released when the block ends, or after HELD seconds.
    """
    locked, release = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    def hold() -> None:
        # A thread of its own has a connection of its own.
        try:
            with connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    cursor.execute("BEGIN")
                    cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
                elif connection.vendor == "mysql":
                    cursor.execute(f"LOCK TABLES {table} WRITE")
                else:
                    cursor.execute("BEGIN EXCLUSIVE")
                locked.set()
                release.wait(HELD)
                if connection.vendor == "mysql":
                    cursor.execute("UNLOCK TABLES")
                else:
                    cursor.execute("ROLLBACK")
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            failure.append(exc)
            locked.set()
        finally:
            connections.close_all()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert locked.wait(30)
    assert not failure, failure
    try:
        yield
    finally:
        release.set()
        thread.join(HELD + 5)


@pytest.fixture
def budget():
    """Scrape with a budget of BUDGET seconds."""
    with override_settings(METRICDEMO={"SCRAPE_TIMEOUT": BUDGET, "REFRESH": False}):
        yield


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "table", ["metricdemo_changestamp", "metricdemo_scheduledvalue"]
)
def test_a_locked_table_costs_at_most_the_budget(
    client, define, callback, budget, table
):
    """Every statement a scrape runs is bounded by what is left of the budget."""
    from tests.shop.models import Customer

    Customer.objects.create(name="Anna")
    callback("test.one", lambda: 1)
    define(name="faults.constant", source="constant", value=7)
    define(name="faults.customers", source="row_count", model="shop.Customer")
    stored = define(
        name="faults.stored",
        source="callback",
        callback="test.one",
        refresh_interval=60,
    )
    ScheduledValue.objects.create(
        definition_id=stored.pk,
        fingerprint=fingerprint(stored, leave_out=scheduled.NOT_IN_FINGERPRINT),
        observations="[[3.0, {}]]",
        computed_at=timezone.now(),
        outcome="success",
    )
    families, _ = timed_scrape(client)
    assert value(families, "faults_constant") == 7.0
    assert value(families, "faults_customers") == 1.0
    assert value(families, "faults_stored") == 3.0

    with table_locked(table):
        families, seconds = timed_scrape(client)
        assert seconds < BUDGET + MARGIN, seconds
        # What does not read the locked table is served as usual.
        assert value(families, "faults_constant") == 7.0
        assert value(families, "faults_customers") == 1.0
        assert value(families, "metricdemo_definitions_active") == 3.0
        # A scheduled value is served as this process read it last, marked.
        assert value(families, "faults_stored") == 3.0
        families, seconds = timed_scrape(client)
        assert seconds < BUDGET + MARGIN, seconds
        assert value(families, "faults_constant") == 7.0
        assert value(families, "faults_stored") == 3.0
    if table == "metricdemo_scheduledvalue" and connection.vendor != "sqlite":
        assert evaluations(families, "faults.stored")["kept"] == 2.0

    # With the lock gone, the next scrapes read the table again.
    MetricDefinition.objects.filter(name="faults.constant").update(value=8)

    def changed():
        found = scrape(client)
        return found if value(found, "faults_constant") == 8.0 else None

    families = wait_until(changed, timeout=2 * HELD, what="the changed constant")
    assert value(families, "faults_customers") == 1.0


@pytest.mark.django_db(transaction=True)
def test_a_scrape_runs_no_query_in_a_request_transaction(client, define, monkeypatch):
    """With ATOMIC_REQUESTS the scrape's reads still run where it can stop waiting."""
    define(name="faults.constant", source="constant", value=7)
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)
    scrape(client)
    with CaptureQueriesContext(connection) as queries:
        families = scrape(client)
    assert value(families, "faults_constant") == 7.0
    assert [q["sql"] for q in queries] == []


def redis_server() -> str | None:
    return shutil.which("redis-server")


@contextmanager
def redis_running() -> Iterator[tuple[subprocess.Popen, str]]:
    """Run a redis-server of the test's own on a free port; yield it and its URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            redis_server(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"redis://127.0.0.1:{port}/0"
        wait_until(lambda: _redis_answers(port), timeout=20, what="redis-server")
        yield process, url
    finally:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        process.wait(10)


def _redis_answers(port: int) -> bool | None:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG") or None
    except OSError:
        return None


@pytest.mark.skipif(
    redis_server() is None or importlib.util.find_spec("redis") is None,
    reason="needs redis-server and the redis package (the db extra; make test-all)",
)
@pytest.mark.django_db(transaction=True)
def test_a_stopped_cache_costs_one_budget_then_nothing(client, define, callback):
    """A cache that does not answer is left behind, and used again once it answers."""
    calls: list[int] = []

    def count() -> int:
        calls.append(1)
        return 5

    callback("test.cached", count)
    define(name="faults.constant", source="constant", value=7)
    define(
        name="faults.cached",
        source="callback",
        callback="test.cached",
        cache_seconds=300,
    )
    with redis_running() as (server, url):
        caches = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": url,
            }
        }
        with override_settings(
            CACHES=caches, METRICDEMO={"SCRAPE_TIMEOUT": BUDGET, "REFRESH": False}
        ):
            assert value(scrape(client), "faults_cached") == 5.0
            families = scrape(client)
            assert evaluations(families, "faults.cached")["cached"] == 1.0
            assert len(calls) == 1

            server.send_signal(signal.SIGSTOP)
            # A scrape that waits on the stopped cache must not pass the test.
            unstop = threading.Timer(HELD, server.send_signal, [signal.SIGCONT])
            unstop.start()
            try:
                families, seconds = timed_scrape(client)
                assert seconds < BUDGET + MARGIN, seconds
                assert value(families, "faults_constant") == 7.0
                assert value(families, "faults_cached") == 5.0
                # The scrape after it does not wait on the cache again.
                families, seconds = timed_scrape(client)
                assert seconds < QUICK, seconds
                assert value(families, "faults_cached") == 5.0
                assert evaluations(families, "faults.cached")["cached"] == 1.0
            finally:
                unstop.cancel()
                server.send_signal(signal.SIGCONT)

            # Once the cache has answered, scrapes use it again.
            def cached_again():
                found = evaluations(scrape(client), "faults.cached")
                return found if found.get("cached", 0) > 1 else None

            wait_until(cached_again, timeout=HELD, what="the cache to be used again")


def checks_done(families) -> float:
    """Return how many change checks read the database (unchanged or reloaded)."""
    loads = series(families, "metricdemo_definitions_loads_total")
    return sum(n for labels, n in loads.items() if dict(labels)["outcome"] != "error")


@needs_cluster
@pytest.mark.slow
@pytest.mark.backend_neutral
def test_a_stopped_database_costs_one_budget_then_nothing():
    """A PostgreSQL server stopped with SIGSTOP under a kept connection."""
    cluster = Cluster()
    cluster.start()
    try:
        db_url = cluster.url + "?connect_timeout=3"
        run_django(
            "from django.core.management import call_command\n"
            "from metricdemo.models import MetricDefinition\n"
            "from tests.shop.models import Customer\n"
            "call_command('migrate', verbosity=0)\n"
            "Customer.objects.create(name='Anna')\n"
            "Customer.objects.create(name='Bea')\n"
            "for fields in [\n"
            "    dict(name='faults.constant', source='constant', value=7),\n"
            "    dict(name='faults.customers', source='row_count',\n"
            "         model='shop.Customer'),\n"
            "]:\n"
            "    definition = MetricDefinition(**fields)\n"
            "    definition.full_clean()\n"
            "    definition.save()\n",
            db_url=db_url,
        )
        port = free_port()
        env = django_env(
            db_url=db_url,
            env={
                "GUNICORN_BIND": f"127.0.0.1:{port}",
                "GUNICORN_WORKERS": "1",
                "METRICDEMO_TEST_SCRAPE_TIMEOUT": str(BUDGET),
            },
        )
        url = f"http://127.0.0.1:{port}/metrics"
        with running(gunicorn_args(), env, url):
            families = parse(get(url)[1])
            assert value(families, "faults_customers") == 2.0

            cluster.pause()
            started = time.monotonic()
            status, body = get(url, timeout=HELD)
            seconds = time.monotonic() - started
            assert status == 200
            assert seconds < BUDGET + MARGIN, seconds
            families = parse(body)
            assert value(families, "faults_constant") == 7.0
            assert value(families, "metricdemo_definitions_active") == 2.0
            # The row count serves its last good value, marked as such.
            assert value(families, "faults_customers") == 2.0
            assert evaluations(families, "faults.customers").get("kept") == 1.0

            # The next scrape does not wait on the stopped server again.
            started = time.monotonic()
            status, body = get(url, timeout=HELD)
            seconds = time.monotonic() - started
            assert status == 200
            assert seconds < QUICK, seconds
            families = parse(body)
            assert value(families, "faults_constant") == 7.0
            assert evaluations(families, "faults.customers").get("kept") == 2.0
            checked_before = checks_done(families)
            counted_before = evaluations(families, "faults.customers")["success"]

            cluster.resume()

            def counted_again():
                found = parse(get(url, timeout=HELD)[1])
                return (
                    found
                    if evaluations(found, "faults.customers")["success"]
                    > counted_before
                    else None
                )

            families = wait_until(counted_again, timeout=HELD, what="a fresh count")
            assert value(families, "faults_customers") == 2.0
            # The change check runs again.
            assert checks_done(families) > checked_before
    finally:
        cluster.destroy()
