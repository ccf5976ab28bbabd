"""Section 1: the scrape cost of N constant definitions against bare references."""

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

# Targets, judged on the endpoint at the N they name; other N are reported.
FLOOR_RATIO = {1000: 0.6, 10000: 0.5}  # endpoint / bare OpenTelemetry exporter
# endpoint / plain prometheus_client collector with the same names, labels and
# values (the three otel_scope_* labels included)
PLAIN_RATIO = {10000: 2.0}
GROWTH = 11.0  # time for 10x the definitions: "about 10x"

#: The columns timed at every N, in the order of the tables.
CASES = ("endpoint", "app", "sdk", "floor", "plain", "plain5")
HEADINGS = {
    "endpoint": "endpoint",
    "app": "app",
    "sdk": "SDK collect()",
    "floor": "OTel floor",
    "plain": "plain",
    "plain5": "plain, same labels",
}


@dataclass(frozen=True)
class ScrapeCost:
    """The section's text, and what was measured at the sizes named for it."""

    section: str
    after_change: str | None
    profile: str | None


def measure(config: Config, scrapes: Scrapes) -> ScrapeCost:
    """Measure N constant definitions against the references, for every N.

    At the sizes `config` names, it also measures the first scrape after a
    change (section 3) and profiles the app's collection, with those N stored.
    """
    times, ratios, medians_by_size = [], [], {}
    change, profile = None, None
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
        sdk = references.sdk_collect(stored)
        plain = references.plain_registry(stored)
        plain5 = references.plain_registry(stored, scope_labels=True)
        try:
            exposition.same_series(
                size,
                endpoint=endpoint_body,
                app=app_body,
                floor=floor.scrape(),
                plain=generate_latest(plain),
                plain_same_labels=generate_latest(plain5),
            )
            steady = statements.steady(scrapes.app_collector)
            medians = timing.interleaved(
                {
                    "endpoint": scrapes.endpoint,
                    "app": scrapes.app_collector,
                    "sdk": sdk.collect,
                    "floor": floor.scrape,
                    "plain": lambda p=plain: generate_latest(p),
                    "plain5": lambda p=plain5: generate_latest(p),
                },
                rounds=rounds,
                warmup=config.warmup,
            )
            if size == config.profile_size:
                profile = collector_profile.measure(size, app_body, config, scrapes)
        finally:
            floor.close()
            sdk.close()
        medians_by_size[size] = medians
        times.append(
            [
                size,
                rounds,
                exposition.sample_count(app_body),
                len(steady),
                *(ms(medians[case]) for case in CASES),
            ]
        )
        to_floor = medians.ratio("endpoint", "floor")
        to_plain = medians.ratio("endpoint", "plain5")
        ratios.append(
            [
                size,
                ratio(to_floor),
                ratio(to_plain),
                ratio(medians.ratio("endpoint", "plain")),
                ratio(medians.ratio("app", "sdk")),
                _judged(to_floor, FLOOR_RATIO.get(size)),
                _judged(to_plain, PLAIN_RATIO.get(size)),
            ]
        )
        if size == config.change_size:
            change = after_change.measure(size, config, scrapes)
    section = (
        "1. Scrape cost with N constant definitions (ms)\n"
        + render(
            ["N", "runs", "app series", "SQL", *(HEADINGS[case] for case in CASES)],
            times,
        )
        + "\n\n"
        + render(
            [
                "N",
                "endpoint/floor",
                "endpoint/plain, same labels",
                "endpoint/plain",
                "app/SDK collect()",
                "endpoint/floor target",
                "endpoint/plain, same labels target",
            ],
            ratios,
        )
        + "\n\nendpoint: GET /metrics through Django's test client (middleware, "
        "view, every collector of the registry). app: the app's collection "
        "(change check, definitions, self-metrics, the SDK's collect) rendered "
        "as the view renders it, without Django or the other collectors. SDK "
        "collect(): a bare MeterProvider (exemplars off, as the app's) with the "
        "same N observable gauges, collected by an ExpositionReader, nothing "
        "formatted. OTel floor: a bare MeterProvider + PrometheusMetricReader "
        "with the same gauges and attributes, scraped with generate_latest. "
        "plain: a prometheus_client custom collector with the same N series and "
        "their 2 labels; plain, same labels: the same with the 3 otel_scope_* "
        "labels the app writes too. SQL: statements per steady app scrape. "
        "Targets: endpoint/floor at most "
        + " and ".join(f"{r:g}x at N={n}" for n, r in FLOOR_RATIO.items())
        + "; endpoint/plain, same labels (the same names, labels and values) "
        "at most "
        + " and ".join(f"{r:g}x at N={n}" for n, r in PLAIN_RATIO.items())
        + "; other N are reported, not judged."
        "\n\nGrowth of the median for 10x the definitions\n"
        + _growth(list(config.sizes), medians_by_size)
    )
    return ScrapeCost(section, change, profile)


def _judged(value: float, target: float | None) -> str:
    """Return '<= target: PASS' or MISS, or nothing where no target is set."""
    if target is None:
        return ""
    return f"<= {target:g}x {verdict(value <= target)}"


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
            *(HEADINGS[case] for case in CASES),
            f"app <= {GROWTH:g}x per 10x N",
        ],
        rows,
    )
