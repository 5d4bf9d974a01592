"""`python -m executor conformance`: it passes on both engines here, and it fails when an
engine breaks a rule (a test of the test)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from executor.cli import main
from executor.conformance import PROBES, run_probes
from tests.executor.engine_defects import pulley_keeps_nan_payloads
from tests.helpers import ROOT


def test_every_probe_passes_on_both_engines_from_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "executor", "conformance"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "conformance: ok"
    for probe in PROBES:
        for engine in ("cranelift", "pulley"):
            assert any(line.startswith(f"{probe.name} {engine}: ok") for line in lines), probe
    assert "fuel engines: ok: the same (cranelift, pulley)" in lines


def test_an_engine_that_keeps_nan_payloads_fails_the_suite(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pulley_keeps_nan_payloads(monkeypatch)
    assert main(["conformance"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("nan_canonical pulley: FAIL: gave") for line in out), out
    assert "nan_canonical engines: FAIL: they differ (cranelift, pulley)" in out
    assert any(line.startswith("nan_canonical cranelift: ok") for line in out)
    assert out[-1] == "conformance: FAILED"


def test_an_unknown_engine_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conformance", "--engines", "cranelift,v8"]) == 2
    assert "unknown engine 'v8'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown engine"):
        run_probes(["nope"], print)
