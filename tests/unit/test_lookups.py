"""Unit tests for metricdemo.lookups: filter keys taken apart before any query."""

from __future__ import annotations

import pytest
from django.db.models import Q

from metricdemo import lookups
from metricdemo.models import MetricDefinition
from tests.shop.models import Order

#: Keys that name no field, or a field and then no lookup Django has.
UNPARSED_KEYS = [
    "_connector",
    "_negated",
    "status___connector",
    "customer___negated",
    "status__nope",
    "status__",
    "__status",
    "status__exact__exact",
    "customer__country__in__x",
    "total) OR 1=1 --",
    "",
]


@pytest.mark.parametrize("key", UNPARSED_KEYS)
def test_parse__refuses_keys_that_name_no_field_and_lookup(key):
    with pytest.raises(lookups.LookupParseError) as caught:
        lookups.parse(Order, key)
    assert repr(key) in str(caught.value)


@pytest.mark.parametrize(
    ("key", "path", "transforms", "lookup"),
    [
        ("status", "status", (), "exact"),
        ("status__in", "status", (), "in"),
        ("pk", "id", (), "exact"),
        ("customer", "customer", (), "exact"),
        ("customer__country__iexact", "customer__country", (), "iexact"),
        ("customer__country__isnull", "customer__country", (), "isnull"),
        ("created__date__gte", "created", ("date",), "gte"),
        ("created__year", "created", ("year",), "exact"),
        ("created__year__lt", "created", ("year",), "lt"),
        ("customer__order__total__gt", "customer__order__total", (), "gt"),
    ],
)
def test_parse__names_the_field_path_transforms_and_lookup(
    key, path, transforms, lookup
):
    parsed = lookups.parse(Order, key)
    assert (parsed.path, parsed.transforms, parsed.lookup) == (
        path,
        transforms,
        lookup,
    )


def test_parse__json_keys_are_transforms_of_the_json_field():
    parsed = lookups.parse(MetricDefinition, "attributes__region__startswith")
    assert (parsed.path, parsed.transforms, parsed.lookup) == (
        "attributes",
        ("region",),
        "startswith",
    )


def test_condition__ands_positional_children_built_from_parsed_keys():
    condition = lookups.condition(Order, {"status": "paid", "total__gte": 1})
    assert condition == Q(("status__exact", "paid")) & Q(("total__gte", 1))


def test_condition__refuses_a_key_that_does_not_parse():
    with pytest.raises(lookups.LookupParseError):
        lookups.condition(Order, {"status": "paid", "_connector": "OR 1=1 OR"})
