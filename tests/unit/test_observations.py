"""Unit tests for metricdemo.observations: normalize_result and constant attributes."""

from decimal import Decimal
from types import MappingProxyType

import pytest

from metricdemo.models import MetricDefinition
from metricdemo.observations import (
    EvaluationError,
    normalize_result,
    with_constant_attributes,
)


@pytest.mark.parametrize(
    ("result", "number"),
    [(3, 3.0), (2.5, 2.5), (-1, -1.0), (Decimal("1.25"), 1.25), (True, 1.0)],
)
def test_normalize_result__a_number_is_one_series(result, number):
    observations = normalize_result(result)
    assert observations == [(number, {})]
    assert type(observations[0][0]) is float


def test_normalize_result__false_is_zero():
    assert normalize_result(False) == [(0.0, {})]


@pytest.mark.parametrize(
    "result",
    [
        [(1, {"queue": "a"}), (2, {"queue": "b"})],
        ((1, {"queue": "a"}), (2, {"queue": "b"})),
        (pair for pair in [(1, {"queue": "a"}), (2, {"queue": "b"})]),
        [[1, {"queue": "a"}], [True + 1, {"queue": "b"}]],
    ],
    ids=["list", "tuple", "generator", "lists-and-bool-arithmetic"],
)
def test_normalize_result__pairs_are_one_series_each(result):
    assert normalize_result(result) == [(1.0, {"queue": "a"}), (2.0, {"queue": "b"})]


def test_normalize_result__no_pairs_is_no_series():
    assert normalize_result([]) == []


def test_normalize_result__attributes_are_copied_into_plain_dicts():
    """A callback may reuse its mapping; the observation keeps its own copy."""
    shared = {"queue": "a"}
    observations = normalize_result([(1, shared), (2, MappingProxyType(shared))])
    shared["queue"] = "changed"
    assert observations == [(1.0, {"queue": "a"}), (2.0, {"queue": "a"})]
    assert all(type(attributes) is dict for _, attributes in observations)


@pytest.mark.parametrize(
    "result", ["3", b"3", {"value": 3}, None, object()], ids=lambda r: type(r).__name__
)
def test_normalize_result__refuses_shapes_that_are_not_numbers_or_pairs(result):
    with pytest.raises(EvaluationError) as info:
        normalize_result(result)
    message = str(info.value)
    assert repr(result) in message
    assert "return a number or an iterable of (value, attributes) pairs" in message


@pytest.mark.parametrize("result", [float("nan"), float("inf"), float("-inf")])
def test_normalize_result__refuses_numbers_that_are_not_finite(result):
    with pytest.raises(EvaluationError, match="unusable value"):
        normalize_result(result)


@pytest.mark.parametrize(
    ("item", "detail"),
    [
        (1, "cannot unpack"),
        ((1, {}, 2), "too many values"),
        (("1", {}), "expected a number"),
        ((float("nan"), {}), "finite"),
        ((1, ["queue"]), "queue"),
        ((1, {"queue": [1]}), "queue"),
        ((1, {"": 1}), "''"),
        ((1, {"otel_scope_name": "x"}), "otel_scope_name"),
    ],
)
def test_normalize_result__refuses_items_that_are_not_pairs(item, detail):
    with pytest.raises(EvaluationError) as info:
        normalize_result([(1, {}), item])
    message = str(info.value)
    assert f"the item {item!r}" in message
    assert detail in message


@pytest.mark.parametrize("result", [10**400, [(10**400, {})]], ids=["number", "pair"])
def test_normalize_result__an_int_too_large_for_a_float_is_refused(result):
    with pytest.raises(EvaluationError):
        normalize_result(result)


def test_with_constant_attributes__adds_them_to_every_series():
    definition = MetricDefinition(attributes={"region": "eu"})
    observed = with_constant_attributes(definition, [(1.0, {}), (2.0, {"q": "a"})])
    assert observed == [(1.0, {"region": "eu"}), (2.0, {"region": "eu", "q": "a"})]


@pytest.mark.parametrize("attributes", [{}, None])
def test_with_constant_attributes__none_leaves_the_observations_as_they_are(
    attributes,
):
    observations = [(1.0, {"q": "a"})]
    definition = MetricDefinition(attributes=attributes)
    assert with_constant_attributes(definition, observations) is observations
