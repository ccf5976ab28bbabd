"""Model validation: every rule refuses bad input with a message naming it."""

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from metricdemo.models import MetricDefinition
from tests.refusals import EXISTING, refusal_cases

pytestmark = pytest.mark.django_db


def errors_of(**fields) -> dict[str, list[str]]:
    """Return full_clean()'s messages by field for a definition with these fields."""
    definition = MetricDefinition(**{"source": "constant", "value": 1, **fields})
    with pytest.raises(ValidationError) as info:
        definition.full_clean()
    return info.value.message_dict


def test_valid_definition_passes(db):
    definition = MetricDefinition(name="shop.orders", source="constant", value=1)
    definition.full_clean()


@pytest.mark.parametrize(
    "name", ["", "1orders", "shop orders", "shop.ordérs", "a" * 256, "_x", "x:y"]
)
def test_name__must_be_an_instrument_name(name):
    messages = errors_of(name=name)["name"]
    if name:
        assert any(repr(name)[:40] in m or "at most" in m for m in messages), messages


def test_name__255_characters_is_allowed(db):
    MetricDefinition(name="a" * 255, source="constant", value=1).full_clean()


def test_name__unique(define):
    define(name="shop.orders", source="constant", value=1)
    assert "already exists" in errors_of(name="shop.orders")["name"][0]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # dots and dashes both become underscores
        ({"name": "shop.orders"}, {"name": "shop-orders"}),
        # instrument names are case-insensitive: the SDK lowercases them
        ({"name": "Shop.Orders"}, {"name": "shop-orders"}),
        # the unit suffix makes the names meet
        ({"name": "wait", "unit": "s"}, {"name": "wait_seconds"}),
        # a counter's _total meets a gauge that ends in _total
        ({"name": "jobs", "kind": "counter"}, {"name": "jobs_total"}),
        # a gauge and a counter of the same base name share the family name
        (
            {"name": "app.jobs", "kind": "counter"},
            {"name": "app-jobs", "kind": "gauge"},
        ),
    ],
)
def test_name__exported_name_collision_names_the_other_definition(
    define, first, second
):
    define(**{"source": "constant", "value": 1, "kind": "gauge", **first})
    messages = errors_of(**{"kind": "gauge", **second})["name"]
    assert any(repr(first["name"]) in m for m in messages), messages


def test_name__renaming_itself_is_no_collision(define):
    definition = define(name="shop.orders", source="constant", value=1)
    definition.description = "changed"
    definition.full_clean()


@pytest.mark.parametrize("unit", ["séconds", "a" * 64, "per second", "\t"])
def test_unit__ascii_at_most_63(unit):
    assert errors_of(name="x", unit=unit)["unit"]


@pytest.mark.parametrize(
    ("attributes", "fragment"),
    [
        (["a"], "JSON object"),
        ({"": "x"}, "non-empty"),
        ({"otel_scope_version": "x"}, "otel_scope_version"),
        ({"otel_scope_name": "x"}, "otel_scope_name"),
        ({"ok": None}, "None"),
        ({"ok": [1, 2]}, "[1, 2]"),
        ({"ok": {"nested": 1}}, "nested"),
        ({"a.b": "1", "a-b": "2"}, "a_b"),
        ({"ok": float("inf")}, "inf"),
    ],
)
def test_attributes__object_of_scalars_with_label_keys(attributes, fragment):
    messages = errors_of(name="x", attributes=attributes)["attributes"]
    assert any(fragment in m for m in messages), messages


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("deploy.env", "deploy_env"),
        ("__name__", "_name_"),
        ("a__b", "a_b"),
        ("1x", "_x"),
    ],
)
def test_attributes__key_the_exporter_would_rename(key, label):
    """The exporter would rename the key silently: refused, naming the label."""
    (message,) = errors_of(name="x", value=1, attributes={key: "v"})["attributes"]
    assert repr(key) in message
    assert repr(label) in message


def test_attributes__stored_key_turned_into_a_label_still_exports(client):
    """A row saved before the rule (or without validation) keeps exporting."""
    from tests.scraping import scrape, value

    MetricDefinition.objects.bulk_create(
        [MetricDefinition(name="x", value=1, attributes={"deploy.env": "prod"})]
    )
    assert value(scrape(client), "x", deploy_env="prod") == 1.0


def test_constant__needs_a_finite_value():
    assert "needs a value" in errors_of(name="x", value=None)["value"][0]
    assert "finite" in errors_of(name="x", value=float("nan"))["value"][0]


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [
        ({"model": ""}, "model", "needs a model"),
        ({"model": "shop"}, "model", "app_label.ModelName"),
        ({"model": "shop.Nope"}, "model", "shop.Nope"),
        ({"model": "shop.Order", "filters": ["status"]}, "filters", "JSON object"),
        ({"model": "shop.Order", "filters": {"colour": "red"}}, "filters", "colour"),
        (
            {"model": "shop.Order", "filters": {"status__startswith_x": "p"}},
            "filters",
            "status__startswith_x",
        ),
        ({"model": "shop.Order", "filters": {"total__gt": "lots"}}, "filters", "lots"),
        (
            {"model": "shop.Order", "filters": {"created__year": "soon"}},
            "filters",
            "soon",
        ),
        ({"model": "shop.Order", "group_by": "colour"}, "group_by", "colour"),
        (
            {
                "model": "shop.Order",
                "group_by": "status",
                "attributes": {"status": "x"},
            },
            "group_by",
            "status",
        ),
    ],
)
def test_row_count__rules(fields, field, fragment):
    messages = errors_of(name="x", source="row_count", value=None, **fields)[field]
    assert any(fragment in m for m in messages), messages


@override_settings(NOT_A_NUMBER="abc", A_DICT={"inner": {"n": 1}})
@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        ("", "needs a setting"),
        ("lower_case", "setting path"),
        ("NO_SUCH_SETTING", "NO_SUCH_SETTING"),
        ("NOT_A_NUMBER", "holds a str"),
        ("A_DICT.inner.missing", "missing"),
        ("A_DICT.inner", "holds a dict"),
    ],
)
def test_setting__must_exist_and_be_numeric(setting, fragment):
    messages = errors_of(name="x", source="setting", value=None, setting=setting)[
        "setting"
    ]
    assert any(fragment in m for m in messages), messages


@override_settings(CACHE_URL="redis://:hunter2@cache:6379/0")
def test_setting__message_never_shows_the_value():
    """A string setting may hold a secret the name rules miss; never echo it."""
    messages = errors_of(name="x", source="setting", value=None, setting="CACHE_URL")[
        "setting"
    ]
    assert "CACHE_URL" in messages[0] and "holds a str" in messages[0]
    assert "hunter2" not in " ".join(messages)


def test_callback__must_be_registered(callback):
    callback("test.known", lambda: 1)
    messages = errors_of(name="x", source="callback", value=None, callback="nope")[
        "callback"
    ]
    assert "'nope'" in messages[0] and "test.known" in messages[0]
    assert (
        "needs a registered"
        in errors_of(name="x", source="callback", value=None, callback="")["callback"][
            0
        ]
    )


def test_parameters_of_another_source_are_refused():
    errors = errors_of(name="x", value=1, model="shop.Order", setting="DEBUG")
    assert "row_count" in errors["model"][0]
    assert "setting" in errors["setting"][0]
    errors = errors_of(name="x", source="setting", setting="DEBUG", value=3)
    assert "constant" in errors["value"][0]


def test_kind_and_source_must_be_choices():
    errors = errors_of(name="x", kind="histogram")
    assert "histogram" in errors["kind"][0]
    errors = errors_of(name="x", source="sql")
    assert "sql" in errors["source"][0]


@refusal_cases
def test_every_refusal__through_full_clean(define, refusal):
    """The model refuses each bad input on its field, naming the bad value."""
    define(**EXISTING)
    definition = MetricDefinition(**refusal.definition)
    with pytest.raises(ValidationError) as info:
        definition.full_clean()
    messages = info.value.message_dict.get(refusal.field, [])
    assert any(refusal.fragment in m for m in messages), info.value.message_dict
