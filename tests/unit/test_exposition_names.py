"""Name translation and escaping: the exporter's names by default, Prometheus's."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.exporter.prometheus._mapping import (
    map_unit,
    sanitize_attribute,
    sanitize_full_name,
)
from prometheus_client.openmetrics import exposition as om

from metricdemo.exposition import names

UNITS = [
    "",
    "1",
    "s",
    "ms",
    "By",
    "KiBy",
    "%",
    "{order}",
    "m/s",
    "{req}/min",
    "By/s",
    "Cel",
    "1/s",
    "foo-bar",
    "_x_",
    "/s",
    "s/",
    "/",
    "{a}{b}",
    "mo",
]


@given(st.text(max_size=40))
def test_sanitizing_a_name_or_key_matches_the_exporter(text):
    assert names.sanitize_name(text) == sanitize_full_name(text)
    assert names.sanitize_label(text) == sanitize_attribute(text)


@pytest.mark.parametrize("unit", UNITS)
def test_unit_suffixes_match_the_exporter(unit):
    assert names.unit_suffix(unit) == map_unit(unit)


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=12))
def test_any_ascii_unit_suffix_matches_the_exporter(unit):
    assert names.unit_suffix(unit) == map_unit(unit)


@pytest.mark.parametrize(
    ("name", "unit", "counter", "strategy", "expected"),
    [
        (
            "shop.orders.open",
            "",
            False,
            names.DEFAULT_STRATEGY,
            ("shop_orders_open", ""),
        ),
        ("shop.orders", "{order}", True, names.DEFAULT_STRATEGY, ("shop_orders", "")),
        (
            "jobs.runtime_total",
            "s",
            True,
            names.DEFAULT_STRATEGY,
            ("jobs_runtime_seconds", "seconds"),
        ),
        (
            "queue.size_bytes",
            "By",
            False,
            names.DEFAULT_STRATEGY,
            ("queue_size_bytes", "bytes"),
        ),
        (
            "shop.orders.open",
            "",
            False,
            names.NO_UTF8_ESCAPING_WITH_SUFFIXES,
            ("shop.orders.open", ""),
        ),
        (
            "shop.latency",
            "ms",
            False,
            names.NO_UTF8_ESCAPING_WITH_SUFFIXES,
            ("shop.latency_milliseconds", "milliseconds"),
        ),
        ("shop.latency", "ms", False, names.NO_TRANSLATION, ("shop.latency", "")),
        # A kept name that already ends with its unit gets no second one.
        (
            "queue.bytes",
            "By",
            False,
            names.NO_UTF8_ESCAPING_WITH_SUFFIXES,
            ("queue.bytes", "bytes"),
        ),
        ("jobs_total", "s", True, names.NO_TRANSLATION, ("jobs_total", "")),
        (
            "shop.latency",
            "ms",
            False,
            names.UNDERSCORE_ESCAPING_WITHOUT_SUFFIXES,
            ("shop_latency", ""),
        ),
    ],
)
def test_family_names_per_strategy(name, unit, counter, strategy, expected):
    assert names.family_name(name, unit, counter, strategy) == expected


@pytest.mark.parametrize("escaping", names.ESCAPINGS)
@given(text=st.text(min_size=1, max_size=30))
def test_escaping_matches_prometheus_client(escaping, text):
    # prometheus_client implements Prometheus's escaping schemes
    # (model.EscapeName) for its own exposition.
    assert names.escape_metric_name(text, escaping) == om.escape_metric_name(
        text, escaping
    )
    assert names.escape_label_name(text, escaping) == om.escape_label_name(
        text, escaping
    )


@pytest.mark.parametrize(
    ("escaping", "expected"),
    [
        ("allow-utf-8", '"shop.orders.open"'),
        ("underscores", "shop_orders_open"),
        ("dots", "shop_dot_orders_dot_open"),
        ("values", "U__shop_2e_orders_2e_open"),
    ],
)
def test_a_dotted_name_under_each_escaping(escaping, expected):
    assert names.escape_metric_name("shop.orders.open", escaping) == expected


def test_dots_escaping_doubles_underscores_of_a_classic_name_too():
    assert names.escape_metric_name("shop_orders", "dots") == "shop__orders"
    assert names.escape_metric_name("shop_orders", "underscores") == "shop_orders"
    assert names.escape_metric_name("shop_orders", "values") == "shop_orders"
