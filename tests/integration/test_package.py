"""The app as a package: what the wheel holds, and a new project that installs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import django
import pytest
from packaging.requirements import Requirement

from tests.processes import ROOT, free_port, http_get, serving
from tests.scraping import parse, value

README_SECTION = "## Adding metricdemo to an existing project"
# Variables of the test's own run that must not reach the new project.
LEAKING = {"DJANGO_SETTINGS_MODULE", "PYTHONPATH", "DATABASE_URL", "REDIS_URL"}

# One pytest-xdist worker runs the module, so the wheel is built once: two
# builds at a time would both write metricdemo.egg-info in the source tree.
pytestmark = [pytest.mark.xdist_group("package"), pytest.mark.backend_neutral]


def run(argv: list, *, cwd: Path, env: dict | None = None, timeout: float = 300):
    """Run a command; fail with its output on a non-zero exit."""
    result = subprocess.run(
        [str(arg) for arg in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build the sdist, then the wheel from it, as `python -m build` does."""
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", dist, ROOT], cwd=dist)
    (built,) = dist.glob("metricdemo-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> Path:
    """A new virtualenv with the wheel, its dependencies and this run's Django."""
    path = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", path], cwd=path)
    # The Django the suite runs on, so each cell of the matrix (noxfile.py)
    # proves that the wheel installs and serves on its own Django.
    this_django = f"django=={django.__version__}"
    run([path / "bin" / "pip", "install", "-q", wheel, this_django], cwd=path)
    return path


def extra(name: str) -> list[Requirement]:
    """Return the requirements of one of pyproject.toml's optional dependencies."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["optional-dependencies"][name]]


def readme_steps() -> list[tuple[str, list[str]]]:
    """Return the (language, lines) code blocks of the README's install section."""
    text = (ROOT / "README.md").read_text()
    start = text.index(README_SECTION) + len(README_SECTION)
    section = re.split(r"\n#{2,3} ", text[start:])[0]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)
    return [(language, body.splitlines()) for language, body in blocks]


def follow_python_block(lines: list[str], project: Path) -> None:
    """Apply `# file.py` blocks: imports go on top, `NAME = [..., x]` appends x."""
    target = None
    for line in lines:
        code = line.split("  #")[0].strip()
        if not code:
            continue
        if re.fullmatch(r"# \w+\.py", code):
            target = project / code[2:]
            continue
        assert target is not None, f"a README line before its file name: {line}"
        source = target.read_text()
        if code.startswith(("from ", "import ")):
            target.write_text(f"{code}\n{source}")
            continue
        match = re.fullmatch(r"(\w+) = \[\.\.\., (.+)\]", code)
        assert match, f"a README step this test cannot follow: {line}"
        name, items = match.groups()
        assert re.search(rf"^{name} = \[", source, flags=re.M), (name, target)
        target.write_text(f"{source}\n{name} += [{items}]\n")


def test_wheel_holds_the_app_and_nothing_else(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    package = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "metricdemo").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert "metricdemo/migrations/0001_initial.py" in package
    # Type checkers read the app's hints only where the wheel says it has them.
    assert "metricdemo/py.typed" in names
    # Every file of the app, templates and static files included, if it has any.
    assert package <= names, sorted(package - names)
    assert {name.split("/")[0] for name in names} == {
        "metricdemo",
        wheel.name.split("-py3")[0] + ".dist-info",
    }


def test_a_new_project_follows_the_readme_and_serves_a_definition(venv, tmp_path):
    """startproject, the README's steps, a definition made with the ORM, /metrics."""
    env = {k: v for k, v in os.environ.items() if k not in LEAKING}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    python = venv / "bin" / "python"
    missing = "import importlib.util as u; assert u.find_spec('metricsite') is None"
    run([python, "-c", missing], cwd=tmp_path, env=env)

    run(
        [venv / "bin" / "django-admin", "startproject", "hostsite"],
        cwd=tmp_path,
        env=env,
    )
    project = tmp_path / "hostsite"
    steps = readme_steps()
    assert [language for language, _ in steps] == ["sh", "python", "sh"]
    (install,), settings_and_urls, (migrate,) = (lines for _, lines in steps)
    assert install.startswith("pip install "), install  # the venv fixture did it
    follow_python_block(settings_and_urls, project / "hostsite")
    assert migrate == "python manage.py migrate"
    run([python, "manage.py", "migrate", "--noinput"], cwd=project, env=env)

    run(
        [
            python,
            "manage.py",
            "shell",
            "-c",
            "from django.contrib.auth.models import User\n"
            "from metricdemo.models import MetricDefinition\n"
            "User.objects.create_user('ann')\n"
            "for fields in [\n"
            "    dict(name='shop.orders.target', source='constant', value=500,\n"
            "         attributes={'region': 'eu'}),\n"
            "    dict(name='accounts.users', source='row_count', model='auth.User'),\n"
            "]:\n"
            "    definition = MetricDefinition(**fields)\n"
            "    definition.full_clean()\n"
            "    definition.save()\n",
        ],
        cwd=project,
        env=env,
    )

    address = f"127.0.0.1:{free_port()}"
    argv = [python, "manage.py", "runserver", "--noreload", address]
    url = f"http://{address}/metrics"
    log = tmp_path / "runserver.log"
    with serving(argv, ready_url=url, log=log, env=env, cwd=project):
        status, body = http_get(url)
    assert status == 200
    families = parse(body.decode())
    assert value(families, "shop_orders_target", region="eu") == 500.0
    assert value(families, "accounts_users") == 1.0
    assert "django_http_requests_total_by_method" not in families


@pytest.mark.skipif(
    not (ROOT / ".git").exists(), reason="not a git checkout (for example an sdist)"
)
def test_repository__sqlite_files_are_ignored_not_tracked():
    """A local run's database, with its -wal and -shm files, never enters git."""
    names = ["db.sqlite3", "db.sqlite3-wal", "db.sqlite3-shm", "db.sqlite3-journal"]
    tracked = run(["git", "ls-files", "--", *names], cwd=ROOT).stdout.split()
    assert tracked == []
    ignored = run(["git", "check-ignore", "--no-index", *names], cwd=ROOT)
    assert ignored.stdout.split() == names


def test_make_run_installs_the_demo_without_the_test_tooling(tmp_path):
    """`make run` installs requirements.txt: the app and its demo extra, no more."""
    venv = tmp_path / "venv"
    plan = run(["make", "-n", "-B", "run", f"VENV={venv}"], cwd=ROOT).stdout
    installs = [
        line.split()
        for line in plan.splitlines()
        if " install " in line and "--upgrade pip" not in line
    ]
    assert installs == [[f"{venv}/bin/pip", "install", "-q", "-r", "requirements.txt"]]
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    assert [line for line in lines if not line.startswith("#")] == ["-e .[demo]"]

    demo = {r.name for r in extra("demo")}
    tooling = {r.name for r in extra("test")}
    assert {"playwright", "ruff", "build", "nox", "pytest"} <= tooling
    assert not demo & tooling, demo & tooling


def test_pre_commit_runs_the_projects_ruff():
    """The hooks run ruff check and format, at a version the test extra allows."""
    config = (ROOT / ".pre-commit-config.yaml").read_text()
    (repo,) = re.findall(r"^\s*- repo: (\S+)$", config, flags=re.M)
    (rev,) = re.findall(r"^\s*rev: v(\S+)$", config, flags=re.M)
    hooks = re.findall(r"^\s*- id: (\S+)$", config, flags=re.M)
    assert repo == "https://github.com/astral-sh/ruff-pre-commit"
    assert hooks == ["ruff-check", "ruff-format"]
    # No --config or rule arguments: the settings are pyproject.toml's.
    assert re.findall(r"^\s*args: (.*)$", config, flags=re.M) == ["[--fix]"]
    (ruff,) = [r for r in extra("test") if r.name == "ruff"]
    assert ruff.specifier.contains(rev), (rev, str(ruff.specifier))
