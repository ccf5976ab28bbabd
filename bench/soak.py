"""Section 5: a process after many definition edits, against a fresh one.

A first child stores N constant definitions and exits. A second opens the
database and edits them one at a time (the name, kind, unit or description,
in turn), scraping /metrics after each edit, as a process serving a busy
admin would. A third, fresh child then opens the same database. Both stay up
and take turns scraping, so their times are taken side by side; each then
reports its resident memory and the instruments it holds.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.progress import progress
from bench.table import ms, ratio, render, verdict

ROOT = Path(__file__).resolve().parent.parent
SCRAPE_RATIO = 1.15  # target: steady scrape after the edits / a fresh process's
RSS_RATIO = 1.10  # target: resident memory after the edits / a fresh process's
REPLY = "@@ "  # marks the children's replies among anything else they print


def section(size: int, edits: int, rounds: int, directory: Path) -> str | None:
    """Measure a soaked process against a fresh one and return the section."""
    if not edits:
        return None
    progress(f"after {edits} edits: N={size}, soaking a process")
    database = directory / "soak.sqlite3"
    Child(database, "populate", size, edits, directory).close()
    soaked = Child(database, "soak", size, edits, directory)
    fresh = Child(database, "fresh", size, edits, directory)
    try:
        progress(f"after {edits} edits: {rounds} scrapes of each process in turn")
        ratios, times = [], {soaked: [], fresh: []}
        for round_number in range(rounds):
            # Alternate which goes first, so neither always scrapes a warmer CPU.
            pair = (soaked, fresh) if round_number % 2 == 0 else (fresh, soaked)
            seconds = {child: child.ask("scrape")["seconds"] for child in pair}
            for child, value in seconds.items():
                times[child].append(value)
            ratios.append(seconds[soaked] / seconds[fresh])
        reports = {child: child.ask("report") for child in (soaked, fresh)}
    finally:
        soaked.close()
        fresh.close()
    mb = 1024 * 1024
    scrape_ratio = statistics.median(ratios)
    rss_ratio = reports[soaked]["rss"] / reports[fresh]["rss"]
    rows = []
    for label, child in ((f"after {edits} edits", soaked), ("fresh", fresh)):
        report = reports[child]
        rows.append(
            [
                label,
                report["instruments"],
                f"{report['rss'] / mb:.1f}",
                ms(statistics.median(times[child])),
                "",
                "",
            ]
        )
    rows.append(
        [
            "ratio",
            "",
            ratio(rss_ratio),
            ratio(scrape_ratio),
            verdict(rss_ratio <= RSS_RATIO),
            verdict(scrape_ratio <= SCRAPE_RATIO),
        ]
    )
    return (
        f"8. A process after {edits} edits of {size} definitions, against a fresh "
        "one\n"
        + render(
            [
                "process",
                "instruments",
                "RSS MB",
                "steady ms",
                f"RSS <= {RSS_RATIO:g}x",
                f"scrape <= {SCRAPE_RATIO:g}x",
            ],
            rows,
        )
        + f"\n\nEach edit changed one definition's name, kind, unit or description "
        "and was followed by a scrape. Then the two processes scraped in turn "
        f"{rounds} times: steady is the median scrape, the scrape ratio the "
        "median of the pairs' ratios. Instruments: the definitions' instruments "
        "the process's MeterProviders hold."
    )


class Child:
    """A child process that soaks or opens the database, then answers commands."""

    def __init__(
        self, database: Path, role: str, size: int, edits: int, directory: Path
    ) -> None:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "METRICDEMO_BENCH_SQLITE": str(database),
            # On SQLite alone, with no second database.
            "DATABASE_URL": "",
        }
        self._log = open(directory / f"soak-{role}.log", "w")  # noqa: SIM115
        command = [sys.executable, "-m", "bench", "soak-child", role, str(size)]
        self._process = subprocess.Popen(
            [*command, str(edits)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        self._read()  # ready

    def ask(self, command: str) -> dict:
        """Send one command and return the reply."""
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        return self._read()

    def close(self) -> None:
        """Stop the child."""
        if self._process.poll() is None:
            self._process.stdin.close()
            self._process.wait(timeout=60)
        self._process.stdout.close()
        self._log.close()

    def _read(self) -> dict:
        for line in self._process.stdout:
            if line.startswith(REPLY):
                return json.loads(line[len(REPLY) :])
        self._process.wait(timeout=60)
        raise RuntimeError(
            f"The soak child exited with {self._process.returncode}; "
            f"see {self._log.name}"
        )


def child(role: str, size: int, edits: int) -> int:
    """Run in a child process: create, soak or open the database; answer commands."""
    import django

    django.setup()
    from django.test import Client

    if role == "populate":
        populate(size)
        return 0
    client = Client()
    if role == "soak":
        soak(client, size, edits)
    for _ in range(2):
        scrape(client)
    reply({"ready": True})
    for line in sys.stdin:
        command = line.strip()
        if command == "scrape":
            gc.collect()
            gc.disable()
            try:
                started = time.perf_counter()
                scrape(client)
                seconds = time.perf_counter() - started
            finally:
                gc.enable()
            reply({"seconds": seconds})
        elif command == "report":
            reply(report())
    return 0


def populate(size: int) -> None:
    """Create the database with `size` constant definitions."""
    from django.db import connection

    from bench import workload

    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    workload.add_definitions(workload.constant_definitions(0, size))
    reply({"definitions": size})


def soak(client, size: int, edits: int) -> None:
    """Edit the definitions `edits` times, one at a time, scraping after each."""
    from metricdemo.models import MetricDefinition
    from tests.instruments import change_instrument

    definitions = list(MetricDefinition.objects.order_by("pk"))
    scrape(client)
    for step in range(edits):
        definition = definitions[step % size]
        change_instrument(definition, step // size, f"bench.soak.{step}")
        definition.save()
        scrape(client)


def scrape(client) -> None:
    """GET /metrics; fail on anything but 200."""
    response = client.get("/metrics")
    if response.status_code != 200:
        raise RuntimeError(f"/metrics answered {response.status_code}")


def report() -> dict:
    """Return this process's resident memory and the definitions' instruments."""
    from bench.memory import resident_bytes
    from tests.instruments import definition_instruments

    instruments = len(definition_instruments())  # collects the garbage first
    return {"rss": resident_bytes(), "instruments": instruments}


def reply(message: dict) -> None:
    """Answer the parent on stdout."""
    print(REPLY + json.dumps(message), flush=True)
