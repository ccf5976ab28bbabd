"""Start real servers (gunicorn, metrics serve) on free local ports for tests."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.processes import ROOT, django_env, http_get, run_django, serving


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


def set_value(db_url: str, name: str, value: float) -> None:
    """Change a stored definition's value from another process, as an operator would."""
    run_django(
        "from metricdemo.models import MetricDefinition\n"
        f"d = MetricDefinition.objects.get(name={name!r})\n"
        f"d.value = {value!r}\n"
        "d.full_clean()\n"
        "d.save()\n",
        settings="metricsite.settings",
        db_url=db_url,
    )


def server_env(db_url: str, **extra: str) -> dict[str, str]:
    """Return the environment of a demo server process on `db_url`."""
    return django_env(settings="metricsite.settings", db_url=db_url, env=extra)


@contextmanager
def running(args: list[str], env: dict[str, str], url: str) -> Iterator[str]:
    """Run a server until the block ends, once `url` answers (at most 60 s)."""
    with tempfile.TemporaryDirectory() as directory:
        log = Path(directory) / "server.log"
        try:
            with serving(args, ready_url=url, log=log, env=env, any_status=True):
                yield url
        finally:
            # Shown by pytest when the test fails.
            print(log.read_text(errors="replace")[-20000:])


def gunicorn_args() -> list[str]:
    """Return the command that starts gunicorn with the demo's config."""
    return [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py")]


def manage_args(*args: str) -> list[str]:
    """Return the command that runs manage.py with `args`."""
    return [sys.executable, str(ROOT / "manage.py"), *args]


def uvicorn_args(app: str, port: int) -> list[str]:
    """Return the command that serves the ASGI application `app` with uvicorn."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        app,
    ]
