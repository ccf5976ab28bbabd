"""`manage.py metrics check`: evaluate every enabled definition, for a deploy gate."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError

from metricdemo import alerting, display
from metricdemo.cli.table import format_table
from metricdemo.conf import app_settings
from metricdemo.evaluation import evaluate_many, get_evaluator
from metricdemo.models import AlertRule, MetricDefinition

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
    broken = rule_problems(dict(zip(definitions, results, strict=True)))
    if broken:
        command.stdout.write(
            format_table(("DEFINITION", "ALERT RULE", "PROBLEM"), broken)
        )
    failed = sum(1 for result in results if not result.ok)
    if failed or broken:
        parts = []
        if failed:
            parts.append(f"{failed} of {len(results)} enabled definitions failed")
        if broken:
            parts.append(
                f"{len(broken)} alert rules refer to series their definitions "
                "cannot export"
            )
        raise CommandError("; ".join(parts) + ".")
    command.stdout.write(
        command.style.SUCCESS(f"All {len(results)} enabled definitions evaluated.")
    )


def rule_problems(results: dict) -> list[tuple[str, str, str]]:
    """Return (definition, rule, problem) for each enabled rule that cannot work.

    A rule is checked against its definition as it is now (a label renamed
    or dropped, a kind changed), and for a callback, whose labels only its
    value tells, against the labels of the value just evaluated.
    """
    found = []
    by_pk = {
        definition.pk: (definition, result) for definition, result in results.items()
    }
    for rule in AlertRule.objects.select_related("definition").filter(
        enabled=True, definition__enabled=True
    ):
        definition, result = by_pk.get(rule.definition_id, (rule.definition, None))
        rule.definition = definition
        problems = alerting.rule_problems(rule)
        if not problems and result is not None and result.ok:
            problems = alerting.series_problems(rule, result.observations)
        for field, problem in sorted(problems.items()):
            found.append((definition.name, rule.name, f"{field}: {problem}"))
    return found
