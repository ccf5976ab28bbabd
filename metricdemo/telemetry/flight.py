"""Share one collection in flight between the scrapes of one process that meet it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class _Flight(Generic[T]):
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: T | None = None
        self.failed = False


class SingleFlight(Generic[T]):
    """Run one call at a time; callers that arrive meanwhile share its result.

    A threaded or ASGI server can take several scrapes at once; each would
    otherwise queue for the collection lock and then run a whole collection
    of its own. A caller that finds a call in flight waits for it, up to its
    own deadline, and is served the same result; if that call fails or does
    not end in time, the caller runs its own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flight: _Flight[T] | None = None

    def run(self, call: Callable[[], T], deadline: float | None) -> T:
        """Return `call()`, or the result of the same call already in flight.

        `deadline` is the time.monotonic() until which this caller may wait
        for a call in flight (None: as long as it takes).
        """
        with self._lock:
            flight = self._flight
            leader = flight is None
            if leader:
                flight = self._flight = _Flight()
        if not leader:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            if flight.done.wait(wait) and not flight.failed:
                return flight.result  # type: ignore[return-value]
            return call()
        try:
            flight.result = call()
        except BaseException:
            flight.failed = True
            raise
        finally:
            with self._lock:
                self._flight = None
            flight.done.set()
        return flight.result

    def forget(self) -> None:
        """Forget the call in flight (in a forked child, where it never ends)."""
        self._lock = threading.Lock()
        self._flight = None
