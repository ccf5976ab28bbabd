"""The /metrics endpoint: every source, attributes, units, HELP and formats."""

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)

from tests.scraping import demo_definitions, scrape, series, value

pytestmark = pytest.mark.django_db

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


# Row counts run on worker threads with their own connections: commit the rows.
@pytest.mark.django_db(transaction=True)
def test_seed_parity__manual_counter_and_observable_counter(client):
    """The demo exports the seed example's two counters with their attributes."""
    call_command("load_demo_metrics", stdout=None)
    families = scrape(client)

    manual = families["metricdemo_demo_counter"]
    assert manual.type == "counter"
    assert manual.documentation == "This is a simple demo for Counter usage"
    assert value(families, "metricdemo_demo_counter_total", const_attr_1="1") == 11.0

    observable = families["metricdemo_demo_observable_counter"]
    assert observable.type == "counter"
    assert (
        observable.documentation == "This is a simple demo for ObservableCounter usage"
    )
    assert (
        value(families, "metricdemo_demo_observable_counter_total", const_attr_3="3")
        == 10.0
    )
    (sample,) = observable.samples
    assert sample.labels["otel_scope_name"] == "metricdemo"


# Row counts run on worker threads with their own connections: commit the rows.
@pytest.mark.django_db(transaction=True)
def test_demo_definitions_cover_every_source(client, django_user_model):
    """Row counts, a setting and the process callbacks of the demo all export."""
    call_command("load_demo_metrics", stdout=None)
    django_user_model.objects.create_user("ops")
    families = scrape(client)

    assert value(families, "metricdemo_demo_users") == 1.0
    assert value(families, "metricdemo_demo_definitions", kind="counter") == 3.0
    assert value(
        families, "metricdemo_demo_definitions", kind="gauge"
    ) == demo_definitions("gauge")
    assert value(families, "metricdemo_demo_session_cookie_age_seconds") == 1209600.0
    cpu = series(families, "metricdemo_process_cpu_time_seconds_total")
    assert set(cpu) == {
        frozenset({("state", "user")}),
        frozenset({("state", "system")}),
    }
    assert all(seconds >= 0 for seconds in cpu.values())
    assert value(families, "metricdemo_process_memory_rss_bytes") > 1_000_000
    assert value(families, "metricdemo_process_threads") >= 1
    gc_runs = series(families, "metricdemo_process_gc_collections_total")
    assert {dict(labels)["generation"] for labels in gc_runs} == {"0", "1", "2"}
    assert families["metricdemo_process_gc_collections"].type == "counter"


def test_load_demo_metrics_is_idempotent_and_keeps_edits(db):
    from metricdemo.models import MetricDefinition
    from metricsite.demo import DEMO_DEFINITIONS

    call_command("load_demo_metrics", stdout=None)
    MetricDefinition.objects.filter(name="metricdemo.demo.observable_counter").update(
        value=42
    )
    call_command("load_demo_metrics", stdout=None)
    assert MetricDefinition.objects.filter(
        name__startswith="metricdemo."
    ).count() == len(DEMO_DEFINITIONS)
    edited = MetricDefinition.objects.get(name="metricdemo.demo.observable_counter")
    assert edited.value == 42


def test_constant__gauge_with_unit_help_and_attributes(client, define):
    define(
        name="shop.queue.capacity",
        description="How many orders the queue holds",
        unit="{order}",
        kind="gauge",
        source="constant",
        value=250,
        attributes={"region": "eu", "tier": 2, "beta": True},
    )
    families = scrape(client)
    family = families["shop_queue_capacity"]
    assert family.type == "gauge"
    assert family.documentation == "How many orders the queue holds"
    assert (
        value(families, "shop_queue_capacity", region="eu", tier="2", beta="true")
        == 250.0
    )


# The histogram counts rows on a worker thread: commit them.
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("openmetrics", [False, True])
def test_a_definition_without_description_has_its_name_as_help(
    client, define, openmetrics
):
    """No empty HELP line: a definition's name says what it is."""
    define(name="shop.queue.length", kind="gauge", source="constant", value=3)
    define(name="shop.jobs", kind="counter", source="constant", value=2)
    define(
        name="shop.order.size",
        kind="histogram",
        source="row_count",
        model="shop.Order",
        field="quantity",
        buckets=[1, 5],
    )
    if openmetrics:
        response = client.get("/metrics", HTTP_ACCEPT=OPENMETRICS)
        assert response.status_code == 200
        text = response.content.decode()
        families = {f.name: f for f in parse_openmetrics(text)}
    else:
        families = scrape(client)
    assert families["shop_queue_length"].documentation == "shop.queue.length"
    assert families["shop_jobs"].documentation == "shop.jobs"
    assert families["shop_order_size"].documentation == "shop.order.size"


@pytest.mark.parametrize(
    ("unit", "kind", "sample_name", "family_type"),
    [
        ("s", "gauge", "app_wait_seconds", "gauge"),
        ("By", "gauge", "app_wait_bytes", "gauge"),
        ("1", "gauge", "app_wait", "gauge"),
        ("%", "gauge", "app_wait_percent", "gauge"),
        ("ms", "counter", "app_wait_milliseconds_total", "counter"),
        ("{item}", "counter", "app_wait_total", "counter"),
        ("s", "updowncounter", "app_wait_seconds", "gauge"),
    ],
)
def test_units_and_kinds_shape_the_exported_name(
    client, define, unit, kind, sample_name, family_type
):
    definition = define(
        name="app.wait", unit=unit, kind=kind, source="constant", value=3
    )
    families = scrape(client)
    assert definition.exported_name == sample_name
    assert value(families, sample_name) == 3.0
    (family,) = [
        f for f in families.values() if f.samples and f.samples[0].name == sample_name
    ]
    assert family.type == family_type


# Row counts run on worker threads with their own connections: commit the rows.
@pytest.mark.django_db(transaction=True)
def test_upper_case_names_are_exported_in_lower_case(client, define):
    """The OpenTelemetry SDK lowercases instrument names; exported_name agrees."""
    definition = define(name="Shop.Orders", unit="s", source="constant", value=2)
    assert definition.exported_name == "shop_orders_seconds"
    assert value(scrape(client), "shop_orders_seconds") == 2.0


# Row counts run on worker threads with their own connections: commit the rows.
@pytest.mark.django_db(transaction=True)
def test_row_count__plain_filtered_and_grouped(client, define, orders):
    define(name="shop.orders", source="row_count", model="shop.Order")
    define(
        name="shop.orders.pending_2026",
        source="row_count",
        model="shop.Order",
        filters={"status": "pending", "created__year": 2026},
    )
    define(
        name="shop.orders.by_status",
        source="row_count",
        model="shop.Order",
        group_by="status",
        attributes={"shop": "main"},
    )
    define(
        name="shop.orders.by_country",
        source="row_count",
        model="shop.Order",
        filters={"status__in": ["pending", "paid"]},
        group_by="customer__country",
    )
    families = scrape(client)

    assert value(families, "shop_orders") == 6.0
    assert value(families, "shop_orders_pending_2026") == 2.0
    assert series(families, "shop_orders_by_status") == {
        frozenset({("status", "pending"), ("shop", "main")}): 3.0,
        frozenset({("status", "paid"), ("shop", "main")}): 2.0,
        frozenset({("status", "shipped"), ("shop", "main")}): 1.0,
    }
    assert series(families, "shop_orders_by_country") == {
        frozenset({("customer_country", "DE")}): 2.0,
        frozenset({("customer_country", "FR")}): 2.0,
        # NULL becomes an empty label, which Prometheus reads as no label.
        frozenset({("customer_country", "")}): 1.0,
    }


# Row counts run on worker threads with their own connections: commit the rows.
@pytest.mark.django_db(transaction=True)
def test_row_count__empty_group_by_exports_no_series(client, define):
    define(
        name="shop.orders.by_status",
        source="row_count",
        model="shop.Order",
        group_by="status",
    )
    families = scrape(client)
    assert series(families, "shop_orders_by_status") == {}


def test_setting__number_bool_and_nested_dict(client, define):
    with override_settings(
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                "TIMEOUT": 600,
            }
        },
        SHOP_OPEN=True,
    ):
        define(
            name="cache.timeout",
            unit="s",
            source="setting",
            setting="CACHES.default.TIMEOUT",
        )
        define(name="shop.open", source="setting", setting="SHOP_OPEN")
        families = scrape(client)
        assert value(families, "cache_timeout_seconds") == 600.0
        assert value(families, "shop_open") == 1.0


def test_callback__number_and_series(client, define, callback):
    callback("test.answer", lambda: 42)
    callback(
        "test.queues",
        lambda: [(3, {"queue": "mail"}), (7.5, {"queue": "reports"})],
    )
    define(
        name="test.answer",
        source="callback",
        callback="test.answer",
        attributes={"team": "ops"},
    )
    define(
        name="test.queue.depth",
        kind="updowncounter",
        source="callback",
        callback="test.queues",
    )
    families = scrape(client)
    assert value(families, "test_answer", team="ops") == 42.0
    assert series(families, "test_queue_depth") == {
        frozenset({("queue", "mail")}): 3.0,
        frozenset({("queue", "reports")}): 7.5,
    }


def test_failing_definition_is_left_out_and_the_rest_export(client, define, callback):
    """A raising callback, a lost setting and a bad result leave only themselves out."""
    state = {"fail": True}

    def flaky():
        if state["fail"]:
            raise RuntimeError("backend down")
        return 5

    callback("test.flaky", flaky)
    callback("test.text", lambda: "not a number")
    define(name="ok.one", source="constant", value=1)
    define(name="bad.flaky", source="callback", callback="test.flaky")
    define(name="bad.text", source="callback", callback="test.text")
    with override_settings(GONE_SOON=3):
        define(name="bad.setting", source="setting", setting="GONE_SOON")
    families = scrape(client)
    assert value(families, "ok_one") == 1.0
    for name in ("bad_flaky", "bad_text", "bad_setting"):
        assert name not in families

    state["fail"] = False
    assert value(scrape(client), "bad_flaky") == 5.0


def test_failure_is_logged_once_per_distinct_error(client, define, callback, caplog):
    callback("test.broken", lambda: 1 / 0)
    define(name="bad.broken", source="callback", callback="test.broken")
    with caplog.at_level("WARNING", logger="metricdemo"):
        for _ in range(5):
            scrape(client)
    messages = [
        r.getMessage() for r in caplog.records if "bad.broken" in r.getMessage()
    ]
    assert len(messages) == 1
    assert "ZeroDivisionError" in messages[0]


def test_openmetrics_when_accept_header_asks(client, define):
    define(name="shop.sales", kind="counter", unit="{sale}", source="constant", value=4)
    response = client.get(
        "/metrics", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0"
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    families = {f.name: f for f in parse_openmetrics(response.content.decode())}
    assert families["shop_sales"].type == "counter"
    (sample,) = [
        s for s in families["shop_sales"].samples if s.name == "shop_sales_total"
    ]
    assert sample.value == 4.0


def test_text_format_by_default_and_never_cached(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "no-cache" in response["Cache-Control"]
    assert "max-age=0" in response["Cache-Control"]


def test_only_safe_methods(client):
    assert client.post("/metrics").status_code == 405
    assert client.head("/metrics").status_code == 200


def test_post__405_with_allow_not_a_csrf_page():
    """A scraper never holds a CSRF token: a POST is a wrong method, not a forgery."""
    response = Client(enforce_csrf_checks=True).post("/metrics")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD"


def test_code_instruments_share_the_endpoint(client):
    """An instrument made with the plain OpenTelemetry API shows on /metrics."""
    from opentelemetry import metrics

    meter = metrics.get_meter("tests.code")
    counter = meter.create_counter("tests.code.jobs", unit="{job}", description="Jobs")
    counter.add(3, {"queue": "default"})
    families = scrape(client)
    assert value(families, "tests_code_jobs_total", queue="default") >= 3.0


def test_target_info_carries_resource_attributes(client):
    families = scrape(client)
    (sample,) = families["target_info"].samples
    assert sample.name == "target_info"
    assert sample.labels["telemetry_sdk_name"] == "opentelemetry"
    assert sample.labels["service_instance_id"]
