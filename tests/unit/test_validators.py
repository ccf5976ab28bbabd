"""Unit tests for metricdemo.validators: each rule, and the exporter's names."""

import math
from collections import OrderedDict
from decimal import Decimal
from types import MappingProxyType

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from metricdemo.naming import exported_names
from metricdemo.validators import (
    TIMEOUT_MAX,
    UNIT_MAX_LENGTH,
    as_number,
    label_name,
    validate_attributes,
    validate_finite,
    validate_label_key,
    validate_metric_name,
    validate_model_label,
    validate_setting_path,
    validate_timeout,
    validate_unit,
)


def refusal(validator, value, **kwargs) -> ValidationError:
    """Return the ValidationError that `validator` raises for `value`."""
    with pytest.raises(ValidationError) as exc:
        validator(value, **kwargs)
    return exc.value


def sdk_accepts_name(name: str) -> bool:
    """Return whether the OpenTelemetry SDK creates an instrument named `name`."""
    provider = MeterProvider(shutdown_on_exit=False)
    try:
        provider.get_meter("test").create_observable_gauge(name, callbacks=[])
    except Exception:  # noqa: BLE001 - the SDK raises a bare Exception
        return False
    finally:
        provider.shutdown()
    return True


def exporter_names(name: str, kind: str, unit: str) -> tuple[str, str]:
    """Return the family and sample name the Prometheus exporter really writes."""
    registry = CollectorRegistry()
    reader = PrometheusMetricReader(disable_target_info=True, registry=registry)
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    create = {
        "counter": "create_observable_counter",
        "updowncounter": "create_observable_up_down_counter",
        "gauge": "create_observable_gauge",
    }[kind]
    getattr(provider.get_meter("test"), create)(
        name, callbacks=[lambda options: [Observation(1)]], unit=unit
    )
    try:
        text = generate_latest(registry).decode()
    finally:
        provider.shutdown()
    [family] = text_string_to_metric_families(text)
    [sample] = family.samples
    return family.name, sample.name


# validate_metric_name

VALID_NAMES = [
    "a",
    "A",
    "x1",
    "shop.orders.pending",
    "Shop.Orders",
    "a/b-c_d.e",
    "a" * 255,
]
INVALID_NAMES = [
    "",
    "1orders",
    "_orders",
    ".orders",
    "-orders",
    "/orders",
    "shop orders",
    "shop:orders",
    "shop.ordérs",
    "shop\torders",
    "a" * 256,
]


@pytest.mark.parametrize("name", VALID_NAMES)
def test_validate_metric_name__accepts_instrument_names(name):
    assert validate_metric_name(name) is None


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_validate_metric_name__refuses_with_the_value(name):
    error = refusal(validate_metric_name, name)
    assert error.code == "invalid_name"
    assert error.params == {"value": name}
    assert repr(name) in error.messages[0]


def test_validate_metric_name__refuses_none():
    assert refusal(validate_metric_name, None).code == "invalid_name"


def test_validate_metric_name__255_characters_is_the_limit():
    assert validate_metric_name("a" * 255) is None
    assert refusal(validate_metric_name, "a" * 256).code == "invalid_name"


def test_validate_metric_name__refuses_a_trailing_newline():
    """The SDK refuses "orders\\n", so the validator must too."""
    assert not sdk_accepts_name("orders\n")
    assert refusal(validate_metric_name, "orders\n").code == "invalid_name"


@pytest.mark.parametrize("name", [*VALID_NAMES, *INVALID_NAMES])
def test_validate_metric_name__agrees_with_the_sdk(name):
    try:
        validate_metric_name(name)
    except ValidationError:
        accepted = False
    else:
        accepted = True
    assert accepted == sdk_accepts_name(name)


# validate_unit


@pytest.mark.parametrize(
    "unit", ["", "s", "By", "1", "%", "{order}", "By/s", "{req}/s", "~!@#", "a" * 63]
)
def test_validate_unit__accepts_printable_ascii(unit):
    assert validate_unit(unit) is None


@pytest.mark.parametrize("unit", ["séconds", "µs", "\t", "s\n", "\x00", "\x7f"])
def test_validate_unit__refuses_non_ascii_and_control_characters(unit):
    error = refusal(validate_unit, unit)
    assert error.code == "invalid_unit"
    assert error.params == {"value": unit}
    assert "printable ASCII" in error.messages[0]


@pytest.mark.parametrize("unit", ["per second", " s", "s ", "By /s"])
def test_validate_unit__refuses_spaces(unit):
    error = refusal(validate_unit, unit)
    assert error.code == "invalid_unit"
    assert error.params == {"value": unit}
    assert "spaces" in error.messages[0]


def test_validate_unit__63_characters_is_the_limit():
    assert UNIT_MAX_LENGTH == 63
    assert validate_unit("a" * 63) is None
    error = refusal(validate_unit, "a" * 64)
    assert error.code == "invalid_unit"
    assert error.params == {"value": "a" * 64, "length": 64}
    assert "64 characters" in error.messages[0]


def test_validate_unit__length_is_reported_before_spaces():
    error = refusal(validate_unit, "a b" * 22)
    assert error.code == "invalid_unit"
    assert error.params == {"value": "a b" * 22, "length": 66}


@pytest.mark.parametrize("unit", ["", "s", "{order}", "By/s", "~!@#", "a" * 63])
def test_validate_unit__what_it_accepts_the_sdk_accepts(unit):
    provider = MeterProvider(shutdown_on_exit=False)
    try:
        gauge = provider.get_meter("test").create_observable_gauge(
            "u", callbacks=[], unit=unit
        )
    finally:
        provider.shutdown()
    assert gauge.unit == unit


# label_name


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("region", "region"),
        ("Region", "Region"),
        ("deploy.env", "deploy_env"),
        ("a-b/c", "a_b_c"),
        ("a:b", "a_b"),
        ("a..b", "a_b"),
        ("a__b", "a_b"),
        ("__name__", "_name_"),
        ("1st", "_st"),
        ("région", "r_gion"),
        ("_", "_"),
    ],
)
def test_label_name__as_the_exporter_writes_it(key, label):
    assert label_name(key) == label


# validate_label_key


@pytest.mark.parametrize(
    "key", ["region", "Region", "_private", "a_b_c", "otel_scope", "OTEL_SCOPE_NAME"]
)
def test_validate_label_key__accepts_keys_that_are_labels(key):
    assert validate_label_key(key) is None


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("__name__", "_name_"),
        ("deploy.env", "deploy_env"),
        ("a__b", "a_b"),
        ("a-b/c", "a_b_c"),
        ("1st", "_st"),
        ("région", "r_gion"),
        ("x.", "x_"),
        ("otel.scope.name", "otel_scope_name"),
    ],
)
def test_validate_label_key__refuses_keys_the_exporter_would_rename(key, label):
    """The exporter would write another label silently; the message names it."""
    error = refusal(validate_label_key, key)
    assert error.code == "renamed_label"
    assert error.params == {"what": "Attribute", "key": key, "label": label}
    assert repr(label) in error.messages[0]


def test_validate_label_key__a_group_by_path_joins_fields_with_one_underscore():
    assert validate_label_key("customer__country", relation_path=True) is None
    error = refusal(validate_label_key, "customer.country", relation_path=True)
    assert error.code == "renamed_label"


@pytest.mark.parametrize("key", ["\ud800", "a\udfff", "a\x00"])
def test_validate_label_key__refuses_text_that_cannot_be_encoded(key):
    assert refusal(validate_label_key, key).code == "unencodable"


@pytest.mark.parametrize("key", ["", None, 1, b"region", ("region",)])
def test_validate_label_key__refuses_what_is_not_a_non_empty_string(key):
    error = refusal(validate_label_key, key)
    assert error.code == "invalid_attributes"
    assert error.params == {"what": "Attribute", "key": key}
    assert "non-empty strings" in error.messages[0]


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("otel_scope_name", "otel_scope_name"),
        ("otel_scope_version", "otel_scope_version"),
        ("otel_scope_", "otel_scope_"),
    ],
)
def test_validate_label_key__refuses_the_exporters_scope_labels(key, label):
    error = refusal(validate_label_key, key)
    assert error.code == "invalid_attributes"
    assert error.params == {"what": "Attribute", "key": key, "label": label}
    assert repr(label) in error.messages[0]


def test_validate_label_key__names_what_the_key_is_for():
    error = refusal(validate_label_key, "", what="Group-by")
    assert error.params["what"] == "Group-by"
    assert error.messages[0].startswith("Group-by keys")


# validate_attributes


@pytest.mark.parametrize(
    "attributes",
    [
        {},
        {"region": "eu"},
        {"empty": ""},
        {"tier": 2},
        {"big": 10**30},
        {"ratio": -0.5},
        {"canary": True},
        {"canary": False},
        {"region": "eu", "tier": 2, "ratio": 0.5, "canary": True},
        OrderedDict(region="eu"),
        MappingProxyType({"region": "eu"}),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_validate_attributes__accepts_a_mapping_of_scalars(attributes):
    assert validate_attributes(attributes) is None


@pytest.mark.parametrize(
    "value", [None, [], ["region"], "region=eu", '{"region": "eu"}', 1, {"region"}]
)
def test_validate_attributes__refuses_what_is_not_a_mapping(value):
    error = refusal(validate_attributes, value)
    assert error.code == "invalid_attributes"
    assert error.params == {"value": value}
    assert "JSON object" in error.messages[0]


@pytest.mark.parametrize(
    ("attributes", "key"),
    [({"": "x"}, ""), ({1: "x"}, 1), ({"otel_scope_name": "x"}, "otel_scope_name")],
)
def test_validate_attributes__refuses_bad_keys(attributes, key):
    error = refusal(validate_attributes, attributes)
    assert error.code == "invalid_attributes"
    assert error.params["key"] == key


@pytest.mark.parametrize(
    ("attributes", "key", "label"),
    [
        ({"a_b": 1, "a.b": 2}, "a.b", "a_b"),
        ({"a_b": 1, "a__b": 2}, "a__b", "a_b"),
        ({"_st": 1, "1st": 2}, "1st", "_st"),
    ],
)
def test_validate_attributes__refuses_a_key_that_would_become_another_keys_label(
    attributes, key, label
):
    error = refusal(validate_attributes, attributes)
    assert error.code == "renamed_label"
    assert (error.params["key"], error.params["label"]) == (key, label)


@pytest.mark.parametrize(
    "attributes",
    [{"s": "\ud800"}, {"s": "a\udc80b"}, {"s": "\x00"}, {"\ud800": "x"}],
    ids=repr,
)
def test_validate_attributes__refuses_text_that_cannot_be_encoded(attributes):
    error = refusal(validate_attributes, attributes)
    assert error.code == "unencodable"
    # The message itself can be shown: it escapes the text it names.
    assert "U+" in error.messages[0].encode("utf-8").decode()


@pytest.mark.parametrize(
    "value",
    [
        None,
        [1, 2],
        ("eu",),
        {"nested": 1},
        {"eu"},
        b"eu",
        Decimal("1.5"),
        complex(1, 2),
        float("nan"),
        float("inf"),
        float("-inf"),
    ],
    ids=repr,
)
def test_validate_attributes__refuses_values_that_are_not_finite_scalars(value):
    error = refusal(validate_attributes, {"region": value})
    assert error.code == "invalid_attributes"
    assert error.params["key"] == "region"
    assert error.params["value"] is value


# validate_finite


@pytest.mark.parametrize("value", [None, 0, -1, 2.5, 1e308, -1e-308])
def test_validate_finite__accepts_finite_numbers_and_none(value):
    assert validate_finite(value) is None


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_validate_finite__refuses_nan_and_infinities(value):
    error = refusal(validate_finite, value)
    assert error.code == "not_finite"
    assert error.params["value"] is value


# validate_timeout


@pytest.mark.parametrize("value", [None, 1e-9, 0.001, 2.5, 299.999, 300, 300.0])
def test_validate_timeout__accepts_more_than_0_up_to_300(value):
    # The scrape budget is the tighter bound by default (8 s); at 300 it is not.
    with override_settings(METRICDEMO={"SCRAPE_TIMEOUT": 300}):
        assert validate_timeout(value) is None


@pytest.mark.parametrize("value", [8.001, 9, 299.999])
def test_validate_timeout__refuses_more_than_the_scrape_budget(value):
    error = refusal(validate_timeout, value)
    assert error.code == "timeout_over_scrape_budget"
    assert error.params == {"value": value, "budget": 8.0}


@pytest.mark.parametrize(
    "value",
    [
        0,
        0.0,
        -0.0,
        -1,
        math.nextafter(300.0, math.inf),
        301,
        float("nan"),
        float("inf"),
        float("-inf"),
    ],
)
def test_validate_timeout__refuses_outside_the_bounds(value):
    error = refusal(validate_timeout, value)
    assert error.code == "invalid_timeout"
    assert error.params["value"] is value


def test_validate_timeout__the_maximum_is_300_seconds():
    assert TIMEOUT_MAX == 300.0


# validate_setting_path


@pytest.mark.parametrize(
    "path",
    [
        "X",
        "DEBUG",
        "SESSION_COOKIE_AGE",
        "X1",
        "CACHES.default.TIMEOUT",
        "DATABASES.default.OPTIONS.timeout",
        "A_DICT.inner-key.x",
        "A_LIST.0",
    ],
)
def test_validate_setting_path__accepts_name_and_keys(path):
    assert validate_setting_path(path) is None


@pytest.mark.parametrize(
    "path",
    [
        "",
        "debug",
        "Debug",
        "1DEBUG",
        "_DEBUG",
        "DEBUG.",
        ".DEBUG",
        "CACHES..TIMEOUT",
        "SESSION COOKIE_AGE",
        "CACHES.default TIMEOUT",
        "CACHES/default",
        "CACHES[default]",
        "CACHES.défault",
        "DEBUG\n",
    ],
)
def test_validate_setting_path__refuses_with_the_value(path):
    error = refusal(validate_setting_path, path)
    assert error.code == "invalid_setting"
    assert error.params == {"value": path}


# validate_model_label


@pytest.mark.parametrize(
    "label", ["auth.User", "shop.Order", "my_app.My_Model2", "_a._B"]
)
def test_validate_model_label__accepts_app_label_dot_model(label):
    assert validate_model_label(label) is None


@pytest.mark.parametrize(
    "label",
    [
        "",
        "auth",
        "auth.",
        ".User",
        "auth.User.extra",
        "1auth.User",
        "auth.1User",
        "auth User",
        "auth.Us er",
        "auth-x.User",
        "shop.Ordér",
        "auth.User\n",
    ],
)
def test_validate_model_label__refuses_with_the_value(label):
    error = refusal(validate_model_label, label)
    assert error.code == "invalid_model"
    assert error.params == {"value": label}


# as_number


@pytest.mark.parametrize(
    ("value", "number"),
    [
        (True, 1.0),
        (False, 0.0),
        (0, 0.0),
        (-7, -7.0),
        (2**53, 9007199254740992.0),
        (2.5, 2.5),
        (1e308, 1e308),
        (Decimal("2.5"), 2.5),
        (Decimal("-0"), -0.0),
    ],
    ids=repr,
)
def test_as_number__returns_a_float(value, number):
    result = as_number(value)
    assert type(result) is float
    assert result == number


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        float("-inf"),
        Decimal("NaN"),
        Decimal("Infinity"),
        Decimal("1e400"),
    ],
    ids=repr,
)
def test_as_number__refuses_nan_and_infinities_with_value_error(value):
    with pytest.raises(ValueError, match="expected a finite number"):
        as_number(value)


@pytest.mark.parametrize("value", [10**400, -(10**400), Decimal("1e400")], ids=repr)
def test_as_number__refuses_a_number_too_large_for_a_float_with_value_error(value):
    """float() overflows; as_number() promises ValueError, which its callers catch."""
    with pytest.raises(ValueError, match="finite"):
        as_number(value)


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        ("1", "str"),
        ("1.5", "str"),
        ("", "str"),
        (None, "NoneType"),
        (b"1", "bytes"),
        ([1], "list"),
        ({"value": 1}, "dict"),
        (complex(1, 0), "complex"),
    ],
    ids=repr,
)
def test_as_number__refuses_non_numbers_with_type_error(value, type_name):
    with pytest.raises(TypeError) as exc:
        as_number(value)
    assert str(exc.value) == f"expected a number, got {value!r} ({type_name})"


# exported_names

EXPORTED_NAMES = [
    # dots, dashes and slashes become '_'; the SDK lowercases instrument names
    (("shop.orders", "gauge", ""), ("shop_orders", "shop_orders")),
    (("Shop.Orders", "gauge", ""), ("shop_orders", "shop_orders")),
    (("a/b-c", "gauge", ""), ("a_b_c", "a_b_c")),
    # the unit's suffix is appended once, with its case kept
    (("wait", "gauge", "s"), ("wait_seconds", "wait_seconds")),
    (("wait_seconds", "gauge", "s"), ("wait_seconds", "wait_seconds")),
    (("size", "gauge", "By"), ("size_bytes", "size_bytes")),
    (("speed", "gauge", "m/s"), ("speed_meters_per_second", "speed_meters_per_second")),
    (("rate", "gauge", "{req}/s"), ("rate_per_second", "rate_per_second")),
    (("load", "gauge", "%"), ("load_percent", "load_percent")),
    (("x", "gauge", "MyUnit"), ("x_MyUnit", "x_MyUnit")),
    # a ratio and annotations add nothing
    (("ratio", "gauge", "1"), ("ratio", "ratio")),
    (("orders", "gauge", "{order}"), ("orders", "orders")),
    # counters' samples end in _total, once; other kinds keep their name
    (("jobs", "counter", ""), ("jobs", "jobs_total")),
    (("jobs_total", "counter", ""), ("jobs", "jobs_total")),
    (("jobs_total", "gauge", ""), ("jobs_total", "jobs_total")),
    (("jobs", "updowncounter", ""), ("jobs", "jobs")),
    (("jobs_total", "updowncounter", ""), ("jobs_total", "jobs_total")),
    (("wait", "counter", "s"), ("wait_seconds", "wait_seconds_total")),
    (("wait_seconds", "counter", "s"), ("wait_seconds", "wait_seconds_total")),
    (("Size", "counter", "By"), ("size_bytes", "size_bytes_total")),
    # prometheus_client drops a counter's '_total' before appending the unit
    (
        ("requests_total", "counter", "s"),
        ("requests_seconds", "requests_seconds_total"),
    ),
    (("jobs", "counter", "total"), ("jobs_total", "jobs_total_total")),
    (("jobs_total", "counter", "total"), ("jobs_total", "jobs_total_total")),
    (("Wait_Total", "counter", "ms"), ("wait_milliseconds", "wait_milliseconds_total")),
]


@pytest.mark.parametrize(("definition", "names"), EXPORTED_NAMES)
def test_exported_names__as_the_exporter_writes_them(definition, names):
    """The table is what a real scrape shows, and exported_names() returns it."""
    assert exporter_names(*definition) == names
    assert exported_names(*definition) == names
