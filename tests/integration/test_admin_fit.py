"""The admin on a laptop: short labels in the list, the exported name as typed."""

from __future__ import annotations

import itertools

import pytest
from django.urls import reverse

from metricdemo import naming
from metricdemo.models import Kind
from tests.admin_pages import cells, filter_choices

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:metricdemo_metricdefinition_add")
LIST_URL = reverse("admin:metricdemo_metricdefinition_changelist")
EXPORTED_NAME_URL = reverse("admin:metricdemo_metricdefinition_exported_name")


def test_change_list__short_labels_in_the_list_and_the_filter(admin_client, define):
    define(name="a.sales", kind="counter", source="constant", value=1)
    define(name="b.queue", kind="updowncounter", source="setting", setting="DEBUG")
    define(name="c.rows", source="row_count", model="shop.Order")
    page = admin_client.get(LIST_URL).content.decode()
    shown = cells(page)
    assert shown["kind_label"] == ["Counter", "Up-down counter", "Gauge"]
    assert shown["source_label"] == ["Constant", "Setting", "Rows"]
    assert filter_choices(page, "kind") == [
        "Counter",
        "Up-down counter",
        "Gauge",
        "Histogram",
    ]
    assert filter_choices(page, "source") == [
        "Constant",
        "Rows",
        "Setting",
        "Callback",
    ]
    # The filter still filters with Django's own parameters.
    response = admin_client.get(LIST_URL, {"kind__exact": "updowncounter"})
    assert [d.name for d in response.context["cl"].result_list] == ["b.queue"]


def test_change_list__no_navigation_sidebar(admin_client):
    """The table takes the sidebar's width; the other pages keep the sidebar."""
    listed = admin_client.get(LIST_URL)
    assert listed.context["is_nav_sidebar_enabled"] is False
    assert 'id="nav-sidebar"' not in listed.content.decode()
    assert 'id="nav-sidebar"' in admin_client.get(ADD_URL).content.decode()


def test_add_form__long_labels_and_no_history(admin_client, define):
    form = admin_client.get(ADD_URL).context["adminform"].form
    assert dict(form.fields["kind"].choices)["gauge"] == "Gauge (a value measured now)"
    add = admin_client.get(ADD_URL).context["adminform"]
    assert "History" not in [str(fieldset.name) for fieldset in add]

    definition = define(name="a.sales", source="constant", value=1)
    change_url = reverse(
        "admin:metricdemo_metricdefinition_change", args=[definition.pk]
    )
    change = admin_client.get(change_url).context["adminform"]
    assert "History" in [str(fieldset.name) for fieldset in change]


NAMES = [
    "shop.orders",
    "Shop.Orders.Pending",
    "a",
    "http.server.request.duration",
    "jobs/queue-depth",
    "orders_total",
    "x" * 255,
]
UNITS = ["", "s", "ms", "By", "By/s", "1", "%", "{order}", "total", "m/s", "kBy"]


@pytest.mark.parametrize("kind", Kind.values)
def test_exported_name_view__the_validators_rules(admin_client, kind):
    """The live name is exported_names()'s, for many names and units."""
    for name, unit in itertools.product(NAMES, UNITS):
        response = admin_client.get(
            EXPORTED_NAME_URL, {"name": name, "kind": kind, "unit": unit}
        )
        assert response.status_code == 200
        assert response.json() == {
            "exported_name": naming.exported_names(name, kind, unit)[1],
            "errors": [],
        }, (name, kind, unit)


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"name": "9lives", "kind": "gauge", "unit": ""}, "'9lives' is not a valid"),
        ({"name": "", "kind": "gauge", "unit": ""}, "'' is not a valid"),
        ({"name": "a.b", "kind": "gauge", "unit": "µs"}, "printable ASCII"),
        ({"name": "a.b", "kind": "summary", "unit": ""}, "'summary'"),
    ],
)
def test_exported_name_view__says_what_is_refused(admin_client, query, fragment):
    answer = admin_client.get(EXPORTED_NAME_URL, query).json()
    assert answer["exported_name"] == ""
    assert any(fragment in error for error in answer["errors"]), answer


def test_exported_name_view__needs_a_user_who_may_edit(client, django_user_model):
    query = {"name": "a.b", "kind": "gauge", "unit": ""}
    assert client.get(EXPORTED_NAME_URL, query).status_code == 302  # to the login
    user = django_user_model.objects.create_user("viewer", is_staff=True)
    client.force_login(user)
    assert client.get(EXPORTED_NAME_URL, query).status_code == 403


def test_forms_tell_the_script_where_to_ask(admin_client):
    page = admin_client.get(ADD_URL).content.decode()
    assert f'data-url="{EXPORTED_NAME_URL}"' in page
    assert "metricdemo/admin.css" in page
