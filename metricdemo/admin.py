"""Edit metric definitions in the Django admin: guided form, preview, live values."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_permission_codename
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import transaction
from django.forms.formsets import DELETION_FIELD_NAME
from django.http import Http404, HttpRequest, HttpResponseNotAllowed, JsonResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import lazy
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from metricdemo import (
    admin_text,
    aggregates,
    alerting,
    alerts,
    callbacks,
    cost,
    display,
    distributions,
    naming,
    policy,
    presentation,
    prometheus_api,
    routing,
    sources,
    validators,
)
from metricdemo.admin_history import DefinitionHistory, VersionsPerRequest
from metricdemo.admin_overview import OverviewAdmin
from metricdemo.conf import app_settings
from metricdemo.evaluation import evaluate_many, evaluate_posted
from metricdemo.models import (
    ALERT_RULE_FIELDS,
    EDITABLE_FIELDS,
    KIND_SHORT_CHOICES,
    AlertRule,
    Kind,
    MetricDefinition,
    Operator,
    Overview,
)
from metricdemo.presentation import alerts_count_text, hide_refused

logger = logging.getLogger("metricdemo")


class FiniteFloatField(forms.FloatField):
    """A float field whose errors name the value typed, leaving NaN to the model.

    The model's validator refuses NaN and infinities with a message that names
    them; Django's own FloatField would only say "Enter a number.".
    """

    def to_python(self, value):
        try:
            return super().to_python(value)
        except ValidationError:
            raise ValidationError(
                _("%(value)r is not a number; enter a number such as 10 or 2.5."),
                code="invalid",
                params={"value": value},
            ) from None

    def validate(self, value) -> None:
        forms.Field.validate(self, value)


class SuggestingTextInput(forms.TextInput):
    """A text input with a <datalist> of suggestions; any text is still accepted."""

    def __init__(self, suggestions: Callable[[], Iterable[str]], attrs=None) -> None:
        super().__init__(attrs)
        self.suggestions = suggestions

    def render(self, name, value, attrs=None, renderer=None):
        list_id = f"{(attrs or {}).get('id') or 'id_' + name}_suggestions"
        html = super().render(name, value, {**(attrs or {}), "list": list_id}, renderer)
        options = format_html_join(
            "", '<option value="{}">', ((item,) for item in self.suggestions())
        )
        return html + format_html('<datalist id="{}">{}</datalist>', list_id, options)


SOURCE_FIELDS = sources.SOURCE_FIELDS
#: The choice of bucket presets that stands for "the buckets as typed".
CUSTOM_BUCKETS = "custom"


def _source_guidance() -> str:
    fields = "; ".join(str(source.help_text) for source in sources.SOURCES.values())
    return " ".join(
        (
            gettext("Pick a source, then fill in only its fields: %(fields)s.")
            % {"fields": fields},
            gettext(
                "A histogram takes rows of a model: a field, and buckets from a "
                "preset or typed."
            ),
        )
    )


def _bucket_preset_choices() -> list[tuple[str, Any]]:
    return [
        (CUSTOM_BUCKETS, _("Custom: the buckets as typed")),
        *((key, label) for key, (label, _bounds) in distributions.PRESETS.items()),
    ]


def bucket_preset_of(buckets: Any) -> str:
    """Return the key of the preset whose bounds `buckets` are, else CUSTOM_BUCKETS."""
    if isinstance(buckets, list | tuple) and buckets:
        for key, (_label, bounds) in distributions.PRESETS.items():
            if _same_bounds(buckets, bounds):
                return key
    return CUSTOM_BUCKETS


def _same_bounds(buckets: Any, bounds: Iterable[float]) -> bool:
    bounds = list(bounds)
    if not isinstance(buckets, list | tuple) or len(buckets) != len(bounds):
        return False
    return all(
        isinstance(typed, int | float)
        and not isinstance(typed, bool)
        and float(typed) == float(bound)
        for typed, bound in zip(buckets, bounds, strict=True)
    )


def _fieldset_fields(fields: Iterable[str]) -> tuple[Any, ...]:
    # The preset choice sits beside the buckets, on one line.
    return tuple(
        ("bucket_preset", "buckets") if field == "buckets" else field
        for field in fields
    )


#: The Source fieldset's description, built from each source's own help text.
SOURCE_GUIDANCE = lazy(_source_guidance, str)()
JSON_INVALID = _(
    "%(value)s is not valid JSON; write an object such as "
    '{"region": "eu"}, or leave it empty.'
)
BUCKETS_INVALID = _(
    "%(value)s is not valid JSON; write a list of increasing numbers such as "
    "[10, 50, 100, 500, 1000], or pick a preset."
)


class MetricDefinitionForm(forms.ModelForm):
    """Offer the registered callbacks and allowed models; guide the source fields.

    Validation is the model's (field validators and clean()), so the admin, the
    import command and full_clean() refuse the same input with the same message.
    """

    class Meta:
        model = MetricDefinition
        fields = EDITABLE_FIELDS
        field_classes = {"value": FiniteFloatField}
        error_messages = {
            "attributes": {"invalid": JSON_INVALID},
            "filters": {"invalid": JSON_INVALID},
            "buckets": {"invalid": BUCKETS_INVALID},
        }
        help_texts = {
            "kind": _(
                "Counter for totals that only grow (exported with _total), up-down "
                "counter for totals that can shrink, gauge for a current reading, "
                "histogram for how a field of rows spreads over buckets (with the "
                "rows source). Example: gauge for orders waiting now, counter for "
                "orders ever placed, histogram for the time orders took to be paid."
            ),
            "source": _(
                "Where the value comes from; only the chosen source's fields are "
                "used. Example: rows of a model, to count the rows of auth.User."
            ),
            "aggregate": _(
                "What to compute over the rows the filters select: count them "
                "(the default), count the distinct values of a field, or the sum, "
                "average, minimum or maximum of a field. sum and avg need a "
                "numeric field (durations in seconds); min and max also take a "
                "date or datetime field and export it as Unix time in seconds, so "
                "that time() - x in Prometheus is an age. Over no rows, count, "
                "count_distinct and sum export 0; avg, min and max export no "
                "series. Example: sum."
            ),
            "field": _(
                "The field to aggregate; empty for count. It may cross relations "
                "like a filter; the suggestions are the chosen model's fields that "
                "fit the aggregate. For a histogram, the number whose values fill "
                "the buckets, or a duration in seconds between two dates written "
                "later - earlier, with now for an age. Example: total for a sum of "
                "order totals, customer for distinct customers, paid_at - "
                "created_at for a histogram of the time to pay."
            ),
            "filters": _(
                "A JSON object of ORM lookups that rows must match. On a date or "
                "datetime field a value may be a relative time, resolved at every "
                "scrape in the site's TIME_ZONE: now, now-15m, now-1h, now-7d "
                "(units s, m, h, d, w, M, y), and /d, /w, /M or /y to round down "
                "to the start of the day, week (Monday), month or year. Examples: "
                '{"created_at__gte": "now-1h"} for the last hour, '
                '{"created_at__gte": "now/d"} for today, '
                '{"created_at__gte": "now-1d/d", "created_at__lt": "now/d"} for '
                "yesterday."
            ),
            "group_by": _(
                "One or more field paths separated by commas: one series per "
                "distinct combination of values. With one path the label is the "
                "path (customer__country exports customer_country); with several, "
                "each label is the path's last part, or the whole path with __ as "
                "_ where two last parts are the same. Example: status, "
                "customer__country."
            ),
            "buckets": _(
                "For a histogram: a JSON list of increasing upper bounds, in the "
                "field's unit (seconds for durations); +Inf is added. A preset "
                "fills them for you; choose Custom to type your own. Example: "
                "[10, 50, 100, 500, 1000]."
            ),
            "enabled": _(
                "Untick to stop exporting this metric without deleting it. "
                "Example: untick a metric while the feature it measures is off."
            ),
        }

    class Media:
        js = ("metricdemo/definition_form.js",)

    bucket_preset = forms.ChoiceField(
        label=_("Bucket preset"),
        required=False,
        choices=_bucket_preset_choices,
        help_text=_(
            "Buckets chosen for you: saving with a preset stores its bounds in "
            "buckets. Example: Durations, seconds to days for paid_at - "
            "created_at."
        ),
    )

    #: The user whose permissions the model's validation applies; the admin's
    #: get_form() sets it to the requesting user.
    acting_user = None

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.instance.acting_user = self.acting_user
        if "source" not in self.fields:
            return  # a view-only form: every field is read-only
        self.fields["source"].widget.attrs["data-source-fields"] = json.dumps(
            {key: list(source.fields) for key, source in sources.SOURCES.items()}
        )
        # Suggestions name only what the user may use: the models they may
        # view, settings only with read_settings, callbacks with use_callbacks.
        user = self.acting_user
        for name, suggestions in (
            ("model", lambda: policy.suggested_models(user)),
            ("setting", lambda: policy.suggested_settings(user)),
            ("field", self._field_suggestions),
        ):
            attrs = self.fields[name].widget.attrs
            self.fields[name].widget = SuggestingTextInput(suggestions, attrs)
        self._guide_aggregates()
        self._offer_bucket_presets()
        # A select that posts any text: an unknown name reaches the model's
        # validation, whose message lists the registered callbacks.
        self.fields["callback"].widget = forms.Select(choices=self._callback_choices())

    def _guide_aggregates(self) -> None:
        # The aggregate has a default (count); no blank choice. The script
        # offers each model's fields that fit the chosen aggregate.
        aggregate = self.fields["aggregate"]
        aggregate.required = False
        aggregate.choices = list(aggregates.AGGREGATES.items())
        aggregate.widget.attrs["data-default"] = aggregates.COUNT
        self.fields["field"].widget.attrs["data-field-suggestions"] = json.dumps(
            field_suggestions(self.acting_user)
        )

    def _offer_bucket_presets(self) -> None:
        # The script fills the buckets as a preset is chosen; the server fills
        # them too (clean()), so a preset works without the script.
        preset = self.fields["bucket_preset"]
        preset.initial = bucket_preset_of(self.initial.get("buckets"))
        preset.widget.attrs["data-presets"] = json.dumps(
            {
                key: list(bounds)
                for key, (_label, bounds) in distributions.PRESETS.items()
            }
        )
        preset.widget.attrs["data-custom"] = CUSTOM_BUCKETS
        self.fields["buckets"].widget.attrs["rows"] = 3

    def _field_suggestions(self) -> list[str]:
        """Return the stored model's fields that fit the stored aggregate."""
        label = self.initial.get("model") or ""
        if self.initial.get("kind") == Kind.HISTOGRAM:
            aggregate = aggregates.HISTOGRAM
        else:
            aggregate = self.initial.get("aggregate") or aggregates.COUNT
        return field_suggestions(self.acting_user).get(label, {}).get(aggregate, [])

    def clean_aggregate(self) -> str:
        """Read an empty choice (a hidden field the script blanked) as count."""
        return self.cleaned_data.get("aggregate") or aggregates.COUNT

    def clean_buckets(self) -> object:
        """Read an empty box (or one the script blanked) as no buckets."""
        value = self.cleaned_data.get("buckets")
        return [] if value is None else value

    def clean(self) -> dict[str, Any]:
        """Use the chosen preset's bounds as the buckets of a histogram.

        Buckets typed over another preset's are not dropped: the user is asked
        to choose between them. The bounds are checked by the model, whichever
        way they came.
        """
        cleaned = super().clean()
        preset = cleaned.get("bucket_preset") or CUSTOM_BUCKETS
        if (
            preset not in distributions.PRESETS
            or cleaned.get("kind") != Kind.HISTOGRAM
            or "buckets" not in cleaned
        ):
            return cleaned
        label, bounds = distributions.PRESETS[preset]
        typed = cleaned["buckets"]
        if (
            typed not in (None, [])
            and not _same_bounds(typed, bounds)
            and not _same_bounds(typed, self.instance.buckets)  # as stored
        ):
            # On the preset: the buckets typed are still checked by the model.
            self.add_error(
                "bucket_preset",
                ValidationError(
                    _(
                        "The buckets typed are not those of the preset %(preset)s. "
                        "Choose Custom to keep the buckets typed, or empty them to "
                        "use the preset."
                    ),
                    code="preset",
                    params={"preset": label},
                ),
            )
            return cleaned
        cleaned["buckets"] = list(bounds)
        return cleaned

    def _post_clean(self) -> None:
        # Buckets that are not JSON reached the model as its default (none);
        # show only the form's message about the text, not the model's about
        # the default.
        unread = len(self._errors.get("buckets") or ())
        super()._post_clean()
        if unread:
            del self._errors["buckets"][unread:]

    def _callback_choices(self) -> list[tuple[str, str]]:
        user = self.acting_user
        choices = [("", "---------")]
        if user is None or user.has_perm(policy.USE_CALLBACKS):
            choices += [(c.name, c.label) for c in callbacks.registered_callbacks()]
        current = self.initial.get("callback") or ""
        if current and current not in dict(choices):
            # Keep the stored name visible: a registered one the user may not
            # choose, or one no longer registered, which the validation
            # message then explains.
            registered = {c.name: c.label for c in callbacks.registered_callbacks()}
            label = registered.get(current) or _("%(name)s (not registered)") % {
                "name": current
            }
            choices.append((current, label))
        return choices

    def clean_attributes(self) -> object:
        """Read an empty box as no attributes."""
        value = self.cleaned_data.get("attributes")
        return {} if value is None else value

    def clean_filters(self) -> object:
        """Read an empty box as no filters."""
        value = self.cleaned_data.get("filters")
        return {} if value is None else value


def field_suggestions(user: Any = None) -> dict[str, dict[str, list[str]]]:
    """Return {model: {aggregate: fields}} for every model row counts may read.

    Besides the aggregates, `histogram` gives the fields a histogram may read,
    and the ages (`now - created_at`) it may measure.

    With a `user`, only the models they may view, and only the fields that
    lead to no model they may not view.
    """
    suggestions = {}
    for label in policy.suggested_models(user):
        model = routing.resolve_model(label)
        suggestions[label] = {
            aggregate: _fitting_fields(user, model, aggregate)
            for aggregate in aggregates.AGGREGATES
            if aggregate != aggregates.COUNT
        }
        # A histogram also takes an age: the seconds since a date or datetime.
        ages = _fitting_fields(user, model, aggregates.MIN, aggregates.TIME_KINDS)
        suggestions[label][aggregates.HISTOGRAM] = [
            *_fitting_fields(user, model, aggregates.HISTOGRAM),
            *(f"now - {name}" for name in ages),
        ]
    return suggestions


def _fitting_fields(
    user: Any, model: Any, aggregate: str, kinds: tuple[str, ...] | None = None
) -> list[str]:
    return [
        name
        for name in aggregates.fitting_fields(model, aggregate, kinds)
        if not policy.path_permission_refusal(user, model, name)
    ]


class ShortChoicesFilter(admin.ChoicesFieldListFilter):
    """Filter on a choice field as Django does, naming the choices briefly."""

    short_choices: list[tuple[str, str]] = []

    def __init__(self, field, *args, **kwargs) -> None:
        # A copy: the model's field keeps its long labels for the form.
        field = copy.copy(field)
        field.choices = self.short_choices
        super().__init__(field, *args, **kwargs)

    @classmethod
    def using(cls, short_choices: list) -> type[ShortChoicesFilter]:
        """Return the filter class for one field's short choices."""
        return type(cls.__name__, (cls,), {"short_choices": short_choices})


def short_label(choices: list, value: str) -> str:
    """Return the short label of a stored choice, or the value if it has none."""
    return str(dict(choices).get(value, value))


#: The quantiles the preview estimates from a histogram's buckets, by name.
PREVIEW_QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))


@dataclass(frozen=True)
class Bar:
    """One bucket of a histogram's chart: its `le` label, count and bar length."""

    bound: str
    count: int
    #: The bar's length in percent of the longest, as SVG attribute text.
    length: str
    #: The values the bucket holds, in words.
    span: str


@dataclass(frozen=True)
class Estimate:
    """A quantile estimated from the buckets, such as p90."""

    name: str
    text: str
    #: Whether it falls in the +Inf bucket, where the highest bound is all we know.
    above: bool


@dataclass(frozen=True)
class HistogramChart:
    """What the preview draws for one histogram series."""

    bars: tuple[Bar, ...]
    count: int
    sum: str
    estimates: tuple[Estimate, ...]

    @classmethod
    def of(cls, value: distributions.Distribution) -> HistogramChart:
        """Return the chart of `value`: a bar per bucket, +Inf last."""
        counts = value.bucket_counts()
        longest = max(counts, default=0)
        labels = [display.format_number(bound) for bound in value.bounds]
        bars = []
        for index, count in enumerate(counts):
            bound = labels[index] if index < len(labels) else "+Inf"
            if index == 0:
                span = gettext("values up to %(upper)s") % {"upper": bound}
            elif index < len(labels):
                span = gettext("values above %(lower)s, up to %(upper)s") % {
                    "lower": labels[index - 1],
                    "upper": bound,
                }
            else:
                span = gettext("values above %(lower)s") % {"lower": labels[-1]}
            # A bucket that holds values shows at least a sliver.
            length = max(100 * count / longest, 1.0) if count else 0.0
            bars.append(Bar(bound, count, f"{length:.1f}", span))
        highest = value.cumulative[-1] if value.cumulative else 0
        estimates = []
        for name, q in PREVIEW_QUANTILES:
            estimate = value.quantile(q)
            if estimate is not None:
                text = display.format_number(estimate)
                estimates.append(Estimate(name, text, q * value.count > highest))
        return cls(
            tuple(bars), value.count, display.format_number(value.sum), tuple(estimates)
        )

    @property
    def above(self) -> list[str]:
        """Return the names of the estimates that fall above the highest bound."""
        return [estimate.name for estimate in self.estimates if estimate.above]

    @property
    def highest_bound(self) -> str:
        """Return the highest bound but +Inf, as its bar names it."""
        return self.bars[-2].bound if len(self.bars) > 1 else "+Inf"


@dataclass(frozen=True)
class PreviewRow:
    """One series in the preview, with its chart if it is a histogram."""

    series: display.Series
    chart: HistogramChart | None


def preview_rows(series: list[display.Series]) -> list[PreviewRow]:
    """Return the preview's rows: a chart for each histogram series."""
    return [
        PreviewRow(
            item,
            HistogramChart.of(item.value)
            if isinstance(item.value, distributions.Distribution)
            else None,
        )
        for item in series
    ]


# --- Alert rules ----------------------------------------------------------------

LABEL_FILTER_INVALID = _(
    "%(value)s is not valid JSON; write an object of labels and values such as "
    '{"country": "DE"}, or leave it empty.'
)
RULE_NAME_TAKEN = _(
    "The definition has a rule of this alert name already; give this rule another name."
)


class HttpsURLField(forms.URLField):
    """A URL field that reads a URL typed without a scheme as https."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("assume_scheme", "https")
        super().__init__(**kwargs)


class AlertRuleForm(forms.ModelForm):
    """An alert rule, checked by the model's clean() against its definition.

    In the definition's inline the definition is the one posted beside the
    rules (saved or not yet: see AlertRuleFormSet); on the rules' own page it
    is the one chosen, which the user must be allowed to publish.
    """

    class Meta:
        model = AlertRule
        fields = ("definition", *ALERT_RULE_FIELDS)
        field_classes = {
            "threshold": FiniteFloatField,
            "quantile": FiniteFloatField,
            "runbook_url": HttpsURLField,
        }
        error_messages = {
            "label_filter": {"invalid": LABEL_FILTER_INVALID},
            NON_FIELD_ERRORS: {"unique_together": RULE_NAME_TAKEN},
        }
        widgets = {
            "label_filter": forms.Textarea(attrs={"rows": 1, "cols": 40}),
            "summary": forms.TextInput(attrs={"size": 60}),
            "description": forms.Textarea(attrs={"rows": 2, "cols": 60}),
        }

    #: The requesting user; AlertRuleAdmin.get_form() sets it.
    acting_user = None

    def clean_label_filter(self) -> object:
        """Read an empty box as no filter."""
        value = self.cleaned_data.get("label_filter")
        return {} if value is None else value

    def clean(self) -> dict[str, Any]:
        """Refuse a definition whose data the user may not publish rules on."""
        cleaned = super().clean()
        definition = cleaned.get("definition")
        if definition is not None and self.acting_user is not None:
            refusals = definition.permission_refusals(self.acting_user)
            if refusals:
                self.add_error(
                    "definition",
                    ValidationError(
                        _(
                            "You may not add rules to %(name)s: %(reason)s Choose a "
                            "definition you may change."
                        ),
                        code="permission",
                        params={
                            "name": definition.name,
                            "reason": " ".join(refusals.values()),
                        },
                    ),
                )
        return cleaned


class AlertRuleFormSet(forms.BaseInlineFormSet):
    """The rules of the definition on the page, validated against it as posted."""

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        # The definition as this request posts it, even before it is saved, so
        # that clean() checks labels and kind against what will be stored.
        form.instance.definition = self.instance
        return form

    def get_unique_error_message(self, unique_check) -> str:
        return gettext(
            "Two rules here have the same alert name; each rule of a definition "
            "needs its own. Rename one of them."
        )


def rule_promql(rule: AlertRule) -> str | None:
    """Return the rule's PromQL expression, or None while it cannot be written."""
    if getattr(rule, "definition", None) is None:
        return None
    try:
        return alerts.expression(rule)
    except (TypeError, ValueError, KeyError):
        return None  # a rule still being corrected: its errors say why


def condition_text(rule: AlertRule) -> str:
    """Return the rule's condition briefly, such as 'sum by (status) > 50'."""
    filters = rule.label_filter if isinstance(rule.label_filter, dict) else {}
    selector = alerts.selector("", filters)
    if rule.operator == Operator.ABSENT:
        return " ".join(filter(None, ("absent", selector)))
    parts = []
    if rule.quantile is not None:
        parts.append(f"p{display.format_number(rule.quantile * 100)}")
    if rule.aggregation:
        keep = alerting.by_labels(rule)
        parts.append(
            f"{rule.aggregation} by ({', '.join(keep)})" if keep else rule.aggregation
        )
    parts.append(selector)
    threshold = "" if rule.threshold is None else display.format_number(rule.threshold)
    parts.append(f"{rule.operator} {threshold}".strip())
    return " ".join(filter(None, parts))


def _not_written(rule: AlertRule) -> str:
    definition = getattr(rule, "definition", None)
    if not rule.enabled:
        return gettext("not written: the rule is disabled")
    if definition is not None and not definition.enabled:
        return gettext("not written: the definition is disabled")
    return ""


def _series_text(labels: Iterable[tuple[str, str]], value: float | None) -> str:
    inner = ", ".join(f"{key}={alerts.promql_string(text)}" for key, text in labels)
    if value is None:
        return f"{{{inner}}}"
    return f"{{{inner}}} = {display.format_number(value)}"


def alert_states_html(found: list[prometheus_api.Alert]) -> str:
    """Return active alerts as lines: 'firing for {status="pending"} = 3'."""
    return format_html_join(
        mark_safe("<br>\n"),  # noqa: S308 - markup of ours
        '<span class="metricdemo-alert-{}">{}</span>',
        (
            (
                alert.state,
                gettext("%(state)s for %(series)s")
                % {
                    "state": alert.state,
                    "series": _series_text(alert.series_labels, alert.value),
                },
            )
            for alert in found
        ),
    )


class DefinitionPermissions:
    """Rules are edited by those who may change definitions, with rule permissions.

    Adding, changing and deleting a rule need the AlertRule permission and
    the change permission on MetricDefinition; viewing needs a view (or
    change) permission on both. A user who may view but not change sees the
    rules read-only.
    """

    @staticmethod
    def _has_definition_perm(request: HttpRequest, *actions: str) -> bool:
        opts = MetricDefinition._meta
        return any(
            request.user.has_perm(
                f"{opts.app_label}.{get_permission_codename(action, opts)}"
            )
            for action in actions
        )

    def may_change_definitions(self, request: HttpRequest) -> bool:
        """Return whether the user may change definitions, and so their rules."""
        return self._has_definition_perm(request, "change")

    def has_add_permission(self, request: HttpRequest, *args) -> bool:
        return super().has_add_permission(
            request, *args
        ) and self.may_change_definitions(request)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return super().has_change_permission(
            request, obj
        ) and self.may_change_definitions(request)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return super().has_delete_permission(
            request, obj
        ) and self.may_change_definitions(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return super().has_view_permission(request, obj) and self._has_definition_perm(
            request, "view", "change"
        )


#: The fields every rule shows first; the rest are folded away.
RULE_MAIN_FIELDS = (
    ("name", "severity", "enabled"),
    ("operator", "threshold", "for_duration"),
    "label_filter",
    "promql",
)
RULE_FIELDSETS = (
    (None, {"fields": RULE_MAIN_FIELDS}),
    (
        _("Aggregation and quantile"),
        {
            "fields": ("aggregation", "by_labels", "quantile", "keep_firing_for"),
            "classes": ("collapse",),
            "description": _(
                "Combine the series before comparing, or compare a histogram's "
                "quantile; keep the alert firing a while after it clears."
            ),
        },
    ),
    (
        _("Notification"),
        {
            "fields": ("summary", "description", "runbook_url"),
            "classes": ("collapse",),
        },
    ),
)


class RuleDisplays:
    """The read-only fields a rule shows, inline and on its own page."""

    @admin.display(description=_("PromQL"))
    def promql(self, rule: AlertRule) -> str:
        """Return the expression the rule file gets, once the rule is saved."""
        if rule.pk is None:
            return gettext("shown once saved; Preview shows it before")
        expression = rule_promql(rule)
        if expression is None:
            return "-"
        note = _not_written(rule)
        if note:
            return format_html(
                '<code class="metricdemo-promql">{}</code> <span class="help">({})'
                "</span>",
                expression,
                note,
            )
        return format_html('<code class="metricdemo-promql">{}</code>', expression)

    @admin.display(description=_("condition"))
    def condition(self, rule: AlertRule) -> str:
        """Return the rule's condition briefly."""
        return condition_text(rule)


class AlertRuleInline(DefinitionPermissions, RuleDisplays, admin.StackedInline):
    """A definition's alert rules, on its page."""

    model = AlertRule
    form = AlertRuleForm
    formset = AlertRuleFormSet
    extra = 0
    show_change_link = True
    readonly_fields = ("promql", "prometheus_state")
    fieldsets = RULE_FIELDSETS

    def get_fieldsets(self, request: HttpRequest, obj=None):
        """Add the alerts' state in Prometheus when PROMETHEUS_URL is set."""
        fieldsets = list(super().get_fieldsets(request, obj))
        if obj is not None and prometheus_api.base_url():
            name, options = fieldsets[0]
            fields = (*options["fields"], "prometheus_state")
            fieldsets[0] = (name, {**options, "fields": fields})
        return fieldsets

    @admin.display(description=_("in Prometheus now"))
    def prometheus_state(self, rule: AlertRule) -> str:
        """Return whether Prometheus has the rule's alerts pending or firing."""
        definition = getattr(rule, "definition", None)
        state = getattr(definition, "_metricdemo_alerts", None)
        if rule.pk is None or state is None:
            return "-"
        if state.hidden:
            return state.hidden
        if not state.answer.ok:
            return gettext("Prometheus did not answer")
        found = state.answer.of_rule(state.name, rule.name)
        if not found:
            return gettext("neither pending nor firing")
        return format_html(
            '{} <a href="{}">{}</a>',
            alert_states_html(found),
            state.answer.page_url,
            gettext("see in Prometheus"),
        )


@dataclass(frozen=True)
class AlertsNow:
    """What Prometheus says of one definition's alerts, for its pages."""

    answer: prometheus_api.Answer
    #: The definition's name in the rule file (its stored name).
    name: str
    #: Why the user may not see them, if they may not.
    hidden: str = ""

    @property
    def alerts(self) -> list[prometheus_api.Alert]:
        """Return the definition's active alerts, firing first."""
        return [] if self.hidden else self.answer.of_definition(self.name)

    @property
    def rows(self) -> list[tuple[prometheus_api.Alert, str, str]]:
        """Return each alert with its series and its value, as text."""
        return [
            (
                alert,
                _series_text(alert.series_labels, None),
                "" if alert.value is None else display.format_number(alert.value),
            )
            for alert in self.alerts
        ]


@dataclass(frozen=True)
class RulePreview:
    """What Preview says of one rule: its PromQL, and where it would fire now."""

    name: str
    promql: str
    #: The series it would fire for now, as text: '{status="pending"} = 3'.
    firing: tuple[str, ...] = ()
    #: Why it was not judged: its errors, or the definition's failure.
    problem: str = ""
    note: str = ""
    #: An absent rule that would fire: the definition exports no such series.
    absent: bool = False


def preview_rule(rule: AlertRule, evaluation: Any) -> RulePreview:
    """Return Preview's verdict on `rule` against the definition's evaluation."""
    name = rule.name or gettext("(unnamed rule)")
    promql = rule_promql(rule) or "-"
    note = _not_written(rule)
    if evaluation is None or not evaluation.ok:
        return RulePreview(name, promql, problem=gettext("the definition has no value"))
    try:
        found = alerts.firing_now(rule, evaluation.observations)
    except (TypeError, ValueError, KeyError) as exc:
        return RulePreview(name, promql, problem=str(exc))
    if found and rule.for_duration and not note:
        note = gettext("Prometheus fires once the condition has held for %(for)s.") % {
            "for": alerts.duration(rule.for_duration)
        }
    if rule.operator == Operator.ABSENT and found:
        return RulePreview(name, promql, note=note, absent=True)
    firing = tuple(
        _series_text(sorted(labels.items()), value) for labels, value in found
    )
    return RulePreview(name, promql, firing, note=note)


def _form_problem(form: forms.BaseForm) -> str:
    labels = {name: str(field.label) for name, field in form.fields.items()}
    return "; ".join(
        f"{labels.get(name, name)}: {' '.join(errors)}"
        if name != NON_FIELD_ERRORS
        else " ".join(errors)
        for name, errors in form.errors.items()
    )


#: The History fieldset's fields, which only a saved definition has.
HISTORY_FIELDS = ("created_at", "updated_at", "last_editor")


@admin.register(MetricDefinition)
class MetricDefinitionAdmin(DefinitionHistory, admin.ModelAdmin):
    """List, filter, search, preview and edit definitions."""

    form = MetricDefinitionForm
    inlines = (AlertRuleInline,)
    # Short labels, names that wrap after . and _, and no navigation sidebar
    # (admin.css, changelist_view) fit the list in a laptop's window; the form
    # keeps the long labels that explain each choice.
    list_display = (
        admin_text.name,
        "exported_name",
        "kind_label",
        "source_label",
        admin_text.unit,
        "current_value",
        "enabled",
        "updated_at",
    )
    list_filter = (
        "enabled",
        ("kind", ShortChoicesFilter.using(KIND_SHORT_CHOICES)),
        ("source", ShortChoicesFilter.using(sources.SHORT_CHOICES)),
    )
    search_fields = ("name", "description", "model", "setting", "callback")
    readonly_fields = ("exported_name", "created_at", "updated_at", "last_editor")
    actions = ("enable_definitions", "disable_definitions", "duplicate_definitions")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "name",
                    "exported_name",
                    "description",
                    "unit",
                    "kind",
                    "enabled",
                )
            },
        ),
        (_("Attributes"), {"fields": ("attributes",)}),
        (
            _("Source"),
            {
                "fields": _fieldset_fields(("source", *SOURCE_FIELDS)),
                "description": SOURCE_GUIDANCE,
            },
        ),
        (
            _("Scraping"),
            {
                "fields": (
                    "timeout",
                    "cache_seconds",
                    "refresh_interval",
                    "max_series",
                ),
                "description": _(
                    "How long one evaluation may take, how long its value may be "
                    "served from the cache, whether it is refreshed in the "
                    "background on a schedule instead of in every scrape, and how "
                    "many series it may export."
                ),
            },
        ),
        (_("History"), {"fields": HISTORY_FIELDS, "classes": ("collapse",)}),
    )

    class Media:
        css = {"all": ("metricdemo/admin.css",)}

    @admin.display(description=_("exported as"))
    def exported_name(self, obj: MetricDefinition) -> str:
        """Return the sample name Prometheus sees, once the definition is saved."""
        return admin_text.name_html(obj.exported_name) if obj.pk else "-"

    @admin.display(description=_("bucket preset"))
    def bucket_preset(self, obj: MetricDefinition) -> str:
        """Return the preset the buckets are, for a form shown read-only."""
        return str(dict(_bucket_preset_choices())[bucket_preset_of(obj.buckets)])

    @admin.display(description=_("kind"), ordering="kind")
    def kind_label(self, obj: MetricDefinition) -> str:
        """Return the kind's short label."""
        return short_label(KIND_SHORT_CHOICES, obj.kind)

    @admin.display(description=_("source"), ordering="source")
    def source_label(self, obj: MetricDefinition) -> str:
        """Return the source's short label."""
        return short_label(sources.SHORT_CHOICES, obj.source)

    @admin.display(description=_("current value"))
    def current_value(self, obj: MetricDefinition) -> str:
        """Return what the definition exports now, as evaluated for this page.

        With PROMETHEUS_URL, a marker follows: how many of its alerts
        Prometheus has firing or pending, such as "1 firing".
        """
        value = self._value_text(obj)
        marker = self._alerts_marker(obj)
        return format_html("{}<br>{}", value, marker) if marker else value

    def _value_text(self, obj: MetricDefinition) -> str:
        hidden = getattr(obj, "_metricdemo_hidden", None)
        if hidden:
            return hidden
        result = getattr(obj, "_metricdemo_evaluation", None)
        if result is None:
            return "-"
        history = getattr(obj, "_metricdemo_history", None)
        return presentation.value_html(
            presentation.shown(obj, result),
            history.of(obj) if history else (),
            outcome=str(result.outcome),
        )

    def _alerts_marker(self, obj: MetricDefinition) -> str:
        state = getattr(obj, "_metricdemo_alerts", None)
        text = alerts_count_text(state.alerts) if state and state.answer.ok else ""
        if not text:
            return ""  # none, hidden, or Prometheus did not answer (said above)
        firing = any(alert.state == "firing" for alert in state.alerts)
        return format_html(
            '<a class="metricdemo-alerts{}" href="{}">{}</a>',
            " metricdemo-firing" if firing else "",
            state.answer.page_url,
            text,
        )

    # --- Views -----------------------------------------------------------------

    @property
    def preview_url_name(self) -> str:
        """Return the URL name of the preview view (without the admin: namespace)."""
        return f"{self.opts.app_label}_{self.opts.model_name}_preview"

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):
        """Return the form class, validating with the requesting user's permissions."""
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"acting_user": request.user})

    def save_model(self, request: HttpRequest, obj, form, change) -> None:
        """Record the requesting user as the definition's last editor."""
        obj.last_editor = request.user
        super().save_model(request, obj, form, change)

    @property
    def exported_name_url_name(self) -> str:
        """Return the URL name of the exported-name view (without admin:)."""
        return f"{self.opts.app_label}_{self.opts.model_name}_exported_name"

    def get_urls(self):
        """Add the preview and exported-name views, for the add and change forms."""
        preview = self.admin_site.admin_view(self.preview_view)
        name = self.preview_url_name
        return [
            path(
                "exported-name/",
                self.admin_site.admin_view(self.exported_name_view),
                name=self.exported_name_url_name,
            ),
            path("preview/", preview, name=name),
            path("<path:object_id>/preview/", preview, name=name),
            *super().get_urls(),
        ]

    def get_fieldsets(self, request: HttpRequest, obj=None):
        """Leave out History on the add form, where it would be empty."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            fieldsets = [fs for fs in fieldsets if fs[1]["fields"] != HISTORY_FIELDS]
        return fieldsets

    def _shows_alerts(self, request: HttpRequest, obj=None) -> bool:
        # Alerts are the rules': those who may view rules may see them.
        return bool(prometheus_api.base_url()) and AlertRuleInline(
            self.model, self.admin_site
        ).has_view_or_change_permission(request, obj)

    def changelist_view(self, request: HttpRequest, extra_context=None):
        """Show the page, with each listed definition evaluated once for the values.

        With PROMETHEUS_URL, Prometheus is asked once for the alerts of all.
        Django's navigation sidebar is left out: the table needs its width.
        """
        extra_context = {"is_nav_sidebar_enabled": False, **(extra_context or {})}
        response = super().changelist_view(request, extra_context)
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if changelist is not None:
            definitions = list(changelist.result_list)
            self._evaluate_for_list(definitions, request.user)
            self._history_for_list(definitions)
            if definitions and self._shows_alerts(request):
                self._alerts_for_list(request, definitions)
        return response

    def _alerts_for_list(
        self, request: HttpRequest, definitions: list[MetricDefinition]
    ) -> None:
        answer = prometheus_api.current_alerts()
        if answer is None:
            return
        if not answer.ok:
            self.message_user(
                request,
                _("Prometheus did not answer (%(reason)s); the alerts are not shown.")
                % {"reason": answer.error},
                messages.WARNING,
            )
        for definition in definitions:
            definition._metricdemo_alerts = AlertsNow(
                answer,
                definition.name,
                getattr(definition, "_metricdemo_hidden", None) or "",
            )

    def _history_for_list(self, definitions: list[MetricDefinition]) -> None:
        shown = [d for d in definitions if not getattr(d, "_metricdemo_hidden", None)]
        try:
            history = presentation.recent_history(shown)
        except Exception:
            # The sparklines are a convenience too.
            logger.exception("Could not read the definitions' recent values.")
            return
        for definition in shown:
            definition._metricdemo_history = history

    def _evaluate_for_list(self, definitions: list[MetricDefinition], user) -> None:
        definitions = hide_refused(definitions, user)
        try:
            results = evaluate_many(
                definitions, timeout=app_settings.ADMIN_EVALUATION_TIMEOUT
            )
        except Exception:
            # The values are a convenience: the list must show without them.
            logger.exception("Could not evaluate definitions for the admin list.")
            return
        for definition, result in zip(definitions, results, strict=True):
            definition._metricdemo_evaluation = result

    def render_change_form(self, request, context, add=False, change=False, **kwargs):
        """Offer Preview to those who may add (add form) or change (change form)."""
        obj = kwargs.get("obj")
        if add:
            may_preview = self.has_add_permission(request)
        else:
            may_preview = self.has_change_permission(request, obj)
        if may_preview:
            args = [] if add else [obj.pk]
            context["preview_url"] = reverse(
                f"{self.admin_site.name}:{self.preview_url_name}", args=args
            )
        context["exported_name_url"] = reverse(
            f"{self.admin_site.name}:{self.exported_name_url_name}"
        )
        if obj is not None and not add and self._shows_alerts(request, obj):
            context["alerts_now"] = self._alerts_of(request, obj)
        return super().render_change_form(request, context, add, change, **kwargs)

    def _alerts_of(self, request: HttpRequest, obj: MetricDefinition) -> AlertsNow:
        # The name in the rule file is the stored one, even on a page shown
        # again with a changed name and errors.
        stored = self.model.objects.filter(pk=obj.pk).values_list("name", flat=True)
        refusals = obj.permission_refusals(request.user)
        hidden = ""
        if refusals:
            hidden = gettext("hidden: %(reason)s") % {
                "reason": " ".join(refusals.values())
            }
        state = AlertsNow(
            prometheus_api.current_alerts(), stored.first() or obj.name, hidden
        )
        # The inline's rules read it from their definition, this same object.
        obj._metricdemo_alerts = state
        return state

    def exported_name_view(self, request: HttpRequest) -> JsonResponse:
        """Return, as JSON, the name Prometheus would see for ?name=&kind=&unit=.

        The add and change forms show it as it is typed; the rules are
        naming.exported_names(), the same that refuse colliding names.
        """
        if not self.has_add_permission(request):
            if not self.has_change_permission(request):
                raise PermissionDenied
        name, kind, unit = (request.GET.get(k, "") for k in ("name", "kind", "unit"))
        errors = []
        for value, validate in (
            (name, validators.validate_metric_name),
            (unit, validators.validate_unit),
        ):
            try:
                validate(value)
            except ValidationError as exc:
                errors.extend(exc.messages)
        if kind not in Kind.values:
            errors.append(
                gettext("Unknown kind %(kind)r; choose one of %(kinds)s.")
                % {"kind": kind, "kinds": ", ".join(Kind.values)}
            )
        exported = "" if errors else naming.exported_names(name, kind, unit)[1]
        return JsonResponse({"exported_name": exported, "errors": errors})

    def preview_view(self, request: HttpRequest, object_id: str | None = None):
        """Evaluate the definition as posted from the change form, without saving."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        obj = None
        if object_id is not None:
            obj = self.get_object(request, unquote(object_id))
            if obj is None:
                raise Http404
            if not self.has_change_permission(request, obj):
                raise PermissionDenied
        elif not self.has_add_permission(request):
            raise PermissionDenied
        form = self.get_form(request, obj, change=obj is not None)(
            request.POST, instance=obj
        )
        result = series = estimated = None
        rules = []
        if form.is_valid():
            # is_valid() filled form.instance in memory; nothing is saved.
            definition = form.instance
            result = evaluate_posted(
                definition, timeout=app_settings.ADMIN_EVALUATION_TIMEOUT
            )
            series = display.series(definition, result) if result.ok else []
            rules = [
                RulePreview(rule.name or gettext("(unnamed rule)"), "-", problem=why)
                if why
                else preview_rule(rule, result)
                for rule, why in self._posted_rules(request, obj, definition)
            ]
            estimated = cost.estimate(
                definition, timeout=app_settings.ADMIN_EVALUATION_TIMEOUT
            )
        fragment = request.headers.get("X-Requested-With") == "XMLHttpRequest"
        template = "preview_result.html" if fragment else "preview.html"
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Preview"),
            "form": form,
            "evaluation": result,
            "series": series,
            "rows": preview_rows(series or []),
            "rules": rules,
            "milliseconds": result.seconds * 1000 if result else None,
            "estimate": estimated,
            "schedule_hint": cost.schedule_hint(form.instance, result, estimated),
        }
        return TemplateResponse(
            request,
            f"admin/{self.opts.app_label}/{self.opts.model_name}/{template}",
            context,
        )

    def _posted_rules(
        self, request: HttpRequest, obj, definition: MetricDefinition
    ) -> list[tuple[AlertRule, str]]:
        """Return the rules to preview with their problems: as posted, else saved.

        The rules of the form when the user may edit them and the form posted
        them (each with its errors, if any); otherwise the saved ones.
        """
        inline = next(
            (
                inline
                for inline in self.get_inline_instances(request, obj)
                if isinstance(inline, AlertRuleInline)
            ),
            None,
        )
        if inline is None or not inline.has_view_or_change_permission(request, obj):
            return []
        formset_class = inline.get_formset(request, obj)
        prefix = formset_class.get_default_prefix()
        may_edit = inline.has_change_permission(
            request, obj
        ) or inline.has_add_permission(request, obj)
        if may_edit and f"{prefix}-TOTAL_FORMS" in request.POST:
            formset = formset_class(request.POST, instance=definition, prefix=prefix)
            formset.is_valid()  # every form's errors, and names used twice
            found = []
            for form in formset.forms:
                if form.instance._state.adding and not form.has_changed():
                    continue  # an extra form left empty
                if getattr(form, "cleaned_data", {}).get(DELETION_FIELD_NAME):
                    continue
                found.append((form.instance, _form_problem(form)))
            return found
        if obj is None:
            return []
        saved = list(AlertRule.objects.filter(definition=obj.pk))
        for rule in saved:
            rule.definition = definition
        return [(rule, "") for rule in saved]

    # --- Actions ---------------------------------------------------------------

    @admin.action(description=_("Enable selected definitions"), permissions=["change"])
    def enable_definitions(self, request: HttpRequest, queryset) -> None:
        """Enable the selected definitions from the next scrape of every process."""
        self._set_enabled(request, queryset, True)

    @admin.action(description=_("Disable selected definitions"), permissions=["change"])
    def disable_definitions(self, request: HttpRequest, queryset) -> None:
        """Disable the selected definitions from the next scrape of every process."""
        self._set_enabled(request, queryset, False)

    def _set_enabled(self, request: HttpRequest, queryset, enabled: bool) -> None:
        with transaction.atomic():
            changing = list(queryset.exclude(enabled=enabled))
            if enabled:
                changing = self._refuse_to_publish(request, changing)
            # update() bumps the change stamp, so every process reloads.
            rows = self.model.objects.filter(pk__in=[d.pk for d in changing])
            count = rows.update(
                enabled=enabled, updated_at=timezone.now(), last_editor=request.user
            )
            for definition in changing:
                change = [{"changed": {"fields": ["enabled"]}}]
                self.log_change(request, definition, change)
        if enabled:
            message = ngettext(
                "%(count)d definition was enabled; it exports from the next scrape.",
                "%(count)d definitions were enabled; they export from the next scrape.",
                count,
            )
        else:
            message = ngettext(
                "%(count)d definition was disabled; it is gone from the next scrape.",
                "%(count)d definitions were disabled; they are gone from the next "
                "scrape.",
                count,
            )
        self.message_user(request, message % {"count": count}, messages.SUCCESS)

    def _refuse_to_publish(
        self, request: HttpRequest, definitions: list[MetricDefinition]
    ) -> list[MetricDefinition]:
        # Enabling publishes: only what the user could have saved themselves.
        allowed = []
        for definition in definitions:
            refusals = definition.permission_refusals(request.user)
            if not refusals:
                allowed.append(definition)
                continue
            self.message_user(
                request,
                _("%(name)s was not enabled: %(reason)s")
                % {"name": definition.name, "reason": " ".join(refusals.values())},
                messages.WARNING,
            )
        return allowed

    @admin.action(
        description=_("Duplicate selected definitions (copies start disabled)"),
        permissions=["add"],
    )
    def duplicate_definitions(self, request: HttpRequest, queryset) -> None:
        """Save a disabled copy of each selected definition under a free name."""
        created = []
        for original in queryset.order_by("name"):
            try:
                with transaction.atomic():
                    copy = original.duplicate(acting_user=request.user)
            except ValidationError as exc:
                self.message_user(
                    request,
                    _("%(name)s was not duplicated: %(reason)s")
                    % {"name": original.name, "reason": " ".join(exc.messages)},
                    messages.WARNING,
                )
                continue
            self.log_addition(request, copy, [{"added": {}}])
            created.append(copy.name)
        if created:
            message = ngettext(
                "%(count)d copy was made, disabled: %(names)s. Edit and enable it to "
                "export it.",
                "%(count)d copies were made, disabled: %(names)s. Edit and enable "
                "them to export them.",
                len(created),
            )
            self.message_user(
                request,
                message % {"count": len(created), "names": ", ".join(created)},
                messages.SUCCESS,
            )


@admin.register(AlertRule)
class AlertRuleAdmin(
    VersionsPerRequest, DefinitionPermissions, RuleDisplays, admin.ModelAdmin
):
    """Every alert rule in one list; each is also edited on its definition's page."""

    form = AlertRuleForm
    list_display = ("name", "definition", "condition", "severity", "enabled", "promql")
    list_filter = ("severity", "enabled", "operator")
    search_fields = ("name", "definition__name", "summary", "description")
    list_select_related = ("definition",)
    readonly_fields = ("promql", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("definition", *RULE_MAIN_FIELDS)}),
        *RULE_FIELDSETS[1:],
        (
            _("History"),
            {"fields": ("created_at", "updated_at"), "classes": ("collapse",)},
        ),
    )

    class Media:
        css = {"all": ("metricdemo/admin.css",)}

    def get_fieldsets(self, request: HttpRequest, obj=None):
        """Leave out History on the add form, where it would be empty."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            fieldsets = [fs for fs in fieldsets if "created_at" not in fs[1]["fields"]]
        return fieldsets

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):
        """Return the form class, refusing definitions the user may not publish."""
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"acting_user": request.user})


# The overview page, at <admin>/metricdemo/overview/ and listed in the app's index.
admin.site.register(Overview, OverviewAdmin)
