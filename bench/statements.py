"""Record, replay and summarise the SQL statements a scrape runs."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.queries import all_queries, steady_statements


def steady(scrape: Callable[[], Any]) -> list[str]:
    """Return the statements of the median steady scrape."""
    return steady_statements(scrape)


def of_one(scrape: Callable[[], Any]) -> list[str]:
    """Return the statements of one scrape."""
    with all_queries() as statements:
        scrape()
        return list(statements)


def captured(connection: Any, work: Callable[[], Any]) -> list[tuple[str, Any]]:
    """Return the (sql, params) of the statements `work` runs on `connection`."""
    statements = []

    def record(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        work()
    return statements


def replay(connection: Any, statements: list[tuple[str, Any]]) -> None:
    """Run captured statements again on `connection` and fetch their rows."""
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
            cursor.fetchall()


def shape(sql: str) -> str:
    """Return a statement with its literals and table names elided, shortened."""
    text = re.sub(r'"bench_shop_\w+"', "<table>", sql)
    text = re.sub(r"'[^']*'|\b\d+(\.\d+)?\b|%s", "?", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= 110 else text[:107] + "..."
