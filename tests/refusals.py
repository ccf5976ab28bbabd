"""Bad definitions and the message each must get: one table for every input path.

The model (full_clean), the admin form and the import command each run every
case, so a rule cannot hold on one path and not on another.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pytest

#: Stored before each case, so that the name collisions have something to meet.
EXISTING = {"name": "shop.orders", "source": "constant", "value": 1}
#: A valid definition; each case changes some of its fields.
BASE = {"name": "shop.refused", "kind": "gauge", "source": "constant", "value": 1}
ROW_COUNT = {"source": "row_count", "value": None}


@dataclass(frozen=True)
class Refusal:
    """Fields that make BASE invalid, the field refused, and text its message has."""

    fields: dict[str, Any]
    field: str
    fragment: str

    @property
    def definition(self) -> dict[str, Any]:
        """Return the whole definition, as the model takes it."""
        return {**BASE, **self.fields}


REFUSALS = {
    # Editing rules
    "invalid name": Refusal({"name": "9 lives"}, "name", "'9 lives'"),
    "taken name": Refusal({"name": "shop.orders"}, "name", "'shop.orders'"),
    "colliding exported name": Refusal(
        {"name": "shop-orders"}, "name", "'shop_orders'"
    ),
    "unit not ASCII": Refusal({"unit": "séc"}, "unit", "séc"),
    "unit with a space": Refusal({"unit": "per second"}, "unit", "per second"),
    "attributes not an object": Refusal(
        {"attributes": ["region"]}, "attributes", "['region']"
    ),
    "attribute not a scalar": Refusal(
        {"attributes": {"region": [1]}}, "attributes", "[1]"
    ),
    "attribute key not a label": Refusal(
        {"attributes": {"otel_scope_name": "x"}}, "attributes", "otel_scope_name"
    ),
    "constant NaN": Refusal({"value": math.nan}, "value", "nan"),
    "constant infinite": Refusal({"value": math.inf}, "value", "inf"),
    "unknown model": Refusal({**ROW_COUNT, "model": "shop.Nope"}, "model", "shop.Nope"),
    "lookup the model lacks": Refusal(
        {**ROW_COUNT, "model": "shop.Order", "filters": {"colour": "red"}},
        "filters",
        "colour",
    ),
    "filter key Django 5.2.7 took as SQL": Refusal(
        {
            **ROW_COUNT,
            "model": "shop.Order",
            "filters": {"_connector": "OR 1=1 OR", "status": "paid"},
        },
        "filters",
        "'_connector'",
    ),
    "filter key with a lookup Django lacks": Refusal(
        {**ROW_COUNT, "model": "shop.Order", "filters": {"status__nope": "x"}},
        "filters",
        "'nope'",
    ),
    "lookup value of the wrong type": Refusal(
        {**ROW_COUNT, "model": "shop.Order", "filters": {"total__gt": "lots"}},
        "filters",
        "lots",
    ),
    "group by not a field": Refusal(
        {**ROW_COUNT, "model": "shop.Order", "group_by": "colour"},
        "group_by",
        "colour",
    ),
    "group by the primary key": Refusal(
        {**ROW_COUNT, "model": "shop.Order", "group_by": "pk"}, "group_by", "'pk'"
    ),
    "group by a unique field through a relation": Refusal(
        {**ROW_COUNT, "model": "shop.Order", "group_by": "customer__id"},
        "group_by",
        "'customer__id'",
    ),
    "max series zero": Refusal({"max_series": 0}, "max_series", "max series of 0"),
    "max series above the cardinality limit": Refusal(
        {"max_series": 20001}, "max_series", "max series of 20001"
    ),
    "unknown setting": Refusal(
        {"source": "setting", "value": None, "setting": "NO_SUCH_SETTING"},
        "setting",
        "NO_SUCH_SETTING",
    ),
    "non-numeric setting": Refusal(
        {"source": "setting", "value": None, "setting": "TIME_ZONE"},
        "setting",
        "TIME_ZONE",
    ),
    "unregistered callback": Refusal(
        {"source": "callback", "value": None, "callback": "not.registered"},
        "callback",
        "not.registered",
    ),
    "parameter of another source": Refusal(
        {"model": "shop.Order"}, "model", "shop.Order"
    ),
    # Names and text the exposition cannot carry
    "OpenTelemetry's target_info": Refusal(
        {"name": "target.info"}, "name", "'target_info'"
    ),
    "prometheus_client's process family": Refusal(
        {"name": "process.cpu", "unit": "s", "kind": "counter"},
        "name",
        "'process_cpu_seconds_total'",
    ),
    "prometheus_client's python_info": Refusal(
        {"name": "python.info"}, "name", "'python_info'"
    ),
    "prometheus_client's gc family": Refusal(
        {"name": "python.gc.objects.collected", "kind": "counter"},
        "name",
        "'python_gc_objects_collected_total'",
    ),
    "an instrument made in code": Refusal(
        {"name": "metricdemo.demo.counter", "kind": "counter"},
        "name",
        "'metricdemo_demo_counter_total'",
    ),
    "a gauge named like a code counter's _created sample": Refusal(
        {"name": "metricdemo.demo.counter_created"},
        "name",
        "'metricdemo_demo_counter_created'",
    ),
    "attribute key the exporter renames": Refusal(
        {"attributes": {"__name__": "x"}}, "attributes", "'_name_'"
    ),
    "attribute value with a lone surrogate": Refusal(
        {"attributes": {"s": "\ud800"}}, "attributes", "U+D800"
    ),
    "attribute value with NUL": Refusal(
        {"attributes": {"s": "a\x00"}}, "attributes", "U+0000"
    ),
    "filter value with a lone surrogate": Refusal(
        {**ROW_COUNT, "model": "shop.Order", "filters": {"status": "\udfff"}},
        "filters",
        "U+DFFF",
    ),
    # Safe sources
    "session model": Refusal(
        {**ROW_COUNT, "model": "sessions.Session"}, "model", "sessions.Session"
    ),
    "admin log model": Refusal(
        {**ROW_COUNT, "model": "admin.LogEntry"}, "model", "admin.LogEntry"
    ),
    "password lookup": Refusal(
        {**ROW_COUNT, "model": "auth.User", "filters": {"password__startswith": "m"}},
        "filters",
        "password__startswith",
    ),
    "password group by": Refusal(
        {**ROW_COUNT, "model": "auth.User", "group_by": "password"},
        "group_by",
        "password",
    ),
    "password behind a relation": Refusal(
        {
            **ROW_COUNT,
            "model": "auth.Group",
            "filters": {"user__password__startswith": "m"},
        },
        "filters",
        "user__password__startswith",
    ),
    "excluded model behind a relation": Refusal(
        {
            **ROW_COUNT,
            "model": "auth.User",
            "filters": {"logentry__change_message__contains": "x"},
        },
        "filters",
        "admin.LogEntry",
    ),
    "secret primary key": Refusal(
        {**ROW_COUNT, "model": "shop.Voucher", "filters": {"pk__startswith": "a"}},
        "filters",
        "pk__startswith",
    ),
    "compared by a secret key": Refusal(
        {**ROW_COUNT, "model": "shop.Customer", "filters": {"vouchers__gt": "m"}},
        "filters",
        "vouchers__gt",
    ),
    "identity group by": Refusal(
        {**ROW_COUNT, "model": "auth.User", "group_by": "email"}, "group_by", "email"
    ),
    "identity prefix oracle": Refusal(
        {**ROW_COUNT, "model": "auth.User", "filters": {"email__startswith": "root"}},
        "filters",
        "email__startswith",
    ),
    "identity behind a relation": Refusal(
        {**ROW_COUNT, "model": "auth.Permission", "group_by": "user__username"},
        "group_by",
        "user__username",
    ),
    "secret setting": Refusal(
        {"source": "setting", "value": None, "setting": "SECRET_KEY"},
        "setting",
        "SECRET_KEY",
    ),
    "password inside a setting": Refusal(
        {"source": "setting", "value": None, "setting": "DATABASES.default.PASSWORD"},
        "setting",
        "DATABASES.default.PASSWORD",
    ),
    "code path as callback": Refusal(
        {"source": "callback", "value": None, "callback": "os.system"},
        "callback",
        "os.system",
    ),
}

refusal_cases = pytest.mark.parametrize(
    "refusal", list(REFUSALS.values()), ids=list(REFUSALS)
)


#: The management form of the alert rules' inline, with no rules in it: what
#: the page posts when no rule is shown (those stored stay as they are).
NO_RULES = {
    "alert_rules-TOTAL_FORMS": "0",
    "alert_rules-INITIAL_FORMS": "0",
}


def form_data(**fields: Any) -> dict[str, str]:
    """Return a complete admin add/change form submission with these fields.

    The alert rules' inline posts no rules; add its forms to edit rules.
    """
    data = {
        **NO_RULES,
        "name": "",
        "description": "",
        "unit": "",
        "kind": "gauge",
        "enabled": "on",
        "attributes": "{}",
        "source": "constant",
        "value": "",
        "model": "",
        "filters": "{}",
        "group_by": "",
        "setting": "",
        "callback": "",
        "timeout": "",
        "cache_seconds": "0",
        "max_series": "",
    }
    for key, value in fields.items():
        if key in ("attributes", "filters") and not isinstance(value, str):
            data[key] = json.dumps(value)
        elif key == "enabled":
            data[key] = "on" if value else ""
        else:
            data[key] = "" if value is None else str(value)
    return data
