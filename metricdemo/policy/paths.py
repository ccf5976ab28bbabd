"""Walk lookup paths: the fields a path names and every path a definition reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.core.exceptions import FieldDoesNotExist, FieldError
from django.db.models import Field, Model
from django.db.models.constants import LOOKUP_SEP

from metricdemo import validators


def lookup_fields(model: type[Model], path: str) -> tuple[list[Field], list[str]]:
    """Return the fields a lookup path names from `model`, and the parts after them.

    `customer__country__in` gives the fields customer and country, then ["in"].
    """
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


def target_name(field: Any) -> str:
    """Return the related model's field that the relation `field` is compared by.

    A comparison with the relation itself (`customer=3`, `customer__gt=3`) is
    made against that field, usually the related model's primary key.
    """
    try:
        return field.target_field.name
    except (AttributeError, FieldError):
        return field.related_model._meta.pk.name


def path_refusals(
    filters: Any, group_by: str, refuse: Callable[[str, Any, bool], str | None]
) -> dict[str, str]:
    """Return {field: why} from `refuse(path, value, grouped)`, first refusal each.

    `refuse` is applied to each filter and to each group-by path.
    """
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
