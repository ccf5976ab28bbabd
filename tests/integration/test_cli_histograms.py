"""`metrics export` and `metrics import` carry a histogram's kind and buckets."""

import json

import pytest
from django.core.management.base import CommandError

from metricdemo.distributions import MAX_BUCKETS
from metricdemo.models import EDITABLE_FIELDS, MetricDefinition
from tests.commands import metrics, write

pytestmark = pytest.mark.django_db

ORDER_VALUE = {
    "name": "shop.order.value",
    "description": "Order totals",
    "unit": "{EUR}",
    "kind": "histogram",
    "source": "row_count",
    "model": "shop.Order",
    "field": "total",
    "filters": {"status__in": ["paid", "shipped"]},
    "group_by": "status",
    "buckets": [10, 25.5, 100, 1000],
}
TIME_TO_PAY = {
    "name": "shop.order.time_to_payment",
    "unit": "s",
    "kind": "histogram",
    "source": "row_count",
    "model": "shop.Order",
    "field": "paid - created",
    "filters": {"paid__isnull": False},
    "buckets": [60, 3600, 86400],
}


def fields_of(name: str) -> dict:
    definition = MetricDefinition.objects.get(name=name)
    return {field: getattr(definition, field) for field in EDITABLE_FIELDS}


def test_export__a_histogram_writes_its_kind_field_and_buckets(define):
    define(**ORDER_VALUE)
    (entry,) = json.loads(metrics("export"))["definitions"]
    assert entry == {**ORDER_VALUE, "enabled": True, "attributes": {}}


def test_round_trip__histograms_into_an_empty_database_keep_every_field(
    define, tmp_path
):
    define(**ORDER_VALUE)
    define(**TIME_TO_PAY)
    define(name="shop.target", source="constant", value=500)
    names = (ORDER_VALUE["name"], TIME_TO_PAY["name"], "shop.target")
    before = {name: fields_of(name) for name in names}
    first = metrics("export")
    MetricDefinition.objects.all().delete()

    report = metrics("import", write(tmp_path, first))
    assert report.splitlines()[-1].endswith(
        "3 created, 0 changed, 0 unchanged, 0 deleted."
    )
    assert {name: fields_of(name) for name in before} == before
    assert fields_of(ORDER_VALUE["name"])["buckets"] == [10, 25.5, 100, 1000]
    assert metrics("export") == first
    # Imported again, nothing differs.
    assert "0 changed, 3 unchanged" in metrics("import", write(tmp_path, first))


def test_import__new_buckets_change_a_stored_histogram(define, tmp_path):
    define(**ORDER_VALUE)
    path = write(tmp_path, {"definitions": [{**ORDER_VALUE, "buckets": [50, 500]}]})
    assert f"changed {ORDER_VALUE['name']} (buckets)" in metrics("import", path)
    assert fields_of(ORDER_VALUE["name"])["buckets"] == [50, 500]


#: A file written before histograms: no entry has buckets.
OLD_FILE = {
    "definitions": [
        {
            "attributes": {},
            "description": "",
            "enabled": True,
            "filters": {},
            "group_by": "",
            "kind": "counter",
            "model": "shop.Order",
            "name": "shop.orders",
            "source": "row_count",
            "unit": "",
        },
        {
            "aggregate": "sum",
            "attributes": {},
            "description": "Revenue",
            "enabled": True,
            "field": "total",
            "filters": {"status": "paid"},
            "group_by": "customer__country",
            "kind": "gauge",
            "model": "shop.Order",
            "name": "shop.revenue",
            "source": "row_count",
            "unit": "{EUR}",
        },
        {
            "attributes": {},
            "description": "",
            "enabled": True,
            "kind": "gauge",
            "name": "shop.target",
            "source": "constant",
            "unit": "",
            "value": 500.0,
        },
    ],
    "version": 1,
}


def test_import__an_old_file_without_buckets_imports_unchanged(tmp_path):
    text = json.dumps(OLD_FILE, indent=2, sort_keys=True) + "\n"
    path = write(tmp_path, text)
    assert "3 created" in metrics("import", path)
    assert [d.buckets for d in MetricDefinition.objects.all()] == [[], [], []]
    # Written back as it was read: no buckets key, nothing else added.
    assert metrics("export") == text
    # Imported again over what it made, nothing changes.
    assert "0 changed, 3 unchanged" in metrics("import", path)


def import_errors(tmp_path, document) -> list[str]:
    """Import a file that must be refused; return its error lines."""
    with pytest.raises(CommandError) as info:
        metrics("import", write(tmp_path, document))
    assert not MetricDefinition.objects.exists()
    return [line.strip() for line in str(info.value).splitlines()[1:]]


def histogram(**fields) -> dict:
    """Return a file with one histogram of order totals, with these fields."""
    entry = {
        "name": "shop.bad",
        "kind": "histogram",
        "source": "row_count",
        "model": "shop.Order",
        "field": "total",
        "buckets": [10, 100],
        **fields,
    }
    return {"definitions": [{k: v for k, v in entry.items() if v is not ...}]}


#: {case: (fields changed, field refused, fragments of its message)}; a field
#: given as ... is left out of the file.
BAD_HISTOGRAMS = {
    "bounds decreasing": (
        {"buckets": [100, 10]},
        "buckets",
        ["10 follows 100", "sort them and give each once", "[10, 50, 100"],
    ),
    "a bound twice": ({"buckets": [10, 10]}, "buckets", ["10 follows 10"]),
    "no bounds": ({"buckets": []}, "buckets", ["needs its buckets", "a JSON list"]),
    "buckets left out": (
        {"buckets": ...},
        "buckets",
        ["needs its buckets", "a JSON list", "or pick a preset"],
    ),
    "a string": ({"buckets": "10, 100"}, "buckets", ["a JSON list of increasing"]),
    "an object": ({"buckets": {"le": 10}}, "buckets", ["a JSON list of increasing"]),
    "a bound as a string": (
        {"buckets": [10, "100"]},
        "buckets",
        ["'100' is not a finite number", "give numbers only"],
    ),
    "a bound as a boolean": (
        {"buckets": [10, True]},
        "buckets",
        ["True is not a finite number"],
    ),
    "too many bounds": (
        {"buckets": list(range(1, MAX_BUCKETS + 2))},
        "buckets",
        [f"{MAX_BUCKETS + 1} buckets are too many", f"at most {MAX_BUCKETS}"],
    ),
    "null": (
        {"buckets": None},
        "buckets",
        ["null is not allowed", "leave buckets out for the default, []"],
    ),
    "buckets on a gauge": (
        {"kind": "gauge", "aggregate": "avg"},
        "buckets",
        ["Buckets are for the histogram kind", "clear them", "[10, 100]"],
    ),
    "an aggregate": (
        {"aggregate": "sum"},
        "aggregate",
        ["takes no aggregate", "leave it at count"],
    ),
    "no field": ({"field": ...}, "field", ["needs a field", "total"]),
    "a text field": ({"field": "status"}, "field", ["status is a CharField", "total"]),
    "a datetime field": ({"field": "created"}, "field", ["is a DateTimeField"]),
    "a duration to no field": (
        {"field": "paid - nope"},
        "field",
        ["'nope' in 'paid - nope'", "created, paid, shipped_on"],
    ),
}


@pytest.mark.parametrize(
    ("fields", "field", "fragments"),
    list(BAD_HISTOGRAMS.values()),
    ids=list(BAD_HISTOGRAMS),
)
def test_import__a_bad_histogram_names_definition_field_and_fix(
    tmp_path, fields, field, fragments
):
    errors = import_errors(tmp_path, histogram(**fields))
    prefix = f"shop.bad: {field}: "
    assert any(
        line.startswith(prefix) and all(f in line for f in fragments) for line in errors
    ), errors


def test_import__infinite_bounds_written_by_hand_are_refused(tmp_path):
    """Python's json reads Infinity and NaN; +Inf is implied, so neither is a bound."""
    text = json.dumps(histogram())
    for bad in ("Infinity", "NaN"):
        errors = import_errors(tmp_path, text.replace("[10, 100]", f"[10, {bad}]"))
        assert any(
            line.startswith("shop.bad: buckets: ")
            and "not a finite number" in line
            and "+Inf is added by itself" in line
            for line in errors
        ), errors


def test_import__buckets_nested_too_deep_are_an_error_on_their_field(tmp_path):
    errors = import_errors(
        tmp_path, histogram(buckets=[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]])
    )
    assert errors == [
        "shop.bad: buckets: the value is nested more than 16 levels deep; "
        "attributes and filters hold flat values, and buckets a list of numbers."
    ]
