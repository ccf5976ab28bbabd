"""Record the SQL statements of every connection in every thread."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connections
from django.db.backends.signals import connection_created

from metricdemo.evaluation import get_evaluator
from metricdemo.outages import services


@contextmanager
def all_queries() -> Iterator[list[str]]:
    """Yield a list that fills with every statement run until the block ends.

    Evaluations, and the scrape's own reads (metricdemo.outages), run on
    threads with their own connections, which CaptureQueriesContext (one
    connection) cannot see; this wraps the connections of this thread and of
    every such thread, as they are, so that what is counted is what a steady
    scrape runs.
    """
    statements: list[str] = []
    wrapped: list = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    def wrap(connection) -> None:
        if record not in connection.execute_wrappers:
            connection.execute_wrappers.append(record)
            wrapped.append(connection)

    def wrap_this_thread() -> None:
        for connection in connections.all():
            wrap(connection)

    def wrap_new(sender, connection, **kwargs) -> None:
        wrap(connection)

    evaluator = get_evaluator()
    wrap_this_thread()
    evaluator.on_each_worker(wrap_this_thread)
    services().on_each_thread(wrap_this_thread)
    connection_created.connect(wrap_new)
    try:
        yield statements
    finally:
        connection_created.disconnect(wrap_new)
        for connection in wrapped:
            connection.execute_wrappers.remove(record)


def steady_statements(scrape: Callable[[], Any], rounds: int = 9) -> list[str]:
    """Return the statements of the median steady scrape.

    Each evaluation thread sets up its own connection the first time it runs
    a count (PostgreSQL's SET statement_timeout, MariaDB's version query):
    once per connection, not per scrape. Which thread takes a scrape's batch
    is not fixed, so every thread is warmed up first.
    """
    from metricdemo.conf import app_settings

    for _ in range(4 * int(app_settings.EVALUATION_THREADS)):
        scrape()
    scrapes = []
    with all_queries() as statements:
        for _ in range(rounds):
            statements.clear()
            scrape()
            scrapes.append(list(statements))
    return sorted(scrapes, key=len)[len(scrapes) // 2]
