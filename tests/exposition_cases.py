"""One fixed set of definitions and code instruments, for the exposition's golden files.

Every value is deterministic, so the exposition of these families can be
compared line by line with a file written by an earlier release.
"""

from __future__ import annotations

from pathlib import Path

from metricdemo.telemetry import get_telemetry

GOLDEN = Path(__file__).parent / "golden"
#: The families of the scenario (definitions and code instruments) start so.
PREFIXES = ("golden_", "golden.")
#: The code instruments' scope.
SCOPE = ("golden.code", "1.2.3")

DEFINITIONS = [
    {"name": "golden.orders.open", "value": 5, "attributes": {"status": "paid"}},
    {
        "name": "golden.orders",
        "kind": "counter",
        "unit": "{order}",
        "value": 12,
        "description": 'All orders: "placed" \\ kept\nsince launch',
        "attributes": {"country": "DE", "channel": "web"},
    },
    {"name": "golden.jobs.runtime_total", "kind": "counter", "unit": "s", "value": 3.5},
    {
        "name": "golden.queue.bytes",
        "kind": "updowncounter",
        "unit": "By",
        "value": 2048,
    },
    {"name": "golden.disk.used", "unit": "%", "value": 87.25},
    {"name": "golden.ratio", "unit": "1", "value": 0.125},
    {"name": "golden.speed", "unit": "m/s", "value": 12.5},
    {"name": "golden.rate", "unit": "{request}/min", "value": 60},
    {"name": "golden.big", "value": 12345678901.0},
    {"name": "golden.small", "value": -0.000001},
    {"name": "golden-dash/slash", "value": 1},
    {
        "name": "golden.notes",
        "value": 1,
        "description": 'Tricky \\ help "text"\nwith ü',
        "attributes": {
            "note": 'a "quoted" \\ back\nslash ü €',
            "count": 3,
            "flag": True,
            "share": 0.5,
        },
    },
]


def populate(define) -> None:
    """Create the definitions and record the code instruments' fixed values."""
    for fields in DEFINITIONS:
        define(**{"kind": "gauge", "source": "constant", **fields})
    meter = get_telemetry().meter_provider.get_meter(*SCOPE)
    instruments = _instruments(meter)
    if instruments.get("recorded"):
        return
    instruments["recorded"] = True
    instruments["counter"].add(7, {"channel": "web"})
    instruments["counter"].add(2, {"channel": "shop", "region": "eu"})
    instruments["updown"].add(-4)
    for value in (0.5, 3, 3, 8, 40, 250):
        instruments["histogram"].record(value, {"route": "/orders"})
    instruments["histogram"].record(2, {"route": "/"})


_made: dict = {}


def _instruments(meter) -> dict:
    # Code instruments live as long as the process; make them once.
    if not _made:
        _made["counter"] = meter.create_counter(
            "golden.code.requests", unit="{request}", description="Requests served."
        )
        _made["updown"] = meter.create_up_down_counter(
            "golden.code.inflight", description="Requests in flight."
        )
        _made["histogram"] = meter.create_histogram(
            "golden.code.latency",
            unit="ms",
            description="Request latency.",
            explicit_bucket_boundaries_advisory=[1.0, 5.0, 10.0, 100.0],
        )
    return _made


def families(text: str) -> dict[str, list[str]]:
    """Return {family: its lines} for the scenario's families, in order.

    A family is its HELP and TYPE lines and the samples that follow.
    """
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            current = blocks.setdefault(name, []) if name.startswith(PREFIXES) else None
        if current is not None:
            current.append(line)
    return blocks
