"""Concurrent scrapes of one process share the collection in flight."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.scraping import parse, value
from tests.servers import get

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sleeper(callback):
    """Register test.sleeper: a callback that sleeps 0.8 s and counts its calls."""
    calls: list[float] = []

    def sleep() -> int:
        calls.append(time.monotonic())
        time.sleep(0.8)
        return len(calls)

    callback("test.sleeper", sleep)
    return calls


def test_concurrent_scrapes_of_one_process_share_one_collection(
    live_server, define, sleeper
):
    """Threads scraping at once wait for the collection in flight, not their own."""
    calls = sleeper
    define(name="shared.flight", source="callback", callback="test.sleeper")
    url = f"{live_server.url}/metrics"
    start = threading.Barrier(4)

    def scrape_once(_):
        start.wait(10)
        return get(url)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(scrape_once, range(4)))
    for status, body in answers:
        assert status == 200
        assert value(parse(body), "shared_flight") == 1.0
    assert len(calls) == 1
