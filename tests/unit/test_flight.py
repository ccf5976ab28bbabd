"""SingleFlight: callers that meet a call in flight share its result."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from metricdemo.telemetry.flight import SingleFlight


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
