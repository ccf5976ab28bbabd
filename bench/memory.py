"""Measure the resident memory of processes that hold N definitions, in children.

For each N a first child creates a SQLite database with N constant
definitions and exits; a second, fresh child opens it, scrapes /metrics twice
and reports its resident set size. The definitions are written by another
process, as the admin would, so the measured process holds what serving them
costs and nothing left over from creating them.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

from bench.progress import progress
from bench.table import render, verdict

ROOT = Path(__file__).resolve().parent.parent
MB_PER_1000 = 15.0  # target: resident memory per 1000 definitions


def resident_bytes() -> int:
    """Return this process's resident set size in bytes."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        # Without /proc, the peak is the best available (kilobytes on Linux).
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def section(sizes: list[int], directory: Path) -> str | None:
    """Measure resident memory in child processes against one with none."""
    if not sizes:
        return None
    progress(f"memory: child processes for N = 0, {', '.join(map(str, sizes))}")
    reports = measure([0, *sizes], directory)
    base = reports[0]["rss"]
    mb = 1024 * 1024
    rows = [["0", f"{base / mb:.1f}", "", "", ""]]
    for size in sizes:
        report = reports[size]
        if report["series"] != size:
            raise RuntimeError(
                f"The child with {size} definitions exported {report['series']}."
            )
        extra = report["rss"] - base
        per_1000 = extra / mb / (size / 1000)
        rows.append(
            [
                str(size),
                f"{report['rss'] / mb:.1f}",
                f"{extra / mb:.1f}",
                f"{per_1000:.1f}",
                verdict(per_1000 <= MB_PER_1000),
            ]
        )
    return (
        "4. Resident memory of a process holding N constant definitions (MB)\n"
        + render(
            ["N", "RSS", "over none", "per 1000", f"per 1000 <= {MB_PER_1000:g} MB"],
            rows,
        )
        + "\n\nEach N in a fresh process on SQLite, after two scrapes of "
        "/metrics; the definitions were written by another process."
    )


def measure(sizes: list[int], directory: Path) -> dict[int, dict]:
    """Return {N: report} for each N in `sizes`, each from its own child process.

    The children of each step run side by side: resident memory is per process.
    """
    databases = {size: directory / f"memory-{size}.sqlite3" for size in sizes}
    _children([(databases[size], "populate", size) for size in sizes])
    reports = _children([(databases[size], "hold", size) for size in sizes])
    return dict(zip(sizes, reports, strict=True))


def _children(runs: list[tuple[Path, str, int]]) -> list[dict]:
    started = []
    for database, action, size in runs:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "METRICDEMO_BENCH_SQLITE": str(database),
            # Memory is measured on SQLite alone, with no second database.
            "DATABASE_URL": "",
        }
        command = [sys.executable, "-m", "bench", "memory-child", action, str(size)]
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append((process, action, size))
    reports = []
    for process, action, size in started:
        stdout, stderr = process.communicate(timeout=300)
        if process.returncode != 0:
            raise RuntimeError(f"The memory child ({action} {size}) failed:\n{stderr}")
        reports.append(json.loads(stdout.strip().splitlines()[-1]))
    return reports


def child(action: str, size: int) -> int:
    """Run in a child process: create the database, or hold it and report memory."""
    import django

    django.setup()
    from django.db import connection

    from bench import workload

    if action == "populate":
        connection.creation.create_test_db(
            verbosity=0, autoclobber=True, serialize=False
        )
        workload.add_definitions(workload.constant_definitions(0, size))
        print(json.dumps({"definitions": size}))
        return 0

    from django.test import Client

    client = Client()
    for _ in range(2):
        response = client.get("/metrics")
        if response.status_code != 200:
            raise RuntimeError(f"/metrics answered {response.status_code}")
    # Count the series, then drop the text: only what serving keeps is measured.
    series = response.content.count(b"\nbench_series_")
    del response
    gc.collect()
    rss = resident_bytes()
    print(json.dumps({"definitions": size, "rss": rss, "series": series}))
    return 0
