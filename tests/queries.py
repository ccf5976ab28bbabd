"""Record the SQL statements of every connection in every thread."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections
from django.db.backends.signals import connection_created

from metricdemo.evaluation import get_evaluator


@contextmanager
def all_queries() -> Iterator[list[str]]:
    """Yield a list that fills with every statement run until the block ends.

    Evaluations run on worker threads with their own connections, which
    CaptureQueriesContext (one connection) cannot see; this wraps the
    connections the workers open while the block runs as well.
    """
    statements: list[str] = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    wrapped = list(connections.all())

    def wrap(sender, connection, **kwargs):
        if record not in connection.execute_wrappers:
            connection.execute_wrappers.append(record)
            wrapped.append(connection)

    evaluator = get_evaluator()
    evaluator.close_connections()
    for connection in wrapped:
        connection.execute_wrappers.append(record)
    connection_created.connect(wrap)
    try:
        yield statements
    finally:
        connection_created.disconnect(wrap)
        for connection in wrapped:
            connection.execute_wrappers.remove(record)
