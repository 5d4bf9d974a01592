"""`python -m executor conformance`: does this machine run jobs as every other node does?

Each probe is a small WebAssembly job run through the executor's own path (`run_job`) on each
engine asked for (executor.wasm.TARGETS). A probe passes on an engine when its stdout is what
the determinism rules (docs/jobs.md) say it must be, or, where the rules fix no value, when
every engine gives the same bytes and the same fuel. One line per probe and engine, then one
per probe across engines; the exit status is non-zero when anything diverges, so a compute
node's operator can check a machine before it joins.
"""

from __future__ import annotations

import hashlib
import struct
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import wasmtime

from executor.deterministic_fs import inode_of
from executor.embedded_store import EmbeddedStore
from executor.outcomes import COMPLETED, STACK_EXHAUSTED
from executor.run import JobFailed, run_job
from executor.spec import parse_spec
from executor.wasm import REALTIME_START_NS, TARGETS, TICK_NS, ModuleCache

__all__ = ["PROBES", "Probe", "run_probes"]

_IMPORTS = """
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get"
    (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_readdir"
    (func $fd_readdir (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_get"
    (func $fd_filestat_get (param i32 i32) (result i32)))
"""
# $out(ptr, len) writes to stdout; $hex32(v) prints 8 hex digits and a newline; $hex64 16.
_LIB = """
  (memory (export "memory") 1)
  (data (i32.const 8000) "0123456789abcdef\\n")
  (func $out (param $p i32) (param $n i32)
    (i32.store (i32.const 0) (local.get $p))
    (i32.store (i32.const 4) (local.get $n))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $hex64 (param $v i64) (local $i i32)
    (local.set $i (i32.const 16))
    (loop $l
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (i32.store8 (i32.add (i32.const 7000) (local.get $i))
        (i32.load8_u (i32.add (i32.const 8000)
          (i32.wrap_i64 (i64.and (local.get $v) (i64.const 15))))))
      (local.set $v (i64.shr_u (local.get $v) (i64.const 4)))
      (br_if $l (local.get $i)))
    (call $out (i32.const 7000) (i32.const 16))
    (call $out (i32.const 8016) (i32.const 1)))
  (func $hex32 (param $v i32) (call $hex64 (i64.extend_i32_u (local.get $v))))
  (func $bytes (param $p i32) (param $n i32) (local $i i32)
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $i) (local.get $n)))
      (call $out (i32.add (i32.const 8000)
        (i32.shr_u (i32.load8_u (i32.add (local.get $p) (local.get $i))) (i32.const 4)))
        (i32.const 1))
      (call $out (i32.add (i32.const 8000)
        (i32.and (i32.load8_u (i32.add (local.get $p) (local.get $i))) (i32.const 15)))
        (i32.const 1))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l)))
    (call $out (i32.const 8016) (i32.const 1)))
"""


def _module(body: str) -> bytes:
    return bytes(wasmtime.wat2wasm(f"(module {_IMPORTS} {_LIB} {body})"))


def _hex(value: int, digits: int) -> str:
    return f"{value:0{digits}x}\n"


@dataclass(frozen=True)
class Probe:
    name: str
    what: str  # one line for the operator
    module: Callable[[], bytes]
    # stdout the rules require, worked out from the job's spec (its seed); None: any, as
    # long as every engine gives the same
    expected: Callable[[dict[str, object]], str] | None = None
    outcome: str = COMPLETED  # how the run must end
    limits: dict[str, object] | None = None


def _nan_module() -> bytes:
    # NaNs with payloads through f32 and f64 arithmetic, a conversion and a SIMD lane: each
    # must come out as the canonical quiet NaN.
    return _module("""
  (func (export "_start")
    (call $hex32 (i32.reinterpret_f32 (f32.add (f32.const nan:0x200001) (f32.const 1))))
    (call $hex32 (i32.reinterpret_f32 (f32.sub (f32.const -nan:0x1) (f32.const -nan:0x7))))
    (call $hex64 (i64.reinterpret_f64 (f64.mul (f64.const nan:0x12345) (f64.const 2))))
    (call $hex64 (i64.reinterpret_f64 (f64.promote_f32 (f32.const nan:0x3))))
    (call $hex32 (i32.reinterpret_f32 (f32x4.extract_lane 2
      (f32x4.mul (v128.const f32x4 nan:0x1 nan:0x2 nan:0x3 nan:0x4) (v128.const f32x4 1 1 1 1))))))
""")


def _relaxed_simd_module() -> bytes:
    # The relaxed operations whose results the proposal leaves to the machine, with inputs
    # where machines differ: out-of-range swizzle lanes, a fused or unfused multiply-add,
    # a float-to-int conversion out of range.
    return _module("""
  (func (export "_start")
    (v128.store (i32.const 100)
      (i8x16.relaxed_swizzle (v128.const i8x16 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16)
        (v128.const i8x16 0 17 128 255 200 15 16 31 32 3 2 1 0 99 127 240)))
    (call $bytes (i32.const 100) (i32.const 16))
    (v128.store (i32.const 100)
      (f32x4.relaxed_madd (v128.const f32x4 0x1.000002p+0 3 -0 1e38)
        (v128.const f32x4 0x1.000002p+0 0x1p-149 0 1e38)
        (v128.const f32x4 -0x1.000004p+0 0 -0 -1e38)))
    (call $bytes (i32.const 100) (i32.const 16))
    (v128.store (i32.const 100)
      (i32x4.relaxed_trunc_f32x4_s (v128.const f32x4 nan 3e9 -3e9 2.5)))
    (call $bytes (i32.const 100) (i32.const 16)))
""")


def _clocks_module() -> bytes:
    return _module("""
  (func (export "_start")
    (drop (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 200)))
    (call $hex64 (i64.load (i32.const 200)))
    (drop (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 200)))
    (call $hex64 (i64.load (i32.const 200)))
    (drop (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 200)))
    (call $hex64 (i64.load (i32.const 200))))
""")


def _random_module() -> bytes:
    return _module("""
  (func (export "_start")
    (drop (call $random_get (i32.const 300) (i32.const 40)))
    (call $bytes (i32.const 300) (i32.const 40)))
""")


def _fuel_module() -> bytes:
    # xorshift64 for 100,000 rounds: the fuel it takes must be the same on every engine.
    return _module("""
  (func (export "_start") (local $x i64) (local $i i32)
    (local.set $x (i64.const 88172645463325252))
    (loop $l
      (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 13))))
      (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 7))))
      (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 17))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 100000))))
    (call $hex64 (local.get $x)))
""")


def _files_module() -> bytes:
    # Creates "b", "a", "C" in /outputs (fd 3: the job has no inputs), then lists the folder
    # in one call and prints each name and inode, and the folder's own stat.
    return _module("""
  (data (i32.const 400) "bTaC")
  (func $create (param $name i32)
    (drop (call $path_open (i32.const 3) (i32.const 0) (local.get $name) (i32.const 1)
      (i32.const 1) (i64.const 0x1ff) (i64.const 0x1ff) (i32.const 0) (i32.const 200))))
  (func (export "_start") (local $pos i32) (local $n i32)
    (call $create (i32.const 400))
    (call $create (i32.const 402))
    (call $create (i32.const 403))
    (drop (call $fd_readdir (i32.const 3) (i32.const 1024) (i32.const 4096) (i64.const 0)
      (i32.const 212)))
    (block $done (loop $entry
      (br_if $done (i32.ge_u (local.get $pos) (i32.load (i32.const 212))))
      (local.set $n (i32.load (i32.add (i32.const 1040) (local.get $pos))))
      (call $out (i32.add (i32.const 1048) (local.get $pos)) (local.get $n))
      (call $out (i32.const 401) (i32.const 1))
      (call $hex64 (i64.load (i32.add (i32.const 1032) (local.get $pos))))
      (local.set $pos (i32.add (local.get $pos) (i32.add (i32.const 24) (local.get $n))))
      (br $entry)))
    (drop (call $fd_filestat_get (i32.const 3) (i32.const 6000)))
    (call $hex64 (i64.load (i32.const 6008)))
    (call $hex64 (i64.load (i32.const 6024)))
    (call $hex64 (i64.load (i32.const 6032)))
    (call $hex64 (i64.load (i32.const 6048))))
""")


def _files_expected(_: dict[str, object]) -> str:
    def entry(name: str, path: str) -> str:
        return f"{name}T{inode_of(path):016x}\n"

    return (
        entry(".", "/outputs") + entry("..", "/") + entry("C", "/outputs/C")
        + entry("a", "/outputs/a") + entry("b", "/outputs/b")
        + _hex(inode_of("/outputs"), 16) + _hex(1, 16) + _hex(0, 16)
        + _hex(REALTIME_START_NS, 16)
    )  # fmt: skip


def _stack_module() -> bytes:
    return _module("""
  (func $deeper (param i64) (call $deeper (i64.add (local.get 0) (i64.const 1))))
  (func (export "_start") (call $deeper (i64.const 0)))
""")


def _memory_module() -> bytes:
    # One page at a time until memory.grow says no: only the job's limit may say it.
    return _module("""
  (func (export "_start")
    (block $done (loop $again
      (br_if $done (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
      (br $again)))
    (call $hex32 (memory.size)))
""")


_MEMORY_LIMIT = 64 << 20


def _random_expected(spec: dict[str, object]) -> str:
    seed = parse_spec(spec).seed()
    blocks = b"".join(hashlib.sha256(seed + struct.pack(">Q", i)).digest() for i in range(2))
    return blocks[:40].hex() + "\n"


PROBES: tuple[Probe, ...] = (
    Probe(
        "nan_canonical",
        "NaN results are the canonical quiet NaN, payloads dropped",
        _nan_module,
        lambda _: (
            _hex(0x7FC00000, 16) * 2 + _hex(0x7FF8000000000000, 16) * 2 + _hex(0x7FC00000, 16)
        ),
    ),
    Probe("relaxed_simd", "relaxed SIMD gives one answer on every engine", _relaxed_simd_module),
    Probe(
        "clocks",
        "clocks are virtual: realtime from 2022-01-01, 1 ms a read; monotonic from 0",
        _clocks_module,
        lambda _: _hex(REALTIME_START_NS, 16) + _hex(REALTIME_START_NS + TICK_NS, 16) + _hex(0, 16),
    ),
    Probe(
        "random",
        "random bytes are SHA-256(seed | block number), the seed the spec's digest",
        _random_module,
        _random_expected,
    ),
    Probe("fuel", "a loop costs the same fuel on every engine", _fuel_module),
    Probe(
        "files",
        "a folder lists by name bytes, inodes from paths, one link, size 0, origin times",
        _files_module,
        _files_expected,
    ),
    Probe(
        "memory",
        "memory grows to the job's limit and no further: the limit decides, never the host",
        _memory_module,
        lambda _: _hex(_MEMORY_LIMIT // 65536, 16),
        limits={"memory_bytes": _MEMORY_LIMIT, "timeout_s": 60},
    ),
    Probe(
        "stack",
        "running out of the engine's stack is stack_exhausted (not reproducible)",
        _stack_module,
        outcome=STACK_EXHAUSTED,
    ),
)


@dataclass
class Ran:
    ok: bool
    note: str
    stdout: str = ""
    fuel: int | None = None


def _run(probe: Probe, target: str, store: EmbeddedStore, cache: ModuleCache) -> Ran:
    spec: dict[str, object] = {
        "engine": "wasm",
        "wasm": {"module": store.add_bytes(probe.module())},
        "limits": probe.limits or {"timeout_s": 60},
    }
    try:
        result = run_job(parse_spec(spec), store, cache=cache, target=target)
    except JobFailed as exc:
        if exc.outcome == probe.outcome:
            return Ran(True, f"{exc.outcome} as it must be")
        return Ran(False, f"ended {exc.outcome or 'before running'}: {exc}")
    if probe.outcome != COMPLETED:
        return Ran(False, f"completed, but must end {probe.outcome}")
    stdout = store.cat(result.stdout_cid).decode("ascii", "replace")
    if probe.expected is not None:
        expected = probe.expected(spec)
        if stdout != expected:
            return Ran(
                False, f"gave {stdout!r}, the rules say {expected!r}", stdout, result.fuel_used
            )
    return Ran(True, f"{result.fuel_used} fuel", stdout, result.fuel_used)


def run_probes(
    targets: Sequence[str], say: Callable[[str], None], probes: Sequence[Probe] = PROBES
) -> bool:
    """Every probe on every target; True when all pass and the targets agree."""
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise ValueError(f"unknown engine {unknown[0]!r}: one of {', '.join(TARGETS)}")
    passed = True
    with tempfile.TemporaryDirectory(prefix="filplus-conformance-") as tmp:
        store = EmbeddedStore(Path(tmp) / "ipfs")
        cache = ModuleCache(None)
        for probe in probes:
            runs = {target: _run(probe, target, store, cache) for target in targets}
            for target, ran in runs.items():
                say(f"{probe.name} {target}: {'ok' if ran.ok else 'FAIL'}: {ran.note}")
                passed &= ran.ok
            if len(targets) > 1 and probe.outcome == COMPLETED:
                answers = {(ran.stdout, ran.fuel) for ran in runs.values()}
                agree = len(answers) == 1
                say(
                    f"{probe.name} engines: {'ok: the same' if agree else 'FAIL: they differ'}"
                    f" ({', '.join(targets)})"
                )
                passed &= agree
    return passed
