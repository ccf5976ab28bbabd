"""Run the suite on SQLite for every supported Python and Django (make test-all).

The interpreters come from pyenv when it is installed: each wanted minor
version resolves to its newest installed patch release through pyenv's shims.
`nox -s "tests(python='3.12', django='6.1')"` runs one cell; `nox -s lowest` runs the
lowest versions that pyproject.toml allows; `nox -s injection` runs the filter-key
injection tests on Django 5.2.7, the last release open to CVE-2025-64459.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import nox
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

#: The Django releases each Python runs; Django 6 needs Python 3.12 or newer.
MATRIX: dict[str, tuple[str, ...]] = {
    "3.11": ("5.2",),
    "3.12": ("5.2", "6.0", "6.1"),
    "3.13": ("5.2", "6.0", "6.1"),
}
#: The Django releases that django-prometheus (the demo's) declares it supports;
#: on the others it is installed without its dependencies, and the suite,
#: which serves its families next to the definitions, proves it works.
DJANGO_PROMETHEUS_DECLARES = ("5.2", "6.0")

#: A cell the caller runs itself, as `PYTHON/DJANGO` (for example 3.11/5.2):
#: `make test-all` runs the whole suite in its own virtualenv, on that very
#: Python and Django, with every service, right after the matrix.
RUN_BY_CALLER = os.environ.get("METRICDEMO_MATRIX_DONE", "")
CELLS = [
    (python, django)
    for python, releases in MATRIX.items()
    for django in releases
    if f"{python}/{django}" != RUN_BY_CALLER
]
#: The cells that run the whole suite: together they run it once on every
#: Python and once on every Django release (3.11/5.2 is the caller's own in
#: make test-all). The other cells run the unit tests, which exercise the
#: app's Python on that Python and Django in about 35 s, where the whole suite
#: takes over two minutes: every combination in full would add ten minutes
#: to `.ci/run`.
WHOLE_SUITE = {("3.11", "5.2"), ("3.12", "6.0"), ("3.13", "6.1")}

nox.options.sessions = ["tests", "lowest", "injection"]
# A missing interpreter fails the run rather than skipping its cells.
nox.options.error_on_missing_interpreters = True
# uv makes each cell's virtualenv and installs into it in seconds, where
# virtualenv and pip took most of a minute per cell; on the interpreters
# found on PATH only (uv would otherwise fetch one it cannot find).
nox.options.default_venv_backend = "uv|virtualenv"
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")


def use_pyenv_interpreters(minors: list[str]) -> None:
    """Make `pythonX.Y` on PATH resolve, through pyenv's shims, for each minor."""
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return  # nox looks for pythonX.Y on PATH as usual

    def ask(*args: str) -> str:
        return subprocess.run(
            [pyenv, *args], capture_output=True, text=True, check=True
        ).stdout

    installed = ask("versions", "--bare").split()
    chosen = []
    for minor in minors:
        patches = [v for v in installed if re.fullmatch(rf"{re.escape(minor)}\.\d+", v)]
        if patches:
            chosen.append(max(patches, key=lambda v: int(v.rsplit(".", 1)[1])))
    if chosen:
        os.environ["PYENV_VERSION"] = ":".join(chosen)
        shims = Path(ask("root").strip()) / "shims"
        os.environ["PATH"] = f"{shims}{os.pathsep}{os.environ.get('PATH', '')}"


use_pyenv_interpreters(list(MATRIX))


def django_range(release: str) -> str:
    """Return the requirement of one Django feature release, for example 6.1.x."""
    major, minor = release.split(".")
    return f"django>={release},<{major}.{int(minor) + 1}"


def demo_requirements() -> tuple[list[str], str]:
    """Split the demo extra into django-prometheus and the rest."""
    demo = PROJECT["optional-dependencies"]["demo"]
    (prometheus,) = [r for r in demo if Requirement(r).name == "django-prometheus"]
    return [r for r in demo if r != prometheus], prometheus


def floors_of(requirements: list[str]) -> list[str]:
    """Pin each requirement to the lower bound of its range."""
    pins = []
    for text in requirements:
        requirement = Requirement(text)
        (floor,) = [s.version for s in requirement.specifier if s.operator == ">="]
        pins.append(f"{requirement.name}=={floor}")
    return pins


#: pytest-xdist: one worker per CPU plus one, which fills the time the suite
#: waits for the servers and processes it starts (about a third of it); tests
#: marked xdist_group share a worker.
PARALLEL = ("-n", str((os.cpu_count() or 1) + 1), "--dist", "loadgroup")


#: The matrix leaves the long scenarios (pytest's `long` marker: hosts of
#: workers, thousands of edits, a real Prometheus) to make test-all's own
#: suites, which run them on SQLite, PostgreSQL and MariaDB: no Python or
#: Django release changes them, and each cell would add minutes.
MATRIX_MARKERS = ("-m", "not long")


def run_suite(session: nox.Session, *paths: str) -> None:
    """Run pytest on SQLite, with no server URL leaking in from the caller."""
    session.run(
        "python",
        "-m",
        "pytest",
        "-q",
        *PARALLEL,
        *(() if paths else MATRIX_MARKERS),
        *paths,
        *session.posargs,
        env={"DATABASE_URL": "", "REDIS_URL": "", "METRICDEMO_NO_SKIP": ""},
    )


@nox.session
@nox.parametrize(
    ("python", "django"),
    CELLS,
)
def tests(session: nox.Session, django: str) -> None:
    """Run the suite (or its unit tests) on one Python and one Django release."""
    demo, prometheus = demo_requirements()
    if django in DJANGO_PROMETHEUS_DECLARES:
        session.install("-e", ".[test,demo]", django_range(django))
    else:
        session.install("-e", ".[test]", *demo, django_range(django))
        session.install("--no-deps", prometheus)
    if (session.python, django) in WHOLE_SUITE:
        run_suite(session)
    else:
        run_suite(session, "tests/unit")


@nox.session(python=min(MATRIX))
def lowest(session: nox.Session) -> None:
    """Run the suite with every dependency of the app and the demo at its floor."""
    demo, prometheus = demo_requirements()
    floors = floors_of([*PROJECT["dependencies"], *demo, prometheus])
    session.install("-e", ".[test,demo]", *floors)
    run_suite(session)


#: The last Django release whose Q(**kwargs) took `_connector` as SQL
#: (CVE-2025-64459); pyproject.toml allows only later ones.
VULNERABLE_DJANGO = "django==5.2.7"


@nox.session(python=min(MATRIX))
def injection(session: nox.Session) -> None:
    """Prove on a vulnerable Django that filter keys cannot write SQL."""
    session.install("-e", ".[test,demo]")
    session.install("--no-deps", VULNERABLE_DJANGO)
    run_suite(
        session, "tests/integration/test_injection.py", "tests/unit/test_lookups.py"
    )
