"""Decide which models and field paths row-based definitions may read."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import ManyToOneRel, Model
from django.db.models.constants import LOOKUP_SEP
from django.utils.translation import gettext as _

from metricdemo import lookups, measures, validators
from metricdemo.conf import ALL, SENSITIVE_NAMES, app_settings
from metricdemo.policy.identity import identity_group_refusal, identity_refusals
from metricdemo.policy.paths import target_name
from metricdemo.policy.sensitive import sensitive_match
from metricdemo.policy.sqlite_functions import unbounded_lookup_refusals


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
            names.append(target_name(relation))
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
            or identity_group_refusal(model, path)
            or group_by_refusal(model, path)
        )
        if refusal:
            refusals["group_by"] = refusal
            break
    for path in measures.paths_of(field):
        refusal = lookup_refusal(model, path)
        if refusal:
            refusals["field"] = refusal
            break
    unbounded = unbounded_lookup_refusals(model, filters, group_by, field=field)
    for key, refusal in unbounded.items():
        refusals.setdefault(key, refusal)
    return {**identity, **refusals}


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


def _listed(model: type[Model], entries: Iterable[str]) -> bool:
    meta = model._meta
    names = (meta.label_lower, meta.app_label.lower())
    return any(entry.lower() in names for entry in entries)


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
