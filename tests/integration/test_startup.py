"""Startup: no queries in ready(), an empty database, migrations in step."""

import io

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.processes import run_django
from tests.scraping import parse, value


def test_ready_runs_no_queries_and_is_idempotent(db):
    from metricdemo import telemetry

    config = apps.get_app_config("metricdemo")
    before = telemetry.get_telemetry()
    with CaptureQueriesContext(connection) as queries:
        config.ready()
        config.ready()
    assert len(queries) == 0
    assert telemetry.get_telemetry() is before


def test_the_app_provider_is_the_global_one():
    from opentelemetry import metrics

    from metricdemo import telemetry

    state = telemetry.get_telemetry()
    assert state.is_global
    assert metrics.get_meter_provider() is state.meter_provider


def test_before_migrate_metrics_is_empty_but_valid(tmp_path):
    """With no tables at all, /metrics answers 200 with the code-defined metrics."""
    empty = tmp_path / "empty.sqlite3"
    result = run_django(
        "from django.test import Client\n"
        "response = Client().get('/metrics')\n"
        "assert response.status_code == 200, response.status_code\n"
        "print(response.content.decode())\n",
        db_url=f"sqlite:///{empty}",
    )
    families = parse(result.stdout)
    assert value(families, "metricdemo_demo_counter_total", const_attr_1="1") == 11.0
    # Only the app's self-metrics come from its meter, and they say why.
    from_definitions = {
        family.name
        for family in families.values()
        for sample in family.samples
        if sample.labels.get("otel_scope_name") == "metricdemo"
    }
    assert from_definitions == {
        "metricdemo_definitions_loads",
        "metricdemo_definitions_active",
    }
    assert value(families, "metricdemo_definitions_loads_total", outcome="error") == 1
    assert value(families, "metricdemo_definitions_active") == 0


def test_after_migrate_the_same_process_exports_definitions(tmp_path):
    """Migrating while the server runs needs no restart."""
    db_file = tmp_path / "late.sqlite3"
    result = run_django(
        "from django.core.management import call_command\n"
        "from django.test import Client\n"
        "client = Client()\n"
        "assert client.get('/metrics').status_code == 200\n"
        "call_command('migrate', verbosity=0)\n"
        "call_command('load_demo_metrics', verbosity=0)\n"
        "print(client.get('/metrics').content.decode())\n",
        settings="metricsite.settings",
        db_url=f"sqlite:///{db_file}",
    )
    families = parse(result.stdout)
    assert (
        value(families, "metricdemo_demo_observable_counter_total", const_attr_3="3")
        == 10.0
    )


@pytest.mark.django_db
def test_makemigrations_finds_nothing_to_do():
    out = io.StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


# From Django 6.1 `manage.py check` runs the database checks too.
@pytest.mark.django_db
def test_system_checks_pass_for_the_demo():
    out = io.StringIO()
    call_command("check", stdout=out)
    assert "no issues" in out.getvalue()
