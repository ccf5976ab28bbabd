"""Create the benchmark's databases, shop rows and metric definitions."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.utils import timezone

from bench import routers
from bench.shop import models as shop
from metricdemo import evaluation, outages
from metricdemo.models import MetricDefinition

#: The models row counts spread over, in the order definitions are made.
MODELS = [
    shop.Customer,
    shop.Order,
    shop.Invoice,
    shop.Payment,
    shop.Shipment,
    shop.Product,
    shop.Review,
    shop.Ticket,
    shop.Subscription,
    shop.Refund,
]
REGIONS = ("eu", "us", "apac", "latam")

# Ten row counts per model: one plain count, six filtered, three grouped (two of
# those filtered too). Order groups along its relation to Customer.
ROW_COUNT_SHAPES: list[tuple[dict[str, Any], str]] = [
    ({}, ""),
    ({"status": "open"}, ""),
    ({"flagged": True}, ""),
    ({"amount__gte": 500}, ""),
    ({"status__in": ["new", "open"]}, ""),
    ({"status": "done", "flagged": False}, ""),
    ({"amount__lt": 100}, ""),
    ({}, "status"),
    ({"amount__gte": 200}, "flagged"),
    ({"flagged": True}, "status"),
]


def series_name(i: int) -> str:
    """Return the instrument name of the i-th definition (shared by every phase)."""
    return f"bench.series.{i:05d}"


def series_attributes(i: int) -> dict[str, str]:
    """Return the constant attributes of the i-th definition."""
    return {"region": REGIONS[i % len(REGIONS)], "shard": str(i % 8)}


def require_driver(alias: str) -> None:
    """Exit with how to install the drivers unless `alias`'s driver is there."""
    try:
        connections[alias]
    except ImproperlyConfigured as exc:
        raise SystemExit(
            f"DATABASE_URL names a database whose driver is missing ({exc}). "
            "Install the drivers with: .venv/bin/pip install -e '.[db]'"
        ) from None


@contextmanager
def throwaway_databases(aliases: list[str]) -> Iterator[None]:
    """Create and migrate a fresh database for each alias; drop them afterwards."""
    created = []
    try:
        for alias in aliases:
            with routers.using(alias):
                connection = connections[alias]
                old_name = connection.settings_dict["NAME"]
                connection.creation.create_test_db(
                    verbosity=0, autoclobber=True, serialize=False
                )
                created.append((connection, old_name))
        yield
    finally:
        for connection, old_name in reversed(created):
            connections.close_all()
            connection.creation.destroy_test_db(old_name, verbosity=0)


def close_worker_connections() -> None:
    """Close the connections the app's evaluation and service threads keep open."""
    # A database cannot be dropped while they do.
    evaluation.get_evaluator().close_connections()
    outages.services().close_connections()


def fill_shop(rows_per_model: int) -> None:
    """Give every shop model `rows_per_model` rows with a fixed, seeded spread."""
    rng = random.Random(42)
    statuses = [value for value, _ in shop.STATUSES]
    now = timezone.now()

    def common() -> dict[str, Any]:
        return {
            "status": rng.choice(statuses),
            "flagged": rng.random() < 0.3,
            "amount": rng.randrange(1000),
            "price": Decimal(rng.randrange(100000)) / 100,
            # Two days back, so that windows of an hour or a day hold some.
            "created": now - dt.timedelta(seconds=rng.randrange(2 * 86400)),
        }

    customers = shop.Customer.objects.bulk_create(
        shop.Customer(country=rng.choice(("DE", "FR", "US", "JP")), **common())
        for _ in range(rows_per_model)
    )
    shop.Order.objects.bulk_create(
        shop.Order(customer=rng.choice(customers), **common())
        for _ in range(rows_per_model)
    )
    for model in MODELS[2:]:
        model.objects.bulk_create(model(**common()) for _ in range(rows_per_model))


def row_count_definitions(count: int) -> list[MetricDefinition]:
    """Return `count` unsaved row-count definitions spread evenly over MODELS."""
    definitions = []
    for i in range(count):
        # Every model gets every shape once per len(MODELS) definitions, and
        # even a short list has some of each kind.
        model = MODELS[i % len(MODELS)]
        shape = (i + i // len(MODELS)) % len(ROW_COUNT_SHAPES)
        filters, group_by = ROW_COUNT_SHAPES[shape]
        if group_by == "status" and model is shop.Customer:
            group_by = "country"
        elif group_by == "status" and model is shop.Order and filters:
            group_by = "customer__country"
        definitions.append(
            MetricDefinition(
                name=series_name(i),
                description=f"Benchmark series {i}",
                kind="gauge",
                attributes=series_attributes(i),
                source="row_count",
                model=model._meta.label,
                filters=filters,
                group_by=group_by,
            )
        )
    return definitions


def constant_definitions(start: int, stop: int) -> list[MetricDefinition]:
    """Return unsaved constant definitions number `start` to `stop - 1`."""
    return [
        MetricDefinition(
            name=series_name(i),
            description=f"Benchmark series {i}",
            kind="gauge",
            attributes=series_attributes(i),
            source="constant",
            value=float(i),
        )
        for i in range(start, stop)
    ]


def replace_definitions(definitions: list[MetricDefinition]) -> None:
    """Make `definitions` the only ones stored, validating any row counts first."""
    for definition in definitions:
        if definition.source != "constant":
            definition.full_clean()
    for definition in MetricDefinition.objects.all():
        definition.delete()
    MetricDefinition.objects.bulk_create(definitions, batch_size=1000)


def add_definitions(definitions: list[MetricDefinition]) -> None:
    """Store more definitions next to the ones already there."""
    MetricDefinition.objects.bulk_create(definitions, batch_size=1000)
