"""Share the values of definitions with cache_seconds through a Django cache."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.core.cache import caches

from metricdemo import outages
from metricdemo.conf import app_settings
from metricdemo.models import MetricDefinition
from metricdemo.observations import Observations
from metricdemo.values.fingerprint import fingerprint

logger = logging.getLogger("metricdemo")


def cache_key(definition: MetricDefinition) -> str:
    """Return the cache key of a definition's value; any edit changes it."""
    return f"metricdemo:value:{fingerprint(definition)}"


def read(
    definitions: Sequence[MetricDefinition], deadline: float | None = None
) -> dict[int, Observations]:
    """Return the cached observations of the definitions that cache, by index.

    Waits for the cache no longer than `deadline` (see outages). Logs, once,
    that the cache cannot be used, and that it works again.
    """
    keys = {
        i: cache_key(d)
        for i, d in enumerate(definitions)
        if getattr(d, "cache_seconds", 0)
    }
    if not keys:
        return {}
    found = _cache_call(lambda cache: cache.get_many(list(keys.values())), {}, deadline)
    return {
        i: [(value, dict(attrs)) for value, attrs in found[key]]
        for i, key in keys.items()
        if key in found
    }


def write(
    values: Iterable[tuple[MetricDefinition, Observations]],
    deadline: float | None = None,
) -> None:
    """Store fresh observations of the definitions that cache, each for its time.

    Waits for the cache no longer than `deadline` (see outages). Logs, once,
    that the cache cannot be used, and that it works again.
    """
    by_lifetime: dict[int, dict[str, Observations]] = {}
    for definition, observations in values:
        seconds = getattr(definition, "cache_seconds", 0)
        if seconds:
            by_lifetime.setdefault(seconds, {})[cache_key(definition)] = observations
    for seconds, entries in by_lifetime.items():
        _cache_call(
            lambda cache, v=entries, s=seconds: cache.set_many(v, timeout=s),
            None,
            deadline,
        )


#: Cache backends in this process, which cannot leave a scrape waiting.
IN_PROCESS = frozenset(
    {
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.dummy.DummyCache",
    }
)

_cache_failed = False


def _cache_call(
    call: Callable[[Any], Any], fallback: Any, deadline: float | None
) -> Any:
    # An unreachable cache must not fail the scrape: evaluate instead.
    global _cache_failed
    alias = app_settings.CACHE
    try:
        if caches.settings[alias]["BACKEND"] in IN_PROCESS:
            result = call(caches[alias])
        else:
            # A cache server that does not answer is left behind (and logged
            # once by outages); the scrape evaluates instead.
            result = outages.services().call(
                outages.cache(alias), lambda: call(caches[alias]), deadline
            )
    except outages.Unanswered:
        return fallback
    except Exception as exc:  # noqa: BLE001
        if not _cache_failed:
            logger.warning(
                "The metricdemo cache cannot be used: %s: %s", type(exc).__name__, exc
            )
        _cache_failed = True
        return fallback
    if _cache_failed:
        logger.info("The metricdemo cache works again.")
    _cache_failed = False
    return result
