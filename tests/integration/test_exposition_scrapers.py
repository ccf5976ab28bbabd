"""Real scrapers read /metrics under every negotiation the view answers.

promtool checks every text body it can read, prometheus_client's parsers read
the OpenMetrics and UTF-8 bodies (promtool 2.42 reads neither: `check
metrics` parses the classic text format only), and a real Prometheus 2.42
scrapes the demo server in OpenMetrics and in text.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from tests import exposition_cases as cases
from tests.integration.test_prometheus import (
    NOT_INSTALLED,
    PROMETHEUS,
    PROMTOOL,
    demo_server,
    prometheus,
    query,
)
from tests.processes import http_get, wait_until

pytestmark = [pytest.mark.django_db, pytest.mark.backend_neutral]

TEXT_0_0_4 = "text/plain; version=0.0.4; charset=utf-8"
TEXT_1_0_0 = "text/plain; version=1.0.0; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
DEFAULT_CONTENT_TYPE = f"{TEXT_0_0_4}; escaping=underscores"
# What each Prometheus sends first.
PROMETHEUS_2_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,"
    "application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
PROMETHEUS_3_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,"
    "text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
)
NOTE = 'a "quoted" \\ back\nslash ü €'
# Known lints of the demo and scenario, by family name as the default strategy
# writes it: (name, suffix of the sample promtool names, complaint).
COUNTER_IN_NAME = "metric name should not include type 'counter'"
KNOWN_LINTS = [
    # The seed example's names (see test_prometheus.py).
    ("metricdemo_demo_counter", "_total", COUNTER_IN_NAME),
    ("metricdemo_demo_observable_counter", "_total", COUNTER_IN_NAME),
    # The scenario's code histogram is in milliseconds on purpose.
    (
        "golden_code_latency_milliseconds",
        "",
        'use base unit "seconds" instead of "milliseconds"',
    ),
]


def with_strategy(strategy: str):
    return override_settings(
        METRICDEMO={**settings.METRICDEMO, "NAME_TRANSLATION": strategy}
    )


def escaped(name: str, escaping: str) -> str:
    """Return a classic (already underscored) name as Prometheus escapes it."""
    return name.replace("_", "__") if escaping == "dots" else name


def fetch(client, accept: str | None = None, **headers):
    if accept is not None:
        headers["HTTP_ACCEPT"] = accept
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content[:500]
    return response


def parsed(response) -> list:
    """Parse a body with the parser its Content-Type names."""
    text = response.content.decode()
    if response["Content-Type"].startswith("application/openmetrics-text"):
        return list(parse_openmetrics(text))
    return list(parse_text(text))


def find(families, sample_name: str, **labels: str) -> float:
    """Return the one sample of this name whose labels, otel_* aside, are `labels`."""
    found = [
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == sample_name
        and {k: v for k, v in sample.labels.items() if not k.startswith("otel_")}
        == labels
    ]
    assert len(found) == 1, (sample_name, labels, found)
    return found[0]


@pytest.fixture
def scenario(define):
    call_command("load_demo_metrics", verbosity=0)
    cases.populate(define)


# 1. promtool and the OpenMetrics parser under every negotiation.


@pytest.mark.skipif(PROMTOOL is None, reason=NOT_INSTALLED.format("promtool"))
# Row counts run on worker threads with their own connections: commit the rows.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("accept", "content_type", "escaping"),
    [
        (None, TEXT_0_0_4, "underscores"),
        ("text/plain;version=0.0.4", TEXT_0_0_4, "underscores"),
        ("text/plain;version=0.0.4;escaping=dots", TEXT_0_0_4, "dots"),
        ("text/plain;version=0.0.4;escaping=values", TEXT_0_0_4, "values"),
        ("text/plain;version=1.0.0;escaping=underscores", TEXT_1_0_0, "underscores"),
        ("text/plain;version=1.0.0;escaping=dots", TEXT_1_0_0, "dots"),
        # The default strategy leaves no name to quote, so promtool reads it.
        ("text/plain;version=1.0.0;escaping=allow-utf-8", TEXT_1_0_0, "allow-utf-8"),
    ],
)
def test_promtool_finds_only_the_known_lints(
    client, scenario, accept, content_type, escaping
):
    """promtool parses every text body; its complaints are exactly the known lints.

    The whole set is compared, not the scenario's families only: a family
    that a negotiation breaks anywhere in the body (a sample torn from its
    family reads as a new family without HELP) shows as a new complaint.
    """
    response = fetch(client, accept)
    assert response["Content-Type"] == f"{content_type}; escaping={escaping}"
    body = response.content.decode()
    assert (
        find(
            parsed(response),
            escaped("golden_orders", escaping) + "_total",
            country="DE",
            channel="web",
        )
        == 12
    )

    check = subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=body,
        capture_output=True,
        text=True,
        timeout=60,
    )
    reported = {line.strip() for line in (check.stdout + check.stderr).splitlines()}
    # Exit 3 is "lint problems only"; a parse error exits 1 with this line.
    assert not any(line.startswith("error while linting") for line in reported)
    assert check.returncode == 3, reported
    expected = {
        f"{escaped(name, escaping)}{suffix} {complaint}"
        for name, suffix, complaint in KNOWN_LINTS
    }
    # Code instruments that other tests of this process made (without help
    # text, say) are theirs to lint. A sample torn from its family still
    # counts: promtool names a family that has no HELP line at all.
    with_help = {
        line.split(" ")[2] for line in body.splitlines() if line.startswith("# HELP ")
    }
    ours = (escaped("golden", escaping), escaped("metricdemo", escaping))

    def judged(complaint: str) -> bool:
        name = complaint.split(" ")[0]
        return name.startswith(ours) or name not in with_help

    reported = {complaint for complaint in reported if judged(complaint)}
    assert reported == expected, (reported - expected, expected - reported)


# Row counts run on worker threads with their own connections: commit the rows.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "escaping",
    [
        "underscores",
        "dots",
        "values",
        # Under the default strategy nothing needs quoting.
        "allow-utf-8",
    ],
)
def test_openmetrics_parses_under_every_escaping(client, scenario, escaping):
    """OpenMetrics (promtool 2.42 cannot read it) through prometheus_client's parser."""
    response = fetch(
        client, f"application/openmetrics-text;version=1.0.0;escaping={escaping}"
    )
    assert response["Content-Type"] == f"{OPENMETRICS}; escaping={escaping}"
    assert response.content.endswith(b"# EOF\n")
    families = parsed(response)

    # Every sample belongs to the family its TYPE line announced.
    assert [f.name for f in families if f.type == "unknown"] == []
    by_name = {f.name: f for f in families}
    orders = escaped("golden_orders", escaping)
    assert by_name[orders].type == "counter"
    assert by_name[orders].documentation == 'All orders: "placed" \\ kept\nsince launch'
    assert find(families, orders + "_total", country="DE", channel="web") == 12
    notes = escaped("golden_notes", escaping)
    assert find(families, notes, note=NOTE, count="3", flag="true", share="0.5") == 1
    latency = escaped("golden_code_latency_milliseconds", escaping)
    assert by_name[latency].type == "histogram"
    assert by_name[latency].unit == escaped("milliseconds", escaping)
    assert find(families, latency + "_bucket", le="+Inf", route="/orders") == 6
    assert find(families, latency + "_count", route="/orders") == 6
    assert find(families, latency + "_sum", route="/orders") == 304.5
    assert (
        find(
            families,
            escaped("golden_code_requests", escaping) + "_total",
            channel="shop",
            region="eu",
        )
        == 2
    )


# 2. A real Prometheus 2.42 scrapes the demo server.


class _Forwarder(ThreadingHTTPServer):
    """Pass scrapes to the demo server, recording what was asked and answered."""

    daemon_threads = True

    def __init__(self, upstream: str, accept: str | None) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream = upstream
        self.accept = accept
        self.seen: list[tuple[str, str, str | None]] = []


class _Forward(BaseHTTPRequestHandler):
    server: _Forwarder

    def do_GET(self) -> None:
        asked = self.headers.get("Accept", "")
        headers = {"Accept": self.server.accept or asked}
        if self.headers.get("Accept-Encoding"):
            headers["Accept-Encoding"] = self.headers["Accept-Encoding"]
        request = urllib.request.Request(
            f"http://{self.server.upstream}{self.path}", headers=headers
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            body = response.read()
            content_type = response.headers["Content-Type"]
            encoding = response.headers.get("Content-Encoding")
        self.server.seen.append((asked, content_type, encoding))
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@contextmanager
def forwarding(upstream: str, accept: str | None = None) -> Iterator[_Forwarder]:
    """Serve a forwarder to `upstream` that sends `accept` (None: the scraper's)."""
    server = _Forwarder(upstream, accept)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def address(server: _Forwarder) -> str:
    host, port = server.server_address[:2]
    return f"{host}:{port}"


@pytest.mark.long
@pytest.mark.slow
@pytest.mark.skipif(PROMETHEUS is None, reason=NOT_INSTALLED.format("prometheus"))
# The demo server is another process: rows must be committed for it to see them.
@pytest.mark.django_db(transaction=True)
def test_prometheus_scrapes_openmetrics_and_text_without_error(tmp_path, define):
    """One Prometheus scrapes the server twice: as it asks (OpenMetrics) and in text.

    Prometheus 2.42 has no scrape_protocols, so the text target is a forwarder
    that replaces Prometheus's Accept header. The scenario's code instruments
    live in this process, not the server's: only its definitions are scraped.
    """
    call_command("load_demo_metrics", verbosity=0)
    for fields in cases.DEFINITIONS:
        define(**{"kind": "gauge", "source": "constant", **fields})

    with (
        demo_server(tmp_path) as target,
        forwarding(target) as as_asked,
        forwarding(target, accept="text/plain;version=0.0.4") as as_text,
        prometheus(tmp_path, address(as_asked), address(as_text)) as api,
    ):
        instances = {address(as_asked), address(as_text)}

        def both_scraped() -> list | None:
            found = query(api, 'golden_orders_total{country="DE",channel="web"}')
            return (
                found if {r["metric"]["instance"] for r in found} == instances else None
            )

        orders = wait_until(both_scraped, timeout=15, what="both targets scraped")
        assert {
            r["metric"]["instance"]: float(r["value"][1]) for r in orders
        } == dict.fromkeys(instances, 12.0)

        status, body = http_get(f"{api}/api/v1/targets")
        assert status == 200
        targets = json.loads(body)["data"]["activeTargets"]
        assert {
            (t["labels"]["instance"], t["health"], t["lastError"]) for t in targets
        } == {(instance, "up", "") for instance in instances}

        for instance in instances:
            selector = f'{{instance="{instance}"}}'
            (notes,) = query(api, "golden_notes" + selector)
            assert notes["metric"]["note"] == NOTE
            assert {k: notes["metric"][k] for k in ("count", "flag", "share")} == {
                "count": "3",
                "flag": "true",
                "share": "0.5",
            }
            assert notes["value"][1] == "1"
            for promql, expected in (
                ("golden_small", -0.000001),
                ("golden_big", 12345678901.0),
                ("golden_disk_used_percent", 87.25),
                ("golden_queue_bytes", 2048.0),
                ("golden_jobs_runtime_seconds_total", 3.5),
            ):
                (result,) = query(api, promql + selector)
                assert float(result["value"][1]) == expected, promql

        status, body = http_get(f"{api}/api/v1/targets/metadata?metric=golden_orders")
        # OpenMetrics names the counter without _total; text names it by its sample.
        metadata = {
            m["target"]["instance"]: (m["type"], m["help"])
            for m in json.loads(body)["data"]
        }

    asked, content_type, encoding = as_asked.seen[-1]
    assert asked.startswith("application/openmetrics-text;version=1.0.0")
    assert content_type == f"{OPENMETRICS}; escaping=underscores"
    assert encoding == "gzip"
    asked, content_type, encoding = as_text.seen[-1]
    assert content_type == f"{TEXT_0_0_4}; escaping=underscores"
    assert encoding == "gzip"
    assert metadata[address(as_asked)] == (
        "counter",
        'All orders: "placed" \\ kept\nsince launch',
    )


# 3. UTF-8 names through the view.

UTF8_LINE_START = '{"shop.orders.open",otel_scope_name="metricdemo",'


@pytest.fixture
def open_orders(define):
    define(
        name="shop.orders.open",
        kind="gauge",
        source="constant",
        value=5,
        attributes={"status": "paid"},
    )


@with_strategy("NoUTF8EscapingWithSuffixes")
def test_prometheus_3_gets_the_utf8_name_quoted_in_openmetrics(client, open_orders):
    response = fetch(client, PROMETHEUS_3_ACCEPT)
    assert response["Content-Type"] == (
        "application/openmetrics-text; version=1.0.0; charset=utf-8; "
        "escaping=allow-utf-8"
    )
    families = parsed(response)
    assert find(families, "shop.orders.open", status="paid") == 5
    (family,) = [f for f in families if f.name == "shop.orders.open"]
    assert family.type == "gauge"
    (line,) = [
        line
        for line in response.content.decode().splitlines()
        if line.startswith(UTF8_LINE_START)
    ]
    assert line.endswith(',status="paid"} 5.0'), line


@with_strategy("NoUTF8EscapingWithSuffixes")
def test_text_1_0_0_with_allow_utf8_keeps_the_name(client, open_orders):
    response = fetch(client, "text/plain;version=1.0.0;escaping=allow-utf-8")
    assert response["Content-Type"] == f"{TEXT_1_0_0}; escaping=allow-utf-8"
    assert find(parsed(response), "shop.orders.open", status="paid") == 5
    assert any(
        line.startswith(UTF8_LINE_START)
        for line in response.content.decode().splitlines()
    )


@with_strategy("NoUTF8EscapingWithSuffixes")
@pytest.mark.parametrize(
    ("accept", "content_type", "sample_name"),
    [
        (None, DEFAULT_CONTENT_TYPE, "shop_orders_open"),
        (
            PROMETHEUS_2_ACCEPT,
            f"{OPENMETRICS}; escaping=underscores",
            "shop_orders_open",
        ),
        (
            "text/plain;version=1.0.0;escaping=dots",
            f"{TEXT_1_0_0}; escaping=dots",
            "shop_dot_orders_dot_open",
        ),
        (
            "application/openmetrics-text;version=1.0.0;escaping=values",
            f"{OPENMETRICS}; escaping=values",
            "U__shop_2e_orders_2e_open",
        ),
    ],
)
def test_a_scraper_without_utf8_gets_the_name_escaped(
    client, open_orders, accept, content_type, sample_name
):
    response = fetch(client, accept)
    assert response["Content-Type"] == content_type
    families = parsed(response)
    assert find(families, sample_name, status="paid") == 5
    assert not [s.name for f in families for s in f.samples if "." in s.name], (
        "a name kept its dots"
    )


def test_the_default_strategy_escapes_even_for_prometheus_3(client, open_orders):
    response = fetch(client, PROMETHEUS_3_ACCEPT)
    assert response["Content-Type"].endswith("; escaping=allow-utf-8")
    families = parsed(response)
    assert find(families, "shop_orders_open", status="paid") == 5
    assert '"shop.orders.open"' not in response.content.decode()


@with_strategy("NoTranslation")
def test_no_translation_adds_no_total_to_a_counter(client, define):
    define(name="shop.sales", kind="counter", unit="{sale}", source="constant", value=4)
    response = fetch(client, "text/plain;version=1.0.0;escaping=allow-utf-8")
    lines = response.content.decode().splitlines()
    assert '# TYPE "shop.sales" counter' in lines
    (sample_line,) = [line for line in lines if line.startswith('{"shop.sales')]
    assert sample_line.startswith('{"shop.sales",'), sample_line
    assert sample_line.endswith(" 4.0"), sample_line
    # prometheus_client's text parser names a counter's sample with _total
    # itself; what matters is that it reads the family as one counter.
    (family,) = [f for f in parsed(response) if f.name == "shop.sales"]
    assert family.type == "counter"
    assert [s.value for s in family.samples] == [4.0]


@with_strategy("NoUTF8EscapingWithSuffixes")
def test_a_utf8_strategy_keeps_a_unit_the_name_already_ends_with(client, define):
    define(
        name="golden.queue.bytes",
        kind="gauge",
        unit="By",
        source="constant",
        value=2048,
    )
    families = parsed(fetch(client))
    assert find(families, "golden_queue_bytes") == 2048


# 4. Accept variants through the view.

ACCEPTED = [
    (None, DEFAULT_CONTENT_TYPE),
    ("", DEFAULT_CONTENT_TYPE),
    ("*/*", DEFAULT_CONTENT_TYPE),
    ("text/plain", DEFAULT_CONTENT_TYPE),
    ("text/plain;version=0.0.4", DEFAULT_CONTENT_TYPE),
    # The classic text format cannot quote a name.
    ("text/plain;version=0.0.4;escaping=allow-utf-8", DEFAULT_CONTENT_TYPE),
    ("text/plain;version=0.0.4;escaping=values", f"{TEXT_0_0_4}; escaping=values"),
    ("text/plain;version=1.0.0", f"{TEXT_1_0_0}; escaping=underscores"),
    (
        "text/plain;version=1.0.0;escaping=allow-utf-8",
        f"{TEXT_1_0_0}; escaping=allow-utf-8",
    ),
    ("text/plain;version=1.0.0;escaping=bogus", f"{TEXT_1_0_0}; escaping=underscores"),
    ("application/openmetrics-text", f"{OPENMETRICS}; escaping=underscores"),
    (
        "application/openmetrics-text;version=1.0.0",
        f"{OPENMETRICS}; escaping=underscores",
    ),
    (
        "application/openmetrics-text;version=0.0.1",
        f"{OPENMETRICS}; escaping=underscores",
    ),
    (
        'Application/OpenMetrics-Text; version="1.0.0"; escaping=dots',
        f"{OPENMETRICS}; escaping=dots",
    ),
    (
        "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8",
        f"{OPENMETRICS}; escaping=allow-utf-8",
    ),
    (PROMETHEUS_2_ACCEPT, f"{OPENMETRICS}; escaping=underscores"),
    (PROMETHEUS_3_ACCEPT, f"{OPENMETRICS}; escaping=allow-utf-8"),
    # Quality decides, not order.
    (
        "text/plain;version=0.0.4;q=0.2,application/openmetrics-text;version=1.0.0",
        f"{OPENMETRICS}; escaping=underscores",
    ),
    (
        "application/openmetrics-text;version=1.0.0;q=0,text/plain;version=1.0.0",
        f"{TEXT_1_0_0}; escaping=underscores",
    ),
]
MALFORMED = [
    ";;;",
    ",,,",
    "application/json",
    "text/html,application/xhtml+xml",
    "text/plain;version=9",
    "application/openmetrics-text;version=2.0.0",
    "application/openmetrics-text;q=banana",
    "application/openmetrics-text;version=1.0.0;q=0",
    "application/openmetrics-text;version=1.0.0;q=2",
    "=;=,=",
    "x" * 10_000,
    "application/json;q=0.9," * 1_000,
    # An acceptable entry after the first 32 is not read.
    "application/json," * 40 + "application/openmetrics-text;version=1.0.0",
]


@pytest.mark.parametrize(("accept", "content_type"), ACCEPTED)
def test_each_accept_header_gets_the_format_it_asks_for(client, accept, content_type):
    response = fetch(client, accept)
    assert response["Content-Type"] == content_type
    assert "Accept" in [v.strip() for v in response["Vary"].split(",")]
    families = parsed(response)
    assert any(f.name.startswith("metricdemo") for f in families)
    assert response.content.endswith(b"# EOF\n") == content_type.startswith(
        "application/openmetrics-text"
    )


@pytest.mark.parametrize(
    "accept", MALFORMED, ids=lambda accept: accept[:40] + f"...({len(accept)})"
)
def test_a_malformed_or_unknown_accept_header_gets_classic_text(client, accept):
    response = client.get("/metrics", HTTP_ACCEPT=accept)
    assert response.status_code == 200
    assert response["Content-Type"] == DEFAULT_CONTENT_TYPE
    assert not response.content.endswith(b"# EOF\n")
    assert any(f.name.startswith("metricdemo") for f in parsed(response))


@pytest.mark.parametrize("accept", [None, "application/openmetrics-text;version=1.0.0"])
def test_gzip_when_asked_decompresses_to_the_same_families(client, define, accept):
    define(name="shop.orders.open", source="constant", value=5)
    plain = fetch(client, accept)
    assert "Content-Encoding" not in plain
    zipped = fetch(client, accept, HTTP_ACCEPT_ENCODING="deflate, gzip;q=0.8, br")
    assert zipped["Content-Encoding"] == "gzip"
    assert zipped["Content-Type"] == plain["Content-Type"]
    assert "Accept-Encoding" in [v.strip() for v in zipped["Vary"].split(",")]
    assert zipped.content[:2] == b"\x1f\x8b"
    body = gzip.decompress(zipped.content)
    zipped.content = body
    # Values move between scrapes (request counters); the families do not.
    assert {(f.name, f.type) for f in parsed(zipped)} == {
        (f.name, f.type) for f in parsed(plain)
    }
    assert find(parsed(zipped), "shop_orders_open") == 5


@pytest.mark.parametrize("encoding", ["identity", "gzip;q=0", "deflate", "br"])
def test_no_gzip_unless_asked(client, encoding):
    response = fetch(client, HTTP_ACCEPT_ENCODING=encoding)
    assert "Content-Encoding" not in response
    assert any(f.name.startswith("metricdemo") for f in parsed(response))


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        (None, DEFAULT_CONTENT_TYPE),
        (PROMETHEUS_3_ACCEPT, f"{OPENMETRICS}; escaping=allow-utf-8"),
    ],
)
def test_head_states_the_format_without_a_body(client, accept, content_type):
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = client.head("/metrics", **headers)
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert "Accept" in [v.strip() for v in response["Vary"].split(",")]
    assert response.content == b""
