"""The admin: guided editing, refusals, preview, values, actions and permissions."""

import json

import pytest
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import override_settings
from django.urls import reverse
from django.utils.html import strip_tags

from metricdemo import admin as metricdemo_admin
from metricdemo import policy
from metricdemo.display import Series
from metricdemo.models import ChangeStamp, MetricDefinition
from tests.admin_pages import ADD_URL, LIST_URL, PREVIEW_URL, act, cells, change_url
from tests.processes import run_django
from tests.refusals import EXISTING, form_data, refusal_cases
from tests.scraping import parse, scrape, value

pytestmark = pytest.mark.django_db


def preview_url(definition: MetricDefinition) -> str:
    """Return the preview URL of a stored definition's change form."""
    return reverse("admin:metricdemo_metricdefinition_preview", args=[definition.pk])


def errors_of(response) -> dict:
    """Return the form errors of a re-rendered add/change page."""
    assert response.status_code == 200, response
    return response.context["adminform"].form.errors


@pytest.fixture
def staff(client, django_user_model):
    """Log in a staff user holding the given metricdemo permissions."""

    def login(*codenames: str):
        user = django_user_model.objects.create_user(
            "operator", password="pw", is_staff=True
        )
        user.user_permissions.set(
            Permission.objects.filter(
                content_type__app_label="metricdemo", codename__in=codenames
            )
        )
        client.force_login(user)
        return client

    return login


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


def test_timeout_and_cache_seconds_are_edited_in_the_admin(admin_client):
    response = admin_client.post(
        ADD_URL,
        form_data(name="slow.one", value="1", timeout="2.5", cache_seconds="30"),
    )
    assert response.status_code == 302
    stored = MetricDefinition.objects.get(name="slow.one")
    assert (stored.timeout, stored.cache_seconds) == (2.5, 30)
    response = admin_client.post(
        ADD_URL, form_data(name="slow.two", value="1", timeout="0")
    )
    assert "0.0" in response.context["adminform"].form.errors["timeout"][0]


def test_change_through_the_admin_shows_on_next_scrape(admin_client, client, define):
    definition = define(name="shop.orders.open", source="constant", value=1)
    assert value(scrape(client), "shop_orders_open") == 1.0
    response = admin_client.post(
        change_url(definition), form_data(name="shop.orders.open", value="99")
    )
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
    choices = dict(response.context["adminform"].form.fields["callback"].widget.choices)
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
    response = admin_client.get(change_url(definition))
    assert response.status_code == 200
    choices = dict(response.context["adminform"].form.fields["callback"].widget.choices)
    assert "not registered" in str(choices["test.temporary"])


def test_change_list_columns_filters_and_search(admin_client, define):
    define(name="shop.orders", kind="counter", source="constant", value=1)
    define(name="shop.wait", unit="s", source="constant", value=1, enabled=False)
    response = admin_client.get(LIST_URL)
    assert response.status_code == 200
    shown = cells(response.content.decode())
    assert shown["name"] == ["shop.orders", "shop.wait"]
    assert shown["exported_name"] == ["shop_orders_total", "shop_wait_seconds"]
    assert shown["unit"] == ["-", "s"]

    response = admin_client.get(LIST_URL, {"enabled__exact": "0"})
    assert [d.name for d in response.context["cl"].result_list] == ["shop.wait"]
    response = admin_client.get(LIST_URL, {"kind__exact": "counter"})
    assert [d.name for d in response.context["cl"].result_list] == ["shop.orders"]
    response = admin_client.get(LIST_URL, {"q": "wait"})
    assert [d.name for d in response.context["cl"].result_list] == ["shop.wait"]


# Guided editing


def test_the_form_tells_the_script_which_fields_each_source_uses(admin_client):
    response = admin_client.get(ADD_URL)
    form = response.context["adminform"].form
    mapping = json.loads(form.fields["source"].widget.attrs["data-source-fields"])
    assert mapping == {
        "constant": ["value"],
        "row_count": ["model", "aggregate", "field", "filters", "group_by", "buckets"],
        "setting": ["setting"],
        "callback": ["callback"],
    }
    assert "metricdemo/definition_form.js" in str(response.context["media"])


def test_every_field_has_help_text_with_an_example(admin_client):
    form = admin_client.get(ADD_URL).context["adminform"].form
    for name, field in form.fields.items():
        assert "Example" in str(field.help_text), name


def test_model_and_setting_inputs_suggest_only_allowed_values(admin_client):
    page = admin_client.get(ADD_URL).content.decode()
    assert '<option value="auth.User">' in page
    assert '<option value="shop.Order">' in page
    assert '<option value="SESSION_COOKIE_AGE">' in page
    assert "sessions.Session" not in page and "admin.LogEntry" not in page
    assert '"SECRET_KEY"' not in page


INTERNAL_MODELS = (
    "metricdemo.ChangeStamp",
    "metricdemo.ScheduledValue",
    "metricdemo.AlertRule",
)


def test_model_suggestions_leave_out_the_apps_own_bookkeeping(admin_client):
    """The change stamp, stored values and alert rules are no business metric."""
    form = admin_client.get(ADD_URL).context["adminform"].form
    models = list(form.fields["model"].widget.suggestions())
    fields = json.loads(form.fields["field"].widget.attrs["data-field-suggestions"])
    # The demo counts the definitions themselves.
    assert "metricdemo.MetricDefinition" in models
    assert "metricdemo.MetricDefinition" in fields
    for label in INTERNAL_MODELS:
        assert label not in models and label not in fields, label


@pytest.mark.parametrize("label", INTERNAL_MODELS)
def test_an_internal_table_typed_in_is_still_counted(label):
    """Left out of the suggestions only: a typed label is saved as before."""
    MetricDefinition(name="x", source="row_count", model=label).full_clean()


def test_an_empty_json_box_means_an_empty_object(admin_client):
    response = admin_client.post(
        ADD_URL, form_data(name="x", value="1", attributes="", filters="")
    )
    assert response.status_code == 302
    stored = MetricDefinition.objects.get(name="x")
    assert stored.attributes == {} and stored.filters == {}


# Refusals: the shared table, then what only a form can get wrong


@refusal_cases
def test_every_refusal__through_the_admin_form(admin_client, define, refusal):
    define(**EXISTING)
    response = admin_client.post(ADD_URL, form_data(**refusal.definition))
    messages = errors_of(response).get(refusal.field, [])
    assert any(refusal.fragment in m for m in messages), errors_of(response)
    assert MetricDefinition.objects.count() == 1


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"attributes": "{region: eu}"}, "attributes", "{region: eu}"),
        ({"filters": "[status"}, "filters", "[status"),
        ({"value": "lots"}, "value", "'lots'"),
        ({"kind": "summary"}, "kind", "summary"),
        ({"source": "sql"}, "source", "sql"),
    ],
)
def test_text_the_form_cannot_parse_is_named(admin_client, fields, field, fragment):
    response = admin_client.post(ADD_URL, form_data(name="x", **fields))
    assert fragment in errors_of(response)[field][0]
    assert not MetricDefinition.objects.exists()


# Preview


def test_the_change_form_offers_preview_to_editors(admin_client, define):
    definition = define(name="x", source="constant", value=1)
    page = admin_client.get(change_url(definition)).content.decode()
    assert f'formaction="{preview_url(definition)}"' in page
    page = admin_client.get(ADD_URL).content.decode()
    assert f'formaction="{PREVIEW_URL}"' in page


def test_preview_shows_the_series_and_saves_nothing(admin_client):
    token = ChangeStamp.current()
    response = admin_client.post(
        PREVIEW_URL,
        form_data(
            name="shop.orders.open",
            unit="{order}",
            kind="counter",
            attributes={"region": "eu", "tier": 2},
            value=12,
        ),
    )
    assert response.status_code == 200
    assert response.context["evaluation"].ok
    assert response.context["series"] == [
        Series("shop_orders_open_total", (("region", "eu"), ("tier", "2")), 12.0)
    ]
    assert not MetricDefinition.objects.exists()
    assert ChangeStamp.current() == token


@pytest.mark.django_db(transaction=True)
def test_preview_of_a_grouped_row_count(admin_client, orders):
    response = admin_client.post(
        PREVIEW_URL,
        form_data(
            name="shop.orders.by_status",
            source="row_count",
            model="shop.Order",
            filters={"created__year": 2026},
            group_by="status",
        ),
        HTTP_X_REQUESTED_WITH="XMLHttpRequest",
    )
    assert [(s.labels, s.value) for s in response.context["series"]] == [
        ((("status", "paid"),), 2.0),
        ((("status", "pending"),), 2.0),
        ((("status", "shipped"),), 1.0),
    ]
    page = response.content.decode()
    assert "shop_orders_by_status{status=&quot;pending&quot;}" in page
    assert "<html" not in page  # the fragment the script puts in place


def test_preview_of_a_stored_definition_uses_the_form_not_the_database(
    admin_client, define
):
    definition = define(name="shop.orders", source="constant", value=1)
    response = admin_client.post(
        preview_url(definition), form_data(name="shop.orders", value=99)
    )
    assert [s.value for s in response.context["series"]] == [99.0]
    definition.refresh_from_db()
    assert definition.value == 1.0
    assert "<html" in response.content.decode()  # a whole page without the script


def test_preview_shows_the_error_it_would_hit(admin_client, callback):
    def down():
        raise RuntimeError("backend down")

    callback("test.down", down)
    response = admin_client.post(
        PREVIEW_URL, form_data(name="x", source="callback", callback="test.down")
    )
    evaluation = response.context["evaluation"]
    assert evaluation.outcome == "error"
    assert "RuntimeError: backend down" in response.content.decode()


def test_preview_of_an_invalid_form_evaluates_nothing(admin_client):
    response = admin_client.post(
        PREVIEW_URL,
        form_data(
            name="leak",
            source="row_count",
            model="auth.User",
            filters={"password__startswith": "md5$"},
        ),
    )
    assert response.context["evaluation"] is None
    assert "password__startswith" in response.context["form"].errors["filters"][0]
    assert "password__startswith" in response.content.decode()


def preview_rows_of_orders(client, filters: dict) -> tuple:
    """Preview a count of shop orders with `filters`; return the estimate and text."""
    response = client.post(
        PREVIEW_URL,
        form_data(
            name="shop.orders", source="row_count", model="shop.Order", filters=filters
        ),
        HTTP_X_REQUESTED_WITH="XMLHttpRequest",
    )
    assert response.context["evaluation"].ok
    return response.context["estimate"], cells(response.content.decode(), "metricdemo-")


def test_preview_shows_the_rows_the_database_expects_to_read(admin_client):
    """And whether an index serves the filters: a foreign key's does."""
    estimate, shown = preview_rows_of_orders(admin_client, {"customer": 1})
    assert shown["index"] == ["(index: customer)"]
    if connection.vendor == "sqlite":
        assert shown["cost"] == [
            "The database gives no estimate of the rows it reads (index: customer). "
            "SQLite estimates no row counts before ANALYZE has run."
        ]
    else:
        rows = f"{estimate.rows:,} row{'' if estimate.rows == 1 else 's'}"
        assert shown["cost"] == [
            f"The database expects to read about {rows} (index: customer)."
        ]
    assert "schedule-hint" not in shown  # fast, and a small table


def test_preview_says_when_no_index_serves_the_filters(admin_client):
    _estimate, shown = preview_rows_of_orders(admin_client, {"status": "paid"})
    assert shown["index"] == ["(no index serves the filters: it reads the whole table)"]


def test_preview_suggests_a_refresh_interval_for_a_slow_definition(admin_client):
    """A SLOW_EVALUATION of a microsecond makes the evaluation slow.

    The real evaluation's time against the real threshold: no callback that
    sleeps (seconds of test time) and no mocked estimate (that would test the
    large-read branch only, which tests/unit/test_cost.py covers).
    """
    with override_settings(METRICDEMO={**settings.METRICDEMO, "SLOW_EVALUATION": 1e-6}):
        _estimate, shown = preview_rows_of_orders(admin_client, {"status": "paid"})
    assert shown["schedule-hint"] == [
        "Its evaluation took longer than METRICDEMO['SLOW_EVALUATION'] (1e-06 s). "
        "Set its refresh interval (for example 300 s) to compute it in the "
        "background, where no scrape waits for it."
    ]


def test_preview_only_answers_post(admin_client):
    assert admin_client.get(PREVIEW_URL).status_code == 405


# Values in the change list


@pytest.mark.django_db(transaction=True)
def test_change_list_shows_current_values_and_errors(admin_client, define, orders):
    define(name="a.constant", source="constant", value=12)
    define(name="b.orders", source="row_count", model="shop.Order")
    define(
        name="c.by_status", source="row_count", model="shop.Order", group_by="status"
    )
    with_setting = define(name="d.gone", source="setting", setting="SESSION_COOKIE_AGE")
    MetricDefinition.objects.filter(pk=with_setting.pk).update(setting="NOT_THERE")
    response = admin_client.get(LIST_URL)
    assert response.status_code == 200
    admin = response.context["cl"].model_admin
    shown = {d.name: admin.current_value(d) for d in response.context["cl"].result_list}
    assert strip_tags(shown["a.constant"]) == "12"
    assert strip_tags(shown["b.orders"]) == "6"
    # The count of series, then the largest three, each with its value.
    assert strip_tags(shown["c.by_status"]) == (
        "3 series status=pending 3 status=paid 2 status=shipped 1"
    )
    assert "NOT_THERE" in shown["d.gone"] and shown["d.gone"].count("error") == 2
    assert "NOT_THERE" in response.content.decode()


def test_change_list_shows_without_values_when_evaluation_breaks(
    admin_client, define, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("evaluation machinery broke")

    monkeypatch.setattr(metricdemo_admin, "evaluate_many", broken)
    define(name="a.constant", source="constant", value=12)
    response = admin_client.get(LIST_URL)
    assert response.status_code == 200
    (definition,) = response.context["cl"].result_list
    assert response.context["cl"].model_admin.current_value(definition) == "-"


# Actions


def test_disable_and_enable_take_effect_on_the_next_scrape(
    admin_client, client, define
):
    one = define(name="shop.one", source="constant", value=1)
    two = define(name="shop.two", source="constant", value=2)
    token = ChangeStamp.current()
    assert act(admin_client, "disable_definitions", one, two) == [
        "2 definitions were disabled; they are gone from the next scrape."
    ]
    assert ChangeStamp.current() != token
    families = scrape(client)
    assert "shop_one" not in families and "shop_two" not in families
    assert LogEntry.objects.filter(object_id=str(one.pk)).count() == 1

    assert act(admin_client, "enable_definitions", one) == [
        "1 definition was enabled; it exports from the next scrape."
    ]
    families = scrape(client)
    assert value(families, "shop_one") == 1.0 and "shop_two" not in families
    # Enabling what is enabled changes nothing and bumps nothing.
    token = ChangeStamp.current()
    shown = act(admin_client, "enable_definitions", one)
    assert shown[0].startswith("0 definitions were enabled")
    assert ChangeStamp.current() == token


@pytest.mark.django_db(transaction=True)
def test_an_action_reaches_another_process(admin_client, define):
    define(name="shop.elsewhere", source="constant", value=5)
    scrape_code = (
        "from django.test import Client\n"
        "print(Client().get('/metrics').content.decode())\n"
    )
    assert value(parse(run_django(scrape_code).stdout), "shop_elsewhere") == 5.0
    act(admin_client, "disable_definitions", MetricDefinition.objects.get())
    assert "shop_elsewhere" not in parse(run_django(scrape_code).stdout)


def test_duplicate_makes_disabled_copies_with_free_names(admin_client, client, define):
    original = define(
        name="shop.orders",
        description="Orders",
        source="row_count",
        model="shop.Order",
        filters={"status": "paid"},
        attributes={"region": "eu"},
    )
    # Its first copy's exported name (shop_orders_copy) is taken already.
    define(name="shop.orders_copy", source="constant", value=1)
    assert act(admin_client, "duplicate_definitions", original) == [
        "1 copy was made, disabled: shop.orders.copy2. Edit and enable it to export it."
    ]
    copy = MetricDefinition.objects.get(name="shop.orders.copy2")
    assert not copy.enabled
    assert (copy.model, copy.filters, copy.attributes, copy.description) == (
        "shop.Order",
        {"status": "paid"},
        {"region": "eu"},
        "Orders",
    )
    act(admin_client, "duplicate_definitions", copy)
    assert MetricDefinition.objects.filter(name="shop.orders.copy3").exists()
    families = scrape(client)
    assert "shop_orders_copy2" not in families and "shop_orders_copy3" not in families
    assert LogEntry.objects.filter(object_id=str(copy.pk)).exists()


def test_duplicate_reports_what_it_cannot_copy(admin_client, define, callback):
    callback("test.soon_gone", lambda: 1)
    gone = define(name="x.gone", source="callback", callback="test.soon_gone")
    fine = define(name="x.fine", source="constant", value=1)
    from metricdemo import unregister_callback

    unregister_callback("test.soon_gone")
    shown = act(admin_client, "duplicate_definitions", gone, fine)
    assert "x.gone was not duplicated" in shown[0] and "test.soon_gone" in shown[0]
    assert "x.fine.copy" in shown[1]
    assert not MetricDefinition.objects.filter(name="x.gone.copy").exists()


# Permissions


def test_staff_without_permissions_can_neither_see_nor_change(staff, define):
    definition = define(name="x", source="constant", value=1)
    client = staff()
    assert client.get(LIST_URL).status_code == 403
    assert client.get(ADD_URL).status_code == 403
    assert client.get(change_url(definition)).status_code == 403
    assert client.post(ADD_URL, form_data(name="y", value=1)).status_code == 403
    assert client.post(PREVIEW_URL, form_data(name="y", value=1)).status_code == 403
    assert client.post(preview_url(definition), form_data(name="x")).status_code == 403
    response = client.post(
        LIST_URL, {"action": "disable_definitions", "_selected_action": [definition.pk]}
    )
    assert response.status_code == 403
    assert "metricdemo" not in client.get(reverse("admin:index")).content.decode()
    assert list(MetricDefinition.objects.values_list("name", "enabled")) == [
        ("x", True)
    ]


def test_view_only_staff_sees_values_but_cannot_preview_or_act(staff, define):
    definition = define(name="x", source="constant", value=7)
    client = staff("view_metricdefinition")
    response = client.get(LIST_URL)
    assert response.status_code == 200
    admin = response.context["cl"].model_admin
    assert strip_tags(admin.current_value(response.context["cl"].result_list[0])) == "7"
    assert response.context["action_form"] is None  # no action is offered
    assert "_preview" not in client.get(change_url(definition)).content.decode()
    assert client.post(preview_url(definition), form_data(name="x")).status_code == 403
    act(client, "disable_definitions", definition)
    assert MetricDefinition.objects.get().enabled


@pytest.mark.parametrize(
    "fields",
    [
        {"model": "auth.User", "filters": {"password__startswith": "md5$"}},
        {"model": "auth.User", "group_by": "password"},
        {"model": "auth.Group", "group_by": "user__password"},
        {"model": "sessions.Session"},
        {"model": "admin.LogEntry", "group_by": "user"},
    ],
)
def test_editors_cannot_read_sensitive_data(staff, fields):
    client = staff(
        "add_metricdefinition", "change_metricdefinition", "view_metricdefinition"
    )
    data = form_data(name="leak", source="row_count", **fields)
    refused = set(errors_of(client.post(ADD_URL, data)))
    assert refused & {"model", "filters", "group_by"}
    preview = client.post(PREVIEW_URL, data)
    assert preview.context["evaluation"] is None
    assert not MetricDefinition.objects.exists()


def test_editors_cannot_export_secret_settings(staff):
    client = staff("add_metricdefinition", "view_metricdefinition")
    for setting in ("SECRET_KEY", "DATABASES.default.PASSWORD"):
        data = form_data(name="leak", source="setting", setting=setting)
        assert "looks secret" in errors_of(client.post(ADD_URL, data))["setting"][0]
        assert "looks secret" in client.post(PREVIEW_URL, data).content.decode()
    assert not MetricDefinition.objects.exists()
    assert "SECRET_KEY" not in policy.suggested_settings()
