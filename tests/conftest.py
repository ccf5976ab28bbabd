"""Fixtures shared by the test modules."""

from __future__ import annotations

import datetime as dt
import os
import threading

import pytest
from django.contrib.auth import models as auth_models
from django.db import connection
from hypothesis import settings as hypothesis_settings

from metricdemo import register_callback, unregister_callback
from metricdemo.models import MetricDefinition

# The fuzz tests try the same examples on every run, so that a run fails only
# for a change; HYPOTHESIS_PROFILE=explore draws new ones (and more of them).
hypothesis_settings.register_profile("repeatable", derandomize=True, database=None)
hypothesis_settings.register_profile("explore", max_examples=500, database=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Turn a skip into a failure when METRICDEMO_NO_SKIP is set (make test-all)."""
    outcome = yield
    report = outcome.get_result()
    # An expected failure (xfail) reports as skipped too; it is no missing tool.
    expected_failure = hasattr(report, "wasxfail")
    if report.skipped and not expected_failure and os.environ.get("METRICDEMO_NO_SKIP"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else ""
        report.outcome = "failed"
        report.longrepr = f"Skipped, but METRICDEMO_NO_SKIP is set: {reason}"


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist, put the slow tests first so that none is left running alone.

    Workers take tests in collection order; a minute-long test that comes up
    last would run while the other workers sit idle.
    """
    if hasattr(config, "workerinput"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session", autouse=True)
def _close_evaluation_connections(django_db_setup, django_db_blocker):
    """Close the evaluation threads' connections before the test database goes.

    PostgreSQL refuses to drop a database that sessions are still using.
    """
    yield
    from metricdemo.evaluation import get_evaluator
    from metricdemo.outages import services
    from metricdemo.scheduler import stop_refresher

    with django_db_blocker.unblock():
        stop_refresher()
        get_evaluator().close_connections()
        services().close_connections()
        # Evaluators that tests made for themselves may still hold a session;
        # end those on PostgreSQL so that the test database can be dropped.
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


@pytest.fixture(autouse=True)
def _no_value_history(monkeypatch):
    """Keep the value history off unless a test turns it on (`history_on`).

    A test that replaces METRICDEMO whole gets the default interval back, and
    the history's writer thread would then write, once a minute, into
    whichever test scrapes at that moment, outside that test's transaction.
    """
    from metricdemo.values import history

    monkeypatch.setattr(history, "interval", lambda: None)


@pytest.fixture
def define(db):
    """Create a definition through full_clean() and save(), as the admin would."""

    def create(**fields) -> MetricDefinition:
        definition = MetricDefinition(**fields)
        definition.full_clean()
        definition.save()
        return definition

    return create


@pytest.fixture
def callback():
    """Register callbacks for one test and unregister them afterwards."""
    names: list[str] = []

    def register(name, func, **kwargs):
        names.append(name)
        return register_callback(name, func, **kwargs)

    yield register
    for name in names:
        unregister_callback(name)


class Gate:
    """A callback that blocks until released, counting its calls."""

    name = "test.gate"

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self.calls += 1
        self.started.set()
        self.release.wait(30)
        return 1.0


@pytest.fixture
def gate(callback):
    """Register a Gate as the callback test.gate; release it when the test ends."""
    blocked = Gate()
    callback(blocked.name, blocked)
    yield blocked
    blocked.release.set()


@pytest.fixture
def orders(db):
    """Create customers and orders: 3 pending, 2 paid, 1 shipped."""
    from tests.shop.models import Customer, Order

    de = Customer.objects.create(name="Anna", country="DE")
    fr = Customer.objects.create(name="Bea", country="FR")
    nowhere = Customer.objects.create(name="Cid", country=None)
    day = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    rows = [
        ("pending", de, 2026),
        ("pending", de, 2026),
        ("pending", fr, 2025),
        ("paid", fr, 2026),
        ("paid", nowhere, 2026),
        ("shipped", de, 2026),
    ]
    for status, customer, year in rows:
        Order.objects.create(
            status=status, customer=customer, created=day.replace(year=year)
        )
    return Order.objects.all()


@pytest.fixture
def shop(db):
    """Customers and orders with decimals, NULLs, dates and durations, around NOW."""
    from decimal import Decimal

    from tests.aggregate_rows import NOW
    from tests.shop.models import Customer, Order

    de = Customer.objects.create(name="Anna", country="DE")
    fr = Customer.objects.create(name="Bea", country="FR")
    none = Customer.objects.create(name="Cid", country=None)
    rows = [
        # status, customer, total, quantity, minutes before NOW, shipped, handling
        ("pending", de, "10.50", 1, 10, None, None),
        ("pending", de, "20.25", None, 50, None, 30),
        ("pending", fr, "5.00", 3, 90, None, None),
        ("paid", fr, "99.99", 2, 20, dt.date(2026, 3, 10), 60),
        ("paid", none, "0.01", None, 60 * 30, dt.date(2026, 3, 11), 90),
        ("shipped", de, "42.00", 7, 60 * 24 * 9, dt.date(2026, 3, 1), 45),
        ("shipped", None, "1.10", 4, 60 * 24 * 40, dt.date(2026, 1, 31), None),
    ]
    for status, customer, total, quantity, minutes, shipped, handling in rows:
        Order.objects.create(
            status=status,
            customer=customer,
            total=Decimal(total),
            quantity=quantity,
            created=NOW - dt.timedelta(minutes=minutes),
            shipped_on=shipped,
            handling=dt.timedelta(minutes=handling) if handling else None,
        )
    return Order.objects.all()


@pytest.fixture
def staff(client, django_user_model):
    """Log in a staff user holding the given permissions (`app.codename`).

    test_admin.py has a `staff` of its own, which takes codenames alone.
    """

    def login(*permissions: str):
        user = django_user_model.objects.create_user(
            "operator", password="pw", is_staff=True
        )
        for permission in permissions:
            app_label, codename = permission.split(".")
            user.user_permissions.add(
                auth_models.Permission.objects.get(
                    content_type__app_label=app_label, codename=codename
                )
            )
        client.force_login(user)
        return client

    return login
