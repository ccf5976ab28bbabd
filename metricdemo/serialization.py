"""Write definitions as JSON and read them back: the format of export and import."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction

from metricdemo.models import EDITABLE_FIELDS, MetricDefinition
from metricdemo.sources import SOURCES

FORMAT_VERSION = 1
#: Written for every definition; a source's own fields are written for its source.
COMMON_FIELDS = ("name", "description", "unit", "kind", "enabled", "attributes")


class ImportFailed(Exception):
    """An import was refused as a whole; `errors` says why, one line each."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass
class ImportReport:
    """What an import created, changed (with the fields), left alone and deleted."""

    created: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    dry_run: bool = False


def to_data(definition: MetricDefinition) -> dict[str, Any]:
    """Return a definition's editable fields as plain data, without ids or times.

    Fields of other sources are left out when empty, which they always are
    for a definition that validates, and so are a timeout, cache seconds, and
    a row count's aggregate (count) and field, left at their defaults.
    """
    source = SOURCES.get(definition.source)
    # A source's optional fields (a row count's aggregate and field) are
    # written only when set, so files of plain counts keep their old form.
    fields = (
        [f for f in source.fields if f not in source.optional_fields] if source else []
    )
    own = (*COMMON_FIELDS, "source", *fields)
    return {
        name: getattr(definition, name)
        for name in EDITABLE_FIELDS
        if name in own or not _is_default(name, getattr(definition, name))
    }


def _is_default(name: str, value: Any) -> bool:
    default = MetricDefinition._meta.get_field(name).get_default()
    return value in (None, "", {}, []) or value == default


def dumps(definitions: Iterable[MetricDefinition]) -> str:
    """Return definitions as stable JSON: sorted keys and names, 2-space indent."""
    entries = sorted((to_data(d) for d in definitions), key=lambda e: e["name"])
    document = {"definitions": entries, "version": FORMAT_VERSION}
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def loads(text: str) -> list[dict[str, Any]]:
    """Parse an exported file and check its shape; return its definitions.

    Raises:
        ImportFailed: the text is not JSON in the export format.
    """
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ImportFailed([f"The file is not valid JSON: {exc}."]) from None
    if not isinstance(document, dict) or not isinstance(
        document.get("definitions"), list
    ):
        raise ImportFailed(
            [
                'Expected a JSON object with a "definitions" list, as `manage.py '
                "metrics export` writes."
            ]
        )
    errors = []
    version = document.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        errors.append(
            f"The file has format version {version!r}; this version of metricdemo "
            f"reads version {FORMAT_VERSION}."
        )
    for key in sorted(set(document) - {"definitions", "version"}):
        errors.append(f'Unknown top-level key {key!r}; use "definitions".')
    seen: set[str] = set()
    for index, entry in enumerate(document["definitions"]):
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name:
            errors.append(
                f"definitions[{index}]: expected an object with a non-empty "
                f'"name" string, got {entry!r}.'
            )
            continue
        unknown = sorted(set(entry) - set(EDITABLE_FIELDS))
        if unknown:
            errors.append(
                f"{name}: unknown keys {', '.join(unknown)}; known keys: "
                f"{', '.join(EDITABLE_FIELDS)}."
            )
        if name in seen:
            errors.append(f"{name}: the name appears more than once in the file.")
        seen.add(name)
    if errors:
        raise ImportFailed(errors)
    return document["definitions"]


def import_definitions(
    entries: list[dict[str, Any]],
    *,
    prune: bool = False,
    dry_run: bool = False,
    acting_user: Any = None,
) -> ImportReport:
    """Upsert definitions by name with full validation, all or nothing.

    A field an entry leaves out gets the model's default, so the file is the
    whole truth about the definitions it names. With `prune`, stored
    definitions that the file does not name are deleted first (so a renamed
    definition does not collide with its old self). With `dry_run` everything
    is done and reported, then rolled back. With `acting_user`, every
    definition is validated with that user's permissions, as the admin would,
    the user must hold the add, change and delete permissions the import uses,
    and is recorded as the last editor of what it creates or changes.

    Raises:
        ImportFailed: any definition did not validate; nothing was saved.
    """
    report = ImportReport(dry_run=dry_run)
    errors: list[str] = []
    names = [entry["name"] for entry in entries]
    with transaction.atomic():
        if prune:
            for stale in MetricDefinition.objects.exclude(name__in=names):
                stale.delete()
                report.deleted.append(stale.name)
        stored = {d.name: d for d in MetricDefinition.objects.filter(name__in=names)}
        for entry in entries:
            name = entry["name"]
            definition = stored.get(name) or MetricDefinition()
            before = {f: copy.deepcopy(getattr(definition, f)) for f in EDITABLE_FIELDS}
            for key in EDITABLE_FIELDS:
                default = MetricDefinition._meta.get_field(key).get_default()
                setattr(definition, key, entry.get(key, default))
            definition.acting_user = definition.last_editor = acting_user
            try:
                definition.full_clean()
            except ValidationError as exc:
                errors.extend(_describe(name, exc))
                continue
            if name not in stored:
                definition.save()
                report.created.append(name)
                continue
            after = {f: getattr(definition, f) for f in EDITABLE_FIELDS}
            changed = [f for f in EDITABLE_FIELDS if before[f] != after[f]]
            if changed:
                definition.save()
                report.changed[name] = changed
            else:
                report.unchanged.append(name)
        errors.extend(_missing_permissions(acting_user, report))
        if errors:
            raise ImportFailed(errors)
        if dry_run:
            transaction.set_rollback(True)
    return report


def _missing_permissions(user: Any, report: ImportReport) -> list[str]:
    # The definition permissions the admin would ask of `user` for this import.
    if user is None:
        return []
    needed = (
        ("add", report.created),
        ("change", list(report.changed)),
        ("delete", report.deleted),
    )
    errors = []
    for action, names in needed:
        permission = f"metricdemo.{action}_metricdefinition"
        if names and not user.has_perm(permission):
            errors.append(
                f"{user.get_username()} may not {action} definitions "
                f"({permission}), and the file would {action} "
                f"{', '.join(sorted(names))}."
            )
    return errors


def _describe(name: str, exc: ValidationError) -> list[str]:
    return [
        f"{name}: {message}" if key == NON_FIELD_ERRORS else f"{name}: {key}: {message}"
        for key, messages in sorted(exc.message_dict.items())
        for message in messages
    ]
