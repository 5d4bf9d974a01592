"""Open files: a job may hold MAX_OPEN_FILES descriptors on every machine, and the host's own
limit never shows to the guest (executor/deterministic_fs.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import wasmtime

from executor import deterministic_fs, outcomes
from executor.wasm import TARGETS, ModuleCache, Mount, run_module

# Opens /inputs/f again and again, never closing, until path_open says no: exits with
# 100 x the descriptors it got, plus the errno.
OPENER = """(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "f")
  (func (export "_start") (local $n i32) (local $errno i32)
    (block $refused
      (loop $again
        (local.set $errno
          (call $open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 0)
            (i64.const 2) (i64.const 2) (i32.const 0) (i32.const 8)))
        (br_if $refused (local.get $errno))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $again)))
    (call $exit (i32.add (i32.mul (local.get $n) (i32.const 100)) (local.get $errno)))))"""


def _run(folder: Path, work: Path, target: str) -> int:
    module = bytes(wasmtime.wat2wasm(OPENER))
    work.mkdir()
    return run_module(
        "opener", lambda: module, cache=ModuleCache(None), entry_point="_start", args=(),
        env=(), mounts=[Mount(host=folder, guest="/inputs", writable=False)],
        stdout=work / "stdout", stderr=work / "stderr", seed=b"s" * 32, timeout_s=60,
        memory_bytes=1 << 24, fuel=None, target=target,
    ).exit_code  # fmt: skip


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_job_holds_the_same_number_of_files_everywhere(tmp_path: Path, target: str) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "f").write_bytes(b"x")
    # the preopen /inputs is one of the job's descriptors; then EMFILE (33)
    assert (
        _run(tmp_path / "in", tmp_path / "w", target)
        == (deterministic_fs.MAX_OPEN_FILES - 1) * 100 + 33
    )


# Runs the opener with the process' open-file limit a little above what it holds, so the host
# refuses long before the job's own limit. `unguarded` stops the shadow telling the host's
# refusal from the job's (the test of the test).
CHILD = textwrap.dedent("""
    import os, resource, sys
    from pathlib import Path
    from executor import deterministic_fs
    from executor.wasm import WasmRunError
    from tests.executor.test_open_files import _run

    folder, work, target = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    if sys.argv[4] == "unguarded":
        deterministic_fs._HOST_REFUSALS = ()
    held = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (held + 40, held + 40))
    try:
        print("exit", _run(folder, work, target))
    except WasmRunError as exc:
        print(f"{exc.outcome}: {exc}")
""")


def _child(tmp_path: Path, target: str, mode: str) -> str:
    (tmp_path / "in").mkdir(exist_ok=True)
    (tmp_path / "in" / "f").write_bytes(b"x")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "in"), str(tmp_path / mode), target, mode],
        capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_hosts_own_limit_is_a_host_failure(tmp_path: Path, target: str) -> None:
    said = _child(tmp_path, target, "guarded")
    assert said.startswith(f"{outcomes.HOST_FAILURE}: the host refused an open file"), said


def test_without_the_guard_the_hosts_limit_shows_to_the_guest(tmp_path: Path) -> None:
    said = _child(tmp_path, "cranelift", "unguarded")
    # EIO (29) after a few dozen descriptors: the host's number, not the job's limit
    assert said.startswith("exit ") and said.endswith("29"), said
    assert int(said.split()[1]) // 100 < 100
