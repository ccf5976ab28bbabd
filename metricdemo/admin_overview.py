"""The admin's overview page: a card per definition, its value, state and trend.

The page lives at `<admin>/metricdemo/overview/`, the URL of the proxy
model `Overview`, so that any admin site that registers `OverviewAdmin`
serves it and lists it in the app's index. It shows what
metricdemo.presentation makes of each definition, a page of them at a
time: evaluated as the change list evaluates them, scheduled ones served
from their table as a scrape serves them, disabled ones not at all.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from metricdemo import (
    admin_text,
    formatting,
    presentation,
    prometheus_api,
    sources,
    validators,
)
from metricdemo.conf import app_settings
from metricdemo.evaluation import Evaluation, Outcome, evaluate_many, serve_scheduled
from metricdemo.models import KIND_SHORT_CHOICES, AlertRule, MetricDefinition
from metricdemo.presentation import State

logger = logging.getLogger("metricdemo")

#: Cards per page: what one page evaluates when no state or cost is asked for.
PER_PAGE = 100
#: The query parameter of the page number, as in the admin's change lists.
PAGE_VAR = "p"

NAME, COST, CHANGED = "name", "cost", "changed"
SORTS = (
    (NAME, _("name")),
    (COST, _("cost, highest first")),
    (CHANGED, _("last change, newest first")),
)
#: Outcomes that say nothing of what computing the value costs.
_NO_COST = (Outcome.PENDING, Outcome.STALE)


def _any(choices) -> list[tuple[str, Any]]:
    return [("", _("any")), *choices]


class OverviewFilters(forms.Form):
    """The page's filters and sort order, from the query string."""

    state = forms.ChoiceField(
        label=_("State"),
        required=False,
        choices=_any((state, State.LABELS[state]) for state in State.ALL),
    )
    kind = forms.ChoiceField(
        label=_("Kind"), required=False, choices=_any(KIND_SHORT_CHOICES)
    )
    source = forms.ChoiceField(
        label=_("Source"),
        required=False,
        choices=lambda: _any(sources.SHORT_CHOICES),
    )
    sort = forms.ChoiceField(label=_("Sort by"), required=False, choices=SORTS)

    def chosen(self) -> dict[str, str]:
        """Return each filter's value, empty where none (or none valid) was given."""
        self.is_valid()
        cleaned = getattr(self, "cleaned_data", {})
        chosen = {name: cleaned.get(name) or "" for name in self.fields}
        chosen["sort"] = chosen["sort"] or NAME
        return chosen


@dataclass(frozen=True)
class Looked:
    """What the page found of one definition: what it shows and what it cost."""

    shown: presentation.Shown
    #: Seconds computing the value took, now or at its last refresh; None if unknown.
    cost: float | None = None
    #: Unix time the value was computed; None when there is none.
    computed_at: float | None = None
    #: Whether it was computed for this page, rather than served from before.
    now: bool = False


def look_at(definitions: list[MetricDefinition], user: Any) -> dict[int, Looked]:
    """Return what each definition shows `user` now, by id.

    Disabled definitions are not evaluated, nor those whose data the user
    may not read (presentation.hide_refused() marks them hidden); scheduled
    ones are served from the scheduled table, as a scrape serves them; the
    others are evaluated now, each within ADMIN_EVALUATION_TIMEOUT, as on
    the change list.
    """
    enabled = [definition for definition in definitions if definition.enabled]
    visible = presentation.hide_refused(enabled, user)
    evaluations, served = _evaluations(visible)
    now = time.time()
    looked = {}
    for definition in definitions:
        hidden = getattr(definition, "_metricdemo_hidden", "")
        evaluation = evaluations.get(definition.pk)
        shown = presentation.shown(definition, evaluation, hidden=hidden)
        looked[definition.pk] = _looked(
            shown, evaluation, None if definition.pk in served else now
        )
    return looked


def _looked(
    shown: presentation.Shown, evaluation: Evaluation | None, now: float | None
) -> Looked:
    """Return what was found; `now` is None for a value served from the table."""
    if evaluation is None or evaluation.outcome == Outcome.PENDING:
        return Looked(shown)
    cost = None if evaluation.outcome in _NO_COST else evaluation.seconds
    if evaluation.computed_at is not None:
        return Looked(shown, cost, evaluation.computed_at)
    if now is None:
        # A refresh that failed, or a table that cannot be read: no value.
        return Looked(shown, cost or None)
    return Looked(shown, cost, now, now=True)


def _evaluations(
    definitions: list[MetricDefinition],
) -> tuple[dict[int, Evaluation], set[int]]:
    """Return the evaluations by id, and the ids of those served from the table."""
    timeout = app_settings.ADMIN_EVALUATION_TIMEOUT
    found: dict[int, Evaluation] = {}
    try:
        served = serve_scheduled(definitions, time.monotonic() + timeout)
        found.update((definitions[i].pk, result) for i, result in served.items())
        rest = [d for i, d in enumerate(definitions) if i not in served]
        results = evaluate_many(rest, timeout=timeout)
    except Exception:
        # The values are a convenience: the page must show without them.
        logger.exception("Could not evaluate definitions for the admin overview.")
        return found, set(found)
    scheduled = set(found)
    found.update((d.pk, result) for d, result in zip(rest, results, strict=True))
    return found, scheduled


def listing(
    definitions: QuerySet, chosen: dict[str, str], user: Any, page_number: Any
) -> tuple[Page, dict[int, Looked]]:
    """Return the page of definitions `chosen` asks for, and what each shows.

    Kind, source and the name or last-change order are the database's, and
    then only the page is evaluated. A state or the cost order is known only
    once evaluated: then every definition of that kind and source is (the
    disabled and hidden ones excepted, which need no evaluation to be
    known), and the page is taken from those.
    """
    if chosen["kind"]:
        definitions = definitions.filter(kind=chosen["kind"])
    if chosen["source"]:
        definitions = definitions.filter(source=chosen["source"])
    state, sort = chosen["state"], chosen["sort"]
    if state == State.DISABLED:
        definitions = definitions.filter(enabled=False)
    elif state:
        definitions = definitions.filter(enabled=True)
    if sort == CHANGED:
        definitions = definitions.order_by("-updated_at", "name", "pk")
    else:
        definitions = definitions.order_by("name", "pk")
    if state in ("", State.DISABLED) and sort != COST:
        page = Paginator(definitions, PER_PAGE).get_page(page_number)
        return page, look_at(list(page.object_list), user)
    found = list(definitions)
    if state == State.HIDDEN and sort != COST:
        # Permissions alone tell which are hidden: nothing is evaluated.
        found = [d for d in found if d.permission_refusals(user)]
        page = Paginator(found, PER_PAGE).get_page(page_number)
        return page, look_at(list(page.object_list), user)
    looked = look_at(found, user)
    if state:
        found = [d for d in found if looked[d.pk].shown.state == state]
    if sort == COST:
        # Stable: equal costs stay in name order; the unknown ones come last.
        found.sort(key=lambda d: _cost_order(looked[d.pk].cost))
    return Paginator(found, PER_PAGE).get_page(page_number), looked


def _cost_order(cost: float | None) -> float:
    return -cost if cost is not None else math.inf


@dataclass(frozen=True)
class Card:
    """One definition as the page shows it."""

    definition: MetricDefinition
    looked: Looked
    url: str
    sparkline: SafeString = field(default_factory=lambda: mark_safe(""))  # noqa: S308
    #: Its alerts in Prometheus, such as "1 firing"; empty for none or unknown.
    alerts: str = ""
    firing: bool = False
    alerts_url: str = ""

    @property
    def shown(self) -> presentation.Shown:
        """Return what the card shows of the value."""
        return self.looked.shown

    @property
    def name(self) -> SafeString:
        """Return the name as HTML that wraps only after its dots and underscores."""
        return admin_text.name_html(self.definition.name)

    @property
    def exported(self) -> bool:
        """Return whether the definition has series to show (maybe none)."""
        shown = self.shown
        return (
            shown.state == State.OK or shown.value is not None or shown.series_count > 0
        )

    @property
    def series(self) -> str:
        """Return the number of series against the definition's max_series."""
        limit = validators.max_series_bound(self.definition.max_series)
        return formatting.format_series_count(self.shown.series_count, limit)

    @property
    def computed_at(self) -> dt.datetime | None:
        """Return when the value was computed, for a <time> element."""
        moment = self.looked.computed_at
        return None if moment is None else dt.datetime.fromtimestamp(moment, dt.UTC)

    @property
    def when(self) -> str:
        """Return when the value was computed and what that took, in words."""
        looked = self.looked
        if looked.computed_at is None:
            return ""
        cost = "" if looked.cost is None else formatting.format_duration(looked.cost)
        if looked.now:
            if cost:
                return gettext("evaluated now in %(cost)s") % {"cost": cost}
            return gettext("evaluated now")
        age = formatting.format_age(time.time() - looked.computed_at)
        if cost:
            return gettext("computed %(age)s in %(cost)s") % {"age": age, "cost": cost}
        return gettext("computed %(age)s") % {"age": age}

    @property
    def changed(self) -> str:
        """Return how long ago the definition was last changed."""
        updated = self.definition.updated_at
        if updated is None:
            return ""
        age = formatting.format_age(time.time() - updated.timestamp())
        return gettext("changed %(age)s") % {"age": age}


class OverviewAdmin(admin.ModelAdmin):
    """Serve the overview page as the proxy model Overview's only view.

    Its permissions are those of the admin of MetricDefinition on the same
    site: it may be viewed by whoever may view (or change) definitions.
    """

    template_name = "admin/metricdemo/overview.html"

    def get_urls(self):
        """Return the page, named as a change list so the app's index links it."""
        name = f"{self.opts.app_label}_{self.opts.model_name}_changelist"
        return [path("", self.admin_site.admin_view(self.overview_view), name=name)]

    def _admin_of(self, model) -> admin.ModelAdmin | None:
        try:
            return self.admin_site.get_model_admin(model)
        except NotRegistered:
            return None

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        """Return whether the user may view or change definitions on this site."""
        definitions = self._admin_of(MetricDefinition)
        return bool(definitions and definitions.has_view_or_change_permission(request))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def overview_view(self, request: HttpRequest) -> TemplateResponse:
        """Show a page of definitions as cards, filtered and sorted as asked."""
        definitions_admin = self._admin_of(MetricDefinition)
        if definitions_admin is None or not self.has_view_permission(request):
            raise PermissionDenied
        form = OverviewFilters(request.GET)
        chosen = form.chosen()
        page, looked = listing(
            definitions_admin.get_queryset(request),
            chosen,
            request.user,
            request.GET.get(PAGE_VAR),
        )
        definitions = list(page.object_list)
        history = presentation.recent_history(
            [d for d in definitions if looked[d.pk].shown.state != State.HIDDEN]
        )
        answer = self._alerts(request) if definitions else None
        cards = [self._card(d, looked[d.pk], history, answer) for d in definitions]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Overview"),
            "form": form,
            "cards": cards,
            "page": page,
            "page_range": page.paginator.get_elided_page_range(page.number),
            "history_origin": history.origin,
            "alerts_answer": answer,
            "evaluates_all": bool(chosen["state"]) or chosen["sort"] == COST,
            "changelist_url": reverse(
                f"{self.admin_site.name}:{_url_name(MetricDefinition, 'changelist')}"
            ),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.template_name, context)

    def _alerts(self, request: HttpRequest) -> prometheus_api.Answer | None:
        # Alerts are the rules': those who may view rules may see them.
        rules = self._admin_of(AlertRule)
        if rules is None or not rules.has_view_or_change_permission(request):
            return None
        return prometheus_api.current_alerts()

    def _card(
        self,
        definition: MetricDefinition,
        looked: Looked,
        history: presentation.History,
        answer: prometheus_api.Answer | None,
    ) -> Card:
        url = reverse(
            f"{self.admin_site.name}:{_url_name(MetricDefinition, 'change')}",
            args=[definition.pk],
        )
        hidden = looked.shown.state == State.HIDDEN
        found = (
            [] if hidden or answer is None else answer.of_definition(definition.name)
        )
        return Card(
            definition,
            looked,
            url,
            sparkline=mark_safe("")  # noqa: S308
            if hidden
            else presentation.sparkline(history.of(definition)),
            alerts=presentation.alerts_count_text(found),
            firing=any(alert.state == "firing" for alert in found),
            alerts_url=answer.page_url if answer is not None else "",
        )


def _url_name(model, view: str) -> str:
    return f"{model._meta.app_label}_{model._meta.model_name}_{view}"
