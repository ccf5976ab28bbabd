"""`manage.py metrics export`: write every definition as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError

from metricdemo.models import MetricDefinition
from metricdemo.serialization import dumps

help = "Write every definition as JSON, sorted by name, to stdout or --output FILE."


def add_arguments(parser) -> None:
    """Add --output."""
    parser.add_argument(
        "--output", "-o", metavar="FILE", help="write to FILE instead of stdout"
    )


def handle(command, options: dict[str, Any]) -> None:
    """Write the JSON document.

    Raises:
        CommandError: the output file cannot be written.
    """
    definitions = MetricDefinition.objects.order_by("name").prefetch_related(
        "alert_rules"
    )
    text = dumps(definitions)
    if not options["output"]:
        command.stdout.write(text, ending="")
        return
    try:
        Path(options["output"]).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"Cannot write {options['output']}: {exc}.") from None
    written = len(definitions)
    command.stderr.write(f"Wrote {written} definitions to {options['output']}.")
