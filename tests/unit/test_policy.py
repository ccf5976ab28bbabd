"""Unit tests for metricdemo.policy: which models, lookups and settings may be read."""

import pytest
from django.contrib.auth.models import User
from django.test import override_settings

from metricdemo import policy
from tests.shop.models import Customer, Order, VipCustomer, Voucher


def test_model_refusal__excluded_models_and_their_proxies():
    assert policy.model_refusal(Customer) is None
    with override_settings(METRICDEMO={"ROW_COUNT_EXCLUDED_MODELS": ["shop"]}):
        assert "shop.Customer" in policy.model_refusal(Customer)
        assert "shop.VipCustomer" in policy.model_refusal(VipCustomer)


@override_settings(METRICDEMO={"ROW_COUNT_MODELS": []})
def test_model_refusal__an_empty_list_allows_nothing():
    assert "allows only none" in policy.model_refusal(Order)
    assert policy.allowed_models() == []


@pytest.mark.parametrize(
    ("model", "path"),
    [
        (Order, "status"),
        (Order, "created__year"),
        (Order, "customer"),
        (Order, "customer__gt"),
        (Order, "customer__name__icontains"),
        (Customer, "vouchers__label"),
        (Order, "pk"),
    ],
)
def test_lookup_refusal__allows_plain_fields_transforms_and_relations(model, path):
    assert policy.lookup_refusal(model, path) is None


@pytest.mark.parametrize(
    ("model", "path", "name"),
    [
        # pk is the field it stands for.
        (Voucher, "pk", "key"),
        (Customer, "vouchers__pk", "key"),
        # A relation compared as a whole compares the related model's key.
        (Customer, "vouchers", "key"),
        (Customer, "vouchers__in", "key"),
        # Transforms and JSON keys after the last field are names too.
        (Order, "status__secret_key", "secret_key"),
        (User, "password__startswith", "password"),
    ],
)
def test_lookup_refusal__refuses_sensitive_names_anywhere_on_the_path(
    model, path, name
):
    refusal = policy.lookup_refusal(model, path)
    assert f"{path!r} touches {name!r}" in refusal


def test_lookup_refusal__refuses_paths_through_excluded_models():
    refusal = policy.lookup_refusal(User, "logentry__action_flag")
    assert "goes through admin.LogEntry" in refusal


def test_row_count_refusals__keyed_by_field():
    assert policy.row_count_refusals(Order, {"status": "paid"}, "status") == {}
    refusals = policy.row_count_refusals(
        User, {"is_active": True, "password": "x", "last_name__secret": 1}, "password"
    )
    assert sorted(refusals) == ["filters", "group_by"]
    assert "'password'" in refusals["filters"]
    # A refused model is the only reason given: its fields do not matter.
    with override_settings(METRICDEMO={"ROW_COUNT_EXCLUDED_MODELS": ["auth.User"]}):
        assert list(policy.row_count_refusals(User, {"password": 1}, "")) == ["model"]


def test_row_count_refusals__filters_that_are_not_a_mapping_are_left_to_validation():
    assert policy.row_count_refusals(Order, ["password"], "") == {}


@pytest.mark.parametrize(
    ("path", "part"),
    [
        ("SECRET_KEY", "SECRET_KEY"),
        ("DATABASES.default.PASSWORD", "PASSWORD"),
        ("CACHES.default.KEY_PREFIX", "KEY_PREFIX"),
        ("SOCIAL.github.client_secret", "client_secret"),
    ],
)
def test_setting_refusal__any_secret_part_refuses_the_path(path, part):
    assert f"({part!r} matches" in policy.setting_refusal(path)


@pytest.mark.parametrize("path", ["SESSION_COOKIE_AGE", "CACHES.default.TIMEOUT"])
def test_setting_refusal__allows_other_paths_by_default(path):
    assert policy.setting_refusal(path) is None


@override_settings(METRICDEMO={"ALLOWED_SETTINGS": ["CACHES.default"]})
def test_setting_refusal__an_entry_is_a_whole_path_prefix():
    assert policy.setting_refusal("CACHES.default.TIMEOUT") is None
    assert policy.setting_refusal("CACHES.default") is None
    assert "allows only CACHES.default" in policy.setting_refusal("CACHES.defaults")
    assert "allows only" in policy.setting_refusal("CACHES")
