"""Say on stderr what the benchmark is measuring, timed from the start of the run."""

from __future__ import annotations

import sys
import time

_STARTED = time.monotonic()


def progress(message: str) -> None:
    """Say what is being measured, on stderr, so a long run shows it is alive."""
    elapsed = time.monotonic() - _STARTED
    print(f"[bench {elapsed:5.1f} s] {message}", file=sys.stderr, flush=True)
