"""Export and import carry each definition's alert rules."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission, User

from metricdemo import serialization
from metricdemo.models import AlertRule, MetricDefinition

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending(define):
    definition = define(
        name="shop.orders.pending",
        source="row_count",
        model="shop.Order",
        group_by="status",
    )
    AlertRule.objects.create(
        definition=definition,
        name="OrdersWaiting",
        operator=">",
        threshold=50,
        label_filter={"status": "pending"},
        for_duration=600,
        summary="{{ $value }} orders wait",
    )
    AlertRule.objects.create(definition=definition, name="NoOrders", operator="absent")
    return definition


def exported() -> dict:
    definitions = MetricDefinition.objects.prefetch_related("alert_rules")
    return json.loads(serialization.dumps(definitions))


def test_export_writes_the_rules_and_import_restores_them(pending):
    data = exported()
    (entry,) = data["definitions"]
    assert entry["alert_rules"] == [
        {"name": "NoOrders", "operator": "absent"},
        {
            "name": "OrdersWaiting",
            "operator": ">",
            "threshold": 50.0,
            "label_filter": {"status": "pending"},
            "for_duration": 600,
            "summary": "{{ $value }} orders wait",
        },
    ]
    MetricDefinition.objects.all().delete()
    assert not AlertRule.objects.exists()
    report = serialization.import_definitions(serialization.loads(json.dumps(data)))
    assert report.created == ["shop.orders.pending"]
    assert exported() == data
    again = serialization.import_definitions(serialization.loads(json.dumps(data)))
    assert again.unchanged == ["shop.orders.pending"]


def test_a_file_without_rules_leaves_the_stored_rules_alone(pending):
    data = exported()
    del data["definitions"][0]["alert_rules"]
    report = serialization.import_definitions(serialization.loads(json.dumps(data)))
    assert report.unchanged == ["shop.orders.pending"]
    assert AlertRule.objects.count() == 2


def test_an_empty_list_replaces_the_rules(pending):
    data = exported()
    data["definitions"][0]["alert_rules"] = [
        {"name": "Few", "operator": "<", "threshold": 1}
    ]
    report = serialization.import_definitions(serialization.loads(json.dumps(data)))
    assert report.changed == {"shop.orders.pending": ["alert_rules"]}
    assert list(AlertRule.objects.values_list("name", flat=True)) == ["Few"]
    data["definitions"][0]["alert_rules"] = []
    serialization.import_definitions(serialization.loads(json.dumps(data)))
    assert not AlertRule.objects.exists()


@pytest.mark.parametrize(
    ("rules", "words"),
    [
        (
            [{"name": "9x", "threshold": 1}],
            ["alert_rules[0] 9x: name", "not an alert name"],
        ),
        ([{"name": "A"}], ["alert_rules[0] A: threshold", "compared with"]),
        (
            [{"name": "A", "threshold": 1, "label_filter": {"country": "DE"}}],
            ["exports no label"],
        ),
        ([{"name": "A", "threshold": 1, "severe": "x"}], ["unknown keys severe"]),
        ([{"threshold": 1}], ['"name" string']),
        ("A", ["expected a list of rules"]),
        (
            [{"name": "A", "threshold": 1}, {"name": "A", "threshold": 2}],
            ["appears twice"],
        ),
    ],
)
def test_bad_rules_in_a_file_are_reported_and_nothing_is_saved(pending, rules, words):
    data = exported()
    data["definitions"][0]["alert_rules"] = rules
    with pytest.raises(serialization.ImportFailed) as info:
        serialization.import_definitions(serialization.loads(json.dumps(data)))
    text = " ".join(info.value.errors)
    assert text.startswith("shop.orders.pending: ")
    for word in words:
        assert word in text, text
    assert AlertRule.objects.count() == 2


def test_importing_rules_needs_the_alert_rule_permissions(pending):
    data = exported()
    data["definitions"][0]["alert_rules"] = [
        {"name": "Few", "operator": "<", "threshold": 1}
    ]
    editor = User.objects.create_user("editor")
    editor.user_permissions.add(
        *Permission.objects.filter(codename__endswith="_metricdefinition"),
        Permission.objects.get(codename="view_order", content_type__app_label="shop"),
    )
    editor = User.objects.get(pk=editor.pk)
    with pytest.raises(serialization.ImportFailed) as info:
        serialization.import_definitions(
            serialization.loads(json.dumps(data)), acting_user=editor
        )
    assert "may not add alert rules (metricdemo.add_alertrule)" in " ".join(
        info.value.errors
    )
