"""`manage.py metrics list`: the definitions and the names Prometheus sees."""

from __future__ import annotations

from typing import Any

from metricdemo.cli.table import format_table
from metricdemo.models import MetricDefinition

help = "List the definitions with their exported Prometheus names."


def add_arguments(parser) -> None:
    """Add --enabled."""
    parser.add_argument(
        "--enabled", action="store_true", help="list only the enabled definitions"
    )


def handle(command, options: dict[str, Any]) -> None:
    """Print one row per definition, sorted by name."""
    definitions = MetricDefinition.objects.order_by("name")
    if options["enabled"]:
        definitions = definitions.filter(enabled=True)
    rows = [
        (d.name, d.exported_name, d.kind, d.source, "yes" if d.enabled else "no")
        for d in definitions
    ]
    if not rows:
        command.stdout.write("No definitions.")
        return
    headers = ("NAME", "EXPORTED AS", "KIND", "SOURCE", "ENABLED")
    command.stdout.write(format_table(headers, rows))
