"""WASM runner overhead: per-job cost of a trivial module (cold and warm module cache), and a
compute-heavy module under our runner against plain wasmtime-py with no limits.

    .venv/bin/python -m benchmarks.bench_wasm [--repeat 7] [--iterations 200000000]

Goals: compute-heavy jobs within 1.15x of plain wasmtime-py with fuel metering on (issue 4);
`random_get` of 4 MiB within 3x of plain wasmtime-py's (issue 13).
Both sides run the same module bytes, compiled beforehand, in this process; the figure is the
median of --repeat runs. "Plain" is `Engine()` with the default Config, `define_wasi()`, and
a WasiConfig with the same preopens: no fuel, no epoch deadline, no shadowed imports.
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
from executor.spec import parse_spec
from executor.wasm import ModuleCache, Mount, run_module
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
        try:
            instance.exports(store)["_start"](store)
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
    opts = parser.parse_args()

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


if __name__ == "__main__":
    main()
