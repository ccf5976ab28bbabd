"""`manage.py metrics import`: create and update definitions from an exported file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from metricdemo.serialization import ImportFailed, import_definitions, loads

help = (
    "Create and update definitions by name from a file written by `metrics "
    "export`, all or nothing."
)


def add_arguments(parser) -> None:
    """Add FILE, --dry-run, --prune and --as-user."""
    parser.add_argument(
        "file", metavar="FILE", help="an exported JSON file, or - for stdin"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="validate and report what would change, then save nothing",
    )
    parser.add_argument(
        "--prune",
        action="store_true",
        help="also delete the stored definitions that the file does not name",
    )
    parser.add_argument(
        "--as-user",
        metavar="USERNAME",
        help="validate with this user's permissions, as the admin would, and "
        "record them as the last editor; without it only the METRICDEMO rules apply",
    )


def handle(command, options: dict[str, Any]) -> None:
    """Import the file and report each created, changed and deleted definition.

    Raises:
        CommandError: the file cannot be read, or a definition does not validate
            (then nothing is saved).
    """
    path = options["file"]
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"Cannot read {path}: {exc}.") from None
    acting_user = _user(options["as_user"]) if options["as_user"] else None
    try:
        report = import_definitions(
            loads(text),
            prune=options["prune"],
            dry_run=options["dry_run"],
            acting_user=acting_user,
        )
    except ImportFailed as exc:
        lines = "\n".join(f"  {error}" for error in exc.errors)
        raise CommandError(f"Nothing was imported from {path}:\n{lines}") from None
    for name in report.created:
        command.stdout.write(f"created {name}")
    for name, fields in report.changed.items():
        command.stdout.write(f"changed {name} ({', '.join(fields)})")
    for name in report.deleted:
        command.stdout.write(f"deleted {name}")
    if options["verbosity"] > 1:
        for name in report.unchanged:
            command.stdout.write(f"unchanged {name}")
    counts = (
        f"{len(report.created)} created, {len(report.changed)} changed, "
        f"{len(report.unchanged)} unchanged, {len(report.deleted)} deleted"
    )
    if report.dry_run:
        command.stdout.write(f"Dry run, nothing was saved: {counts}.")
    else:
        command.stdout.write(command.style.SUCCESS(f"Imported {path}: {counts}."))


def _user(username: str) -> Any:
    model = get_user_model()
    try:
        return model._default_manager.get_by_natural_key(username)
    except model.DoesNotExist:
        raise CommandError(
            f"--as-user: there is no user called {username!r}; give the "
            f"{model.USERNAME_FIELD} of an existing user."
        ) from None
