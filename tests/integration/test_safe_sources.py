"""Safe sources: definitions cannot read what their editor could not otherwise see."""

import sys
import warnings

import pytest
from django.core.exceptions import ValidationError
from django.db import models
from django.test import override_settings
from django.test.utils import isolate_apps

from metricdemo import policy
from metricdemo.conf import DEFAULTS
from metricdemo.evaluation import evaluate
from metricdemo.models import MetricDefinition
from tests.scraping import scrape, series, value

pytestmark = pytest.mark.django_db


def refusal(**fields) -> dict[str, list[str]]:
    """Return full_clean()'s messages by field for a definition with these fields."""
    definition = MetricDefinition(name="x", **fields)
    with pytest.raises(ValidationError) as info:
        definition.full_clean()
    return info.value.message_dict


def row_count(**fields) -> MetricDefinition:
    """Return a validated, unsaved row-count definition."""
    definition = MetricDefinition(name="x", source="row_count", **fields)
    definition.full_clean()
    return definition


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("password", "*password*"),
        ("old_password_hash", "*password*"),
        ("api_key", "*_key"),
        ("ApiKey", "*apikey*"),
        ("key", "key"),
        ("key_id", "key_*"),
        ("aws_key_id", "*_key_*"),
        ("session_key", "*_key"),
        ("session_data", "session_data"),
        ("access_token", "*token*"),
        ("client_secret", "*secret*"),
        ("SECRET_KEY", "*secret*"),
        ("EMAIL_HOST_PASSWORD", "*password*"),
        ("monkey", None),
        ("keyboard", None),
        ("status", None),
        ("is_active", None),
    ],
)
def test_sensitive_names(name, pattern):
    assert policy.sensitive_match(name) == pattern


def test_every_model_but_the_excluded_may_be_counted_by_default():
    allowed = policy.allowed_models()
    assert {"auth.User", "auth.Group", "shop.Order", "shop.Voucher"} <= set(allowed)
    assert "sessions.Session" not in allowed
    assert "admin.LogEntry" not in allowed


@override_settings(METRICDEMO={"ROW_COUNT_MODELS": ["shop.Order", "auth"]})
def test_row_count_models__narrows_to_listed_models_and_apps():
    row_count(model="shop.Order")
    row_count(model="auth.User", group_by="is_staff")
    messages = refusal(source="row_count", model="shop.Customer")["model"]
    assert "shop.Customer" in messages[0] and "shop.Order, auth" in messages[0]
    # A lookup may not reach a model that is not listed either.
    messages = refusal(source="row_count", model="shop.Order", group_by="customer")
    assert "goes through shop.Customer" in messages["group_by"][0]


@override_settings(METRICDEMO={"ROW_COUNT_EXCLUDED_MODELS": ["shop.Customer"]})
def test_excluded_models__a_proxy_shares_its_concrete_model_fate():
    messages = refusal(source="row_count", model="shop.VipCustomer")["model"]
    assert "shop.VipCustomer" in messages[0] and "shop.Customer" in messages[0]
    # Replacing the list lifts the default exclusions.
    row_count(model="sessions.Session")


@override_settings(METRICDEMO={"ROW_COUNT_EXCLUDED_MODELS": []})
@pytest.mark.parametrize(
    "filters",
    [
        {"session_key__startswith": "a"},
        {"session_data__contains": "_auth_user_id"},
        {"pk__startswith": "a"},
    ],
)
def test_counting_sessions_still_never_reads_their_keys_or_data(filters):
    row_count(model="sessions.Session", filters={"expire_date__isnull": False})
    messages = refusal(source="row_count", model="sessions.Session", filters=filters)
    assert next(iter(filters)) in messages["filters"][0]


def test_a_relation_is_safe_when_the_path_moves_on_from_it():
    row_count(model="shop.Customer", filters={"vouchers__label": "ci"})
    row_count(model="shop.Customer", group_by="vouchers__label")
    messages = refusal(source="row_count", model="shop.Customer", group_by="vouchers")
    assert "'key'" in messages["group_by"][0]


@override_settings(METRICDEMO={"SENSITIVE_FIELDS": ["country", "*_pin"]})
def test_sensitive_fields__adds_to_the_built_in_patterns():
    messages = refusal(
        source="row_count", model="shop.Order", group_by="customer__country"
    )
    assert "'country'" in messages["group_by"][0]
    assert (
        "password"
        in refusal(source="row_count", model="auth.User", filters={"password": "x"})[
            "filters"
        ][0]
    )
    row_count(model="shop.Order", group_by="status")


@override_settings(
    METRICDEMO={"ALLOWED_SETTINGS": ["SESSION_COOKIE_AGE", "CACHES"]},
    CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
)
def test_allowed_settings__narrows_to_listed_paths():
    MetricDefinition(
        name="x", source="setting", setting="SESSION_COOKIE_AGE"
    ).full_clean()
    messages = refusal(source="setting", setting="DEBUG")["setting"]
    assert "DEBUG" in messages[0] and "SESSION_COOKIE_AGE, CACHES" in messages[0]
    assert policy.suggested_settings() == ["SESSION_COOKIE_AGE"]


@override_settings(
    METRICDEMO={"ALLOWED_SETTINGS": ["CACHES"]},
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "TIMEOUT": 600,
        }
    },
)
def test_allowed_settings__an_entry_allows_the_keys_below_it():
    MetricDefinition(
        name="x", source="setting", setting="CACHES.default.TIMEOUT"
    ).full_clean()


@override_settings(
    METRICDEMO={"ALLOWED_SETTINGS": ["PASSWORD_RESET_TIMEOUT"]},
)
def test_a_secret_looking_setting_is_refused_even_when_listed():
    messages = refusal(source="setting", setting="PASSWORD_RESET_TIMEOUT")["setting"]
    assert "looks secret" in messages[0]


def test_suggested_settings_are_numeric_and_not_secret():
    suggested = policy.suggested_settings()
    assert "SESSION_COOKIE_AGE" in suggested and "DEBUG" in suggested
    assert "SECRET_KEY" not in suggested and "TIME_ZONE" not in suggested
    assert "PASSWORD_RESET_TIMEOUT" not in suggested


def test_suggested_settings_read_no_setting_through_its_deprecation_warning():
    """Django 6.1 warns on reading EMAIL_*; listing suggestions is not reading."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        suggested = policy.suggested_settings()
    assert "SESSION_COOKIE_AGE" in suggested


def test_the_default_lists_are_documented_values():
    assert DEFAULTS["ROW_COUNT_MODELS"] == "__all__"
    assert DEFAULTS["ALLOWED_SETTINGS"] == "__all__"
    assert "sessions.Session" in DEFAULTS["ROW_COUNT_EXCLUDED_MODELS"]
    assert "admin.LogEntry" in DEFAULTS["ROW_COUNT_EXCLUDED_MODELS"]


def test_a_callback_name_is_never_imported(tmp_path, monkeypatch):
    """A dotted path typed as a callback is looked up, never imported."""
    (tmp_path / "metricdemo_tripwire.py").write_text(
        "raise SystemExit('metricdemo imported a module named in a definition')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    messages = refusal(source="callback", callback="metricdemo_tripwire.run")
    assert "metricdemo_tripwire.run" in messages["callback"][0]
    stored = MetricDefinition.objects.create(
        name="x", source="callback", callback="metricdemo_tripwire.run"
    )
    assert "No callback is registered" in evaluate(stored).error
    assert "metricdemo_tripwire" not in sys.modules


# Evaluation: a definition stored before a rule tightened, or saved without
# validation, stops exporting instead of leaking.


@pytest.mark.django_db(transaction=True)
def test_a_stored_definition_stops_when_a_rule_tightens(client, define, orders):
    define(
        name="shop.orders.by_country",
        source="row_count",
        model="shop.Order",
        group_by="customer__country",
    )
    assert series(scrape(client), "shop_orders_by_country")
    with override_settings(METRICDEMO={"SENSITIVE_FIELDS": ["country"]}):
        assert "shop_orders_by_country" not in scrape(client)
        stored = MetricDefinition.objects.get(name="shop.orders.by_country")
        result = evaluate(stored)
        assert not result.ok and "'country'" in result.error
    assert series(scrape(client), "shop_orders_by_country")


@pytest.mark.django_db(transaction=True)
def test_definitions_saved_without_validation_never_leak(client, django_user_model):
    django_user_model.objects.create_user("ops", password="hunter2")
    leaks = [
        MetricDefinition(
            name="leak.password",
            source="row_count",
            model="auth.User",
            filters={"password__startswith": "md5$"},
        ),
        MetricDefinition(
            name="leak.session", source="row_count", model="sessions.Session"
        ),
        MetricDefinition(name="leak.secret", source="setting", setting="SECRET_KEY"),
        MetricDefinition(name="fine", source="row_count", model="auth.User"),
    ]
    MetricDefinition.objects.bulk_create(leaks)
    families = scrape(client)
    assert value(families, "fine") == 1.0
    for name in ("leak_password", "leak_session", "leak_secret"):
        assert name not in families
    errors = {d.name: evaluate(d).error for d in leaks}
    assert "password" in errors["leak.password"]
    assert "sessions.Session" in errors["leak.session"]
    assert "looks secret" in errors["leak.secret"]


# Identity fields: never grouped, filtered only for "is it empty"


@pytest.mark.parametrize(
    ("name", "caught"),
    [
        ("email", True),
        ("email_address", True),
        ("ip_address", True),
        ("billing_address", True),
        ("phone", True),
        ("mobile_phone_number", True),
        ("ip", True),
        ("client_ip", True),
        ("first_name", True),
        ("last_name", True),
        ("username", True),
        ("description", False),
        ("shipping", False),
        ("tip", False),
        ("zip", False),
        ("name", False),
        ("status", False),
        ("is_staff", False),
    ],
)
def test_personal_fields__default_patterns(name, caught):
    assert bool(policy.sensitive_match(name, DEFAULTS["PERSONAL_FIELDS"])) == caught


def test_personal_fields__no_demo_or_test_field_is_caught():
    """The defaults leave the fields of ordinary business models alone."""
    from django.apps import apps

    for app_label in ("shop", "metricdemo"):
        for model in apps.get_app_config(app_label).get_models():
            for field in model._meta.get_fields():
                assert not policy.identity_refusals(model, {}, field.name), field


@isolate_apps("tests.shop")
def test_identity_fields__by_type_whatever_their_name():
    class Person(models.Model):
        contact = models.EmailField(unique=True)
        origin = models.GenericIPAddressField()
        reference = models.UUIDField()
        shipping = models.CharField(max_length=10)

        class Meta:
            app_label = "shop"

        def __str__(self) -> str:
            return self.shipping

    class Ticket(models.Model):
        person = models.ForeignKey(Person, models.CASCADE, to_field="contact")

        class Meta:
            app_label = "shop"

        def __str__(self) -> str:
            return str(self.pk)

    for path in ("contact", "origin", "reference", "contact__lower"):
        assert (
            "identifies a person"
            in policy.identity_refusals(Person, {}, path)["group_by"]
        )
        assert policy.identity_refusals(Person, {f"{path}__startswith": "a"}, "")
        assert policy.identity_refusals(Person, {path: "a"}, "")
    for filters in ({"contact": ""}, {"contact__exact": ""}, {"origin__isnull": True}):
        assert policy.identity_refusals(Person, filters, "shipping") == {}
    # A relation compared by an identity field is one too.
    assert policy.identity_refusals(Ticket, {}, "person")
    assert policy.identity_refusals(Ticket, {"person__gt": "m"}, "")
    assert policy.identity_refusals(Ticket, {"person__isnull": False}, "") == {}
    assert policy.identity_refusals(Ticket, {}, "person__shipping") == {}


@override_settings(METRICDEMO={"PERSONAL_FIELDS": ["country"]})
def test_personal_fields__a_project_sets_its_own_patterns():
    row_count(model="auth.User", group_by="first_name")
    # An EmailField is an identity field whatever the patterns say.
    messages = refusal(source="row_count", model="auth.User", group_by="email")
    assert "EmailField" in messages["group_by"][0]
    messages = refusal(
        source="row_count", model="shop.Order", group_by="customer__country"
    )
    assert "PERSONAL_FIELDS" in messages["group_by"][0]


@pytest.mark.django_db(transaction=True)
def test_stored_definitions_grouped_by_an_identity_field_never_export(
    client, django_user_model
):
    django_user_model.objects.create_user("root-admin", "root-admin@example.com")
    leaks = [
        MetricDefinition(
            name="leak.emails", source="row_count", model="auth.User", group_by="email"
        ),
        MetricDefinition(
            name="leak.oracle",
            source="row_count",
            model="auth.User",
            filters={"email__startswith": "root"},
        ),
        MetricDefinition(name="fine", source="row_count", model="auth.User"),
    ]
    MetricDefinition.objects.bulk_create(leaks)
    families = scrape(client)
    assert value(families, "fine") == 1.0
    assert "leak_emails" not in families and "leak_oracle" not in families
    for leak in leaks[:2]:
        assert "identifies a person" in evaluate(leak).error
