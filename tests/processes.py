"""Run Python in another process against the test database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
# By the last part of ENGINE, so that Django's backends and django-prometheus's
# wrappers of them (django_prometheus.db.backends.*) map alike.
SCHEMES = {"sqlite3": "sqlite", "postgresql": "postgres", "mysql": "mysql"}


def database_url(settings_dict: dict | None = None) -> str:
    """Return a DATABASE_URL for the database the tests are using now."""
    settings_dict = settings_dict or connection.settings_dict
    scheme = SCHEMES[settings_dict["ENGINE"].rsplit(".", 1)[-1]]
    if scheme == "sqlite":
        return f"sqlite:///{settings_dict['NAME']}"
    user = quote(settings_dict.get("USER") or "")
    password = quote(settings_dict.get("PASSWORD") or "")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "localhost"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"{scheme}://{credentials}{host}{port}/{settings_dict['NAME']}"


def run_django(
    code: str, *, settings: str = "tests.settings", db_url: str | None = None
) -> subprocess.CompletedProcess:
    """Run `code` after django.setup() in a new interpreter; fail on a non-zero exit."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings,
        "DATABASE_URL": db_url or database_url(),
        "PYTHONPATH": str(ROOT),
        "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
    }
    script = "import django\ndjango.setup()\n" + code
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result
