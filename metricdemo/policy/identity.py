"""Say which fields identify a person, and refuse what would publish them."""

from __future__ import annotations

from typing import Any

from django.db.models import (
    EmailField,
    GenericIPAddressField,
    Model,
    UUIDField,
)
from django.db.models.constants import LOOKUP_SEP
from django.utils.translation import gettext as _

from metricdemo.conf import app_settings
from metricdemo.policy.paths import lookup_fields, path_refusals, target_name
from metricdemo.policy.sensitive import sensitive_match

#: Field types whose values identify a person or a device, whatever their name.
IDENTITY_FIELD_TYPES = (EmailField, GenericIPAddressField, UUIDField)


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
        named, stem, lookups, reason = found
        params = {"path": path, "field": named, "reason": reason, "stem": stem}
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

    return path_refusals(filters, group_by, refuse)


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


def identity_group_refusal(model: type[Model], path: str) -> str | None:
    """Return why grouping by `path` would publish an identity field, or None."""
    return identity_refusals(model, {}, path).get("group_by")


def _identity_field(
    model: type[Model], path: str
) -> tuple[str, str, list[str], str] | None:
    # What identifies a person that `path` compares or groups by (a field, or
    # a key inside a JSON field), the path up to it, the lookups after it and
    # why; None if it reads nothing that identifies a person.
    fields, lookups = lookup_fields(model, path)
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
        field = field.related_model._meta.get_field(target_name(field))
    named = f"{field.model._meta.label}.{field.name}"
    stem = LOOKUP_SEP.join(path.split(LOOKUP_SEP)[: len(fields)])
    reason = identity_reason(field)
    if reason is not None:
        return named, stem, lookups, reason
    # A JSON field's keys are named like fields (attributes__email): the same
    # names identify a person there. Every part after the field may be a key,
    # the last one also a lookup, which no personal pattern names.
    for position, key in enumerate(lookups):
        if not _is_key(field, key):
            break
        pattern = sensitive_match(key, app_settings.PERSONAL_FIELDS)
        if pattern:
            reason = _(
                "its name matches %(pattern)r of METRICDEMO['PERSONAL_FIELDS']"
            ) % {"pattern": pattern}
            keys = lookups[: position + 1]
            return (
                f"{named}[{']['.join(repr(k) for k in keys)}]",
                LOOKUP_SEP.join([stem, *keys]),
                lookups[position + 1 :],
                reason,
            )
    return None


def _is_key(field: Any, name: str) -> bool:
    # A key transform (JSONField's, HStoreField's) is made for any name by a
    # factory, not a Transform class registered under that name.
    try:
        transform = field.get_transform(name)
    except (AttributeError, TypeError):
        return False
    return transform is not None and not isinstance(transform, type)
