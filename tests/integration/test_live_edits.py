"""Edits show on the next scrape, from this process or another, with no restart."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from metricdemo.models import MetricDefinition
from tests.processes import run_django
from tests.queries import all_queries
from tests.scraping import scrape, series, value

pytestmark = pytest.mark.django_db


def test_create_change_disable_enable_delete(client, define):
    assert "shop_orders" not in scrape(client)

    definition = define(name="shop.orders", source="constant", value=5)
    assert value(scrape(client), "shop_orders") == 5.0

    definition.value = 7
    definition.attributes = {"region": "eu"}
    definition.save()
    families = scrape(client)
    assert series(families, "shop_orders") == {frozenset({("region", "eu")}): 7.0}

    definition.enabled = False
    definition.save()
    assert "shop_orders" not in scrape(client)

    definition.enabled = True
    definition.save()
    assert value(scrape(client), "shop_orders", region="eu") == 7.0

    definition.delete()
    assert "shop_orders" not in scrape(client)


def test_changing_kind_unit_and_help_replaces_the_family(client, define):
    definition = define(
        name="shop.jobs",
        kind="gauge",
        source="constant",
        value=2,
        description="old help",
    )
    assert scrape(client)["shop_jobs"].type == "gauge"

    definition.kind = "counter"
    definition.description = "new help"
    definition.save()
    families = scrape(client)
    assert families["shop_jobs"].type == "counter"
    assert families["shop_jobs"].documentation == "new help"
    assert value(families, "shop_jobs_total") == 2.0

    definition.unit = "s"
    definition.save()
    families = scrape(client)
    assert "shop_jobs" not in families
    assert value(families, "shop_jobs_seconds_total") == 2.0


def test_each_edit_of_a_constant_shows_on_the_next_scrape(client, define):
    """Its value, attributes, description and unit, one at a time."""
    definition = define(
        name="shop.open",
        source="constant",
        value=2,
        attributes={"region": "eu"},
        description="Open orders",
    )
    assert series(scrape(client), "shop_open") == {frozenset({("region", "eu")}): 2}

    definition.value = 3
    definition.save()
    assert series(scrape(client), "shop_open") == {frozenset({("region", "eu")}): 3}

    definition.attributes = {"region": "us"}
    definition.save()
    assert series(scrape(client), "shop_open") == {frozenset({("region", "us")}): 3}

    definition.description = "Orders open now"
    definition.save()
    assert scrape(client)["shop_open"].documentation == "Orders open now"

    definition.unit = "s"
    definition.save()
    families = scrape(client)
    assert "shop_open" not in families
    assert families["shop_open_seconds"].documentation == "Orders open now"
    assert value(families, "shop_open_seconds", region="us") == 3.0


def test_rename_moves_the_series(client, define):
    definition = define(name="shop.old", source="constant", value=1)
    assert value(scrape(client), "shop_old") == 1.0
    definition.name = "shop.new"
    definition.save()
    families = scrape(client)
    assert "shop_old" not in families
    assert value(families, "shop_new") == 1.0


def test_queryset_bulk_writes_are_seen(client, define):
    define(name="a", source="constant", value=1)
    define(name="b", source="constant", value=2)
    assert value(scrape(client), "b") == 2.0

    MetricDefinition.objects.filter(name="b").update(value=20)
    assert value(scrape(client), "b") == 20.0

    MetricDefinition.objects.update(enabled=False)
    families = scrape(client)
    assert "a" not in families and "b" not in families

    MetricDefinition.objects.bulk_create(
        [MetricDefinition(name="c", source="constant", value=3)]
    )
    assert value(scrape(client), "c") == 3.0

    c = MetricDefinition.objects.get(name="c")
    c.value = 30
    MetricDefinition.objects.bulk_update([c], ["value"])
    assert value(scrape(client), "c") == 30.0

    MetricDefinition.objects.all().delete()
    assert "c" not in scrape(client)


# Row counts run on worker threads with their own connections: commit the rows.
@pytest.mark.django_db(transaction=True)
def test_row_count_follows_the_data(client, define, orders):
    from tests.shop.models import Order

    define(
        name="shop.pending",
        source="row_count",
        model="shop.Order",
        filters={"status": "pending"},
    )
    assert value(scrape(client), "shop_pending") == 3.0
    Order.objects.filter(status="pending").update(status="paid")
    assert value(scrape(client), "shop_pending") == 0.0


def settle(client) -> None:
    """Scrape until the definitions stay loaded, as in a process that has served.

    A process's first request adds django-prometheus's families, and its first
    scrape the app's own; the scrape after that judges the definitions against
    them once more, and so reloads them.
    """
    scrape(client)
    scrape(client)


# Outside a test transaction, as in a real scrape, so no savepoints are counted.
@pytest.mark.django_db(transaction=True)
def test_unchanged_definitions_cost_one_query_per_scrape(client, define, callback):
    callback("test.one", lambda: 1)
    for i in range(20):
        define(name=f"const.{i}", source="constant", value=i)
    define(name="from.callback", source="callback", callback="test.one")
    settle(client)
    # On every thread: the change check runs on its database's own thread.
    with all_queries() as queries:
        families = scrape(client)
    assert value(families, "const_19") == 19.0
    assert len(queries) == 1, queries
    assert "metricdemo_changestamp" in queries[0]


@pytest.mark.django_db(transaction=True)
def test_row_counts_run_off_the_scrape_thread(client, define, orders):
    """The scrape's own thread runs no query: a server that hangs cannot hold it.

    The change check runs on its database's thread, the counts on workers.
    """
    define(name="n1", source="row_count", model="shop.Order")
    define(name="n2", source="row_count", model="shop.Order", group_by="status")
    settle(client)
    with CaptureQueriesContext(connection) as queries:
        families = scrape(client)
    assert value(families, "n1") == 6.0
    assert value(families, "n2", status="pending") == 3.0
    assert len(queries) == 0, [q["sql"] for q in queries]


@pytest.mark.django_db(transaction=True)
def test_a_change_from_another_process_shows_here(client):
    """A subprocess creates, changes and deletes; each shows on the next scrape."""
    assert "other_process" not in scrape(client)

    run_django(
        "from metricdemo.models import MetricDefinition\n"
        "d = MetricDefinition(name='other.process', source='constant', value=3,\n"
        "                     attributes={'writer': 'subprocess'})\n"
        "d.full_clean(); d.save()\n"
    )
    assert value(scrape(client), "other_process", writer="subprocess") == 3.0

    run_django(
        "from metricdemo.models import MetricDefinition\n"
        "MetricDefinition.objects.filter(name='other.process').update(value=4)\n"
    )
    assert value(scrape(client), "other_process", writer="subprocess") == 4.0

    run_django(
        "from metricdemo.models import MetricDefinition\n"
        "MetricDefinition.objects.get(name='other.process').delete()\n"
    )
    assert "other_process" not in scrape(client)


@pytest.mark.django_db(transaction=True)
def test_this_process_change_shows_in_another_process(client, define):
    define(name="made.here", source="constant", value=8, attributes={"k": "v"})
    result = run_django(
        "from django.test import Client\n"
        "print(Client().get('/metrics').content.decode())\n"
    )
    from tests.scraping import parse

    assert value(parse(result.stdout), "made_here", k="v") == 8.0
