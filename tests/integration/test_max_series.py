"""A definition's series are bounded: a grouped count never reads past max_series."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import models
from django.test import override_settings
from django.test.utils import isolate_apps
from django.urls import reverse

from metricdemo import policy, rowquery, validators
from metricdemo.evaluation import evaluate
from metricdemo.models import MetricDefinition
from metricdemo.values.shared_cache import cache_key
from tests.commands import metrics, table, write
from tests.queries import all_queries
from tests.refusals import form_data
from tests.scraping import evaluations, scrape, series, value

# Row counts run on worker threads with their own connections: commit the rows.
pytestmark = pytest.mark.django_db(transaction=True)

PREVIEW_URL = reverse("admin:metricdemo_metricdefinition_preview")
LIST_URL = reverse("admin:metricdemo_metricdefinition_changelist")
LIMIT_RE = re.compile(r"\bLIMIT\s+(\d+)", re.IGNORECASE)


#: A count of the orders fixture grouped by its 3 statuses.
BY_STATUS = {
    "name": "orders.by_status",
    "source": "row_count",
    "model": "shop.Order",
    "group_by": "status",
}
#: A count of the customers fixture grouped by its 30 countries.
BY_COUNTRY = {
    "name": "customers.by_country",
    "source": "row_count",
    "model": "shop.Customer",
    "group_by": "country",
}


def by_status(**fields) -> MetricDefinition:
    """Return an unsaved grouped count of the orders fixture's 3 statuses."""
    return MetricDefinition(**{**BY_STATUS, **fields})


@pytest.fixture
def customers(db):
    """Create 60 customers in 30 countries: 30 groups of two."""
    from tests.shop.models import Customer

    Customer.objects.bulk_create(
        Customer(name=f"c{i}", country=f"{i % 30:02d}") for i in range(60)
    )


# Enforced in the query


def test_compute_rows__over_the_bound_is_left_out_and_reads_one_group_more(
    client, customers, orders, define
):
    define(**BY_COUNTRY, max_series=5)
    define(name="orders.all", source="row_count", model="shop.Order")
    define(**BY_STATUS)
    with all_queries() as statements:
        families = scrape(client)
    assert "customers_by_country" not in families
    # The other definitions of the same statement still export.
    assert value(families, "orders_all") == 6.0
    assert len(series(families, "orders_by_status")) == 3
    assert evaluations(families, "customers.by_country") == {"error": 1.0}
    assert evaluations(families, "orders.by_status") == {"success": 1.0}
    (counts,) = [s for s in statements if "UNION ALL" in s]
    # One bound for the whole statement, the sum of its passes' bounds: 5 + 1
    # for the countries, 1000 + 1 for the statuses, 1 row for the ungrouped
    # count. The 30 + 3 + 1 rows stay below it, so no pass was cut short.
    assert [int(n) for n in LIMIT_RE.findall(counts)] == [1008]


def counting_statements(statements: list[str]) -> list[list[int]]:
    """Return the LIMITs of each statement that computes row-based definitions."""
    return [
        [int(n) for n in LIMIT_RE.findall(s)]
        for s in statements
        if "metricdemo_changestamp" not in s
        and "metricdemo_metricdefinition" not in s
        and "LIMIT" in s
    ]


def test_compute_rows__a_statement_that_reaches_its_bound_reads_each_pass_bounded(
    client, customers, orders, define
):
    """The whole statement's LIMIT may cut any pass short; then each gets its own."""
    rowquery.clear_plans()
    define(**BY_COUNTRY, max_series=5)
    define(name="orders.all", source="row_count", model="shop.Order")
    with all_queries() as statements:
        families = scrape(client)
    # 30 countries + 1 row reach the statement's LIMIT of 5 + 1 + 1: it runs
    # again with a LIMIT of 5 + 1 on the countries alone.
    assert counting_statements(statements) == [[7], [6]]
    assert value(families, "orders_all") == 6.0
    assert "customers_by_country" not in families
    # While a pass is over its bound, scrapes start with the bounded form.
    with all_queries() as statements:
        families = scrape(client)
    assert counting_statements(statements) == [[6]]
    assert value(families, "orders_all") == 6.0

    from tests.shop.models import Customer

    # Down to 5 countries: 00, 01 and the orders' DE, FR and none.
    gone = [f"c{i}" for i in range(60) if i % 30 > 1]
    Customer.objects.filter(name__in=gone).delete()
    with all_queries() as statements:
        families = scrape(client)
    assert counting_statements(statements) == [[6]]
    assert len(series(families, "customers_by_country")) == 5
    # Back within its bound: the next scrape is one statement with one LIMIT.
    with all_queries() as statements:
        families = scrape(client)
    assert counting_statements(statements) == [[7]]
    assert len(series(families, "customers_by_country")) == 5
    assert value(families, "orders_all") == 6.0


def test_compute_rows__the_error_names_the_model_field_and_bound(customers):
    result = evaluate(MetricDefinition(**BY_COUNTRY, max_series=29))
    assert result.outcome == "error"
    assert result.observations == []
    assert result.error == (
        "shop.Customer grouped by country has more than 29 groups (max_series); "
        "group by a field with fewer distinct values or raise max series."
    )


def test_compute_rows__a_lone_grouped_count_is_bounded_too(customers):
    with all_queries() as statements:
        result = evaluate(MetricDefinition(**BY_COUNTRY, max_series=3))
    assert result.outcome == "error"
    assert [int(n) for s in statements for n in LIMIT_RE.findall(s)] == [4]


def test_compute_rows__exactly_the_bound_exports_every_group(client, customers, define):
    define(**BY_COUNTRY, max_series=30)
    families = scrape(client)
    found = series(families, "customers_by_country")
    assert len(found) == 30
    assert set(found.values()) == {2.0}
    assert all("otel_metric_overflow" not in dict(labels) for labels in found)


def test_compute_rows__null_is_a_group_like_the_others(client, orders, define):
    """The orders fixture's customers are in DE, FR and NULL: three groups."""
    define(
        name="orders.by_country",
        source="row_count",
        model="shop.Order",
        group_by="customer__country",
        max_series=2,
    )
    define(**BY_STATUS, max_series=3)
    families = scrape(client)
    assert "orders_by_country" not in families
    assert len(series(families, "orders_by_status")) == 3


def test_compute_rows__a_lower_cardinality_limit_lowers_every_bound(
    client, orders, define
):
    """A definition saved before the limit was lowered errs rather than overflows."""
    define(**BY_STATUS)
    define(name="orders.all", source="row_count", model="shop.Order")
    with override_settings(METRICDEMO={"CARDINALITY_LIMIT": 2}):
        families = scrape(client)
        result = evaluate(MetricDefinition.objects.get(name="orders.by_status"))
    assert "orders_by_status" not in families
    assert value(families, "orders_all") == 6.0
    assert "more than 2 groups" in result.error


def test_compute_rows__the_failure_is_logged_once(client, orders, define, caplog):
    define(**{**BY_STATUS, "name": "orders.logged_once"}, max_series=2)
    with caplog.at_level(logging.WARNING, logger="metricdemo"):
        for _ in range(3):
            scrape(client)
    logged = [
        r.getMessage() for r in caplog.records if "orders.logged_once" in r.getMessage()
    ]
    assert len(logged) == 1
    assert "more than 2 groups (max_series)" in logged[0]


# Shown where evaluation errors are shown


def test_admin__preview_and_values_column_show_the_error(admin_client, orders, define):
    response = admin_client.post(
        PREVIEW_URL,
        form_data(**BY_STATUS, max_series=2),
    )
    assert response.context["evaluation"].outcome == "error"
    assert "more than 2 groups (max_series)" in response.context["evaluation"].error
    define(**BY_STATUS, max_series=2)
    response = admin_client.get(LIST_URL)
    admin = response.context["cl"].model_admin
    (shown,) = [admin.current_value(d) for d in response.context["cl"].result_list]
    assert "more than 2 groups (max_series)" in shown


def test_admin__max_series_is_edited_in_the_scraping_fieldset(admin_client):
    response = admin_client.post(
        reverse("admin:metricdemo_metricdefinition_add"),
        form_data(name="orders.n", value="1", max_series="50"),
    )
    assert response.status_code == 302
    assert MetricDefinition.objects.get(name="orders.n").max_series == 50
    page = admin_client.get(reverse("admin:metricdemo_metricdefinition_add"))
    fieldsets = {
        str(name): opts["fields"] for name, opts in page.context["adminform"].fieldsets
    }
    assert "max_series" in fieldsets["Scraping"]


# Refused when validated


@pytest.mark.parametrize(
    ("model", "group_by", "field"),
    [
        ("shop.Order", "id", "id"),
        ("shop.Order", "pk", "id"),
        ("shop.Order", "customer__id", "id"),
        ("shop.Order", "customer__pk", "id"),
        ("auth.User", "username", "username"),
        ("auth.Group", "user__username", "username"),
        ("shop.Customer", "order", "id"),
    ],
)
# With no personal-field patterns, so that the unique rule speaks for username.
@override_settings(METRICDEMO={"PERSONAL_FIELDS": []})
def test_group_by__a_unique_field_is_refused(model, group_by, field):
    definition = MetricDefinition(
        name="per.row", source="row_count", model=model, group_by=group_by
    )
    with pytest.raises(ValidationError) as info:
        definition.full_clean()
    (message,) = info.value.message_dict["group_by"]
    assert repr(group_by) in message and repr(field) in message
    assert "one series per row" in message


@pytest.mark.parametrize(
    ("model", "group_by"),
    [
        ("shop.Order", "status"),
        ("shop.Order", "customer"),
        ("shop.Order", "customer__country"),
        ("auth.User", "groups"),
        ("auth.User", "is_staff"),
        ("shop.Order", "created__year"),
    ],
)
def test_group_by__shared_values_are_allowed(model, group_by):
    MetricDefinition(
        name="per.kind", source="row_count", model=model, group_by=group_by
    ).full_clean()


@isolate_apps("tests.shop")
def test_group_by_refusal__unique_fields_one_to_one_and_unique_constraints():
    class Account(models.Model):  # noqa: DJ008
        email = models.EmailField(unique=True)
        handle = models.CharField(max_length=20)
        plan = models.CharField(max_length=20)

        class Meta:
            app_label = "shop"
            constraints = [
                models.UniqueConstraint(fields=["handle"], name="one_handle"),
                models.UniqueConstraint(fields=["plan", "handle"], name="pair"),
            ]

    class Profile(models.Model):  # noqa: DJ008
        account = models.OneToOneField(Account, on_delete=models.CASCADE)
        owner = models.ForeignKey(
            Account, models.CASCADE, unique=True, related_name="+"
        )
        shared = models.ForeignKey(Account, models.CASCADE, related_name="+")

        class Meta:
            app_label = "shop"

    for path in ("email", "handle", "pk", "id", "profile"):
        assert repr(path) in policy.group_by_refusal(Account, path), path
    assert policy.group_by_refusal(Account, "plan") is None
    for path in ("account", "owner", "account__email", "shared__id", "account_id"):
        assert repr(path) in policy.group_by_refusal(Profile, path), path
    for path in ("shared", "shared__plan", "account__plan", "nope", "email__lower"):
        assert policy.group_by_refusal(Profile, path) is None, path


def test_group_by__a_stored_unique_group_by_stops_exporting(client, orders, define):
    define(name="orders.all", source="row_count", model="shop.Order")
    MetricDefinition.objects.create(
        name="orders.per_row", source="row_count", model="shop.Order", group_by="id"
    )
    families = scrape(client)
    assert "orders_per_row" not in families
    assert value(families, "orders_all") == 6.0
    assert evaluations(families, "orders.per_row") == {"error": 1.0}
    result = evaluate(MetricDefinition.objects.get(name="orders.per_row"))
    assert "'id'" in result.error and "one series per row" in result.error


@pytest.mark.parametrize("bad", [0, -1, 20001])
def test_max_series__outside_one_to_the_cardinality_limit_is_refused(bad):
    definition = by_status(max_series=bad)
    with pytest.raises(ValidationError) as info:
        definition.full_clean()
    assert str(bad) in " ".join(info.value.message_dict["max_series"])


def test_max_series__follows_a_changed_cardinality_limit():
    with override_settings(METRICDEMO={"CARDINALITY_LIMIT": 50}):
        with pytest.raises(ValidationError) as info:
            by_status(max_series=51).full_clean()
        assert "50" in info.value.message_dict["max_series"][0]
        by_status(max_series=50).full_clean()
        # The default never exceeds the limit, so a new definition still saves.
        default = MetricDefinition()
        assert default.max_series == 50
        by_status(max_series=default.max_series).full_clean()
    assert MetricDefinition().max_series == 1000


def test_max_series__empty_means_the_default(client, orders, define):
    define(
        **BY_STATUS,
        max_series=None,
    )
    assert len(series(scrape(client), "orders_by_status")) == 3


# Carried by export, import and the cache key


def test_export__writes_max_series_only_when_set(define, tmp_path):
    define(name="bounded", source="constant", value=1, max_series=50)
    define(name="plain", source="constant", value=1)
    first = metrics("export")
    entries = {e["name"]: e for e in json.loads(first)["definitions"]}
    assert entries["bounded"]["max_series"] == 50
    assert "max_series" not in entries["plain"]
    MetricDefinition.objects.all().delete()
    metrics("import", write(tmp_path, first))
    assert MetricDefinition.objects.get(name="bounded").max_series == 50
    assert MetricDefinition.objects.get(name="plain").max_series == 1000
    assert metrics("export") == first


def test_import__an_old_file_without_max_series_imports_unchanged(db, tmp_path):
    document = {
        "version": 1,
        "definitions": [
            {
                "name": "orders.by_status",
                "source": "row_count",
                "model": "shop.Order",
                "group_by": "status",
            }
        ],
    }
    report = metrics("import", write(tmp_path, document))
    assert report.splitlines()[-1].endswith(
        "1 created, 0 changed, 0 unchanged, 0 deleted."
    )
    assert MetricDefinition.objects.get().max_series == 1000
    report = metrics("import", write(tmp_path, document))
    assert report.splitlines()[-1].endswith(
        "0 created, 0 changed, 1 unchanged, 0 deleted."
    )


def test_import__max_series_is_validated(db, tmp_path):
    document = {
        "definitions": [
            {"name": "x", "source": "constant", "value": 1, "max_series": 0}
        ]
    }
    with pytest.raises(CommandError, match="max_series"):
        metrics("import", write(tmp_path, document))
    assert not MetricDefinition.objects.exists()


def test_cache_key__changes_with_max_series():
    assert cache_key(by_status(max_series=5)) != cache_key(by_status(max_series=6))


def test_check_command__prints_the_error_and_fails(orders, define):
    define(**BY_STATUS, max_series=2)
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 of 1 enabled definitions failed"):
        call_command("metrics", "check", stdout=out, stderr=io.StringIO())
    rows = {row[0]: row[1:] for row in table(out.getvalue())[1:]}
    assert rows["orders.by_status"][0] == "error"
    assert "more than 2 groups (max_series)" in out.getvalue()


def test_callback__more_series_than_max_series_is_left_out(client, define, callback):
    callback("test.shards", lambda: [(1, {"shard": str(i)}) for i in range(4)])
    define(
        name="shards.bounded", source="callback", callback="test.shards", max_series=3
    )
    define(name="shards.fits", source="callback", callback="test.shards", max_series=4)
    families = scrape(client)
    assert "shards_bounded" not in families
    assert len(series(families, "shards_fits")) == 4
    result = evaluate(MetricDefinition.objects.get(name="shards.bounded"))
    assert result.error == (
        "Callback test.shards returned 4 series, more than 3 (max_series); "
        "return fewer series or raise max series."
    )


@pytest.mark.parametrize(
    ("stored", "bound"), [(None, 1000), (0, 1000), (-3, 1000), (7, 7), (30000, 20000)]
)
def test_max_series_bound__empty_or_bad_is_the_default_and_never_above_the_limit(
    stored, bound
):
    assert validators.max_series_bound(stored) == bound
