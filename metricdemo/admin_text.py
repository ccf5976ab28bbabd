"""Names and units as the admin's change list shows them: where they may wrap."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

if TYPE_CHECKING:
    from metricdemo.models import MetricDefinition

#: A segment of a name (up to and with its `.` or `_`) longer than this may
#: wrap anywhere: a 200-letter name with neither must still fit its column.
#: Real names' segments are words, such as `definitions.` or `OrdersWaiting_`.
LONGEST_UNBROKEN = 24

#: Each run of a name up to and including its `.` or `_`, and the rest.
_SEGMENT = re.compile(r"[^._]*[._]|[^._]+")


def name_segments(text: str) -> list[str]:
    """Split a name after each `.` and `_`, the only places it may wrap."""
    return _SEGMENT.findall(text)


def name_html(text: str) -> SafeString:
    """Return a name as HTML that wraps only after a `.` or `_`.

    Each segment is a span that admin.css keeps on one line, with a <wbr>
    between two; a segment longer than LONGEST_UNBROKEN may wrap anywhere.
    """
    segments = format_html_join(
        mark_safe("<wbr>"),  # noqa: S308 - markup of ours
        "{}",
        ((_segment_html(segment),) for segment in name_segments(text)),
    )
    return format_html('<span class="metricdemo-name">{}</span>', segments)


def _segment_html(segment: str) -> SafeString:
    if len(segment) > LONGEST_UNBROKEN:
        return format_html('<span class="metricdemo-long">{}</span>', segment)
    return format_html("<span>{}</span>", segment)


def unit_html(text: str) -> SafeString:
    """Return a unit as HTML that never wraps, whole in its title.

    admin.css ends a unit too long for its column with an ellipsis.
    """
    return format_html('<span class="metricdemo-unit" title="{}">{}</span>', text, text)


# The change list's columns are functions named as the fields they show, not
# ModelAdmin methods: Django classes a column by its callable's name, so the
# cells stay field-name and field-unit, as when they showed the fields.
@admin.display(description=_("name"), ordering="name")
def name(definition: MetricDefinition) -> SafeString:
    """Return a definition's name for its column, wrapping after `.` and `_` only."""
    return name_html(definition.name)


@admin.display(description=_("unit"), ordering="unit")
def unit(definition: MetricDefinition) -> SafeString | str:
    """Return a definition's unit for its column, on one line; "" for none."""
    return unit_html(definition.unit) if definition.unit else ""
