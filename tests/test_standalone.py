"""The repository stands alone: nothing in it reads or points at a file outside it."""

from __future__ import annotations

import re
import subprocess

from tests.helpers import ROOT

# Paths that climb out of the repository, and the names of documents that are not in it.
_REFERENCE_DOCS = ("DESIGN", "FILECOIN", "PLATFORM", "BACALHAU")  # the team's, not the repo's
# Spelled in parts, so that this file does not hold what it looks for.
OUTSIDE = re.compile(
    "|".join(
        [re.escape(".." + "/shared"), re.escape("/work" + "/shared")]
        + [rf"\b{name}\.md\b" for name in _REFERENCE_DOCS]
    )
)


def test_no_tracked_file_points_outside_the_repository() -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    assert len(files) > 100
    offenders = []
    for name in filter(None, files):
        path = ROOT / name.decode()
        if path.suffix in {".car", ".zst", ".wasm", ".png"} or not path.is_file():
            continue
        text = path.read_text(errors="replace")
        offenders += [f"{name.decode()}: {m.group(0)}" for m in OUTSIDE.finditer(text)]
    assert offenders == [], offenders


def test_every_document_the_readme_links_to_is_in_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)\)", readme)
    local = [link for link in links if "://" not in link]
    assert "docs/api.md" in local and "docs/jobs.md" in local
    for link in local:
        assert (ROOT / link).exists(), link
