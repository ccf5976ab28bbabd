"""Parse filter keys into field paths, transforms and lookups; build Q from them.

A stored filter key is text an editor wrote. It reaches the ORM only through
`parse()`: every part must name a field of the model (following relations), a
transform of the field before it, or, last, a lookup Django has for it. The
query is then built from the parsed parts as a positional `Q((key, value))`
child, never as keywords of `Q(**filters)` or `filter(**filters)`, whose
`_connector` and `_negated` keywords wrote SQL on Django 5.2.0 to 5.2.7
(CVE-2025-64459).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Model, Q
from django.db.models.constants import LOOKUP_SEP
from django.db.models.expressions import Col
from django.utils.translation import gettext as _

#: The lookup a key without one compares with, as in Django.
EXACT = "exact"


class LookupParseError(ValueError):
    """A filter key that names no field path and lookup of its model."""


@dataclass(frozen=True)
class ParsedLookup:
    """One filter key taken apart: the fields it follows, transforms, lookup."""

    model: type[Model]
    #: The field names from the model, joined by __ (`pk` as the key's name).
    path: str
    fields: tuple[Any, ...]
    #: Transforms (and JSON keys) applied to the last field, in order.
    transforms: tuple[str, ...]
    lookup: str

    @property
    def key(self) -> str:
        """Return the key rebuilt from the parsed parts, with its lookup spelled out."""
        return LOOKUP_SEP.join((self.path, *self.transforms, self.lookup))

    def q(self, value: Any) -> Q:
        """Return the condition `key = value` as a positional Q child."""
        return Q((self.key, value))


def parse(model: type[Model], key: Any) -> ParsedLookup:
    """Take the filter key `key` of `model` apart, as Django would read it.

    Raises:
        LookupParseError: a part names no field, transform or lookup; the
            message quotes the key and says what was expected.
    """
    if not isinstance(key, str) or not key:
        raise LookupParseError(
            _("The filter key %(key)r names no field of %(model)s.")
            % {"key": key, "model": model._meta.label}
        )
    parts = key.split(LOOKUP_SEP)
    meta: Any = model._meta
    fields: list[Any] = []
    names: list[str] = []
    for part in parts:
        if meta is None or not part.isidentifier():
            break
        name = meta.pk.name if part == "pk" else part
        try:
            field = meta.get_field(name)
        except FieldDoesNotExist:
            break
        fields.append(field)
        names.append(name)
        related = field.related_model if field.is_relation else None
        meta = related._meta if isinstance(related, type) else None
    if not fields:
        choices = sorted(
            field.name
            for field in model._meta.get_fields()
            if not getattr(field, "hidden", False)
        )
        raise LookupParseError(
            _(
                "The filter key %(key)r names no field of %(model)s. Choices are: "
                "%(choices)s. A key is a field, optionally followed by related "
                'fields and a lookup, for example "status" or '
                '"customer__country__in".'
            )
            % {"key": key, "model": model._meta.label, "choices": ", ".join(choices)}
        )
    transforms, lookup = _transforms_and_lookup(key, fields[-1], parts[len(fields) :])
    return ParsedLookup(
        model=model,
        path=LOOKUP_SEP.join(names),
        fields=tuple(fields),
        transforms=transforms,
        lookup=lookup,
    )


def parse_filters(model: type[Model], filters: Mapping[Any, Any]) -> list[ParsedLookup]:
    """Parse every key of `filters`, in order.

    Raises:
        LookupParseError: for the first key that does not parse.
    """
    return [parse(model, key) for key in filters]


def condition(model: type[Model], filters: Mapping[Any, Any]) -> Q:
    """Return the AND of `filters` built from parsed keys (an empty Q for none).

    Raises:
        LookupParseError: a key does not parse.
    """
    return combine(
        parsed.q(value)
        for parsed, value in zip(
            parse_filters(model, filters), filters.values(), strict=True
        )
    )


def combine(conditions: Iterable[Q]) -> Q:
    """Return the AND of `conditions`."""
    combined = Q()
    for each in conditions:
        combined &= each
    return combined


def _transforms_and_lookup(
    key: str, field: Any, rest: list[str]
) -> tuple[tuple[str, ...], str]:
    # What follows the last field: transforms (each of the expression before
    # it), then at most one lookup; a last part that is a transform compares
    # with exact, as Django's build_lookup does.
    if not rest:
        return (), EXACT
    if field.is_relation:
        # A relation is compared by its target (customer=3, customer__in=...):
        # lookups only, as Django allows.
        if len(rest) == 1 and rest[0] and field.get_lookup(rest[0]) is not None:
            return (), rest[0]
        raise _unknown(key, rest[0], field)
    current: Any = Col("T", field)
    transforms: list[str] = []
    for position, part in enumerate(rest):
        last = position == len(rest) - 1
        if not part:
            raise _unknown(key, part, field)
        if last and current.get_lookup(part) is not None:
            return tuple(transforms), part
        transform = current.get_transform(part)
        if transform is None:
            raise _unknown(key, part, field)
        transforms.append(part)
        current = transform(current)
    return tuple(transforms), EXACT


def _unknown(key: str, part: str, field: Any) -> LookupParseError:
    owner = getattr(field, "model", None)
    return LookupParseError(
        _(
            "The filter key %(key)r has %(part)r after the field %(field)s, which "
            "is neither a related field, a transform nor a lookup of it; use a "
            "lookup such as exact, in, gte or isnull, for example "
            '"%(name)s__in".'
        )
        % {
            "key": key,
            "part": part,
            "field": f"{owner._meta.label}.{field.name}" if owner else field.name,
            "name": field.name,
        }
    )
