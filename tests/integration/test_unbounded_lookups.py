"""Lookups a backend cannot bound: refused on SQLite, cut by the server elsewhere."""

from __future__ import annotations

import logging
import sqlite3
import threading

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, connections
from django.test import Client
from django.urls import reverse

from metricdemo import rowquery
from metricdemo.database import statement_timeout
from metricdemo.models import MetricDefinition
from metricdemo.observations import EvaluationError
from metricdemo.policy import sqlite_functions
from tests.connections import on_a_thread, sqlite_connection
from tests.queries import all_queries
from tests.refusals import form_data
from tests.scraping import evaluations, parse, series
from tests.shop.models import Order

pytestmark = pytest.mark.django_db

PREVIEW_URL = reverse("admin:metricdemo_metricdefinition_preview")
ON_SQLITE = connection.vendor == "sqlite"

#: Lookups that SQLite would run through Python's re, on every row.
REGEX_FILTERS = [
    (MetricDefinition, {"name__regex": "^([a-z_.]+)+!"}),
    (MetricDefinition, {"description__iregex": "^(a+)+$"}),
    (MetricDefinition, {"attributes__region__regex": "^(e+)+$"}),
    (Order, {"customer__name__regex": "^(a+)+$"}),
    (Order, {"status": "paid", "customer__name__iregex": "x"}),
]
#: Lookups and transforms that SQLite runs in C, or in Python at a bounded
#: cost per row (date parts parse one date), which its progress handler can
#: interrupt between rows.
BOUNDED_FILTERS = [
    (Order, {"created__year": 2026}),
    (Order, {"created__month__in": [1, 2]}),
    (Order, {"created__date__gte": "2026-01-01"}),
    (Order, {"created__week_day": 2, "created__hour__lt": 12}),
    (Order, {"customer__name__icontains": "a", "status__startswith": "p"}),
    (Order, {"status__in": ["paid", "pending"], "status__iendswith": "D"}),
    (MetricDefinition, {"attributes__region": "eu"}),
]


@pytest.mark.parametrize(("model", "filters"), REGEX_FILTERS)
def test_unbounded_lookup_refusals__regex_on_sqlite(model, filters):
    refusals = sqlite_functions.unbounded_lookup_refusals(
        model, filters, "", connection=sqlite_connection()
    )
    (lookup,) = [key for key in filters if "regex" in key]
    assert set(refusals) == {"filters"}
    message = refusals["filters"]
    assert repr(lookup) in message
    assert "SQLite" in message
    for instead in ("contains", "startswith", "endswith", "in", "exact"):
        assert instead in message


@pytest.mark.parametrize(("model", "filters"), BOUNDED_FILTERS)
def test_unbounded_lookup_refusals__bounded_lookups_pass_on_sqlite(model, filters):
    assert (
        sqlite_functions.unbounded_lookup_refusals(
            model, filters, "", connection=sqlite_connection()
        )
        == {}
    )


@pytest.mark.parametrize("group_by", ["status", "created__month", "customer__name"])
def test_unbounded_lookup_refusals__group_by_on_sqlite(group_by):
    refusals = sqlite_functions.unbounded_lookup_refusals(
        Order, {}, group_by, connection=sqlite_connection()
    )
    assert refusals == {}


def test_python_functions__finds_calls_outside_quotes():
    sql = (
        'SELECT "t"."regexp", \'REPEAT(\' FROM "t" WHERE "t"."name" REGEXP %s '
        'AND django_datetime_extract(%s, "t"."created", %s, %s) = %s'
    )
    assert sqlite_functions.python_functions(sql) == {
        "regexp",
        "django_datetime_extract",
    }


def test_sqlite_functions__every_function_django_registers_is_classified():
    """A Django upgrade that adds a Python function to SQLite must classify it."""
    from django.db.backends.sqlite3 import _functions

    registered: set[str] = set()

    class Recorder:
        def create_function(self, name, *args, **kwargs):
            registered.add(name.lower())

        create_aggregate = create_function

        def execute(self, sql):
            # "SQLite lacks maths functions": so the fallbacks register too.
            return sqlite3.connect(":memory:").execute("SELECT 0")

    _functions.register(Recorder())
    assert registered - sqlite_functions.SQLITE_PYTHON_FUNCTIONS == set()
    assert "regexp" in registered


@pytest.mark.parametrize(("model", "filters"), REGEX_FILTERS[:1])
def test_regex_filter__refused_on_sqlite_when_validated(model, filters):
    definition = MetricDefinition(
        name="regex.count",
        source="row_count",
        model=model._meta.label,
        filters=filters,
    )
    if not ON_SQLITE:
        # The server bounds it: statement_timeout / max_statement_time.
        definition.full_clean()
        return
    with pytest.raises(ValidationError) as info:
        definition.full_clean()
    (message,) = info.value.message_dict["filters"]
    assert "'name__regex'" in message
    assert "for example" in message and "e.g." not in message


def test_preview__refuses_a_regex_on_sqlite_without_running_it(admin_client):
    with all_queries() as statements:
        response = admin_client.post(
            PREVIEW_URL,
            form_data(
                name="regex.preview",
                source="row_count",
                model="metricdemo.MetricDefinition",
                filters={"name__regex": "^([a-z_.]+)+!"},
            ),
        )
    assert response.status_code == 200
    ran_regex = [sql for sql in statements if "REGEXP" in sql or "~" in sql]
    if ON_SQLITE:
        assert response.context["evaluation"] is None
        assert "SQLite" in response.context["form"].errors["filters"][0]
        assert ran_regex == []
    else:
        assert response.context["evaluation"].ok
        assert ran_regex


@pytest.mark.django_db(transaction=True)
def test_stored_regex__left_out_on_sqlite_never_executed(client, caplog):
    """A row stored before the rule (or by raw SQL) is refused at scrape time."""
    MetricDefinition.objects.create(
        name="hostile.regex",
        source="row_count",
        model="metricdemo.MetricDefinition",
        filters={"description__regex": "^(a+)+$"},
        # Matched against itself: the 34 a's would hold SQLite a minute.
        description="a" * 34 + "!",
    )
    MetricDefinition.objects.create(name="fine", source="constant", value=1)
    caplog.set_level(logging.WARNING, logger="metricdemo")
    with all_queries() as statements:
        response = client.get("/metrics")
    assert response.status_code == 200
    families = parse(response.content.decode())
    assert series(families, "fine") == {frozenset(): 1.0}
    if ON_SQLITE:
        assert "hostile_regex" not in families
        assert evaluations(families, "hostile.regex") == {"error": 1.0}
        assert [sql for sql in statements if "REGEXP" in sql] == []
        messages = [r.getMessage() for r in caplog.records]
        (warning,) = [m for m in messages if "hostile.regex" in m]
        assert "SQLite" in warning and "description__regex" in warning
    else:
        assert series(families, "hostile_regex") == {frozenset(): 0.0}


#: Per server: a pattern and rows that keep its regex engine busy for far longer
#: than the definition's timeout. PostgreSQL's engine is nearly linear on the
#: classic ^(a+)+$ but quadratic on a back-reference over a long string (about
#: 6 s per 40,000 characters); MariaDB's PCRE2 stops each row at its match
#: limit (about 0.1 s), so many rows make the statement slow.
SLOW = {
    "postgresql": (r"^(.+)\1+$", "a" * 40_000 + "!", 4),
    "mysql": (r"^(a+)+$", "a" * 34 + "!", 60),
    "sqlite": (r"^(a+)+$", "a" * 34 + "!", 3),
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_slow_regex__never_holds_the_process(django_user_model):
    """SQLite refuses it; PostgreSQL and MariaDB cut it at the definition's timeout.

    While the scrape runs, the process answers another request.
    """
    pattern, text, rows = SLOW[connection.vendor]
    MetricDefinition.objects.bulk_create(
        MetricDefinition(
            name=f"slow.data.{i}", source="constant", value=1, enabled=False
        )
        for i in range(rows)
    )
    MetricDefinition.objects.filter(name__startswith="slow.data.").update(
        description=text
    )
    definition = MetricDefinition.objects.create(
        name="slow.regex",
        source="row_count",
        model="metricdemo.MetricDefinition",
        filters={"description__regex": pattern},
        timeout=1,
    )
    scraped = {}

    def scrape() -> None:
        try:
            scraped["response"] = Client().get("/metrics")
        finally:
            connections.close_all()

    thread = threading.Thread(target=scrape)
    thread.start()
    try:
        assert Client().get("/admin/login/").status_code == 200
    finally:
        thread.join(60)
    assert not thread.is_alive()
    response = scraped["response"]
    assert response.status_code == 200
    families = parse(response.content.decode())
    assert "slow_regex" not in families
    outcomes = evaluations(families, "slow.regex")
    assert set(outcomes) <= {"timeout", "error"} and outcomes, outcomes

    # The scrape stops waiting at the timeout; the database itself must also
    # stop the statement, or it would hold a connection and a thread for minutes.
    def count():
        with statement_timeout(connection, 1):
            return rowquery.compute_rows([definition])

    if ON_SQLITE:
        (refused,) = on_a_thread(count)
        assert isinstance(refused, EvaluationError) and "SQLite" in str(refused)
    else:
        with pytest.raises(DatabaseError) as cut:
            on_a_thread(count)
        assert CUT_BY[connection.vendor] in str(cut.value)


#: What the server says when its statement timeout cuts a statement.
CUT_BY = {"postgresql": "statement timeout", "mysql": "max_statement_time"}

INVALID_REGEX_ERRORS = {
    "postgresql": "parentheses",
    "mysql": "parenthesis",
    "sqlite": "SQLite",
}


def test_invalid_regex__the_message_names_the_regex_error():
    definition = MetricDefinition(
        name="regex.invalid",
        source="row_count",
        model="shop.Order",
        filters={"status__regex": "(unclosed"},
    )
    with pytest.raises(ValidationError) as info:
        definition.full_clean()
    (message,) = info.value.message_dict["filters"]
    assert "(unclosed" in message
    assert INVALID_REGEX_ERRORS[connection.vendor] in message
