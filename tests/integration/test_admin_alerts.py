"""The admin of alert rules: the inline, the rules' own list, permissions, Preview.

And, with METRICDEMO["PROMETHEUS_URL"], the alerts Prometheus has pending or
firing now: from a stub that answers as Prometheus does, from a closed port,
and from a real Prometheus that loaded the generated rules.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command
from django.urls import reverse

from metricdemo import prometheus_api
from metricdemo.models import AlertRule, MetricDefinition
from tests.admin_pages import ADD_URL, LIST_URL, PREVIEW_URL, cells, change_url
from tests.integration.test_alerts_end_to_end import PROMETHEUS, prometheus
from tests.integration.test_browser import CHROMIUM, PASSWORD, add_form
from tests.integration.test_prometheus import NOT_INSTALLED, demo_server
from tests.processes import free_port, wait_until
from tests.refusals import form_data

RULES_URL = reverse("admin:metricdemo_alertrule_changelist")
RULE_ADD_URL = reverse("admin:metricdemo_alertrule_add")
PREFIX = "alert_rules"


def rule_change_url(rule: AlertRule) -> str:
    return reverse("admin:metricdemo_alertrule_change", args=[rule.pk])


def preview_url(definition: MetricDefinition) -> str:
    return reverse("admin:metricdemo_metricdefinition_preview", args=[definition.pk])


def rule_fields(**fields) -> dict[str, str]:
    """Return one rule's form fields, as the page posts them, with these values."""
    data = {
        "name": "OrdersWaiting",
        "operator": ">",
        "threshold": "",
        "label_filter": "{}",
        "aggregation": "",
        "by_labels": "",
        "quantile": "",
        "for_duration": "300",
        "keep_firing_for": "0",
        "severity": "warning",
        "summary": "",
        "description": "",
        "runbook_url": "",
        "enabled": "on",
    }
    for key, value in fields.items():
        if key == "label_filter" and not isinstance(value, str):
            data[key] = json.dumps(value)
        elif key == "enabled":
            data[key] = "on" if value else ""
        else:
            data[key] = "" if value is None else str(value)
    if not data["enabled"]:
        del data["enabled"]  # an unticked box posts nothing
    return data


def with_rules(data: dict, *rules: dict, saved: list[AlertRule] = ()) -> dict:
    """Return `data` with the inline's forms: the `saved` rules first, then new ones.

    Each of `rules` gives a form's fields (rule_fields()); a saved rule's form
    also posts its id and, with DELETE="on", asks for its deletion.
    """
    data = {**data, f"{PREFIX}-TOTAL_FORMS": str(len(rules))}
    data[f"{PREFIX}-INITIAL_FORMS"] = str(len(saved))
    for index, fields in enumerate(rules):
        for key, value in fields.items():
            data[f"{PREFIX}-{index}-{key}"] = value
        if index < len(saved):
            data[f"{PREFIX}-{index}-id"] = str(saved[index].pk)
            data[f"{PREFIX}-{index}-definition"] = str(saved[index].definition_id)
    return data


def definition_data(definition: MetricDefinition, **changes) -> dict[str, str]:
    """Return the definition's change form as stored, with `changes`."""
    fields = {
        "name": definition.name,
        "kind": definition.kind,
        "source": definition.source,
        "value": definition.value,
        "model": definition.model,
        "group_by": definition.group_by,
        "filters": definition.filters,
        "attributes": definition.attributes,
        "enabled": definition.enabled,
    }
    return form_data(**{**fields, **changes})


#: Where the inline's template for a new rule starts (the page's last form).
EMPTY_FORM = f'id="{PREFIX}-empty"'
#: The labels of the read-only fields a rule shows.
LABELS = {"promql": "PromQL: ", "prometheus_state": "In Prometheus now: "}


def rule_cells(page: str, field: str) -> list[str]:
    """Return what a read-only field shows for each rule of the page, unlabelled.

    The inline's template for a new rule is left out.
    """
    shown = cells(page.split(EMPTY_FORM)[0]).get(field, [])
    return [text.removeprefix(LABELS[field]) for text in shown]


def without_rules_form(data: dict) -> dict:
    """Return `data` without the inline's management form, as a script might post."""
    return {k: v for k, v in data.items() if not k.startswith(f"{PREFIX}-")}


def rule_errors(response) -> list[dict]:
    """Return the errors of each form of the rules' inline on a page shown again."""
    assert response.status_code == 200, response
    (formset,) = response.context["inline_admin_formsets"]
    return [form.errors for form in formset.formset.forms]


def saved_rule(definition: MetricDefinition, **fields) -> AlertRule:
    rule = AlertRule(definition=definition, **{"name": "OrdersWaiting", **fields})
    rule.full_clean()
    rule.save()
    return rule


@pytest.fixture
def pending(define):
    """A row count of the pending orders by country, as the issue's example."""
    return define(
        name="shop.orders.pending",
        source="row_count",
        model="shop.Order",
        filters={"status": "pending"},
        group_by="customer__country",
    )


RULE_PERMISSIONS = (
    "metricdemo.add_alertrule",
    "metricdemo.change_alertrule",
    "metricdemo.delete_alertrule",
    "metricdemo.view_alertrule",
)
#: An editor of definitions who may count orders by their customers' country.
DEFINITION_EDITOR = (
    "metricdemo.add_metricdefinition",
    "metricdemo.change_metricdefinition",
    "metricdemo.view_metricdefinition",
    "shop.view_order",
    "shop.view_customer",
)


# --- The inline -------------------------------------------------------------------


@pytest.mark.django_db
def test_rules_are_added_with_a_new_definition(admin_client):
    data = with_rules(
        form_data(
            name="shop.orders.pending",
            source="row_count",
            model="shop.Order",
            filters={"status": "pending"},
            group_by="customer__country",
        ),
        rule_fields(
            threshold="50", label_filter={"customer_country": "DE"}, severity="critical"
        ),
        rule_fields(
            name="NoCountryWaits",
            operator="<",
            threshold="1",
            aggregation="sum",
            by_labels="customer_country",
            for_duration="0",
        ),
    )
    response = admin_client.post(ADD_URL, data)
    assert response.status_code == 302, rule_errors(response)
    definition = MetricDefinition.objects.get(name="shop.orders.pending")
    rules = {rule.name: rule for rule in definition.alert_rules.all()}
    assert rules["OrdersWaiting"].label_filter == {"customer_country": "DE"}
    assert rules["OrdersWaiting"].severity == "critical"
    assert rules["NoCountryWaits"].by_labels == "customer_country"

    # The change page shows each rule's PromQL as the rule file writes it.
    page = admin_client.get(change_url(definition)).content.decode()
    assert rule_cells(page, "promql") == [  # by name
        "sum by (customer_country) (shop_orders_pending) < 1",
        'shop_orders_pending{customer_country="DE"} > 50',
    ]


@pytest.mark.django_db
def test_a_new_definitions_rules_are_checked_against_its_labels(admin_client):
    """On the add page the definition is not saved yet; its rules still see it."""
    data = with_rules(
        form_data(
            name="shop.orders.pending",
            source="row_count",
            model="shop.Order",
            group_by="customer__country",
        ),
        rule_fields(threshold="5", label_filter={"country": "DE"}),
    )
    (errors,) = rule_errors(admin_client.post(ADD_URL, data))
    assert "exports no label 'country'" in errors["label_filter"][0]
    assert "customer_country" in errors["label_filter"][0]
    assert not MetricDefinition.objects.exists()
    assert not AlertRule.objects.exists()


@pytest.mark.django_db
def test_a_new_histogram_takes_a_rule_on_its_quantile(admin_client):
    data = with_rules(
        form_data(
            name="shop.order.value",
            kind="histogram",
            source="row_count",
            model="shop.Order",
            field="total",
            buckets="[10, 50, 100]",
        ),
        rule_fields(name="DearOrders", threshold="40", quantile="0.9"),
    )
    response = admin_client.post(ADD_URL, data)
    assert response.status_code == 302, rule_errors(response)
    rule = AlertRule.objects.get(name="DearOrders")
    assert rule.definition.name == "shop.order.value"
    page = admin_client.get(change_url(rule.definition)).content.decode()
    assert rule_cells(page, "promql") == [
        "histogram_quantile(0.9, shop_order_value_bucket) > 40"
    ]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"name": "9lives", "threshold": "1"}, "name", ["not an alert name"]),
        ({"threshold": "lots"}, "threshold", ["'lots' is not a number", "such as 10"]),
        ({"threshold": "nan"}, "threshold", ["not a finite number"]),
        ({"threshold": ""}, "threshold", ["compared with", "absent"]),
        (
            {"threshold": "1", "label_filter": '{"customer_country": DE}'},
            "label_filter",
            ["not valid JSON", '{"country": "DE"}'],
        ),
        ({"threshold": "1", "label_filter": '["DE"]'}, "label_filter", ["JSON object"]),
        (
            {"threshold": "1", "label_filter": {"status": "pending"}},
            "label_filter",
            ["exports no label 'status'", "customer_country"],
        ),
        (
            {"threshold": "1", "by_labels": "customer_country"},
            "by_labels",
            ["need an aggregation"],
        ),
        (
            {"threshold": "1", "aggregation": "sum", "by_labels": "region"},
            "by_labels",
            ["exports no label 'region'"],
        ),
        ({"threshold": "1", "quantile": "0.9"}, "quantile", ["histograms", "clear"]),
        ({"threshold": "1", "summary": "{{ $value "}, "summary", ["without its"]),
        (
            {"threshold": "1", "description": "{{ if $value }}high"},
            "description",
            ["{{ end }}"],
        ),
        ({"threshold": "1", "severity": "very high"}, "severity", ["one word"]),
        ({"threshold": "1", "for_duration": "-5"}, "for_duration", ["0"]),
    ],
)
def test_bad_rules_get_an_error_on_their_inline_field(
    admin_client, pending, fields, field, words
):
    data = with_rules(definition_data(pending), rule_fields(**fields))
    (errors,) = rule_errors(admin_client.post(change_url(pending), data))
    assert list(errors) == [field], errors
    message = " ".join(errors[field])
    for word in words:
        assert word in message, message
    assert not AlertRule.objects.exists()


@pytest.mark.django_db
def test_an_error_in_a_folded_field_unfolds_its_section(admin_client, pending):
    data = with_rules(
        definition_data(pending),
        rule_fields(threshold="1", by_labels="customer_country"),
    )
    page = admin_client.post(change_url(pending), data).content.decode()
    section = page.split("Aggregation and quantile")[0].rsplit("<fieldset", 1)[1]
    assert "<details>" not in section  # shown open, with its error
    assert "need an aggregation" in page


@pytest.mark.django_db
def test_rules_are_checked_against_the_definition_as_posted(admin_client, pending):
    """Changing the group-by and a rule's filter together is one consistent change."""
    rule = saved_rule(pending, threshold=5, label_filter={"customer_country": "DE"})
    data = with_rules(
        definition_data(pending, group_by="status", filters={}),
        rule_fields(threshold="5", label_filter={"status": "pending"}),
        saved=[rule],
    )
    response = admin_client.post(change_url(pending), data)
    assert response.status_code == 302, rule_errors(response)
    rule.refresh_from_db()
    assert rule.label_filter == {"status": "pending"}
    # And a rule left on the old label is refused against the new group-by.
    data = with_rules(
        definition_data(pending, group_by="customer__country", filters={}),
        rule_fields(threshold="5", label_filter={"status": "pending"}),
        saved=[rule],
    )
    (errors,) = rule_errors(admin_client.post(change_url(pending), data))
    assert "exports no label 'status'" in errors["label_filter"][0]


@pytest.mark.django_db
def test_two_rules_of_one_name_are_refused(admin_client, pending):
    data = with_rules(
        definition_data(pending),
        rule_fields(threshold="5"),
        rule_fields(threshold="9"),
    )
    response = admin_client.post(change_url(pending), data)
    (formset,) = response.context["inline_admin_formsets"]
    assert "Rename one of them" in " ".join(formset.formset.non_form_errors())
    assert not AlertRule.objects.exists()


@pytest.mark.django_db
def test_rules_are_changed_and_deleted_on_the_definitions_page(admin_client, pending):
    kept = saved_rule(pending, threshold=5)
    gone = saved_rule(pending, name="Gone", threshold=1)
    data = with_rules(
        definition_data(pending),
        rule_fields(threshold="7", enabled=False),
        {**rule_fields(name="Gone", threshold="1"), "DELETE": "on"},
        saved=[kept, gone],
    )
    response = admin_client.post(change_url(pending), data)
    assert response.status_code == 302, rule_errors(response)
    kept.refresh_from_db()
    assert (kept.threshold, kept.enabled) == (7, False)
    assert not AlertRule.objects.filter(pk=gone.pk).exists()
    page = admin_client.get(change_url(pending)).content.decode()
    assert rule_cells(page, "promql") == [
        "shop_orders_pending > 7 (not written: the rule is disabled)"
    ]


@pytest.mark.django_db
def test_a_definition_without_rules_saves_as_before(admin_client, pending):
    """The inline adds nothing to post but its (empty) management form."""
    response = admin_client.post(change_url(pending), definition_data(pending))
    assert response.status_code == 302
    page = admin_client.get(change_url(pending)).content.decode()
    assert 'id="alert_rules-group"' in page
    assert "Alerts in Prometheus" not in page


# --- The rules' own list ------------------------------------------------------------


@pytest.mark.django_db
def test_the_rules_list_columns_filters_and_search(admin_client, pending, define):
    gauge = define(name="jobs.queued", source="constant", value=3)
    saved_rule(pending, threshold=50, label_filter={"customer_country": "DE"})
    saved_rule(
        pending,
        name="FewOrders",
        operator="<",
        threshold=1,
        aggregation="sum",
        by_labels="customer_country",
        severity="info",
    )
    saved_rule(gauge, name="NoJobs", operator="absent", enabled=False)
    page = admin_client.get(RULES_URL).content.decode()
    shown = cells(page)
    # By definition, then by name.
    assert shown["name"] == ["NoJobs", "FewOrders", "OrdersWaiting"]
    assert shown["definition"] == [
        "jobs.queued",
        "shop.orders.pending",
        "shop.orders.pending",
    ]
    assert shown["condition"] == [
        "absent",
        "sum by (customer_country) < 1",
        '{customer_country="DE"} > 50',
    ]
    assert shown["severity"] == ["warning", "info", "warning"]
    assert shown["promql"] == [
        "absent(jobs_queued) (not written: the rule is disabled)",
        "sum by (customer_country) (shop_orders_pending) < 1",
        'shop_orders_pending{customer_country="DE"} > 50',
    ]
    for query, names in (
        ("?severity=info", ["FewOrders"]),
        ("?enabled__exact=0", ["NoJobs"]),
        ("?operator__exact=absent", ["NoJobs"]),
        ("?q=jobs", ["NoJobs"]),
        ("?q=Orders", ["FewOrders", "OrdersWaiting"]),
    ):
        found = cells(admin_client.get(RULES_URL + query).content.decode())
        assert found.get("name", []) == names, query


@pytest.mark.django_db
def test_the_rules_own_form_validates_as_the_inline(admin_client, pending):
    data = {"definition": str(pending.pk), **rule_fields(threshold="5")}
    bad = {**data, "label_filter": '{"country": "DE"}'}
    errors = admin_client.post(RULE_ADD_URL, bad).context["adminform"].form.errors
    assert "exports no label 'country'" in errors["label_filter"][0]
    assert admin_client.post(RULE_ADD_URL, data).status_code == 302
    rule = AlertRule.objects.get()
    page = admin_client.get(rule_change_url(rule)).content.decode()
    assert rule_cells(page, "promql") == ["shop_orders_pending > 5"]
    # A second rule of that name on that definition is refused, saying why.
    errors = admin_client.post(RULE_ADD_URL, data).context["adminform"].form.errors
    assert "give this rule another name" in errors["__all__"][0]


# --- Permissions --------------------------------------------------------------------


@pytest.mark.django_db
def test_an_editor_with_rule_permissions_adds_rules(staff, pending):
    client = staff(*DEFINITION_EDITOR, *RULE_PERMISSIONS)
    data = with_rules(definition_data(pending), rule_fields(threshold="5"))
    assert client.post(change_url(pending), data).status_code == 302
    assert AlertRule.objects.filter(definition=pending).count() == 1
    standalone = {"definition": str(pending.pk), **rule_fields(name="Other")}
    standalone["threshold"] = "1"
    assert client.post(RULE_ADD_URL, standalone).status_code == 302
    assert client.get(RULES_URL).status_code == 200


@pytest.mark.django_db
def test_who_may_only_view_definitions_sees_rules_read_only(staff, pending):
    rule = saved_rule(pending, threshold=5)
    client = staff("metricdemo.view_metricdefinition", *RULE_PERMISSIONS)
    page = client.get(change_url(pending)).content.decode()
    assert "OrdersWaiting" in page
    assert f'name="{PREFIX}-0-threshold"' not in page  # no input: read-only
    assert rule_cells(page, "promql") == ["shop_orders_pending > 5"]
    # The rules' own pages: listed and shown, but neither added nor changed.
    assert client.get(RULES_URL).status_code == 200
    assert client.get(RULE_ADD_URL).status_code == 403
    page = client.get(rule_change_url(rule)).content.decode()
    assert 'name="threshold"' not in page
    changed = {"definition": str(pending.pk), **rule_fields(threshold="99")}
    assert client.post(rule_change_url(rule), changed).status_code == 403
    delete = reverse("admin:metricdemo_alertrule_delete", args=[rule.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    rule.refresh_from_db()
    assert rule.threshold == 5


@pytest.mark.django_db
def test_who_may_only_view_rules_cannot_change_them_inline(staff, pending):
    rule = saved_rule(pending, threshold=5)
    client = staff(*DEFINITION_EDITOR, "metricdemo.view_alertrule")
    page = client.get(change_url(pending)).content.decode()
    assert rule_cells(page, "promql") == ["shop_orders_pending > 5"]
    assert f'name="{PREFIX}-0-threshold"' not in page
    # What the page posts (no rule fields) saves the definition, not the rules;
    # rule fields added to the post are ignored.
    data = with_rules(
        definition_data(pending, value=None),
        rule_fields(threshold="99"),
        rule_fields(name="Sneaked", threshold="1"),
        saved=[rule],
    )
    assert client.post(change_url(pending), data).status_code == 302
    rule.refresh_from_db()
    assert rule.threshold == 5
    assert list(AlertRule.objects.values_list("name", flat=True)) == ["OrdersWaiting"]
    assert client.get(RULE_ADD_URL).status_code == 403


@pytest.mark.django_db
def test_rule_permissions_without_the_definitions_change_permission_edit_nothing(
    staff, pending
):
    """Adding a rule to a definition takes the right to change that definition."""
    client = staff("metricdemo.view_metricdefinition", *RULE_PERMISSIONS)
    data = {"definition": str(pending.pk), **rule_fields(threshold="5")}
    assert client.post(RULE_ADD_URL, data).status_code == 403
    assert not AlertRule.objects.exists()


@pytest.mark.django_db
def test_without_rule_permissions_the_page_has_no_rules(staff, pending):
    saved_rule(pending, threshold=5)
    client = staff(*DEFINITION_EDITOR)
    page = client.get(change_url(pending)).content.decode()
    assert "OrdersWaiting" not in page
    assert 'id="alert_rules-group"' not in page
    # The definition saves without the inline's management form.
    assert client.post(change_url(pending), definition_data(pending)).status_code == 302
    assert client.get(RULES_URL).status_code == 403
    assert AlertRule.objects.count() == 1


@pytest.mark.django_db
def test_rules_need_a_definition_permission_to_be_seen(staff, pending):
    saved_rule(pending, threshold=5)
    client = staff(*RULE_PERMISSIONS)
    assert client.get(RULES_URL).status_code == 403


@pytest.mark.django_db
def test_no_rules_on_a_definition_whose_data_the_user_may_not_publish(
    staff, define, callback
):
    callback("test.queue", lambda: [(3.0, {"queue": "mail"})])
    queue = define(name="jobs.queued", source="callback", callback="test.queue")
    client = staff(*DEFINITION_EDITOR, *RULE_PERMISSIONS)  # not use_callbacks
    data = {"definition": str(queue.pk), **rule_fields(threshold="5")}
    errors = client.post(RULE_ADD_URL, data).context["adminform"].form.errors
    assert "You may not add rules to jobs.queued" in errors["definition"][0]
    assert "use_callbacks" in errors["definition"][0]
    assert not AlertRule.objects.exists()


# --- Preview --------------------------------------------------------------------------


def preview_cells(response) -> dict[str, list[str]]:
    assert response.status_code == 200
    return cells(response.content.decode(), prefix="metricdemo-")


# The preview counts rows on a connection of its own: the rows must be committed.
@pytest.mark.django_db(transaction=True)
def test_preview_judges_the_posted_rules_against_the_previewed_value(
    admin_client, pending, orders
):
    data = with_rules(
        definition_data(pending),
        rule_fields(threshold="1", for_duration="0"),
        rule_fields(
            name="ManyInFrance", threshold="5", label_filter={"customer_country": "FR"}
        ),
        rule_fields(
            name="FewOverall",
            operator="<",
            threshold="10",
            aggregation="sum",
            for_duration="600",
        ),
        rule_fields(name="Nothing", operator="absent", for_duration="0"),
        rule_fields(
            name="NoneInSpain",
            operator="absent",
            label_filter={"customer_country": "ES"},
            for_duration="0",
        ),
        rule_fields(name="Broken", threshold="1", by_labels="customer_country"),
    )
    shown = preview_cells(admin_client.post(preview_url(pending), data))
    assert shown["rule-name"] == [
        "OrdersWaiting",
        "ManyInFrance",
        "FewOverall",
        "Nothing",
        "NoneInSpain",
        "Broken",
    ]
    assert shown["rule-promql"][:4] == [
        "shop_orders_pending > 1",
        'shop_orders_pending{customer_country="FR"} > 5',
        "sum(shop_orders_pending) < 10",
        "absent(shop_orders_pending)",
    ]
    verdicts = shown["rule-verdict"]
    assert verdicts[0] == 'would fire now for: {customer_country="DE"} = 2'
    assert verdicts[1] == "would not fire now"
    assert verdicts[2] == (
        "would fire now for: {} = 3 (Prometheus fires once the condition has held "
        "for 10m.)"
    )
    assert verdicts[3] == "would not fire now"
    assert verdicts[4] == "would fire now: it exports no series that the rule reads"
    assert verdicts[5].startswith(
        "not judged: By labels: By labels need an aggregation"
    )
    # The definition's own preview is still there, and nothing was saved.
    assert len(shown["series"]) == 2
    assert not AlertRule.objects.exists()


@pytest.mark.django_db
def test_preview_of_a_new_definition_judges_its_rules(admin_client):
    data = with_rules(
        form_data(name="jobs.queued", value="7"),
        rule_fields(name="QueueLong", threshold="5"),
    )
    shown = preview_cells(admin_client.post(PREVIEW_URL, data))
    assert shown["rule-promql"] == ["jobs_queued > 5"]
    assert shown["rule-verdict"] == [
        "would fire now for: {} = 7 (Prometheus fires once the condition has held "
        "for 5m.)"
    ]


# The preview counts rows on a connection of its own: the rows must be committed.
@pytest.mark.django_db(transaction=True)
def test_preview_without_posted_rules_judges_the_saved_ones(
    admin_client, pending, orders
):
    saved_rule(pending, threshold=0, aggregation="count")
    data = without_rules_form(definition_data(pending))
    shown = preview_cells(admin_client.post(preview_url(pending), data))
    assert shown["rule-promql"] == ["count(shop_orders_pending) > 0"]
    assert shown["rule-verdict"][0].startswith("would fire now for: {} = 2")


# The preview counts rows on a connection of its own: the rows must be committed.
@pytest.mark.django_db(transaction=True)
def test_preview_of_a_definition_without_rules_is_unchanged(
    admin_client, pending, orders
):
    response = admin_client.post(preview_url(pending), definition_data(pending))
    page = response.content.decode()
    assert "metricdemo-rule" not in page
    assert len(cells(page, prefix="metricdemo-")["series"]) == 2


@pytest.mark.django_db
def test_preview_of_a_failing_definition_judges_no_rule(admin_client, define, callback):
    def down():
        raise RuntimeError("queue is down")

    callback("test.down", down)
    broken = define(name="jobs.queued", source="callback", callback="test.down")
    saved_rule(broken, threshold=1)
    data = without_rules_form(
        definition_data(broken, source="callback", callback="test.down")
    )
    shown = preview_cells(admin_client.post(preview_url(broken), data))
    assert shown["rule-verdict"] == ["not judged: the definition has no value"]


# --- Prometheus's alerts --------------------------------------------------------------


class StubPrometheus:
    """An HTTP server on 127.0.0.1 that answers /api/v1/alerts as Prometheus does.

    Or with `body` and `status`, as it should not.
    """

    def __init__(
        self, alerts: list[dict], *, body: bytes | None = None, status: int = 200
    ) -> None:
        self.alerts = alerts
        self.requests: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                stub.requests.append(self.path)
                answer = {"status": "success", "data": {"alerts": stub.alerts}}
                text = json.dumps(answer).encode() if body is None else body
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def log_message(self, format: str, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> StubPrometheus:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._server.server_close()


def stub_alert(name: str, definition: str, state: str, value: str, **labels) -> dict:
    return {
        "labels": {
            "alertname": name,
            "severity": "critical",
            "metricdemo_definition": definition,
            **labels,
        },
        "annotations": {},
        "state": state,
        "activeAt": "2026-03-01T12:00:00Z",
        "value": value,
    }


@contextmanager
def prometheus_url(settings, url: str):
    settings.METRICDEMO = {**settings.METRICDEMO, "PROMETHEUS_URL": url}
    yield


@pytest.mark.django_db
def test_alerts_from_prometheus_show_on_the_list_and_the_definitions_page(
    admin_client, pending, define, settings
):
    rule = saved_rule(pending, threshold=1)
    saved_rule(pending, name="Quiet", threshold=100)
    other = define(name="jobs.queued", source="constant", value=3)
    saved_rule(other, name="QueueLong", threshold=1)
    found = [
        stub_alert(
            "OrdersWaiting",
            "shop.orders.pending",
            "firing",
            "2e+00",
            customer_country="DE",
        ),
        stub_alert(
            "OrdersWaiting",
            "shop.orders.pending",
            "pending",
            "1.5e+00",
            customer_country="FR",
        ),
        stub_alert("QueueLong", "jobs.queued", "pending", "3e+00"),
        # Not a generated rule's alert: left out.
        {**stub_alert("Other", "x", "firing", "1"), "labels": {"alertname": "Other"}},
    ]
    with StubPrometheus(found) as stub, prometheus_url(settings, stub.url + "/"):
        listed = admin_client.get(LIST_URL).content.decode()
        # One request for the page's alerts (the sparklines' history aside).
        assert alert_requests(stub) == ["/api/v1/alerts"]
        # A marker under each value: how many alerts are firing or pending.
        assert cells(listed)["name"] == ["jobs.queued", "shop.orders.pending"]
        assert cells(listed, prefix="metricdemo-")["alerts"] == [
            "1 pending",
            "1 firing, 1 pending",
        ]
        assert (
            f'<a class="metricdemo-alerts metricdemo-firing" href="{stub.url}/alerts"'
            in listed
        )
        page = admin_client.get(change_url(pending)).content.decode()
        assert len(alert_requests(stub)) == 2
    assert rule_cells(page, "prometheus_state") == [
        'firing for {customer_country="DE"} = 2 pending for {customer_country="FR"} '
        "= 1.5 see in Prometheus",
        "neither pending nor firing",
    ]
    box = cells(page, prefix="metricdemo-")
    assert box["alert-name"] == ["OrdersWaiting", "OrdersWaiting"]
    assert box["alert-state"] == ["firing", "pending"]
    assert box["alert-series"] == ['{customer_country="DE"}', '{customer_country="FR"}']
    assert box["alert-value"] == ["2", "1.5"]
    assert f'href="{stub.url}/alerts"' in page
    assert rule.name in page


def alert_requests(stub) -> list[str]:
    """Return the requests the stub took for alerts, not for the values' history."""
    return [path for path in stub.requests if not path.startswith("/api/v1/query")]


@pytest.mark.django_db
def test_without_prometheus_url_nothing_is_asked(admin_client, pending, monkeypatch):
    saved_rule(pending, threshold=1)

    def refuse(*args, **kwargs):
        raise AssertionError("Prometheus was asked without PROMETHEUS_URL")

    monkeypatch.setattr(prometheus_api, "_fetch", refuse)
    listed = admin_client.get(LIST_URL).content.decode()
    assert "metricdemo-alerts" not in listed
    page = admin_client.get(change_url(pending)).content.decode()
    assert "prometheus_state" not in cells(page)
    assert "Alerts in Prometheus" not in page


@pytest.mark.django_db
def test_a_prometheus_that_does_not_answer_is_a_note(
    admin_client, pending, settings, caplog
):
    saved_rule(pending, threshold=1)
    closed = f"http://127.0.0.1:{free_port()}"
    caplog.set_level(logging.WARNING, logger="metricdemo")
    prometheus_api._failing.clear()
    with prometheus_url(settings, closed):
        started = time.monotonic()
        page = admin_client.get(change_url(pending)).content.decode()
        listed = admin_client.get(LIST_URL).content.decode()
        took = time.monotonic() - started
    assert took < 5
    assert (
        "Prometheus did not answer" in cells(page, prefix="metricdemo-")["no-answer"][0]
    )
    assert rule_cells(page, "prometheus_state") == ["Prometheus did not answer"]
    assert "Prometheus did not answer" in listed
    assert "metricdemo-alerts" not in listed
    assert cells(listed)["current_value"] == ["no series"]
    warnings = [r for r in caplog.records if "did not answer" in r.getMessage()]
    assert len(warnings) == 1, "logged once, not on every page"
    assert closed in warnings[0].getMessage()


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        (b"<html>a proxy's page</html>", 200, "the answer is not JSON"),
        (b'{"status": "error", "error": "x"}', 200, "not a successful API response"),
        (b'{"status": "success", "data": {}}', 200, "no list of alerts"),
        (b"unavailable", 503, "HTTP 503"),
    ],
)
def test_an_answer_that_is_not_alerts_is_a_note(body, status, reason, settings):
    with StubPrometheus([], body=body, status=status) as stub:
        answer = prometheus_api.current_alerts(stub.url)
    assert not answer.ok
    assert reason in answer.error
    assert answer.page_url == f"{stub.url}/alerts"


def test_only_http_urls_are_asked(settings):
    settings.METRICDEMO = {**settings.METRICDEMO, "PROMETHEUS_URL": "file:///etc/"}
    answer = prometheus_api.current_alerts()
    assert "must start with http" in answer.error


@pytest.mark.django_db
def test_alerts_of_data_the_user_may_not_see_are_hidden(
    staff, define, callback, settings
):
    callback("test.queue", lambda: [(3.0, {"queue": "mail"})])
    queue = define(name="jobs.queued", source="callback", callback="test.queue")
    saved_rule(queue, name="QueueLong", threshold=1)
    client = staff(*DEFINITION_EDITOR, *RULE_PERMISSIONS)  # not use_callbacks
    found = [stub_alert("QueueLong", "jobs.queued", "firing", "3", queue="mail")]
    with StubPrometheus(found) as stub, prometheus_url(settings, stub.url):
        page = client.get(change_url(queue)).content.decode()
        listed = client.get(LIST_URL).content.decode()
    assert 'queue="mail"' not in page
    assert "metricdemo-alert-firing" not in page
    (state,) = rule_cells(page, "prometheus_state")
    assert state.startswith("hidden:") and "use_callbacks" in state
    assert "metricdemo-alerts" not in listed
    assert cells(listed)["current_value"][0].startswith("hidden:")


@pytest.mark.django_db
def test_alerts_are_hidden_from_who_may_not_view_rules(staff, pending, settings):
    saved_rule(pending, threshold=1)
    client = staff(*DEFINITION_EDITOR)
    found = [stub_alert("OrdersWaiting", "shop.orders.pending", "firing", "2")]
    with StubPrometheus(found) as stub, prometheus_url(settings, stub.url):
        listed = client.get(LIST_URL).content.decode()
        page = client.get(change_url(pending)).content.decode()
        assert alert_requests(stub) == []
    assert "metricdemo-alerts" not in listed
    assert "Alerts in Prometheus" not in page


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.backend_neutral
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(PROMETHEUS is None, reason=NOT_INSTALLED.format("prometheus"))
def test_a_real_prometheus_shows_the_alert_firing_in_the_admin(
    tmp_path, admin_client, define, orders, settings
):
    """Prometheus loads the generated rules, fires, and the admin shows it."""
    waiting = define(
        name="shop.orders.waiting",
        source="row_count",
        model="shop.Order",
        group_by="status",
    )
    saved_rule(
        waiting,
        threshold=2,
        label_filter={"status": "pending"},
        for_duration=0,
        severity="critical",
    )
    saved_rule(
        waiting, name="ManyShipped", threshold=5, label_filter={"status": "shipped"}
    )
    rules = tmp_path / "rules.yml"
    call_command("metrics", "rules", "-o", str(rules), "--check")
    address = f"127.0.0.1:{free_port()}"
    nobody = f"127.0.0.1:{free_port()}"  # no Alertmanager: the admin asks Prometheus
    url = f"http://{address}"
    with (
        demo_server(tmp_path) as target,
        prometheus(tmp_path, target, rules, nobody, address=address),
    ):

        def firing() -> list | None:
            answer = prometheus_api.current_alerts(url)
            found = answer.of_rule("shop.orders.waiting", "OrdersWaiting")
            return [alert for alert in found if alert.state == "firing"] or None

        wait_until(firing, timeout=60, what="Prometheus to fire OrdersWaiting")
        with prometheus_url(settings, url):
            listed = admin_client.get(LIST_URL).content.decode()
            listed = cells(listed, prefix="metricdemo-")
            page = admin_client.get(change_url(waiting)).content.decode()
    assert listed["alerts"] == ["1 firing"]
    (quiet, firing) = rule_cells(page, "prometheus_state")
    assert quiet == "neither pending nor firing"  # ManyShipped, by name first
    assert firing.startswith("firing for {")
    assert 'status="pending"' in firing
    assert firing.endswith("= 3 see in Prometheus")
    box = cells(page, prefix="metricdemo-")
    assert box["alert-name"] == ["OrdersWaiting"]
    assert box["alert-state"] == ["firing"]
    assert box["alert-value"] == ["3"]
    assert f'href="{url}/alerts"' in page


# --- In a browser -----------------------------------------------------------------


@pytest.mark.backend_neutral
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK),
    reason=f"needs Debian's chromium at {CHROMIUM} (make test installs it)",
)
def test_the_lists_fit_a_laptop_window_with_rules_and_alerts(
    live_server, django_user_model, define, settings
):
    django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    call_command("load_demo_metrics", verbosity=0)
    long = define(
        name="shop." + "orders_waiting_for_payment." * 4 + "x",
        source="row_count",
        model="shop.Order",
        group_by="customer__country",
    )
    for index in range(3):
        saved_rule(
            long,
            name=f"OrdersWaitingForPaymentInOneCountry{index}" * 2,
            threshold=10**index,
            label_filter={"customer_country": "DE" * 20},
            aggregation="sum",
            by_labels="customer_country",
            severity="critical",
        )
    found = [
        stub_alert(rule.name, long.name, state, "3", customer_country="DE")
        for rule, state in zip(
            AlertRule.objects.filter(definition=long),
            ("firing", "pending", "firing"),
            strict=True,
        )
    ]
    with StubPrometheus(found) as stub, prometheus_url(settings, stub.url):
        for path in (LIST_URL, RULES_URL):
            with add_form(live_server.url, "admin", path) as page:
                page.wait_for_selector("#result_list")
                widths = page.evaluate(
                    """() => {
                        const root = document.documentElement;
                        const results = document.querySelector('#changelist .results');
                        return {
                            page: root.scrollWidth,
                            window: root.clientWidth,
                            table: results.scrollWidth,
                            container: results.clientWidth,
                            alerts: [...document.querySelectorAll(
                                '#result_list .metricdemo-alerts')].map(
                                (marker) => marker.textContent.trim()),
                        };
                    }"""
                )
            assert widths["page"] <= widths["window"], (path, widths)
            assert widths["table"] <= widths["container"], (path, widths)
            if path == LIST_URL:
                assert widths["alerts"] == ["2 firing, 1 pending"]


@pytest.mark.backend_neutral
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK),
    reason=f"needs Debian's chromium at {CHROMIUM} (make test installs it)",
)
def test_a_rule_added_in_the_browser_is_previewed_then_saved(
    live_server, django_user_model, pending, orders
):
    django_user_model.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    path = change_url(pending)
    with add_form(live_server.url, "admin", path) as page:
        page.click(f"#{PREFIX}-group .add-row a")
        page.fill(f"#id_{PREFIX}-0-name", "OrdersWaiting")
        page.fill(f"#id_{PREFIX}-0-threshold", "1")
        page.fill(f"#id_{PREFIX}-0-for_duration", "0")
        page.click("input[name=_preview]")  # in place, by the script
        page.wait_for_selector("#metricdemo-preview-result .metricdemo-rule")
        verdict = page.inner_text(".metricdemo-rule-verdict")
        page.click("input[name=_save]")
        page.wait_for_selector("#result_list")
    assert verdict == 'would fire now for: {customer_country="DE"} = 2'
    rule = AlertRule.objects.get()
    assert (rule.definition_id, rule.threshold, rule.for_duration) == (pending.pk, 1, 0)
