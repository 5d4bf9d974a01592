"""WASM runner overhead: per-job cost of a trivial module (cold and warm module cache), and a
compute-heavy module under our runner against plain wasmtime-py with no limits, and the same
jobs on wasmtime's Pulley interpreter against Cranelift.

    .venv/bin/python -m benchmarks.bench_wasm [--repeat 7] [--iterations 200000000]
        [--engines cranelift,pulley] [--engine-iterations 20000000]

Goals: compute-heavy jobs within 1.15x of plain wasmtime-py with fuel metering on (issue 4);
`random_get` of 4 MiB within 3x of plain wasmtime-py's (issue 13).
Both sides run the same module bytes, compiled beforehand, in this process; the figure is the
median of --repeat runs. "Plain" is `Engine()` with the default Config, `define_wasi()`, and
a WasiConfig with the same preopens: no fuel, no epoch deadline, no shadowed imports.

Engines (issue 33): the trivial module and an xorshift loop of --engine-iterations through
`run_job(..., target=...)` on each of --engines (executor.wasm.TARGETS), the engines taking
turns run by run, each with its module already compiled and in memory (a warm module cache);
median wall time each, their ratio to Cranelift's, and the fuel of every run (which must be the
same on every engine). No goal: Pulley is an interpreter, the figure is what a re-execution on
it costs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import wasmtime

from benchmarks._common import ROOT
from executor.embedded_store import EmbeddedStore
from executor.random_stream import compile_hasher
from executor.run import run_job
from executor.spec import JobSpec, parse_spec
from executor.wasm import TARGETS, ModuleCache, Mount, run_module
from tests.executor.wat_modules import random_loop, xorshift

TRIVIAL = wasmtime.wat2wasm('(module (memory (export "memory") 1) (func (export "_start")))')


def median_s(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def plain_runner(
    data: bytes, args: list[str], mounts: list[Mount], out: Path
) -> Callable[[], None]:
    engine = wasmtime.Engine()
    module = wasmtime.Module(engine, data)

    def go() -> None:
        store = wasmtime.Store(engine)
        wasi = wasmtime.WasiConfig()
        wasi.argv = ["module", *args]
        wasi.stdout_file = str(out / "plain-stdout")
        wasi.stderr_file = str(out / "plain-stderr")
        for m in mounts:
            wasi.preopen_dir(str(m.host), m.guest, m.writable)
        store.set_wasi(wasi)
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        instance = linker.instantiate(store, module)
        start = instance.exports(store)["_start"]
        assert isinstance(start, wasmtime.Func)
        try:
            start(store)
        except wasmtime.ExitTrap as exc:
            assert exc.code == 0, exc.code

    return go


def our_runner(
    data: bytes, args: list[str], mounts: list[Mount], out: Path, cache: ModuleCache
) -> Callable[[], None]:
    def go() -> None:
        outcome = run_module(
            "bench",
            lambda: data,
            cache=cache,
            entry_point="_start",
            args=tuple(args),
            env=(),
            mounts=mounts,
            stdout=out / "ours-stdout",
            stderr=out / "ours-stderr",
            seed=b"\0" * 32,
            timeout_s=3600,
            memory_bytes=1 << 30,
            fuel=(1 << 62),
        )
        assert outcome.exit_code == 0

    return go


def engines_case(
    name: str,
    spec: JobSpec,
    store: EmbeddedStore,
    cache: ModuleCache,
    engines: list[str],
    runs: int,
) -> str:
    """One markdown row: `spec` through run_job on each engine, taking turns, `runs` times."""
    for engine in engines:  # compile for this target and keep it in memory, outside the timing
        run_job(spec, store, cache=cache, target=engine)
    times: dict[str, list[float]] = {engine: [] for engine in engines}
    fuel: dict[str, set[int | None]] = {engine: set() for engine in engines}
    results: set[str] = set()
    for _ in range(runs):
        for engine in engines:
            start = time.perf_counter()
            result = run_job(spec, store, cache=cache, target=engine)
            times[engine].append(time.perf_counter() - start)
            assert result.exit_code == 0 and result.compiled is False, result
            fuel[engine].add(result.fuel_used)
            results.add(result.result_cid)
    ms = {engine: statistics.median(times[engine]) * 1000 for engine in engines}
    cells = [f"{ms[engine]:.2f}" for engine in engines]
    base = ms.get("cranelift")
    cells += [f"{ms[engine] / base:.2f}x" for engine in engines if engine != "cranelift" and base]
    cells += [", ".join(f"{f:,}" for f in sorted(fuel[engine], key=str)) for engine in engines]
    every = set().union(*fuel.values())
    cells.append("yes" if len(every) == 1 and None not in every else "**NO**")
    cells.append("yes" if len(results) == 1 else "**NO**")
    return f"| {name} | " + " | ".join(cells) + " |"


def resize_case(work: Path) -> tuple[bytes, list[str], list[Mount]] | None:
    sys.path.insert(0, str(ROOT))
    from tests.executor.wasm_build import build, toolchain_missing

    reason = toolchain_missing("resize")
    if reason:
        print(f"(resize workload skipped: {reason})")
        return None
    inputs = work / "in"
    outputs = work / "outputs"
    inputs.mkdir()
    outputs.mkdir()
    width, height = 2048, 1536
    row = bytes((x * 7) % 256 for x in range(width * 3))
    (inputs / "big.ppm").write_bytes(b"P6\n%d %d\n255\n" % (width, height) + row * height)
    mounts = [Mount(inputs, "/inputs"), Mount(outputs, "/outputs", writable=True)]
    return build("resize").read_bytes(), ["/inputs/big.ppm", "640", "480"], mounts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=200_000_000)
    parser.add_argument(
        "--engines",
        default=",".join(TARGETS),
        help="targets compared in the last table, comma-separated (default: %(default)s)",
    )
    parser.add_argument(
        "--engine-iterations",
        type=int,
        default=20_000_000,
        help="xorshift rounds of the CPU-bound job in the engines table (Pulley is ~10x slower)",
    )
    opts = parser.parse_args()
    engines = [name.strip() for name in opts.engines.split(",") if name.strip()]
    unknown = [name for name in engines if name not in TARGETS]
    if unknown or not engines:
        parser.error(
            f"--engines: {', '.join(unknown) or 'none given'}; known: {', '.join(TARGETS)}"
        )

    with tempfile.TemporaryDirectory(prefix="bench-wasm-") as tmp:
        work = Path(tmp)
        store = EmbeddedStore(work / "ipfs")
        module_cid = store.add_bytes(TRIVIAL)
        spec = parse_spec({"engine": "wasm", "wasm": {"module": module_cid}})

        print("## Per-job overhead, trivial module (run_job: inputs, run, publish the result)")
        print(f"median of {opts.repeat * 3} runs\n")
        print("| case | ms per job |")
        print("|---|---:|")
        plain = plain_runner(TRIVIAL, [], [], work)
        plain_ms = median_s(plain, opts.repeat * 3) * 1000

        def cold() -> None:
            run_job(spec, store, cache=ModuleCache(work / f"cold-{time.perf_counter_ns()}"))

        warm_cache = ModuleCache(work / "warm")
        run_job(spec, store, cache=warm_cache)
        disk_dir = work / "disk"
        run_job(spec, store, cache=ModuleCache(disk_dir))

        def disk() -> None:  # a new process: nothing in memory, the module on disk
            run_job(spec, store, cache=ModuleCache(disk_dir))

        module_only = our_runner(TRIVIAL, [], [], work, warm_cache)
        rows = [
            ("plain wasmtime-py: instantiate + _start (floor)", plain_ms),
            (
                "run_module alone, warm (limits, virtual WASI, no storage)",
                median_s(module_only, opts.repeat * 3),
            ),
            ("run_job, cold (compile + serialize to the cache)", median_s(cold, opts.repeat * 3)),
            ("run_job, module cache on disk (new process)", median_s(disk, opts.repeat * 3)),
            (
                "run_job, warm (compiled module in memory)",
                median_s(lambda: run_job(spec, store, cache=warm_cache), opts.repeat * 3),
            ),
        ]
        for name, value in rows:
            ms = value if name.startswith("plain") else value * 1000
            print(f"| {name} | {ms:.2f} |")

        print("\n## Compute-heavy modules: our runner (fuel + epoch on) vs plain wasmtime-py")
        print(f"median of {opts.repeat} runs, compiled beforehand\n")
        print("| workload | plain s | ours s | ratio (goal <= 1.15) |")
        print("|---|---:|---:|---:|")
        cases: list[tuple[str, bytes, list[str], list[Mount]]] = [
            (f"xorshift64 x {opts.iterations:,} (tight loop)", xorshift(opts.iterations), [], [])
        ]
        resize = resize_case(work)
        if resize is not None:
            cases.append(("resize.rs 2048x1536 -> 640x480 PPM", *resize))
        for name, data, args, mounts in cases:
            cache = ModuleCache(None)
            ours = our_runner(data, args, mounts, work, cache)
            ours()  # compile once, outside the timing
            plain = plain_runner(data, args, mounts, work)
            plain()
            p = median_s(plain, opts.repeat)
            o = median_s(ours, opts.repeat)
            print(f"| {name} | {p:.3f} | {o:.3f} | {o / p:.2f}x |")

        print("\n## random_get: our seeded stream (fuel charged per byte) vs wasmtime's own")
        started = time.perf_counter()
        compile_hasher()
        print(
            f"one call a job, median of {opts.repeat} runs, compiled beforehand (our SIMD "
            f"SHA-256 module once a process: {(time.perf_counter() - started) * 1000:.0f} ms)\n"
        )
        print("| bytes | plain s | ours s | ratio (goal <= 3) |")
        print("|---|---:|---:|---:|")
        for size in (1 << 20, 4 << 20, 16 << 20):
            data = random_loop(size, calls=1)
            ours = our_runner(data, [], [], work, ModuleCache(None))
            ours()
            plain = plain_runner(data, [], [], work)
            plain()
            p = median_s(plain, opts.repeat)
            o = median_s(ours, opts.repeat)
            print(f"| {size >> 20} MiB | {p:.3f} | {o:.3f} | {o / p:.2f}x |")

        print("\n## Engines: the same job through run_job on each target (warm module cache)")
        print(
            "median wall time, engines taking turns run by run; each module compiled for each "
            "target and in memory beforehand; fuel of every run\n"
        )
        others = [e for e in engines if e != "cranelift"] if "cranelift" in engines else []
        header = [f"{e} ms" for e in engines] + [f"{e} / cranelift" for e in others]
        header += [f"fuel {e}" for e in engines] + ["fuel equal", "same result CID"]
        print("| job | " + " | ".join(header) + " |")
        print("|---|" + "---:|" * (len(header) - 2) + "---|---|")
        engine_cache = ModuleCache(work / "engines")
        cpu_cid = store.add_bytes(xorshift(opts.engine_iterations))
        cpu_spec = parse_spec({"engine": "wasm", "wasm": {"module": cpu_cid}})
        jobs = [
            (f"trivial module (per-job overhead), {opts.repeat * 3} runs", spec, opts.repeat * 3),
            (f"xorshift64 x {opts.engine_iterations:,}, {opts.repeat} runs", cpu_spec, opts.repeat),
        ]
        for name, job_spec, runs in jobs:
            print(engines_case(name, job_spec, store, engine_cache, engines, runs))


if __name__ == "__main__":
    main()
