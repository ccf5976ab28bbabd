"""`manage.py metrics grafana`: a dashboard whose queries name exported metrics."""

from __future__ import annotations

import datetime as dt
import io
import json
import re

import pytest
from django.core.management import call_command
from django.db.models import F

from metricdemo import naming
from metricdemo.cli.grafana import SELF_METRICS
from tests.scraping import scrape

# Rows are committed, so that row counts evaluated on other connections see them.
pytestmark = pytest.mark.django_db(transaction=True)

# A PromQL identifier; one followed by "(" is a function or an aggregation.
IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def dashboard(*args: str) -> dict:
    """Run the command and parse what it prints."""
    out = io.StringIO()
    call_command("metrics", "grafana", *args, stdout=out)
    return json.loads(out.getvalue())


def metric_names(query: str) -> set[str]:
    """Return the metric names a PromQL query selects."""
    query = re.sub(r"\b(by|without)\s*\([^)]*\)", "", query)
    query = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", query)
    return {
        match.group()
        for match in IDENTIFIER.finditer(query)
        if not query[match.end() :].lstrip().startswith("(")
    }


def test_metric_names__skips_functions_groupings_and_ranges():
    query = "max by (kind) (rate(shop_orders_total{a='b'}[$__rate_interval]))"
    assert metric_names(query) == {"shop_orders_total"}
    assert metric_names("time() - max(x_seconds)") == {"x_seconds"}


@pytest.fixture
def definitions(define, callback, orders):
    """Enabled definitions of every kind and a disabled one."""
    callback("test.queues", lambda: [(3, {"queue": "mail"})])
    define(
        name="shop.target",
        description="Orders we aim for",
        source="constant",
        value=500,
        attributes={"region": "eu"},
    )
    define(
        name="shop.orders.placed",
        kind="counter",
        unit="{order}",
        source="row_count",
        model="shop.Order",
        group_by="status",
    )
    define(
        name="shop.queue.depth",
        kind="updowncounter",
        source="callback",
        callback="test.queues",
    )
    # Upper case: the exported name is lower case, and so is the query.
    define(name="Shop.Wait", unit="s", source="constant", value=2)
    define(name="shop.retired", source="constant", value=1, enabled=False)


def panels_by_title(board: dict) -> dict[str, dict]:
    titles = [panel["title"] for panel in board["panels"]]
    assert len(titles) == len(set(titles)), titles
    return {panel["title"]: panel for panel in board["panels"]}


def test_a_panel_per_enabled_definition_then_the_self_metrics(definitions):
    board = dashboard()
    assert [panel["title"] for panel in board["panels"]] == [
        "Shop.Wait",
        "shop.orders.placed",
        "shop.queue.depth",
        "shop.target",
        "metricdemo evaluations",
    ]
    panels = panels_by_title(board)
    assert all(panel["type"] == "timeseries" for panel in board["panels"])
    assert sorted(panel["id"] for panel in board["panels"]) == [1, 2, 3, 4, 5]
    positions = {(p["gridPos"]["x"], p["gridPos"]["y"]) for p in board["panels"]}
    assert len(positions) == 5

    (placed,) = panels["shop.orders.placed"]["targets"]
    assert placed["expr"] == (
        "max by (status) (rate(shop_orders_placed_total[$__rate_interval]))"
    )
    assert placed["legendFormat"] == "{{status}}"
    (depth,) = panels["shop.queue.depth"]["targets"]
    assert depth["expr"] == "shop_queue_depth"
    (target,) = panels["shop.target"]["targets"]
    assert target["expr"] == "shop_target"
    assert panels["shop.target"]["description"].startswith("Orders we aim for")
    (wait,) = panels["Shop.Wait"]["targets"]
    assert wait["expr"] == "shop_wait_seconds"
    assert panels["Shop.Wait"]["fieldConfig"]["defaults"] == {"unit": "s"}

    self_targets = panels["metricdemo evaluations"]["targets"]
    for name, target in zip(SELF_METRICS, self_targets, strict=True):
        selected = metric_names(target["expr"])
        assert selected and all(n.startswith(name) for n in selected), target


def test_every_query_names_a_metric_that_metrics_exports(client, definitions):
    """Every query, the self-metrics' included, names an exported sample."""
    families = scrape(client)
    samples = {s.name for family in families.values() for s in family.samples}
    board = dashboard()
    *definition_panels, self_panel = board["panels"]
    for panel in definition_panels:
        for target in panel["targets"]:
            assert metric_names(target["expr"]) <= samples, target["expr"]
    for target in self_panel["targets"]:
        assert metric_names(target["expr"]), target["expr"]
        assert metric_names(target["expr"]) <= samples, target["expr"]


def test_datasource__an_import_input_by_default(definitions):
    board = dashboard()
    (source,) = board["__inputs"]
    assert (source["name"], source["pluginId"]) == ("DS_PROMETHEUS", "prometheus")
    wanted = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    for panel in board["panels"]:
        assert panel["datasource"] == wanted
        assert all(target["datasource"] == wanted for target in panel["targets"])


def test_datasource__named_on_the_command_line(definitions):
    board = dashboard("--datasource", "prom-main")
    assert "__inputs" not in board
    wanted = {"type": "prometheus", "uid": "prom-main"}
    for panel in board["panels"]:
        assert panel["datasource"] == wanted
        assert all(target["datasource"] == wanted for target in panel["targets"])


def test_output_is_stable(definitions):
    out = [io.StringIO(), io.StringIO()]
    for stream in out:
        call_command("metrics", "grafana", stdout=stream)
    assert out[0].getvalue() == out[1].getvalue()


def test_no_definitions_still_gives_the_self_metrics_panel():
    board = dashboard()
    assert [panel["title"] for panel in board["panels"]] == ["metricdemo evaluations"]


def test_aggregates__a_date_is_an_age_and_several_labels_group(define):
    define(
        name="orders.oldest_pending",
        source="row_count",
        model="shop.Order",
        aggregate="min",
        field="created",
        filters={"status": "pending"},
        group_by="status, customer__country",
    )
    define(
        name="orders.handling",
        source="row_count",
        model="shop.Order",
        aggregate="avg",
        field="handling",
    )
    panels = {panel["title"]: panel for panel in dashboard()["panels"]}
    oldest = panels["orders.oldest_pending (age)"]
    (target,) = oldest["targets"]
    assert target["expr"] == (
        "time() - max by (status, country) (orders_oldest_pending)"
    )
    assert target["legendFormat"] == "{{status}} {{country}}"
    assert oldest["fieldConfig"]["defaults"]["unit"] == "s"
    assert panels["orders.handling"]["fieldConfig"]["defaults"]["unit"] == "s"


def test_aggregates__the_time_between_dates_is_seconds_not_an_age(define):
    define(
        name="orders.time_to_payment",
        source="row_count",
        model="shop.Order",
        aggregate="avg",
        field="paid - created",
    )
    define(
        name="orders.oldest_pending_age",
        source="row_count",
        model="shop.Order",
        aggregate="max",
        field="now - created",
        filters={"status": "pending"},
    )
    panels = panels_by_title(dashboard())
    for name in ("orders.time_to_payment", "orders.oldest_pending_age"):
        (target,) = panels[name]["targets"]
        assert target["expr"] == name.replace(".", "_")
        assert panels[name]["fieldConfig"]["defaults"] == {"unit": "s"}


@pytest.fixture
def histograms(define):
    """A histogram of order totals, and one of the seconds to payment by status."""
    define(
        name="shop.order.value",
        description="Order totals",
        unit="{EUR}",
        kind="histogram",
        source="row_count",
        model="shop.Order",
        field="total",
        buckets=[10, 100, 1000],
    )
    define(
        name="shop.order.time_to_payment",
        unit="s",
        kind="histogram",
        source="row_count",
        model="shop.Order",
        field="paid - created",
        filters={"paid__isnull": False},
        group_by="status, customer__country",
        buckets=[60, 3600, 86400],
    )
    define(name="shop.target", source="constant", value=500)


def test_histograms__a_heatmap_and_quantiles_side_by_side(histograms):
    board = dashboard()
    panels = board["panels"]
    assert [(panel["type"], panel["title"]) for panel in panels] == [
        ("heatmap", "shop.order.time_to_payment"),
        ("timeseries", "shop.order.time_to_payment (p50, p90, p99)"),
        ("heatmap", "shop.order.value"),
        ("timeseries", "shop.order.value (p50, p90, p99)"),
        ("timeseries", "shop.target"),
        ("timeseries", "metricdemo evaluations"),
    ]
    assert [panel["id"] for panel in panels] == [1, 2, 3, 4, 5, 6]
    assert [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in panels] == [
        (0, 0),
        (12, 0),
        (0, 8),
        (12, 8),
        (0, 16),
        (12, 16),
    ]
    assert {"type": "panel", "id": "heatmap", "name": "Heatmap", "version": ""} in (
        board["__requires"]
    )


def test_histograms__a_pair_starts_a_row(define, histograms):
    define(name="a.first", source="constant", value=1)
    panels = dashboard()["panels"]
    assert [(p["title"], p["gridPos"]["x"], p["gridPos"]["y"]) for p in panels] == [
        ("a.first", 0, 0),
        # The right half of the first row stays empty.
        ("shop.order.time_to_payment", 0, 8),
        ("shop.order.time_to_payment (p50, p90, p99)", 12, 8),
        ("shop.order.value", 0, 16),
        ("shop.order.value (p50, p90, p99)", 12, 16),
        ("shop.target", 0, 24),
        ("metricdemo evaluations", 12, 24),
    ]


def test_histograms__buckets_as_scraped_one_copy_per_bucket(histograms):
    """No rate(): the buckets are a snapshot of rows now, and go down too."""
    panels = panels_by_title(dashboard())
    heatmap = panels["shop.order.value"]
    (target,) = heatmap["targets"]
    assert target["expr"] == "max by (le) (shop_order_value_bucket)"
    assert (target["format"], target["legendFormat"]) == ("heatmap", "{{le}}")
    assert heatmap["options"]["calculate"] is False
    assert heatmap["options"]["yAxis"]["unit"] == "short"
    assert heatmap["description"].startswith("Order totals (shop_order_value_bucket)")

    quantiles = panels["shop.order.value (p50, p90, p99)"]
    assert [
        (t["refId"], t["expr"], t["legendFormat"]) for t in quantiles["targets"]
    ] == [
        ("A", "histogram_quantile(0.5, max by (le) (shop_order_value_bucket))", "p50"),
        ("B", "histogram_quantile(0.9, max by (le) (shop_order_value_bucket))", "p90"),
        (
            "C",
            "histogram_quantile(0.99, max by (le) (shop_order_value_bucket))",
            "p99",
        ),
    ]
    # {EUR} has no Grafana unit: plain numbers.
    assert quantiles["fieldConfig"]["defaults"] == {}


def test_histograms__groups_add_up_and_durations_are_seconds(histograms):
    panels = panels_by_title(dashboard())
    buckets = (
        "sum by (le) (max by (le, status, country) "
        "(shop_order_time_to_payment_seconds_bucket))"
    )
    heatmap = panels["shop.order.time_to_payment"]
    (target,) = heatmap["targets"]
    assert target["expr"] == buckets
    assert heatmap["options"]["yAxis"]["unit"] == "s"
    quantiles = panels["shop.order.time_to_payment (p50, p90, p99)"]
    assert [t["expr"] for t in quantiles["targets"]] == [
        f"histogram_quantile(0.5, {buckets})",
        f"histogram_quantile(0.9, {buckets})",
        f"histogram_quantile(0.99, {buckets})",
    ]
    assert quantiles["fieldConfig"]["defaults"] == {"unit": "s"}


def test_histograms__a_duration_is_charted_in_seconds_without_a_unit(define):
    define(
        name="orders.handling",
        kind="histogram",
        source="row_count",
        model="shop.Order",
        field="handling",
        buckets=[60, 600],
    )
    define(
        name="orders.age",
        kind="histogram",
        source="row_count",
        model="shop.Order",
        field="now - created",
        buckets=[60, 600],
    )
    panels = panels_by_title(dashboard())
    for name in ("orders.handling", "orders.age"):
        assert panels[name]["options"]["yAxis"]["unit"] == "s"
        quantiles = panels[f"{name} (p50, p90, p99)"]
        assert quantiles["fieldConfig"]["defaults"] == {"unit": "s"}
    (age,) = panels["orders.age"]["targets"]
    assert age["expr"] == "max by (le) (orders_age_bucket)"


def test_histograms__the_queries_name_the_exported_bucket_series(histograms):
    from metricdemo.models import MetricDefinition

    board = dashboard()
    for definition in MetricDefinition.objects.filter(kind="histogram"):
        family = naming.exported_names(definition.name, "histogram", definition.unit)[0]
        titles = (definition.name, f"{definition.name} (p50, p90, p99)")
        for panel in board["panels"]:
            if panel["title"] in titles:
                for target in panel["targets"]:
                    assert metric_names(target["expr"]) == {f"{family}_bucket"}


def test_histograms__every_query_names_a_series_that_metrics_exports(
    client, orders, histograms
):
    orders.exclude(status="pending").update(paid=F("created") + dt.timedelta(hours=1))
    families = scrape(client)
    samples = {s.name for family in families.values() for s in family.samples}
    *definition_panels, _ = dashboard()["panels"]
    for panel in definition_panels:
        for target in panel["targets"]:
            assert metric_names(target["expr"]) <= samples, target["expr"]


@pytest.mark.django_db
def test_alert_thresholds_are_drawn_on_their_panels(define):
    from metricdemo.cli.grafana import build_dashboard
    from metricdemo.models import AlertRule, MetricDefinition

    gauge = define(name="shop.waiting", source="constant", value=3)
    histogram = define(
        name="shop.value",
        kind="histogram",
        source="row_count",
        model="shop.Order",
        field="total",
        buckets=[10, 50],
    )
    counter = define(name="shop.sales", kind="counter", source="constant", value=1)
    AlertRule.objects.create(
        definition=gauge, name="High", threshold=50, severity="critical"
    )
    AlertRule.objects.create(definition=gauge, name="Raised", threshold=20)
    AlertRule.objects.create(definition=gauge, name="Gone", operator="absent")
    AlertRule.objects.create(definition=gauge, name="Off", threshold=5, enabled=False)
    AlertRule.objects.create(
        definition=histogram, name="P90", threshold=40, quantile=0.9
    )
    AlertRule.objects.create(definition=counter, name="Sales", threshold=1)
    definitions = MetricDefinition.objects.prefetch_related("alert_rules")
    panels = {p["title"]: p for p in build_dashboard(definitions)["panels"]}
    waiting = panels["shop.waiting"]["fieldConfig"]["defaults"]
    assert waiting["thresholds"]["steps"] == [
        {"color": "green", "value": None},
        {"color": "orange", "value": 20.0},
        {"color": "red", "value": 50.0},
    ]
    assert waiting["custom"] == {"thresholdsStyle": {"mode": "line"}}
    quantiles = panels["shop.value (p50, p90, p99)"]["fieldConfig"]["defaults"]
    assert [s["value"] for s in quantiles["thresholds"]["steps"]] == [None, 40.0]
    assert "thresholds" not in panels["shop.value"]["fieldConfig"]["defaults"]
    # A counter's panel charts its rate: a threshold on its total is not drawn.
    assert "thresholds" not in panels["shop.sales"]["fieldConfig"]["defaults"]
