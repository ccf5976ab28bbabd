"""Measure the /metrics scrape against bare exporters and print one table.

``python -m bench`` (or ``make bench``) runs every measurement in this process,
except resident memory, which needs fresh child processes. Each time is the
median of repeated runs taken side by side with its references; each target is
marked PASS or MISS, and the run exits 0 either way.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

# Targets.
SCRAPE_RATIO = 1.25  # app collector / bare OpenTelemetry, every N
GROWTH = 11.0  # time for 10x the definitions: "about 10x"
STATEMENTS = 2  # SQL statements per steady scrape of 100 row counts
CHANGE_EXTRA = 0.050  # seconds more for the first scrape after a change
MB_PER_1000 = 15.0  # resident memory per 1000 definitions


@dataclass(frozen=True)
class Config:
    """How much to measure; the defaults are the full run."""

    sizes: tuple[int, ...] = (100, 1000, 10000)
    rounds: tuple[int, ...] = (30, 20, 12)
    warmup: int = 3
    row_counts: int = 100
    rows_per_model: int = 1000
    row_count_rounds: int = 20
    change_size: int = 1000
    change_rounds: int = 20
    memory_sizes: tuple[int, ...] = (1000, 10000)
    profile_size: int = 1000
    profile_scrapes: int = 10
    top_functions: int = 12


#: A run small enough for the test suite: it proves the harness still works.
QUICK = Config(
    sizes=(5, 50),
    rounds=(2, 2),
    warmup=1,
    row_counts=20,
    rows_per_model=20,
    row_count_rounds=2,
    change_size=5,
    change_rounds=2,
    memory_sizes=(5,),
    profile_size=5,
    profile_scrapes=1,
    top_functions=5,
)


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
    parser.add_argument("child", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        # python -m bench memory-child populate|hold N
        from bench import memory

        _, action, size = args.child
        return memory.child(action, int(size))

    config = QUICK if args.quick else Config()
    if args.profile:
        config = replace(config, top_functions=30)
    with tempfile.TemporaryDirectory(prefix="metricdemo-bench-") as directory:
        os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
        os.environ["METRICDEMO_BENCH_SQLITE"] = str(Path(directory) / "bench.sqlite3")
        import django

        django.setup()
        report = Benchmark(config, Path(directory), long_profile=args.profile).run()
    print(report)
    return 0


_STARTED = time.monotonic()


def progress(message: str) -> None:
    """Say what is being measured, on stderr, so a long run shows it is alive."""
    elapsed = time.monotonic() - _STARTED
    print(f"[bench {elapsed:5.1f} s] {message}", file=sys.stderr, flush=True)


class Benchmark:
    """Run the four measurements and collect their sections of the report."""

    def __init__(self, config: Config, directory: Path, long_profile: bool) -> None:
        from django.test import Client
        from prometheus_client import CollectorRegistry, generate_latest

        from metricdemo import telemetry

        self.config = config
        self.directory = directory
        self.long_profile = long_profile
        self.client = Client()
        # The app's collector alone, without Django, the process collectors or
        # django-prometheus: what the OpenTelemetry floor is compared with.
        self._app_registry = CollectorRegistry(auto_describe=False)
        self._app_registry.register(telemetry.get_telemetry().collector)
        self._generate_latest = generate_latest
        self.profiles: list[str] = []

    def endpoint(self) -> bytes:
        """Scrape /metrics through Django's test client: the full request path."""
        response = self.client.get("/metrics")
        if response.status_code != 200:
            raise RuntimeError(f"/metrics answered {response.status_code}")
        return response.content

    def app_collector(self) -> bytes:
        """Scrape the app's collector alone."""
        return self._generate_latest(self._app_registry)

    def run(self) -> str:
        """Measure everything and return the report."""
        from django.db import connections

        from bench import routers, workload

        aliases = ["default", *(["url"] if "url" in connections.settings else [])]
        if "url" in aliases:
            _require_driver("url")
        progress(f"creating databases: {', '.join(_vendor(a) for a in aliases)}")
        with workload.throwaway_databases(aliases):
            try:
                row_rows, shapes = [], []
                for alias in aliases:
                    with routers.using(alias):
                        row, shape = self.measure_row_counts(alias)
                    row_rows.append(row)
                    shapes.append(shape)
                constants = self.measure_constants()
            finally:
                _close_worker_connections()
        memory = self.measure_memory()
        progress("done")
        return "\n\n".join(
            [
                self.header(aliases),
                constants[0],
                self.row_count_section(row_rows, shapes),
                *constants[1:],
                *memory,
                *self.profiles,
            ]
        )

    # Header ----------------------------------------------------------------

    def header(self, aliases: list[str]) -> str:
        """Describe the machine and the versions measured."""
        import sqlite3

        from django.db import connections

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

    # 1 and 3: constants, growth, the first scrape after a change ------------

    def measure_constants(self) -> list[str]:
        """Measure N constant definitions against the references, for every N."""
        from bench import references, timing, workload
        from bench.table import ms, ratio, render, verdict
        from metricdemo.models import MetricDefinition

        config = self.config
        rows, medians_by_size, change = [], {}, None
        workload.replace_definitions([])
        made = 0
        for size, rounds in zip(config.sizes, config.rounds, strict=True):
            progress(f"constants: N={size}, {rounds} runs")
            workload.add_definitions(workload.constant_definitions(made, size))
            made = size
            stored = list(MetricDefinition.objects.order_by("name"))
            endpoint_body = self.endpoint()
            app_body = self.app_collector()
            floor = references.otel_floor(stored)
            copy = references.otel_copy(app_body)
            plain = references.plain_registry(stored)
            try:
                _same_series(
                    size,
                    endpoint=endpoint_body,
                    app=app_body,
                    floor=floor.scrape(),
                    plain=self._generate_latest(plain),
                )
                _same_sample_count(app_body, copy.scrape())
                statements = self.steady_statements(self.app_collector)
                medians = timing.interleaved(
                    {
                        "endpoint": self.endpoint,
                        "app": self.app_collector,
                        "floor": floor.scrape,
                        "copy": copy.scrape,
                        "plain": lambda p=plain: self._generate_latest(p),
                    },
                    rounds=rounds,
                    warmup=config.warmup,
                )
                if size == config.profile_size:
                    self.profile_constants(size, medians, copy, app_body)
            finally:
                floor.close()
                copy.close()
            medians_by_size[size] = medians
            app_ratio = medians.ratio("app", "floor")
            rows.append(
                [
                    size,
                    rounds,
                    _sample_count(app_body),
                    len(statements),
                    ms(medians["endpoint"]),
                    ms(medians["app"]),
                    ms(medians["floor"]),
                    ms(medians["copy"]),
                    ms(medians["plain"]),
                    ratio(medians.ratio("endpoint", "floor")),
                    ratio(app_ratio),
                    verdict(app_ratio <= SCRAPE_RATIO),
                ]
            )
            if size == config.change_size:
                change = self.measure_change(size)
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
        growth_rows = []
        sizes = list(config.sizes)
        for small, large in zip(sizes, sizes[1:], strict=False):
            grow = {
                key: medians_by_size[large][key] / medians_by_size[small][key]
                for key in ("endpoint", "app", "floor", "copy", "plain")
            }
            # Growth is judged per 10x definitions, whatever the step.
            allowed = GROWTH * (large / small) / 10
            growth_rows.append(
                [
                    f"{small} -> {large}",
                    ratio(grow["endpoint"]),
                    ratio(grow["app"]),
                    ratio(grow["floor"]),
                    ratio(grow["copy"]),
                    ratio(grow["plain"]),
                    verdict(grow["app"] <= allowed),
                ]
            )
        growth = render(
            [
                "N",
                "endpoint",
                "app",
                "OTel floor",
                "OTel, app series",
                "plain",
                f"app <= {GROWTH:g}x per 10x N",
            ],
            growth_rows,
        )
        sections = [
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
            "\n\nGrowth of the median for 10x the definitions\n" + growth,
        ]
        if change is not None:
            sections.append(change)
        return sections

    def measure_change(self, size: int) -> str:
        """Time steady scrapes against scrapes right after one definition's edit."""
        from bench import workload
        from bench.table import ms, ratio, render, verdict
        from metricdemo.models import MetricDefinition

        config = self.config
        progress(f"first scrape after a change: N={size}, {config.change_rounds} pairs")
        definition = MetricDefinition.objects.get(name=workload.series_name(0))

        def edit() -> None:
            definition.value += 1
            definition.save()

        steady, changed = [], []
        for round_number in range(config.warmup + config.change_rounds):
            # The collector is paused, as in every interleaved measurement.
            gc.collect()
            gc.disable()
            try:
                started = time.perf_counter()
                self.endpoint()
                steady_seconds = time.perf_counter() - started
                edit()
                started = time.perf_counter()
                self.endpoint()
                changed_seconds = time.perf_counter() - started
            finally:
                gc.enable()
            if round_number >= config.warmup:
                steady.append(steady_seconds)
                changed.append(changed_seconds)
        steady_statements = len(self.steady_statements(self.endpoint))
        edit()
        after_statements = len(self.statements_of(self.endpoint))
        steady_median = statistics.median(steady)
        changed_median = statistics.median(changed)
        # Each pair was timed moments apart: the median of the differences.
        extra = statistics.median(c - s for c, s in zip(changed, steady, strict=True))
        after_steady = statistics.median(
            c / s for c, s in zip(changed, steady, strict=True)
        )
        table = render(
            [
                "N",
                "pairs",
                "steady",
                "after change",
                "extra",
                "after/steady",
                "SQL steady",
                "SQL after",
                f"extra <= {CHANGE_EXTRA * 1000:g} ms",
            ],
            [
                [
                    size,
                    config.change_rounds,
                    ms(steady_median),
                    ms(changed_median),
                    ms(extra),
                    ratio(after_steady),
                    steady_statements,
                    after_statements,
                    verdict(extra <= CHANGE_EXTRA),
                ]
            ],
        )
        return (
            "3. First scrape after one definition changes (endpoint, ms)\n"
            + table
            + "\n\nEach pair: a steady scrape, then save() of one definition's value "
            "(not timed), then the scrape that reloads the definitions."
        )

    # 2: row counts -----------------------------------------------------------

    def measure_row_counts(self, alias: str) -> tuple[list, str]:
        """Measure the row-count definitions on `alias`; return a row and shapes."""
        from bench import references, timing, workload
        from bench.table import ms, ratio, verdict
        from metricdemo.models import MetricDefinition

        config = self.config
        vendor = _vendor(alias)
        progress(f"row counts on {vendor}: {config.row_counts} definitions")
        workload.fill_shop(config.rows_per_model)
        workload.replace_definitions(workload.row_count_definitions(config.row_counts))
        stored = list(MetricDefinition.objects.order_by("name"))
        endpoint_body = self.endpoint()
        app_body = self.app_collector()
        floor = references.otel_row_counts(stored)
        union = references.one_statement(stored)
        try:
            floor_body = floor.scrape()
            _same_series(None, endpoint=endpoint_body, app=app_body, floor=floor_body)
            union_total = sum(n for _, _, n in union.all())
            floor_total = sum(value for (_, _, value), k in _series(floor_body).items())
            if union_total != floor_total:
                raise RuntimeError(
                    f"The UNION ALL statement counts {union_total} rows in all, "
                    f"the callbacks {floor_total}."
                )
            statements = self.steady_statements(self.app_collector)
            medians = timing.interleaved(
                {
                    "endpoint": self.endpoint,
                    "app": self.app_collector,
                    "floor": floor.scrape,
                    "union": lambda: list(union.all()),
                },
                rounds=config.row_count_rounds,
                warmup=config.warmup,
            )
            self.profile_row_counts(stored, alias)
        finally:
            floor.close()
        models = len({d.model for d in stored})
        filtered = sum(bool(d.filters) for d in stored)
        grouped = sum(bool(d.group_by) for d in stored)
        row = [
            vendor,
            f"{len(stored)} ({models} models, {filtered} filtered, {grouped} grouped)",
            _sample_count(app_body, "bench_series"),
            len(statements),
            ms(medians["endpoint"]),
            ms(medians["app"]),
            ms(medians["floor"]),
            ms(medians["union"]),
            ratio(medians.ratio("app", "floor")),
            verdict(len(statements) <= STATEMENTS),
        ]
        shape = f"Statements of one steady scrape on {vendor}:\n" + "\n".join(
            f"  {count:4d} x {text}"
            for text, count in Counter(_shape(s) for s in statements).most_common()
        )
        return row, shape

    def row_count_section(self, rows: list, shapes: list[str]) -> str:
        """Lay out the row-count measurements."""
        from bench.table import render

        table = render(
            [
                "database",
                "definitions",
                "series",
                "SQL",
                "endpoint",
                "app",
                "OTel + ORM callbacks",
                "one UNION ALL",
                "app/OTel",
                f"SQL <= {STATEMENTS}",
            ],
            rows,
        )
        return (
            f"2. Row counts: {self.config.row_counts} row_count definitions, steady "
            "state, no cache (ms)\n"
            + table
            + "\n\nSQL: statements per steady app scrape, on every thread's "
            "connection. OTel + ORM callbacks: a bare MeterProvider whose callbacks "
            "each run the same ORM count in the scraping thread. one UNION ALL: "
            "every count in one statement through the ORM, no exporter.\n\n"
            + "\n\n".join(shapes)
        )

    # SQL statements ----------------------------------------------------------

    def steady_statements(self, scrape: Callable[[], Any]) -> list[str]:
        """Return the statements of the median steady scrape."""
        from tests.queries import steady_statements

        return steady_statements(scrape)

    def statements_of(self, scrape: Callable[[], Any]) -> list[str]:
        """Return the statements of one scrape."""
        from tests.queries import all_queries

        with all_queries() as statements:
            scrape()
            return list(statements)

    # 4: memory ---------------------------------------------------------------

    def measure_memory(self) -> list[str]:
        """Measure resident memory in child processes against one with none."""
        from bench import memory
        from bench.table import render, verdict

        sizes = list(self.config.memory_sizes)
        if not sizes:
            return []
        progress(f"memory: child processes for N = 0, {', '.join(map(str, sizes))}")
        reports = memory.measure([0, *sizes], self.directory)
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
        return [
            "4. Resident memory of a process holding N constant definitions (MB)\n"
            + render(
                [
                    "N",
                    "RSS",
                    "over none",
                    "per 1000",
                    f"per 1000 <= {MB_PER_1000:g} MB",
                ],
                rows,
            )
            + "\n\nEach N in a fresh process on SQLite, after two scrapes of "
            "/metrics; the definitions were written by another process."
        ]

    # Profiles ----------------------------------------------------------------

    def profile_constants(
        self, size: int, medians: Any, copy: Any, app_body: bytes
    ) -> None:
        """Profile the app collector with `size` constants and time its parts."""
        from bench import profiling, timing
        from bench.table import ms
        from metricdemo import telemetry

        progress(f"profiling constants: N={size}")
        scrapes = self.config.profile_scrapes
        lines = [f"Where the app collector's time goes, N={size} constant definitions"]
        families = _family_sizes(app_body)
        overflowing = sorted(
            name for name, (_, overflow) in families.items() if overflow
        )
        lines.append(
            f"The app exports {_sample_count(app_body)} series for {size} "
            "definitions: "
            + ", ".join(
                f"{name} {count}"
                for name, (count, _) in sorted(families.items(), key=lambda f: -f[1][0])
                if not name.startswith("bench_series_")
            )
            + f", and {size} definition series."
            + (
                " Series past OpenTelemetry's cardinality limit (2000 points per "
                "instrument) are folded into one otel_metric_overflow series in: "
                + ", ".join(overflowing)
                + "."
                if overflowing
                else ""
            )
        )
        lines.append(
            f"Bare OpenTelemetry exporting those same series takes "
            f"{ms(medians['copy'])} ms, {medians.ratio('copy', 'floor'):.2f}x the "
            f"floor's {ms(medians['floor'])} ms; the app takes {ms(medians['app'])} "
            f"ms, {medians.ratio('app', 'copy'):.2f}x that."
        )
        prepare = telemetry.get_telemetry().instruments.prepare
        parts = timing.interleaved(
            {"app": self.app_collector, "prepare": prepare},
            rounds=max(scrapes, 3),
            warmup=1,
        )
        lines.append(
            f"Wall clock, no profiler: DefinitionInstruments.prepare() (change "
            f"check, evaluation, observations) takes {ms(parts['prepare'])} ms "
            f"of the app's {ms(parts['app'])} ms "
            f"({parts.ratio('prepare', 'app'):.0%}); the rest is the SDK running "
            f"the callbacks, the exporter and generate_latest."
        )
        in_a_row = 2 * scrapes
        app_on, app_off = timing.with_collector(self.app_collector, in_a_row)
        copy_on, copy_off = timing.with_collector(copy.scrape, in_a_row)
        lines.append(
            f"Garbage collection, paused in the tables, over {in_a_row} scrapes "
            f"in a row: the app takes {ms(app_on)} ms per scrape with it and "
            f"{ms(app_off)} ms without ({app_on / app_off - 1:+.0%}); bare "
            f"OpenTelemetry with the app's series {ms(copy_on)} and "
            f"{ms(copy_off)} ms ({copy_on / copy_off - 1:+.0%})."
        )
        lines += self._profile_lines(profiling.profile(self.app_collector, scrapes))
        lines.append("\nDefinitionInstruments.prepare() alone:")
        lines += self._profile_lines(profiling.profile(prepare, scrapes))
        self.profiles.append("\n".join(lines))

    def profile_row_counts(self, stored: list, alias: str) -> None:
        """Break the row-count scrape down by wall clock; profile it on SQLite."""
        from django.db import connections

        from bench import profiling, references, timing
        from bench.table import ms, render
        from metricdemo import evaluation, sources

        progress(f"profiling row counts on {_vendor(alias)}")
        connection = connections[alias]
        scrapes = self.config.profile_scrapes

        def observe_all() -> None:
            for definition in stored:
                sources.observe(definition)

        def check_all() -> None:
            for definition in stored:
                sources.row_count_refusals(
                    sources.resolve_model(definition.model),
                    definition.filters,
                    definition.group_by,
                )

        union = references.one_statement(stored)
        counts_sql = _captured(
            connection, lambda: [references.count_rows(d) for d in stored]
        )
        union_sql = _captured(connection, lambda: list(union.all()))
        cases = {
            "app": self.app_collector,
            "counts": lambda: [references.count_rows(d) for d in stored],
            "sql": lambda: _execute(connection, counts_sql),
            "union": lambda: list(union.all()),
            "union sql": lambda: _execute(connection, union_sql),
            "evaluate_many": lambda: evaluation.evaluate_many(stored),
            "observe": observe_all,
            "checks": check_all,
        }
        parts = timing.interleaved(
            cases, rounds=self.config.row_count_rounds, warmup=self.config.warmup
        )
        described = [
            ("app", "the app's collector: the scrape (table above)"),
            ("evaluate_many", "evaluation.evaluate_many(): worker threads, no OTel"),
            ("observe", "sources.observe() of each, one after another, this thread"),
            ("checks", "  of which the safe-source checks (row_count_refusals)"),
            ("counts", "the same counts with plain ORM calls, this thread"),
            ("sql", f"  their {len(counts_sql)} statements' SQL alone, precompiled"),
            ("union", "one UNION ALL statement through the ORM"),
            ("union sql", "  its SQL alone, precompiled"),
        ]
        rows = [
            [text, ms(parts[key]), f"{parts.ratio(key, 'app'):.0%}"]
            for key, text in described
        ]
        lines = [
            f"Where the row-count scrape's time goes, {len(stored)} definitions on "
            f"{connection.display_name} (wall clock, medians of "
            f"{self.config.row_count_rounds} interleaved runs)",
            render(["work", "ms", "of app"], rows),
        ]
        if alias != "default":
            self.profiles.append("\n".join(lines))
            return
        lines.append(
            "\nThe scraping thread under cProfile (the counts run on worker "
            "threads, so it mostly waits):"
        )
        lines += self._profile_lines(profiling.profile(self.app_collector, scrapes))
        lines.append(
            "\nWhat the worker threads run, profiled in this thread: "
            "sources.observe() of every definition:"
        )
        lines += self._profile_lines(profiling.profile(observe_all, scrapes))
        self.profiles.append("\n".join(lines))

    def _profile_lines(self, stats: Any) -> list[str]:
        from bench import profiling
        from bench.table import render

        scrapes = self.config.profile_scrapes

        area_rows = [
            [area, f"{share:.0%}", f"{seconds / scrapes * 1000:.2f}"]
            for area, seconds, share in profiling.areas(stats)
            if share >= 0.005
        ]
        lines = [
            f"cProfile, {scrapes} runs; self time by area, builtins counted with "
            "their callers (the profiler inflates code that makes many small "
            "calls):",
            render(["area", "share", "ms/run, profiled"], area_rows),
        ]
        orders = ["tottime", "cumtime"] if self.long_profile else ["tottime"]
        for order in orders:
            what = "self" if order == "tottime" else "cumulative"
            rows = [
                [
                    name,
                    calls // scrapes,
                    f"{own / scrapes * 1000:.2f}",
                    f"{cumulative / scrapes * 1000:.2f}",
                ]
                for name, calls, own, cumulative in profiling.top(
                    stats, self.config.top_functions, order
                )
            ]
            lines += [
                f"Top functions by {what} time:",
                render(["function", "calls/run", "self ms", "cumulative ms"], rows),
            ]
        return lines


# Helpers -------------------------------------------------------------------


def _vendor(alias: str) -> str:
    from django.db import connections

    return connections[alias].vendor


def _require_driver(alias: str) -> None:
    from django.core.exceptions import ImproperlyConfigured
    from django.db import connections

    try:
        connections[alias]
    except ImproperlyConfigured as exc:
        raise SystemExit(
            f"DATABASE_URL names a database whose driver is missing ({exc}). "
            "Install the drivers with: .venv/bin/pip install -e '.[db]'"
        ) from None


def _server_version(connection: Any) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SHOW server_version"
            if connection.vendor == "postgresql"
            else "SELECT VERSION()"
        )
        return str(cursor.fetchone()[0]).split()[0]


def _close_worker_connections() -> None:
    # The evaluation threads keep connections open; a database cannot be
    # dropped while they do.
    from metricdemo import evaluation

    evaluation.get_evaluator().close_connections()


def _series(body: bytes, prefix: str = "bench_series") -> Counter:
    from prometheus_client.parser import text_string_to_metric_families

    from bench.references import SCOPE_LABELS

    found: Counter = Counter()
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name.startswith(prefix):
                labels = tuple(
                    sorted(
                        (k, v)
                        for k, v in sample.labels.items()
                        if k not in SCOPE_LABELS
                    )
                )
                found[(sample.name, labels, sample.value)] += 1
    return found


def _same_series(expected: int | None, **bodies: bytes) -> None:
    """Raise unless every exposition holds the same definition series."""
    series = {name: _series(body) for name, body in bodies.items()}
    first_name, first = next(iter(series.items()))
    if expected is not None and sum(first.values()) != expected:
        raise RuntimeError(
            f"{first_name} exports {sum(first.values())} series, not {expected}."
        )
    for name, found in series.items():
        if found != first:
            raise RuntimeError(
                f"{name} and {first_name} export different series: "
                f"{sorted((found - first).elements())[:3]} against "
                f"{sorted((first - found).elements())[:3]}."
            )


def _sample_count(body: bytes, prefix: str = "") -> int:
    return sum(
        1
        for line in body.decode().splitlines()
        if line
        and not line.startswith("#")
        and line.startswith(prefix)
        and not line.startswith("target_info")
    )


def _same_sample_count(app_body: bytes, copy_body: bytes) -> None:
    if _sample_count(app_body) != _sample_count(copy_body):
        raise RuntimeError(
            f"The copy of the app's series exports {_sample_count(copy_body)} "
            f"samples, the app {_sample_count(app_body)}."
        )


def _family_sizes(body: bytes) -> dict[str, tuple[int, bool]]:
    """Return {family: (samples, whether one is an overflow series)}."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        family.name: (
            len(family.samples),
            any("otel_metric_overflow" in s.labels for s in family.samples),
        )
        for family in text_string_to_metric_families(body.decode())
        if family.name != "target"
    }


def _captured(connection: Any, work: Callable[[], Any]) -> list[tuple[str, Any]]:
    """Return the (sql, params) of the statements `work` runs on `connection`."""
    statements = []

    def record(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        work()
    return statements


def _execute(connection: Any, statements: list[tuple[str, Any]]) -> None:
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
            cursor.fetchall()


def _shape(sql: str) -> str:
    """Return a statement with its literals and table names elided, shortened."""
    text = re.sub(r'"bench_shop_\w+"', "<table>", sql)
    text = re.sub(r"'[^']*'|\b\d+(\.\d+)?\b|%s", "?", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= 110 else text[:107] + "..."
