"""Hand-written WAT modules for the runner's edge cases, compiled with wasmtime.wat2wasm."""

from __future__ import annotations

import wasmtime

_IMPORTS = """
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get"
    (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_res_get" (func $clock_res_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept" (func $sock_accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_shutdown" (func $sock_shutdown (param i32 i32) (result i32)))
"""

# $write(ptr, len) to stdout; $u64(v) prints decimal + newline; $hex(ptr, n) prints hex + newline.
_LIB = """
  (memory (export "memory") 1)
  (data (i32.const 8000) "0123456789abcdef\\n")
  (func $write (param $p i32) (param $n i32)
    (i32.store (i32.const 0) (local.get $p))
    (i32.store (i32.const 4) (local.get $n))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $u64 (param $v i64) (local $pos i32)
    (local.set $pos (i32.const 7100))
    (loop $l
      (local.set $pos (i32.sub (local.get $pos) (i32.const 1)))
      (i64.store8 (local.get $pos) (i64.add (i64.const 48) (i64.rem_u (local.get $v) (i64.const 10))))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $l (i64.ne (local.get $v) (i64.const 0))))
    (call $write (local.get $pos) (i32.sub (i32.const 7100) (local.get $pos)))
    (call $write (i32.const 8016) (i32.const 1)))
  (func $hex (param $p i32) (param $n i32) (local $i i32) (local $b i32)
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $b (i32.load8_u (i32.add (local.get $p) (local.get $i))))
      (call $write (i32.add (i32.const 8000) (i32.shr_u (local.get $b) (i32.const 4))) (i32.const 1))
      (call $write (i32.add (i32.const 8000) (i32.and (local.get $b) (i32.const 15))) (i32.const 1))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l)))
    (call $write (i32.const 8016) (i32.const 1)))
"""


def _module(body: str) -> bytes:
    # wat2wasm gives a bytearray; bytes is what every consumer (httpx among them) expects.
    return bytes(wasmtime.wat2wasm(f"(module {_IMPORTS} {_LIB} {body})"))


def clocks_and_random() -> bytes:
    """Prints realtime, realtime, monotonic, monotonic, the realtime resolution (one per
    line), then 20 random bytes, 44 more, and an errno line of a bad clock id."""
    return _module("""
  (func $clock (param $id i32)
    (drop (call $clock_time_get (local.get $id) (i64.const 1) (i32.const 16)))
    (call $u64 (i64.load (i32.const 16))))
  (func (export "_start")
    (call $clock (i32.const 0)) (call $clock (i32.const 0))
    (call $clock (i32.const 1)) (call $clock (i32.const 1))
    (drop (call $clock_res_get (i32.const 0) (i32.const 16)))
    (call $u64 (i64.load (i32.const 16)))
    (drop (call $random_get (i32.const 6000) (i32.const 20)))
    (call $hex (i32.const 6000) (i32.const 20))
    (drop (call $random_get (i32.const 6000) (i32.const 44)))
    (call $hex (i32.const 6000) (i32.const 44))
    (call $u64 (i64.extend_i32_u (call $clock_time_get (i32.const 9) (i64.const 1) (i32.const 16)))))
""")


def exit_with(code: int) -> bytes:
    return _module(f"""(func (export "_start") (call $proc_exit (i32.const {code})))""")


def spin() -> bytes:
    """An infinite loop."""
    return _module("""(func (export "_start") (loop $l (br $l)))""")


def memory_bomb() -> bytes:
    """Grows memory 16 pages (1 MiB) at a time until refused, then traps."""
    return _module("""
  (func (export "_start")
    (loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable)
""")


def trap() -> bytes:
    return _module("""(func (export "_start") unreachable)""")


def divide_by_zero() -> bytes:
    return _module("""(func (export "_start") (drop (i32.div_u (i32.const 1) (i32.const 0))))""")


def recursion() -> bytes:
    """Calls itself until the engine's stack runs out."""
    return _module("""
  (func $deeper (param i64) (call $deeper (i64.add (local.get 0) (i64.const 1))))
  (func (export "_start") (call $deeper (i64.const 0)))
""")


def nan_bits() -> bytes:
    """Prints the bits of a NaN that carries a payload through an addition: canonicalised
    (7fc00000) on an engine that canonicalises NaNs, the payload kept otherwise."""
    return _module("""
  (func (export "_start")
    (call $u64 (i64.extend_i32_u (i32.reinterpret_f32
      (f32.add (f32.const nan:0x200001) (f32.const 1))))))
""")


def only_main() -> bytes:
    """Exports `main` and no `_start`."""
    return _module("""(func (export "main") (call $write (i32.const 8000) (i32.const 3)))""")


def typed_start() -> bytes:
    """`_start` wrongly takes a parameter."""
    return _module("""(func (export "_start") (param i32))""")


def reactor() -> bytes:
    """A reactor: `_initialize` prints 'init', `work` prints 'work' and returns 5."""
    return _module("""
  (data (i32.const 7200) "init\\nwork\\n")
  (func (export "_initialize") (call $write (i32.const 7200) (i32.const 5)))
  (func (export "work") (result i32) (call $write (i32.const 7205) (i32.const 5)) (i32.const 5))
""")


def sleeper() -> bytes:
    """Sleeps 1000 s through poll_oneoff, then prints the errno of a sock_accept."""
    return _module("""
  (func (export "_start")
    ;; one clock subscription: userdata 42, tag 0, clock id 1, timeout 1000 s, relative
    (i64.store (i32.const 3000) (i64.const 42))
    (i32.store8 (i32.const 3008) (i32.const 0))
    (i32.store (i32.const 3016) (i32.const 1))
    (i64.store (i32.const 3024) (i64.const 1000000000000))
    (i64.store (i32.const 3032) (i64.const 0))
    (i32.store16 (i32.const 3040) (i32.const 0))
    (call $u64 (i64.extend_i32_u
      (call $poll_oneoff (i32.const 3000) (i32.const 3100) (i32.const 1) (i32.const 3200))))
    (call $u64 (i64.extend_i32_u (i32.load (i32.const 3200))))
    (call $u64 (i64.load (i32.const 3100)))
    (call $u64 (i64.extend_i32_u (call $sock_accept (i32.const 3) (i32.const 0) (i32.const 3300)))))
""")


def imports_env() -> bytes:
    """Imports a function from a module other than WASI."""
    return bytes(
        wasmtime.wat2wasm(
            """(module (import "env" "host" (func)) (func (export "_start") (call 0)))"""
        )
    )


def xorshift(iterations: int) -> bytes:
    """Computes for a while: xorshift64 for `iterations` rounds (a tight integer loop, the
    worst case for fuel metering), then exits 0. No imports."""
    return bytes(
        wasmtime.wat2wasm(f"""
(module
  (memory (export "memory") 1)
  (func (export "_start") (local $i i64) (local $x i64)
    (local.set $x (i64.const 88172645463325252))
    (loop $l
      (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 13))))
      (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 7))))
      (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 17))))
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (br_if $l (i64.lt_u (local.get $i) (i64.const {iterations}))))
    (i64.store (i32.const 0) (local.get $x))))
""")
    )


def random_bytes(size: int, calls: int = 1, *, write: bool = True) -> bytes:
    """Grows memory to hold `size` bytes at 65536, fills them `calls` times with random_get,
    writing them to stdout after each call unless `write` is false, then exits 0."""
    pages = size // 65536 + 2
    out = f"(call $write (i32.const 65536) (i32.const {size}))" if write else ""
    return _module(f"""
  (func (export "_start") (local $i i32)
    (drop (memory.grow (i32.const {pages})))
    (loop $l
      (drop (call $random_get (i32.const 65536) (i32.const {size})))
      {out}
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const {calls})))))
""")


def random_loop(size: int, calls: int) -> bytes:
    """Calls random_get(`size` bytes) `calls` times without printing, then exits 0."""
    return random_bytes(size, calls, write=False)


def high_memory() -> bytes:
    """Grows memory past 2 GiB, then uses addresses from 0x80000000 up: 16 random bytes there,
    a realtime read at 0x80000010 and an 8-byte clock resolution at 0x80000018. Prints the
    three errnos, the random bytes in hex, the realtime and the resolution."""
    return _module("""
  (func $copy (param $n i32) (local $i i32)  ;; high memory to 6000, then print as hex
    (loop $l
      (i32.store8 (i32.add (i32.const 6000) (local.get $i))
        (i32.load8_u (i32.add (i32.const 0x80000000) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
    (call $hex (i32.const 6000) (local.get $n)))
  (func (export "_start")
    (if (i32.eq (memory.grow (i32.const 32768)) (i32.const -1)) (then unreachable))
    (call $u64 (i64.extend_i32_u (call $random_get (i32.const 0x80000000) (i32.const 16))))
    (call $u64 (i64.extend_i32_u
      (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 0x80000010))))
    (call $u64 (i64.extend_i32_u (call $clock_res_get (i32.const 1) (i32.const 0x80000018))))
    (call $copy (i32.const 16))
    (call $u64 (i64.load (i32.const 0x80000010)))
    (call $u64 (i64.load (i32.const 0x80000018))))
""")


def _subscription(at: int, userdata: int, tag: int, fd_or_clock: int) -> str:
    # subscription: userdata u64, tag u8, then fd u32 or a clock {id u32, timeout u64, ...}
    return f"""
    (i64.store (i32.const {at}) (i64.const {userdata}))
    (i32.store8 (i32.const {at + 8}) (i32.const {tag}))
    (i32.store (i32.const {at + 16}) (i32.const {fd_or_clock}))
    (i64.store (i32.const {at + 24}) (i64.const 1000000000))"""


def _print_events(events: int) -> str:
    """Prints poll_oneoff's errno, the event count, then each event's userdata, error, type."""
    body = """
    (call $u64 (i64.extend_i32_u (local.get $errno)))
    (call $u64 (i64.extend_i32_u (i32.load (i32.const 3900))))"""
    for i in range(events):
        at = 3500 + 32 * i
        body += f"""
    (call $u64 (i64.load (i32.const {at})))
    (call $u64 (i64.extend_i32_u (i32.load16_u (i32.const {at + 8}))))
    (call $u64 (i64.extend_i32_u (i32.load8_u (i32.const {at + 10}))))"""
    return body


def poll_fds() -> bytes:
    """Two poll_oneoff calls, each printed with _print_events: a 1 s clock (userdata 1) with
    stdout writable (userdata 2); then an unopened fd 99 for reading (userdata 3) with a
    clock (userdata 4)."""
    return _module(f"""
  (func (export "_start") (local $errno i32)
    {_subscription(3000, 1, 0, 1)}
    {_subscription(3048, 2, 2, 1)}
    (local.set $errno (call $poll_oneoff (i32.const 3000) (i32.const 3500) (i32.const 2) (i32.const 3900)))
    {_print_events(1)}
    {_subscription(3000, 3, 1, 99)}
    {_subscription(3048, 4, 0, 1)}
    (local.set $errno (call $poll_oneoff (i32.const 3000) (i32.const 3500) (i32.const 2) (i32.const 3900)))
    {_print_events(2)})
""")


def sockets() -> bytes:
    """Prints the errnos of sock_shutdown on an unopened fd (99), on stdout (1) and of
    sock_accept on fd 3 (a preopened directory)."""
    return _module("""
  (func (export "_start")
    (call $u64 (i64.extend_i32_u (call $sock_shutdown (i32.const 99) (i32.const 1))))
    (call $u64 (i64.extend_i32_u (call $sock_shutdown (i32.const 1) (i32.const 1))))
    (call $u64 (i64.extend_i32_u (call $sock_accept (i32.const 3) (i32.const 0) (i32.const 3300)))))
""")


_FILE_IMPORTS = """
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
"""


def clock_random_and_input(name: str = "input.txt") -> bytes:
    """Prints the realtime clock, 16 random bytes in hex and the first 4 KiB of `name` in the
    first preopened directory (fd 3: the first input's folder), and copies those bytes to
    `copy` in the second (fd 4: /outputs when there is one input). Exit code 2 when `name`
    cannot be opened, 3 when `copy` cannot be created."""
    path = name.encode()
    body = f"""
  (data (i32.const 9000) "{name}")
  (data (i32.const 9100) "copy")
  (func (export "_start")
    (drop (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 16)))
    (call $u64 (i64.load (i32.const 16)))
    (drop (call $random_get (i32.const 6000) (i32.const 16)))
    (call $hex (i32.const 6000) (i32.const 16))
    (if (i32.ne (call $path_open (i32.const 3) (i32.const 0) (i32.const 9000) (i32.const {len(path)})
                  (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 10000))
                (i32.const 0))
      (then (call $proc_exit (i32.const 2))))
    (i32.store (i32.const 10016) (i32.const 11000))
    (i32.store (i32.const 10020) (i32.const 4096))
    (drop (call $fd_read (i32.load (i32.const 10000)) (i32.const 10016) (i32.const 1) (i32.const 10008)))
    (call $write (i32.const 11000) (i32.load (i32.const 10008)))
    (if (i32.ne (call $path_open (i32.const 4) (i32.const 0) (i32.const 9100) (i32.const 4)
                  (i32.const 1) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 10004))
                (i32.const 0))
      (then (call $proc_exit (i32.const 3))))
    (i32.store (i32.const 10016) (i32.const 11000))
    (i32.store (i32.const 10020) (i32.load (i32.const 10008)))
    (drop (call $fd_write (i32.load (i32.const 10004)) (i32.const 10016) (i32.const 1) (i32.const 10012))))
"""
    return bytes(wasmtime.wat2wasm(f"(module {_IMPORTS} {_FILE_IMPORTS} {_LIB} {body})"))
