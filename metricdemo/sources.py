"""Turn a definition's source into observations: one small class per source kind.

Each source also decides what a definition may read: row counts only reach
allowed models and never sensitive fields, settings never secret-looking names.
The same rules refuse a definition when it is validated and again each time it
is observed, so a definition stored before a rule tightened stops exporting.
"""

from __future__ import annotations

import fnmatch
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, FieldError, ValidationError
from django.db.models import BooleanField, CharField, Count, F, QuerySet, Value
from django.db.models.constants import LOOKUP_SEP
from django.db.models.functions import Cast
from django.utils.translation import gettext_lazy as _

from metricdemo import callbacks, validators
from metricdemo.conf import ALL, SENSITIVE_NAMES, app_settings

if TYPE_CHECKING:
    from metricdemo.models import MetricDefinition

Observations = list[tuple[float, dict[str, Any]]]


class EvaluationError(Exception):
    """A definition could not produce a value; the message says why."""


class Source(ABC):
    """Validate a definition's parameters and observe its current value."""

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

    @abstractmethod
    def validate(self, definition: MetricDefinition) -> None:
        """Raise ValidationError, keyed by field, if the parameters are unusable."""

    @abstractmethod
    def observe(self, definition: MetricDefinition) -> Observations:
        """Return the current `(value, attributes)` pairs, one per series.

        Raises:
            EvaluationError: the value cannot be produced now.
        """


@dataclass(frozen=True)
class ConstantSource(Source):
    """Export a fixed number."""

    fields: ClassVar[tuple[str, ...]] = ("value",)
    static: ClassVar[bool] = True

    def validate(self, definition: MetricDefinition) -> None:
        if definition.value is None:
            raise ValidationError(
                {"value": _("A constant source needs a value, for example 10.")}
            )

    def observe(self, definition: MetricDefinition) -> Observations:
        return [(float(definition.value), {})]


@dataclass(frozen=True)
class RowCountSource(Source):
    """Count a model's rows, optionally filtered and grouped by a field."""

    fields: ClassVar[tuple[str, ...]] = ("model", "filters", "group_by")
    uses_database: ClassVar[bool] = True
    blocking: ClassVar[bool] = True
    #: Whether many definitions are observed together by count_rows().
    batchable: ClassVar[bool] = True

    def validate(self, definition: MetricDefinition) -> None:
        if not definition.model:
            raise ValidationError(
                {"model": _("A row count needs a model, for example auth.User.")}
            )
        try:
            model = resolve_model(definition.model)
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
        refusals = row_count_refusals(model, filters, definition.group_by)
        if refusals:
            raise ValidationError(refusals)
        manager = model._default_manager
        for lookup, value in filters.items():
            try:
                str(manager.filter(**{lookup: value}).query)
            except (FieldError, ValueError, TypeError, ValidationError) as exc:
                raise ValidationError(
                    {
                        "filters": _(
                            "The lookup %(lookup)s=%(value)r does not work on "
                            "%(model)s: %(error)s"
                        )
                        % {
                            "lookup": lookup,
                            "value": value,
                            "model": definition.model,
                            "error": _error_text(exc),
                        }
                    }
                ) from None
        if definition.group_by:
            try:
                str(manager.values(definition.group_by).query)
            except (FieldError, ValueError, TypeError) as exc:
                raise ValidationError(
                    {
                        "group_by": _(
                            "%(value)r is not a field path of %(model)s: %(error)s"
                        )
                        % {
                            "value": definition.group_by,
                            "model": definition.model,
                            "error": _error_text(exc),
                        }
                    }
                ) from None
            try:
                validators.validate_label_key(definition.group_by, what="Group-by")
            except ValidationError as exc:
                raise ValidationError({"group_by": exc.messages}) from None
            label = validators.label_name(definition.group_by)
            attributes = definition.attributes
            if isinstance(attributes, Mapping) and any(
                validators.label_name(key) == label for key in attributes
            ):
                raise ValidationError(
                    {
                        "group_by": _(
                            "The group-by label %(label)r is also a constant "
                            "attribute; remove it from the attributes."
                        )
                        % {"label": label}
                    }
                )

    def observe(self, definition: MetricDefinition) -> Observations:
        (observations,) = count_rows([definition])
        if isinstance(observations, EvaluationError):
            raise observations
        return observations

    def count_query(self, definition: MetricDefinition, index: int) -> QuerySet:
        """Return a query of (index, group as text, count) rows for `definition`.

        Every definition's query has the same three columns, so many of them
        run as one statement joined with UNION ALL; the group value is cast to
        text so that groups of different field types fit one column.

        Raises:
            EvaluationError: the model is unknown or a safe-source rule refuses it.
        """
        try:
            model = resolve_model(definition.model)
        except LookupError as exc:
            raise EvaluationError(str(exc)) from None
        filters = definition.filters or {}
        for refusal in row_count_refusals(model, filters, definition.group_by).values():
            raise EvaluationError(refusal)
        if definition.group_by:
            group = Cast(F(definition.group_by), CharField())
        else:
            # A constant is not grouped by, so this counts the whole selection
            # and gives one row, 0 for an empty table.
            group = Value(None, output_field=CharField())
        return (
            model._default_manager.filter(**filters)
            .order_by()
            .annotate(_metricdemo_i=Value(index), _metricdemo_g=group)
            .values("_metricdemo_i", "_metricdemo_g")
            .annotate(_metricdemo_n=Count("*"))
            .values_list("_metricdemo_i", "_metricdemo_g", "_metricdemo_n")
        )


@dataclass(frozen=True)
class SettingSource(Source):
    """Export the numeric or boolean value of a Django setting."""

    fields: ClassVar[tuple[str, ...]] = ("setting",)

    def validate(self, definition: MetricDefinition) -> None:
        if not definition.setting:
            raise ValidationError(
                {
                    "setting": _(
                        "A setting source needs a setting, e.g. SESSION_COOKIE_AGE."
                    )
                }
            )
        try:
            self.observe(definition)
        except EvaluationError as exc:
            raise ValidationError({"setting": str(exc)}) from None

    def observe(self, definition: MetricDefinition) -> Observations:
        refusal = setting_refusal(definition.setting)
        if refusal:
            raise EvaluationError(refusal)
        value = read_setting(definition.setting)
        try:
            return [(validators.as_number(value), {})]
        except TypeError:
            # Name the type, never the value: a string setting may be a secret
            # that the name rules did not catch, and this message is shown.
            raise EvaluationError(
                f"Setting {definition.setting} holds a {type(value).__name__}, not a "
                "number or boolean; choose a setting with a numeric value."
            ) from None
        except ValueError:
            raise EvaluationError(
                f"Setting {definition.setting} is not a finite number."
            ) from None


@dataclass(frozen=True)
class CallbackSource(Source):
    """Call a function registered in code with metricdemo.register_callback()."""

    fields: ClassVar[tuple[str, ...]] = ("callback",)
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
        return normalize_result(registered.func())


SOURCES: dict[str, Source] = {
    "constant": ConstantSource(),
    "row_count": RowCountSource(),
    "setting": SettingSource(),
    "callback": CallbackSource(),
}


def validate_source(definition: MetricDefinition) -> None:
    """Validate `definition` with its source's rules."""
    SOURCES[definition.source].validate(definition)


def observe(definition: MetricDefinition) -> Observations:
    """Return the observations of `definition`, constant attributes included.

    Raises:
        EvaluationError: the source could not produce a value.
    """
    return with_constant_attributes(
        definition, SOURCES[definition.source].observe(definition)
    )


def with_constant_attributes(
    definition: MetricDefinition, observations: Observations
) -> Observations:
    """Add the definition's constant attributes to each observation."""
    constant = definition.attributes or {}
    if not constant:
        return observations
    return [(value, {**constant, **attrs}) for value, attrs in observations]


# SQLite allows at most 500 SELECTs in one compound statement.
COUNTS_PER_STATEMENT = 250


def count_rows(
    definitions: Sequence[MetricDefinition],
) -> list[Observations | EvaluationError]:
    """Count the rows of many row-count definitions in one statement per 250.

    The definitions must use one database. A definition whose model is unknown
    or refused gets its EvaluationError in its place; constant attributes are
    not added.

    Raises:
        DatabaseError: a statement failed; any of its definitions may be the cause.
    """
    source = SOURCES["row_count"]
    found: list[Observations | EvaluationError] = [[] for _ in definitions]
    queries = []
    # Which grouped counts group by a boolean field, worked out once a call.
    boolean: dict[int, bool] = {}
    for index, definition in enumerate(definitions):
        try:
            queries.append(source.count_query(definition, index))
        except EvaluationError as exc:
            found[index] = exc
            continue
        if definition.group_by:
            field = _path_field(resolve_model(definition.model), definition.group_by)
            boolean[index] = isinstance(field, BooleanField)
    for start in range(0, len(queries), COUNTS_PER_STATEMENT):
        chunk = queries[start : start + COUNTS_PER_STATEMENT]
        union = chunk[0].union(*chunk[1:], all=True) if len(chunk) > 1 else chunk[0]
        for index, group, count in union:
            definition = definitions[index]
            if definition.group_by:
                label = _group_label(group, boolean[index])
                found[index].append((float(count), {definition.group_by: label}))
            else:
                found[index].append((float(count), {}))
    return found


def _group_label(text: str | None, boolean: bool) -> str:
    # Booleans cast to text differ by database ("1", "true", "t"); name them
    # the same everywhere. Other values keep the database's text.
    if text is None:
        return ""
    if boolean:
        return "true" if text.lower() in {"1", "true", "t"} else "false"
    return text


def _path_field(model, path: str):
    field = None
    for name in path.split(LOOKUP_SEP):
        try:
            field = model._meta.get_field("pk" if name == "pk" else name)
        except FieldDoesNotExist:
            return None
        model = field.related_model or model
    return field


def resolve_model(label: str):
    """Return the installed model named `app_label.ModelName`.

    Raises:
        LookupError: with a message naming the label and what to use instead.
    """
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        raise LookupError(
            f"No installed model is called {label!r}; use app_label.ModelName of an "
            "installed app, for example auth.User."
        ) from None


def sensitive_match(name: str, patterns: Iterable[str] = SENSITIVE_NAMES) -> str | None:
    """Return the first pattern that `name` matches, case-insensitively, or None."""
    lowered = name.lower()
    for pattern in patterns:
        if fnmatch.fnmatchcase(lowered, pattern.lower()):
            return pattern
    return None


def model_refusal(model) -> str | None:
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


def lookup_refusal(model, path: str) -> str | None:
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


def row_count_refusals(model, filters: Any, group_by: str) -> dict[str, str]:
    """Return {field: why} for the parts of a row count that may not be read."""
    refusal = model_refusal(model)
    if refusal:
        return {"model": refusal}
    refusals = {}
    for lookup in filters if isinstance(filters, Mapping) else ():
        refusal = lookup_refusal(model, str(lookup))
        if refusal:
            refusals["filters"] = refusal
            break
    if group_by:
        refusal = lookup_refusal(model, group_by)
        if refusal:
            refusals["group_by"] = refusal
    return refusals


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


def allowed_models() -> list[str]:
    """Return the labels of the installed models that row counts may read."""
    return sorted(m._meta.label for m in apps.get_models() if not model_refusal(m))


def suggested_settings() -> list[str]:
    """Return the top-level settings a setting source may export, by name."""
    names = []
    for name in dir(settings):
        if not name.isupper() or setting_refusal(name):
            continue
        value = getattr(settings, name, None)
        if isinstance(value, bool | int | float):
            names.append(name)
    return sorted(names)


def read_setting(path: str) -> Any:
    """Return the value at a dotted settings path such as CACHES.default.TIMEOUT.

    Raises:
        EvaluationError: the setting or one of its keys does not exist.
    """
    name, *keys = path.split(".")
    if not name.isupper() or not hasattr(settings, name):
        raise EvaluationError(f"There is no Django setting called {name!r}.")
    value = getattr(settings, name)
    walked = name
    for key in keys:
        if isinstance(value, Mapping) and key in value:
            value = value[key]
        elif (
            isinstance(value, list | tuple) and key.isdigit() and int(key) < len(value)
        ):
            value = value[int(key)]
        else:
            raise EvaluationError(f"Setting {walked} has no key {key!r}.")
        walked = f"{walked}.{key}"
    return value


def normalize_result(result: Any) -> Observations:
    """Turn a callback's result into `(value, attributes)` pairs.

    Raises:
        EvaluationError: the result is neither a number nor pairs of a number and
            a mapping of scalar attributes.
    """
    try:
        return [(validators.as_number(result), {})]
    except TypeError:
        pass
    except ValueError as exc:
        raise EvaluationError(f"Callback returned an unusable value: {exc}.") from None
    if isinstance(result, str | bytes | Mapping) or not isinstance(result, Iterable):
        raise EvaluationError(
            f"Callback returned {result!r}; return a number or an iterable of "
            "(value, attributes) pairs."
        )
    observations: Observations = []
    for item in result:
        try:
            value, attributes = item
            number = validators.as_number(value)
            validators.validate_attributes(attributes)
        except (TypeError, ValueError, ValidationError) as exc:
            detail = (
                "; ".join(exc.messages) if isinstance(exc, ValidationError) else exc
            )
            raise EvaluationError(
                f"Callback returned the item {item!r}, which is not a (number, "
                f"attributes) pair: {detail}."
            ) from None
        observations.append((number, dict(attributes)))
    return observations


def group_value(value: Any) -> str:
    """Return the attribute text for a group-by value (empty for NULL)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _listed(model, entries: Iterable[str]) -> bool:
    meta = model._meta
    names = (meta.label_lower, meta.app_label.lower())
    return any(entry.lower() in names for entry in entries)


def _target_name(field) -> str:
    # The field that a comparison with the relation itself (`customer=3`,
    # `customer__gt=3`) is made against on the related model.
    try:
        return field.target_field.name
    except (AttributeError, FieldError):
        return field.related_model._meta.pk.name


def _unregistered(name: str) -> str:
    known = ", ".join(c.name for c in callbacks.registered_callbacks()) or "none"
    return (
        f"No callback is registered as {name!r}; registered callbacks: {known}. "
        "Register one in code with metricdemo.register_callback()."
    )


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(exc.messages)
    return str(exc)
