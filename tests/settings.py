"""Settings for the test suite: the demo project plus a small shop app to count."""

import os
import tempfile
from pathlib import Path

from metricsite.settings import *  # noqa: F403
from metricsite.settings import CACHES, DATABASES, INSTALLED_APPS, METRICDEMO

INSTALLED_APPS = [*INSTALLED_APPS, "tests.shop.apps.ShopConfig"]

# Test databases and cache keys are named after the pytest process, so that
# runs in parallel against the same servers do not meet. Subprocesses started
# by a test inherit the environment and so share the test's cache keys.
os.environ.setdefault("METRICDEMO_TEST_RUN", str(os.getpid()))
_RUN = os.environ["METRICDEMO_TEST_RUN"]
# pytest-xdist's workers inherit the run name from the controller, and their
# subprocesses inherit PYTEST_XDIST_WORKER. pytest-django gives each worker its
# own test database (it appends "_gw0" and so on to TEST NAME, the SQLite file
# included); the cache keys need the worker's id here.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")

if DATABASES["default"]["ENGINE"].endswith(".sqlite3"):
    # A file rather than memory, so that another process can open the test
    # database.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("METRICDEMO_TEST_DB")
        or str(Path(tempfile.gettempdir()) / f"metricdemo-tests-{_RUN}.sqlite3")
    }
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_metricdemo_{_RUN}"}

CACHES["default"]["KEY_PREFIX"] = "-".join(
    filter(None, ["metricdemo-tests", _RUN, _WORKER])
)

if os.environ.get("METRICDEMO_TEST_CACHE_DIR"):
    # A cache shared by several processes, as Redis would be in production.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": os.environ["METRICDEMO_TEST_CACHE_DIR"],
        }
    }

# Tests refresh scheduled definitions by calling the refresher themselves; a
# server a test starts turns it on with METRICDEMO_REFRESH=1.
METRICDEMO = {**METRICDEMO, "REFRESH": False}
# No value history unless a test asks for it: its writer runs once a minute,
# on whichever test scrapes then. A server a test starts turns it on with
# METRICDEMO_TEST_HISTORY_INTERVAL.
METRICDEMO["HISTORY_INTERVAL"] = int(
    os.environ.get("METRICDEMO_TEST_HISTORY_INTERVAL") or 0
)
if os.environ.get("METRICDEMO_TEST_SCRAPE_TIMEOUT"):
    # A server a test starts with a short budget, to see it hold.
    METRICDEMO["SCRAPE_TIMEOUT"] = float(os.environ["METRICDEMO_TEST_SCRAPE_TIMEOUT"])

ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"metricdemo": {"level": "INFO", "propagate": True}},
}
