"""A real Prometheus scrapes the demo server; promtool accepts the exposition."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.core.management import call_command

from metricdemo.models import MetricDefinition
from tests.processes import (
    django_env,
    free_port,
    http_get,
    run_django,
    serving,
    wait_until,
)
from tests.scraping import demo_definitions_by_kind, parse, value

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
NOT_INSTALLED = "{} is not installed: apt-get install prometheus (make test-all does)"
# Labels Prometheus and the exporter add to every series.
TARGET_LABELS = {"__name__", "instance", "job"}
SCOPE_PREFIX = "otel_scope_"

# The demo server is another process: rows must be committed for it to see them.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.backend_neutral]


@contextmanager
def demo_server(tmp_path: Path) -> Iterator[str]:
    """Serve the demo on the test database; yield its host:port."""
    address = f"127.0.0.1:{free_port()}"
    argv = [sys.executable, "manage.py", "runserver", "--noreload", address]
    with serving(
        argv,
        ready_url=f"http://{address}/metrics",
        log=tmp_path / "runserver.log",
        env=django_env(),
    ):
        yield address


@contextmanager
def prometheus(tmp_path: Path, target: str, *more_targets: str) -> Iterator[str]:
    """Run Prometheus scraping `target` and `more_targets` each second; yield its URL.

    The targets make one job; their `instance` labels tell them apart.
    """
    targets = ", ".join(f"'{address}'" for address in (target, *more_targets))
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        "  - job_name: metricsite\n"
        "    static_configs:\n"
        f"      - targets: [{targets}]\n"
    )
    address = f"127.0.0.1:{free_port()}"
    argv = [
        PROMETHEUS,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address={address}",
    ]
    base = f"http://{address}"
    with serving(argv, ready_url=f"{base}/-/ready", log=tmp_path / "prometheus.log"):
        yield base


def query(base: str, promql: str) -> list[dict]:
    """Run an instant query through Prometheus's HTTP API; return its result."""
    status, body = http_get(f"{base}/api/v1/query?" + urlencode({"query": promql}))
    payload = json.loads(body)
    assert (status, payload["status"]) == (200, "success"), payload
    return payload["data"]["result"]


def query_series(base: str, promql: str) -> dict[frozenset, float]:
    """Return {labels, without Prometheus's and the scope's: value} for a query."""
    return {
        frozenset(
            (k, v)
            for k, v in item["metric"].items()
            if k not in TARGET_LABELS and not k.startswith(SCOPE_PREFIX)
        ): float(item["value"][1])
        for item in query(base, promql)
    }


def wait_for_value(base: str, promql: str, expected: float, **labels: str) -> None:
    """Wait, for a few scrapes at most, until the series has the expected value."""
    wanted = frozenset(labels.items())

    def reached() -> bool | None:
        return query_series(base, promql).get(wanted) == expected or None

    wait_until(reached, timeout=30, what=f"{promql}{labels} == {expected}")


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.skipif(PROMETHEUS is None, reason=NOT_INSTALLED.format("prometheus"))
def test_prometheus_scrapes_the_demo_and_follows_an_edit(tmp_path, django_user_model):
    call_command("load_demo_metrics", verbosity=0)
    # The shop's orders, so that every panel's query finds data.
    call_command("seed_shop", verbosity=0)
    for name in ("ann", "bea", "cid"):
        django_user_model.objects.create_user(name)

    with demo_server(tmp_path) as target, prometheus(tmp_path, target) as api:
        wait_for_value(
            api, "metricdemo_demo_observable_counter_total", 10.0, const_attr_3="3"
        )
        assert query_series(api, "up") == {frozenset(): 1.0}
        assert query_series(api, "metricdemo_demo_counter_total") == {
            frozenset({("const_attr_1", "1")}): 11.0
        }
        assert query_series(api, "metricdemo_demo_users") == {frozenset(): 3.0}
        assert (
            query_series(api, "metricdemo_demo_definitions")
            == demo_definitions_by_kind()
        )

        observable = MetricDefinition.objects.get(
            name="metricdemo.demo.observable_counter"
        )
        observable.value = 25
        observable.full_clean()
        observable.save()
        django_user_model.objects.create_user("dan")
        wait_for_value(
            api, "metricdemo_demo_observable_counter_total", 25.0, const_attr_3="3"
        )
        wait_for_value(api, "metricdemo_demo_users", 4.0)

        # The Grafana dashboard's queries run on this Prometheus and find data.
        out = io.StringIO()
        call_command("metrics", "grafana", "--datasource", "test", stdout=out)
        *definition_panels, _ = json.loads(out.getvalue())["panels"]
        for panel in definition_panels:
            for target_query in panel["targets"]:
                promql = target_query["expr"].replace("$__rate_interval", "1m")
                assert query(api, promql), promql


@pytest.mark.skipif(PROMTOOL is None, reason=NOT_INSTALLED.format("promtool"))
def test_promtool_reports_only_the_seed_example_names():
    """promtool accepts the exposition; its one lint is about the seed's names.

    The demo keeps the names of the example it mirrors (metricdemo.demo.counter
    and metricdemo.demo.observable_counter), and promtool's linter dislikes a
    type name inside a metric name. Every other family passes it.
    """
    call_command("load_demo_metrics", verbosity=0)
    # A request first, so that django-prometheus's request families have samples.
    result = run_django(
        "from django.test import Client\n"
        "client = Client()\n"
        "client.get('/admin/login/')\n"
        "print(client.get('/metrics').content.decode(), end='')\n"
    )
    families = parse(result.stdout)
    assert (
        value(families, "metricdemo_demo_observable_counter_total", const_attr_3="3")
        == 10
    )
    assert "django_http_requests_total_by_method" in families
    assert "django_db_execute" in families

    check = subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=result.stdout,
        capture_output=True,
        text=True,
        timeout=60,
    )
    seed_names = {
        "metricdemo_demo_counter_total metric name should not include type 'counter'",
        "metricdemo_demo_observable_counter_total metric name should not include "
        "type 'counter'",
    }
    reported = {line.strip() for line in (check.stdout + check.stderr).splitlines()}
    assert reported == seed_names, reported
