"""Section 5: `metrics import` of N definitions, which must scale linearly."""

from __future__ import annotations

import statistics
import time

from bench.config import Config
from bench.progress import progress
from bench.table import ms, ratio, render, verdict
from metricdemo.models import MetricDefinition
from metricdemo.serialization import import_definitions

PREFIX = "bench.import."
#: Target: the largest import costs at most this much more per definition.
LINEAR_LIMIT = 1.5
HEADING = "5. Import of N definitions (metrics import, into an empty table)"


def entries(size: int) -> list[dict]:
    """Return N definitions as an export file holds them: every kind, some units."""
    kinds = ("gauge", "counter", "updowncounter")
    units = ("", "s", "By", "{order}")
    return [
        {
            "name": f"{PREFIX}{i}",
            "kind": kinds[i % 3],
            "unit": units[i % 4],
            "source": "constant",
            "value": i,
            "attributes": {"shard": str(i % 7)},
        }
        for i in range(size)
    ]


def measure(config: Config) -> str:
    """Time importing each size, median of the rounds; return the section."""
    rows = []
    per_definition = {}
    for size in config.import_sizes:
        document = entries(size)
        seconds = []
        for _ in range(config.import_rounds):
            progress(f"import: N={size}")
            started = time.perf_counter()
            report = import_definitions(document)
            seconds.append(time.perf_counter() - started)
            assert len(report.created) == size
            MetricDefinition.objects.filter(name__startswith=PREFIX).delete()
        median = statistics.median(seconds)
        per_definition[size] = median / size
        rows.append([size, f"{median:.2f}", ms(median / size)])
    smallest, largest = min(per_definition), max(per_definition)
    growth = per_definition[largest] / per_definition[smallest]
    for row, size in zip(rows, per_definition, strict=True):
        row.append(ratio(per_definition[size] / per_definition[smallest]))
    table = render(
        ["N", "median s", "ms per definition", f"per definition vs N={smallest}"], rows
    )
    ok = verdict(growth <= LINEAR_LIMIT)
    target = (
        f"Per-definition cost at N={largest} vs N={smallest}: {ratio(growth)} "
        f"(target at most {LINEAR_LIMIT:.1f}x, linear)  {ok}"
    )
    return f"{HEADING}\n\n{table}\n\n{target}"
