"""The official WASI test suite on our runner, on both engines (tests/executor/wasi_suite.py).

The suite is another project's and is never committed: `.ci/install-wasi-testsuite.sh` fetches
it (WebAssembly/wasi-testsuite, branch prod/testsuite-base) to `WASI_TESTSUITE`, by default
the tools folder. Where github.com cannot be reached the test skips, saying so."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.executor import wasi_suite


def suite_folder() -> Path:
    tools = Path(os.environ.get("FILPLUS_TOOLS_DIR", Path.home() / ".cache" / "filplus"))
    return Path(os.environ.get("WASI_TESTSUITE", tools / "wasi-testsuite"))


def test_every_case_passes_or_fails_by_design_and_the_engines_agree(
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = suite_folder()
    if not (folder / "tests").is_dir():
        pytest.skip(
            f"NO WASI TEST SUITE at {folder}: run `bash .ci/install-wasi-testsuite.sh` (it needs"
            " github.com) or set WASI_TESTSUITE to a checkout of its prod/testsuite-base branch"
        )
    status = wasi_suite.main([str(folder), "--engines", "cranelift,pulley"])
    report = capsys.readouterr().out
    assert status == 0, report[-4000:]
    lines = report.splitlines()
    total = int(next(line for line in lines if " cases. plain " in line).split()[0])
    assert total > 50  # the suite, not an empty folder
    assert f"engines agree on {total} of {total} cases." in lines
    for engine in ("cranelift", "pulley"):
        summary = next(line for line in lines if line.startswith(f"ours on {engine}: "))
        assert summary.endswith(" 0 other failures."), summary
        assert int(summary.split()[3]) > 0  # some cases pass outright on each engine
