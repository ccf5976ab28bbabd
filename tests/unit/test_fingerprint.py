"""A definition's fingerprint: rows stored before an upgrade still match after it."""

from __future__ import annotations

from metricdemo.models import MetricDefinition
from metricdemo.values.fingerprint import fingerprint
from metricdemo.values.scheduled import NOT_IN_FINGERPRINT
from metricdemo.values.shared_cache import cache_key


def every_field() -> MetricDefinition:
    """Return an unsaved definition with every editable field set."""
    return MetricDefinition(
        name="shop.orders.pending",
        description="Pending orders",
        unit="{order}",
        kind="gauge",
        enabled=True,
        attributes={"team": "shop", "tier": 1},
        source="row_count",
        model="shop.Order",
        aggregate="sum",
        field="total",
        filters={"status": "pending", "created__gte": "now-1h"},
        group_by="customer__country",
        timeout=5,
        cache_seconds=30,
        refresh_interval=60,
        max_series=100,
    )


def test_fingerprint__stored_rows_keep_matching():
    """The values were computed before the cache and the table shared one hash."""
    assert (
        fingerprint(every_field(), leave_out=NOT_IN_FINGERPRINT)
        == "49be1dc6d9f1d9ea55e877ae10b9c58c"
    )
    constant = MetricDefinition(name="x", source="constant", value=1.5)
    assert (
        fingerprint(constant, leave_out=NOT_IN_FINGERPRINT)
        == "0a5019f402503b79ba6b67f9c4d0a5e3"
    )


def test_fingerprint__cache_keys_keep_their_value():
    assert cache_key(every_field()) == (
        "metricdemo:value:c42692c8c413b76bd55175e7745a406f"
    )
    constant = MetricDefinition(name="x", source="constant", value=1.5)
    assert cache_key(constant) == ("metricdemo:value:2213e60975da48d84fdc2162ad17e35c")
