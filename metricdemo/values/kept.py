"""Keep each definition's last good value in this process, for batches that overran."""

from __future__ import annotations

import time
from typing import Any

from metricdemo.observations import Observations


class KeptValues:
    """Hold the last good value of each definition, by key, for one evaluator."""

    def __init__(self) -> None:
        #: {key: (version, observations, Unix time)} of the last success.
        self._values: dict[Any, tuple[Any, Observations, float]] = {}

    def remember(self, key: Any, version: Any, observations: Observations) -> None:
        """Keep `observations` as the value of `version`, computed now."""
        self._values[key] = (version, observations, time.time())

    def get(self, key: Any, version: Any) -> tuple[Observations, float] | None:
        """Return (observations, Unix time computed) kept for `version`, or None."""
        found = self._values.get(key)
        # A value computed before the definition was edited is not its value.
        if found is None or found[0] != version:
            return None
        return found[1], found[2]
