"""Concurrent scrapes of one process share the collection in flight."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from metricdemo.telemetry.flight import SingleFlight
from tests.scraping import parse, value
from tests.servers import get

pytestmark = pytest.mark.django_db(transaction=True)


def test_single_flight__callers_meeting_a_call_share_its_result():
    flight: SingleFlight[int] = SingleFlight()
    calls = []
    start = threading.Barrier(3)

    def call() -> int:
        calls.append(1)
        time.sleep(0.5)
        return len(calls)

    def caller(_):
        start.wait(10)
        return flight.run(call, None)

    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(caller, range(3))) == [1, 1, 1]
    assert flight.run(call, None) == 2  # nothing in flight: a call of its own


def test_single_flight__a_caller_whose_deadline_passes_runs_its_own():
    flight: SingleFlight[str] = SingleFlight()
    release = threading.Event()
    leader = threading.Thread(target=flight.run, args=(lambda: release.wait(10), None))
    leader.start()
    time.sleep(0.1)
    try:
        assert flight.run(lambda: "own", time.monotonic() + 0.1) == "own"
    finally:
        release.set()
        leader.join(10)


def test_single_flight__a_failed_call_is_not_shared():
    flight: SingleFlight[str] = SingleFlight()
    entered = threading.Event()
    release = threading.Event()

    def fails() -> str:
        entered.set()
        release.wait(10)
        raise RuntimeError("boom")

    def lead() -> None:
        with pytest.raises(RuntimeError):
            flight.run(fails, None)

    leader = threading.Thread(target=lead)
    leader.start()
    assert entered.wait(10)
    threading.Timer(0.1, release.set).start()
    assert flight.run(lambda: "own", None) == "own"
    leader.join(10)


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
