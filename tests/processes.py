"""Run Python and servers in other processes against the test database."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar
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


def django_env(
    *,
    settings: str = "tests.settings",
    db_url: str | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, str]:
    """Return the environment of a Django process on the test database."""
    return {
        **os.environ,
        **(env or {}),
        "DJANGO_SETTINGS_MODULE": settings,
        "DATABASE_URL": db_url or database_url(),
        "PYTHONPATH": str(ROOT),
        "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
    }


def run_django(
    code: str,
    *,
    settings: str = "tests.settings",
    db_url: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run `code` after django.setup() in a new interpreter; fail on a non-zero exit."""
    script = "import django\ndjango.setup()\n" + code
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=django_env(settings=settings, db_url=db_url, env=env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result


T = TypeVar("T")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url: str, *, timeout: float = 10) -> tuple[int, bytes]:
    """GET `url` and return the status and body, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until(
    probe: Callable[[], T | None], *, timeout: float, what: str, interval=0.2
) -> T:
    """Call `probe` until it returns something other than None; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(interval)


@contextmanager
def serving(
    argv: list[str | Path],
    *,
    ready_url: str,
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    timeout: float = 60,
    any_status: bool = False,
) -> Iterator[subprocess.Popen]:
    """Start a server, wait until `ready_url` answers 200, and stop it on leaving.

    With `any_status`, any HTTP answer will do (a server that wants a token
    answers 401 when it is ready).
    """
    with open(log, "wb") as output:
        process = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            wait_until(
                lambda: _answers(process, ready_url, log, any_status),
                timeout=timeout,
                what=f"{ready_url} to answer",
            )
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _answers(
    process: subprocess.Popen, url: str, log: Path, any_status: bool = False
) -> bool | None:
    # A server that exits while starting fails the wait at once, with its log.
    if process.poll() is not None:
        raise AssertionError(
            f"{process.args[0]} exited with {process.returncode}:\n"
            + log.read_text(errors="replace")[-3000:]
        )
    try:
        status = http_get(url, timeout=2)[0]
    except OSError:
        return None
    return any_status or status == 200 or None
