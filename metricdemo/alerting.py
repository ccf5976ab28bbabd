"""Check alert rules before they are saved: labels, quantiles, thresholds, templates.

The model's clean() asks here; what a rule becomes (its PromQL expression,
rule files, the preview of whether it fires) lives in `alerts`, above the
models.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext as _

from metricdemo import validators

ABSENT = "absent"
HISTOGRAM = "histogram"
#: Labels Prometheus adds or keeps for itself, never filtered on here.
_RESERVED = {"le", "__name__"}


# What a definition exports.


def exported_labels(definition: Any) -> set[str] | None:
    """Return the label names the definition's series carry, or None if unknown.

    Constant attributes and group-by paths decide them; a callback decides
    its own at run time, so its labels are unknown here.
    """
    if definition.source == "callback":
        return None
    labels = set()
    attributes = definition.attributes
    for key in attributes if isinstance(attributes, Mapping) else ():
        labels.add(validators.label_name(str(key)))
    if definition.source == "row_count" and definition.group_by:
        for key in validators.group_by_keys(definition.group_by).values():
            labels.add(validators.label_name(key))
    return labels


def by_labels(rule: Any) -> list[str]:
    """Return the rule's "by" labels, in the order written."""
    return [part.strip() for part in (rule.by_labels or "").split(",") if part.strip()]


# Validation.


def rule_problems(rule: Any) -> dict[str, str]:
    """Return {field: what is wrong and how to fix it} for `rule`, or {}."""
    problems: dict[str, str] = {}
    # The definition set on the rule, saved or not yet: the admin validates the
    # rules of a definition being added together with them.
    definition = getattr(rule, "definition", None)
    histogram = definition is not None and definition.kind == HISTOGRAM
    if rule.operator != ABSENT and rule.threshold is None:
        problems["threshold"] = _(
            "Give the number the value is compared with, for example 50; or choose "
            "absent to alert when the metric exports nothing."
        )
    filters = rule.label_filter
    if not isinstance(filters, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str | int | float | bool)
        for k, v in (filters.items() if isinstance(filters, Mapping) else ())
    ):
        problems["label_filter"] = _(
            "The label filter must be a JSON object of labels and values, such as "
            '{"country": "DE"}; got %(value)r.'
        ) % {"value": filters}
        filters = {}
    labels = exported_labels(definition) if definition is not None else None
    not_a_label = {
        "label_filter": _(
            "%(key)r is not a label this rule may filter on; use a label of the "
            "series, such as country."
        ),
        "by_labels": _(
            "%(key)r is not a label name; separate label names with commas, such "
            "as country, status."
        ),
    }
    chosen = by_labels(rule)
    if chosen and not rule.aggregation:
        problems["by_labels"] = _(
            "By labels need an aggregation (sum, max, ...); choose one, or clear them."
        )
    for field, keys in (("label_filter", list(filters)), ("by_labels", chosen)):
        for key in keys:
            if not validators.LABEL_NAME_RE.fullmatch(key) or key in _RESERVED:
                problems[field] = not_a_label[field] % {"key": key}
            elif labels is not None and key not in labels:
                problems[field] = _unknown_label(key, labels, definition)
    if histogram and rule.operator != ABSENT:
        if rule.quantile is None or not 0 < rule.quantile < 1:
            problems["quantile"] = _(
                "A rule on a histogram compares a quantile; give one between 0 and "
                "1, for example 0.9 for the 90th percentile."
            )
        if rule.aggregation not in ("", "sum"):
            problems["aggregation"] = _(
                "A histogram's buckets can only be added up; choose sum (with by "
                "labels to keep) or none."
            )
    elif rule.quantile is not None:
        problems["quantile"] = _(
            "A quantile is for rules on histograms; clear it for a %(kind)s."
        ) % {"kind": definition.kind if definition is not None else _("metric")}
    for field in ("summary", "description"):
        problem = template_problem(getattr(rule, field) or "")
        if problem:
            problems[field] = problem
    return problems


def _unknown_label(key: str, labels: set[str], definition: Any) -> str:
    return _(
        "%(definition)s exports no label %(key)r; its labels are %(labels)s. Filter "
        "on one of those, or group the definition by the field first."
    ) % {
        "definition": definition.name,
        "key": key,
        "labels": ", ".join(sorted(labels)) or _("none"),
    }


_ACTION_RE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_OPENERS = ("if", "range", "with", "define", "block")
_KEYWORDS = {*_OPENERS, "else", "end", "template", "break", "continue"}


def template_problem(text: str) -> str | None:
    """Return why Prometheus would refuse the Go template `text`, or None.

    Checks what a parse finds: every action closed, none empty, quotes and
    parentheses closed inside it, and if/range/with/define/block ended.
    """
    depth = 0
    rest = _ACTION_RE.sub("", text)
    if "{{" in rest or "}}" in rest:
        return _(
            "The template has a '{{' without its '}}' (or the reverse); write "
            "actions as {{ $value }} or {{ $labels.status }}."
        )
    for match in _ACTION_RE.finditer(text):
        action = match.group(1).strip().removeprefix("-").removesuffix("-").strip()
        if not action or action.startswith("/*"):
            if not action:
                return _("The template has an empty action {{ }}; remove it.")
            continue
        if not _balanced(action):
            return _(
                "The action {{%(action)s}} leaves a quote or a parenthesis open; "
                "close it."
            ) % {"action": match.group(1)}
        word = action.split()[0]
        if word in _OPENERS:
            depth += 1
        elif word == "end":
            depth -= 1
            if depth < 0:
                return _("The template has an {{ end }} without an if, range or with.")
        elif not (
            word in _KEYWORDS
            or word.startswith(("$", ".", '"', "`", "("))
            or word[0].isdigit()
            or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", word)
        ):
            return _(
                "The action {{%(action)s}} is not a template expression; use "
                "{{ $value }}, {{ $labels.name }} or a function such as "
                "{{ $value | humanize }}."
            ) % {"action": match.group(1)}
    if depth:
        return _("The template leaves an if, range or with without its {{ end }}.")
    return None


def _balanced(action: str) -> bool:
    quote, depth, escaped = "", 0, False
    for char in action:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return False
    return not quote and depth == 0


def series_problems(rule: Any, observations: Any) -> dict[str, str]:
    """Return {field: why} for labels the rule reads that the series lack, or {}.

    For definitions whose labels only their value tells (callbacks); an
    empty value proves nothing.
    """
    if not observations:
        return {}
    seen = set()
    for _value, attributes in observations:
        seen.update(validators.label_name(str(key)) for key in attributes)
    wanted = {
        "label_filter": list(rule.label_filter or {}),
        "by_labels": by_labels(rule),
    }
    for field, keys in wanted.items():
        for key in keys:
            if key not in seen:
                return {field: _unknown_label(key, seen, rule.definition)}
    return {}
