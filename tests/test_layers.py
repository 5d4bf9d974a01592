"""The packages' layers, held by the import graph (`tests/import_graph.py`).

executor/ at the bottom imports no Django and nothing of ours above it; chain_scanner/ takes
only the CID normaliser from it; dashboard/ sits on both. Inside dashboard/, the base
(models, errors, audit, the role helper, settings) imports no domain, domain services and
selectors import no worker, task or view, and the worker and tasks import no view.
"""

from __future__ import annotations

import re

from tests.import_graph import ROOT, arrows, circles, modules

BASE = {
    "dashboard",
    "dashboard.models",
    "dashboard.errors",
    "dashboard.audit",
    "dashboard.access",
    "dashboard.addresses",
    "dashboard.env",
    "dashboard.settings",
    "dashboard.celery",
}
ENTRY = {"dashboard.tasks", "dashboard.worker"}
WEB = (
    "serializers",
    "apis",
    "api",
    "pages",
    "urls",
    "admin",
    "apps",
    "management",
    "wsgi",
    "health",
    "templatetags",
)


def layer(module: str) -> int:
    """0 the base, 1 domain services and selectors, 2 the worker and tasks, 3 HTTP and
    commands: a module may import its own layer and those below."""
    if module in BASE:
        return 0
    if module in ENTRY:
        return 2
    parts = module.split(".")
    if any(part in WEB for part in parts[1:]):
        return 3
    return 1


def allowed(a: str, b: str) -> bool:
    """Whether module a may import module b."""
    top_a, top_b = a.split(".")[0], b.split(".")[0]
    if top_a == "executor":
        return top_b == "executor"
    if top_a == "chain_scanner":
        return top_b == "chain_scanner" or b == "executor.cids"
    return top_b != "dashboard" or layer(a) >= layer(b)


def against_the_layers(edges: set[tuple[str, str]]) -> set[tuple[str, str]]:
    return {(a, b) for a, b in edges if not allowed(a, b)}


def test_the_graph_reads_every_module_and_its_imports() -> None:
    edges = arrows()
    assert "dashboard.models" in modules() and "executor.cids" in modules()
    # Lazy imports inside functions count: they run as surely as the others.
    assert ("chain_scanner.decode", "executor.cids") in edges


def test_no_import_runs_against_the_layers() -> None:
    assert sorted(against_the_layers(arrows())) == []


def test_no_import_circles() -> None:
    assert circles(arrows()) == []


def _layout_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_layout_names_every_module() -> None:
    layout = _layout_section()
    missing = sorted(
        str(path.relative_to(ROOT))
        for path in modules().values()
        if path.name not in ("__init__.py", "__main__.py", "apps.py")
        and "commands" not in path.parts
        and f"`{path.name}`" not in layout
        and f"{path.name}`" not in layout
    )
    assert missing == [], f"README's Layout section does not name {missing}"


def test_every_file_the_readme_layout_names_exists() -> None:
    named = set(re.findall(r"`(?:[\w/]+/)?(\w+\.py)`", _layout_section()))
    have = {path.name for path in ROOT.rglob("*.py") if ".venv" not in path.parts}
    assert sorted(named - have) == []
