"""Host memory pressure is the host's failure, never a guest-visible `memory.grow` of -1
(executor/host_memory.py, executor.wasm._config)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import wasmtime

from executor import host_memory, outcomes
from executor.embedded_store import EmbeddedStore
from executor.run import JobFailed, run_job
from executor.spec import parse_spec
from executor.wasm import TARGETS

GiB = 1 << 30
# Grows its memory 4 MiB at a time until memory.grow says -1, then exits with its size in
# 4 MiB units: 32 under a 128 MiB limit on any machine.
GROWER = """(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 0)
  (func (export "_start")
    (block $done (loop $again
      (br_if $done (i32.eq (memory.grow (i32.const 64)) (i32.const -1)))
      (br $again)))
    (call $exit (i32.shr_u (memory.size) (i32.const 6)))))"""


def meminfo(total: int, swap: int = 0) -> str:
    return f"MemTotal: {total // 1024} kB\nMemFree: 1 kB\nSwapTotal: {swap // 1024} kB\n"


def test_strict_accounting_is_refused_whatever_the_limit() -> None:
    reason = host_memory.refusal(1 << 20, overcommit="2\n", meminfo=meminfo(64 * GiB))
    assert reason is not None and "vm.overcommit_memory=2" in reason


def test_a_limit_beyond_ram_and_swap_is_refused_under_the_heuristic() -> None:
    assert host_memory.refusal(3 * GiB, overcommit="0", meminfo=meminfo(2 * GiB, GiB)) is None
    reason = host_memory.refusal(3 * GiB + 1, overcommit="0", meminfo=meminfo(2 * GiB, GiB))
    assert reason is not None and "3221225473 bytes" in reason
    # One grow can never ask for more than a wasm32 memory: a 1 TiB limit counts as 4 GiB.
    assert host_memory.refusal(1 << 40, overcommit="0", meminfo=meminfo(4 * GiB)) is None
    assert host_memory.refusal(1 << 40, overcommit="1", meminfo=meminfo(GiB)) is None


def test_a_job_this_machine_may_refuse_fails_as_a_host_failure_before_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = tmp_path / "meminfo"
    small.write_text(meminfo(512 << 20))
    monkeypatch.setattr(host_memory, "_MEMINFO", small)
    monkeypatch.setattr(host_memory, "_OVERCOMMIT", tmp_path / "overcommit")
    (tmp_path / "overcommit").write_text("0\n")
    store = EmbeddedStore(tmp_path / "ipfs")
    module = store.add_bytes(bytes(wasmtime.wat2wasm(GROWER)))

    def spec(memory_bytes: int) -> dict:
        return {
            "engine": "wasm",
            "wasm": {"module": module},
            "limits": {"memory_bytes": memory_bytes},
        }

    with pytest.raises(JobFailed) as failed:
        run_job(parse_spec(spec(GiB)), store)
    assert failed.value.outcome == outcomes.HOST_FAILURE
    assert "more than this machine's RAM and swap" in str(failed.value)
    assert run_job(parse_spec(spec(256 << 20)), store).exit_code == 64  # it fits: it runs


# Runs the grower twice in one process: once freely, then with the address space capped a
# little above what the process already maps (RLIMIT_AS), so new mappings beyond 32 MiB fail.
# `dynamic` swaps in wasmtime's growable memory (no reservation): the test of the test.
CHILD = textwrap.dedent("""
    import gc, resource, sys
    from pathlib import Path
    import wasmtime
    from executor import wasm
    from executor.embedded_store import EmbeddedStore
    from executor.run import JobFailed, run_job
    from executor.spec import parse_spec

    target, dynamic, folder = sys.argv[1], sys.argv[2] == "dynamic", Path(sys.argv[3])
    if dynamic:
        made = wasm._config
        def growable(t):
            config = made(t)
            config.memory_reservation = 0
            config.memory_reservation_for_growth = 0
            config.memory_guard_size = 0
            config.memory_may_move = True
            return config
        wasm._config = growable
    store = EmbeddedStore(folder)
    module = store.add_bytes(bytes(wasmtime.wat2wasm(sys.stdin.read())))
    spec = parse_spec({"engine": "wasm", "wasm": {"module": module},
                       "limits": {"memory_bytes": 128 << 20, "timeout_s": 60}})
    cache = wasm.ModuleCache(None)

    def run():
        try:
            return f"exit {run_job(spec, store, cache=cache, target=target).exit_code}"
        except JobFailed as exc:
            return f"{exc.outcome}: {exc}"

    print(run())
    gc.collect()  # the first run's store, and its reservation, must be gone from VmSize
    size = next(line for line in open("/proc/self/status") if line.startswith("VmSize"))
    cap = int(size.split()[1]) * 1024 + (32 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    print(run())
""")


def run_child(target: str, memory: str, tmp_path: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, target, memory, str(tmp_path / "ipfs")],
        input=GROWER,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_without_address_space_the_job_is_a_host_failure_not_a_smaller_memory(
    target: str, tmp_path: Path
) -> None:
    free, pressed = run_child(target, "reserved", tmp_path)
    assert free == "exit 32"  # the limit, and only the limit, stopped the growth
    assert pressed.startswith(f"{outcomes.HOST_FAILURE}: "), pressed
    assert "os error" in pressed


def test_the_pressure_would_show_in_the_guest_without_the_reservation(tmp_path: Path) -> None:
    # The test of the test: with wasmtime's growable memories the same cap makes memory.grow
    # return -1 early, and the job "completes" with a smaller memory than its limit.
    free, pressed = run_child("cranelift", "dynamic", tmp_path)
    assert free == "exit 32"
    assert pressed.startswith("exit "), pressed
    assert int(pressed.split()[1]) < 32
