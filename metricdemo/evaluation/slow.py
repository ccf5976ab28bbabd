"""Say which definitions are slow in this process, and when each is refreshed next.

A definition whose evaluation took longer than METRICDEMO['SLOW_EVALUATION']
(or timed out) is slow: scrapes stop waiting for it and serve its last good
value, while a background thread refreshes it, one refresh in flight at a
time and at most one every REFRESH_EVERY seconds. A refresh that is fast
again puts it back on the scrape's path. Scheduled definitions are never
marked: their refresher already works this way across processes.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.utils.translation import gettext as _

from metricdemo import validators
from metricdemo.conf import app_settings
from metricdemo.models import MetricDefinition

#: Seconds between the end of one background refresh of a slow definition and
#: the start of the next: Prometheus's default scrape interval.
REFRESH_EVERY = 15.0

#: The share of the scrape budget an evaluation may take before it is slow,
#: when METRICDEMO['SLOW_EVALUATION'] is not set.
BUDGET_SHARE = 0.25


def slow_seconds() -> float:
    """Return the seconds after which an evaluation is slow."""
    configured = app_settings.SLOW_EVALUATION
    # A value that is no number is a system-check error (metricdemo.E033).
    if isinstance(configured, int | float) and not isinstance(configured, bool):
        if configured > 0:
            return float(configured)
    budget = validators.scrape_budget()
    if budget is None:
        return float(app_settings.TIMEOUT) * BUDGET_SHARE
    return budget * BUDGET_SHARE


def may_be_slow(definition: MetricDefinition) -> bool:
    """Return whether `definition` can be marked slow: stored, and not scheduled."""
    return definition.pk is not None and not getattr(
        definition, "refresh_interval", None
    )


def reason(seconds: float, timed_out: bool, failure: str = "") -> str:
    """Return what the admin and the log say about a definition found slow.

    `failure` is the error of an evaluation that failed slowly, if it did.
    """
    took = (
        _("timed out after %(seconds)g s") % {"seconds": round(seconds, 2)}
        if timed_out
        else _("took %(seconds)g s") % {"seconds": round(seconds, 2)}
    )
    text = _(
        "Slow: its evaluation %(took)s, more than METRICDEMO['SLOW_EVALUATION'] "
        "(%(limit)g s). This process serves its last good value and refreshes it "
        "in the background; set its refresh_interval to refresh it on a schedule "
        "shared by every process."
    ) % {"took": took, "limit": round(slow_seconds(), 2)}
    if failure:
        text += " " + _("It failed: %(error)s") % {"error": failure}
    return text


class SlowDefinitions:
    """Hold the slow definitions of one evaluator, by key and version."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: {key: (version, reason, outcome of the evaluation found slow)}.
        self._slow: dict[Any, tuple[Any, str, str]] = {}
        #: {key: time.monotonic() when it was last evaluated}.
        self._last: dict[Any, float] = {}
        self._in_flight: set[Any] = set()

    def get(self, key: Any, version: Any) -> tuple[str, str] | None:
        """Return why `key` in `version` is slow and the outcome found, or None."""
        with self._lock:
            found = self._slow.get(key)
        # An edited definition is another: the scrape waits for it once again.
        return found[1:] if found is not None and found[0] == version else None

    def mark(self, key: Any, version: Any, why: str, outcome: str) -> None:
        """Make `key` slow, evaluated now; its first refresh is due in REFRESH_EVERY."""
        with self._lock:
            self._slow[key] = (version, why, outcome)
            self._last[key] = time.monotonic()

    def take_refresh(self, key: Any) -> bool:
        """Return whether a refresh of `key` may start now, and count it as started."""
        with self._lock:
            if key in self._in_flight:
                return False
            if time.monotonic() - self._last.get(key, 0.0) < REFRESH_EVERY:
                return False
            self._in_flight.add(key)
            return True

    def refreshed(self, key: Any, version: Any, why: str | None, outcome: str) -> None:
        """End the refresh of `key`: slow again for `why`, or fast (None)."""
        with self._lock:
            self._in_flight.discard(key)
            self._last[key] = time.monotonic()
            if why is None:
                self._slow.pop(key, None)
            else:
                self._slow[key] = (version, why, outcome)


#: Threads of one process that refresh slow definitions.
REFRESH_THREADS = 2


def refresh_timeout(definition: MetricDefinition) -> float:
    """Return the seconds a background refresh may take: no scrape waits for it."""
    own = float(getattr(definition, "timeout", None) or 0)
    return min(max(own, float(app_settings.REFRESH_TIMEOUT)), validators.TIMEOUT_MAX)
