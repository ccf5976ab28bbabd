"""Translate OpenTelemetry names into Prometheus names, and escape them per format.

Two steps, as OpenTelemetry's Prometheus compatibility specification and
Prometheus 3 divide them:

- the *translation strategy* (``METRICDEMO["NAME_TRANSLATION"]``) turns an
  instrument's name, unit and kind, and an attribute's key, into the metric
  and label names the app would like to serve: escaped to the classic
  character set or not, with the unit and ``_total`` suffixes or not;
- the *escaping scheme* the scraper asked for (``allow-utf-8``,
  ``underscores``, ``dots``, ``values``) decides how a name outside the
  classic character set is written: quoted, or escaped by Prometheus's rules.

The default strategy, ``UnderscoreEscapingWithSuffixes``, writes the names
opentelemetry-exporter-prometheus wrote: every run of characters outside
``[a-zA-Z0-9:]`` becomes one ``_``, a leading digit becomes ``_``, the unit
becomes a suffix and a counter ends in ``_total``.
"""

from __future__ import annotations

import functools
import re

UNDERSCORE_ESCAPING_WITH_SUFFIXES = "UnderscoreEscapingWithSuffixes"
UNDERSCORE_ESCAPING_WITHOUT_SUFFIXES = "UnderscoreEscapingWithoutSuffixes"
NO_UTF8_ESCAPING_WITH_SUFFIXES = "NoUTF8EscapingWithSuffixes"
NO_TRANSLATION = "NoTranslation"
#: The translation strategies, the default first.
STRATEGIES = (
    UNDERSCORE_ESCAPING_WITH_SUFFIXES,
    UNDERSCORE_ESCAPING_WITHOUT_SUFFIXES,
    NO_UTF8_ESCAPING_WITH_SUFFIXES,
    NO_TRANSLATION,
)
DEFAULT_STRATEGY = UNDERSCORE_ESCAPING_WITH_SUFFIXES


def strategy_of(setting: object) -> str:
    """Return the strategy a NAME_TRANSLATION setting names; the default if none.

    The system check (metricdemo.E034) reports a value that names none.
    """
    return setting if setting in STRATEGIES else DEFAULT_STRATEGY  # type: ignore[return-value]


ALLOW_UTF8 = "allow-utf-8"
UNDERSCORES = "underscores"
DOTS = "dots"
VALUES = "values"
#: Prometheus's escaping schemes, as the `escaping` parameter names them.
ESCAPINGS = (ALLOW_UTF8, UNDERSCORES, DOTS, VALUES)

#: The names a family of each type takes in an exposition: its own name plus
#: these suffixes (OpenMetrics refuses a second family that takes one of them).
TYPE_SUFFIXES: dict[str, tuple[str, ...]] = {
    "counter": ("_total", "_created"),
    "summary": ("_count", "_sum", "_created"),
    "histogram": ("_count", "_sum", "_bucket", "_created"),
    "gaugehistogram": ("_gcount", "_gsum", "_bucket"),
    "info": ("_info",),
}

_INVALID_NAME_RUN = re.compile(r"[^a-zA-Z0-9:]+")
_INVALID_LABEL_RUN = re.compile(r"[^a-zA-Z0-9]+")
_UNIT_ANNOTATION = re.compile(r"{.*}")
_LEGACY_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LEGACY_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

# The specification's unit words (UCUM unit -> Prometheus suffix).
_UNITS = {
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "TiBy": "tibibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "TBy": "terabytes",
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    "Cel": "celsius",
    "Hz": "hertz",
    "1": "",
    "%": "percent",
}
_PER_UNITS = {
    "s": "second",
    "m": "minute",
    "h": "hour",
    "d": "day",
    "w": "week",
    "mo": "month",
    "y": "year",
}


@functools.lru_cache(maxsize=4096)
def taken_by_family(family: str, family_type: str) -> frozenset[str]:
    """Return every name a family of this type takes, samples and metadata included."""
    return frozenset(
        (family, *(family + suffix for suffix in TYPE_SUFFIXES.get(family_type, ())))
    )


def sanitize_name(name: str) -> str:
    """Return `name` with each run of characters outside [a-zA-Z0-9:] made one '_'.

    A leading digit becomes '_' too.
    """
    if name and name[0].isdigit():
        name = "_" + name[1:]
    return _INVALID_NAME_RUN.sub("_", name)


def sanitize_label(key: str) -> str:
    """Return the label name an attribute key becomes when escaped to underscores."""
    if key and key[0].isdigit():
        key = "_" + key[1:]
    return _INVALID_LABEL_RUN.sub("_", key)


@functools.lru_cache(maxsize=1024)
def unit_suffix(unit: str) -> str:
    """Return the name suffix of an OpenTelemetry (UCUM) unit, '' for none.

    Annotations in braces are dropped (`{order}` has no suffix), `s` becomes
    `seconds`, `By` `bytes`, `%` `percent`, `1` nothing, and `a/b` becomes
    `a_per_b` with the time units spelled in the singular (`m/s` is
    `meters_per_second`).
    """
    unit = _UNIT_ANNOTATION.sub("", unit)
    if unit in _UNITS:
        return _UNITS[unit]
    top, slash, bottom = unit.partition("/")
    if slash:
        bottom = _INVALID_NAME_RUN.sub("_", bottom)
        if bottom:
            top = _INVALID_NAME_RUN.sub("_", top)
            top = _UNITS.get(top, top)
            bottom = _PER_UNITS.get(bottom, bottom)
            return f"{top}_per_{bottom}" if top else f"per_{bottom}"
    return _INVALID_NAME_RUN.sub("_", unit).strip("_")


def escapes_to_underscores(strategy: str) -> bool:
    """Return whether `strategy` rewrites names to the classic character set."""
    return strategy in (
        UNDERSCORE_ESCAPING_WITH_SUFFIXES,
        UNDERSCORE_ESCAPING_WITHOUT_SUFFIXES,
    )


def adds_suffixes(strategy: str) -> bool:
    """Return whether `strategy` appends unit and `_total` suffixes."""
    return strategy in (
        UNDERSCORE_ESCAPING_WITH_SUFFIXES,
        NO_UTF8_ESCAPING_WITH_SUFFIXES,
    )


@functools.lru_cache(maxsize=4096)
def family_name(name: str, unit: str, counter: bool, strategy: str) -> tuple[str, str]:
    """Return (family name, unit word) for an instrument under `strategy`.

    The unit word is what an OpenMetrics `# UNIT` line states: '' when the
    name does not end with it (a strategy without suffixes, or no unit).
    A counter's samples add `_total` to the family name (see sample_suffix).
    """
    family = sanitize_name(name) if escapes_to_underscores(strategy) else name
    if not adds_suffixes(strategy):
        return family, ""
    if counter and family.endswith("_total"):
        family = family[: -len("_total")]
    suffix = unit_suffix(unit or "")
    # The escaped name is judged as the exporter judged it; a name kept as it
    # is, as Prometheus's own translator does (`queue.bytes` keeps its name).
    ending = "_" + suffix if escapes_to_underscores(strategy) else suffix
    if suffix and not family.endswith(ending):
        family = f"{family}_{suffix}"
    return family, suffix


def label_name(key: str, strategy: str) -> str:
    """Return the label name of an attribute key under `strategy`."""
    return sanitize_label(key) if escapes_to_underscores(strategy) else key


def is_legacy_metric_name(name: str) -> bool:
    """Return whether `name` needs no quoting or escaping in any format."""
    return _LEGACY_METRIC_NAME.fullmatch(name) is not None


def is_legacy_label_name(name: str) -> bool:
    """Return whether the label name `name` needs no quoting or escaping.

    Names that start with `__` are reserved to Prometheus: written quoted (or
    escaped), a scraper reads them as what they are, not as its own.
    """
    return _LEGACY_LABEL_NAME.fullmatch(name) is not None and not name.startswith("__")


def quote(text: str) -> str:
    """Return `text` with backslash, newline and double quote escaped."""
    if "\\" in text or "\n" in text or '"' in text:
        text = text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return text


@functools.lru_cache(maxsize=4096)
def escape_metric_name(name: str, escaping: str) -> str:
    """Return `name` as written under `escaping` (quoted for allow-utf-8 if it must be).

    The rules are Prometheus's (model.EscapeName): `underscores` and `values`
    leave a classic name alone, `dots` always doubles underscores.
    """
    return _escape(name, escaping, metric=True)


@functools.lru_cache(maxsize=4096)
def escape_label_name(name: str, escaping: str) -> str:
    """Return the label name `name` as written under `escaping`."""
    return _escape(name, escaping, metric=False)


@functools.lru_cache(maxsize=4096)
def suffixed(family: str, suffix: str, escaping: str) -> str:
    """Return a family's sample name with `suffix` (`_total`, `_bucket`), as written.

    As Prometheus's own encoders do, the family name is escaped and the
    suffix appended, so that a parser still finds the family in the sample
    name (`a__b_bucket` under dots, which Prometheus reads as a_b_bucket).
    A quoted UTF-8 name is quoted whole.
    """
    if escaping == ALLOW_UTF8:
        return escape_metric_name(family + suffix, escaping)
    return escape_metric_name(family, escaping) + suffix


def _escape(name: str, escaping: str, *, metric: bool) -> str:
    legacy = is_legacy_metric_name if metric else is_legacy_label_name
    if not name:
        return name
    if escaping == ALLOW_UTF8:
        return name if legacy(name) else f'"{quote(name)}"'
    if escaping != DOTS and legacy(name):
        return name
    out = ["U__"] if escaping == VALUES else []
    for i, char in enumerate(name):
        valid = _legacy_rune(char, i, metric)
        if escaping == UNDERSCORES:
            out.append(char if valid else "_")
        elif escaping == DOTS:
            if char == "_":
                out.append("__")
            elif char == ".":
                out.append("_dot_")
            else:
                out.append(char if valid else "__")
        elif char == "_":
            out.append("__")
        elif valid:
            out.append(char)
        elif 0xD800 <= ord(char) <= 0xDFFF:
            out.append("_FFFD_")
        else:
            out.append(f"_{ord(char):x}_")
    return "".join(out)


def _legacy_rune(char: str, index: int, metric: bool) -> bool:
    return (
        ("a" <= char <= "z")
        or ("A" <= char <= "Z")
        or char == "_"
        or ("0" <= char <= "9" and index > 0)
        or (metric and char == ":")
    )
