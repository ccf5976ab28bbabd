"""Head the report: the machine, the versions and the databases measured."""

from __future__ import annotations

import os
import platform
import sqlite3
from importlib.metadata import version
from typing import Any

from django.db import connections


def describe(aliases: list[str]) -> str:
    """Describe the machine and the versions measured."""
    databases = [f"SQLite {sqlite3.sqlite_version}"]
    if "url" in aliases:
        connection = connections["url"]
        databases.append(f"{connection.display_name} {_server_version(connection)}")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    return "\n".join(
        [
            "metricdemo benchmark",
            f"Python {platform.python_version()}, Django {version('django')}, "
            f"opentelemetry-sdk {version('opentelemetry-sdk')}, "
            f"opentelemetry-exporter-prometheus "
            f"{version('opentelemetry-exporter-prometheus')}, "
            f"prometheus_client {version('prometheus-client')}",
            f"{platform.machine()}, {cpus or os.cpu_count()} CPUs; "
            f"{' and '.join(databases)}",
            "Times are medians in milliseconds of runs interleaved with their "
            "references, with the garbage collector paused during each round; "
            "a ratio is the median of the ratios within each round.",
        ]
    )


def _server_version(connection: Any) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            {
                "postgresql": "SHOW server_version",
                "sqlite": "SELECT sqlite_version()",
            }.get(connection.vendor, "SELECT VERSION()")
        )
        return str(cursor.fetchone()[0]).split()[0]
