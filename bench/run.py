"""Measure the /metrics scrape against bare exporters and print one table.

``python -m bench`` (or ``make bench``) runs every measurement in this process,
except resident memory, which needs fresh child processes. Each time is the
median of repeated runs taken side by side with its references; each target is
marked PASS or MISS, and the run exits 0 either way.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import django
from django.db import connections

from bench import header, memory, routers, soak
from bench.config import QUICK, Config
from bench.progress import progress


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, or one of its memory children."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="a tiny run that checks the harness"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print longer profiles (top functions by self and cumulative time)",
    )
    parser.add_argument(
        "--scrape-cost",
        action="store_true",
        help="measure section 1 alone (with the first scrape after a change "
        "and the app collector's profile it takes)",
    )
    parser.add_argument("child", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child and args.child[0] == "soak-child":
        # python -m bench soak-child populate|soak|fresh N EDITS
        _, role, size, edits = args.child
        return soak.child(role, int(size), int(edits))
    if args.child:
        # python -m bench memory-child populate|hold N
        _, action, size = args.child
        return memory.child(action, int(size))

    config = QUICK if args.quick else Config()
    if args.profile:
        config = replace(config, top_functions=30, long_profile=True)
    with tempfile.TemporaryDirectory(prefix="metricdemo-bench-") as directory:
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
        os.environ["METRICDEMO_BENCH_SQLITE"] = str(Path(directory) / "bench.sqlite3")
        django.setup()
        if args.scrape_cost:
            report = measure_scrape_cost(config)
        else:
            report = measure(config, Path(directory))
    print(report)
    return 0


def measure_scrape_cost(config: Config) -> str:
    """Measure section 1 alone, on SQLite, and return its part of the report."""
    # Imported here for the reason measure() gives.
    from bench import scrape_cost, workload
    from bench.scrapes import Scrapes

    progress("creating databases: sqlite")
    with workload.throwaway_databases(["default"]):
        try:
            with routers.using("default"):
                constants = scrape_cost.measure(config, Scrapes())
        finally:
            workload.close_worker_connections()
    progress("done")
    sections = [
        header.describe(["default"]),
        constants.section,
        constants.after_change,
        constants.profile,
    ]
    return "\n\n".join(section for section in sections if section is not None)


def measure(config: Config, directory: Path) -> str:
    """Measure everything and return the report, its sections in order."""
    # Imported here, not at the top: these import the app's models, which
    # need the django.setup() that main() runs first.
    from bench import (
        admin_pages,
        aggregates,
        imports,
        row_counts,
        schedule,
        scrape_cost,
        served,
        workload,
    )
    from bench.scrapes import Scrapes

    scrapes = Scrapes()
    aliases = ["default", *(["url"] if "url" in connections.settings else [])]
    if "url" in aliases:
        workload.require_driver("url")
    vendors = ", ".join(connections[alias].vendor for alias in aliases)
    progress(f"creating databases: {vendors}")
    with workload.throwaway_databases(aliases):
        try:
            databases, aggregated = [], []
            for alias in aliases:
                with routers.using(alias):
                    databases.append(row_counts.measure(alias, config, scrapes))
                    if alias == "default":
                        # Before section 6 fills one table with a million rows.
                        all_served = served.measure(config, scrapes)
                        admin = admin_pages.measure(config)
                    aggregated.append(aggregates.measure(alias, config, scrapes))
            constants = scrape_cost.measure(config, scrapes)
            imported = imports.measure(config)
            with routers.using("default"):
                scheduled = schedule.measure(config, scrapes)
        finally:
            workload.close_worker_connections()
    resident = memory.section(list(config.memory_sizes), directory)
    soaked = soak.section(
        config.soak_size, config.soak_edits, config.soak_rounds, directory
    )
    progress("done")
    sections = [
        header.describe(aliases),
        constants.section,
        row_counts.section(config, databases),
        constants.after_change,
        resident,
        imported,
        scheduled,
        aggregates.section(config, aggregated),
        soaked,
        all_served,
        admin,
        *(database.breakdown for database in databases),
        constants.profile,
    ]
    return "\n\n".join(section for section in sections if section is not None)
