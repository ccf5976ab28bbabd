"""Settings for the test suite: the demo project plus a small shop app to count."""

import os
import tempfile
from pathlib import Path

from metricsite.settings import *  # noqa: F403
from metricsite.settings import DATABASES, INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.shop.apps.ShopConfig"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file rather than memory, so that another process can open the test
    # database; named after the pytest process so parallel runs do not meet.
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("METRICDEMO_TEST_DB")
        or str(Path(tempfile.gettempdir()) / f"metricdemo-tests-{os.getpid()}.sqlite3")
    }

if os.environ.get("METRICDEMO_TEST_CACHE_DIR"):
    # A cache shared by several processes, as Redis would be in production.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": os.environ["METRICDEMO_TEST_CACHE_DIR"],
        }
    }

ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"metricdemo": {"level": "INFO", "propagate": True}},
}
