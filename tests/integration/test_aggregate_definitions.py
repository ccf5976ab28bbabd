"""Defining aggregates: validation on save, export and import, the admin, a scrape.

The messages name the bad value and say what is allowed; old export files
import unchanged and the export writes the new fields only when they are set.
"""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.core.exceptions import ValidationError
from django.urls import reverse

from metricdemo import serialization
from metricdemo.models import MetricDefinition
from metricdemo.validators import group_by_keys
from tests.queries import steady_statements
from tests.refusals import form_data
from tests.scraping import scrape, series, value
from tests.shop.models import Customer, Order


def refused(**fields) -> dict[str, list[str]]:
    """Return the field-keyed messages full_clean() gives these fields."""
    definition = MetricDefinition(name="x", source="row_count", **fields)
    with pytest.raises(ValidationError) as info:
        definition.full_clean()
    return info.value.message_dict


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "key", "texts"),
    [
        (
            {"model": "shop.Order", "aggregate": "sum", "field": "status"},
            "field",
            [
                "sum needs a numeric field",
                "shop.Order.status is a CharField",
                "Fields of shop.Order that fit: handling, quantity, total.",
            ],
        ),
        (
            {"model": "shop.Order", "aggregate": "avg", "field": "created"},
            "field",
            ["avg needs a numeric field", "shop.Order.created is a DateTimeField"],
        ),
        (
            {"model": "shop.Order", "aggregate": "max", "field": "express"},
            "field",
            ["a numeric, duration, date or datetime field", "created", "shipped_on"],
        ),
        (
            {"model": "shop.Order", "aggregate": "sum"},
            "field",
            ["sum needs a field to aggregate", "total"],
        ),
        (
            {"model": "shop.Order", "aggregate": "count", "field": "total"},
            "field",
            ["count counts rows and takes no field", "count_distinct"],
        ),
        (
            {"model": "shop.Order", "aggregate": "sum", "field": "nope"},
            "field",
            ["'nope' is not a field of shop.Order"],
        ),
        (
            {"model": "shop.Order", "aggregate": "median", "field": "total"},
            "aggregate",
            ["'median' is not a valid choice"],
        ),
        (
            {"model": "auth.User", "aggregate": "count_distinct", "field": "password"},
            "field",
            ["sensitive"],
        ),
        (
            {"model": "auth.User", "aggregate": "max", "field": "last_login"},
            None,
            [],
        ),
        (
            {"model": "shop.Voucher", "aggregate": "count_distinct", "field": "key"},
            "field",
            ["sensitive"],
        ),
        (
            {"model": "shop.Order", "filters": {"created__gte": "now-1x"}},
            "filters",
            ["'now-1x' is not a relative time", "for example now, now-15m"],
        ),
        (
            {"model": "shop.Order", "group_by": "status, nope"},
            "group_by",
            ["'nope' is not a field path of shop.Order"],
        ),
        (
            {"model": "shop.Order", "group_by": "status, status"},
            "group_by",
            ["'status' appears twice"],
        ),
        (
            {"model": "shop.Order", "group_by": "status, customer"},
            None,
            [],
        ),
        (
            {"model": "shop.Order", "group_by": "status, id"},
            "group_by",
            ["primary key"],
        ),
        (
            {"model": "auth.User", "group_by": "is_staff, email"},
            "group_by",
            ["identifies a person"],
        ),
        (
            {
                "model": "shop.Order",
                "group_by": "status, customer__country",
                "attributes": {"country": "x"},
            },
            "group_by",
            ["'country' is also a constant attribute"],
        ),
        (
            {"model": "shop.Order", "value": 3.0},
            "value",
            ["belongs to the constant source"],
        ),
    ],
)
def test_full_clean__names_the_bad_value_and_what_is_allowed(fields, key, texts):
    if key is None:
        MetricDefinition(name="x", source="row_count", **fields).full_clean()
        return
    messages = refused(**fields)
    assert key in messages, messages
    for text in texts:
        assert text in " ".join(messages[key])


@pytest.mark.django_db
def test_full_clean__a_value_of_an_identity_field_is_refused_its_count_is_not():
    messages = refused(model="auth.User", aggregate="max", field="email")
    assert "field" in messages
    MetricDefinition(
        name="x",
        source="row_count",
        model="auth.User",
        aggregate="count_distinct",
        field="email",
    ).full_clean()


@pytest.mark.django_db
def test_full_clean__another_source_leaves_aggregate_at_count():
    constant = MetricDefinition(name="x", source="constant", value=1)
    constant.full_clean()
    assert constant.aggregate == "count"
    constant.aggregate = "sum"
    with pytest.raises(ValidationError) as info:
        constant.full_clean()
    assert "belongs to the row_count source" in info.value.message_dict["aggregate"][0]


def test_group_by_keys__last_parts_unless_they_collide():
    assert group_by_keys("customer__country") == {
        "customer__country": "customer__country"
    }
    assert group_by_keys("status, customer__country") == {
        "status": "status",
        "customer__country": "country",
    }
    assert group_by_keys("status,customer__status ,  express") == {
        "status": "status",
        "customer__status": "customer_status",
        "express": "express",
    }


# Export and import

OLD_FILE = {
    "definitions": [
        {
            "name": "orders.pending",
            "description": "",
            "unit": "",
            "kind": "gauge",
            "enabled": True,
            "attributes": {},
            "source": "row_count",
            "model": "shop.Order",
            "filters": {"status": "pending"},
            "group_by": "",
        }
    ],
    "version": 1,
}


@pytest.mark.django_db
def test_import__an_old_file_counts_rows_and_exports_as_it_was():
    entries = serialization.loads(json.dumps(OLD_FILE))
    serialization.import_definitions(entries)
    stored = MetricDefinition.objects.get(name="orders.pending")
    assert (stored.aggregate, stored.field) == ("count", "")
    assert json.loads(serialization.dumps([stored])) == OLD_FILE


@pytest.mark.django_db
def test_export__writes_aggregate_and_field_when_not_a_count():
    definition = MetricDefinition(
        name="orders.revenue",
        source="row_count",
        model="shop.Order",
        aggregate="sum",
        field="total",
        filters={"created__gte": "now-24h"},
    )
    definition.full_clean()
    data = serialization.to_data(definition)
    assert data["aggregate"] == "sum"
    assert data["field"] == "total"
    assert data["filters"] == {"created__gte": "now-24h"}
    # And it comes back the same.
    MetricDefinition.objects.all().delete()
    serialization.import_definitions(
        serialization.loads(serialization.dumps([definition]))
    )
    stored = MetricDefinition.objects.get(name="orders.revenue")
    assert serialization.to_data(stored) == data


# Permissions along the aggregated field


@pytest.mark.django_db
def test_permissions__the_field_path_needs_view_on_every_model_it_passes(
    django_user_model,
):
    editor = django_user_model.objects.create_user("ed", password="pw")
    editor.user_permissions.add(
        Permission.objects.get(codename="view_order", content_type__app_label="shop")
    )
    editor = User.objects.get(pk=editor.pk)
    definition = MetricDefinition(
        name="x",
        source="row_count",
        model="shop.Order",
        aggregate="count_distinct",
        field="customer__country",
    )
    refusals = definition.permission_refusals(editor)
    assert set(refusals) == {"field"}
    assert "shop.view_customer" in refusals["field"]
    editor.user_permissions.add(
        Permission.objects.get(codename="view_customer", content_type__app_label="shop")
    )
    assert MetricDefinition.objects.none() is not None
    assert definition.permission_refusals(User.objects.get(pk=editor.pk)) == {}


# The admin


ADD_URL = reverse("admin:metricdemo_metricdefinition_add")
PREVIEW_URL = reverse("admin:metricdemo_metricdefinition_preview")


@pytest.fixture
def orders_with_totals(db):
    customer = Customer.objects.create(name="Anna", country="DE")
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    for status, total in [("pending", "10.50"), ("pending", "4.50"), ("paid", "7")]:
        Order.objects.create(
            status=status, customer=customer, total=Decimal(total), created=now
        )


def test_admin__suggests_the_fields_that_fit_each_aggregate(admin_client):
    form = admin_client.get(ADD_URL).context["adminform"].form
    widget = form.fields["field"].widget
    suggestions = json.loads(widget.attrs["data-field-suggestions"])
    assert suggestions["shop.Order"]["sum"] == ["handling", "quantity", "total"]
    assert "created" in suggestions["shop.Order"]["min"]
    assert "status" in suggestions["shop.Order"]["count_distinct"]
    assert "password" not in suggestions["auth.User"]["count_distinct"]
    assert "email" not in suggestions["auth.User"]["max"]
    assert form.fields["aggregate"].widget.attrs["data-default"] == "count"
    assert "now-1h" in str(form.fields["filters"].help_text)


def test_admin__suggests_no_primary_key_for_a_value(admin_client):
    """A sum or maximum of ids means nothing; counting distinct ids still fits."""
    form = admin_client.get(ADD_URL).context["adminform"].form
    widget = form.fields["field"].widget
    suggestions = json.loads(widget.attrs["data-field-suggestions"])
    for label in ("shop.Order", "auth.User", "metricdemo.MetricDefinition"):
        for aggregate in ("sum", "avg", "min", "max", "histogram"):
            assert "id" not in suggestions[label][aggregate], (label, aggregate)
    assert "id" in suggestions["shop.Order"]["count_distinct"]


@pytest.mark.parametrize("aggregate", ["sum", "avg", "min", "max"])
def test_full_clean__a_primary_key_typed_in_is_still_allowed(db, aggregate):
    MetricDefinition(
        name="x",
        source="row_count",
        model="shop.Order",
        aggregate=aggregate,
        field="id",
    ).full_clean()


@pytest.mark.django_db(transaction=True)
def test_admin__preview_shows_a_sum(admin_client, orders_with_totals):
    response = admin_client.post(
        PREVIEW_URL,
        form_data(
            name="orders.open_value",
            source="row_count",
            model="shop.Order",
            aggregate="sum",
            field="total",
            group_by="status",
        ),
    )
    evaluation = response.context["evaluation"]
    assert evaluation.outcome == "success", evaluation.error
    shown = {item.labels: item.value_text for item in response.context["series"]}
    assert shown == {(("status", "paid"),): "7", (("status", "pending"),): "15"}


def test_admin__an_empty_aggregate_from_a_hidden_field_saves_as_count(admin_client):
    response = admin_client.post(
        ADD_URL, form_data(name="n", source="constant", value="1", aggregate="")
    )
    assert response.status_code == 302
    assert MetricDefinition.objects.get(name="n").aggregate == "count"


# A scrape of a hundred mixed definitions

MIXED = [
    ("count", "", {}, ""),
    ("count", "", {"status": "pending"}, "status, customer__country"),
    ("sum", "total", {"created__gte": "now-1h"}, ""),
    ("avg", "total", {"created__gte": "now/d"}, ""),
    ("min", "created", {"status": "pending"}, ""),
    ("max", "shipped_on", {}, "status"),
    ("count_distinct", "customer", {"created__gte": "now-7d"}, ""),
    ("sum", "quantity", {}, "status, customer__country"),
    ("count", "", {"country": "DE"}, "", "shop.Customer"),
    ("count_distinct", "country", {}, "", "shop.Customer"),
]


@pytest.mark.django_db(transaction=True)
def test_scrape__a_hundred_mixed_definitions_cost_two_statements(
    client, orders_with_totals
):
    """The change check, and one statement for every pass of every table."""
    definitions = []
    for i in range(100):
        aggregate, field, filters, group_by, *model = MIXED[i % len(MIXED)]
        definition = MetricDefinition(
            name=f"mixed.n{i}",
            source="row_count",
            model=model[0] if model else "shop.Order",
            aggregate=aggregate,
            field=field,
            filters=filters,
            group_by=group_by,
        )
        definition.full_clean()
        definitions.append(definition)
    MetricDefinition.objects.bulk_create(definitions)
    statements = steady_statements(lambda: scrape(client))
    assert len(statements) == 2, statements
    assert "metricdemo_changestamp" in statements[0]
    # Shop.Order: no grouping, by status, by status and country; shop.Customer.
    assert statements[1].count("UNION ALL") == 3
    families = scrape(client)
    assert value(families, "mixed_n0") == 3.0
    assert series(families, "mixed_n1") == {
        frozenset({("status", "pending"), ("country", "DE")}): 2.0
    }
    assert value(families, "mixed_n9") == 1.0
    # No shipped_on anywhere: a maximum of nothing is no series.
    assert series(families, "mixed_n5") == {}
