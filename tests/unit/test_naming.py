"""Unit tests for metricdemo.naming: one collision rule, one message, for every path."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError

from metricdemo import naming
from metricdemo.models import Kind, MetricDefinition


def index(*rows, registry=None) -> naming.ExportedNameIndex:
    """Return an index of `rows` (pk, name, kind, unit) beside the static families."""
    return naming.ExportedNameIndex(rows, served=naming.served_names(registry or {}))


def row(pk, name, kind="gauge", unit="", attributes=None) -> SimpleNamespace:
    """Return a stored row as the scrape loads it, with the fields it reads."""
    return SimpleNamespace(
        pk=pk,
        name=name,
        kind=kind,
        unit=unit,
        description="",
        attributes=attributes if attributes is not None else {},
    )


def test_clash__none_when_every_name_is_free():
    assert naming.clash("shop.orders", "counter", "", index()) is None


def test_clash__the_apps_own_metric_comes_first():
    found = naming.clash("metricdemo.evaluations", "counter", "{evaluation}", index())
    assert found.by == naming.OWN_METRIC
    assert found.other == "metricdemo.evaluations"
    assert found.exported == "metricdemo_evaluations_total"


@pytest.mark.parametrize(
    ("name", "kind", "unit", "family"),
    [
        ("target.info", "gauge", "", "target_info"),
        ("python.info", "gauge", "", "python_info"),
        ("process.cpu", "counter", "s", "process_cpu_seconds"),
    ],
)
def test_clash__a_family_every_registry_serves(name, kind, unit, family):
    found = naming.clash(name, kind, unit, index())
    assert found.by == naming.SERVED_FAMILY
    assert found.other == family


def test_clash__a_family_the_registry_reported():
    served = {"app_jobs": "app_jobs_total", "app_jobs_total": "app_jobs_total"}
    found = naming.clash("app.jobs", "gauge", "", index(registry=served))
    assert (found.by, found.other) == (naming.SERVED_FAMILY, "app_jobs_total")


def test_clash__another_definition_but_never_itself():
    taken = index((1, "shop.orders", "gauge", ""))
    found = naming.clash("shop-orders", "gauge", "", taken)
    assert (found.by, found.other, found.kind) == (
        naming.DEFINITION,
        "shop.orders",
        "gauge",
    )
    assert naming.clash("shop.orders", "gauge", "", taken, pk=1) is None


def test_clash__the_error_carries_the_message_and_a_code():
    found = naming.clash("target.info", "gauge", "", index())
    error = found.error()
    assert error.code == "served_name"
    assert error.messages == [found.message]


def test_exposition_problem__the_older_row_keeps_a_contested_name():
    taken = index()
    assert (
        naming.exposition_problem(row(1, "jobs", "counter"), taken, Kind.values) is None
    )
    problem = naming.exposition_problem(row(2, "jobs_total"), taken, Kind.values)
    expected = naming.clash("jobs_total", "gauge", "", taken, pk=2).message
    assert problem == f"name: {expected}"
    assert "'jobs'" in problem


@pytest.mark.parametrize(
    ("stored", "fragment"),
    [
        (row(1, "k.bad", kind="summary"), "kind: unknown kind 'summary'"),
        (row(1, "9 lives"), "name: '9 lives' is not a valid instrument name"),
        (row(1, "u.bad", unit="per second"), "unit: 'per second' is not a valid unit"),
        (row(1, "a.bad", attributes=["x"]), "attributes: ['x'] is not a JSON object"),
        (row(1, "a.bad", attributes={"a.b": 1, "a_b": 2}), "the key 'a_b'"),
    ],
)
def test_exposition_problem__names_the_field(stored, fragment):
    problem = naming.exposition_problem(stored, index(), Kind.values)
    assert fragment in problem


def test_self_metric_names__every_name_each_takes():
    names = naming.self_metric_names()
    assert names["metricdemo_evaluations_total"] == "metricdemo.evaluations"
    assert names["metricdemo_evaluations_created"] == "metricdemo.evaluations"


def test_claimant__prefix_families_by_name():
    assert naming.claimant({"process_open_fds"}, {}) == "process_open_fds"
    assert naming.claimant({"shop_orders"}, {}) is None


def test_one_message__the_model_and_the_scrape_say_the_same(db, client, caplog):
    """A stored row the scrape leaves out is logged with the model's own message."""
    MetricDefinition.objects.bulk_create(
        [MetricDefinition(name="target.info", source="constant", value=1)]
    )
    stored = MetricDefinition.objects.get(name="target.info")
    with pytest.raises(ValidationError) as refused:
        stored.full_clean()
    (message,) = refused.value.message_dict["name"]
    with caplog.at_level(logging.WARNING, logger="metricdemo"):
        assert client.get("/metrics").status_code == 200
    logged = [r.getMessage() for r in caplog.records if "target.info" in r.getMessage()]
    assert logged == [f"Metric target.info is left out of the export: name: {message}"]
