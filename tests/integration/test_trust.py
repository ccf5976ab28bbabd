"""Trust: no stored row or input an attacker or a fault leaves takes the rest down.

Each case was reproduced on a running site: identity fields reached through JSON
keys, corrupt scheduled values, undecodable text written by raw SQL, values
Django cannot compile, negative counters, and Preview answering with another
definition's kept values. A bad row costs only its own definition; a bad input
is a field error, never a 500 or a traceback.
"""

from __future__ import annotations

import io
import json
import logging
import threading

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.urls import reverse
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)

from metricdemo import rowquery
from metricdemo.evaluation import get_evaluator
from metricdemo.models import ChangeStamp, MetricDefinition, ScheduledValue
from metricdemo.scheduler import Refresher
from tests.refusals import form_data
from tests.scraping import evaluations, parse, scrape, value
from tests.undecodable import write_undecodable_description

pytestmark = pytest.mark.django_db(transaction=True)

ADD_URL = reverse("admin:metricdemo_metricdefinition_add")
LIST_URL = reverse("admin:metricdemo_metricdefinition_changelist")
PREVIEW_URL = reverse("admin:metricdemo_metricdefinition_preview")
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@pytest.fixture
def admin_client(client, django_user_model):
    """Return a client logged in as a superuser."""
    client.force_login(
        django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    )
    return client


def refusal_of(**fields) -> dict[str, list[str]]:
    """Return full_clean()'s messages by field for a definition with `fields`."""
    with pytest.raises(ValidationError) as caught:
        MetricDefinition(**fields).full_clean()
    return caught.value.message_dict


def store_unvalidated(**fields) -> MetricDefinition:
    """Save a definition with bulk_create, which runs no validation."""
    (definition,) = MetricDefinition.objects.bulk_create([MetricDefinition(**fields)])
    ChangeStamp.bump()
    return definition


# --- Identity rules follow JSON keys -------------------------------------------

DEFINITIONS = {"source": "row_count", "model": "metricdemo.MetricDefinition"}


@pytest.mark.parametrize(
    "group_by", ["attributes__email", "attributes__client_ip", "attributes__ip"]
)
def test_identity__json_keys_named_like_personal_fields_are_not_grouped(group_by):
    messages = refusal_of(name="defs.by_key", group_by=group_by, **DEFINITIONS)
    assert "identifies a person" in " ".join(messages["group_by"])


@pytest.mark.parametrize(
    "lookup", ["attributes__email__startswith", "attributes__owner_email"]
)
def test_identity__json_keys_named_like_personal_fields_are_no_oracle(lookup):
    messages = refusal_of(name="defs.by_key", filters={lookup: "alice"}, **DEFINITIONS)
    assert "identifies a person" in " ".join(messages["filters"])


def test_identity__json_keys_may_test_for_an_empty_value():
    MetricDefinition(
        name="defs.no_email",
        filters={"attributes__email__isnull": True},
        **DEFINITIONS,
    ).full_clean()


def test_identity__a_stored_json_key_group_by_stops_exporting(client):
    MetricDefinition.objects.create(
        name="shop.total", source="constant", value=1, attributes={"email": "a@b.c"}
    )
    store_unvalidated(name="defs.by_email", group_by="attributes__email", **DEFINITIONS)
    families = scrape(client)
    assert "defs_by_email" not in families
    assert evaluations(families, "defs.by_email") == {"error": 1.0}
    assert value(families, "shop_total", email="a@b.c") == 1.0


# --- Stored data cannot take the rest down -------------------------------------


CORRUPT_VALUES = {
    "not JSON": "garbage",
    "no attributes": "[[1]]",
    "an object": '{"a": 1}',
    "attributes a list": '[[1.0, ["x"]]]',
    "a lone surrogate": '[[1.0, {"a": "\\ud800"}]]',
    "a text value": '[["x", {}]]',
    "an attribute not a scalar": '[[1.0, {"a": [1]}]]',
    "a label the exposition renames": '[[1.0, {"__name__": "x"}]]',
    "nested past the parser's depth": "[" * 100000,
}


@pytest.mark.parametrize("stored", CORRUPT_VALUES.values(), ids=list(CORRUPT_VALUES))
def test_scheduled_value__a_corrupt_row_costs_only_its_definition(
    client, callback, stored, caplog
):
    callback("test.one", lambda: 1)
    for name in ("sched.bad", "sched.good"):
        MetricDefinition.objects.create(
            name=name, source="callback", callback="test.one", refresh_interval=60
        )
    MetricDefinition.objects.create(name="plain.one", source="constant", value=1)
    refresher = Refresher()
    try:
        refresher.tick()
        refresher.wait_idle(30)
    finally:
        refresher.stop()
    bad = MetricDefinition.objects.get(name="sched.bad")
    ScheduledValue.objects.filter(definition_id=bad.pk).update(observations=stored)
    with caplog.at_level(logging.WARNING, logger="metricdemo"):
        for _ in range(2):
            response = client.get("/metrics")
            assert response.status_code == 200
            families = parse(response.content.decode())
            assert value(families, "sched_good") == 1.0
            assert value(families, "plain_one") == 1.0
            assert "sched_bad" not in families
            assert evaluations(families, "sched.bad").get("error", 0) >= 1.0
    logged = [r for r in caplog.records if "sched.bad" in r.getMessage()]
    assert len(logged) == 1, [r.getMessage() for r in logged]


@pytest.fixture
def undecodable(db):
    """Write one description that is not UTF-8; return whether the database kept it."""
    MetricDefinition.objects.create(name="plain.one", source="constant", value=1)
    broken = MetricDefinition.objects.create(
        name="plain.broken", source="constant", value=2
    )
    stored = write_undecodable_description(broken.pk)
    # SQLite keeps the bytes; PostgreSQL and MariaDB refuse them on write.
    assert stored == (connection.vendor == "sqlite")
    ChangeStamp.bump()
    return stored


def test_undecodable_row__costs_only_itself_in_the_scrape(client, undecodable):
    families = scrape(client)
    assert value(families, "plain_one") == 1.0
    assert ("plain_broken" in families) is not undecodable


def test_undecodable_row__costs_only_itself_in_the_admin(admin_client, undecodable):
    response = admin_client.get(LIST_URL)
    assert response.status_code == 200
    assert "plain.one" in response.content.decode()
    assert "plain.broken" in response.content.decode()


def test_undecodable_row__costs_only_itself_in_the_commands(undecodable):
    out = io.StringIO()
    call_command("metrics", "list", stdout=out, stderr=io.StringIO())
    assert "plain.one" in out.getvalue() and "plain.broken" in out.getvalue()


def test_lone_surrogate_in_a_stored_filter_key__the_change_list_answers(
    admin_client, orders
):
    try:
        with transaction.atomic():
            store_unvalidated(
                name="shop.odd",
                source="row_count",
                model="shop.Order",
                filters={"\ud800": 1},
            )
    except DatabaseError:
        # PostgreSQL's jsonb and MariaDB's JSON check refuse the escape.
        assert connection.vendor != "sqlite"
        return
    response = admin_client.get(LIST_URL)
    assert response.status_code == 200
    assert "shop.odd" in response.content.decode()
    change = reverse(
        "admin:metricdemo_metricdefinition_change",
        args=[MetricDefinition.objects.get(name="shop.odd").pk],
    )
    assert admin_client.get(change).status_code == 200


def test_lone_surrogate_in_an_error_message__every_page_answers(admin_client, callback):
    """A callback's own message quotes what it read: it reaches the log and pages."""

    def broken():
        raise ValueError("no row for \ud800\x00")

    callback("test.broken", broken)
    MetricDefinition.objects.create(
        name="cb.broken", source="callback", callback="test.broken"
    )
    MetricDefinition.objects.create(name="plain.one", source="constant", value=1)
    families = scrape(admin_client)
    assert value(families, "plain_one") == 1.0
    assert evaluations(families, "cb.broken") == {"error": 1.0}
    response = admin_client.get(LIST_URL)
    assert response.status_code == 200
    assert "no row for \\ud800\\x00" in response.content.decode()
    out = io.StringIO()
    with pytest.raises(Exception) as caught:
        call_command("metrics", "check", stdout=out, stderr=io.StringIO())
    assert type(caught.value).__name__ == "CommandError"
    assert "\\ud800" in out.getvalue()


# --- Every bad input is a field error ------------------------------------------

BAD_VALUES = {
    "empty in": ({"pk__in": []}, "shop.Order"),
    "id past 64 bits": ({"id": 9223372036854775808}, "shop.Order"),
    "id far past 64 bits": ({"id__gt": 10**30}, "shop.Order"),
    "range of one": ({"created__range": ["now-1h"]}, "shop.Order"),
    "window before year 1": ({"created__gte": "now-999999999d"}, "shop.Order"),
    "contains on SQLite's JSON": (
        {"attributes__contains": {"a": 1}},
        "metricdemo.MetricDefinition",
    ),
}


@pytest.mark.parametrize("filters,model", BAD_VALUES.values(), ids=list(BAD_VALUES))
def test_bad_filter_value__is_a_field_error_everywhere(
    admin_client, orders, filters, model, tmp_path
):
    fields = {"name": "shop.bad", "source": "row_count", "model": model}
    if "attributes__contains" in filters and connection.vendor != "sqlite":
        # PostgreSQL and MariaDB run contains on JSON: no error to give there.
        MetricDefinition(filters=filters, **fields).full_clean()
        return
    messages = refusal_of(filters=filters, **fields)
    assert list(messages) == ["filters"]
    data = form_data(filters=json.dumps(filters), **fields)
    for url in (ADD_URL, PREVIEW_URL):
        response = admin_client.post(url, data)
        assert response.status_code == 200, url
        assert response.context["adminform" if url == ADD_URL else "form"].errors
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"definitions": [{**fields, "filters": filters}]}))
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(Exception) as caught:
        call_command(
            "metrics", "import", str(path), "--dry-run", stdout=out, stderr=err
        )
    assert type(caught.value).__name__ == "CommandError"
    assert "shop.bad" in str(caught.value) + out.getvalue() + err.getvalue()
    assert not MetricDefinition.objects.filter(name="shop.bad").exists()


def test_bad_filter_value__today_points_to_now_d(orders):
    messages = refusal_of(
        name="shop.today",
        source="row_count",
        model="shop.Order",
        filters={"created__gte": "today"},
    )
    assert "now/d" in " ".join(messages["filters"])


# --- Counters never go negative in the exposition ------------------------------


def test_counter__a_negative_constant_is_refused():
    messages = refusal_of(
        name="shop.refunds", kind="counter", source="constant", value=-5
    )
    assert "-5" in " ".join(messages["value"])


@pytest.mark.parametrize("accept", ["", OPENMETRICS])
def test_counter__a_negative_value_leaves_only_its_definition_out(
    client, orders, accept
):
    from tests.shop.models import Order

    Order.objects.filter(status="paid").update(total=-5)
    MetricDefinition.objects.create(
        name="shop.revenue",
        kind="counter",
        source="row_count",
        model="shop.Order",
        aggregate="sum",
        field="total",
    )
    MetricDefinition.objects.create(
        name="shop.orders", kind="counter", source="row_count", model="shop.Order"
    )
    headers = {"HTTP_ACCEPT": accept} if accept else {}
    response = client.get("/metrics", **headers)
    assert response.status_code == 200
    text = response.content.decode()
    if accept:
        families = {f.name: f for f in openmetrics_families(text)}
        assert "shop_orders" in families and "shop_revenue" not in families
    else:
        families = parse(text)
        assert value(families, "shop_orders_total") == 6.0
        assert "shop_revenue_total" not in families
        assert evaluations(families, "shop.revenue") == {"error": 1.0}


# --- Preview evaluates what was posted, and nothing stored ---------------------


def test_preview__never_answers_with_another_definitions_kept_values(
    admin_client, orders, monkeypatch
):
    """A batch overran: its members are kept and looked at alone meanwhile.

    The database is slow only for the stored definitions (a gate stands for a
    table lock); the posted form, with the secret's URL and name, counts orders.
    """
    secret = MetricDefinition.objects.create(
        name="users.by_superuser",
        source="row_count",
        model="auth.User",
        group_by="is_superuser",
    )
    other = MetricDefinition.objects.create(
        name="shop.orders", source="row_count", model="shop.Order"
    )
    evaluator = get_evaluator()
    first = evaluator.evaluate_many([secret, other], timeout=5)
    assert first[0].observations == [(1.0, {"is_superuser": "true"})]
    real = rowquery.compute_rows
    released = threading.Event()

    def compute_rows(definitions):
        if any(d.pk is not None for d in definitions):
            released.wait(10)
        return real(definitions)

    monkeypatch.setattr(rowquery, "compute_rows", compute_rows)
    try:
        overran = evaluator.evaluate_many([secret, other], timeout=0.2)
        assert [r.outcome for r in overran] == ["kept", "kept"]
        url = reverse("admin:metricdemo_metricdefinition_preview", args=[secret.pk])
        data = form_data(
            name="users.by_superuser", source="row_count", model="shop.Order"
        )
        response = admin_client.post(url, data)
        assert response.status_code == 200
        result = response.context["evaluation"]
        assert (result.outcome, result.observations) == ("success", [(6.0, {})])
    finally:
        released.set()


def test_counter__a_stored_negative_constant_leaves_only_itself_out(client):
    store_unvalidated(name="shop.refunds", kind="counter", source="constant", value=-5)
    MetricDefinition.objects.create(
        name="shop.sales", kind="counter", source="constant", value=5
    )
    response = client.get("/metrics", HTTP_ACCEPT=OPENMETRICS)
    families = {f.name: f for f in openmetrics_families(response.content.decode())}
    assert "shop_sales" in families and "shop_refunds" not in families
    assert evaluations(scrape(client), "shop.refunds").get("error", 0) >= 1.0
