"""The benchmark harness still runs; its timings are never asserted."""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_from(folder: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run Python in `folder`, the repository importable; fail on a non-zero exit."""
    completed = subprocess.run(
        [sys.executable, *args],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    return completed


@pytest.mark.long
@pytest.mark.slow
def test_bench_quick_run_prints_every_section(tmp_path):
    """`python -m bench --quick` measures every part on SQLite and exits 0.

    It writes nothing in its working directory (run from the repository, a file
    there would be one to commit by mistake).
    """
    report = run_from(tmp_path, "-m", "bench", "--quick", DATABASE_URL="").stdout
    assert list(tmp_path.iterdir()) == []
    for heading in (
        "1. Scrape cost with N constant definitions",
        "2. Row counts",
        "3. First scrape after one definition changes",
        "4. Resident memory",
        "5. Import of N definitions",
        "6. Scheduled row counts",
        "7. Aggregates",
        "8. A process after 20 edits",
        "9. Every one served",
        "10. Admin pages",
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


@pytest.mark.slow
def test_bench_scrape_cost_alone(tmp_path):
    """`--scrape-cost` measures section 1 (with its change and profile parts) only."""
    report = run_from(
        tmp_path, "-m", "bench", "--quick", "--scrape-cost", DATABASE_URL=""
    ).stdout
    assert "1. Scrape cost with N constant definitions" in report
    assert "3. First scrape after one definition changes" in report
    assert "2. Row counts" not in report


def test_bench_settings__sqlite_files_go_in_the_temporary_directory(tmp_path):
    """Relative SQLite names, in DATABASE_URL or METRICDEMO_BENCH_SQLITE, too."""
    code = (
        "import json; from bench import settings; print(json.dumps(settings.DATABASES))"
    )
    completed = run_from(
        tmp_path,
        "-c",
        code,
        DATABASE_URL="sqlite:///metricdemo_exp",
        METRICDEMO_BENCH_SQLITE="bench.sqlite3",
    )
    databases = json.loads(completed.stdout)
    assert set(databases) == {"default", "url"}
    for database in databases.values():
        for name in (database["NAME"], database["TEST"]["NAME"]):
            assert Path(name).parent == Path(tempfile.gettempdir()), name
