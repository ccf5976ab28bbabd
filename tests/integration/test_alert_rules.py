"""Alert rules: validation, generated rule files, promtool checks and unit tests."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from metricdemo import alerts
from metricdemo.models import AlertRule

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed"
)


@pytest.fixture
def pending(define):
    return define(
        name="shop.orders.pending",
        source="row_count",
        model="shop.Order",
        filters={"status": "pending"},
        group_by="customer__country",
    )


def rule(definition, **fields) -> AlertRule:
    made = AlertRule(definition=definition, **{"name": "OrdersWaiting", **fields})
    made.full_clean()
    made.save()
    return made


def run_rules(tmp_path, *args) -> tuple[dict, str]:
    out = tmp_path / "rules.yml"
    call_command("metrics", "rules", "-o", str(out), *args)
    text = out.read_text()
    return yaml.safe_load(text), text


@pytest.mark.django_db
def test_a_rule_becomes_a_prometheus_rule_with_the_exported_name(pending, tmp_path):
    rule(
        pending,
        operator=">",
        threshold=50,
        label_filter={"customer_country": "DE"},
        for_duration=600,
        severity="critical",
        summary="{{ $value }} orders wait in {{ $labels.customer_country }}",
        runbook_url="https://wiki.example/orders",
    )
    data, _text = run_rules(tmp_path)
    (group,) = data["groups"]
    assert group["name"] == "metricdemo:shop.orders.pending"
    (entry,) = group["rules"]
    assert entry == {
        "alert": "OrdersWaiting",
        "expr": 'shop_orders_pending{customer_country="DE"} > 50',
        "for": "10m",
        "labels": {
            "severity": "critical",
            "metricdemo_definition": "shop.orders.pending",
        },
        "annotations": {
            "summary": "{{ $value }} orders wait in {{ $labels.customer_country }}",
            "runbook_url": "https://wiki.example/orders",
        },
    }


@pytest.mark.django_db
def test_expressions_follow_the_definition(define, pending):
    counter = define(
        name="shop.sales", kind="counter", unit="By", source="constant", value=1
    )
    assert (
        alerts.expression(AlertRule(definition=counter, operator=">=", threshold=2.5))
        == "shop_sales_bytes_total >= 2.5"
    )
    by_country = AlertRule(
        definition=pending,
        operator="<",
        threshold=1,
        aggregation="sum",
        by_labels="customer_country",
    )
    assert alerts.expression(by_country) == (
        "sum by (customer_country) (shop_orders_pending) < 1"
    )
    assert alerts.expression(AlertRule(definition=pending, operator="absent")) == (
        "absent(shop_orders_pending)"
    )
    pending.name = "shop.orders.open"  # a rename renames what the rule reads
    assert alerts.expression(by_country, pending).endswith("(shop_orders_open) < 1")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"name": "9lives", "threshold": 1}, "name", ["not an alert name"]),
        ({"name": "a b", "threshold": 1}, "name", ["letters, digits"]),
        ({"operator": ">"}, "threshold", ["compared with", "absent"]),
        (
            {"threshold": 1, "label_filter": {"country": "DE"}},
            "label_filter",
            ["exports no label", "customer_country"],
        ),
        ({"threshold": 1, "label_filter": ["DE"]}, "label_filter", ["JSON object"]),
        (
            {"threshold": 1, "by_labels": "customer_country"},
            "by_labels",
            ["need an aggregation"],
        ),
        (
            {"threshold": 1, "aggregation": "sum", "by_labels": "region"},
            "by_labels",
            ["exports no label"],
        ),
        ({"threshold": 1, "summary": "{{ $value "}, "summary", ["without its"]),
        (
            {"threshold": 1, "description": "{{ if $value }}high"},
            "description",
            ["{{ end }}"],
        ),
        ({"threshold": 1, "summary": "{{ }}"}, "summary", ["empty action"]),
        (
            {"threshold": 1, "summary": '{{ printf "%.2f $value }}'},
            "summary",
            ["quote"],
        ),
        ({"threshold": 1, "severity": "very high"}, "severity", ["one word"]),
        ({"threshold": 1, "quantile": 0.9}, "quantile", ["histograms"]),
    ],
)
def test_bad_rules_are_refused_with_a_field_error(pending, fields, field, words):
    made = AlertRule(definition=pending, **{"name": "OrdersWaiting", **fields})
    with pytest.raises(ValidationError) as info:
        made.full_clean()
    messages = " ".join(info.value.message_dict[field])
    for word in words:
        assert word in messages, messages


@pytest.mark.django_db
def test_disabled_definitions_and_rules_are_left_out(define, pending, tmp_path):
    rule(pending, threshold=5)
    rule(pending, name="Off", threshold=5, enabled=False)
    other = define(name="shop.other", source="constant", value=1, enabled=False)
    rule(other, name="OnADisabledDefinition", threshold=0)
    data, _ = run_rules(tmp_path)
    assert [r["alert"] for g in data["groups"] for r in g["rules"]] == ["OrdersWaiting"]


@pytest.mark.django_db
def test_prometheusrule_format_wraps_the_same_groups(pending, tmp_path):
    rule(pending, threshold=5)
    plain, _ = run_rules(tmp_path)
    resource, _ = run_rules(
        tmp_path, "--format", "prometheusrule", "--namespace", "shop"
    )
    assert resource["apiVersion"] == "monitoring.coreos.com/v1"
    assert resource["kind"] == "PrometheusRule"
    assert resource["metadata"]["namespace"] == "shop"
    assert resource["spec"]["groups"] == plain["groups"]


@needs_promtool
@pytest.mark.django_db
def test_promtool_checks_and_unit_tests_pass_for_every_kind_of_rule(
    define, pending, tmp_path
):
    histogram = define(
        name="shop.order.value",
        kind="histogram",
        source="row_count",
        model="shop.Order",
        field="total",
        group_by="status",
        buckets=[10, 50, 100],
    )
    counter = define(
        name="shop.sales", kind="counter", unit="s", source="constant", value=1
    )
    rule(
        pending,
        threshold=50,
        label_filter={"customer_country": "DE"},
        for_duration=600,
        summary="{{ $value }} orders wait in {{ $labels.customer_country }}",
    )
    rule(
        pending,
        name="FewOrders",
        operator="<",
        threshold=1,
        aggregation="sum",
        by_labels="customer_country",
        for_duration=0,
        description="only {{ $value | humanize }} ({{ $value | humanizePercentage }})",
    )
    rule(
        pending,
        name="NoOrders",
        operator="absent",
        for_duration=120,
        summary="shop.orders.pending exports nothing",
    )
    rule(
        pending,
        name="CountOfCountries",
        operator=">=",
        threshold=1,
        aggregation="count",
    )
    rule(pending, name="Exactly", operator="==", threshold=7, keep_firing_for=300)
    rule(pending, name="NotSeven", operator="!=", threshold=7, aggregation="max")
    rule(
        histogram,
        name="SlowOrders",
        operator=">",
        threshold=40,
        quantile=0.9,
        for_duration=300,
        summary="p90 is {{ $value }}",
    )
    rule(
        histogram,
        name="CheapOrders",
        operator="<=",
        threshold=60,
        quantile=0.5,
        aggregation="sum",
        by_labels="status",
        label_filter={"status": "paid"},
    )
    rule(counter, name="Sales", operator=">", threshold=0, severity="info")
    rules_file = tmp_path / "rules.yml"
    tests_file = tmp_path / "tests.yml"
    call_command(
        "metrics", "rules", "-o", str(rules_file), "--check", "--tests", str(tests_file)
    )
    checked = subprocess.run(
        [PROMTOOL, "check", "rules", str(rules_file)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(
        [PROMTOOL, "test", "rules", str(tests_file)], capture_output=True, text=True
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    tests = yaml.safe_load(tests_file.read_text())
    fired = [
        t["alert_rule_test"][0]["alertname"]
        for t in tests["tests"]
        if t["alert_rule_test"][0]["exp_alerts"]
    ]
    # Every rule has a case where it fires.
    assert sorted(set(fired)) == sorted(r.name for r in AlertRule.objects.all())


@pytest.mark.django_db
def test_the_rules_url_is_opt_in_and_protected_like_metrics(pending, client, settings):
    rule(pending, threshold=5)
    assert client.get("/metrics/rules").status_code == 404
    settings.METRICDEMO = {
        **settings.METRICDEMO,
        "SERVE_RULES": True,
        "AUTH_TOKEN": "s3",
    }
    assert client.get("/metrics/rules").status_code == 401
    response = client.get("/metrics/rules", HTTP_AUTHORIZATION="Bearer s3")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/yaml")
    data = yaml.safe_load(response.content)
    assert data["groups"][0]["rules"][0]["expr"] == "shop_orders_pending > 5"
    resource = yaml.safe_load(
        client.get(
            "/metrics/rules?format=prometheusrule", HTTP_AUTHORIZATION="Bearer s3"
        ).content
    )
    assert resource["kind"] == "PrometheusRule"


@pytest.mark.django_db(transaction=True)
def test_metrics_check_fails_on_a_rule_its_definition_cannot_serve(pending, callback):
    from django.core.management.base import CommandError

    rule(pending, threshold=5, label_filter={"customer_country": "DE"})
    call_command("metrics", "check")  # passes while the label is exported
    pending.group_by = "status"
    pending.save()
    with pytest.raises(CommandError, match="alert rules refer to series"):
        call_command("metrics", "check")
    pending.enabled = False  # a disabled definition's rules are not written
    pending.save()
    call_command("metrics", "check")


@pytest.mark.django_db(transaction=True)
def test_metrics_check_reads_a_callbacks_labels_from_its_value(define, callback):
    callback("test.queue", lambda: [(3.0, {"queue": "mail"})])
    queue = define(name="jobs.queued", source="callback", callback="test.queue")
    rule(queue, threshold=5, label_filter={"queue": "mail"})
    call_command("metrics", "check")
    rule(queue, name="Typo", threshold=5, label_filter={"queu": "mail"})
    with pytest.raises(CommandError, match="alert rules"):
        call_command("metrics", "check")


@needs_promtool
@pytest.mark.django_db
def test_the_demos_rules_pass_promtool_and_each_fires_in_its_unit_test(tmp_path):
    from metricsite.demo import DEMO_ALERT_RULES

    call_command("load_demo_metrics", verbosity=0)
    rules_file, tests_file = tmp_path / "rules.yml", tmp_path / "tests.yml"
    call_command(
        "metrics", "rules", "-o", str(rules_file), "--check", "--tests", str(tests_file)
    )
    tested = subprocess.run(
        [PROMTOOL, "test", "rules", str(tests_file)], capture_output=True, text=True
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    tests = yaml.safe_load(tests_file.read_text())
    fired = {
        t["alert_rule_test"][0]["alertname"]
        for t in tests["tests"]
        if t["alert_rule_test"][0]["exp_alerts"]
    }
    assert fired == {
        rule["name"] for rules in DEMO_ALERT_RULES.values() for rule in rules
    }


@pytest.mark.parametrize(
    ("template", "value", "expected"),
    [
        ("{{ $value }}", 21.0, "21"),
        ("{{ $value }}", 1234567.0, "1.234567e+06"),
        ("{{ $value | humanize }}", 1234567.0, "1.235M"),
        ("{{ $value | humanize }}", 0.25, "250m"),
        ("{{ $value | humanizeDuration }}", 93784.0, "1d 2h 3m 4s"),
        ("{{ $value | humanizeDuration }}", 125.0, "2m 5s"),
        ("{{ $value | humanizeDuration }}", 1.5, "1.5s"),
        ("{{ $value | humanizeDuration }}", 0.25, "250ms"),
        ("{{ $value | humanizePercentage }}", 0.256, "25.6%"),
        ("{{ .Labels.country }} / {{ $labels.missing }}", 1.0, "DE / <no value>"),
    ],
)
def test_templates_render_as_prometheus_renders_them(template, value, expected):
    from metricdemo.rulefiles import render

    assert render(template, {"country": "DE"}, value) == expected
