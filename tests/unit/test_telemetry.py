"""The definitions' instruments: a process holds only the current ones."""

from __future__ import annotations

import json
import weakref

import pytest
from opentelemetry import metrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)

from metricdemo.conf import app_settings
from metricdemo.models import MetricDefinition
from tests.instruments import change_instrument, definition_instruments
from tests.processes import run_django
from tests.queries import steady_statements
from tests.scraping import parse, value

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
EDITS = 2000


def definition_samples(text: str) -> dict[tuple, float]:
    """Return {(family, type, help, sample, labels): value} of the definitions' series.

    The labels include the otel_scope_* ones. The app's self-metrics share the
    definitions' scope but count this process's own history, so they are left
    out (their families all start with "metricdemo_").
    """
    found = {}
    for family in parse(text).values():
        if family.name.startswith("metricdemo_"):
            continue
        for sample in family.samples:
            if sample.labels.get("otel_scope_name") != app_settings.METER_NAME:
                continue
            labels = frozenset(sample.labels.items())
            key = (family.name, family.type, family.documentation, sample.name, labels)
            found[key] = sample.value
    return found


FRESH_PROCESS = """
import json
import weakref
from django.test import Client
from tests.queries import steady_statements
from tests.instruments import change_instrument, definition_instruments
client = Client()
client.get('/metrics')
print(json.dumps({
    'text': client.get('/metrics').content.decode(),
    'statements': len(steady_statements(lambda: client.get('/metrics'))),
    'instruments': definition_instruments(),
}))
"""


@pytest.mark.long
@pytest.mark.backend_neutral
# Row counts run on worker threads with their own connections, and a fresh
# process reads the same definitions: commit the rows.
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_soak__edits_leave_only_the_current_instruments(client, define, orders):
    """2,000 edits, each scraped: the process ends as a fresh one would start."""
    jobs = metrics.get_meter("tests.soak").create_counter("tests.soak.jobs")
    jobs.add(1)
    jobs_before = value(
        parse(client.get("/metrics").content.decode()), "tests_soak_jobs_total"
    )
    soaked = [
        define(name="soak.constant", source="constant", value=3),
        define(
            name="soak.labelled",
            source="constant",
            value=4,
            attributes={"region": "eu"},
        ),
        define(
            name="soak.orders",
            source="row_count",
            model="shop.Order",
            group_by="status",
        ),
    ]
    added = 0
    for step in range(EDITS):
        definition = soaked[step % len(soaked)]
        change_instrument(definition, step // len(soaked), f"soak.renamed.{step}")
        definition.full_clean()
        definition.save()
        assert client.get("/metrics").status_code == 200
        if step % 500 == 0:
            jobs.add(2)
            added += 2
    # Deleting and disabling retire instruments too.
    soaked[0].delete()
    define(name="soak.disabled", source="constant", value=1, enabled=False)
    define(name="soak.late", source="constant", value=9, unit="s")
    assert client.get("/metrics").status_code == 200

    live = sorted(
        MetricDefinition.objects.filter(enabled=True).values_list("name", flat=True)
    )
    assert definition_instruments() == live

    text = client.get("/metrics").content.decode()
    families = parse(text)  # refuses a duplicated family, target_info included
    assert len(families["target_info"].samples) == 1
    openmetrics = client.get("/metrics", HTTP_ACCEPT=OPENMETRICS).content.decode()
    assert {family.name for family in openmetrics_families(openmetrics)}
    assert value(families, "tests_soak_jobs_total") == jobs_before + added
    assert value(families, "metricdemo_definitions_active") == len(live)
    statements = len(steady_statements(lambda: client.get("/metrics")))

    fresh = json.loads(run_django(FRESH_PROCESS).stdout.strip().splitlines()[-1])
    assert fresh["instruments"] == live
    assert definition_samples(text) == definition_samples(fresh["text"])
    assert statements == fresh["statements"]


def test_definitions_provider__kept_until_an_instrument_is_retired(client, define):
    """Steady scrapes, value edits and new definitions keep the provider."""
    from metricdemo.telemetry import get_telemetry

    instruments = get_telemetry().instruments
    first = define(name="keep.first", source="constant", value=1)
    client.get("/metrics")
    provider = weakref.ref(instruments.provider)
    client.get("/metrics")
    first.value = 2
    first.save()
    define(name="keep.second", source="constant", value=3)
    families = parse(client.get("/metrics").content.decode())
    assert instruments.provider is provider()
    assert value(families, "keep_first") == 2.0

    first.description = "A new description."
    first.save()
    families = parse(client.get("/metrics").content.decode())
    assert provider() is None  # replaced, and freed
    assert families["keep_first"].documentation == "A new description."
    assert value(families, "keep_second") == 3.0
    assert definition_instruments() == ["keep.first", "keep.second"]


def test_a_host_provider_with_a_served_reader_is_on_metrics(client, db):
    """A project's own MeterProvider reaches /metrics through served_reader()."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.resources import Resource

    from metricdemo.telemetry import served_reader

    provider = MeterProvider(
        metric_readers=[served_reader()],
        resource=Resource.create({"service.name": "host"}),
        shutdown_on_exit=False,
    )
    try:
        counter = provider.get_meter("host.code", "2.0").create_counter(
            "host.jobs", unit="{job}"
        )
        counter.add(4, {"queue": "mail"})
        text = client.get("/metrics").content.decode()
        families = parse(text)
        assert value(families, "host_jobs_total", queue="mail") == 4
        (sample,) = families["host_jobs"].samples
        assert sample.labels["otel_scope_name"] == "host.code"
        assert sample.labels["otel_scope_version"] == "2.0"
        # One target_info: the app's, not the host provider's.
        assert text.count("# TYPE target_info") == 1
        assert families["target_info"].samples[0].labels["service_name"] != "host"
    finally:
        provider.shutdown()
    # A provider shut down is served no more.
    assert "host_jobs_total" not in parse(client.get("/metrics").content.decode())


def test_deleted_definitions_leave_no_self_metric_state(client, define, callback):
    """A deleted definition's self-metric series are freed, not walked forever."""
    from metricdemo.reserved import SELF_METRICS
    from tests.instruments import held_series

    callback("test.leak", lambda: 1)
    made = [
        define(name=f"leak.d{i}", source="callback", callback="test.leak")
        for i in range(30)
    ]
    assert client.get("/metrics").status_code == 200
    duration = SELF_METRICS["duration"][0]

    def leaked() -> set[str]:
        return {
            attributes["definition"]
            for attributes in held_series(duration)
            if str(attributes.get("definition", "")).startswith("leak.")
        }

    assert leaked() == {f"leak.d{i}" for i in range(30)}
    for definition in made:
        definition.delete()
    assert client.get("/metrics").status_code == 200
    assert leaked() == set()
