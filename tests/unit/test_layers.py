"""The app's modules import one way, from low to high, with no cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "metricdemo"

#: The app's modules from low to high. A module may import only modules of a
#: lower layer. A package's modules are listed by dotted name where they have
#: layers of their own (`rowquery.types` below `rowquery.plan`), and the
#: package's name stands for its `__init__` (which may expose what its modules
#: make); a package listed only by its name (cli, management, migrations)
#: counts as one module.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("conf", "fields", "exposition.names", "formatting"),
    ("exposition.negotiation",),
    ("exposition.render",),
    ("exposition",),
    ("validators", "timewindows", "lookups", "reserved", "database"),
    ("measures", "distributions"),
    ("routing",),
    ("callbacks", "naming"),
    ("__init__",),
    ("observations",),
    ("policy.sensitive", "policy.paths", "policy.sqlite_functions"),
    ("policy.identity",),
    ("policy.rows",),
    ("policy.permissions",),
    ("policy",),
    ("aggregates",),
    ("rowquery.types",),
    ("rowquery.sql",),
    ("rowquery.plan",),
    ("rowquery.fetch",),
    ("rowquery",),
    ("sources", "alerting"),
    ("models",),
    ("signals",),
    ("serialization", "workers", "values.fingerprint", "values.kept"),
    ("alerts",),
    ("rulefiles",),
    ("outages",),
    ("values.shared_cache", "values.scheduled", "values.history"),
    ("values",),
    ("evaluation.outcomes",),
    ("evaluation.budget", "evaluation.slow", "evaluation.work"),
    ("evaluation.isolation",),
    ("evaluation.evaluator",),
    ("evaluation",),
    ("display", "otlp", "scheduler", "prometheus_api", "prometheus_history", "cost"),
    ("telemetry.reader",),
    ("telemetry.provider", "telemetry.self_metrics", "telemetry.flight"),
    ("telemetry.instruments",),
    ("telemetry.collector",),
    ("telemetry",),
    ("checks", "views"),
    ("presentation",),
    ("admin_history", "admin_text"),
    ("admin_overview",),
    ("urls", "admin", "cli"),
    ("management", "apps"),
    ("migrations",),
)
RANK = {name: rank for rank, layer in enumerate(LAYERS) for name in layer}


def unit_of(path: Path) -> str:
    """Return the layer unit of a file: its module, or its package if unlisted."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    dotted = ".".join(parts[:2])
    return dotted if dotted in RANK else parts[0]


def imported_units(path: Path) -> set[str]:
    """Return the metricdemo units a file imports at run time, local imports too.

    Imports under `if TYPE_CHECKING:` are left out: they only name types.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.update(_units(alias.name, []))
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.update(_units(node.module, [a.name for a in node.names]))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _units(module: str, names: list[str]) -> set[str]:
    parts = module.split(".")
    if parts[0] != "metricdemo":
        return set()
    if len(parts) > 2:
        dotted = ".".join(parts[1:3])
        return {dotted if dotted in RANK else parts[1]}
    if len(parts) == 2:
        # `from metricdemo.rowquery import plan` names a module of a package;
        # `from metricdemo.rowquery import compute_rows` its __init__.
        named = {f"{parts[1]}.{name}" for name in names} & RANK.keys()
        return named if len(named) == len(names) else named | {parts[1]}
    # `import metricdemo` or `from metricdemo import a, b`: the package's
    # __init__ and each named module.
    return {"__init__"} | {name for name in names if name in RANK}


FILES = sorted(PACKAGE.rglob("*.py"))


def test_layers__every_module_has_a_layer():
    """A new module must be given its place in LAYERS."""
    assert sorted({unit_of(f) for f in FILES} - RANK.keys()) == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_layers__imports_go_down_only(path):
    unit = unit_of(path)
    upward = sorted(
        other for other in imported_units(path) - {unit} if RANK[other] >= RANK[unit]
    )
    assert upward == [], f"{unit} (layer {RANK[unit]}) imports {upward}"


def test_layers__the_check_sees_a_violation(tmp_path):
    """The check itself: an upward import and a local import are both found."""
    module = PACKAGE / "models.py"
    source = module.read_text() + "\n\ndef late():\n    from metricdemo import admin\n"
    fake = tmp_path / "models.py"
    fake.write_text(source)
    assert "admin" in imported_units(fake)
