"""Several processes: gunicorn workers, the standalone exporter, concurrent scrapes."""

from __future__ import annotations

import threading
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.processes import free_port
from tests.scraping import demo_definitions_by_kind, parse, series, value
from tests.servers import (
    demo_database,
    get,
    gunicorn_args,
    manage_args,
    running,
    server_env,
    set_value,
)

OBSERVABLE = "metricdemo_demo_observable_counter_total"


def worker_of(families) -> str:
    """Return the process that answered: target_info's service.instance.id."""
    (sample,) = families["target_info"].samples
    return sample.labels["service_instance_id"]


def scrape_workers(url: str, rounds: int, seen: int) -> dict[str, list]:
    """Scrape concurrently until `seen` workers answered (bounded by `rounds`)."""
    by_worker: dict[str, list] = defaultdict(list)
    with ThreadPoolExecutor(6) as pool:
        for _ in range(rounds):
            for status, body in pool.map(lambda _: get(url), range(6)):
                assert status == 200, body
                families = parse(body)
                by_worker[worker_of(families)].append(families)
            if len(by_worker) >= seen:
                break
    return by_worker


def test_gunicorn_workers_agree_and_all_see_an_edit(tmp_path):
    db_url = demo_database(tmp_path)
    port = free_port()
    env = server_env(db_url, GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="3")
    url = f"http://127.0.0.1:{port}/metrics"
    with running(gunicorn_args(), env, url):
        by_worker = scrape_workers(url, rounds=40, seen=3)
        assert len(by_worker) == 3, f"only {len(by_worker)} workers answered"
        for scrapes in by_worker.values():
            for families in scrapes:
                assert value(families, OBSERVABLE, const_attr_3="3") == 10.0
                assert value(families, "metricdemo_demo_users") == 0.0
                assert (
                    series(families, "metricdemo_demo_definitions")
                    == demo_definitions_by_kind()
                )

        # An edit from another process, as an operator's shell or command would.
        set_value(db_url, "metricdemo.demo.observable_counter", 25)
        after = scrape_workers(url, rounds=40, seen=3)
        assert len(after) == 3
        for scrapes in after.values():
            # Every scrape after the edit, the first included, has the new value.
            for families in scrapes:
                assert value(families, OBSERVABLE, const_attr_3="3") == 25.0


def test_metrics_serve_exports_the_same_metrics(tmp_path):
    db_url = demo_database(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    args = manage_args("metrics", "serve", "--addr", f"127.0.0.1:{port}")
    with running(args, server_env(db_url), url):
        status, body = get(url)
        assert status == 200
        families = parse(body)
        assert value(families, OBSERVABLE, const_attr_3="3") == 10.0
        assert value(families, "metricdemo_demo_counter_total", const_attr_1="1") == 11
        assert value(families, "metricdemo_demo_session_cookie_age_seconds") == 1209600
        status, _ = get(f"http://127.0.0.1:{port}/admin/")
        assert status == 404

        request = urllib.request.Request(
            url, headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.headers["Content-Type"].startswith(
                "application/openmetrics-text"
            )
            assert response.read().decode().rstrip().endswith("# EOF")


def test_metrics_serve_honours_the_token(tmp_path):
    db_url = demo_database(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    args = manage_args("metrics", "serve", "--addr", f"127.0.0.1:{port}")
    env = server_env(db_url, METRICSITE_METRICS_TOKEN="tok")
    with running(args, env, url):
        assert get(url)[0] == 401
        request = urllib.request.Request(url, headers={"Authorization": "Bearer tok"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200


@pytest.mark.django_db(transaction=True)
def test_concurrent_scrapes_while_definitions_change(live_server):
    """Scrapes in threads during edits all succeed, parse, and repeat nothing."""
    from metricdemo.models import MetricDefinition

    url = f"{live_server.url}/metrics"
    stop = threading.Event()
    failures: list[str] = []
    scrapes = [0]
    lock = threading.Lock()

    def scraper() -> None:
        while not stop.is_set():
            status, body = get(url)
            try:
                assert status == 200, f"status {status}"
                families = parse(body)  # refuses duplicated families
                for family in families.values():
                    seen = set()
                    for sample in family.samples:
                        key = (sample.name, tuple(sorted(sample.labels.items())))
                        assert key not in seen, f"duplicated series {key}"
                        seen.add(key)
            except AssertionError as exc:
                failures.append(str(exc))
            with lock:
                scrapes[0] += 1

    threads = [threading.Thread(target=scraper) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for round_ in range(15):
            definition = MetricDefinition(
                name=f"churn.{round_}",
                source="constant",
                value=round_,
                attributes={"round": round_},
            )
            definition.full_clean()
            definition.save()
            definition.value = round_ + 100
            definition.kind = "counter" if round_ % 2 else "gauge"
            definition.save()
            MetricDefinition.objects.filter(name=f"churn.{round_ - 1}").update(
                enabled=False
            )
            MetricDefinition.objects.filter(name=f"churn.{round_ - 2}").delete()
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert failures == []
    assert scrapes[0] >= 8
    status, body = get(url)
    families = parse(body)
    assert value(families, "churn_14", round="14") == 114.0  # even rounds: gauges
    assert "churn_13" not in families  # disabled
    assert "churn_12" not in families  # deleted
