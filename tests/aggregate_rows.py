"""The clock and row-based definitions that the aggregate tests share."""

import datetime as dt

from metricdemo.models import MetricDefinition

# The clock of these tests: 2026-03-11 00:30 in Berlin, 23:30 UTC the day before.
NOW = dt.datetime(2026, 3, 10, 23, 30, tzinfo=dt.UTC)


def row_based(model="shop.Order", aggregate="count", field="", filters=None, **more):
    """Return an unsaved row-based definition."""
    return MetricDefinition(
        name="x",
        source="row_count",
        model=model,
        aggregate=aggregate,
        field=field,
        filters=filters or {},
        **more,
    )
