"""Bound a scrape: each definition's timeout, the scrape budget, and what overran."""

from __future__ import annotations

import time

from django.utils.translation import gettext as _

from metricdemo import validators
from metricdemo.conf import app_settings
from metricdemo.evaluation.outcomes import Evaluation, Outcome
from metricdemo.models import MetricDefinition


def timeout_of(definition: MetricDefinition) -> float:
    """Return the seconds `definition` may take: its own timeout or the default.

    Never more than the scrape budget: a definition stored with a longer
    timeout (before the budget was lowered, or without validation) is clamped.
    A scheduled definition is refreshed in the background, where no scrape
    waits: its own timeout or REFRESH_TIMEOUT, up to TIMEOUT_MAX.
    """
    if getattr(definition, "refresh_interval", None):
        seconds = getattr(definition, "timeout", None) or app_settings.REFRESH_TIMEOUT
        return min(float(seconds), validators.TIMEOUT_MAX)
    seconds = float(getattr(definition, "timeout", None) or app_settings.TIMEOUT)
    budget = validators.scrape_budget()
    return seconds if budget is None else min(seconds, budget)


def scrape_deadline() -> float | None:
    """Return the time.monotonic() by which a scrape starting now must be done."""
    budget = validators.scrape_budget()
    return None if budget is None else time.monotonic() + budget


def within_budget(seconds: float, deadline: float | None) -> float:
    """Return how long a task may run: its timeout, cut to what is left."""
    if deadline is None:
        return seconds
    return min(seconds, deadline - time.monotonic())


def batch_overran(definition: MetricDefinition, seconds: float) -> Evaluation:
    """Return the timeout of a batch member while the slow one is looked for."""
    return Evaluation(
        definition.name,
        Outcome.TIMEOUT,
        error=_(
            "Its batch gave no result within the timeout of %(seconds)g s; each "
            "member now runs alone in the background to find the slow one."
        )
        % {"seconds": seconds},
        seconds=seconds,
    )


def out_of_budget(definition: MetricDefinition, waited: float) -> Evaluation:
    """Return the timeout of an evaluation the scrape budget left no time for."""
    budget = validators.scrape_budget()
    return Evaluation(
        definition.name,
        Outcome.TIMEOUT,
        error=_(
            "The scrape budget, METRICDEMO['SCRAPE_TIMEOUT'] (%(budget)s s), ran "
            "out before this evaluation finished; it is left out of this scrape."
        )
        % {"budget": "?" if budget is None else f"{budget:g}"},
        seconds=max(0.0, waited),
    )
