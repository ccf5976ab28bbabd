"""Ask Prometheus which alerts of the generated rules are pending or firing now.

The admin shows them when METRICDEMO["PROMETHEUS_URL"] is set: one GET of
/api/v1/alerts per page, with a short timeout. Nothing here raises into a
page: a Prometheus that does not answer (or answers something else) gives
an Answer with an error, logged once until Prometheus answers again.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from metricdemo.alerts import DEFINITION_LABEL
from metricdemo.conf import app_settings

logger = logging.getLogger("metricdemo")

#: Seconds a request to Prometheus may take.
TIMEOUT = 2.0
#: The most of an answer read; a page of alerts is far smaller.
MAX_BYTES = 8 * 1024 * 1024
#: The states of an active alert, in the order shown.
STATES = ("firing", "pending")
#: Labels an alert carries besides its series' own: Prometheus's alert name
#: and those every generated rule sets.
RULE_LABELS = frozenset({"alertname", "severity", DEFINITION_LABEL})


@dataclass(frozen=True)
class Alert:
    """One active alert of a generated rule: a series whose condition holds."""

    name: str
    definition: str
    state: str
    #: Every label of the alert, sorted by name.
    labels: tuple[tuple[str, str], ...]
    value: float | None
    #: When the condition began to hold, as Prometheus wrote it (RFC 3339).
    active_at: str

    @property
    def series_labels(self) -> tuple[tuple[str, str], ...]:
        """Return the labels of the series, without those of the rule."""
        return tuple(item for item in self.labels if item[0] not in RULE_LABELS)


@dataclass(frozen=True)
class Answer:
    """What Prometheus said about the active alerts, or why it said nothing."""

    #: Prometheus's page of alerts, for a link.
    page_url: str
    alerts: tuple[Alert, ...] = ()
    #: Why Prometheus did not answer; None when it did.
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Return whether Prometheus answered."""
        return self.error is None

    def of_definition(self, name: str) -> list[Alert]:
        """Return the alerts of the definition named `name`, firing first."""
        return sorted(
            (alert for alert in self.alerts if alert.definition == name),
            key=lambda alert: (STATES.index(alert.state), alert.name, alert.labels),
        )

    def of_rule(self, definition: str, rule: str) -> list[Alert]:
        """Return the alerts of one rule of the definition named `definition`."""
        return [alert for alert in self.of_definition(definition) if alert.name == rule]


def base_url() -> str | None:
    """Return PROMETHEUS_URL without a trailing slash, or None when unset."""
    url = app_settings.PROMETHEUS_URL
    return str(url).rstrip("/") if url else None


def current_alerts(
    url: str | None = None, *, timeout: float = TIMEOUT
) -> Answer | None:
    """Return the pending and firing alerts of the generated rules.

    `url` is Prometheus's base URL, PROMETHEUS_URL by default; None when
    neither is set, and then nothing is asked. Never raises: when Prometheus
    does not answer in `timeout` seconds, or answers something else, the
    Answer says why, and the first such failure is logged.
    """
    base = url.rstrip("/") if url else base_url()
    if not base:
        return None
    page = f"{base}/alerts"
    try:
        alerts = _fetch(f"{base}/api/v1/alerts", timeout)
    except Exception as exc:  # noqa: BLE001 - the page must show without them
        reason = _reason(exc)
        _failed(base, reason)
        return Answer(page, error=reason)
    _answered(base)
    return Answer(page, alerts)


def _fetch(url: str, timeout: float) -> tuple[Alert, ...]:
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError("PROMETHEUS_URL must start with http:// or https://")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        body = response.read(MAX_BYTES + 1)
    if len(body) > MAX_BYTES:
        raise ValueError("the answer is too long")
    return _alerts_of(json.loads(body))


def _alerts_of(data: Any) -> tuple[Alert, ...]:
    if not isinstance(data, dict) or data.get("status") != "success":
        raise ValueError("the answer is not a successful API response")
    found = (data.get("data") or {}).get("alerts")
    if not isinstance(found, list):
        raise ValueError("the answer holds no list of alerts")
    alerts = []
    for item in found:
        labels = item.get("labels") if isinstance(item, dict) else None
        if not isinstance(labels, dict) or DEFINITION_LABEL not in labels:
            continue  # not an alert of a generated rule
        if item.get("state") not in STATES:
            continue
        alerts.append(
            Alert(
                name=str(labels.get("alertname", "")),
                definition=str(labels[DEFINITION_LABEL]),
                state=item["state"],
                labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
                value=_number(item.get("value")),
                active_at=str(item.get("activeAt") or ""),
            )
        )
    return tuple(alerts)


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _reason(exc: Exception) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    if isinstance(exc, json.JSONDecodeError):
        return "the answer is not JSON"
    return str(exc) or type(exc).__name__


# Log a failure once, not on every page, until Prometheus answers again.
_failing: set[str] = set()
_lock = threading.Lock()


def _failed(base: str, reason: str) -> None:
    with _lock:
        first = base not in _failing
        _failing.add(base)
    if first:
        logger.warning(
            "Prometheus at %s did not answer for the admin's alerts: %s. The admin "
            "shows no alert states until it answers; this is logged once.",
            base,
            reason,
        )


def _answered(base: str) -> None:
    with _lock:
        was_failing = base in _failing
        _failing.discard(base)
    if was_failing:
        logger.info("Prometheus at %s answers again.", base)
