"""Unit tests for metricdemo.sources: the source classes, SOURCES and read_setting."""

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.test import override_settings

from metricdemo import sources
from metricdemo.models import EDITABLE_FIELDS, MetricDefinition
from metricdemo.observations import EvaluationError
from metricdemo.sources import (
    CHOICES,
    SOURCE_FIELDS,
    SOURCES,
    CallbackSource,
    ConstantSource,
    RowsSource,
    SettingSource,
    Source,
    read_setting,
)


def definition(source: str, **fields) -> MetricDefinition:
    """Return an unsaved definition of `source` named x."""
    return MetricDefinition(name="x", source=source, **fields)


def refusal(source: Source, **fields) -> dict[str, list[str]]:
    """Return the field-keyed messages of `source.validate()` for these fields."""
    with pytest.raises(ValidationError) as info:
        source.validate(definition(source.key, **fields))
    return info.value.message_dict


# SOURCES, CHOICES and SOURCE_FIELDS


@pytest.mark.parametrize(
    ("cls", "key", "fields", "flags"),
    [
        (ConstantSource, "constant", ("value",), {"static"}),
        (
            RowsSource,
            "row_count",
            ("model", "aggregate", "field", "filters", "group_by", "buckets"),
            {"uses_database", "blocking", "batchable"},
        ),
        (SettingSource, "setting", ("setting",), set()),
        (CallbackSource, "callback", ("callback",), {"blocking"}),
    ],
)
def test_source__describes_itself(cls, key, fields, flags):
    source = SOURCES[key]
    assert type(source) is cls
    assert source.key == key
    assert source.fields == fields
    assert str(source.label) and str(source.help_text)
    all_flags = ("uses_database", "blocking", "static", "batchable")
    assert {flag for flag in all_flags if getattr(source, flag)} == flags


@pytest.mark.parametrize("key", list(SOURCES))
def test_source__flags_are_consistent(key):
    """Database work runs on a worker; a static value needs neither."""
    source = SOURCES[key]
    if source.uses_database or source.batchable:
        assert source.blocking
    if source.batchable:
        assert source.uses_database
    if source.static:
        assert not (source.uses_database or source.blocking)


def test_choices__are_the_model_field_choices_in_sources_order():
    field = MetricDefinition._meta.get_field("source")
    assert [key for key, _ in field.choices] == list(SOURCES)
    assert [key for key, _ in CHOICES] == list(SOURCES)
    assert [str(label) for _, label in CHOICES] == [
        str(source.label) for source in SOURCES.values()
    ]
    assert all(len(key) <= field.max_length for key in SOURCES)
    assert field.default == ConstantSource.key


def test_source_fields__are_every_sources_fields_once():
    expected = [name for source in SOURCES.values() for name in source.fields]
    assert list(SOURCE_FIELDS) == list(dict.fromkeys(expected))


@pytest.mark.parametrize("name", SOURCE_FIELDS)
def test_source_fields__are_editable_and_may_be_left_empty(name):
    """Another source's fields stay empty, so each must allow blank."""
    field = MetricDefinition._meta.get_field(name)
    assert name in EDITABLE_FIELDS
    assert field.blank


# ConstantSource


def test_constant_source__validate_needs_a_value():
    assert list(refusal(ConstantSource())) == ["value"]
    ConstantSource().validate(definition("constant", value=0))


def test_constant_source__observe_returns_one_float_series():
    observations = ConstantSource().observe(definition("constant", value=7))
    assert observations == [(7.0, {})]
    assert type(observations[0][0]) is float


# RowsSource


@pytest.mark.parametrize(
    ("fields", "field", "text"),
    [
        ({}, "model", "auth.User"),
        ({"model": "shop.Nope"}, "model", "'shop.Nope'"),
        ({"model": "nodot"}, "model", "'nodot'"),
        ({"model": "shop.Order", "filters": ["status"]}, "filters", "['status']"),
        ({"model": "shop.Order", "filters": {"status__nope": 1}}, "filters", "nope"),
        # A value the field cannot take: Django's own message is passed on.
        ({"model": "shop.Order", "filters": {"total": "abc"}}, "filters", "abc"),
        ({"model": "shop.Order", "group_by": "nope"}, "group_by", "'nope'"),
        ({"model": "sessions.Session"}, "model", "ROW_COUNT_EXCLUDED_MODELS"),
        (
            {"model": "shop.Order", "group_by": "status", "attributes": {"status": 1}},
            "group_by",
            "'status'",
        ),
    ],
)
def test_rows_source__validate_keys_errors_by_field(db, fields, field, text):
    messages = refusal(RowsSource(), **fields)
    assert list(messages) == [field]
    assert text in messages[field][0]


def test_rows_source__validate_reports_filters_and_group_by_together(db):
    messages = refusal(
        RowsSource(),
        model="auth.User",
        filters={"password": "x"},
        group_by="password",
    )
    assert sorted(messages) == ["filters", "group_by"]


def test_rows_source__validate_accepts_lookups_across_relations(db):
    RowsSource().validate(
        definition(
            "row_count",
            model="shop.Order",
            filters={"created__year": 2026, "customer__country__in": ["DE"]},
            group_by="customer__country",
            attributes={"region": "eu"},
        )
    )


def test_rows_source__observe_counts_real_rows(orders):
    source = RowsSource()
    pending = definition("row_count", model="shop.Order", filters={"status": "paid"})
    assert source.observe(pending) == [(2.0, {})]


@override_settings(METRICDEMO={"ROW_COUNT_MODELS": ["auth"]})
def test_rows_source__observe_refuses_what_policy_now_refuses(orders):
    with pytest.raises(EvaluationError, match="ROW_COUNT_MODELS"):
        RowsSource().observe(definition("row_count", model="shop.Order"))


# SettingSource


@pytest.mark.parametrize(
    ("setting", "text"),
    [
        ("", "SESSION_COOKIE_AGE"),
        ("NO_SUCH_SETTING", "'NO_SUCH_SETTING'"),
        ("SECRET_KEY", "looks secret"),
        ("CACHES.default.NOPE", "'NOPE'"),
        ("ROOT_URLCONF", "holds a str"),
    ],
)
def test_setting_source__validate_keys_errors_by_setting(setting, text):
    messages = refusal(SettingSource(), setting=setting)
    assert list(messages) == ["setting"]
    assert text in messages["setting"][0]


def test_setting_source__never_shows_a_string_settings_value():
    """A string setting may be a secret that the name rules missed."""
    message = refusal(SettingSource(), setting="ROOT_URLCONF")["setting"][0]
    assert settings.ROOT_URLCONF not in message


@override_settings(
    SHOP_LIMITS={"orders": [10, 20.5], "open": True}, SHOP_RATIO=float("nan")
)
def test_setting_source__observe_returns_numbers_and_booleans():
    source = SettingSource()
    assert source.observe(definition("setting", setting="SHOP_LIMITS.orders.1")) == [
        (20.5, {})
    ]
    assert source.observe(definition("setting", setting="SHOP_LIMITS.open")) == [
        (1.0, {})
    ]
    with pytest.raises(EvaluationError, match="not a finite number"):
        source.observe(definition("setting", setting="SHOP_RATIO"))
    with pytest.raises(EvaluationError, match="holds a list"):
        source.observe(definition("setting", setting="SHOP_LIMITS.orders"))


@override_settings(SHOP_HUGE=10**400)
def test_setting_source__an_int_too_large_for_a_float_is_a_validation_error():
    assert list(refusal(SettingSource(), setting="SHOP_HUGE")) == ["setting"]


# CallbackSource


def test_callback_source__validate_needs_a_registered_name(callback):
    callback("test.known", lambda: 1)
    assert "registered callback name" in refusal(CallbackSource())["callback"][0]
    message = refusal(CallbackSource(), callback="test.unknown")["callback"][0]
    assert "'test.unknown'" in message and "test.known" in message
    CallbackSource().validate(definition("callback", callback="test.known"))


def test_callback_source__observe_normalizes_the_result(callback):
    callback("test.pairs", lambda: [(1, {"queue": "a"}), (2.5, {"queue": "b"})])
    observed = CallbackSource().observe(definition("callback", callback="test.pairs"))
    assert observed == [(1.0, {"queue": "a"}), (2.5, {"queue": "b"})]


def test_callback_source__observe_an_unregistered_name_is_an_evaluation_error():
    with pytest.raises(EvaluationError, match="'test.gone'"):
        CallbackSource().observe(definition("callback", callback="test.gone"))


def test_callback_source__observe_lets_the_callbacks_own_error_through(callback):
    """The evaluator describes it with its type; the source does not reword it."""
    callback("test.boom", lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        CallbackSource().observe(definition("callback", callback="test.boom"))


# validate_source and observe


def test_validate_source__uses_the_definitions_source():
    with pytest.raises(ValidationError) as info:
        sources.validate_source(definition("constant"))
    assert list(info.value.message_dict) == ["value"]
    with pytest.raises(ValidationError) as info:
        sources.validate_source(definition("setting", value=1))
    assert list(info.value.message_dict) == ["setting"]


def test_observe__adds_the_constant_attributes():
    observed = sources.observe(
        definition("constant", value=3, attributes={"region": "eu", "tier": 2})
    )
    assert observed == [(3.0, {"region": "eu", "tier": 2})]


def test_observe__a_series_attribute_wins_over_a_constant_one(callback):
    callback("test.regions", lambda: [(1, {"region": "us"}), (2, {"zone": "a"})])
    observed = sources.observe(
        definition("callback", callback="test.regions", attributes={"region": "eu"})
    )
    assert observed == [(1.0, {"region": "us"}), (2.0, {"region": "eu", "zone": "a"})]


def test_observe__raises_the_sources_evaluation_error():
    with pytest.raises(EvaluationError, match="SECRET_KEY looks secret"):
        sources.observe(definition("setting", setting="SECRET_KEY"))


# read_setting


@override_settings(
    SHOP={"limits": [5, {"daily": 9}], "0": "zero"},
    SHOP_TUPLE=("a", "b"),
)
@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("SHOP_TUPLE", ("a", "b")),
        ("SHOP.limits.0", 5),
        ("SHOP.limits.1.daily", 9),
        ("SHOP_TUPLE.1", "b"),
        # A mapping is looked up by the key as written, digits included.
        ("SHOP.0", "zero"),
    ],
)
def test_read_setting__walks_dicts_and_list_indexes(path, value):
    assert read_setting(path) == value


def test_read_setting__walks_real_settings():
    assert read_setting("SESSION_COOKIE_AGE") == settings.SESSION_COOKIE_AGE
    backend = settings.CACHES["default"]["BACKEND"]
    assert read_setting("CACHES.default.BACKEND") == backend
    assert read_setting("ALLOWED_HOSTS.0") == settings.ALLOWED_HOSTS[0]


@override_settings(SHOP={"limits": [5, 6]})
@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("NO_SUCH_SETTING", "There is no Django setting called 'NO_SUCH_SETTING'."),
        ("SHOP.nope", "Setting SHOP has no key 'nope'."),
        ("SHOP.limits.2", "Setting SHOP.limits has no key '2'."),
        ("SHOP.limits.-1", "Setting SHOP.limits has no key '-1'."),
        ("SHOP.limits.first", "Setting SHOP.limits has no key 'first'."),
        ("SHOP.limits.0.x", "Setting SHOP.limits.0 has no key 'x'."),
    ],
)
def test_read_setting__missing_keys_name_the_path_walked(path, message):
    with pytest.raises(EvaluationError) as info:
        read_setting(path)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "name", ["debug", "Debug", "cache_settings", "Session_cookie_age"]
)
def test_read_setting__refuses_names_that_are_not_upper_case(name):
    """Only upper-case names are settings, whatever the settings module holds."""
    with pytest.raises(EvaluationError, match="no Django setting"):
        read_setting(name)


def test_read_setting__a_non_ascii_digit_is_a_missing_key():
    with pytest.raises(EvaluationError, match="no key"):
        read_setting("ALLOWED_HOSTS.²")
