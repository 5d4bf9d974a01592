"""A WASM job's random bytes: block i is SHA-256(seed ‖ i as 8 bytes big-endian), i = 0, 1, …,
taken in order across calls.

Python's hashlib costs about half a microsecond a block in call overhead, which made a large
`random_get` four to five times slower than wasmtime's own. Large requests are therefore
hashed by a small WebAssembly module, generated below, that runs four SHA-256 compressions at
once in SIMD lanes (each block is one compression: 40 bytes of message, padded to 64). Small
requests stay in hashlib, since instantiating the module costs more than they do. Both give
the same bytes; the tests compare them with the definition.
"""

from __future__ import annotations

import ctypes
import hashlib
import struct
import threading

import wasmtime

__all__ = ["PIECE_BLOCKS", "RandomStream", "compile_hasher"]

# Below this many blocks a request is hashed in Python.
_WASM_MIN_BLOCKS = 256
# Blocks one call of the module produces (1 MiB of output).
PIECE_BLOCKS = 32768
_SEED_AT = 0  # 8 words of seed, then the output
_OUT_AT = 64

_K = [
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
    0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
    0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
    0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
    0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
    0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
    0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
]  # fmt: skip
_IV = [
    0x6A09E667,
    0xBB67AE85,
    0x3C6EF372,
    0xA54FF53A,
    0x510E527F,
    0x9B05688C,
    0x1F83D9AB,
    0x5BE0CD19,
]


def _splat(value: int) -> str:
    return f"(v128.const i32x4 {value} {value} {value} {value})"


def _rotr(x: str, n: int) -> str:
    return f"(v128.or (i32x4.shr_u {x} (i32.const {n})) (i32x4.shl {x} (i32.const {32 - n})))"


def _xor3(a: str, b: str, c: str) -> str:
    return f"(v128.xor (v128.xor {a} {b}) {c})"


def _module_wat() -> str:
    """fill(counter: i64, groups: i32): 4 * groups blocks from block `counter` on, written from
    _OUT_AT, with the seed's 8 words (host order) at _SEED_AT."""
    body: list[str] = []
    w = [f"$w{t}" for t in range(64)]
    # message words 0-7: the seed, the same in every lane
    for t in range(8):
        body.append(f"(local.set {w[t]} (i32x4.splat (i32.load (i32.const {_SEED_AT + 4 * t}))))")
    # words 8, 9: the lanes' counters, high and low halves
    body.append(
        "(local.set $w8 (i32x4.replace_lane 3 (i32x4.replace_lane 2 (i32x4.replace_lane 1"
        " (i32x4.splat (i32.wrap_i64 (i64.shr_u (local.get $c) (i64.const 32))))"
        " (i32.wrap_i64 (i64.shr_u (i64.add (local.get $c) (i64.const 1)) (i64.const 32))))"
        " (i32.wrap_i64 (i64.shr_u (i64.add (local.get $c) (i64.const 2)) (i64.const 32))))"
        " (i32.wrap_i64 (i64.shr_u (i64.add (local.get $c) (i64.const 3)) (i64.const 32)))))"
    )
    body.append(
        "(local.set $w9 (i32x4.add (i32x4.splat (i32.wrap_i64 (local.get $c)))"
        " (v128.const i32x4 0 1 2 3)))"
    )
    # padding: 0x80 after the 40 bytes, zeros, then the length in bits (320)
    body.append(f"(local.set $w10 {_splat(0x80000000)})")
    for t in range(11, 15):
        body.append(f"(local.set {w[t]} {_splat(0)})")
    body.append(f"(local.set $w15 {_splat(320)})")
    for t in range(16, 64):
        x2, x15 = f"(local.get {w[t - 2]})", f"(local.get {w[t - 15]})"
        s1 = _xor3(_rotr(x2, 17), _rotr(x2, 19), f"(i32x4.shr_u {x2} (i32.const 10))")
        s0 = _xor3(_rotr(x15, 7), _rotr(x15, 18), f"(i32x4.shr_u {x15} (i32.const 3))")
        body.append(
            f"(local.set {w[t]} (i32x4.add (i32x4.add {s1} (local.get {w[t - 7]}))"
            f" (i32x4.add {s0} (local.get {w[t - 16]}))))"
        )
    # rounds: the eight working variables rotate through eight locals instead of moving
    state = ["$a", "$b", "$c0", "$d", "$e", "$f", "$g", "$h"]
    for name, iv in zip(state, _IV, strict=True):
        body.append(f"(local.set {name} {_splat(iv)})")
    for t in range(64):
        a, b, c, d, e, f, g, h = (f"(local.get {n})" for n in state)
        s1 = _xor3(_rotr(e, 6), _rotr(e, 11), _rotr(e, 25))
        ch = f"(v128.bitselect {f} {g} {e})"
        body.append(
            f"(local.set $t1 (i32x4.add (i32x4.add {h} {s1}) (i32x4.add {ch}"
            f" (i32x4.add (local.get {w[t]}) {_splat(_K[t])}))))"
        )
        s0 = _xor3(_rotr(a, 2), _rotr(a, 13), _rotr(a, 22))
        maj = f"(v128.bitselect {c} {a} (v128.xor {a} {b}))"
        body.append(f"(local.set $t2 (i32x4.add {s0} {maj}))")
        # new e goes where d was, new a where h was
        body.append(f"(local.set {state[3]} (i32x4.add {d} (local.get $t1)))")
        body.append(f"(local.set {state[7]} (i32x4.add (local.get $t1) (local.get $t2)))")
        state = [state[7], state[0], state[1], state[2], state[3], state[4], state[5], state[6]]
    # digest words, byte-swapped to big-endian, each lane to its block's 32 bytes
    swap = " ".join(str(4 * i + j) for i in range(4) for j in (3, 2, 1, 0))
    for k, name in enumerate(state):
        body.append(
            f"(local.set $t1 (i8x16.shuffle {swap} (i32x4.add (local.get {name}) {_splat(_IV[k])})"
            f" {_splat(0)}))"
        )
        for lane in range(4):
            body.append(
                f"(i32.store offset={lane * 32 + k * 4} (local.get $out)"
                f" (i32x4.extract_lane {lane} (local.get $t1)))"
            )
    locals_ = " ".join(f"(local {n} v128)" for n in [*w, *state, "$t1", "$t2"])
    return f"""(module
  (memory (export "memory") 17)
  (func (export "fill") (param $c i64) (param $groups i32) (local $out i32) {locals_}
    (local.set $out (i32.const {_OUT_AT}))
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $groups)))
      {" ".join(body)}
      (local.set $c (i64.add (local.get $c) (i64.const 4)))
      (local.set $out (i32.add (local.get $out) (i32.const 128)))
      (local.set $groups (i32.sub (local.get $groups) (i32.const 1)))
      (br $next))))
)"""


_engine_lock = threading.Lock()
_engine: wasmtime.Engine | None = None
_module: wasmtime.Module | None = None


def compile_hasher() -> tuple[wasmtime.Engine, wasmtime.Module]:
    """The hasher, compiled once a process, in an engine of its own: no fuel, no epochs (a
    job pays for its random bytes in fuel through random_get, not through this module)."""
    global _engine, _module
    with _engine_lock:
        if _engine is None or _module is None:
            config = wasmtime.Config()
            config.cranelift_opt_level = "speed"
            _engine = wasmtime.Engine(config)
            _module = wasmtime.Module(_engine, _module_wat())
        return _engine, _module


class _Hasher:
    """One instance of the module, for one stream (a store is not shared between threads)."""

    def __init__(self, seed: bytes) -> None:
        engine, module = compile_hasher()
        self._store = wasmtime.Store(engine)
        instance = wasmtime.Instance(self._store, module, [])
        exports = instance.exports(self._store)
        fill, memory = exports["fill"], exports["memory"]
        assert isinstance(fill, wasmtime.Func) and isinstance(memory, wasmtime.Memory)
        self._fill, self._memory = fill, memory
        # the seed's words as the module loads them (host order), not as bytes
        memory.write(self._store, struct.pack("<8I", *struct.unpack(">8I", seed)), _SEED_AT)

    def blocks(self, counter: int, count: int) -> bytes:
        """`count` blocks (a multiple of 4, at most PIECE_BLOCKS) from block `counter` on."""
        self._fill(self._store, counter, count // 4)
        base = ctypes.addressof(self._memory.data_ptr(self._store).contents)
        return ctypes.string_at(base + _OUT_AT, 32 * count)


class RandomStream:
    """The job's random bytes; linear in the bytes taken."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise ValueError("the seed is a SHA-256 digest")
        self._seed = seed
        self._prefix = hashlib.sha256(seed)
        self._counter = 0
        self._spare = b""
        self._hasher: _Hasher | None = None

    def take(self, n: int) -> bytes:
        if n <= len(self._spare):
            out, self._spare = self._spare[:n], self._spare[n:]
            return out
        blocks = (n - len(self._spare) + 31) // 32
        parts = [self._spare]
        if blocks < _WASM_MIN_BLOCKS:
            parts.append(self._python_blocks(blocks))
        else:
            if self._hasher is None:
                self._hasher = _Hasher(self._seed)
            blocks += -blocks % 4
            done = 0
            while done < blocks:
                count = min(PIECE_BLOCKS, blocks - done)
                parts.append(self._hasher.blocks(self._counter, count))
                self._counter += count
                done += count
        data = b"".join(parts)
        self._spare = data[n:]
        return data[:n]

    def _python_blocks(self, count: int) -> bytes:
        copy = self._prefix.copy
        parts = []
        for i in range(self._counter, self._counter + count):
            block = copy()
            block.update(i.to_bytes(8, "big"))
            parts.append(block.digest())
        self._counter += count
        return b"".join(parts)
