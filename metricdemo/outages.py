"""Wait on a database or the cache no longer than a scrape can, and remember silence.

A server that does not answer at all (stopped, or cut off without a reset)
keeps a client waiting for ever: no server-side timeout can help, and a kept
connection never notices. So the scrape's own reads run on a thread of their
service (one per database alias, one for the cache), where the scrape can stop
waiting at what is left of its budget. A call left behind that way marks its
service as unanswered until it returns: no scrape waits on that service again
meanwhile, and the state changes are logged once each.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from django.db import connections, transaction
from django.utils.translation import gettext as _

from metricdemo import validators
from metricdemo.database import idle_seconds, statement_timeout
from metricdemo.workers import PerProcess, WorkerPool

logger = logging.getLogger("metricdemo")

T = TypeVar("T")

#: The share of the scrape budget one call may be waited for: a service that
#: does not answer leaves the rest of the scrape at least the other half.
WAIT_SHARE = 0.5
#: The share of the budget the database itself allows the scrape's own reads,
#: set once per connection: below WAIT_SHARE, so that a lock is cut by the
#: server (an answer) before the scrape stops waiting (silence).
SERVER_SHARE = 0.25


class Unanswered(Exception):  # noqa: N818 - a state, like TimeoutError
    """A service did not answer in time, or has not answered a call left behind."""

    def __init__(self, service: str, message: str) -> None:
        super().__init__(message)
        self.service = service


def database(alias: str) -> str:
    """Return the name of the service that is the database `alias`."""
    return _("the database %(alias)r") % {"alias": alias}


def cache(alias: str) -> str:
    """Return the name of the service that is the cache `alias`."""
    return _("the cache %(alias)r") % {"alias": alias}


class Services:
    """One worker thread per service, and the calls each left unanswered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pools: dict[str, WorkerPool] = {}
        #: {service: the call left behind}.
        self._left_behind: dict[str, Future] = {}

    def call(self, service: str, fn: Callable[[], T], deadline: float | None) -> T:
        """Return fn() run on the service's thread, waited for until `deadline`.

        Raises:
            Unanswered: fn() did not return within WAIT_SHARE of the budget or
                before `deadline`, or an earlier call to the service has not
                returned yet (then nothing is run).
        """
        wait = _wait(deadline)
        with self._lock:
            if service in self._left_behind:
                raise Unanswered(service, silent(service))
            if wait is not None and wait <= 0:
                raise Unanswered(service, _no_time(service))
            pool = self._pools.get(service)
            if pool is None:
                pool = self._pools[service] = WorkerPool(
                    1, on_idle=connections.close_all, idle_seconds=idle_seconds
                )
            future = pool.submit(fn)
        try:
            return future.result(wait)
        except FutureTimeout:
            pass
        with self._lock:
            left_behind = not future.done()
            if left_behind:
                self._left_behind[service] = future
        if not left_behind:
            return future.result()
        logger.warning(
            "%s did not answer within %.3g s; scrapes serve what they can "
            "without it until it answers.",
            _capitalized(service),
            wait,
        )
        # Outside the lock: a call that has returned by now runs this at once.
        future.add_done_callback(lambda f: self._answered(service, f))
        raise Unanswered(service, silent(service))

    def unanswered(self) -> frozenset[str]:
        """Return the services with a call left behind that has not returned."""
        return frozenset(self._left_behind)

    def on_each_thread(self, fn: Callable[[], Any]) -> None:
        """Run `fn` once on every idle service thread."""
        with self._lock:
            pools = list(self._pools.values())
        for pool in pools:
            pool.broadcast(fn)

    def close_connections(self) -> None:
        """Close the database connections the idle service threads hold."""
        self.on_each_thread(connections.close_all)

    def _answered(self, service: str, future: Future) -> None:
        with self._lock:
            if self._left_behind.get(service) is not future:
                return
            del self._left_behind[service]
        logger.info("%s answers again.", _capitalized(service))


_services: PerProcess[Services] = PerProcess(Services)


def services() -> Services:
    """Return this process's services, made on first use."""
    return _services.get()


def read_database(alias: str, fn: Callable[[], T], deadline: float | None) -> T:
    """Return fn(), reads on the database `alias`, bounded by the scrape's budget.

    Inside a transaction fn() runs in this thread, in a savepoint, so that it
    sees the transaction's rows (a test, ATOMIC_REQUESTS). Otherwise it runs
    on the database's own thread and connection, where the database cuts it
    at SERVER_SHARE of the budget (a lock) and the scrape stops waiting at
    WAIT_SHARE (a server that does not answer).

    Raises:
        Unanswered: see Services.call().
        DatabaseError: the database answered with an error.
    """
    if connections[alias].in_atomic_block:
        with transaction.atomic(using=alias):
            return fn()
    return services().call(database(alias), lambda: _bounded(alias, fn), deadline)


def _bounded(alias: str, fn: Callable[[], T]) -> T:
    connection = connections[alias]
    budget = validators.scrape_budget()
    try:
        if budget is None:
            return fn()
        # Set once per connection: the value depends on the settings alone.
        with statement_timeout(connection, budget * SERVER_SHARE):
            return fn()
    finally:
        # As a request ends: close it if it broke (a server restart) or is
        # older than CONN_MAX_AGE, so the next call connects again.
        connection.close_if_unusable_or_obsolete()


def _wait(deadline: float | None) -> float | None:
    """Return how long a call may be waited for (None: without a limit)."""
    budget = validators.scrape_budget()
    left = None if deadline is None else deadline - time.monotonic()
    if budget is None:
        return left
    return budget * WAIT_SHARE if left is None else min(budget * WAIT_SHARE, left)


def silent(service: str) -> str:
    """Return why `service` is not waited on: it left a call unanswered."""
    # The same words on every scrape, so that what quotes them is logged once.
    return _(
        "%(service)s does not answer; it is not waited on again until it does."
    ) % {"service": _capitalized(service)}


def _no_time(service: str) -> str:
    return _(
        "The scrape budget, METRICDEMO['SCRAPE_TIMEOUT'], ran out before "
        "%(service)s could be asked."
    ) % {"service": service}


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]
