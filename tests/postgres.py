"""A throwaway PostgreSQL cluster of the test's own, which it may stop and start."""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.processes import free_port


def postgres_bin() -> Path | None:
    """Return the PostgreSQL server's bin directory, or None if it is absent."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


#: Skips a test that starts a Cluster where the server binaries or psycopg are
#: missing (make test-all installs both).
needs_cluster = pytest.mark.skipif(
    postgres_bin() is None or importlib.util.find_spec("psycopg") is None,
    reason="needs the PostgreSQL server binaries and psycopg (make test-all)",
)


class Cluster:
    """initdb + pg_ctl on a free port, run as the unprivileged `postgres` user."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        # Outside pytest's private tmp_path, which the postgres user cannot enter.
        self.directory = Path(tempfile.mkdtemp(prefix="metricdemo-pg-"))
        self.data = self.directory / "pgdata"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
        self._as_postgres(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        )

    @property
    def url(self) -> str:
        """Return the DATABASE_URL of the cluster's `postgres` database."""
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        log = str(self.directory / "server.log")
        # -l: the server must not inherit our pipes, or reading them never ends.
        self._as_postgres(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start"
        )
        for _ in range(100):
            ready = subprocess.run(
                [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
            )
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError("the throwaway PostgreSQL did not become ready")

    def stop(self) -> None:
        """Stop the server at once, dropping its connections."""
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")

    def destroy(self) -> None:
        """Stop the server if it runs and remove its files."""
        status = subprocess.run(
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
        )
        if status.returncode == 0:
            self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _as_postgres(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
