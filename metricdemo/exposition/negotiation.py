"""Choose the exposition format and name escaping from a scrape's Accept header.

Prometheus 3 sends, for example::

    application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,
    application/openmetrics-text;version=0.0.1;q=0.4,
    text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,
    text/plain;version=0.0.4;q=0.2,*/*;q=0.1

The entries are tried by falling quality (ties in the order given); the first
format this app writes wins. A header that names none of them, or that cannot
be read, gets the classic text format (0.0.4) with names escaped to
underscores, what a scraper that asks nothing has always received: never an
error, so that no old scraper breaks.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from metricdemo.exposition.names import ALLOW_UTF8, ESCAPINGS, UNDERSCORES

TEXT_0_0_4 = "text-0.0.4"
TEXT_1_0_0 = "text-1.0.0"
OPENMETRICS_1_0_0 = "openmetrics-1.0.0"

_CONTENT_TYPES = {
    TEXT_0_0_4: "text/plain; version=0.0.4; charset=utf-8",
    TEXT_1_0_0: "text/plain; version=1.0.0; charset=utf-8",
    OPENMETRICS_1_0_0: "application/openmetrics-text; version=1.0.0; charset=utf-8",
}
# Versions of each media type this app can answer, by what it answers with.
# OpenMetrics 0.0.1 (Prometheus 2 still asks for it) is written as 1.0.0,
# which every reader of 0.0.1 parses.
_OPENMETRICS_VERSIONS = {
    "": OPENMETRICS_1_0_0,
    "1.0.0": OPENMETRICS_1_0_0,
    "0.0.1": OPENMETRICS_1_0_0,
}
_TEXT_VERSIONS = {"": TEXT_0_0_4, "0.0.4": TEXT_0_0_4, "1.0.0": TEXT_1_0_0}
#: A header may not make the server read more entries than this.
MAX_ENTRIES = 32


@dataclass(frozen=True)
class Negotiated:
    """The format and escaping a scrape is answered with."""

    format: str
    escaping: str

    @property
    def content_type(self) -> str:
        """Return the Content-Type header, stating the format and the escaping."""
        return f"{_CONTENT_TYPES[self.format]}; escaping={self.escaping}"

    @property
    def openmetrics(self) -> bool:
        return self.format == OPENMETRICS_1_0_0


DEFAULT = Negotiated(TEXT_0_0_4, UNDERSCORES)


@functools.lru_cache(maxsize=256)
def negotiate(accept: str | None) -> Negotiated:
    """Return the format and escaping to answer a scrape with this Accept header."""
    candidates = []
    for position, entry in enumerate((accept or "").split(",")[:MAX_ENTRIES]):
        media_type, params = _parse_entry(entry)
        quality = _quality(params.get("q", "1"))
        if quality is None or quality <= 0:
            continue
        candidates.append((-quality, position, media_type, params))
    for _quality_key, _position, media_type, params in sorted(candidates):
        version = params.get("version", "")
        if media_type == "application/openmetrics-text":
            chosen = _OPENMETRICS_VERSIONS.get(version)
        elif media_type == "text/plain":
            chosen = _TEXT_VERSIONS.get(version)
        elif media_type in ("*/*", "text/*"):
            chosen = TEXT_0_0_4
        else:
            chosen = None
        if chosen is None:
            continue
        escaping = params.get("escaping", UNDERSCORES)
        if escaping not in ESCAPINGS:
            escaping = UNDERSCORES
        if chosen == TEXT_0_0_4 and escaping == ALLOW_UTF8:
            # The classic text format cannot quote a name.
            escaping = UNDERSCORES
        return Negotiated(chosen, escaping)
    return DEFAULT


def gzip_accepted(accept_encoding: str | None) -> bool:
    """Return whether an Accept-Encoding header accepts gzip."""
    for entry in (accept_encoding or "").split(",")[:MAX_ENTRIES]:
        coding, params = _parse_entry(entry)
        if coding == "gzip":
            quality = _quality(params.get("q", "1"))
            return quality is not None and quality > 0
    return False


def _parse_entry(entry: str) -> tuple[str, dict[str, str]]:
    media_type, *parts = entry.split(";")
    params = {}
    for part in parts:
        key, equals, value = part.partition("=")
        if equals:
            params[key.strip().lower()] = value.strip().strip('"')
    return media_type.strip().lower(), params


def _quality(raw: str) -> float | None:
    try:
        quality = float(raw)
    except ValueError:
        return None
    return quality if 0 <= quality <= 1 else None
