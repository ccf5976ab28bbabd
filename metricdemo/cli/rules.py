"""Print the alert rules as a Prometheus rule file (metrics rules)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError
from django.db import DatabaseError

from metricdemo import alerts, rulefiles

help = "Print the enabled alert rules as a Prometheus rule file (YAML)."

FORMATS = ("prometheus", "prometheusrule")


def add_arguments(parser) -> None:
    """Add -o, --format, --name, --namespace, --check and --tests."""
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="Write the rules to FILE instead of standard output.",
    )
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="prometheus",
        help=(
            "prometheus: a rule file for rule_files (the default); prometheusrule: "
            "a Kubernetes PrometheusRule resource for the Prometheus Operator."
        ),
    )
    parser.add_argument(
        "--name",
        default="metricdemo",
        help="The PrometheusRule's metadata.name (default metricdemo).",
    )
    parser.add_argument(
        "--namespace", help="The PrometheusRule's metadata.namespace, if any."
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help=(
            "Run `promtool check rules` on the result and fail if it refuses it "
            "(skipped, with a warning, when promtool is not installed)."
        ),
    )
    parser.add_argument(
        "--tests",
        metavar="FILE",
        help=(
            "Also write promtool unit tests to FILE (run them with `promtool test "
            "rules FILE`): each rule fires on a series that meets its condition "
            "for longer than `for`, and not on one that does not. Needs -o."
        ),
    )


def handle(command, options: dict[str, Any]) -> None:
    """Write the rule file, check it, and write the unit tests if asked."""
    if options.get("tests") and not options.get("output"):
        raise CommandError("--tests needs -o FILE: the tests name the rule file.")
    try:
        rules = alerts.enabled_rules()
    except DatabaseError as exc:
        raise CommandError(
            f"Cannot read the alert rules (is the database migrated?): {exc}"
        ) from exc
    plain = rulefiles.dump(alerts.rule_file(rules))
    if options["format"] == "prometheusrule":
        text = rulefiles.dump(
            alerts.prometheus_rule(rules, options["name"], options.get("namespace"))
        )
    else:
        text = plain
    if options.get("check"):
        _check(command, plain)
    output = options.get("output")
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        command.stdout.write(text, ending="")
    if options.get("tests"):
        tests = Path(options["tests"])
        relative = os.path.relpath(Path(output).resolve(), tests.resolve().parent)
        tests.write_text(
            rulefiles.dump(rulefiles.unit_tests(rules, relative)), encoding="utf-8"
        )


def _check(command, text: str) -> None:  # noqa: ANN001
    try:
        passed, output = rulefiles.check(text)
    except FileNotFoundError:
        command.stderr.write(
            "promtool is not installed; the rules were not checked "
            "(apt-get install prometheus, or see https://prometheus.io/download/)."
        )
        return
    if not passed:
        raise CommandError(f"promtool refuses the rules:\n{output}")
