"""Run the official WASI test suite (wasm32-wasip1) on our runner and on plain wasmtime-py.

The suite is not committed (it is another project's): fetch WebAssembly/wasi-testsuite,
branch `prod/testsuite-base`, and point this at the folder that holds its `tests/`:

    python -m tests.executor.wasi_suite PATH/TO/wasi-testsuite [--only NAME]
        [--engines cranelift,pulley]

Each test case is run three ways, each in a fresh copy of its `root` folder:
- plain: wasmtime-py's own WASI, the root preopened writable at `/` (the comparison);
- ours: `executor.wasm.run_module` as a job runs it, the root preopened read-only, since
  inputs are read-only by design;
- ours-writable: the same with the root writable, only for cases that fail read-only; a case
  that passes this way fails only because it writes to its inputs ("by design").
A case passes when its exit code, stdout and stderr are what its JSON says. "Ours" runs on
each engine asked for (executor.wasm.TARGETS: Cranelift, wasmtime's Pulley interpreter), and
the engines must agree on every case: the same exit code, stdout and stderr.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import wasmtime

from executor.wasm import TARGETS, ModuleCache, Mount, WasmRunError, run_module

SUITES = ("c", "rust", "assemblyscript")


@dataclass(frozen=True)
class Case:
    suite: str
    name: str
    wasm: Path
    args: list[str]
    env: dict[str, str]
    root: Path | None
    exit_code: int
    stdout: str | None  # checked only when the case's JSON names it, as the suite's runner does
    stderr: str | None


def cases(top: Path) -> list[Case]:
    out = []
    for suite in SUITES:
        folder = top / "tests" / suite / "testsuite" / "wasm32-wasip1"
        for wasm in sorted(folder.glob("*.wasm")):
            spec_path = wasm.with_suffix(".json")
            spec = json.loads(spec_path.read_text()) if spec_path.exists() else {}
            root = spec.get("root")
            out.append(
                Case(
                    suite=suite,
                    name=wasm.stem,
                    wasm=wasm,
                    args=list(spec.get("args", [])),
                    env=dict(spec.get("env", {})),
                    root=folder / root if root else None,
                    exit_code=int(spec.get("exit_code", 0)),
                    stdout=spec.get("stdout"),
                    stderr=spec.get("stderr"),
                )
            )
    return out


def _copy_root(case: Case, work: Path) -> Path | None:
    if case.root is None:
        return None
    dest = work / "root"
    shutil.copytree(case.root, dest, symlinks=True)
    for leftover in dest.rglob("*.cleanup"):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover)
        else:
            leftover.unlink()
    return dest


def run_plain(case: Case, work: Path) -> tuple[int, str, str]:
    root = _copy_root(case, work)
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    wasi = wasmtime.WasiConfig()
    wasi.argv = [case.wasm.name, *case.args]
    wasi.env = [[k, v] for k, v in case.env.items()]
    wasi.stdout_file = str(work / "stdout")
    wasi.stderr_file = str(work / "stderr")
    if root is not None:
        wasi.preopen_dir(str(root), "/")
    store.set_wasi(wasi)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    module = wasmtime.Module.from_file(engine, str(case.wasm))
    try:
        linker.instantiate(store, module).exports(store)["_start"](store)
        code = 0
    except wasmtime.ExitTrap as exc:
        code = exc.code
    except wasmtime.Trap:
        code = -1
    return code, (work / "stdout").read_text(), (work / "stderr").read_text()


def run_ours(
    case: Case, work: Path, *, writable: bool, target: str = "cranelift"
) -> tuple[int, str, str]:
    root = _copy_root(case, work)
    mounts = [Mount(host=root, guest="/", writable=writable)] if root is not None else []
    try:
        outcome = run_module(
            case.name,
            case.wasm.read_bytes,
            cache=ModuleCache(None),
            entry_point="_start",
            args=tuple(case.args),
            env=tuple(case.env.items()),
            mounts=mounts,
            stdout=work / "stdout",
            stderr=work / "stderr",
            seed=hashlib.sha256(b"wasi-testsuite").digest(),
            timeout_s=60,
            memory_bytes=1 << 30,
            fuel=None,
            target=target,
        )
        code = outcome.exit_code
    except WasmRunError as exc:
        (work / "stderr").write_text((work / "stderr").read_text() + f"\n[runner] {exc}")
        code = -1
    return code, (work / "stdout").read_text(), (work / "stderr").read_text()


def passed(case: Case, got: tuple[int, str, str]) -> bool:
    code, stdout, stderr = got
    return (
        code == case.exit_code and case.stdout in (None, stdout) and case.stderr in (None, stderr)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", type=Path, help="a checkout of wasi-testsuite's prod branch")
    parser.add_argument("--only", help="run the cases whose name contains this")
    parser.add_argument(
        "--engines", default="cranelift", help="comma-separated: " + ", ".join(TARGETS)
    )
    options = parser.parse_args(argv)
    engines = [e.strip() for e in options.engines.split(",") if e.strip()]
    if not engines or any(e not in TARGETS for e in engines):
        print(f"--engines: one or more of {', '.join(TARGETS)}", file=sys.stderr)
        return 2
    found = [c for c in cases(options.suite) if not options.only or options.only in c.name]
    if not found:
        print(f"no test cases under {options.suite}/tests", file=sys.stderr)
        return 2
    plain = [0, 0]  # pass, fail
    ours = {engine: [0, 0, 0] for engine in engines}  # pass, fail, by design
    disagree = 0
    for case in found:
        with tempfile.TemporaryDirectory() as a:
            plain_ok = passed(case, run_plain(case, Path(a)))
        plain[0 if plain_ok else 1] += 1
        answers = {}
        for engine in engines:
            with tempfile.TemporaryDirectory() as b:
                got = run_ours(case, Path(b), writable=False, target=engine)
            answers[engine] = got
            verdict = "pass" if passed(case, got) else "fail"
            if verdict == "fail" and case.root is not None:
                with tempfile.TemporaryDirectory() as c:
                    if passed(case, run_ours(case, Path(c), writable=True, target=engine)):
                        verdict = "by design (writes to its read-only root)"
            ours[engine][{"pass": 0, "fail": 1}.get(verdict, 2)] += 1
            if verdict == "fail" or not plain_ok:
                detail = f" exit {got[0]}, stderr {got[2][-200:]!r}" if verdict == "fail" else ""
                print(
                    f"{case.suite}/{case.name} [{engine}]: plain "
                    f"{'pass' if plain_ok else 'FAIL'}, ours {verdict}{detail}"
                )
            elif verdict != "pass":
                print(f"{case.suite}/{case.name} [{engine}]: plain pass, ours {verdict}")
        if len(set(answers.values())) > 1:
            disagree += 1
            print(f"{case.suite}/{case.name}: the engines disagree: {answers!r}"[:400])
    print(f"{len(found)} cases. plain wasmtime-py: {plain[0]} pass, {plain[1]} fail.")
    for engine, (op, of, od) in ours.items():
        print(f"ours on {engine}: {op} pass, {od} by design, {of} other failures.")
    if len(engines) > 1:
        print(f"engines agree on {len(found) - disagree} of {len(found)} cases.")
    return 0 if not any(counts[1] for counts in ours.values()) and not disagree else 1


if __name__ == "__main__":
    raise SystemExit(main())
