"""Turn a definition's source into observations: one small class per source kind."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from django.apps import apps
from django.conf import settings
from django.core.exceptions import FieldError, ValidationError
from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from metricdemo import callbacks, validators

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
        try:
            model = resolve_model(definition.model)
        except LookupError as exc:
            raise EvaluationError(str(exc)) from None
        rows = model._default_manager.filter(**(definition.filters or {}))
        if not definition.group_by:
            return [(float(rows.count()), {})]
        key = definition.group_by
        grouped = rows.order_by().values(key).annotate(_metricdemo_n=Count("*"))
        return [
            (float(row["_metricdemo_n"]), {key: group_value(row[key])})
            for row in grouped
        ]


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
        value = read_setting(definition.setting)
        try:
            return [(validators.as_number(value), {})]
        except (TypeError, ValueError) as exc:
            raise EvaluationError(
                f"Setting {definition.setting} is not numeric or boolean: {exc}."
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
    observations = SOURCES[definition.source].observe(definition)
    constant = definition.attributes or {}
    if not constant:
        return observations
    return [(value, {**constant, **attrs}) for value, attrs in observations]


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
