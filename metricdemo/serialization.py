"""Write definitions as JSON and read them back: the format of export and import."""

from __future__ import annotations

import copy
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models, transaction

from metricdemo import validators
from metricdemo.models import (
    ALERT_RULE_FIELDS,
    EDITABLE_FIELDS,
    AlertRule,
    MetricDefinition,
    exported_name_index,
)
from metricdemo.signals import one_version_each
from metricdemo.sources import SOURCES

#: The key of a definition's alert rules in an export file. A file without it
#: leaves the stored rules alone; a list, even empty, replaces them.
RULES_KEY = "alert_rules"

FORMAT_VERSION = 1
#: Written for every definition; a source's own fields are written for its source.
COMMON_FIELDS = ("name", "description", "unit", "kind", "enabled", "attributes")
#: How deeply a field's JSON value may nest; attributes, filters and buckets are flat.
MAX_DEPTH = 16
#: What a value nested too deeply should be instead, said after its error.
FLAT_VALUES = "attributes and filters hold flat values, and buckets a list of numbers"
_TOKEN_RE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}:,]')


class TooManyDigits:
    """An integer in the file with more digits than Python converts."""

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))

    def __repr__(self) -> str:
        return f"<an integer of {self.digits} digits>"


def _parse_int(text: str) -> int | TooManyDigits:
    try:
        return int(text)
    except ValueError:
        # Beyond sys.get_int_max_str_digits(): reported on its field.
        return TooManyDigits(text)


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
    #: Definitions whose alert rules the import replaced.
    rules_changed: list[str] = field(default_factory=list)
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
    data = {
        name: getattr(definition, name)
        for name in EDITABLE_FIELDS
        if name in own or not _is_default(name, getattr(definition, name))
    }
    rules = (
        sorted(definition.alert_rules.all(), key=lambda r: r.name)
        if definition.pk is not None
        else []
    )
    if rules:
        data[RULES_KEY] = [rule_data(rule) for rule in rules]
    return data


def rule_data(rule: AlertRule) -> dict[str, Any]:
    """Return an alert rule's fields, leaving out those at their defaults."""
    data = {"name": rule.name}
    for name in ALERT_RULE_FIELDS:
        value = getattr(rule, name)
        default = AlertRule._meta.get_field(name).get_default()
        if name != "name" and value not in (None, "", {}) and value != default:
            data[name] = value
    # The operator always shows, so a reader sees the condition.
    data["operator"] = rule.operator
    return data


def _is_default(name: str, value: Any) -> bool:
    default = MetricDefinition._meta.get_field(name).get_default()
    return value in (None, "", {}, []) or value == default


def dumps(definitions: Iterable[MetricDefinition]) -> str:
    """Return definitions as stable JSON: sorted keys and names, 2-space indent."""
    entries = sorted((to_data(d) for d in definitions), key=lambda e: e["name"])
    document = {"definitions": entries, "version": FORMAT_VERSION}
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)
    # A lone surrogate (stored without validation) cannot be written as UTF-8;
    # inside a JSON string its \\uXXXX escape reads back as the same text.
    return validators.escape_unencodable(text) + "\n"


def loads(text: str) -> list[dict[str, Any]]:
    """Parse an exported file and check its shape; return its definitions.

    Raises:
        ImportFailed: the text is not JSON in the export format.
    """
    try:
        document = json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise ImportFailed([f"The file is not valid JSON: {exc}."]) from None
    except RecursionError:
        raise ImportFailed([_too_deep(text)]) from None
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
                f'"name" string, got {_short(entry)}.'
            )
            continue
        name = validators.escape_unencodable(name)
        unknown = sorted(set(entry) - {*EDITABLE_FIELDS, RULES_KEY})
        if unknown:
            errors.append(
                f"{name}: unknown keys {', '.join(unknown)}; known keys: "
                f"{', '.join((*EDITABLE_FIELDS, RULES_KEY))}."
            )
        errors.extend(_rules_shape_problems(name, entry.get(RULES_KEY, [])))
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
    # A name that cannot be encoded cannot be stored, nor bound in a query;
    # its validation says so.
    names = [
        entry["name"]
        for entry in entries
        if validators.unencodable_text(entry["name"]) is None
    ]
    # One version per definition, its rules included, written with the import.
    with transaction.atomic(), one_version_each(acting_user):
        if prune:
            for stale in MetricDefinition.objects.exclude(name__in=names):
                stale.delete()
                report.deleted.append(stale.name)
        stored = {d.name: d for d in MetricDefinition.objects.filter(name__in=names)}
        with exported_name_index() as index:
            for entry in entries:
                name = entry["name"]
                problems = _field_problems(entry)
                if problems:
                    errors.extend(problems)
                    continue
                definition = stored.get(name) or MetricDefinition()
                before = {
                    f: copy.deepcopy(getattr(definition, f)) for f in EDITABLE_FIELDS
                }
                for key in EDITABLE_FIELDS:
                    default = MetricDefinition._meta.get_field(key).get_default()
                    setattr(definition, key, entry.get(key, default))
                definition.acting_user = definition.last_editor = acting_user
                try:
                    definition.full_clean()
                except ValidationError as exc:
                    errors.extend(_describe(name, exc))
                    continue
                after = {f: getattr(definition, f) for f in EDITABLE_FIELDS}
                changed = [f for f in EDITABLE_FIELDS if before[f] != after[f]]
                rules = None
                if RULES_KEY in entry:
                    rules, rule_errors = _rules_of(name, definition, entry[RULES_KEY])
                    errors.extend(rule_errors)
                    if rule_errors:
                        continue
                    if (name not in stored and rules) or (
                        name in stored and _rules_differ(definition, rules)
                    ):
                        changed.append(RULES_KEY)
                if name in stored and not changed:
                    report.unchanged.append(name)
                    continue
                definition.save()
                if rules is not None and RULES_KEY in changed:
                    report.rules_changed.append(name)
                    definition.alert_rules.all().delete()
                    for rule in rules:
                        rule.definition = definition
                        rule.save()
                index.add(definition.pk, name, definition.kind, definition.unit)
                if name in stored:
                    report.changed[name] = changed
                else:
                    report.created.append(name)
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
        ("add", "metricdefinition", report.created),
        ("change", "metricdefinition", list(report.changed)),
        ("delete", "metricdefinition", report.deleted),
        ("add", "alertrule", report.rules_changed),
        ("change", "alertrule", report.rules_changed),
        ("delete", "alertrule", report.rules_changed),
    )
    errors = []
    for action, model, names in needed:
        permission = f"metricdemo.{action}_{model}"
        if names and not user.has_perm(permission):
            what = "definitions" if model == "metricdefinition" else "alert rules"
            errors.append(
                f"{user.get_username()} may not {action} {what} "
                f"({permission}), and the file would {action} "
                f"{'the alert rules of ' if model == 'alertrule' else ''}"
                f"{', '.join(sorted(names))}."
            )
    return errors


def _rules_shape_problems(name: str, rules: Any) -> list[str]:
    # Each rule an object with a name and only the fields a rule has.
    name = validators.escape_unencodable(name)
    if not isinstance(rules, list):
        return [f"{name}: {RULES_KEY}: expected a list of rules, got {_short(rules)}."]
    problems = []
    for index, rule in enumerate(rules):
        where = f"{name}: {RULES_KEY}[{index}]"
        if not isinstance(rule, dict) or not isinstance(rule.get("name"), str):
            problems.append(
                f'{where}: expected an object with a "name" string, got {_short(rule)}.'
            )
            continue
        unknown = sorted(set(rule) - set(ALERT_RULE_FIELDS))
        if unknown:
            problems.append(
                f"{where}: unknown keys {', '.join(unknown)}; known keys: "
                f"{', '.join(ALERT_RULE_FIELDS)}."
            )
    return problems


def _rules_of(
    name: str, definition: MetricDefinition, entries: list[dict[str, Any]]
) -> tuple[list[AlertRule], list[str]]:
    """Return the rules an entry gives `definition`, validated, and the errors."""
    rules, errors, seen = [], [], set()
    for index, fields in enumerate(entries):
        where = f"{RULES_KEY}[{index}] {fields['name']}"
        if fields["name"] in seen:
            errors.append(f"{name}: {where}: the rule name appears twice.")
            continue
        seen.add(fields["name"])
        rule = AlertRule(definition=definition)
        for key in ALERT_RULE_FIELDS:
            default = AlertRule._meta.get_field(key).get_default()
            setattr(rule, key, fields.get(key, default))
        try:
            # The definition may be new: the uniqueness of names per definition
            # is checked above.
            rule.full_clean(exclude=["definition"], validate_unique=False)
        except (ValidationError, TypeError, ValueError) as exc:
            messages = (
                exc.message_dict.items()
                if isinstance(exc, ValidationError) and hasattr(exc, "error_dict")
                else [("__all__", [str(exc)])]
            )
            for key, texts in sorted(messages):
                for text in texts:
                    errors.append(f"{name}: {where}: {key}: {text}")
            continue
        rules.append(rule)
    return rules, errors


def _rules_differ(definition: MetricDefinition, rules: list[AlertRule]) -> bool:
    stored = [
        rule_data(r) for r in sorted(definition.alert_rules.all(), key=lambda r: r.name)
    ]
    return stored != [rule_data(r) for r in sorted(rules, key=lambda r: r.name)]


def _describe(name: str, exc: ValidationError) -> list[str]:
    name = validators.escape_unencodable(name)
    return [
        f"{name}: {message}" if key == NON_FIELD_ERRORS else f"{name}: {key}: {message}"
        for key, messages in sorted(exc.message_dict.items())
        for message in messages
    ]


#: The JSON type each kind of model field reads, as (types, description).
_EXPECTED: tuple[tuple[type, tuple[type, ...], str], ...] = (
    (models.BooleanField, (bool,), "true or false"),
    (models.FloatField, (int, float), "a number"),
    (models.PositiveIntegerField, (int,), "a whole number"),
    (models.CharField, (str,), "a string"),
    (models.TextField, (str,), "a string"),
)


def _field_problems(entry: dict[str, Any]) -> list[str]:
    """Return an error per field whose JSON value the model cannot take as it is.

    The model would store null in a NOT NULL column (an IntegrityError), and
    Python cannot read integers of more than 4,300 digits or values nested
    deeper than its recursion limit; each is reported on its field instead.
    """
    name = validators.escape_unencodable(entry["name"])
    problems = []
    for key in EDITABLE_FIELDS:
        if key not in entry:
            continue
        value = entry[key]
        field = MetricDefinition._meta.get_field(key)
        problem = _value_problem(value)
        if problem is None and value is None and not field.null:
            default = field.get_default()
            problem = (
                f"null is not allowed; leave {key} out for the default, "
                f"{default!r}, or give a value."
            )
        if problem is None and value is not None:
            problem = _type_problem(field, value)
        if problem is not None:
            problems.append(f"{name}: {key}: {problem}")
    return problems


def _type_problem(field: models.Field, value: Any) -> str | None:
    for field_class, types, description in _EXPECTED:
        if isinstance(field, field_class):
            if isinstance(value, bool) and bool not in types:
                return f"expected {description}, got {_short(value)}."
            if not isinstance(value, types):
                return f"expected {description}, got {_short(value)}."
            if types == (int, float):
                try:
                    float(value)
                except OverflowError:
                    return f"{_short(value)} is too large for a number."
            return None
    return None


def _value_problem(value: Any) -> str | None:
    """Return why a decoded JSON value is unusable: too deep or too many digits."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, TooManyDigits):
            return (
                f"{item!r} is too long; numbers may have at most "
                f"{_max_digits()} digits."
            )
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return (
                    f"the value is nested more than {MAX_DEPTH} levels deep; "
                    f"{FLAT_VALUES}."
                )
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return None


def _max_digits() -> int:
    return sys.get_int_max_str_digits() or 4300


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _too_deep(text: str) -> str:
    """Say which definition and field nest too deeply for json to read."""
    # Frames of open containers: [opener, key or item count, expecting a key].
    # stack[1] is the definitions list and stack[2] one entry, in the format.
    stack: list[list] = []
    found: tuple[Any, Any] | None = None
    name = None
    for match in _TOKEN_RE.finditer(text):
        token = match.group()
        if token in "{[":
            if found is None and len(stack) >= MAX_DEPTH:
                found = (_frame_key(stack, 1), _frame_key(stack, 2))
            stack.append([token, 0 if token == "[" else None, token == "{"])
        elif not stack:
            continue
        elif token in "]}":
            stack.pop()
            if len(stack) == 2:
                if found is not None:
                    break  # the entry holding the deep value ended: name known
                name = None
        elif token == ",":
            frame = stack[-1]
            if frame[0] == "[":
                frame[1] += 1
            else:
                frame[2] = True
        elif token == ":":
            stack[-1][2] = False
        elif stack[-1][0] == "{" and stack[-1][2]:
            stack[-1][1] = json.loads(token)
        elif len(stack) == 3 and stack[-1][1] == "name":
            name = json.loads(token)
    where = "The file"
    if found is not None and isinstance(found[0], int):
        index, field = found
        where = validators.escape_unencodable(name or f"definitions[{index}]")
        if isinstance(field, str):
            where = f"{where}: {validators.escape_unencodable(field)}"
    return (
        f"{where}: the value is nested too deeply to read (more than "
        f"{MAX_DEPTH} levels); {FLAT_VALUES}."
    )


def _frame_key(stack: list[list], depth: int) -> Any:
    return stack[depth][1] if len(stack) > depth else None
