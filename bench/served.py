"""Section 9: how long a large site of row counts takes until every one is served."""

from __future__ import annotations

import statistics
import time

from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families

from bench import workload
from bench.config import Config
from bench.progress import progress
from bench.scrapes import Scrapes
from bench.table import render, verdict
from metricdemo.conf import DEFAULTS
from metricdemo.evaluation import evaluator
from metricdemo.models import MetricDefinition

#: Target: scrapes until every definition has been served at least once.
SCRAPES = 3


def exported(body: bytes, names: set[str]) -> set[str]:
    """Return which of `names` (exported family names) a scrape served."""
    return {
        family.name
        for family in text_string_to_metric_families(body.decode())
        if family.name in names
    }


def fresh_evaluator() -> None:
    """Start this process's evaluations afresh: no kept values, no slow marks."""
    old = evaluator._evaluator.take()
    if old is not None:
        old.close_connections()


def until_served(scrapes: Scrapes, names: set[str], limit: int) -> tuple[float, int]:
    """Scrape back to back, as a fresh process, until every name was served.

    Returns the seconds from the first scrape until the one that served the
    last name, and how many scrapes that took (limit + 1 if never).
    """
    fresh_evaluator()
    served: set[str] = set()
    started = time.perf_counter()
    for scrape in range(1, limit + 1):
        served |= exported(scrapes.endpoint(), names)
        if served == names:
            return time.perf_counter() - started, scrape
    return time.perf_counter() - started, limit + 1


def measure(config: Config, scrapes: Scrapes) -> str:
    """Measure on SQLite with the default timeouts and return the section."""
    count = config.served_definitions
    progress(f"served: {count} row counts on SQLite, until every one is served")
    # Validated against no others: the names are the previous section's.
    MetricDefinition.objects.all().delete()
    workload.replace_definitions(workload.row_count_definitions(count))
    names = {workload.series_name(i).replace(".", "_") for i in range(count)}
    seconds, taken = [], []
    # The bench lifts the scrape budget for its other sections; this one
    # measures the defaults a site runs with.
    defaults = {
        "SCRAPE_TIMEOUT": DEFAULTS["SCRAPE_TIMEOUT"],
        "TIMEOUT": DEFAULTS["TIMEOUT"],
    }
    with override_settings(METRICDEMO=defaults):
        for _ in range(config.served_rounds):
            took, scraped = until_served(scrapes, names, config.served_limit)
            seconds.append(took)
            taken.append(scraped)
    fresh_evaluator()
    median_scrapes = statistics.median(taken)
    worst = f"{max(seconds):.1f} s / {max(taken)}"
    median_seconds = f"{statistics.median(seconds):.1f}"
    met = verdict(median_scrapes <= SCRAPES)
    headers = ["definitions", "runs", "seconds until all served", "scrapes"]
    headers += ["worst run (s / scrapes)", f"scrapes <= {SCRAPES}"]
    row = [count, len(taken), median_seconds, f"{median_scrapes:g}", worst, met]
    table = render(headers, [row])
    return (
        f"9. Every one served: {count} row_count definitions on SQLite, "
        f"SCRAPE_TIMEOUT {defaults['SCRAPE_TIMEOUT']:g} s, TIMEOUT "
        f"{defaults['TIMEOUT']:g} s, a fresh process scraping back to back "
        "(medians)\n"
        + table
        + "\n\nseconds: from the first scrape until the end of the scrape by "
        "which every definition had been served at least once (each scrape "
        "includes formatting every series); scrapes: how many that took, "
        f"{config.served_limit + 1} meaning not within {config.served_limit}."
    )
