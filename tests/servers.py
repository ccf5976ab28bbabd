"""Start real servers (gunicorn, metrics serve) on free local ports for tests."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.processes import ROOT, http_get, run_django


def get(url: str, timeout: float = 30) -> tuple[int, str]:
    """GET `url`; return the status and the decoded body, also for error statuses."""
    status, body = http_get(url, timeout=timeout)
    return status, body.decode()


def demo_database(directory: Path) -> str:
    """Create a migrated SQLite database with the demo definitions; return its URL."""
    url = f"sqlite:///{directory / 'demo.sqlite3'}"
    run_django(
        "from django.core.management import call_command\n"
        "call_command('migrate', verbosity=0)\n"
        "call_command('load_demo_metrics', verbosity=0)\n",
        settings="metricsite.settings",
        db_url=url,
    )
    return url


def server_env(db_url: str, **extra: str) -> dict[str, str]:
    """Return the environment of a demo server process."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "metricsite.settings",
        "DATABASE_URL": db_url,
        "PYTHONPATH": str(ROOT),
        **extra,
    }


@contextmanager
def running(args: list[str], env: dict[str, str], url: str) -> Iterator[str]:
    """Run a server until the block ends; wait (at most 60 s) until `url` answers."""
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                log.seek(0)
                output = log.read().decode()
                raise AssertionError(f"{args[0]} exited early:\n{output}")
            try:
                get(url, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{url} did not answer within 60 s") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.seek(0)
        # Shown by pytest when the test fails.
        print(log.read().decode(errors="replace")[-20000:])
        log.close()


def gunicorn_args() -> list[str]:
    """Return the command that starts gunicorn with the demo's config."""
    return [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")]


def manage_args(*args: str) -> list[str]:
    """Return the command that runs manage.py with `args`."""
    return [sys.executable, str(ROOT / "manage.py"), *args]
