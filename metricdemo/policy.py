"""Decide what a definition may read: models, fields, settings and permissions.

The settings-based rules refuse a definition when it is validated and again
each time it is observed, so a definition stored before a rule tightened stops
exporting. The permission rules apply when a user is known (the admin, `metrics
import --as-user`): an editor publishes only what Django lets them see.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_permission_codename
from django.core.exceptions import FieldDoesNotExist, FieldError
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import (
    EmailField,
    Field,
    GenericIPAddressField,
    ManyToOneRel,
    Model,
    UUIDField,
)
from django.db.models.constants import LOOKUP_SEP
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from metricdemo import lookups, routing, validators
from metricdemo.conf import ALL, SENSITIVE_NAMES, app_settings

#: The permission a user needs to define a setting source (superusers hold it).
READ_SETTINGS = "metricdemo.read_settings"
#: The permission a user needs to define a callback source.
USE_CALLBACKS = "metricdemo.use_callbacks"
#: Field types whose values identify a person or a device, whatever their name.
IDENTITY_FIELD_TYPES = (EmailField, GenericIPAddressField, UUIDField)

#: The Python functions that Django's SQLite backend registers on every
#: connection (django/db/backends/sqlite3/_functions.py), which SQLite calls
#: inside a query, once per row, holding the interpreter lock. SQLite's progress
#: handler runs only between calls, so a call cannot be interrupted: these cost
#: a small amount per row that depends on the row alone (parse a date, hash a
#: value), so the progress handler stops the query between rows in time.
SQLITE_BOUNDED_FUNCTIONS = frozenset(
    {
        "django_date_extract",
        "django_date_trunc",
        "django_datetime_cast_date",
        "django_datetime_cast_time",
        "django_datetime_extract",
        "django_datetime_trunc",
        "django_time_extract",
        "django_time_trunc",
        "django_time_diff",
        "django_timestamp_diff",
        "django_format_dtdelta",
        "bitxor",
        "cot",
        "md5",
        "reverse",
        "sha1",
        "sha224",
        "sha256",
        "sha384",
        "sha512",
        "sign",
        "rand",
        "stddev_pop",
        "stddev_samp",
        "var_pop",
        "var_samp",
        # Django 6.0 and 6.1: aggregates folding one value per row, new UUIDs.
        "any_value",
        "bit_and",
        "bit_or",
        "bit_xor",
        "uuidv4",
        "uuidv7",
        # Registered only where SQLite lacks its own maths functions.
        *"acos asin atan atan2 ceiling cos degrees exp floor ln log mod pi power "
        "radians sin sqrt tan".split(),
    }
)
#: The ones whose cost for one row has no bound, with why: one call can hold
#: the whole process for minutes.
SQLITE_UNBOUNDED_FUNCTIONS = {
    "regexp": gettext_lazy(
        "SQLite runs it with Python's re module on every row, inside the query and "
        "holding the interpreter lock: a pattern such as ^(a+)+$ can backtrack for "
        "minutes, and neither the definition's timeout nor SQLite's progress "
        "handler can interrupt it, so every request of the process would wait"
    ),
    "repeat": gettext_lazy(
        "SQLite runs it with Python's REPEAT() on every row, whose cost grows with "
        "an argument and cannot be interrupted"
    ),
    "lpad": gettext_lazy(
        "SQLite runs it with Python's LPAD() on every row, whose cost grows with an "
        "argument and cannot be interrupted"
    ),
    "rpad": gettext_lazy(
        "SQLite runs it with Python's RPAD() on every row, whose cost grows with an "
        "argument and cannot be interrupted"
    ),
}
SQLITE_PYTHON_FUNCTIONS = SQLITE_BOUNDED_FUNCTIONS | SQLITE_UNBOUNDED_FUNCTIONS.keys()

# Quoted names and string literals, which may spell a function's name harmlessly.
_QUOTED_RE = re.compile(r'"(?:[^"]|"")*"|\'(?:[^\']|\'\')*\'|`(?:[^`]|``)*`')
_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Compiled lookups, by (vendor, model, lookup or path, value): a scrape checks
# every row count, and compiling its query each time would cost more than the
# rest of the check.
_CALLS: dict[tuple, frozenset[str]] = {}
_CALLS_MAX = 4096


def sensitive_match(name: str, patterns: Iterable[str] = SENSITIVE_NAMES) -> str | None:
    """Return the first pattern that `name` matches, case-insensitively, or None."""
    lowered = name.lower()
    for pattern in patterns:
        if fnmatch.fnmatchcase(lowered, pattern.lower()):
            return pattern
    return None


def model_refusal(model: type[Model]) -> str | None:
    """Return why row counts may not read `model`, or None if they may."""
    allowed = app_settings.ROW_COUNT_MODELS
    if allowed != ALL and not _listed(model, allowed):
        return _(
            "Row counts may not read %(model)s: METRICDEMO['ROW_COUNT_MODELS'] "
            "allows only %(allowed)s."
        ) % {"model": model._meta.label, "allowed": ", ".join(allowed) or "none"}
    # A proxy or a subclass reads its parent's table, so it shares its fate.
    meta = model._meta
    for candidate in (model, meta.concrete_model, *meta.get_parent_list()):
        if _listed(candidate, app_settings.ROW_COUNT_EXCLUDED_MODELS):
            return _(
                "Row counts may not read %(model)s: %(excluded)s holds sessions, "
                "credentials or audit records and is in METRICDEMO"
                "['ROW_COUNT_EXCLUDED_MODELS']. Count another model, such as "
                "auth.User."
            ) % {"model": meta.label, "excluded": candidate._meta.label}
    return None


def lookup_refusal(model: type[Model], path: str) -> str | None:
    """Return why the lookup or field path `path` may not be used on `model`.

    Every part of the path is checked: the fields it names (with `pk` resolved),
    the models it passes through, the field a relation is compared by when the
    path stops at it, and the transforms or JSON keys after the last field.
    """
    patterns = (*SENSITIVE_NAMES, *app_settings.SENSITIVE_FIELDS)
    meta, owner = model._meta, model._meta.label
    relation = None  # the relation the previous part followed, if any
    for part in [*path.split(LOOKUP_SEP), None]:
        names = [] if part is None else [part]
        field = None
        if meta is not None and part is not None:
            owner = meta.label
            try:
                field = meta.get_field(meta.pk.name if part == "pk" else part)
            except FieldDoesNotExist:
                pass
        if field is None and relation is not None:
            # `customer=3` or `customer__gt=3` compare the related model's
            # target field (usually its primary key).
            names.append(_target_name(relation))
        meta, relation = None, None
        if field is not None:
            names.append(field.name)
            related = field.related_model if field.is_relation else None
            if isinstance(related, type):
                refusal = model_refusal(related)
                if refusal:
                    return _("%(path)r goes through %(model)s. %(reason)s") % {
                        "path": path,
                        "model": related._meta.label,
                        "reason": refusal,
                    }
                meta, relation = related._meta, field
        for name in names:
            pattern = sensitive_match(name, patterns)
            if pattern:
                return _(
                    "%(path)r touches %(name)r of %(model)s, which is sensitive "
                    "(it matches %(pattern)r): filters and group by may not use "
                    "passwords, tokens, secrets, keys or session data. Use another "
                    "field."
                ) % {"path": path, "name": name, "model": owner, "pattern": pattern}
    return None


def row_count_refusals(
    model: type[Model], filters: Any, group_by: str, field: str = ""
) -> dict[str, str]:
    """Return {field: why} for the parts of a row count that may not be read.

    `group_by` may hold several paths separated by commas; each is checked.
    `field` is the path an aggregate reads (sum, min, ...), if any.
    """
    refusal = model_refusal(model)
    if refusal:
        return {"model": refusal}
    refusals = {}
    for lookup in filters if isinstance(filters, Mapping) else ():
        refusal = lookup_refusal(model, str(lookup))
        if refusal:
            refusals["filters"] = refusal
            break
    try:
        # Only keys the app takes apart into fields, transforms and a lookup
        # are accepted; the query is built from those parts alone.
        lookups.parse_filters(model, filters if isinstance(filters, Mapping) else {})
    except lookups.LookupParseError as exc:
        refusals.setdefault("filters", str(exc))
    identity = identity_refusals(model, filters, group_by)
    for path in validators.group_by_paths(group_by):
        # A unique identity field (username) is refused as identity: that
        # says more about why than "one series per row".
        refusal = (
            lookup_refusal(model, path)
            or _identity_group_refusal(model, path)
            or group_by_refusal(model, path)
        )
        if refusal:
            refusals["group_by"] = refusal
            break
    if field:
        refusal = lookup_refusal(model, field)
        if refusal:
            refusals["field"] = refusal
    unbounded = unbounded_lookup_refusals(model, filters, group_by, field=field)
    for key, refusal in unbounded.items():
        refusals.setdefault(key, refusal)
    return {**identity, **refusals}


def lookup_fields(model: type[Model], path: str) -> tuple[list[Field], list[str]]:
    """Return the fields a lookup path names from `model`, and the parts after them.

    `customer__country__in` gives the fields customer and country, then ["in"].
    """
    return _fields_along(model, path)


def identity_refusals(
    model: type[Model], filters: Any, group_by: str
) -> dict[str, str]:
    """Return {field: why} for a group-by or filters that expose identity fields.

    A group-by on an identity field publishes one series per person. A filter on
    one is an oracle that a count answers one guess at a time (`email__startswith`),
    so only a test for an empty value (`isnull`, or `exact` against "") passes.
    """

    def refuse(path: str, value: Any, grouped: bool) -> str | None:
        found = _identity_field(model, path)
        if found is None:
            return None
        field, stem, lookups, reason = found
        params = {
            "path": path,
            "field": f"{field.model._meta.label}.{field.name}",
            "reason": reason,
            "stem": stem,
        }
        if grouped:
            return (
                _(
                    "Group by %(path)r would publish %(field)s, which identifies a "
                    "person (%(reason)s), one series per value. Group by a field that "
                    "many rows share, such as is_staff, or count without a group-by."
                )
                % params
            )
        if lookups == ["isnull"] or (
            lookups in ([], ["exact"]) and value in ("", None)
        ):
            return None
        return (
            _(
                "The filter %(path)r reads %(field)s, which identifies a person "
                "(%(reason)s): a count would confirm guesses about it one at a time. "
                "A filter on it may only test for an empty value, for example "
                '%(stem)s__isnull or %(stem)s="".'
            )
            % params
        )

    return _path_refusals(filters, group_by, refuse)


def identity_reason(field: Any) -> str | None:
    """Return why `field` identifies a person (its type or its name), or None."""
    if isinstance(field, IDENTITY_FIELD_TYPES):
        return _("it is a %(type)s") % {"type": type(field).__name__}
    pattern = sensitive_match(field.name, app_settings.PERSONAL_FIELDS)
    if pattern:
        return _("its name matches %(pattern)r of METRICDEMO['PERSONAL_FIELDS']") % {
            "pattern": pattern
        }
    return None


def may_view(user: Any, model: type[Model]) -> bool:
    """Return whether `user` holds the view or the change permission on `model`."""
    return any(
        user.has_perm(_permission(action, model)) for action in ("view", "change")
    )


def model_permission_refusal(user: Any, model: type[Model]) -> str | None:
    """Return why `user` may not count the rows of `model`; None for no user."""
    if user is None or may_view(user, model):
        return None
    return _(
        "You need the view permission on %(model)s (%(permission)s) to count its rows."
    ) % {"model": model._meta.label, "permission": _permission("view", model)}


def path_permission_refusal(user: Any, model: type[Model], path: str) -> str | None:
    """Return why `user` may not follow `path` from `model`; None for no user."""
    if user is None:
        return None
    for field in _fields_along(model, path)[0]:
        related = field.related_model if field.is_relation else None
        if isinstance(related, type) and not may_view(user, related):
            return _(
                "%(path)r goes through %(model)s: you need the view permission on "
                "%(model)s (%(permission)s) to read it."
            ) % {
                "path": path,
                "model": related._meta.label,
                "permission": _permission("view", related),
            }
    return None


def row_count_permission_refusals(
    user: Any, model: type[Model], filters: Any, group_by: str, field: str = ""
) -> dict[str, str]:
    """Return {field: why} for the models of a row count that `user` may not view.

    The counted model and every model that a filter, a group-by path or the
    aggregated field passes through need the view (or change) permission. No
    user (None) passes.
    """
    refusal = model_permission_refusal(user, model)
    if refusal:
        return {"model": refusal}
    refusals = _path_refusals(
        filters,
        group_by,
        lambda path, value, grouped: path_permission_refusal(user, model, path),
    )
    refusal = field and path_permission_refusal(user, model, field)
    if refusal:
        refusals["field"] = refusal
    return refusals


def source_permission_refusal(
    user: Any, permission: str | None, source: Any
) -> str | None:
    """Return why `user` may not use `source`, which needs `permission` (if any).

    No user (None) and no permission pass.
    """
    if user is None or permission is None or user.has_perm(permission):
        return None
    return _(
        "You need the %(permission)s permission to use the source %(source)r; a "
        "superuser can grant it to you or to your group."
    ) % {"permission": permission, "source": str(source)}


def group_by_refusal(model: type[Model], path: str) -> str | None:
    """Return why grouping `model`'s rows by `path` would give one series per row.

    A path that ends at a primary key or a unique field, here or across a
    relation (`pk`, `customer__id`), at a one-to-one or unique foreign key, or
    at the reverse side of a foreign key names a value that no two rows share.
    A path that goes on with a transform (`created__year`) is left alone, and
    so is one that names no field: other rules report those.
    """
    meta, field = model._meta, None
    for part in path.split(LOOKUP_SEP):
        if meta is None:
            return None
        try:
            field = meta.get_field(meta.pk.name if part == "pk" else part)
        except FieldDoesNotExist:
            return None
        related = field.related_model if field.is_relation else None
        meta = related._meta if isinstance(related, type) else None
    if isinstance(field, ManyToOneRel):
        # The reverse side of a foreign key or one-to-one groups by the
        # primary key of the rows that point here.
        field = field.related_model._meta.pk
    if field is None or not _is_unique(field):
        return None
    params = {"path": path, "field": field.name, "model": field.model._meta.label}
    if field.primary_key:
        message = _(
            "Group by %(path)r is refused: %(field)r is the primary key of "
            "%(model)s, so it gives one series per row, and one series per row is "
            "never a metric. Group by a field whose values repeat, such as a "
            "status or a country."
        )
    else:
        message = _(
            "Group by %(path)r is refused: %(field)r is unique in %(model)s, so it "
            "gives one series per row, and one series per row is never a metric. "
            "Group by a field whose values repeat, such as a status or a country."
        )
    return message % params


def unbounded_lookup_refusals(
    model: type[Model],
    filters: Any,
    group_by: str,
    *,
    field: str = "",
    connection: BaseDatabaseWrapper | None = None,
) -> dict[str, str]:
    """Return {field: why} for lookups whose cost the database cannot bound.

    The database is the one the row count reads (see
    routing.model_database()) unless `connection` is given. Only SQLite runs
    lookups in Python (`__regex` and `__iregex` through REGEXP, date parts
    through Django's functions); PostgreSQL and MariaDB run them in the server,
    where the statement timeout cuts them. Each lookup is compiled for the database, so
    a custom lookup or transform that calls one of these functions is caught
    as well as the built-in ones.
    """
    if connection is None:
        connection = connections[routing.model_database(model)]
    if connection.vendor != "sqlite":
        return {}
    refusals: dict[str, str] = {}
    for lookup, value in filters.items() if isinstance(filters, Mapping) else ():
        refusal = _unbounded_refusal(connection, model, str(lookup), value)
        if refusal:
            refusals["filters"] = refusal
            break
    for path in validators.group_by_paths(group_by):
        refusal = _unbounded_refusal(connection, model, path, None, grouped=True)
        if refusal:
            refusals["group_by"] = refusal
            break
    if field:
        refusal = _unbounded_refusal(connection, model, field, None, grouped=True)
        if refusal:
            refusals["field"] = refusal
    return refusals


def python_functions(sql: str) -> set[str]:
    """Return the Python functions of Django's SQLite backend that `sql` calls."""
    words = _WORD_RE.findall(_QUOTED_RE.sub(" ", sql))
    return {word.lower() for word in words} & SQLITE_PYTHON_FUNCTIONS


def setting_refusal(path: str) -> str | None:
    """Return why setting sources may not read `path`, or None if they may."""
    for part in path.split("."):
        pattern = sensitive_match(part)
        if pattern:
            return _(
                "Setting %(path)s looks secret (%(part)r matches %(pattern)r); "
                "settings whose names mention passwords, tokens, secrets or keys "
                "are never exported. Choose another setting, such as "
                "SESSION_COOKIE_AGE."
            ) % {"path": path, "part": part, "pattern": pattern}
    allowed = app_settings.ALLOWED_SETTINGS
    if allowed != ALL and not any(
        path == entry or path.startswith(entry + ".") for entry in allowed
    ):
        return _(
            "Setting %(path)s is not allowed: METRICDEMO['ALLOWED_SETTINGS'] "
            "allows only %(allowed)s."
        ) % {"path": path, "allowed": ", ".join(allowed) or "none"}
    return None


def allowed_models(user: Any = None) -> list[str]:
    """Return the labels of the installed models that row counts may read.

    With a `user`, only those they may view (or change) as well.
    """
    return sorted(
        m._meta.label
        for m in apps.get_models()
        if not model_refusal(m) and (user is None or may_view(user, m))
    )


def suggested_settings(user: Any = None) -> list[str]:
    """Return the top-level settings a setting source may export, by name.

    A `user` without the read_settings permission gets none.
    """
    if user is not None and not user.has_perm(READ_SETTINGS):
        return []
    # The values are read past LazySettings, which warns on every read of a
    # deprecated setting (Django 6.1's EMAIL_*): looking at them for a list
    # of suggestions is not using them.
    holder = settings._wrapped if settings.configured else settings
    names = []
    for name in dir(settings):
        if not name.isupper() or setting_refusal(name):
            continue
        value = getattr(holder, name, None)
        if isinstance(value, bool | int | float):
            names.append(name)
    return sorted(names)


def _unbounded_refusal(
    connection: BaseDatabaseWrapper,
    model: type[Model],
    lookup: str,
    value: Any,
    *,
    grouped: bool = False,
) -> str | None:
    unbounded = sorted(
        _calls(connection, model, lookup, value, grouped)
        & SQLITE_UNBOUNDED_FUNCTIONS.keys()
    )
    if not unbounded:
        return None
    what = repr(lookup) if grouped else f"{lookup!r}: {value!r}"
    return _(
        "%(what)s cannot be bounded on SQLite (database %(alias)r): %(why)s. "
        "It is refused there; use contains, startswith, endswith, in or exact "
        "instead, or a case-insensitive form such as icontains, for example "
        '{"name__startswith": "shop."}.'
    ) % {
        "what": what,
        "alias": connection.alias,
        "why": SQLITE_UNBOUNDED_FUNCTIONS[unbounded[0]],
    }


def _calls(
    connection: BaseDatabaseWrapper,
    model: type[Model],
    lookup: str,
    value: Any,
    grouped: bool,
) -> frozenset[str]:
    try:
        frozen = json.dumps(value, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        frozen = repr(value)
    key = (connection.vendor, model._meta.label, lookup, frozen, grouped)
    found = _CALLS.get(key)
    if found is None:
        manager = model._default_manager
        try:
            query = (
                manager.values(lookup)
                if grouped
                else manager.filter(lookups.parse(model, lookup).q(value))
            )
            sql, _params = query.query.get_compiler(connection=connection).as_sql()
        except Exception:  # noqa: BLE001 - an unusable lookup is refused elsewhere
            # Validation names its error, and a scrape's query fails to compile
            # the same way, so it never runs.
            return frozenset()
        found = frozenset(python_functions(sql))
        if len(_CALLS) >= _CALLS_MAX:
            _CALLS.clear()
        _CALLS[key] = found
    return found


def _listed(model: type[Model], entries: Iterable[str]) -> bool:
    meta = model._meta
    names = (meta.label_lower, meta.app_label.lower())
    return any(entry.lower() in names for entry in entries)


def _target_name(field: Any) -> str:
    # The field that a comparison with the relation itself (`customer=3`,
    # `customer__gt=3`) is made against on the related model.
    try:
        return field.target_field.name
    except (AttributeError, FieldError):
        return field.related_model._meta.pk.name


def _is_unique(field: Any) -> bool:
    # unique=True covers primary keys and one-to-one fields; a single-field
    # UniqueConstraint or unique_together makes a field just as unique.
    if getattr(field, "unique", False):
        return True
    meta = getattr(field, "model", None) and field.model._meta
    if not meta or not getattr(field, "concrete", False):
        return False
    single = [c.fields for c in meta.total_unique_constraints]
    single += [tuple(fields) for fields in meta.unique_together]
    return (field.name,) in single


def _permission(action: str, model: type[Model]) -> str:
    meta = model._meta
    return f"{meta.app_label}.{get_permission_codename(action, meta)}"


def _fields_along(model: type[Model], path: str) -> tuple[list[Field], list[str]]:
    # The fields a lookup path names, following relations, and the lookups and
    # transforms after the last one.
    parts = path.split(LOOKUP_SEP)
    fields: list[Field] = []
    meta = model._meta
    for part in parts:
        try:
            field = meta.get_field(meta.pk.name if part == "pk" else part)
        except FieldDoesNotExist:
            break
        fields.append(field)
        related = field.related_model if field.is_relation else None
        if not isinstance(related, type):
            break
        meta = related._meta
    return fields, parts[len(fields) :]


def _identity_field(
    model: type[Model], path: str
) -> tuple[Field, str, list[str], str] | None:
    # The identity field that `path` compares or groups by, the path up to it,
    # the lookups after it and why it identifies a person; None if it is none.
    fields, lookups = _fields_along(model, path)
    if not fields:
        return None
    field = fields[-1]
    seen = set()
    # A path that stops at a relation compares the related model's target
    # field (`customer=3`), which may itself be a relation (a parent link).
    while field.is_relation and isinstance(field.related_model, type):
        if field in seen:
            return None
        seen.add(field)
        field = field.related_model._meta.get_field(_target_name(field))
    reason = identity_reason(field)
    if reason is None:
        return None
    stem = LOOKUP_SEP.join(path.split(LOOKUP_SEP)[: len(fields)])
    return field, stem, lookups, reason


def _path_refusals(
    filters: Any, group_by: str, refuse: Callable[[str, Any, bool], str | None]
) -> dict[str, str]:
    # Apply refuse(path, value, grouped) to each filter and to the group-by.
    refusals = {}
    for lookup, value in filters.items() if isinstance(filters, Mapping) else ():
        refusal = refuse(str(lookup), value, False)
        if refusal:
            refusals["filters"] = refusal
            break
    for path in validators.group_by_paths(group_by):
        refusal = refuse(path, None, True)
        if refusal:
            refusals["group_by"] = refusal
            break
    return refusals


def _identity_group_refusal(model: type[Model], path: str) -> str | None:
    # The identity rule for one group-by path, as identity_refusals words it.
    return identity_refusals(model, {}, path).get("group_by")
