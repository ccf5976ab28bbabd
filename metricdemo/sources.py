"""Turn a definition's source into observations: one small class per source kind.

Each class owns its key, its label and the fields it reads; the model's
choices, the admin's guidance and the export format are built from SOURCES,
so a new kind of source is one class here, its fields on the model and a
migration.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings
from django.core.exceptions import EmptyResultSet, FieldError, ValidationError
from django.db import DatabaseError, NotSupportedError, connections, transaction
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.models.lookups import Regex
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from metricdemo import (
    aggregates,
    callbacks,
    distributions,
    lookups,
    policy,
    routing,
    rowquery,
    validators,
)
from metricdemo.observations import (
    EvaluationError,
    Observations,
    counter_problem,
    normalize_result,
    with_constant_attributes,
)

if TYPE_CHECKING:
    from django.db.models import Model

    from metricdemo.models import MetricDefinition


class Source(ABC):
    """Validate a definition's parameters and observe its current value."""

    #: The value stored in MetricDefinition.source.
    key: ClassVar[str]
    #: The choice's label in forms.
    label: ClassVar[str | Promise]
    #: The label in the admin's change list and filter, where space is short.
    short_label: ClassVar[str | Promise]
    #: Which fields the source reads, for the admin's guidance.
    help_text: ClassVar[str | Promise]
    #: The definition fields this source reads; other sources' fields must be empty.
    fields: ClassVar[tuple[str, ...]] = ()
    #: Whether observing runs database queries.
    uses_database: ClassVar[bool] = False
    #: Whether observing may block, so it runs on a worker thread with a timeout.
    blocking: ClassVar[bool] = False
    #: Whether the value depends on the definition alone, so it is observed once
    #: when definitions load rather than on every scrape.
    static: ClassVar[bool] = False
    #: Whether many definitions are observed together in one query.
    batchable: ClassVar[bool] = False
    #: The permission (app_label.codename) an editor needs to use this source.
    permission: ClassVar[str | None] = None
    #: Own fields that export files write only when they are not the default.
    optional_fields: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def validate(self, definition: MetricDefinition) -> None:
        """Raise ValidationError, keyed by field, if the parameters are unusable."""

    @abstractmethod
    def observe(self, definition: MetricDefinition) -> Observations:
        """Return the current `(value, attributes)` pairs, one per series.

        Raises:
            EvaluationError: the value cannot be produced now.
        """

    def permission_refusals(
        self, definition: MetricDefinition, user: Any
    ) -> dict[str, str]:
        """Return {field: why} for what `user` may not publish with this source."""
        refusal = policy.source_permission_refusal(user, self.permission, self.label)
        return {self.fields[0]: refusal} if refusal else {}


@dataclass(frozen=True)
class ConstantSource(Source):
    """Export a fixed number."""

    key: ClassVar[str] = "constant"
    label: ClassVar[Promise] = gettext_lazy("Constant")
    short_label: ClassVar[Promise] = gettext_lazy("Constant")
    help_text: ClassVar[Promise] = gettext_lazy("value for a constant")
    fields: ClassVar[tuple[str, ...]] = ("value",)
    static: ClassVar[bool] = True

    def validate(self, definition: MetricDefinition) -> None:
        if definition.value is None:
            raise ValidationError(
                {"value": _("A constant source needs a value, for example 10.")}
            )
        problem = counter_problem(definition.kind, [(definition.value, {})])
        if problem:
            raise ValidationError({"value": problem})

    def observe(self, definition: MetricDefinition) -> Observations:
        return [(float(definition.value), {})]


@dataclass(frozen=True)
class RowsSource(Source):
    """Aggregate a model's rows (count, sum, average, ...), filtered and grouped."""

    key: ClassVar[str] = "row_count"
    label: ClassVar[Promise] = gettext_lazy(
        "Rows of a model (count, sum, average, ...)"
    )
    short_label: ClassVar[Promise] = gettext_lazy("Rows")
    help_text: ClassVar[Promise] = gettext_lazy(
        "model, aggregate, field, filters and group by for rows of a model"
    )
    fields: ClassVar[tuple[str, ...]] = (
        "model",
        "aggregate",
        "field",
        "filters",
        "group_by",
        "buckets",
    )
    optional_fields: ClassVar[tuple[str, ...]] = ("aggregate", "field", "buckets")
    uses_database: ClassVar[bool] = True
    blocking: ClassVar[bool] = True
    #: Whether many definitions are observed together by rowquery.compute_rows().
    batchable: ClassVar[bool] = True

    def validate(self, definition: MetricDefinition) -> None:
        if not definition.model:
            raise ValidationError(
                {"model": _("A row count needs a model, for example auth.User.")}
            )
        try:
            model = routing.resolve_model(definition.model)
        except LookupError as exc:
            raise ValidationError({"model": str(exc)}) from None
        filters = definition.filters
        if not isinstance(filters, Mapping):
            raise ValidationError(
                {
                    "filters": _(
                        'Filters must be a JSON object such as {"status": '
                        '"pending"}; got %(value)r.'
                    )
                    % {"value": filters}
                }
            )
        refusals = policy.row_count_refusals(
            model, filters, definition.group_by, _field_of(definition)
        )
        if refusals:
            raise ValidationError(refusals)
        self._validate_aggregate(definition, model)
        try:
            filters = aggregates.resolved_filters(model, filters)
        except ValueError as exc:
            raise ValidationError({"filters": str(exc)}) from None
        manager = model._default_manager
        connection = connections[routing.model_database(model)]
        for lookup, value in filters.items():
            parsed = lookups.parse(model, lookup)
            problem = value_problem(parsed, value, connection)
            if problem is None:
                try:
                    # Compiled for the database the count reads, as a scrape
                    # would: what that backend cannot run fails here.
                    manager.filter(parsed.q(value)).query.get_compiler(
                        connection=connection
                    ).as_sql()
                except EmptyResultSet:
                    problem = _(
                        "it matches no row whatever the data (an empty list, or a "
                        "value the field cannot hold); remove the filter or give a "
                        "value the field can hold"
                    )
                except NotSupportedError as exc:
                    problem = _(
                        "%(vendor)s cannot run it (%(error)s); use another lookup"
                    ) % {"vendor": connection.display_name, "error": exc}
                except (
                    FieldError,
                    ValueError,
                    TypeError,
                    IndexError,
                    OverflowError,
                    ValidationError,
                ) as exc:
                    problem = _error_text(exc) + _relative_hint(parsed, value)
            if problem:
                raise ValidationError(
                    {
                        "filters": _(
                            "The lookup %(lookup)s=%(value)r does not work on "
                            "%(model)s: %(error)s"
                        )
                        % {
                            "lookup": lookup,
                            # As written: a relative time, not what it means now.
                            "value": definition.filters.get(lookup, value),
                            "model": definition.model,
                            "error": problem,
                        }
                    }
                ) from None
            error = regex_error(model, lookup, value)
            if error:
                raise ValidationError(
                    {
                        "filters": _(
                            "The lookup %(lookup)s=%(value)r is not a regular "
                            "expression that %(vendor)s accepts: %(error)s"
                        )
                        % {
                            "lookup": lookup,
                            "value": value,
                            "vendor": connections[
                                routing.model_database(model)
                            ].display_name,
                            "error": error,
                        }
                    }
                )
        if definition.group_by:
            self._validate_group_by(definition, manager)

    def _validate_aggregate(self, definition: MetricDefinition, model: Any) -> None:
        aggregate = aggregate_of(definition)
        if is_histogram(definition):
            chosen = definition.aggregate or aggregates.COUNT
            if chosen != aggregates.COUNT:
                raise ValidationError(
                    {
                        "aggregate": _(
                            "A histogram measures how the field's values spread "
                            "over its buckets, so it takes no aggregate (it is "
                            "%(aggregate)r); leave it at count, or choose another "
                            "kind to export the %(aggregate)s."
                        )
                        % {"aggregate": chosen}
                    }
                )
            problem = distributions.bucket_problem(definition.buckets)
            if problem:
                raise ValidationError({"buckets": problem})
            reserved = _histogram_label_problem(definition)
            if reserved:
                raise ValidationError(reserved)
        elif definition.buckets not in (None, [], ()):
            raise ValidationError(
                {
                    "buckets": _(
                        "Buckets are for the histogram kind, and this definition is "
                        "a %(kind)s; clear them (they are %(value)r), or make it a "
                        "histogram."
                    )
                    % {"kind": definition.kind, "value": definition.buckets}
                }
            )
        problem = aggregates.field_problem(model, aggregate, _field_of(definition))
        if problem:
            key = (
                "aggregate"
                if aggregate not in (*aggregates.AGGREGATES, aggregates.HISTOGRAM)
                else "field"
            )
            raise ValidationError({key: problem})
        unit = definition.unit or ""
        if (
            aggregate in (*aggregates.VALUE_AGGREGATES, aggregates.HISTOGRAM)
            and unit in OTHER_TIME_UNITS
            and aggregates.measure_kind(model, _field_of(definition))
            == aggregates.DURATION
        ):
            raise ValidationError(
                {
                    "unit": _(
                        "%(field)s is measured in seconds, but the unit is "
                        "%(unit)r; set the unit to s (and the buckets in seconds)."
                    )
                    % {"field": _field_of(definition), "unit": unit}
                }
            )

    def _validate_group_by(self, definition: MetricDefinition, manager: Any) -> None:
        paths = validators.group_by_paths(definition.group_by)
        for path in paths:
            if paths.count(path) > 1:
                raise ValidationError(
                    {
                        "group_by": _(
                            "%(path)r appears twice in the group-by; give each "
                            "field path once."
                        )
                        % {"path": path}
                    }
                )
            try:
                str(manager.values(path).query)
            except (FieldError, ValueError, TypeError) as exc:
                raise ValidationError(
                    {
                        "group_by": _(
                            "%(value)r is not a field path of %(model)s: %(error)s"
                        )
                        % {
                            "value": path,
                            "model": definition.model,
                            "error": _error_text(exc),
                        }
                    }
                ) from None
        attributes = definition.attributes
        constant = {
            validators.label_name(key)
            for key in (attributes if isinstance(attributes, Mapping) else ())
        }
        seen: dict[str, str] = {}
        for key in validators.group_by_keys(definition.group_by).values():
            try:
                validators.validate_label_key(
                    key, what=_("Group-by"), relation_path=True
                )
            except ValidationError as exc:
                raise ValidationError({"group_by": exc.messages}) from None
            label = validators.label_name(key)
            if label in seen:
                raise ValidationError(
                    {
                        "group_by": _(
                            "%(first)r and %(second)r both become the label "
                            "%(label)r; group by one of them."
                        )
                        % {"first": seen[label], "second": key, "label": label}
                    }
                )
            seen[label] = key
            if label in constant:
                raise ValidationError(
                    {
                        "group_by": _(
                            "The group-by label %(label)r is also a constant "
                            "attribute; remove it from the attributes."
                        )
                        % {"label": label}
                    }
                )

    def permission_refusals(
        self, definition: MetricDefinition, user: Any
    ) -> dict[str, str]:
        try:
            model = routing.resolve_model(definition.model)
        except LookupError:
            return {}  # validate() names the unknown model
        return policy.row_count_permission_refusals(
            user, model, definition.filters, definition.group_by, _field_of(definition)
        )

    def observe(self, definition: MetricDefinition) -> Observations:
        (observations,) = rowquery.compute_rows([definition])
        if isinstance(observations, EvaluationError):
            raise observations
        return observations


@dataclass(frozen=True)
class SettingSource(Source):
    """Export the numeric or boolean value of a Django setting."""

    key: ClassVar[str] = "setting"
    label: ClassVar[Promise] = gettext_lazy("Django setting")
    short_label: ClassVar[Promise] = gettext_lazy("Setting")
    help_text: ClassVar[Promise] = gettext_lazy("setting for a setting")
    fields: ClassVar[tuple[str, ...]] = ("setting",)
    permission: ClassVar[str] = policy.READ_SETTINGS

    def validate(self, definition: MetricDefinition) -> None:
        if not definition.setting:
            raise ValidationError(
                {
                    "setting": _(
                        "A setting source needs a setting, for example "
                        "SESSION_COOKIE_AGE."
                    )
                }
            )
        try:
            self.observe(definition)
        except EvaluationError as exc:
            raise ValidationError({"setting": str(exc)}) from None

    def observe(self, definition: MetricDefinition) -> Observations:
        refusal = policy.setting_refusal(definition.setting)
        if refusal:
            raise EvaluationError(refusal)
        value = read_setting(definition.setting)
        try:
            return [(validators.as_number(value), {})]
        except TypeError:
            # Name the type, never the value: a string setting may be a secret
            # that the name rules did not catch, and this message is shown.
            raise EvaluationError(
                _(
                    "Setting %(setting)s holds a %(type)s, not a number or boolean; "
                    "choose a setting with a numeric value."
                )
                % {"setting": definition.setting, "type": type(value).__name__}
            ) from None
        except ValueError:
            raise EvaluationError(
                _("Setting %(setting)s is not a finite number.")
                % {"setting": definition.setting}
            ) from None


@dataclass(frozen=True)
class CallbackSource(Source):
    """Call a function registered in code with metricdemo.register_callback()."""

    key: ClassVar[str] = "callback"
    label: ClassVar[Promise] = gettext_lazy("Registered Python callback")
    short_label: ClassVar[Promise] = gettext_lazy("Callback")
    help_text: ClassVar[Promise] = gettext_lazy("callback for a registered callback")
    fields: ClassVar[tuple[str, ...]] = ("callback",)
    permission: ClassVar[str] = policy.USE_CALLBACKS
    blocking: ClassVar[bool] = True

    def validate(self, definition: MetricDefinition) -> None:
        if not definition.callback:
            raise ValidationError(
                {"callback": _("A callback source needs a registered callback name.")}
            )
        if callbacks.get_callback(definition.callback) is None:
            raise ValidationError({"callback": _unregistered(definition.callback)})

    def observe(self, definition: MetricDefinition) -> Observations:
        registered = callbacks.get_callback(definition.callback)
        if registered is None:
            raise EvaluationError(_unregistered(definition.callback))
        return _within_max_series(definition, normalize_result(registered.func()))


SOURCES: dict[str, Source] = {
    source.key: source
    for source in (
        ConstantSource(),
        RowsSource(),
        SettingSource(),
        CallbackSource(),
    )
}

#: The model's choices for MetricDefinition.source, in the order of SOURCES.
CHOICES: list[tuple[str, str | Promise]] = [
    (key, source.label) for key, source in SOURCES.items()
]

#: The same choices with the short labels, for the admin's change list.
SHORT_CHOICES: list[tuple[str, str | Promise]] = [
    (key, source.short_label) for key, source in SOURCES.items()
]

#: Every source's own fields, in the order of SOURCES.
SOURCE_FIELDS: tuple[str, ...] = tuple(
    dict.fromkeys(field for source in SOURCES.values() for field in source.fields)
)


#: Units of time other than the second, which durations are exported in.
OTHER_TIME_UNITS = ("ms", "us", "ns", "min", "h", "d", "wk", "mo", "a")


def validate_source(definition: MetricDefinition) -> None:
    """Validate `definition` with its source's rules."""
    if is_histogram(definition) and definition.source != RowsSource.key:
        raise ValidationError(
            {
                "kind": _(
                    "A histogram is computed from rows of a model; choose the "
                    "source %(rows)s, or another kind for a %(source)s source."
                )
                % {"rows": RowsSource.label, "source": definition.source}
            }
        )
    SOURCES[definition.source].validate(definition)


def is_histogram(definition: MetricDefinition) -> bool:
    """Return whether `definition` exports a histogram."""
    return getattr(definition, "kind", None) == aggregates.HISTOGRAM


def aggregate_of(definition: MetricDefinition) -> str:
    """Return what a row-based definition computes: its aggregate, or histogram."""
    if is_histogram(definition):
        return aggregates.HISTOGRAM
    return getattr(definition, "aggregate", "") or aggregates.COUNT


def _histogram_label_problem(definition: MetricDefinition) -> dict[str, str]:
    # A histogram's buckets carry the label `le`; no other label may be named so.
    attributes = definition.attributes
    if isinstance(attributes, Mapping) and any(
        validators.label_name(str(key)) == "le" for key in attributes
    ):
        return {
            "attributes": _(
                "A histogram's buckets carry the label le; rename the attribute le."
            )
        }
    keys = validators.group_by_keys(definition.group_by or "").values()
    if any(validators.label_name(key) == "le" for key in keys):
        return {
            "group_by": _(
                "A histogram's buckets carry the label le; group by a field whose "
                "label is not le."
            )
        }
    return {}


def permission_refusals(definition: MetricDefinition, user: Any) -> dict[str, str]:
    """Return {field: why} for what `definition` reads that `user` may not see.

    No user (None) is refused nothing: saves outside the admin keep only the
    settings-based rules.
    """
    source = SOURCES.get(definition.source)
    if user is None or source is None:
        return {}
    return source.permission_refusals(definition, user)


def observe(definition: MetricDefinition) -> Observations:
    """Return the observations of `definition`, constant attributes included.

    Raises:
        EvaluationError: the source could not produce a value.
    """
    return with_constant_attributes(
        definition, SOURCES[definition.source].observe(definition)
    )


def observe_rows(
    definitions: Sequence[MetricDefinition],
) -> Iterator[Observations | EvaluationError]:
    """Count the rows of definitions together, one statement per database.

    Returns an iterator over the definitions' results: each one's
    observations, constant attributes included, or the EvaluationError that
    stopped it alone.

    Raises:
        Exception: the statement failed as a whole (raised by this call, before
            any result is read).
    """
    found = rowquery.compute_rows(definitions)
    # Added as each item is read, so that the caller tells a statement that
    # failed (raised here) from one definition's attributes that fail.
    return (
        item
        if isinstance(item, EvaluationError)
        else with_constant_attributes(definition, item)
        for definition, item in zip(definitions, found, strict=True)
    )


def read_setting(path: str) -> Any:
    """Return the value at a dotted settings path such as CACHES.default.TIMEOUT.

    Raises:
        EvaluationError: the setting or one of its keys does not exist.
    """
    name, *keys = path.split(".")
    if not name.isupper() or not hasattr(settings, name):
        raise EvaluationError(
            _("There is no Django setting called %(name)r.") % {"name": name}
        )
    value = getattr(settings, name)
    walked = name
    for key in keys:
        if isinstance(value, Mapping) and key in value:
            value = value[key]
        elif (
            isinstance(value, list | tuple)
            and key.isascii()
            and key.isdigit()
            and int(key) < len(value)
        ):
            value = value[int(key)]
        else:
            raise EvaluationError(
                _("Setting %(setting)s has no key %(key)r.")
                % {"setting": walked, "key": key}
            )
        walked = f"{walked}.{key}"
    return value


def regex_error(model: type[Model], lookup: str, value: Any) -> str | None:
    """Return the database's error for an invalid pattern of a regex lookup, or None.

    Each engine has its own syntax (PostgreSQL's, MariaDB's PCRE2), so the
    database that the row count reads is asked, with the operator the query
    would use; otherwise the error would surface only at scrape time.
    """
    alias = routing.model_database(model)
    connection = connections[alias]
    if connection.vendor == "sqlite":
        # Refused by policy.unbounded_lookup_refusals() before this.
        return None
    where = model._default_manager.filter(lookups.parse(model, lookup).q(value))
    where = where.query.where
    for leaf in _leaves(where):
        if not isinstance(leaf, Regex):
            continue
        operator = connection.operators.get(leaf.lookup_name)
        template = (
            f"%s {operator}"
            if operator
            else connection.ops.regex_lookup(leaf.lookup_name)
        )
        try:
            # A savepoint: on PostgreSQL a failed statement would otherwise
            # abort the caller's transaction.
            with transaction.atomic(using=alias), connection.cursor() as cursor:
                cursor.execute(f"SELECT {template}", ["", str(leaf.rhs)])
        except DatabaseError as exc:
            return str(exc).strip()
    return None


def _leaves(node: Any) -> Iterator[Any]:
    for child in getattr(node, "children", ()):
        if hasattr(child, "children"):
            yield from _leaves(child)
        else:
            yield child


def _unregistered(name: str) -> str:
    known = ", ".join(c.name for c in callbacks.registered_callbacks()) or _("none")
    return _(
        "No callback is registered as %(name)r; registered callbacks: %(known)s. "
        "Register one in code with metricdemo.register_callback()."
    ) % {"name": name, "known": known}


def _within_max_series(
    definition: MetricDefinition, observations: Observations
) -> Observations:
    # A row count stops reading at its bound; a callback's series are all in
    # memory already, but it must not export more than its bound either.
    bound = validators.max_series_bound(getattr(definition, "max_series", None))
    if len(observations) > bound:
        raise EvaluationError(
            _(
                "Callback %(callback)s returned %(count)d series, more than "
                "%(bound)d (max_series); return fewer series or raise max series."
            )
            % {
                "callback": definition.callback,
                "count": len(observations),
                "bound": bound,
            }
        )
    return observations


def _field_of(definition: MetricDefinition) -> str:
    # Definitions made before aggregates (or unsaved ones) may lack the field.
    return (getattr(definition, "field", "") or "").strip()


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return str(exc)


#: Words a person may write for a moment, and the relative time that means it.
_MOMENT_WORDS = {"now": "now", "today": "now/d", "yesterday": "now-1d/d"}


def value_problem(
    parsed: lookups.ParsedLookup, value: Any, connection: Any
) -> str | None:
    """Return why `value` cannot be compared by a parsed lookup on a database.

    Checked before the database sees it: the two ends a range takes, and
    whole numbers within what an integer column holds on that backend.
    """
    if parsed.lookup == "range" and not (
        isinstance(value, list | tuple) and len(value) == 2
    ):
        return _(
            "range takes two values, the start and the end, for example "
            '["now-1d", "now"]'
        )
    if parsed.transforms:
        return None
    field = parsed.fields[-1]
    if field.is_relation:
        field = getattr(field, "target_field", None)
    internal = field.get_internal_type() if field is not None else ""
    if internal not in BaseDatabaseOperations.integer_field_ranges:
        return None
    low, high = connection.ops.integer_field_range(internal)
    values = value if isinstance(value, list | tuple) else [value]
    for item in values:
        if isinstance(item, int) and not isinstance(item, bool):
            if (low is not None and item < low) or (high is not None and item > high):
                return _(
                    "%(value)d is outside what %(field)s holds on %(vendor)s "
                    "(%(low)d to %(high)d)"
                ) % {
                    "value": item,
                    "field": f"{field.model._meta.label}.{field.name}",
                    "vendor": connection.display_name,
                    "low": low,
                    "high": high,
                }
    return None


def _relative_hint(parsed: lookups.ParsedLookup, value: Any) -> str:
    # "today" in a date filter means the relative time now/d: say so.
    values = value if isinstance(value, list | tuple) else [value]
    for item in values:
        if isinstance(item, str) and item.strip().lower() in _MOMENT_WORDS:
            return " " + _(
                "For %(word)r write the relative time %(relative)r, which is "
                "resolved at each evaluation."
            ) % {
                "word": item,
                "relative": _MOMENT_WORDS[item.strip().lower()],
            }
    return ""
