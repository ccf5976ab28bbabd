"""Own exported names and their collisions: one rule for the model and the scrape."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

import metricdemo.validators as validators
from metricdemo.exposition.names import (
    TYPE_SUFFIXES,  # noqa: F401 - where callers have found it
    sanitize_name,
    taken_by_family,
    unit_suffix,
)
from metricdemo.reserved import SELF_METRICS, STATIC_FAMILIES, STATIC_PREFIXES

logger = logging.getLogger("metricdemo")

COUNTER = "counter"
HISTOGRAM = "histogram"


def exported_names(name: str, kind: str, unit: str) -> tuple[str, str]:
    """Return the Prometheus family name and sample name the exporter will write.

    Under the default translation strategy: the SDK lowercases instrument
    names (they are case-insensitive), each run of invalid characters becomes
    '_', a counter's '_total' is dropped, the unit suffix appended, and
    counter samples get the '_total' suffix. Clashes are judged on these
    names whatever the strategy: two names that differ only in characters
    the escaping rewrites would meet in the scrape of a classic scraper.
    """
    family = sanitize_name(name.lower())
    if kind == COUNTER and family.endswith("_total"):
        family = family[: -len("_total")]
    suffix = unit_suffix(unit or "")
    if suffix and not family.endswith("_" + suffix):
        family = f"{family}_{suffix}"
    if kind == COUNTER:
        return family, f"{family}_total"
    return family, family


def family_names(family: str, family_type: str) -> frozenset[str]:
    """Return every name a family of this type takes, samples and metadata included."""
    return taken_by_family(family, family_type)


def taken_names(name: str, kind: str, unit: str) -> frozenset[str]:
    """Return every name a definition's family takes once exported."""
    family = exported_names(name, kind, unit)[0]
    return family_names(family, family_type(kind))


def family_type(kind: str) -> str:
    """Return the Prometheus type of a definition's kind."""
    if kind in (COUNTER, HISTOGRAM):
        return kind
    return "gauge"


#: Returns {taken name: family that takes it} for families that are not definitions.
ServedFamilies = Callable[[], Mapping[str, str]]
_family_readers: list[ServedFamilies] = []


def register_served_families(reader: ServedFamilies) -> None:
    """Add a function reporting the names that the served registry's families take.

    Validation runs below the module that serves the registry, so that module
    registers one here: what its registry's collectors describe and what its
    last collection held besides the definitions.
    """
    if reader not in _family_readers:
        _family_readers.append(reader)


def unregister_served_families(reader: ServedFamilies) -> None:
    """Remove a function added with register_served_families()."""
    if reader in _family_readers:
        _family_readers.remove(reader)


def registry_families() -> dict[str, str]:
    """Return {taken name: family} as the registered functions report them.

    A function may collect the app's readers once (without evaluating any
    definition) to learn the families, when no scrape has run yet.
    """
    names: dict[str, str] = {}
    for reader in list(_family_readers):
        try:
            names.update(reader())
        except Exception:  # noqa: BLE001 - validation must work without the hook
            logger.exception("Reading the served metric families failed.")
    return names


def served_names(registry: Mapping[str, str]) -> dict[str, str]:
    """Return {taken name: family} for every served family that is not a definition.

    `registry` maps the names the served registry's other families take; the
    families every registry serves (target_info, python_info) are added.
    """
    names = {
        taken: family + ("_info" if family_type == "info" else "")
        for family, family_type in STATIC_FAMILIES
        for taken in family_names(family, family_type)
    }
    names.update(registry)
    return names


@functools.cache
def self_metric_names() -> Mapping[str, str]:
    """Return {taken name: instrument name} for the app's own metrics."""
    return {
        taken: name
        for name, kind, unit in SELF_METRICS.values()
        for taken in taken_names(name, kind, unit)
    }


def claimant(taken: Iterable[str], served: Mapping[str, str]) -> str | None:
    """Return the served family that takes one of the names in `taken`, or None."""
    for name in sorted(taken):
        if name in served:
            return served[name]
        if name.startswith(STATIC_PREFIXES):
            return name
    return None


class ExportedNameIndex:
    """Index the names other families take once exported, to find collisions.

    It holds the served families that are not definitions, read once, and the
    definitions added to it. Checking one definition against every stored one
    is a scan; an import builds one index, keeps it in step with its saves, and
    every clean() in the import consults it, so importing n definitions costs
    O(n), not O(n²). The scrape adds each definition it accepts, oldest first.
    """

    def __init__(
        self,
        rows: Iterable[tuple[Any, str, str, str]] = (),
        *,
        served: Mapping[str, str],
    ) -> None:
        #: {taken name: [(pk, definition name, kind), ...]}
        self._owners: dict[str, list[tuple[Any, str, str]]] = {}
        self._taken: dict[str, frozenset[str]] = {}
        #: {taken name: family} of the served families that are not definitions.
        self.served = served
        for pk, name, kind, unit in rows:
            self.add(pk, name, kind, unit)

    def add(self, pk: Any, name: str, kind: str, unit: str) -> None:
        """Record (or record again, after a change) the names a definition takes."""
        self.discard(name)
        taken = taken_names(name, kind, unit)
        self._taken[name] = taken
        for item in taken:
            self._owners.setdefault(item, []).append((pk, name, kind))

    def discard(self, name: str) -> None:
        """Forget the names the definition called `name` took."""
        for item in self._taken.pop(name, ()):
            owners = [o for o in self._owners.get(item, ()) if o[1] != name]
            if owners:
                self._owners[item] = owners
            else:
                self._owners.pop(item, None)

    def owner(
        self, taken: Iterable[str], *, pk: Any = None, name: str = ""
    ) -> tuple[str, str, str] | None:
        """Return (definition, kind, name) of another definition taking a name."""
        for item in sorted(taken):
            for other_pk, other, kind in self._owners.get(item, ()):
                if other != name and (pk is None or other_pk != pk):
                    return other, kind, item
        return None


#: What takes the name, as the code of the model's refusal: the app's own
#: metric, a family served beside the definitions, another definition.
OWN_METRIC = "reserved_name"
SERVED_FAMILY = "served_name"
DEFINITION = "exported_name_collision"

_MESSAGES = {
    OWN_METRIC: gettext_lazy(
        "%(name)r would be exported as %(exported)r, which metricdemo uses for "
        "its own metric %(other)r; choose another name."
    ),
    SERVED_FAMILY: gettext_lazy(
        "%(name)r would be exported as %(exported)r, which clashes with the "
        "family %(other)r that /metrics already serves (OpenTelemetry's "
        "target_info, prometheus_client's process_* and python_* metrics, "
        "another collector or an instrument made in code); choose another name "
        "or unit."
    ),
    DEFINITION: gettext_lazy(
        "%(name)r would be exported as %(exported)r, which the definition "
        "%(other)r (%(kind)s) already exports as; choose another name or unit."
    ),
}


@dataclass(frozen=True)
class Clash:
    """A name a definition would be exported under that something else takes."""

    #: OWN_METRIC, SERVED_FAMILY or DEFINITION.
    by: str
    #: The definition's name.
    name: str
    #: The exported name the message shows.
    exported: str
    #: The metric, family or definition that takes it.
    other: str
    #: The other definition's kind.
    kind: str = ""

    @property
    def message(self) -> str:
        """Return the message, translated now."""
        return str(_MESSAGES[self.by]) % self._params()

    def error(self) -> ValidationError:
        """Return the model's refusal, for its name field."""
        return ValidationError(_MESSAGES[self.by], code=self.by, params=self._params())

    def _params(self) -> dict[str, str]:
        return {
            "name": self.name,
            "exported": self.exported,
            "other": self.other,
            "kind": self.kind,
        }


def clash(
    name: str, kind: str, unit: str, index: ExportedNameIndex, *, pk: Any = None
) -> Clash | None:
    """Return what already takes a name the definition would be exported under.

    The app's own metrics come first, then the families served beside the
    definitions, then the other definitions in `index` (never the one with
    this `name` or `pk`). None when every name is free.
    """
    mine = taken_names(name, kind, unit)
    own = self_metric_names()
    for taken in sorted(mine & own.keys()):
        other = next(m for m in SELF_METRICS.values() if m[0] == own[taken])
        return Clash(OWN_METRIC, name, exported_names(*other)[1], other[0])
    family = claimant(mine, index.served)
    if family is not None:
        exported = exported_names(name, kind, unit)[1]
        return Clash(SERVED_FAMILY, name, exported, family)
    owner = index.owner(mine, pk=pk, name=name)
    if owner is not None:
        other, other_kind, taken = owner
        return Clash(DEFINITION, name, taken, other, other_kind)
    return None


def exposition_problem(
    row: Any, index: ExportedNameIndex, kinds: Collection[str]
) -> str | None:
    """Return why a stored row cannot be exported, or None; then add it to `index`.

    Rows saved without validation (bulk writes, raw SQL, an older release) may
    hold an unknown kind (not in `kinds`), text that cannot be encoded, an
    instrument the SDK refuses, or an exported name that a served family or a
    definition in `index` takes. A row without problem takes its names in
    `index`, so that later rows meet them.
    """
    if row.kind not in kinds:
        return _("kind: unknown kind %(kind)r") % {"kind": row.kind}
    for column in ("name", "description", "unit", "attributes"):
        text = validators.unencodable_text(getattr(row, column))
        if text is not None:
            return _("%(field)s: %(text)r cannot be encoded as UTF-8") % {
                "field": column,
                "text": text,
            }
    if not validators.INSTRUMENT_NAME_RE.fullmatch(row.name):
        return _("name: %(name)r is not a valid instrument name") % {"name": row.name}
    try:
        validators.validate_unit(row.unit)
    except (ValidationError, TypeError, AttributeError):
        return _("unit: %(unit)r is not a valid unit") % {"unit": row.unit}
    problem = _labels_problem(row.attributes)
    if problem:
        return problem
    found = clash(row.name, row.kind, row.unit, index, pk=row.pk)
    if found is not None:
        return field_problem("name", found.message)
    index.add(row.pk, row.name, row.kind, row.unit)
    return None


def field_problem(field: str, message: str) -> str:
    """Return a problem of one field as the scrape logs it: `field: message`."""
    return f"{field}: {message}"


def _labels_problem(attributes: object) -> str | None:
    if not isinstance(attributes, dict):
        return _("attributes: %(value)r is not a JSON object") % {"value": attributes}
    labels = set()
    for key in attributes:
        label = validators.label_name(key) if isinstance(key, str) else ""
        if (
            not validators.LABEL_NAME_RE.fullmatch(label)
            or label.startswith(validators.RESERVED_LABEL_PREFIXES)
            or label in labels
        ):
            return _("attributes: the key %(key)r does not make a usable label") % {
                "key": key
            }
        labels.add(label)
    return None
