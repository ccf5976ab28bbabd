"""Read what a row-based definition's `field` measures: a path, or a duration.

`field` names a field path (`total`, `customer__country`), or the time
between two dates or datetimes in seconds: `paid_at - created_at`, along
relations (`shipment__delivered_at - created_at`), or with `now` on either
side for an age (`now - created_at`) or a time left (`due_at - now`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.utils.translation import gettext as _

#: The word that stands for the moment of the evaluation in a duration.
NOW = "now"
_PATH_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Measure:
    """A definition's field as read: one path, or `later - earlier`."""

    #: The path measured, or the later end of a duration (a path or NOW).
    later: str
    #: The earlier end of a duration (a path or NOW); "" for a plain path.
    earlier: str = ""

    @property
    def is_duration(self) -> bool:
        return bool(self.earlier)

    @property
    def paths(self) -> tuple[str, ...]:
        """Return the field paths read (not NOW), each once."""
        ends = (self.later, self.earlier) if self.earlier else (self.later,)
        found: list[str] = []
        for end in ends:
            if end and end != NOW and end not in found:
                found.append(end)
        return tuple(found)

    def __str__(self) -> str:
        return f"{self.later} - {self.earlier}" if self.earlier else self.later


def parse(text: str | None) -> Measure:
    """Return the Measure that `text` writes; a text without '-' is one path.

    Only the form is read here; whether the paths exist and are dates is for
    the validation that knows the model (see aggregates.field_problem()).
    """
    text = (text or "").strip()
    if "-" not in text:
        return Measure(text)
    later, _sep, earlier = text.partition("-")
    return Measure(later.strip(), earlier.strip() or "-")


def form_problem(text: str | None) -> str | None:
    """Return why `text` is not a path or a difference of two, or None."""
    measure = parse(text)
    if not measure.is_duration:
        return None
    for end in (measure.later, measure.earlier):
        if end == NOW:
            continue
        if not all(_PATH_RE.fullmatch(part) for part in end.split("__")):
            return _(
                "%(text)r is not a duration of the form `later - earlier`: each "
                "side is a date or datetime field path (such as paid_at or "
                "shipment__delivered_at) or now, for example paid_at - created_at "
                "or now - created_at."
            ) % {"text": text}
    if measure.later == measure.earlier:
        return _(
            "%(text)r subtracts a value from itself, which is always 0; give two "
            "different dates, for example paid_at - created_at."
        ) % {"text": text}
    return None


def paths_of(text: str | None) -> tuple[str, ...]:
    """Return the field paths `text` reads: one, two for a duration, none for now."""
    return parse(text).paths
