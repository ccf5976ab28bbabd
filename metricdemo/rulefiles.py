"""Write alert rules as YAML, check them with promtool, and make promtool unit tests.

`metrics rules` and the rules URL write what `alerts` builds; the unit tests
feed each rule one series that meets its condition for longer than `for`
(it fires) and one that does not (it stays silent), so `promtool test
rules` proves the expression, the labels and the annotations together.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from metricdemo import alerts, naming
from metricdemo.distributions import Distribution
from metricdemo.exposition.render import format_value
from metricdemo.models import AlertRule, Kind, Operator

#: Seconds promtool may take to check a rule file.
PROMTOOL_TIMEOUT = 60
# The input series' sample interval in the unit tests.
_STEP = 60


class _Dumper(yaml.SafeDumper):
    """Write every value in full: no anchors and aliases for repeated parts."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(data: Mapping[str, Any]) -> str:
    """Return `data` as YAML, in the order built, keeping Unicode readable."""
    return yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1000,
    )


def promtool() -> str | None:
    """Return the path of promtool, or None when it is not installed."""
    return shutil.which("promtool")


def check(text: str) -> tuple[bool, str]:
    """Run `promtool check rules` on a rule file's text; return (passed, output).

    Raises:
        FileNotFoundError: promtool is not installed.
    """
    tool = promtool()
    if tool is None:
        raise FileNotFoundError("promtool")
    with tempfile.TemporaryDirectory(prefix="metricdemo-rules-") as directory:
        path = Path(directory) / "rules.yml"
        path.write_text(text, encoding="utf-8")
        done = subprocess.run(  # noqa: S603 - a fixed tool and a file we wrote
            [tool, "check", "rules", str(path)],
            capture_output=True,
            text=True,
            timeout=PROMTOOL_TIMEOUT,
            check=False,
        )
    return done.returncode == 0, (done.stdout + done.stderr).strip()


# Unit tests.


def unit_tests(rules: Sequence[AlertRule], rule_file: str) -> dict[str, Any]:
    """Return a promtool unit test file for `rules`, written to `rule_file`."""
    tests = []
    for rule in rules:
        tests.extend(_cases(rule))
    return {
        "rule_files": [rule_file],
        "evaluation_interval": "1m",
        "tests": tests,
    }


def _cases(rule: AlertRule) -> list[dict[str, Any]]:
    definition = rule.definition
    histogram = definition.kind == Kind.HISTOGRAM
    labels = {
        key: alerts.naming_text(v) for key, v in (rule.label_filter or {}).items()
    }
    for key in alerts.by_labels(rule):
        labels.setdefault(key, "a")
    family, sample = naming.exported_names(
        definition.name, definition.kind, definition.unit
    )
    minutes = math.ceil(rule.for_duration / _STEP) + 2
    rule_labels = {"severity": rule.severity, alerts.DEFINITION_LABEL: definition.name}
    if rule.operator == Operator.ABSENT:
        present = _series(histogram, family, sample, labels, 1.0, rule, minutes)
        absent_labels = {
            k: alerts.naming_text(v) for k, v in (rule.label_filter or {}).items()
        }
        missing = [
            {
                "series": 'metricdemo_unit_test{job="other"}',
                "values": _values(1, minutes),
            }
        ]
        cases = [_case(rule, present, minutes, [])]
        try:
            # absent() is 1 where nothing matches.
            fired = [({**absent_labels, **rule_labels}, 1.0)]
            cases.insert(0, _case(rule, missing, minutes, fired))
        except ValueError:
            pass  # an annotation only Prometheus can render; see _cases below
        return cases
    meets, misses = _values_for(rule, histogram, definition)
    cases = []
    if misses is not None:
        series = _series(histogram, family, sample, labels, misses, rule, minutes)
        cases.append(_case(rule, series, minutes, []))
    if meets is not None:
        series = _series(histogram, family, sample, labels, meets, rule, minutes)
        value = meets.quantile(rule.quantile) if histogram else meets
        if rule.aggregation == "count":
            value = 1.0
        expected = (
            labels
            if not rule.aggregation
            else {key: labels[key] for key in alerts.by_labels(rule)}
        )
        try:
            cases.append(
                _case(rule, series, minutes, [({**expected, **rule_labels}, value)])
            )
        except ValueError:
            # An annotation uses template functions rendered here only by
            # Prometheus: the firing case cannot say what to expect.
            pass
        if rule.for_duration >= _STEP:
            # Met for less than `for`: pending, not firing.
            cases.append(_case(rule, series, 0, []))
    return cases


def _values_for(rule: AlertRule, histogram: bool, definition) -> tuple[Any, Any]:  # noqa: ANN001
    """Return (a value that meets the condition, one that does not); None if none."""
    compare = alerts.COMPARE[Operator(rule.operator)]
    threshold = float(rule.threshold)
    if histogram:
        bounds = [float(b) for b in definition.buckets]
        candidates = []
        for index in range(len(bounds) + 1):
            cumulative = tuple(0 if i < index else 100 for i in range(len(bounds)))
            candidates.append(Distribution(tuple(bounds), cumulative, 100, 100.0))
        meets = next(
            (d for d in candidates if compare(d.quantile(rule.quantile), threshold)),
            None,
        )
        misses = next(
            (
                d
                for d in candidates
                if not compare(d.quantile(rule.quantile), threshold)
            ),
            None,
        )
        return meets, misses
    if rule.aggregation == "count":
        # One series: the count is 1.
        return (1.0, None) if compare(1.0, threshold) else (None, 1.0)
    candidates = [threshold + 1, threshold - 1, threshold]
    meets = next((v for v in candidates if compare(v, threshold)), None)
    misses = next((v for v in candidates if not compare(v, threshold)), None)
    return meets, misses


def _series(histogram, family, sample, labels, value, rule, minutes) -> list[dict]:  # noqa: ANN001, PLR0913
    if not histogram:
        return [
            {
                "series": alerts.selector(sample, labels),
                "values": _values(value, minutes),
            }
        ]
    found = []
    distribution = value if isinstance(value, Distribution) else None
    bounds = (
        distribution.bounds
        if distribution
        else tuple(float(b) for b in rule.definition.buckets)
    )
    counts = distribution.cumulative if distribution else (1,) * len(bounds)
    total = distribution.count if distribution else 1
    for bound, count in (*zip(bounds, counts, strict=True), (math.inf, total)):
        le = "+Inf" if bound == math.inf else naming_le(bound)
        found.append(
            {
                "series": alerts.selector(family + "_bucket", {**labels, "le": le}),
                "values": _values(count, minutes),
            }
        )
    found.append(
        {
            "series": alerts.selector(family + "_count", labels),
            "values": _values(total, minutes),
        }
    )
    return found


def naming_le(bound: float) -> str:
    """Return a bucket bound as /metrics writes its le label."""
    return format_value(bound)


def _values(value: float, minutes: int) -> str:
    return f"{alerts.number(value)}x{max(minutes, 1)}"


def _case(rule, series, minutes, alerts_expected) -> dict[str, Any]:  # noqa: ANN001
    expected = []
    for labels, value in alerts_expected:
        item: dict[str, Any] = {"exp_labels": labels}
        annotations = _annotations(rule, labels, value)
        if annotations:
            item["exp_annotations"] = annotations
        expected.append(item)
    return {
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [
            {
                "eval_time": f"{max(minutes, 1)}m" if minutes else "0m",
                "alertname": rule.name,
                "exp_alerts": expected,
            }
        ],
    }


def _annotations(rule: AlertRule, labels: Mapping[str, str], value: Any) -> dict:
    found = {}
    for field in ("summary", "description", "runbook_url"):
        text = getattr(rule, field)
        if text:
            found[field] = render(text, labels, value)
    return found


def render(text: str, labels: Mapping[str, str], value: Any) -> str:
    """Render the common Prometheus templates as Prometheus would.

    `$value`/`.Value` (optionally piped to humanize, humanizeDuration or
    humanizePercentage) and `$labels.x`/`.Labels.x`.

    Raises:
        ValueError: the template uses more (other functions, control flow).
    """

    def action(match: Any) -> str:
        inner = match.group(1).strip()
        subject, _bar, function = (part.strip() for part in inner.partition("|"))
        if subject in ("$value", ".Value"):
            number = 0.0 if value is None else float(value)
            if not function:
                return go_float(number)
            if function in HUMANIZE:
                return HUMANIZE[function](number)
        elif not function:
            for prefix in ("$labels.", ".Labels."):
                if subject.startswith(prefix):
                    return str(labels.get(subject[len(prefix) :], "<no value>"))
        raise ValueError(inner)

    return _ACTION_RE.sub(action, text)


def _small(v: float, unit: str) -> str:
    prefix = ""
    for step in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix = step
        v *= 1000
    return f"{v:.4g}{prefix}{unit}"


def humanize(v: float) -> str:
    """Return Prometheus's humanize: 1.234k, 12.5M, 250m."""
    if v == 0 or math.isnan(v) or math.isinf(v):
        return f"{v:.4g}"
    if abs(v) < 1:
        return _small(v, "")
    prefix = ""
    for step in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
        if abs(v) < 1000:
            break
        prefix = step
        v /= 1000
    return f"{v:.4g}{prefix}"


def humanize_duration(v: float) -> str:
    """Return Prometheus's humanizeDuration: 1d 2h 3m 4s, 2m 5s, 1.5s, 250ms."""
    if math.isnan(v) or math.isinf(v):
        return f"{v:.4g}"
    if v == 0:
        return f"{v:.4g}s"
    if abs(v) < 1:
        return _small(v, "s")
    sign = "-" if v < 0 else ""
    v = abs(v)
    whole = int(v)
    seconds, minutes = whole % 60, (whole // 60) % 60
    hours, days = (whole // 3600) % 24, whole // 86400
    if days:
        return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
    if hours:
        return f"{sign}{hours}h {minutes}m {seconds}s"
    if minutes:
        return f"{sign}{minutes}m {seconds}s"
    return f"{sign}{v:.4g}s"


def humanize_percentage(v: float) -> str:
    """Return Prometheus's humanizePercentage: 0.256 gives 25.6%."""
    return f"{v * 100:.4g}%"


HUMANIZE = {
    "humanize": humanize,
    "humanizeDuration": humanize_duration,
    "humanizePercentage": humanize_percentage,
}


_ACTION_RE = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")


def go_float(value: float) -> str:
    """Return a float as Go's fmt prints it (%v): shortest digits, e-notation
    when the exponent is below -4 or at least 6 (1e+06, 123456, 0.0001).
    """
    value = float(value)
    if value != value:
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    power = f"{abs(value):e}".partition("e")[2]
    exp = int(power)
    shortest = repr(abs(value))
    head = shortest.partition("e")[0]
    digits = head.replace(".", "").lstrip("0").rstrip("0") or "0"
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'+' if exp >= 0 else '-'}{abs(exp):02d}"
    text = shortest if "e" not in shortest else f"{abs(value):f}".rstrip("0")
    if text.endswith(".0"):
        text = text[:-2]
    text = text.rstrip(".")
    return sign + text
