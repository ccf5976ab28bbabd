"""Unit tests of metricdemo.outages: waiting on a service, and remembering silence."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from django.db import connection
from django.test import override_settings

from metricdemo import outages
from tests.processes import wait_until


@pytest.fixture
def services():
    """A fresh set of service threads, with a scrape budget of 1 s."""
    with override_settings(METRICDEMO={"SCRAPE_TIMEOUT": 1}):
        yield outages.Services()


def test_call__returns_what_the_call_returns(services):
    assert services.call("svc", lambda: 5, None) == 5
    assert services.unanswered() == frozenset()


def test_call__an_error_is_an_answer(services):
    def fail():
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        services.call("svc", fail, None)
    assert services.unanswered() == frozenset()


def test_call__a_call_left_behind_marks_its_service_until_it_returns(services, caplog):
    caplog.set_level(logging.INFO, logger="metricdemo")
    release = threading.Event()
    with pytest.raises(outages.Unanswered) as info:
        services.call("the service", lambda: release.wait(30), time.monotonic() + 0.2)
    assert "does not answer" in str(info.value)
    assert services.unanswered() == {"the service"}
    # Not asked again while the call is out: nothing runs, nothing waits.
    ran = []
    started = time.monotonic()
    for _ in range(3):
        with pytest.raises(outages.Unanswered):
            services.call("the service", lambda: ran.append(1), None)
    assert ran == []
    assert time.monotonic() - started < 0.5
    # Other services are asked as usual.
    assert services.call("another", lambda: 1, None) == 1

    release.set()
    wait_until(lambda: not services.unanswered() or None, timeout=5, what="the mark")
    assert services.call("the service", lambda: 2, None) == 2
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "The service did not answer within 0.2 s; scrapes serve what they can "
        "without it until it answers.",
        "The service answers again.",
    ]


def test_call__waits_at_most_half_the_budget(services):
    release = threading.Event()
    started = time.monotonic()
    with pytest.raises(outages.Unanswered):
        services.call("svc", lambda: release.wait(30), None)
    waited = time.monotonic() - started
    release.set()
    assert outages.WAIT_SHARE <= waited < outages.WAIT_SHARE + 0.4


def test_call__nothing_is_asked_once_the_deadline_passed(services):
    ran = []
    with pytest.raises(outages.Unanswered) as info:
        services.call("svc", lambda: ran.append(1), time.monotonic() - 1)
    assert ran == []
    assert "SCRAPE_TIMEOUT" in str(info.value)
    assert services.unanswered() == frozenset()


def test_read_database__inside_a_transaction_runs_in_this_thread(db):
    """A test's transaction (or any) keeps its rows visible to the read."""
    here = threading.get_ident()
    assert connection.in_atomic_block
    assert outages.read_database("default", threading.get_ident, None) == here


@pytest.mark.django_db(transaction=True)
def test_read_database__outside_a_transaction_runs_on_the_databases_thread():
    here = threading.get_ident()
    assert outages.read_database("default", threading.get_ident, None) != here
