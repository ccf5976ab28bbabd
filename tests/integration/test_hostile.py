"""Rows stored without validation cost only themselves: /metrics and the admin stay up.

Each case stores bad rows through the ORM without validation, as an old
database, a bulk write or raw SQL could, beside a good definition. Then
/metrics must answer 200, parse with both of prometheus_client's parsers and
pass promtool, the good definition must still export, and the admin must list
and show every row.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from metricdemo.models import MetricDefinition
from tests.scraping import SCOPE_LABELS

PROMTOOL = shutil.which("promtool")
GOOD = {"name": "shop.good", "source": "constant", "value": 7}
CONSTANT = {"source": "constant", "value": 1}

#: Each case: the bad rows, stored beside GOOD.
HOSTILE: dict[str, list[dict[str, Any]]] = {
    "surrogate attribute value": [{"name": "s.value", "attributes": {"s": "\ud800"}}],
    "surrogate attribute key": [{"name": "s.key", "attributes": {"\udc80": "x"}}],
    "surrogate in a row count's attribute": [
        {
            "name": "s.count",
            "source": "row_count",
            "value": None,
            "model": "shop.Order",
            "attributes": {"s": "a\udfffb"},
        }
    ],
    "OpenTelemetry's target_info": [{"name": "target.info"}],
    "OpenMetrics' target family": [{"name": "target"}],
    "process_cpu_seconds_total": [
        {"name": "process.cpu", "unit": "s", "kind": "counter"}
    ],
    "a process_ gauge": [{"name": "process.open_fds"}],
    "python_info": [{"name": "python.info"}],
    "python_gc_objects_collected": [
        {"name": "python.gc.objects.collected", "kind": "counter"}
    ],
    "a code instrument": [{"name": "metricdemo.demo.counter", "kind": "counter"}],
    "a code instrument's _created": [{"name": "metricdemo.demo.counter_created"}],
    "django-prometheus": [
        {"name": "django.http.requests.total.by.method", "kind": "counter"}
    ],
    "a self-metric": [
        {"name": "metricdemo.evaluations", "kind": "counter", "unit": "{evaluation}"}
    ],
    "two definitions, one exported name": [
        {"name": "shop.orders"},
        {"name": "shop-orders"},
        {"name": "shop.orders_total", "kind": "counter"},
    ],
    "a gauge named like a counter's sample": [
        {"name": "jobs", "kind": "counter"},
        {"name": "jobs_total"},
        {"name": "jobs.created"},
    ],
    "attribute __name__": [{"name": "s.dunder", "attributes": {"__name__": "x"}}],
    "attributes that are not labels": [
        {"name": "s.empty", "attributes": {"": "x"}},
        {"name": "s.scope", "attributes": {"otel_scope_name": "x"}},
        {"name": "s.twice", "attributes": {"a.b": "1", "a_b": "2"}},
        {"name": "s.list", "attributes": ["region"]},
        {"name": "s.nested", "attributes": {"a": {"b": [1]}}},
    ],
    "bad units": [
        {"name": "u.space", "unit": "per second"},
        {"name": "u.newline", "unit": "s\n"},
        {"name": "u.accent", "unit": "séc"},
        {"name": "u.long", "unit": "x" * 63},
        {"name": "u.braces", "unit": "{"},
    ],
    "bad names": [{"name": "9 lives"}, {"name": "a\nb"}, {"name": "x" * 255}],
    "bad kind": [{"name": "k.histogram", "kind": "histogram"}],
    "huge and infinite values": [
        {"name": "v.huge", "value": 1e308},
        {"name": "v.tiny", "value": -1e308},
        {"name": "v.none", "value": None},
    ],
    "unknown source": [{"name": "src.unknown", "source": "nope"}],
    "malformed filters": [
        {
            "name": f"f.{index}",
            "source": "row_count",
            "value": None,
            "model": "shop.Order",
            "filters": filters,
        }
        for index, filters in enumerate(
            [["status"], "status=1", {"nope__x": 1}, {"status__in": 5}, {"": 1}]
        )
    ],
    "malformed row counts": [
        {"name": "rc.model", "source": "row_count", "value": None, "model": "no"},
        {"name": "rc.group", "source": "row_count", "value": None, "model": "x.Y"},
        {
            "name": "rc.group_by",
            "source": "row_count",
            "value": None,
            "model": "shop.Order",
            "group_by": "nope__x",
        },
    ],
    "a long description": [{"name": "d.long", "description": '\\\n"#' * 5000}],
}

#: Only SQLite stores a lone surrogate in a JSON field: PostgreSQL's jsonb and
#: MariaDB's JSON_VALID check refuse it, so no such row can exist there.
SURROGATES_STORABLE = connection.vendor == "sqlite"
if not SURROGATES_STORABLE:
    for case in [case for case in HOSTILE if "surrogate" in case]:
        del HOSTILE[case]
if connection.vendor != "mysql":
    # MariaDB and MySQL refuse NaN and infinities in a float column.
    HOSTILE["huge and infinite values"] += [
        {"name": "v.inf", "value": math.inf},
        {"name": "v.minus_inf", "value": -math.inf},
        {"name": "v.nan", "value": math.nan},
    ]

pytestmark = pytest.mark.django_db(transaction=True)


def store(rows: list[dict[str, Any]]) -> list[MetricDefinition]:
    """Save rows with bulk_create, which runs no validation, and return them."""
    definitions = [MetricDefinition(**{**CONSTANT, **row}) for row in rows]
    MetricDefinition.objects.bulk_create(definitions)
    return list(MetricDefinition.objects.filter(name__in=[r["name"] for r in rows]))


def promtool_errors(text: str) -> str:
    """Return promtool's errors for an exposition; lint remarks are no errors."""
    check = subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Exit status 3 means lint remarks only (for example a type in a name).
    if check.returncode in (0, 3):
        return ""
    return check.stdout + check.stderr


def assert_valid_exposition(client) -> dict[str, float]:
    """Scrape both formats, parse each, run promtool; return GOOD's samples."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.content[:2000]
    text = response.content.decode()
    families = list(parse_text(text))
    assert families
    if PROMTOOL:
        assert promtool_errors(text) == ""
    openmetrics = client.get("/metrics", HTTP_ACCEPT="application/openmetrics-text")
    assert openmetrics.status_code == 200
    assert list(parse_openmetrics(openmetrics.content.decode()))
    return {
        sample.name: sample.value
        for family in families
        for sample in family.samples
        if sample.name == "shop_good" and not set(sample.labels) - set(SCOPE_LABELS)
    }


@pytest.mark.parametrize("rows", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_rows__scrape_and_admin_stay_up(client, django_user_model, rows):
    stored = store([GOOD, *rows])
    assert len(stored) == len(rows) + 1

    for _ in range(2):  # the first scrape learns the served families, then again
        assert assert_valid_exposition(client) == {"shop_good": 7.0}

    admin = django_user_model.objects.create_superuser("root", "r@example.com", "pw")
    # A user who may only view gets read-only pages, rendered another way.
    viewer = django_user_model.objects.create_user("viewer", is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_metricdefinition")
    )
    for user in (admin, viewer):
        client.force_login(user)
        changelist = client.get("/admin/metricdemo/metricdefinition/")
        assert changelist.status_code == 200, user.username
        assert changelist.content.decode("utf-8")
        for definition in stored:
            page = client.get(
                f"/admin/metricdemo/metricdefinition/{definition.pk}/change/"
            )
            assert page.status_code == 200, (user.username, definition.name)
            assert page.content.decode("utf-8")


def test_hostile_rows__left_out_as_errors_in_the_self_metrics(client):
    """A row left out is counted as an error of its own, not hidden."""
    bad = [{"name": "target.info"}, {"name": "k.bad", "kind": "histogram"}]
    if SURROGATES_STORABLE:
        bad.append({"name": "s.v", "attributes": {"s": "\ud800"}})
    store([GOOD, *bad])
    client.get("/metrics")
    families = {f.name: f for f in parse_text(client.get("/metrics").content.decode())}
    errors = {
        sample.labels["definition"]
        for sample in families["metricdemo_evaluations"].samples
        if sample.name == "metricdemo_evaluations_total"
        and sample.labels.get("outcome") == "error"
        and sample.value >= 1
    }
    assert {row["name"] for row in bad} <= errors
    assert "shop.good" not in errors
