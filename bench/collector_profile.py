"""Profile the app's collector with N constant definitions and time its parts."""

from __future__ import annotations

from bench import exposition, profiling, timing
from bench.config import Config
from bench.progress import progress
from bench.references import OtelExporter
from bench.scrapes import Scrapes
from bench.table import ms
from bench.timing import Samples
from metricdemo import telemetry


def measure(
    size: int,
    medians: Samples,
    copy: OtelExporter,
    app_body: bytes,
    config: Config,
    scrapes: Scrapes,
) -> str:
    """Say where the app collector's time goes with `size` constants.

    `medians` are the scrape cost's timings at that size and `copy` its bare
    exporter of the app's series.
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
        {"app": scrapes.app_collector, "prepare": prepare},
        rounds=max(runs, 3),
        warmup=1,
    )
    lines.append(
        f"Wall clock, no profiler: DefinitionInstruments.prepare() (change "
        f"check, evaluation, observations) takes {ms(parts['prepare'])} ms "
        f"of the app's {ms(parts['app'])} ms "
        f"({parts.ratio('prepare', 'app'):.0%}); the rest is the SDK running "
        f"the callbacks, the exporter and generate_latest."
    )
    in_a_row = 2 * runs
    app_on, app_off = timing.with_collector(scrapes.app_collector, in_a_row)
    copy_on, copy_off = timing.with_collector(copy.scrape, in_a_row)
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
