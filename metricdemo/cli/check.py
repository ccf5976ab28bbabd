"""`manage.py metrics check`: evaluate every enabled definition, for a deploy gate."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from metricdemo import display
from metricdemo.cli.table import format_table
from metricdemo.conf import app_settings
from metricdemo.evaluation import evaluate_many, get_evaluator
from metricdemo.models import MetricDefinition

help = (
    "Evaluate every enabled definition and print a table; exit non-zero if any fails."
)


def add_arguments(parser) -> None:
    """Add --timeout."""
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="how long each definition may take (default: METRICDEMO"
        "['ADMIN_EVALUATION_TIMEOUT'])",
    )


def handle(command, options: dict[str, Any]) -> None:
    """Print name, result, time and error per definition; fail if any failed.

    Raises:
        CommandError: at least one definition failed (exit status 1).
    """
    definitions = list(MetricDefinition.objects.filter(enabled=True).order_by("name"))
    if not definitions:
        command.stdout.write("No enabled definitions.")
        return
    timeout = options["timeout"] or app_settings.ADMIN_EVALUATION_TIMEOUT
    results = evaluate_many(definitions, timeout=timeout)
    evaluator = get_evaluator()
    rows = [
        (
            definition.name,
            display.brief(definition, result),
            f"{result.seconds * 1000:.1f} ms",
            # A scrape would serve a slow one in the background: say so.
            result.error or evaluator.slow_reason(definition) or "",
        )
        for definition, result in zip(definitions, results, strict=True)
    ]
    command.stdout.write(format_table(("NAME", "RESULT", "TIME", "ERROR"), rows))
    failed = sum(1 for result in results if not result.ok)
    if failed:
        raise CommandError(f"{failed} of {len(results)} enabled definitions failed.")
    command.stdout.write(
        command.style.SUCCESS(f"All {len(results)} enabled definitions evaluated.")
    )
