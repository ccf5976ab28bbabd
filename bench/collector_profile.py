"""Profile the app's collection with N constant definitions and time its parts."""

from __future__ import annotations

from bench import exposition, profiling, references, timing
from bench.config import Config
from bench.progress import progress
from bench.scrapes import Scrapes
from bench.table import ms
from metricdemo import telemetry


def measure(size: int, app_body: bytes, config: Config, scrapes: Scrapes) -> str:
    """Say where the app's scrape time goes with `size` constants.

    `app_body` is the app's exposition with those definitions; the parts
    are timed side by side here.
    """
    progress(f"profiling constants: N={size}")
    runs = config.profile_scrapes
    lines = [f"Where the app collector's time goes, N={size} constant definitions"]
    families = exposition.family_sizes(app_body)
    overflowing = sorted(name for name, (_, overflow) in families.items() if overflow)
    lines.append(
        f"The app exports {exposition.sample_count(app_body)} series for {size} "
        "definitions: "
        + ", ".join(
            f"{name} {count}"
            for name, (count, _) in sorted(families.items(), key=lambda f: -f[1][0])
            if not name.startswith("bench_series_")
        )
        + f", and {size} definition series."
        + (
            " Series past OpenTelemetry's cardinality limit are folded into one "
            "otel_metric_overflow series in: " + ", ".join(overflowing) + "."
            if overflowing
            else ""
        )
    )
    collector = telemetry.get_telemetry().collector
    prepare = telemetry.get_telemetry().instruments.prepare
    kept = collector.collected()
    # A bare exporter of every series the app exports, self-metrics included.
    copy = references.otel_copy(app_body)
    try:
        exposition.same_sample_count(app_body, copy.scrape())
        parts = timing.interleaved(
            {
                "endpoint": scrapes.endpoint,
                "app": scrapes.app_collector,
                "collected": collector.collected,
                "prepare": prepare,
                "render": lambda: scrapes.render(kept),
                "copy": copy.scrape,
            },
            rounds=max(runs, 3),
            warmup=1,
        )
        in_a_row = 2 * runs
        app_on, app_off = timing.with_collector(scrapes.app_collector, in_a_row)
        copy_on, copy_off = timing.with_collector(copy.scrape, in_a_row)
    finally:
        copy.close()
    sdk = parts["collected"] - parts["prepare"]
    lines.append(
        f"Wall clock, no profiler: of the app's {ms(parts['app'])} ms, "
        f"DefinitionInstruments.prepare() (change check, evaluation, "
        f"observations) takes {ms(parts['prepare'])} ms, the rest of "
        f"collected() (the SDK's collect of both providers, the clash check) "
        f"{ms(sdk)} ms, and rendering one kept collection "
        f"{ms(parts['render'])} ms. The endpoint took {ms(parts['endpoint'])} "
        f"ms in the same rounds, {parts.ratio('endpoint', 'app'):.2f}x the app "
        f"(Django, the view, the registry's other collectors, rendered in the "
        f"same pass). Bare OpenTelemetry exporting the "
        f"app's series with its Prometheus exporter takes {ms(parts['copy'])} ms; "
        f"the app takes {parts.ratio('app', 'copy'):.2f}x that."
    )
    lines.append(
        f"Garbage collection, paused in the tables, over {in_a_row} scrapes "
        f"in a row: the app takes {ms(app_on)} ms per scrape with it and "
        f"{ms(app_off)} ms without ({app_on / app_off - 1:+.0%}); bare "
        f"OpenTelemetry with the app's series {ms(copy_on)} and "
        f"{ms(copy_off)} ms ({copy_on / copy_off - 1:+.0%})."
    )
    lines += profiling.report(scrapes.app_collector, config)
    lines.append("\nDefinitionInstruments.prepare() alone:")
    lines += profiling.report(prepare, config)
    return "\n".join(lines)
