"""Unit tests for metricdemo.routing: which model a label names, where it is read."""

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

from metricdemo import routing
from tests.shop.models import Order


@pytest.mark.parametrize(
    ("label", "model"),
    [("shop.Order", Order), ("shop.order", Order), ("auth.User", User)],
)
def test_resolve_model__finds_installed_models(label, model):
    assert routing.resolve_model(label) is model


@pytest.mark.parametrize("label", ["shop.Nope", "nope.Order", "shop", "", "a.b.c"])
def test_resolve_model__unknown_label_is_a_lookup_error_naming_it(label):
    with pytest.raises(LookupError) as info:
        routing.resolve_model(label)
    assert repr(label) in str(info.value)
    assert "for example auth.User" in str(info.value)


def test_model_database__the_router_unless_a_database_is_set():
    assert routing.model_database(Order) == "default"
    with override_settings(METRICDEMO={"DATABASE": "replica"}):
        assert routing.model_database(Order) == "replica"
