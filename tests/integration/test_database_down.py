"""The database going away mid-run, and coming back, with no restart."""

from __future__ import annotations

import time

import pytest

from tests.postgres import Cluster, needs_cluster
from tests.processes import free_port, run_django
from tests.scraping import parse, value
from tests.servers import get, gunicorn_args, running, server_env

# A PostgreSQL of the test's own, whatever DATABASE_URL says.
pytestmark = [needs_cluster, pytest.mark.backend_neutral]


def test_scrapes_answer_while_the_database_is_down_and_recover():
    cluster = Cluster()
    cluster.start()
    try:
        run_django(
            "from django.core.management import call_command\n"
            "from metricdemo.models import MetricDefinition\n"
            "call_command('migrate', verbosity=0)\n"
            "call_command('load_demo_metrics', verbosity=0)\n"
            "MetricDefinition.objects.filter(name='metricdemo.demo.users')"
            ".update(timeout=2)\n",
            settings="metricsite.settings",
            db_url=cluster.url,
        )
        port = free_port()
        env = server_env(
            cluster.url, GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="1"
        )
        url = f"http://127.0.0.1:{port}/metrics"
        with running(gunicorn_args(), env, url):
            families = parse(get(url)[1])
            assert value(families, "metricdemo_demo_users") == 0.0

            cluster.stop()
            # A count already in flight may still finish; within a few scrapes
            # the row count must be gone, and every scrape answers.
            for _ in range(20):
                status, body = get(url)
                assert status == 200
                families = parse(body)
                if "metricdemo_demo_users" not in families:
                    break
                time.sleep(0.25)
            # Code counters and process callbacks still export...
            assert (
                value(families, "metricdemo_demo_counter_total", const_attr_1="1")
                == 11.0
            )
            assert value(families, "metricdemo_process_threads") >= 1
            # ...the row count is left out, and the self-metrics say why.
            assert "metricdemo_demo_users" not in families
            assert (
                value(families, "metricdemo_definitions_loads_total", outcome="error")
                >= 1
            )
            assert (
                value(
                    families,
                    "metricdemo_evaluations_total",
                    definition="metricdemo.demo.users",
                    outcome="error",
                )
                >= 1
            )

            cluster.start()
            # Connections kept from before the restart are replaced as they
            # fail; within a few scrapes everything is back, with no restart.
            for _ in range(20):
                families = parse(get(url)[1])
                if value(families, "metricdemo_demo_users") is not None:
                    break
                time.sleep(0.25)
            assert value(families, "metricdemo_demo_users") == 0.0
            assert (
                value(
                    families, "metricdemo_definitions_loads_total", outcome="reloaded"
                )
                >= 2
            )
    finally:
        cluster.destroy()
