"""The demo's ASGI application with one more callback that waits to be released.

tests/integration/test_asgi.py serves this module with uvicorn. The callback
`tests.wait` touches `started` in the directory METRICDEMO_TEST_GATE names, then waits
until `release` appears there, so a test decides when a scrape may end.
"""

import os
import time
from pathlib import Path

from metricdemo import register_callback
from metricsite.asgi import application

__all__ = ["application"]

#: How long the callback waits for its release at most, so a failing test
#: cannot leave a scrape hanging.
LONGEST_WAIT = 60.0


def wait_for_release() -> float:
    """Say the evaluation started, then wait until the test releases it."""
    gate = Path(os.environ["METRICDEMO_TEST_GATE"])
    (gate / "started").touch()
    deadline = time.monotonic() + LONGEST_WAIT
    while not (gate / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return 1.0


register_callback("tests.wait", wait_for_release, description="waits for the test")
