"""Bound statements and idle connections' lifetime; guard callers' transactions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from django.db import connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper


@contextmanager
def statement_timeout(
    connection: BaseDatabaseWrapper, seconds: float
) -> Iterator[None]:
    """Bound the queries run in this block in the database itself, where it can.

    PostgreSQL and MariaDB/MySQL get a session timeout, set again only when it
    changes (a query on the connection, remembered on it); SQLite gets a
    progress handler that interrupts the query.
    """
    connection.ensure_connection()
    vendor = connection.vendor
    if vendor == "sqlite":
        deadline = time.monotonic() + seconds
        raw = connection.connection
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            yield
        finally:
            raw.set_progress_handler(None, 0)
        return
    statement = None
    if vendor == "postgresql":
        statement = f"SET statement_timeout = {int(seconds * 1000)}"
    elif vendor == "mysql":
        statement = (
            f"SET SESSION max_statement_time = {seconds:.3f}"
            if connection.mysql_is_mariadb
            else f"SET SESSION max_execution_time = {int(seconds * 1000)}"
        )
    # Remember the raw connection itself, not its id(): a new connection may
    # reuse the id of a closed one, and its session has no timeout yet.
    raw, done = connection.connection, getattr(connection, "_metricdemo_timeout", None)
    if statement and (done is None or done[0] is not raw or done[1] != statement):
        with connection.cursor() as cursor:
            cursor.execute(statement)
        connection._metricdemo_timeout = (raw, statement)
    yield


@contextmanager
def scoped_statement_timeout(
    connection: BaseDatabaseWrapper, seconds: float
) -> Iterator[None]:
    """Bound this block's queries as statement_timeout() does, then undo it.

    For a connection that other code goes on using, such as a request's: the
    session gets back the timeout it had, and a failed query inside the block
    leaves a surrounding transaction usable.
    """
    connection.ensure_connection()
    vendor = connection.vendor
    if vendor == "sqlite":
        # The progress handler is removed at the end of the block already.
        with statement_timeout(connection, seconds):
            yield
        return
    if vendor == "postgresql":
        read = "SELECT current_setting('statement_timeout')"
        write = "SELECT set_config('statement_timeout', %s, false)"
        value: object = str(int(seconds * 1000))
    elif connection.mysql_is_mariadb:
        read = "SELECT @@SESSION.max_statement_time"
        write = "SET SESSION max_statement_time = %s"
        value = round(seconds, 3)
    else:
        read = "SELECT @@SESSION.max_execution_time"
        write = "SET SESSION max_execution_time = %s"
        value = int(seconds * 1000)
    with connection.cursor() as cursor:
        cursor.execute(read)
        before = cursor.fetchone()[0]
        cursor.execute(write, [value])
    try:
        with savepoint_if_in_transaction(connection.alias):
            yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(write, [before])


def savepoint_if_in_transaction(using: str) -> AbstractContextManager:
    """Return a savepoint inside a transaction, and a no-op context outside one."""
    # On PostgreSQL a failed query aborts the surrounding transaction; a
    # savepoint keeps the caller's transaction usable. Outside a transaction
    # (the usual scrape) no savepoint, and no extra query, is needed.
    if connections[using].in_atomic_block:
        return transaction.atomic(using=using)
    return nullcontext()


#: The longest an idle evaluation thread keeps its database connections.
IDLE_MAX = 60.0


def idle_seconds() -> float:
    """Return how long an idle evaluation thread keeps its connections.

    CONN_MAX_AGE, as Django keeps a request's connection, but at most
    IDLE_MAX, and never for ever (CONN_MAX_AGE None).
    """
    ages = [
        IDLE_MAX if age is None else age
        for age in (
            connections.settings[alias].get("CONN_MAX_AGE", 0)
            for alias in connections.settings
        )
    ]
    return min(IDLE_MAX, max(ages, default=0))
