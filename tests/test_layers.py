"""The packages' layers and the dashboard's rooms, held by the import graph
(`tests/import_graph.py`).

executor/ at the bottom imports no Django and nothing of ours above it; chain_scanner/ takes
only the CID normaliser from it; dashboard/ sits on both.

Inside dashboard/, two orders hold at once. The layers: the base (models, errors, audit, the
role helper, settings, the queue) imports no domain, domain services and selectors import no
worker, task or view, and the worker and tasks import no view. The rooms: a module imports
only its own room and the rooms below it in ROOMS, from the base through the API plumbing
and the domains (each above the domains it uses) to the moderator pages and the project's
top (urls, admin, tasks, the worker, commands). Jobs stand above moderation, the notary and
re-execution because a job, as the API shows it, carries what each of them says of it; the
Bacalhau bridges stand above jobs because they submit and import jobs.
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
    "dashboard.proxies",
    "dashboard.env",
    "dashboard.settings",
    "dashboard.celery",
    "dashboard.sql",
    "dashboard.queue",
}
ENTRY = {"dashboard.tasks", "dashboard.worker"}
ROOMS = (
    "base",
    "api",
    "keys",
    "accounts",
    "content",
    "eligibility",
    "reexecution",
    "novelty",
    "moderation",
    "notary",
    "jobs",
    "bacalhau",
    "pages",
    "top",
)
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


def room(module: str) -> int:
    """The room of a dashboard module, by its place in ROOMS: its folder when that is a
    room, otherwise the base or the top."""
    if module in BASE:
        return ROOMS.index("base")
    parts = module.split(".")
    if len(parts) > 2 and parts[1] in ROOMS:
        return ROOMS.index(parts[1])
    return ROOMS.index("top")


def allowed(a: str, b: str) -> bool:
    """Whether module a may import module b."""
    top_a, top_b = a.split(".")[0], b.split(".")[0]
    if top_a == "executor":
        return top_b == "executor"
    if top_a == "chain_scanner":
        return top_b == "chain_scanner" or b == "executor.cids"
    if top_b != "dashboard":
        return True
    return layer(a) >= layer(b) and room(a) >= room(b)


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


def test_every_dashboard_folder_is_a_room() -> None:
    """A new folder is placed in the order on purpose, not by default at the top."""
    folders = {
        path.parent.name
        for path in modules().values()
        if path.parent.parent.name == "dashboard" and path.parent.name != "dashboard"
    }
    assert sorted(folders - set(ROOMS) - {"management", "templatetags"}) == []


def test_the_tests_mirror_the_rooms() -> None:
    """tests/dashboard/ has a folder of tests for each room that is a folder of dashboard/."""
    rooms = {
        path.parent.name
        for path in modules().values()
        if path.parent.parent.name == "dashboard" and path.parent.name in ROOMS
    }
    tested = {path.parent.name for path in (ROOT / "tests" / "dashboard").glob("*/test_*.py")}
    assert sorted(rooms - tested) == []


def test_the_rooms_catch_an_import_against_their_order() -> None:
    """The rule bites: re-execution may not use jobs, nor a domain the pages."""
    assert not allowed("dashboard.reexecution.services", "dashboard.jobs.services")
    assert not allowed("dashboard.notary.apis", "dashboard.pages.base")
    assert not allowed("dashboard.api.serializers", "dashboard.reexecution.selectors")
    assert allowed("dashboard.jobs.services", "dashboard.reexecution.services")


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
