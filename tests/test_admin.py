"""The admin: list, filters, search, and editing end to end."""

import pytest
from django.urls import reverse

from metricdemo.models import MetricDefinition
from tests.scraping import scrape, value

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:metricdemo_metricdefinition_add")
LIST_URL = reverse("admin:metricdemo_metricdefinition_changelist")


def form_data(**fields) -> dict:
    """Return a complete add/change form submission with these fields."""
    data = {
        "name": "",
        "description": "",
        "unit": "",
        "kind": "gauge",
        "enabled": "on",
        "attributes": "{}",
        "source": "constant",
        "value": "",
        "model": "",
        "filters": "{}",
        "group_by": "",
        "setting": "",
        "callback": "",
    }
    data.update(fields)
    return data


def test_add_through_the_admin_then_scrape(admin_client, client):
    response = admin_client.post(
        ADD_URL,
        form_data(
            name="shop.orders.open",
            description="Open orders",
            unit="{order}",
            kind="updowncounter",
            attributes='{"region": "eu"}',
            value="12",
        ),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    stored = MetricDefinition.objects.get(name="shop.orders.open")
    assert stored.attributes == {"region": "eu"}
    families = scrape(client)
    assert families["shop_orders_open"].documentation == "Open orders"
    assert value(families, "shop_orders_open", region="eu") == 12.0


def test_change_through_the_admin_shows_on_next_scrape(admin_client, client, define):
    definition = define(name="shop.orders.open", source="constant", value=1)
    assert value(scrape(client), "shop_orders_open") == 1.0
    url = reverse("admin:metricdemo_metricdefinition_change", args=[definition.pk])
    response = admin_client.post(url, form_data(name="shop.orders.open", value="99"))
    assert response.status_code == 302
    assert value(scrape(client), "shop_orders_open") == 99.0


def test_delete_through_the_admin_removes_the_series(admin_client, client, define):
    definition = define(name="shop.gone", source="constant", value=1)
    assert "shop_gone" in scrape(client)
    url = reverse("admin:metricdemo_metricdefinition_delete", args=[definition.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert "shop_gone" not in scrape(client)


def test_bad_input_is_refused_on_its_field_and_nothing_is_saved(admin_client):
    response = admin_client.post(
        ADD_URL,
        form_data(
            name="9 lives",
            unit="séc",
            attributes='{"ok": [1]}',
            value="",
            model="shop.Order",
        ),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "'9 lives'" in errors["name"][0]
    assert "séc" in errors["unit"][0]
    assert "[1]" in errors["attributes"][0]
    assert MetricDefinition.objects.count() == 0


def test_source_errors_land_on_the_source_fields(admin_client):
    response = admin_client.post(
        ADD_URL,
        form_data(
            name="x",
            source="row_count",
            model="shop.Order",
            filters='{"colour": "red"}',
        ),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "colour" in errors["filters"][0]
    assert MetricDefinition.objects.count() == 0


def test_callback_choices_are_the_registered_callbacks(admin_client, callback):
    callback("test.admin_choice", lambda: 1, description="for the admin")
    response = admin_client.get(ADD_URL)
    choices = dict(response.context["adminform"].form.fields["callback"].choices)
    assert choices["test.admin_choice"] == "test.admin_choice (for the admin)"
    assert "process.cpu_time" in choices

    response = admin_client.post(
        ADD_URL, form_data(name="x", source="callback", callback="not.registered")
    )
    errors = response.context["adminform"].form.errors
    assert "not.registered" in errors["callback"][0]


def test_stored_unregistered_callback_stays_visible(admin_client, callback):
    callback("test.temporary", lambda: 1)
    definition = MetricDefinition(
        name="x", source="callback", callback="test.temporary"
    )
    definition.full_clean()
    definition.save()
    from metricdemo import unregister_callback

    unregister_callback("test.temporary")
    url = reverse("admin:metricdemo_metricdefinition_change", args=[definition.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    choices = dict(response.context["adminform"].form.fields["callback"].choices)
    assert "not registered" in str(choices["test.temporary"])


def test_change_list_columns_filters_and_search(admin_client, define):
    define(name="shop.orders", kind="counter", source="constant", value=1)
    define(name="shop.wait", unit="s", source="constant", value=1, enabled=False)
    response = admin_client.get(LIST_URL)
    assert response.status_code == 200
    page = response.content.decode()
    assert "shop_orders_total" in page and "shop_wait_seconds" in page

    response = admin_client.get(LIST_URL, {"enabled__exact": "0"})
    assert [d.name for d in response.context["cl"].result_list] == ["shop.wait"]
    response = admin_client.get(LIST_URL, {"kind__exact": "counter"})
    assert [d.name for d in response.context["cl"].result_list] == ["shop.orders"]
    response = admin_client.get(LIST_URL, {"q": "wait"})
    assert [d.name for d in response.context["cl"].result_list] == ["shop.wait"]
