"""Define what evaluating a definition yields: observations, or an EvaluationError."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from metricdemo import validators
from metricdemo.distributions import Distribution

if TYPE_CHECKING:
    from metricdemo.models import MetricDefinition

#: One `(value, attributes)` pair per exported series; a histogram's value is
#: a Distribution.
Observations = list[tuple[float | Distribution, dict[str, Any]]]


class EvaluationError(Exception):
    """A definition could not produce a value; the message says why."""


def describe(exc: BaseException) -> str:
    """Return a one-line description of why an evaluation failed."""
    if isinstance(exc, EvaluationError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


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
        raise EvaluationError(
            _("The callback returned an unusable value: %(error)s.") % {"error": exc}
        ) from None
    if isinstance(result, str | bytes | Mapping) or not isinstance(result, Iterable):
        raise EvaluationError(
            _(
                "The callback returned %(result)r; return a number or an iterable "
                "of (value, attributes) pairs."
            )
            % {"result": result}
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
                _(
                    "The callback returned the item %(item)r, which is not a "
                    "(number, attributes) pair: %(detail)s."
                )
                % {"item": item, "detail": detail}
            ) from None
        observations.append((number, dict(attributes)))
    return observations


def with_constant_attributes(
    definition: MetricDefinition, observations: Observations
) -> Observations:
    """Add the definition's constant attributes to each observation."""
    constant = definition.attributes or {}
    if not constant:
        return observations
    return [(value, {**constant, **attrs}) for value, attrs in observations]


def encoding_problem(observations: Observations) -> str | None:
    """Return why an attribute of the observations cannot be exported, or None.

    prometheus_client encodes the whole exposition as UTF-8, so one lone
    surrogate (from stored attributes, a group value or a callback) would fail
    every scrape; the definition that yields it fails alone instead.
    """
    if _all_plain_text(observations):
        return None
    for _value, attributes in observations:
        if validators.unencodable_text(attributes) is None:
            continue
        for key, item in attributes.items():
            if validators.unencodable_text([key, item]) is not None:
                return _(
                    "The attribute %(key)r has the value %(value)r, which cannot "
                    "be encoded as UTF-8 for /metrics; fix the stored attribute or "
                    "the value it is read from."
                ) % {"key": key, "value": item}
    return None


def _all_plain_text(observations: Observations) -> bool:
    # The common case in one pass: every key and value is a str, and all of
    # them together are ASCII, or at least encodable and free of NUL.
    texts = []
    for _value, attributes in observations:
        texts.extend(attributes)
        texts.extend(attributes.values())
    try:
        joined = "".join(texts)
    except TypeError:
        return False  # not all text: the thorough check looks at each
    return validators.unencodable_text(joined) is None


def shape_problem(kind: str, observations: Observations) -> str | None:
    """Return why the values do not fit the kind, or None.

    A histogram's values are distributions, every other kind's numbers.
    """
    histogram = kind == "histogram"
    for value, _attributes in observations:
        if isinstance(value, Distribution) != histogram:
            return _(
                "A %(kind)s cannot export the value %(value)r; the definition's "
                "kind and its values disagree (was the kind changed?)."
            ) % {"kind": kind, "value": value}
    return None


def counter_problem(kind: str, observations: Observations) -> str | None:
    """Return why a counter cannot export these values (one is below zero), or None.

    A counter only goes up from zero; OpenMetrics refuses a negative one, and
    a parser that refuses one sample refuses the whole exposition.
    """
    if kind != "counter":
        return None
    for value, attributes in observations:
        if value < 0:
            where = (
                _(" for %(attributes)r") % {"attributes": attributes}
                if attributes
                else ""
            )
            return _(
                "A counter cannot be below zero, and its value%(where)s is %(value)g: "
                "make it an up-down counter or a gauge, or count something that "
                "only grows."
            ) % {"where": where, "value": value}
    return None
