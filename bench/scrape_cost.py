"""Section 1: the scrape cost of N constant definitions against bare OpenTelemetry."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import generate_latest

from bench import (
    after_change,
    collector_profile,
    exposition,
    references,
    statements,
    timing,
    workload,
)
from bench.config import Config
from bench.progress import progress
from bench.scrapes import Scrapes
from bench.table import ms, ratio, render, verdict
from bench.timing import Samples
from metricdemo.models import MetricDefinition

# Targets.
SCRAPE_RATIO = 1.25  # app collector / bare OpenTelemetry, every N
GROWTH = 11.0  # time for 10x the definitions: "about 10x"

#: The columns timed at every N, in the order of the tables.
CASES = ("endpoint", "app", "floor", "copy", "plain")


@dataclass(frozen=True)
class ScrapeCost:
    """The section's text, and what was measured at the sizes named for it."""

    section: str
    after_change: str | None
    profile: str | None


def measure(config: Config, scrapes: Scrapes) -> ScrapeCost:
    """Measure N constant definitions against the references, for every N.

    At the sizes `config` names, it also measures the first scrape after a
    change (section 3) and profiles the app's collector, with those N stored.
    """
    rows, medians_by_size, change, profile = [], {}, None, None
    workload.replace_definitions([])
    made = 0
    for size, rounds in zip(config.sizes, config.rounds, strict=True):
        progress(f"constants: N={size}, {rounds} runs")
        workload.add_definitions(workload.constant_definitions(made, size))
        made = size
        stored = list(MetricDefinition.objects.order_by("name"))
        endpoint_body = scrapes.endpoint()
        app_body = scrapes.app_collector()
        floor = references.otel_floor(stored)
        copy = references.otel_copy(app_body)
        plain = references.plain_registry(stored)
        try:
            exposition.same_series(
                size,
                endpoint=endpoint_body,
                app=app_body,
                floor=floor.scrape(),
                plain=generate_latest(plain),
            )
            exposition.same_sample_count(app_body, copy.scrape())
            steady = statements.steady(scrapes.app_collector)
            medians = timing.interleaved(
                {
                    "endpoint": scrapes.endpoint,
                    "app": scrapes.app_collector,
                    "floor": floor.scrape,
                    "copy": copy.scrape,
                    "plain": lambda p=plain: generate_latest(p),
                },
                rounds=rounds,
                warmup=config.warmup,
            )
            if size == config.profile_size:
                profile = collector_profile.measure(
                    size, medians, copy, app_body, config, scrapes
                )
        finally:
            floor.close()
            copy.close()
        medians_by_size[size] = medians
        app_ratio = medians.ratio("app", "floor")
        rows.append(
            [
                size,
                rounds,
                exposition.sample_count(app_body),
                len(steady),
                *(ms(medians[case]) for case in CASES),
                ratio(medians.ratio("endpoint", "floor")),
                ratio(app_ratio),
                verdict(app_ratio <= SCRAPE_RATIO),
            ]
        )
        if size == config.change_size:
            change = after_change.measure(size, config, scrapes)
    scrape = render(
        [
            "N",
            "runs",
            "app series",
            "SQL",
            "endpoint",
            "app",
            "OTel floor",
            "OTel, app series",
            "plain",
            "endpoint/floor",
            "app/floor",
            f"app/floor <= {SCRAPE_RATIO}",
        ],
        rows,
    )
    section = (
        "1. Scrape cost with N constant definitions (ms)\n"
        + scrape
        + "\n\nendpoint: GET /metrics through Django's test client (middleware, "
        "view, every collector of the registry). app: the app's collector "
        "alone with generate_latest. OTel floor: a bare MeterProvider + "
        "PrometheusMetricReader with the same N observable gauges and "
        "attributes. OTel, app series: the same bare setup exporting every "
        "series the app exports (definitions and self-metrics). plain: a "
        "prometheus_client custom collector with the same N series. SQL: "
        "statements per steady app scrape. The target is judged on app/floor."
        "\n\nGrowth of the median for 10x the definitions\n"
        + _growth(list(config.sizes), medians_by_size)
    )
    return ScrapeCost(section, change, profile)


def _growth(sizes: list[int], medians_by_size: dict[int, Samples]) -> str:
    rows = []
    for small, large in zip(sizes, sizes[1:], strict=False):
        grow = {
            case: medians_by_size[large][case] / medians_by_size[small][case]
            for case in CASES
        }
        # Growth is judged per 10x definitions, whatever the step.
        allowed = GROWTH * (large / small) / 10
        rows.append(
            [
                f"{small} -> {large}",
                *(ratio(grow[case]) for case in CASES),
                verdict(grow["app"] <= allowed),
            ]
        )
    return render(
        [
            "N",
            "endpoint",
            "app",
            "OTel floor",
            "OTel, app series",
            "plain",
            f"app <= {GROWTH:g}x per 10x N",
        ],
        rows,
    )
