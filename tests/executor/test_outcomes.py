"""How a run ends (executor/outcomes.py): each way a WASM job can stop is named, and only
the ones another honest machine would reproduce are comparable."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime

from executor import outcomes
from executor.embedded_store import EmbeddedStore
from executor.run import JobFailed, run_job
from executor.spec import parse_spec
from executor.wasm import TARGETS
from tests.executor import wat_modules as wat


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "ipfs")


@pytest.mark.parametrize(
    ("module", "limits", "outcome"),
    [
        (wat.trap, {}, outcomes.FAILED_IN_PROGRAM),
        (wat.divide_by_zero, {}, outcomes.FAILED_IN_PROGRAM),
        (wat.spin, {"fuel": 10_000}, outcomes.FUEL_EXHAUSTED),
        (wat.spin, {"timeout_s": 0.3}, outcomes.TIMED_OUT),
        (wat.recursion, {}, outcomes.STACK_EXHAUSTED),
    ],
)
def test_each_way_a_run_stops_is_named(
    store: EmbeddedStore,
    module,
    limits: dict,
    outcome: str,  # type: ignore[no-untyped-def]
) -> None:
    spec = {"engine": "wasm", "wasm": {"module": store.add_bytes(module())}, "limits": limits}
    with pytest.raises(JobFailed) as failed:
        run_job(parse_spec(spec), store)
    assert failed.value.outcome == outcome, str(failed.value)
    assert (outcome in outcomes.NOT_REPRODUCIBLE) == (
        outcome in (outcomes.TIMED_OUT, outcomes.STACK_EXHAUSTED)
    )


# wasmtime's own fd_write traps on an iovec pointer that is not 4-byte aligned: the guest's
# fault, on every engine.
MISALIGNED_WASI = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $w (i32.const 1) (i32.const 1) (i32.const 1) (i32.const 3)))))"""


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_bad_argument_to_wasi_is_the_programs_failure(store: EmbeddedStore, target: str) -> None:
    module = store.add_bytes(bytes(wasmtime.wat2wasm(MISALIGNED_WASI)))
    with pytest.raises(JobFailed) as failed:
        run_job(parse_spec({"engine": "wasm", "wasm": {"module": module}}), store, target=target)
    assert failed.value.outcome == outcomes.FAILED_IN_PROGRAM, str(failed.value)
    assert "Pointer not aligned to 4" in str(failed.value)


def test_an_exit_is_a_result_and_a_missing_module_never_ran(store: EmbeddedStore) -> None:
    spec = {"engine": "wasm", "wasm": {"module": store.add_bytes(wat.exit_with(3))}}
    assert run_job(parse_spec(spec), store).exit_code == 3
    gone = {
        "engine": "wasm",
        "wasm": {"module": "bafkreiaqm3h2tqilzbgtglsabqeqoyh3rbwlpwlgwtwmevvpgyxfdhhfeq"},
    }
    with pytest.raises(JobFailed) as failed:
        run_job(parse_spec(gone), store)
    assert failed.value.outcome is None
