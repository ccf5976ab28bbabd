"""The benchmark harness still runs; its timings are never asserted."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_quick_run_prints_every_section(tmp_path):
    """`python -m bench --quick` measures every part on SQLite and exits 0.

    It writes nothing in its working directory (run from the repository, a file
    there would be one to commit by mistake).
    """
    env = {**os.environ, "DATABASE_URL": "", "PYTHONPATH": str(ROOT)}
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert list(tmp_path.iterdir()) == []
    report = completed.stdout
    for heading in (
        "1. Scrape cost with N constant definitions",
        "2. Row counts",
        "3. First scrape after one definition changes",
        "4. Resident memory",
        "5. Import of N definitions",
        "6. Scheduled row counts",
        "7. Aggregates",
        "8. A process after 20 edits",
        "Where the row-count scrape's time goes",
        "Where the app collector's time goes",
    ):
        assert heading in report
    # Every target row ends with its verdict.
    verdicts = [
        line.split()[-1]
        for line in report.splitlines()
        if line.endswith(("PASS", "MISS"))
    ]
    assert len(verdicts) >= 8


def test_bench_settings__sqlite_files_go_in_the_temporary_directory(tmp_path):
    """Relative SQLite names, in DATABASE_URL or METRICDEMO_BENCH_SQLITE, too."""
    env = {
        **os.environ,
        "DATABASE_URL": "sqlite:///metricdemo_exp",
        "METRICDEMO_BENCH_SQLITE": "bench.sqlite3",
        "PYTHONPATH": str(ROOT),
    }
    code = (
        "import json\n"
        "from bench import settings\n"
        "print(json.dumps(settings.DATABASES))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    databases = json.loads(completed.stdout)
    assert set(databases) == {"default", "url"}
    for database in databases.values():
        for name in (database["NAME"], database["TEST"]["NAME"]):
            assert Path(name).parent == Path(tempfile.gettempdir()), name
