"""The README and the docs: every code block is run, or says why it is not.

A fenced block is preceded by an HTML comment that says what to do with it:

- `<!-- run: console; setup: NAME ... -->`: `$ python manage.py ...` lines and
  what they print, compared line by line (`...` stands for any lines, runs of
  spaces are one space, times such as `1.4 ms` are any time);
- `<!-- run: sh; setup: ... -->`: `python manage.py ...` lines, each of which
  must succeed (`> FILE` sends its output to a file);
- `<!-- run: python -->`: executed; `<!-- run: settings -->`: executed, and the
  `METRICDEMO` it defines must pass the app's system checks;
- `<!-- run: pycon -->`: a doctest (`...` and wrapped lines allowed);
- `<!-- run: metrics; values vary: GLOB ... -->`: a /metrics output, parsed and
  compared with what the demo serves (families, types, help, label sets, and
  the values of the families that no GLOB names);
- `<!-- run: export; setup: ... -->`: a `metrics export` file whose
  definitions must be those the command writes;
- `<!-- run: words DOTTED.NAME [KEY] -->`: the words of the block are those of
  that tuple (or of its item KEY);
- `<!-- run: promtool -->`: a Prometheus configuration `promtool` accepts;
- `<!-- not run: REASON -->`: left alone, for the reason given.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import doctest
import fnmatch
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core import checks
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils.module_loading import import_string

from metricdemo.models import MetricDefinition
from tests.processes import ROOT
from tests.scraping import parse

# What the docs show runs the same on every database: make test-all reads
# them on SQLite only.
pytestmark = pytest.mark.backend_neutral

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]
MARKER = re.compile(r"^\s*<!--\s*(run|not run):\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
KINDS = {"console", "sh", "python", "settings", "pycon", "metrics", "export"}
KINDS |= {"words", "promtool"}
#: A time as `metrics check` prints it, which differs from run to run.
TIME = re.compile(r"\b\d+(\.\d+)? ms\b")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page, and what its marker asks."""

    page: Path
    line: int
    language: str
    body: str
    marker: str  # "run", "not run" or "" when there is none
    argument: str

    @property
    def kind(self) -> str:
        return self.argument.split(";")[0].split()[0] if self.argument else ""

    def option(self, name: str) -> list[str]:
        """Return the words of `; name: words` in the marker."""
        for part in self.argument.split(";")[1:]:
            key, _, words = part.partition(":")
            if key.strip() == name:
                return words.split()
        return []

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def read_blocks(page: Path) -> list[Block]:
    """Return the fenced code blocks of one Markdown page with their markers."""
    lines = page.read_text().splitlines()
    blocks, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, language = opening.groups()
        end = index + 1
        while lines[end].strip() != "```":
            end += 1
        body = "\n".join(line[len(indent) :] for line in lines[index + 1 : end])
        before = [line for line in lines[:index] if line.strip()]
        marker = MARKER.match(before[-1]) if before else None
        found = marker.groups() if marker else ("", "")
        blocks.append(Block(page, index + 1, language, body + "\n", *found))
        index = end + 1
    return blocks


ALL_BLOCKS = [block for page in PAGES for block in read_blocks(page)]
RUN_BLOCKS = [block for block in ALL_BLOCKS if block.marker == "run"]


def test_docs__every_block_is_run_or_says_why_not():
    unmarked = [str(b) for b in ALL_BLOCKS if not b.marker]
    assert unmarked == [], "blocks without <!-- run: ... --> or <!-- not run: ... -->"
    no_reason = [str(b) for b in ALL_BLOCKS if b.marker == "not run" and not b.argument]
    assert no_reason == []
    unknown = [f"{b}: {b.kind}" for b in RUN_BLOCKS if b.kind not in KINDS]
    assert unknown == []
    assert len(RUN_BLOCKS) >= 15, [str(b) for b in RUN_BLOCKS]


# Setups: the state of the database that a block's marker names. -------------


def setup_demo(tmp_path: Path) -> None:
    """What `make run` stores: the demo's definitions and its shop."""
    call_command("load_demo_metrics", verbosity=0)
    call_command("seed_shop", verbosity=0)


def setup_histograms(tmp_path: Path) -> None:
    """The demo's histogram definitions, enabled."""
    MetricDefinition.objects.filter(
        name__startswith="metricdemo.demo.", kind="histogram"
    ).update(enabled=True)


def setup_legacy(tmp_path: Path) -> None:
    """A definition whose setting a later release of the project removed."""
    with override_settings(LEGACY_ORDER_LIMIT=100):
        definition = MetricDefinition(
            name="shop.orders.legacy", source="setting", setting="LEGACY_ORDER_LIMIT"
        )
        definition.full_clean()
        definition.save()


def setup_edits(tmp_path: Path) -> None:
    """metrics.json: the stored definitions with one added, one edited, one gone;
    edits.json: a definition that groups users by their password."""
    out = io.StringIO()
    call_command("metrics", "export", stdout=out)
    document = json.loads(out.getvalue())
    kept = [d for d in document["definitions"] if d["name"] != "shop.orders.legacy"]
    for definition in kept:
        if definition["name"] == "metricdemo.demo.users":
            definition["filters"] = {"is_active": True}
    target = {"name": "shop.orders.target", "source": "constant", "value": 500}
    document["definitions"] = [*kept, target]
    (tmp_path / "metrics.json").write_text(json.dumps(document))
    staff = {
        "name": "accounts.staff",
        "source": "row_count",
        "model": "auth.User",
        "group_by": "password",
    }
    edits = {"version": 1, "definitions": [staff]}
    (tmp_path / "edits.json").write_text(json.dumps(edits))


def setup_crowded(tmp_path: Path) -> None:
    """Three users who last logged in at three times, counted by last_login."""
    from django.contrib.auth.models import User

    for day in (1, 2, 3):
        login = dt.datetime(2026, 3, day, tzinfo=dt.UTC)
        User.objects.create_user(f"user{day}", last_login=login)
    definition = MetricDefinition(
        name="users.by_last_login",
        source="row_count",
        model="auth.User",
        group_by="last_login",
        max_series=2,
    )
    definition.full_clean()
    definition.save()


SETUPS = {
    "demo": setup_demo,
    "histograms": setup_histograms,
    "legacy": setup_legacy,
    "edits": setup_edits,
    "crowded": setup_crowded,
}


# Runners: one per kind of block. --------------------------------------------


def manage(command: str, cwd: Path) -> str:
    """Run one `python manage.py ...` line in this process; return its output."""
    argv = shlex.split(command, comments=True)
    assert argv[:2] == ["python", "manage.py"], f"not a manage.py command: {command}"
    argv, target = argv[2:], None
    if ">" in argv:
        argv, target = argv[: argv.index(">")], argv[argv.index(">") + 1]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.chdir(cwd):
        try:
            call_command(*argv, stdout=out, stderr=err)
        except CommandError as error:
            return f"{out.getvalue()}{err.getvalue()}CommandError: {error}\n"
    if target:
        (cwd / target).write_text(out.getvalue())
        return err.getvalue()
    return out.getvalue() + err.getvalue()


def normalise(text: str) -> list[str]:
    """Fold runs of spaces and times, so column widths and timings may differ."""
    lines = [" ".join(TIME.sub("<time> ms", line).split()) for line in text.split("\n")]
    return [line for line in lines if line]


def run_console(block: Block, tmp_path: Path) -> None:
    commands: list[tuple[str, list[str]]] = []
    for line in block.body.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        elif line.strip():
            commands[-1][1].append(line)
    for command, expected in commands:
        printed = manage(command, tmp_path)
        checker = doctest.OutputChecker()
        want = "\n".join(normalise("\n".join(expected))) + "\n"
        got = "\n".join(normalise(printed)) + "\n"
        assert checker.check_output(want, got, doctest.ELLIPSIS), (
            f"$ {command}\n--- shown in {block}:\n{want}--- printed:\n{got}"
        )


def run_sh(block: Block, tmp_path: Path) -> None:
    for line in block.body.splitlines():
        if line.strip():
            printed = manage(line, tmp_path)
            assert "CommandError" not in printed, f"{line}\n{printed}"


def run_python(block: Block, tmp_path: Path) -> dict:
    namespace: dict = {"__name__": "docs"}
    with contextlib.chdir(tmp_path):
        exec(compile(block.body, str(block), "exec"), namespace)  # noqa: S102
    return namespace


def run_settings(block: Block, tmp_path: Path) -> None:
    os.environ.setdefault("METRICS_TOKEN", "a-token-from-the-environment")
    namespace = run_python(block, tmp_path)
    with override_settings(METRICDEMO=namespace["METRICDEMO"]):
        problems = checks.run_checks(tags=["metricdemo"])
    assert [p for p in problems if p.level >= checks.ERROR] == []


def run_pycon(block: Block, tmp_path: Path) -> None:
    parser = doctest.DocTestParser()
    test = parser.get_doctest(block.body, {}, str(block), str(block.page), block.line)
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    runner = doctest.DocTestRunner(optionflags=flags)
    report = io.StringIO()
    with contextlib.chdir(tmp_path):
        runner.run(test, out=report.write)
    assert runner.failures == 0, report.getvalue()


def samples(families) -> dict[tuple, float]:
    """Return {(sample name, labels): value} of parsed families."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in families.values()
        for sample in family.samples
    }


def run_metrics(block: Block, tmp_path: Path, client) -> None:
    shown = parse(block.body)
    response = client.get("/metrics")
    assert response.status_code == 200
    served = parse(response.content.decode())
    vary = block.option("values vary")
    for name, family in shown.items():
        assert name in served, f"{name} is shown in {block} but not served"
        assert (family.type, family.documentation) == (
            served[name].type,
            served[name].documentation,
        ), name
    served_samples = samples(served)
    for (sample, labels), value in samples(shown).items():
        # The scope's version is the package's, whatever release is installed.
        labels = frozenset(
            (k, v if k != "otel_scope_version" or not v else served_version(served))
            for k, v in labels
        )
        assert (sample, labels) in served_samples, f"{sample}{dict(labels)}"
        if not any(fnmatch.fnmatch(sample, pattern) for pattern in vary):
            assert served_samples[(sample, labels)] == value, (sample, dict(labels))


def served_version(served) -> str:
    """Return the otel_scope_version of the app's own instruments."""
    import metricdemo

    return metricdemo.__version__


def run_export(block: Block, tmp_path: Path) -> None:
    shown = json.loads(block.body)
    out = io.StringIO()
    call_command("metrics", "export", stdout=out)
    exported = json.loads(out.getvalue())
    assert shown.keys() == exported.keys()
    assert shown["version"] == exported["version"]
    by_name = {d["name"]: d for d in exported["definitions"]}
    for definition in shown["definitions"]:
        assert by_name.get(definition["name"]) == definition


def run_words(block: Block, tmp_path: Path) -> None:
    name, *key = block.argument.split()[1:]
    value = import_string(name)
    assert block.body.split() == list(value[key[0]] if key else value)


def run_promtool(block: Block, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("needs promtool (Debian's prometheus package; make test-all)")
    config = tmp_path / "prometheus.yml"
    config.write_text(block.body)
    # The token file and the rule file that the configurations name.
    (tmp_path / "metrics-token").write_text("a-token\n")
    (tmp_path / "rules.yml").write_text("groups: []\n")
    result = subprocess.run(
        [promtool, "check", "config", config.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("block", RUN_BLOCKS, ids=str)
def test_docs__block_runs_as_shown(block, tmp_path, client):
    for name in block.option("setup"):
        SETUPS[name](tmp_path)
    runner = globals()[f"run_{block.kind}"]
    if block.kind == "metrics":
        runner(block, tmp_path, client)
    else:
        runner(block, tmp_path)


def test_docs__settings_page_names_every_setting():
    """Every key of conf.DEFAULTS, with its default, is in the settings reference."""
    from metricdemo.conf import DEFAULTS

    page = (ROOT / "docs" / "settings.md").read_text()
    text = page.split("## METRICDEMO\n")[1].split("\n## ")[0]
    rows = dict(re.findall(r"^\| `(\w+)` \| (.*?) \|", text, flags=re.M))
    assert sorted(rows) == sorted(DEFAULTS)
    for key, default in DEFAULTS.items():
        shown = rows[key]
        if isinstance(default, tuple) and len(default) > 3:
            continue  # a long list, shown by reference
        assert repr(default).replace("'", '"') in shown or f"`{default!r}`" in shown, (
            key,
            shown,
        )


def test_docs__install_steps_are_the_readmes():
    """The docs' install steps are the README's, which test_package.py runs."""
    section = "## Adding metricdemo to an existing project"

    def steps(page: Path) -> list[str]:
        text = page.read_text().split(section)[1]
        return re.findall(r"```\w+\n(.*?)```", re.split(r"\n#{2,3} ", text)[0], re.S)

    readme = steps(ROOT / "README.md")
    assert len(readme) == 3
    assert steps(ROOT / "docs" / "getting-started.md") == readme


def headings(page: Path) -> list[str]:
    """Return the titles of a page's headings, outside code blocks."""
    titles, fenced = [], False
    for line in page.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := re.match(r"#{1,6} (.+)", line)):
            titles.append(match.group(1).strip())
    return titles


def test_docs__the_admin_page_quotes_the_change_lists_short_labels():
    """The short labels docs/admin.md names are those the change list shows."""
    from metricdemo.models import KIND_SHORT_CHOICES
    from metricdemo.sources import SHORT_CHOICES

    text = (ROOT / "docs" / "admin.md").read_text()
    quoted = re.search(r"show short labels\s+\(([^;)]*)", text)
    assert quoted, "docs/admin.md no longer quotes the short labels"
    shown = re.findall(r"`([^`]+)`", quoted.group(1))
    labels = {str(label) for _, label in [*KIND_SHORT_CHOICES, *SHORT_CHOICES]}
    assert shown and set(shown) <= labels, (shown, sorted(labels))


def test_docs__pyproject_points_to_sections_that_exist():
    """A comment's `see "Section" in PAGE` names a heading of that page."""
    # Comments read as one line, across their line breaks.
    text = re.sub(r"\n\s*#\s*", " ", (ROOT / "pyproject.toml").read_text())
    pointers = re.findall(r'see "([^"]+)" in (the README|[\w./-]+\.md)', text)
    assert pointers
    for section, page in pointers:
        path = ROOT / ("README.md" if page == "the README" else page)
        assert path.exists(), page
        assert section in headings(path), (section, page)


def test_docs__the_readmes_topics_of_sources_are_sections_of_the_page():
    """Each topic the README lists for docs/sources.md is a heading there."""
    readme = (ROOT / "README.md").read_text()
    item = re.search(r"- \[Sources\]\(docs/sources\.md\): (.*?)\.\n", readme, re.S)
    assert item
    # Parentheses hold the subsections of a topic.
    topics = re.sub(r"\s*\([^)]*\)", "", " ".join(item.group(1).split()))
    page = {title.lower() for title in headings(ROOT / "docs" / "sources.md")}
    missing = [t for t in topics.split(", ") if t.lower() not in page]
    assert missing == [], sorted(page)


def test_docs__readme_shows_the_address_variables_of_make_run():
    """`make run PORT=...`, with only the variables the Makefile reads."""
    makefile = (ROOT / "Makefile").read_text()
    variables = set(re.findall(r"^(HOST|PORT) \?=", makefile, re.M))
    assert variables == {"HOST", "PORT"}
    readme = (ROOT / "README.md").read_text()
    shown = re.findall(r"`make (?:run|serve) ([^`]*)`", readme)
    assert any(word.startswith("PORT=") for line in shown for word in line.split())
    assert {word.split("=")[0] for line in shown for word in line.split()} == variables


def test_docs__mkdocs_builds_strict(tmp_path):
    """A broken link, a missing page or a missing anchor fails the build."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--site-dir",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "index.html").exists()
    assert (tmp_path / "site" / "changelog" / "index.html").exists()
