"""Settings of the benchmark: the demo project, the bench's shop and its own databases.

The runner names the SQLite file in METRICDEMO_BENCH_SQLITE and creates it; a
database named by DATABASE_URL becomes a second alias, ``url``, in which the
runner creates and drops a throwaway database for the row-count measurements.
Every SQLite file goes in the temporary directory, never the working one.
"""

import os
import tempfile
from pathlib import Path

from metricsite.settings import *  # noqa: F403
from metricsite.settings import INSTALLED_APPS, database_settings

# DEBUG would keep every statement in memory and slow each query down.
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
INSTALLED_APPS = [*INSTALLED_APPS, "bench.shop.apps.BenchShopConfig"]

# A relative name would be a file in the working directory, which is the
# repository; joined to the temporary directory it lands there instead (an
# absolute path, as the runner passes, is kept).
_SQLITE = str(
    Path(tempfile.gettempdir())
    / (
        os.environ.get("METRICDEMO_BENCH_SQLITE")
        or f"metricdemo-bench-{os.getpid()}.sqlite3"
    )
)
DATABASES = {"default": database_settings(None)}
DATABASES["default"]["NAME"] = _SQLITE
DATABASES["default"]["TEST"] = {"NAME": _SQLITE}
if os.environ.get("DATABASE_URL", "").strip():
    DATABASES["url"] = database_settings(os.environ["DATABASE_URL"])
    DATABASES["url"]["TEST"] = {"NAME": f"metricdemo_bench_{os.getpid()}"}
    if DATABASES["url"]["ENGINE"].endswith(".sqlite3"):
        # On SQLite both names are files, a relative one in the working
        # directory: the throwaway database goes beside the default one.
        _URL_SQLITE = str(Path(_SQLITE).with_name(f"url-{Path(_SQLITE).name}"))
        DATABASES["url"]["NAME"] = _URL_SQLITE
        DATABASES["url"]["TEST"] = {"NAME": _URL_SQLITE}

# Every model reads and writes the database the runner is measuring.
DATABASE_ROUTERS = ["bench.routers.ActiveDatabaseRouter"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"metricdemo": {"handlers": ["console"], "level": "WARNING"}},
}

# The benchmark times evaluations that may take minutes (a million-row table),
# not the scrape budget, so each definition may wait as long as it needs.
METRICDEMO = {**globals().get("METRICDEMO", {}), "SCRAPE_TIMEOUT": 300.0}
