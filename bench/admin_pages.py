"""Section 10: the admin's overview and change list, with many definitions stored."""

from __future__ import annotations

import datetime as dt

from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from bench import timing, workload
from bench.config import Config
from bench.progress import progress
from bench.table import ms, render, verdict
from metricdemo.models import MetricDefinition, ValueSample

#: Target: milliseconds for one overview page of a hundred cards.
OVERVIEW_MS = 300
#: Seconds between two samples of the value history, as by default.
INTERVAL = 60


def definitions(count: int) -> list[MetricDefinition]:
    """Return `count` unsaved definitions: half constants, 40 % row counts, settings.

    The row counts are those of section 2, over the bench shop's tables.
    """
    counts = iter(workload.row_count_definitions(count))
    made = []
    for i in range(count):
        counted = next(counts)
        if i % 10 < 5:
            made += workload.constant_definitions(i, i + 1)
            made[-1].unit = ("{EUR}", "By", "s", "1", "{order}")[i % 5]
        elif i % 10 < 9:
            made.append(counted)
        else:
            made.append(
                MetricDefinition(
                    name=workload.series_name(i),
                    description=f"Benchmark series {i}",
                    unit="s",
                    source="setting",
                    setting="SESSION_COOKIE_AGE",
                )
            )
    return made


def add_history(stored: list[MetricDefinition], samples: int) -> int:
    """Give every definition but the constants `samples` samples; return how many.

    The history's writer samples no constant either: their value is their own.
    """
    now = timezone.now().replace(second=0, microsecond=0)
    rows = [
        ValueSample(
            definition_id=definition.pk,
            time=now - dt.timedelta(seconds=INTERVAL * back),
            value=float(back % 17),
            series=1,
            outcome="success",
        )
        for definition in stored
        if definition.source != "constant"
        for back in range(samples)
    ]
    ValueSample.objects.bulk_create(rows, batch_size=5000)
    return len(rows)


def measure(config: Config) -> str:
    """Measure both pages, logged in as a superuser, and return the section."""
    count = config.admin_definitions
    progress(f"admin pages: {count} definitions, {config.admin_samples} samples each")
    MetricDefinition.objects.all().delete()
    ValueSample.objects.all().delete()
    workload.replace_definitions(definitions(count))
    stored = list(MetricDefinition.objects.all())
    sampled = add_history(stored, config.admin_samples)
    user, _ = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    overview = reverse("admin:metricdemo_overview_changelist")
    changelist = reverse("admin:metricdemo_metricdefinition_changelist")

    # The local history, as a site without Prometheus keeps it; or none.
    kept = {
        **django_settings.METRICDEMO,
        "HISTORY_INTERVAL": INTERVAL,
        "PROMETHEUS_URL": None,
    }
    unkept = {**kept, "HISTORY_INTERVAL": 0}

    def get(url: str, history: bool = True, **query: str):
        def fetch() -> None:
            with override_settings(METRICDEMO=kept if history else unkept):
                response = client.get(url, query)
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code}")

        return fetch

    medians = timing.interleaved(
        {
            "overview": get(overview),
            "no history": get(overview, history=False),
            "change list": get(changelist),
            "state filter": get(overview, state="ok"),
        },
        rounds=config.admin_rounds,
        warmup=config.warmup,
    )
    ValueSample.objects.all().delete()
    shown = min(count, 100)
    rows = [
        [
            f"overview: the first page, {shown} cards",
            ms(medians["overview"]),
            verdict(medians["overview"] * 1000 < OVERVIEW_MS),
        ],
        [
            "overview: the same, no value history kept",
            ms(medians["no history"]),
            "-",
        ],
        [f"change list: the first page, {shown} rows", ms(medians["change list"]), "-"],
        [
            f"overview: state ok (evaluates all {count}), first page",
            ms(medians["state filter"]),
            "-",
        ],
    ]
    table = render(["page", "ms", f"overview < {OVERVIEW_MS} ms"], rows)
    return (
        f"10. Admin pages: {count} definitions (half constants, 40 % row counts "
        f"over the shop's tables, 10 % settings), {sampled:,} history samples, "
        "GET through Django's test client as a superuser, on SQLite "
        f"(medians of {config.admin_rounds} runs)\n"
        + table
        + "\n\nEach page evaluates what it shows, as it does for a user, and "
        "reads its sparklines' samples in two queries (how many each has, "
        "then a day of them thinned to 60 points each; none without a "
        "history kept): the overview its cards, the change list its rows. "
        "A state filter evaluates "
        "every definition of the kind and source chosen, then shows the "
        "first page of those in that state."
    )
