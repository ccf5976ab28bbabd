"""The demo under a real ASGI server (uvicorn): scrapes, live edits, the admin."""

from __future__ import annotations

import subprocess
import sys
import threading
from html.parser import HTMLParser

import pytest

from tests.processes import ROOT, free_port, run_django, wait_until
from tests.scraping import parse, value
from tests.servers import (
    demo_database,
    get,
    running,
    server_env,
    set_value,
    uvicorn_args,
)

OBSERVABLE = "metricdemo_demo_observable_counter_total"


class InputNames(HTMLParser):
    """Collect the names of a page's <input> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "input":
            self.names.add(dict(attrs).get("name") or "")


def login_form_inputs(base_url: str) -> set[str]:
    """GET the admin login page; return the names of its inputs."""
    status, body = get(f"{base_url}/admin/login/", timeout=10)
    assert status == 200, body
    parser = InputNames()
    parser.feed(body)
    return parser.names


def test_asgi__scrape_live_edit_and_admin_login(tmp_path):
    db_url = demo_database(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = uvicorn_args("metricsite.asgi:application", port)
    with running(args, server_env(db_url), f"{base}/metrics"):
        status, body = get(f"{base}/metrics")
        assert status == 200, body
        families = parse(body)
        # The seed's manual counter and observable counter, as under WSGI.
        assert value(families, "metricdemo_demo_counter_total", const_attr_1="1") == 11
        assert value(families, OBSERVABLE, const_attr_3="3") == 10.0

        set_value(db_url, "metricdemo.demo.observable_counter", 25)
        status, body = get(f"{base}/metrics")
        assert status == 200, body
        assert value(parse(body), OBSERVABLE, const_attr_3="3") == 25.0

        assert {"username", "password"} <= login_form_inputs(base)


def test_asgi__a_slow_scrape_does_not_hold_up_other_requests(tmp_path):
    """The admin answers while a scrape waits for a callback the test holds."""
    db_url = demo_database(tmp_path)
    run_django(
        "from metricdemo.models import MetricDefinition\n"
        "MetricDefinition.objects.create(\n"
        "    name='tests.wait', source='callback', callback='tests.wait', timeout=60\n"
        ")\n",
        settings="metricsite.settings",
        db_url=db_url,
    )
    gate = tmp_path / "gate"
    gate.mkdir()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = server_env(db_url, METRICDEMO_TEST_GATE=str(gate))
    # The login page tells when the server is up, without starting a scrape.
    args = uvicorn_args("tests.asgi_app:application", port)
    with running(args, env, f"{base}/admin/login/"):
        scraped: dict[str, tuple[int, str]] = {}
        scrape = threading.Thread(
            target=lambda: scraped.update(result=get(f"{base}/metrics", timeout=90))
        )
        scrape.start()
        try:
            wait_until(
                lambda: (gate / "started").exists() or None,
                timeout=30,
                what="the scrape to start the waiting callback",
            )
            # The scrape cannot end before the release below: if it blocked the
            # server, this request would fail with its timeout.
            assert {"username", "password"} <= login_form_inputs(base)
            assert scrape.is_alive() and not (gate / "release").exists()
        finally:
            (gate / "release").touch()
            scrape.join(timeout=90)
    status, body = scraped["result"]
    assert status == 200, body
    assert value(parse(body), "tests_wait") == 1.0


def conn_max_age_under(module: str, db_url: str) -> int:
    """Return CONN_MAX_AGE as a new process that imports `module` sees it."""
    env = server_env(db_url)
    env.pop("DATABASE_CONN_MAX_AGE", None)
    code = (
        f"import {module}\n"
        "from django.db import connection\n"
        "print(connection.settings_dict['CONN_MAX_AGE'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(result.stdout)


def test_asgi__persistent_connections_are_off_under_asgi_only(tmp_path):
    """A thread per request would leave each kept connection open behind it."""
    db_url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    assert conn_max_age_under("metricsite.asgi", db_url) == 0
    assert conn_max_age_under("metricsite.wsgi", db_url) == 60


@pytest.mark.backend_neutral
@pytest.mark.parametrize("debug", ["1", "0"])
def test_asgi__serves_the_admin_and_form_static_files(tmp_path, debug):
    """The admin's stylesheet and the form's script, with no collectstatic."""
    db_url = demo_database(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = uvicorn_args("metricsite.asgi:application", port)
    with running(args, server_env(db_url, DEBUG=debug), f"{base}/admin/login/"):
        for path in (
            "/static/admin/css/base.css",
            "/static/metricdemo/definition_form.js",
        ):
            status, body = get(f"{base}{path}")
            assert status == 200, (path, body[:200])
            assert body.strip(), path
