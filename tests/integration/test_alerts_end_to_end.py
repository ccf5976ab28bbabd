"""A threshold set in the admin fires through a real Prometheus and Alertmanager.

Prometheus scrapes the demo server and loads the rules `metrics rules`
writes; Alertmanager posts to a webhook receiver in the test. Raising the
threshold, writing the rules again and reloading Prometheus resolves the
alert.
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.management import call_command

from metricdemo.models import AlertRule
from tests.integration.test_prometheus import NOT_INSTALLED, demo_server
from tests.processes import free_port, serving, wait_until

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.long,
    pytest.mark.backend_neutral,
    pytest.mark.skipif(PROMETHEUS is None, reason=NOT_INSTALLED.format("prometheus")),
    pytest.mark.skipif(
        ALERTMANAGER is None,
        reason=NOT_INSTALLED.format("prometheus-alertmanager").replace(
            "install prometheus", "install prometheus-alertmanager"
        ),
    ),
]


class Webhook:
    """An HTTP receiver on 127.0.0.1 that keeps every alert Alertmanager posts."""

    def __init__(self) -> None:
        self.alerts: list[dict] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.webhook = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/alerts"

    def __enter__(self) -> Webhook:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()

    def received(self, status: str, alertname: str) -> dict | None:
        with self._lock:
            for alert in self.alerts:
                if (
                    alert["status"] == status
                    and alert["labels"]["alertname"] == alertname
                ):
                    return alert
        return None


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        body = self.rfile.read(int(self.headers["Content-Length"]))
        webhook: Webhook = self.server.webhook  # type: ignore[attr-defined]
        with webhook._lock:
            webhook.alerts.extend(json.loads(body)["alerts"])
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args) -> None:
        pass


@contextmanager
def alertmanager(tmp_path: Path, webhook: str) -> Iterator[str]:
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n"
        "  receiver: test\n"
        "  group_by: [alertname]\n"
        "  group_wait: 0s\n"
        "  group_interval: 1s\n"
        "  repeat_interval: 1h\n"
        "receivers:\n"
        "  - name: test\n"
        "    webhook_configs:\n"
        f"      - url: {webhook}\n"
        "        send_resolved: true\n"
    )
    address = f"127.0.0.1:{free_port()}"
    argv = [
        ALERTMANAGER,
        f"--config.file={config}",
        f"--storage.path={tmp_path / 'alertmanager'}",
        f"--web.listen-address={address}",
        "--cluster.listen-address=",
    ]
    base = f"http://{address}"
    with serving(argv, ready_url=f"{base}/-/ready", log=tmp_path / "alertmanager.log"):
        yield address


@contextmanager
def prometheus(
    tmp_path: Path, target: str, rules: Path, manager: str, address: str = ""
):
    """Run Prometheus scraping `target` with `rules`, on `address` (or a free port)."""
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "  evaluation_interval: 1s\n"
        f"rule_files: ['{rules}']\n"
        "alerting:\n"
        "  alertmanagers:\n"
        f"    - static_configs: [{{targets: ['{manager}']}}]\n"
        "scrape_configs:\n"
        "  - job_name: metricsite\n"
        f"    static_configs: [{{targets: ['{target}']}}]\n"
    )
    address = address or f"127.0.0.1:{free_port()}"
    argv = [
        PROMETHEUS,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address={address}",
        # Send firing and resolved alerts again each second, not each minute,
        # so that Alertmanager learns of a resolved alert within seconds.
        "--rules.alert.resend-delay=1s",
    ]
    with serving(
        argv, ready_url=f"http://{address}/-/ready", log=tmp_path / "prom.log"
    ) as process:
        yield process


def test_a_threshold_from_the_admin_fires_and_resolves(
    tmp_path, define, client, admin_user
):
    from tests.shop.models import Order

    for status in ("pending", "pending", "pending", "paid"):
        Order.objects.create(status=status, created="2026-03-01T12:00:00Z")
    waiting = define(
        name="shop.orders.waiting",
        source="row_count",
        model="shop.Order",
        group_by="status",
    )
    # As an operator would, through the admin's inline on the definition.
    client.force_login(admin_user)
    rule = AlertRule(
        definition=waiting,
        name="OrdersWaiting",
        operator=">",
        threshold=2,
        label_filter={"status": "pending"},
        for_duration=0,
        severity="critical",
        summary="{{ $value }} orders wait",
    )
    rule.full_clean()
    rule.save()
    rules = tmp_path / "rules.yml"
    call_command("metrics", "rules", "-o", str(rules), "--check")
    with (
        Webhook() as webhook,
        alertmanager(tmp_path, webhook.url) as manager,
        demo_server(tmp_path) as target,
        prometheus(tmp_path, target, rules, manager) as server,
    ):
        firing = wait_until(
            lambda: webhook.received("firing", "OrdersWaiting"),
            timeout=60,
            what="the alert to reach the webhook",
        )
        assert firing["labels"]["severity"] == "critical"
        assert firing["labels"]["status"] == "pending"
        assert firing["labels"]["metricdemo_definition"] == "shop.orders.waiting"
        assert firing["annotations"]["summary"] == "3 orders wait"

        rule.threshold = 10
        rule.full_clean()
        rule.save()
        call_command("metrics", "rules", "-o", str(rules), "--check")
        server.send_signal(signal.SIGHUP)  # Prometheus reloads its rule files
        resolved = wait_until(
            lambda: webhook.received("resolved", "OrdersWaiting"),
            timeout=60,
            what="the alert to resolve",
        )
        assert resolved["labels"]["status"] == "pending"
