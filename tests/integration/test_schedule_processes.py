"""Two "hosts" of three gunicorn workers share one refresh schedule in PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from contextlib import ExitStack

import pytest

from tests.postgres import Cluster, needs_cluster
from tests.processes import django_env, free_port, run_django, wait_until
from tests.scraping import parse, value
from tests.servers import get, gunicorn_args, running

INTERVAL = 10
#: Seconds of concurrent scraping; about 6 intervals.
WINDOW = 60
#: Seconds each evaluation lasts, so that a process can be killed in one.
CALL_SECONDS = 2

# The cluster is the test's own whatever DATABASE_URL says: make test-all
# runs it once, in the SQLite suite.
pytestmark = [needs_cluster, pytest.mark.slow, pytest.mark.backend_neutral]


def sql(url: str, query: str, *params):
    """Run one query on the cluster and return its rows."""
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(
        url.replace("postgres://", "postgresql://"), autocommit=True
    ) as db:
        return db.execute(query, params).fetchall()


@pytest.fixture(scope="module")
def cluster():
    """A PostgreSQL of the test's own, migrated, with one scheduled definition."""
    server = Cluster()
    server.start()
    try:
        run_django(
            "from django.core.management import call_command\n"
            "from metricdemo.models import MetricDefinition\n"
            "call_command('migrate', verbosity=0)\n"
            "d = MetricDefinition(name='calls', source='callback', timeout=5,\n"
            f"    callback='test.count_calls', refresh_interval={INTERVAL})\n"
            "d.full_clean()\n"
            "d.save()\n",
            db_url=server.url,
        )
        yield server
    finally:
        server.destroy()


def host(url: str, port: int) -> list:
    """Return the command and environment of one "host": 3 gunicorn workers."""
    env = django_env(
        db_url=url,
        env={
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": "3",
            "METRICDEMO_REFRESH": "1",
            "METRICDEMO_TEST_CALL_SECONDS": str(CALL_SECONDS),
        },
    )
    return [gunicorn_args(), env, f"http://127.0.0.1:{port}/metrics"]


def every_process_exports_the_stored_value(url: str, urls: list[str]) -> int:
    """Scrape until every worker answered between two looks at the stored value.

    Returns the number of processes that answered, all with the stored value.
    """
    for _ in range(5):
        before = sql(url, "SELECT observations FROM metricdemo_scheduledvalue")
        by_process: dict[str, float | None] = {}
        for _ in range(60):
            for metrics_url in urls:
                families = parse(get(metrics_url)[1])
                (info,) = families["target_info"].samples
                by_process[info.labels["service_instance_id"]] = value(
                    families, "calls"
                )
            if len(by_process) == 6:
                break
        after = sql(url, "SELECT observations FROM metricdemo_scheduledvalue")
        if before == after:  # no refresh in between
            stored = json.loads(before[0][0])[0][0]
            assert set(by_process.values()) == {stored}, by_process
            return len(by_process)
    raise AssertionError("a refresh kept coming between two looks")


@pytest.mark.long
def test_two_hosts_of_workers_refresh_once_per_interval_and_survive_a_kill(cluster):
    urls = []
    with ExitStack() as stack:
        for port in (free_port(), free_port()):
            args, env, url = host(cluster.url, port)
            urls.append(stack.enter_context(running(args, env, url)))

        # Six scrapers, three per host, for WINDOW seconds.
        seen: list[tuple[float, str, float | None]] = []
        failures: list[str] = []
        stop = threading.Event()

        def scraper(url: str) -> None:
            while not stop.is_set():
                status, body = get(url)
                if status != 200:
                    failures.append(f"{url}: {status}")
                    continue
                families = parse(body)
                (info,) = families["target_info"].samples
                seen.append(
                    (
                        time.time(),
                        info.labels["service_instance_id"],
                        value(families, "calls"),
                    )
                )

        threads = [
            threading.Thread(target=scraper, args=(urls[i % 2],)) for i in range(6)
        ]
        (started,) = sql(cluster.url, "SELECT now()")[0]
        for thread in threads:
            thread.start()
        time.sleep(WINDOW)
        (ended,) = sql(cluster.url, "SELECT now()")[0]
        stop.set()
        for thread in threads:
            thread.join(30)
        assert failures == []

        # The first refresh starts with the first scrape, then one per interval,
        # each up to one refresher tick (1 s) late: 6 in 60 s, 7 when the window
        # also catches the start of a seventh, 5 when the lateness adds up.
        (calls,) = sql(
            cluster.url,
            "SELECT count(*) FROM shop_call WHERE created BETWEEN %s AND %s",
            started,
            ended,
        )[0]
        print(f"{calls} evaluations in {WINDOW} s")
        assert 5 <= calls <= 7, calls
        processes = {process for _, process, _ in seen}
        assert len(processes) == 6, processes  # every worker of both hosts answered
        # Each refresh exports the calls counted so far: whole numbers, rising.
        values = [v for _, _, v in seen if v is not None]
        assert values and all(v == int(v) for v in values)
        assert every_process_exports_the_stored_value(cluster.url, urls) == 6

        # Kill the worker that holds the lease in the middle of an evaluation:
        # once its call is recorded (the lease, taken at the start, lasts the
        # timeout of 5 s plus 2) and before it returns.
        holder, killed_at = wait_until(
            lambda: (
                sql(
                    cluster.url,
                    "SELECT v.holder, c.created FROM metricdemo_scheduledvalue v "
                    "JOIN shop_call c ON c.pid = split_part(v.holder, ':', 2)::int "
                    "WHERE v.holder <> '' "
                    "AND c.created >= v.expires_at - interval '7 seconds'",
                )
                or [None]
            )[0],
            timeout=2 * INTERVAL,
            what="a refresh in the middle of its evaluation",
            interval=0.05,
        )
        os.kill(int(holder.split(":")[1]), signal.SIGKILL)
        for url in urls:  # keep the other workers scraping, so they refresh
            get(url)
        taken_over = wait_until(
            lambda: (
                sql(
                    cluster.url,
                    "SELECT created, pid FROM shop_call WHERE created > %s",
                    killed_at,
                )
                or None
            ),
            timeout=3 * INTERVAL,
            what="another process to take the refresh over",
        )
        created, pid = taken_over[0]
        assert pid != int(holder.split(":")[1])
        print(f"taken over {(created - killed_at).total_seconds():.1f} s later")
        # Within one interval of the killed refresh, plus one tick.
        assert (created - killed_at).total_seconds() <= INTERVAL + 1.5
