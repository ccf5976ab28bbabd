"""Show a definition's value, state and trend at a glance: for the admin's pages.

`shown(definition, evaluation)` turns one evaluation into what a card or a
row of the change list shows: its state, its value formatted for the unit
(metricdemo.formatting), the number of series and the top ones.
`hide_refused()` marks the definitions whose values a user may not see.
`recent_history(definitions)` reads the recent values, from Prometheus when
METRICDEMO['PROMETHEUS_URL'] is set and answers (a query or two for a whole
page), else from the app's own samples; `sparkline()` draws them as a small
SVG, with no script and no inline style (a Content-Security-Policy without
'unsafe-inline' allows it).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext

from metricdemo import (
    aggregates,
    display,
    formatting,
    prometheus_api,
    prometheus_history,
    routing,
)
from metricdemo.conf import app_settings
from metricdemo.distributions import Distribution
from metricdemo.evaluation import Evaluation, Outcome
from metricdemo.models import MetricDefinition
from metricdemo.values import history as local_history


class State:
    """What a card says of a definition, one word each (also a CSS class)."""

    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    #: A value served from before: kept after an overrun, or refreshed too long ago.
    STALE = "stale"
    #: Scheduled, and not refreshed yet.
    PENDING = "pending"
    DISABLED = "disabled"
    #: The user may not read the rows (or the setting) the value comes from.
    HIDDEN = "hidden"
    #: Not evaluated for this page (the evaluation itself failed).
    UNKNOWN = "unknown"

    ALL = (OK, ERROR, TIMEOUT, STALE, PENDING, DISABLED, HIDDEN, UNKNOWN)
    LABELS = {
        OK: "ok",
        ERROR: "error",
        TIMEOUT: "timeout",
        STALE: "stale",
        PENDING: "pending",
        DISABLED: "disabled",
        HIDDEN: "hidden",
        UNKNOWN: "unknown",
    }


_STATE_OF_OUTCOME = {
    Outcome.SUCCESS: State.OK,
    Outcome.CACHED: State.OK,
    Outcome.STORED: State.OK,
    Outcome.KEPT: State.STALE,
    Outcome.STALE: State.STALE,
    Outcome.PENDING: State.PENDING,
    Outcome.ERROR: State.ERROR,
    Outcome.TIMEOUT: State.TIMEOUT,
}

#: Series a grouped value shows besides its count.
TOP_SERIES = 3


@dataclass(frozen=True)
class SeriesShown:
    """One series of a grouped value: its labels as text and its value."""

    labels: str
    value: formatting.Formatted


@dataclass(frozen=True)
class Shown:
    """What a page shows of one definition's value now."""

    state: str
    #: The value of a single unlabelled series; None for several, or none.
    value: formatting.Formatted | None = None
    series_count: int = 0
    #: The largest series first, at most TOP_SERIES of them.
    top: list[SeriesShown] = field(default_factory=list)
    #: Why there is no value, or why the value is old (an error, a timeout).
    message: str = ""
    #: Seconds the evaluation took; None when it was not evaluated now.
    seconds: float | None = None
    #: Unix time the value was computed.
    computed_at: float | None = None

    @property
    def more(self) -> int:
        """Return how many series the top ones leave out."""
        return max(0, self.series_count - len(self.top))

    @property
    def state_label(self) -> str:
        """Return the state as a word for people."""
        return State.LABELS.get(self.state, self.state)


def measured_kind(definition: MetricDefinition) -> str | None:
    """Return what a row-based definition's field measures (number, duration...)."""
    if definition.source != "row_count" or not definition.field:
        return None
    try:
        model = routing.resolve_model(definition.model)
    except LookupError:
        return None
    return aggregates.measure_kind(model, definition.field)


def aggregated_kind(definition: MetricDefinition) -> str | None:
    """Return what a row-based definition's value is (date, duration...), or None.

    The time between two dates (`paid_at - created_at`, `now - created_at`)
    is a duration in seconds, never a date.
    """
    aggregate = getattr(definition, "aggregate", "") or aggregates.COUNT
    if aggregate not in aggregates.VALUE_AGGREGATES:
        return None
    return measured_kind(definition)


def format_series_value(
    definition: MetricDefinition,
    value: float | Distribution,
    *,
    kind: str | None = None,
    now: float | None = None,
) -> formatting.Formatted:
    """Return one series' value formatted for the definition's unit.

    A histogram's value is its count, sum and median in the short text;
    the full text adds the 90th and 99th percentiles, at full precision.
    """
    unit = definition.unit or ""
    if isinstance(value, Distribution):
        median = value.quantile(0.5)
        short = f"count {value.count:,}, sum {_short(value.sum, unit, kind)}"
        full = f"count {value.count:,}, sum {_full(value.sum, unit, kind)}"
        if median is not None:
            short += f", p50 {_short(median, unit, kind)}"
        for name, quantile in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
            found = value.quantile(quantile)
            if found is not None:
                full += f", {name} {_full(found, unit, kind)}"
        return formatting.Formatted(short, full)
    return formatting.format_value(value, unit, kind, now=now)


def _short(value: float, unit: str, kind: str | None) -> str:
    return formatting.format_value(value, unit, kind).short


def _full(value: float, unit: str, kind: str | None) -> str:
    return formatting.format_value(value, unit, kind).full


def _size(value: float | Distribution) -> float:
    number = value.count if isinstance(value, Distribution) else value
    return number if math.isfinite(number) else -math.inf


def shown(
    definition: MetricDefinition,
    evaluation: Evaluation | None,
    *,
    hidden: str = "",
    limit: int = TOP_SERIES,
    now: float | None = None,
) -> Shown:
    """Return what a page shows of `definition`'s value from `evaluation`.

    `hidden` is the reason the user may not see the value (the state is
    then `hidden`); without an evaluation, a disabled definition is
    `disabled` and any other `unknown`.
    """
    if hidden:
        return Shown(State.HIDDEN, message=hidden)
    if evaluation is None:
        if not definition.enabled:
            return Shown(State.DISABLED)
        return Shown(State.UNKNOWN)
    state = _STATE_OF_OUTCOME.get(evaluation.outcome, State.ERROR)
    computed_at = evaluation.computed_at
    seconds = None if computed_at is not None else evaluation.seconds
    if not evaluation.ok:
        return Shown(
            state,
            message=evaluation.error or str(evaluation.outcome),
            seconds=seconds,
            computed_at=computed_at,
        )
    kind = aggregated_kind(definition)
    found = display.series(definition, evaluation)
    value = None
    top: list[SeriesShown] = []
    if len(found) == 1 and not found[0].labels:
        value = format_series_value(definition, found[0].value, kind=kind, now=now)
    else:
        largest = sorted(found, key=lambda item: -_size(item.value))[:limit]
        top = [
            SeriesShown(
                ", ".join(f"{key}={text}" for key, text in item.labels),
                format_series_value(definition, item.value, kind=kind, now=now),
            )
            for item in largest
        ]
    return Shown(
        state,
        value=value,
        series_count=len(found),
        top=top,
        message=evaluation.error,
        seconds=seconds,
        computed_at=computed_at,
    )


def hide_refused(definitions: list[MetricDefinition], user) -> list[MetricDefinition]:
    """Mark the definitions `user` may not see the values of; return the others.

    Each one marked gets `_metricdemo_hidden`, the reason as a page shows it.
    A hidden definition is never evaluated, so a page shows neither a value
    nor a number of series nor an error that could describe the data.
    """
    visible = []
    for definition in definitions:
        refusals = definition.permission_refusals(user)
        if refusals:
            definition._metricdemo_hidden = gettext("hidden: %(reason)s") % {
                "reason": " ".join(refusals.values())
            }
        else:
            visible.append(definition)
    return visible


def alerts_count_text(found: list[prometheus_api.Alert]) -> str:
    """Return '1 firing', '2 pending' or '1 firing, 1 pending'; empty for none."""
    counts = [
        (state, sum(1 for alert in found if alert.state == state))
        for state in prometheus_api.STATES
    ]
    return ", ".join(f"{count} {state}" for state, count in counts if count)


# --- History -------------------------------------------------------------------

#: Points of one sparkline.
SPARKLINE_POINTS = local_history.SPARKLINE_POINTS
#: The span a sparkline covers when the app keeps no history of its own.
DEFAULT_SPAN = dt.timedelta(hours=24)

Points = list[tuple[dt.datetime, float | None]]


def history_span() -> dt.timedelta:
    """Return the span of the history kept: HISTORY_POINTS samples of the interval."""
    seconds = local_history.interval()
    if not seconds:
        return DEFAULT_SPAN
    return dt.timedelta(seconds=seconds * int(app_settings.HISTORY_POINTS))


@dataclass(frozen=True)
class History:
    """The recent values of some definitions, and where they come from."""

    points: dict[int, Points]
    #: "prometheus", "local", or "" when there is none.
    origin: str

    def of(self, definition: MetricDefinition) -> Points:
        """Return the definition's points, oldest first (empty when none)."""
        return self.points.get(definition.pk, [])


def recent_history(
    definitions: Sequence[MetricDefinition],
    *,
    span: dt.timedelta | None = None,
    points: int = SPARKLINE_POINTS,
) -> History:
    """Return the definitions' recent values, at most `points` each.

    From Prometheus when PROMETHEUS_URL is set and it answers within its
    timeout, else from the samples the app keeps (METRICDEMO's
    HISTORY_INTERVAL), else none.
    """
    saved = [definition for definition in definitions if definition.pk]
    if not saved:
        return History({}, "")
    until = timezone.now()
    since = until - (span or history_span())
    found = prometheus_history.history_together(
        saved, since, until=until, points=points
    )
    if found is not None:
        return History(found, "prometheus")
    if not local_history.interval():
        return History({}, "")
    found = local_history.history(
        [definition.pk for definition in saved], since, until=until, points=points
    )
    return History(found, "local")


# --- Sparklines ----------------------------------------------------------------

#: A sparkline's size in SVG units (the CSS scales it).
WIDTH, HEIGHT = 120, 28
#: Room above and below the line, so that its stroke is not cut.
_PAD = 2.0


def sparkline(
    points: Iterable[tuple[dt.datetime, float | None]],
    *,
    label: str = "",
    width: int = WIDTH,
    height: int = HEIGHT,
) -> SafeString:
    """Return an SVG line of `points` (oldest first), or "" for none.

    A point without a value breaks the line. The title (a tooltip) gives
    the span, the lowest and highest values and the last one.
    """
    items = [(moment, value) for moment, value in points]
    values = [v for _, v in items if v is not None and math.isfinite(v)]
    if not values:
        return mark_safe("")  # noqa: S308 - a constant
    low, high = min(values), max(values)
    first, last = items[0][0].timestamp(), items[-1][0].timestamp()
    span = last - first
    paths = []
    segment: list[str] = []
    for index, (moment, value) in enumerate(items):
        if value is None or not math.isfinite(value):
            if segment:
                paths.append(segment)
            segment = []
            continue
        if span > 0:
            x = (moment.timestamp() - first) / span * width
        else:
            x = width if len(items) == 1 else index / (len(items) - 1) * width
        if high > low:
            y = _PAD + (high - value) / (high - low) * (height - 2 * _PAD)
        else:
            y = height / 2
        segment.append(f"{x:.1f},{y:.1f}")
    if segment:
        paths.append(segment)
    shapes = []
    for part in paths:
        if len(part) == 1:
            x, y = part[0].split(",")
            shapes.append(format_html('<circle cx="{}" cy="{}" r="1.5"/>', x, y))
        else:
            shapes.append(format_html('<polyline points="{}"/>', " ".join(part)))
    title = label or _sparkline_title(items, low, high, values[-1])
    return format_html(
        '<svg class="metricdemo-sparkline" viewBox="0 0 {} {}" '
        'preserveAspectRatio="none" role="img" aria-label="{}">'
        "<title>{}</title>{}</svg>",
        width,
        height,
        title,
        title,
        mark_safe("".join(shapes)),  # noqa: S308 - built with format_html above
    )


def _sparkline_title(
    items: list[tuple[dt.datetime, float | None]], low: float, high: float, last: float
) -> str:
    span = (items[-1][0] - items[0][0]).total_seconds()
    return (
        f"{formatting.format_duration(span)}: low {formatting.full_number(low)}, "
        f"high {formatting.full_number(high)}, last {formatting.full_number(last)}"
    )


# --- A list's cell -----------------------------------------------------------


def value_html(
    shown: Shown,
    points: Iterable[tuple[dt.datetime, float | None]] = (),
    *,
    outcome: str = "",
) -> SafeString:
    """Return a value for a list's cell, with its sparkline.

    One value, full precision in its title; or "33 series" and the largest
    three, each with its labels; or, for an evaluation that failed, its
    `outcome` and message as an error note. A value served from before
    (kept, stale) says so after it.
    """
    if shown.state in (State.HIDDEN, State.DISABLED, State.UNKNOWN):
        return format_html(
            '<span class="metricdemo-state">{}</span>',
            shown.message or shown.state_label,
        )
    if shown.value is None and not shown.series_count and shown.message:
        return format_html(
            '<span class="errornote">{}: {}</span>',
            outcome or shown.state,
            shown.message,
        )
    line = sparkline(points)
    if shown.value is None and shown.series_count == 1 and shown.top:
        # One series with labels: its value, and its labels under it.
        (only,) = shown.top
        shown = Shown(shown.state, only.value, 1, message=shown.message)
        line = format_html(
            '{}<span class="metricdemo-labels">{}</span>', line, only.labels
        )
    if shown.value is not None:
        main = format_html(
            '<span class="metricdemo-value" title="{}">{}</span>',
            shown.value.full,
            shown.value.short,
        )
    elif shown.series_count:
        main = format_html(
            '<span class="metricdemo-value">{} series</span>',
            f"{shown.series_count:,}",
        )
    else:
        main = format_html('<span class="metricdemo-value">{}</span>', "no series")
    top = ""
    if shown.top:
        items = [
            format_html(
                '<li><span class="metricdemo-labels">{}</span> '
                '<span title="{}">{}</span></li>',
                item.labels or "(no labels)",
                item.value.full,
                item.value.short,
            )
            for item in shown.top
        ]
        if shown.more:
            items.append(format_html("<li>and {} more</li>", f"{shown.more:,}"))
        top = format_html(
            '<ul class="metricdemo-top">{}</ul>',
            mark_safe(" ".join(items)),  # noqa: S308 - built with format_html above
        )
    note = ""
    if shown.message:
        note = format_html(
            ' <span class="metricdemo-note">({}: {})</span>',
            outcome or shown.state,
            shown.message,
        )
    return (
        format_html("{}{}{} {}", main, note, line, top)
        if top
        else (format_html("{}{}{}", main, note, line))
    )
