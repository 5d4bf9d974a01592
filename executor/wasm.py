"""Deterministic WASM runner on wasmtime: same job, same bytes out, on any machine.

The rules (docs/jobs.md pins them for other implementations):
- clocks are virtual: realtime (id 0) starts at 1640995200000000000 ns (2022-01-01T00:00:00Z),
  monotonic (1), process CPU time (2) and thread CPU time (3) start at 0; each read returns
  that clock's value and then advances it by 1,000,000 ns; every clock's resolution is
  1,000,000 ns;
- `random_get` reads a stream: block i is SHA-256(seed ‖ i as 8 bytes big-endian), i = 0, 1,
  …, with seed = SHA-256(canonical job spec); calls consume the stream in order;
- `poll_oneoff` answers at once: clock subscriptions fire, fd subscriptions are ready;
- `proc_exit(n)` ends the job with exit code n, any u32;
- argv is the module CID then the spec's args; the environment is exactly the spec's env;
- stdin is empty; inputs are read-only preopens; `/outputs` is the only writable preopen;
  socket calls answer ENOTSUP; directory listings, inode numbers and timestamps are the same
  on every host (executor/deterministic_fs.py);
- NaNs are canonicalised and relaxed SIMD is deterministic; threads are off.
Limits: fuel (metering is always on, so a job's fuel use is recorded), linear memory (store
limits: a grow past the limit returns -1 on every machine; the host can never be the cause,
executor/host_memory.py) and wall time (epoch interruption, ticked every 10 ms by one daemon
thread). Each run has its own engine, so that cancelling a job can interrupt just that run.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime import (
    Config,
    Engine,
    ExitTrap,
    FuncType,
    Linker,
    Module,
    Store,
    Trap,
    TrapCode,
    ValType,
    WasiConfig,
    WasmtimeError,
)

from executor import host_memory, outcomes
from executor.deterministic_fs import DeterministicFiles, HostRefused
from executor.host_memory import WASM32_MEMORY_BYTES
from executor.random_stream import RandomStream

__all__ = [
    "DETERMINISM",
    "MONOTONIC_START_NS",
    "TARGET",
    "TARGETS",
    "REALTIME_START_NS",
    "TICK_NS",
    "Mount",
    "ModuleCache",
    "WasmCancelled",
    "WasmOutcome",
    "WasmRunError",
    "engine_version",
    "run_module",
]

REALTIME_START_NS = 1_640_995_200_000_000_000
MONOTONIC_START_NS = 0
TICK_NS = 1_000_000
EPOCH_TICK_S = 0.01
WASI = "wasi_snapshot_preview1"

# WASI errno values (wasi_snapshot_preview1)
_OK, _EBADF, _EFAULT, _EINVAL, _ENOTSOCK = 0, 8, 21, 28, 57
# poll_oneoff event types
_EV_CLOCK, _EV_FD_READ, _EV_FD_WRITE = 0, 1, 2


class _ProcExit(Exception):  # noqa: N818 - control flow, not an error
    """Raised by our proc_exit to unwind the guest with its exit code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class WasmRunError(Exception):
    """The job could not run to an exit: bad module, missing entry point, trap or limit.
    `outcome` says how the run ended (executor/outcomes.py), None when it never started."""

    def __init__(self, message: str, outcome: str | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome


class WasmCancelled(WasmRunError):
    """The run was stopped because its job was cancelled."""


@dataclass(frozen=True)
class Mount:
    """A host directory preopened at a guest path."""

    host: Path
    guest: str
    writable: bool = False


@dataclass(frozen=True)
class WasmOutcome:
    exit_code: int
    fuel_used: int
    runtime_ms: int
    compiled: bool  # False when the module came from the cache


# --- engines, the epoch ticker and the compiled-module cache ----------------------------------
#
# Each run gets an engine of its own: wasmtime can interrupt a running guest only through its
# engine's epoch (or fuel), so a per-run engine is what lets a cancel stop exactly one job.
# Creating an engine took 6 µs (median of 200 here); modules are compiled once and
# deserialised into each run's engine from the cache.


# What makes runs of this engine agree, as a receipt names it (executor/run.py): one list for
# the config below, the compiled-module cache's fingerprint and the receipts.
DETERMINISM = (
    "fuel",
    "epoch",
    "nan_canonicalization",
    "relaxed_simd_deterministic",
    "no_threads",
    "reserved_memory",
    "virtual_clocks",
    "seeded_random",
)
# The engines a job may run on: wasmtime's native compiler, and its portable interpreter
# (Pulley), which shares none of Cranelift's machine-code backend: a second engine for
# re-execution (REEXECUTE_ENGINES). Fuel counts and results are the same on both; the depth
# at which a recursion exhausts the stack is not (executor/outcomes.py).
TARGETS = {"cranelift": None, "pulley": "pulley64"}
TARGET = "cranelift"  # the default


def engine_version() -> str:
    return f"wasmtime {importlib.metadata.version('wasmtime')}"


def _config(target: str = TARGET) -> Config:
    config = Config()
    if TARGETS[target] is not None:
        config.target = TARGETS[target]
    config.consume_fuel = True
    config.epoch_interruption = True
    config.cranelift_nan_canonicalization = True
    config.wasm_relaxed_simd_deterministic = True
    config.wasm_threads = False
    # Each linear memory's whole range is reserved when the module is instantiated, and never
    # moves: a grow within the job's limit only unprotects reserved pages, so the host cannot
    # make it return -1 for want of address space (executor/host_memory.py says when the
    # kernel might still refuse, and such a job does not run). A machine that cannot reserve
    # fails the instantiation, a host failure.
    config.memory_reservation = WASM32_MEMORY_BYTES
    config.memory_reservation_for_growth = 0
    config.memory_may_move = False
    return config


class _Ticker:
    """One daemon thread advances every live run's epoch each EPOCH_TICK_S; a cancelled run's
    engine is advanced past its deadline at once, which traps its guest."""

    def __init__(self) -> None:
        self._runs: dict[int, tuple[Engine, int, threading.Event | None]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, eng: Engine, deadline: int, cancel: threading.Event | None) -> int:
        with self._lock:
            token = id(eng)
            self._runs[token] = (eng, deadline, cancel)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="wasm-epoch", daemon=True)
                self._thread.start()
            return token

    def remove(self, token: int) -> None:
        with self._lock:
            self._runs.pop(token, None)

    def _loop(self) -> None:
        while True:
            time.sleep(EPOCH_TICK_S)
            with self._lock:
                runs = list(self._runs.items())
            for token, (eng, deadline, cancel) in runs:
                if cancel is not None and cancel.is_set():
                    for _ in range(deadline + 1):
                        eng.increment_epoch()
                    self.remove(token)
                else:
                    eng.increment_epoch()


_ticker = _Ticker()
_compiler_lock = threading.Lock()
_compilers: dict[str, Engine] = {}


def _compile_engine(target: str) -> Engine:
    with _compiler_lock:
        if target not in _compilers:
            _compilers[target] = Engine(_config(target))
        return _compilers[target]


def _engine_fingerprint(target: str) -> str:
    # Serialized modules load only into an engine of the same wasmtime build, target and config.
    version = importlib.metadata.version("wasmtime")
    flags = ",".join(DETERMINISM)
    return hashlib.sha256(f"{version}|{target}|{flags}".encode()).hexdigest()[:16]


class ModuleCache:
    """Compiled modules by module CID: serialized in memory for this process and on disk for
    the next, deserialised into each run's engine.

    The disk cache is trusted input (deserialising runs native code), so it lives under our
    own data directory, never anywhere a job can write.
    """

    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self._memory: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def get(
        self, cid: str, load_bytes: Callable[[], bytes], eng: Engine, target: str = TARGET
    ) -> tuple[Module, bool]:
        """The module loaded into `eng` (an engine for `target`), and whether it had to be
        compiled now."""
        key = f"{target}:{cid}"
        with self._lock:
            serialized = self._memory.get(key)
        compiled = False
        path = self._path(cid, target)
        if serialized is None and path is not None and path.exists():
            serialized = path.read_bytes()
        if serialized is not None:
            try:
                module = Module.deserialize(eng, serialized)
            except WasmtimeError:
                if path is not None:
                    path.unlink(missing_ok=True)  # a stale or torn file: compile again
                serialized = None
        if serialized is None:
            data = load_bytes()
            # wasmtime would also compile WebAssembly text; a job's module is a binary.
            if not data.startswith(b"\0asm"):
                raise WasmRunError(f"{cid} is not a WASM binary (no \\0asm header)")
            try:
                serialized = Module(_compile_engine(target), data).serialize()
            except WasmtimeError as exc:
                raise WasmRunError(f"not a valid WASM module: {_first_line(exc)}") from None
            compiled = True
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
                tmp.write_bytes(serialized)
                tmp.replace(path)
            module = Module.deserialize(eng, serialized)
        with self._lock:
            self._memory[key] = serialized
        return module, compiled

    def _path(self, cid: str, target: str) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / _engine_fingerprint(target) / f"{cid}.cwasm"


# --- the shadowed WASI imports -----------------------------------------------------------------
#
# wasmtime-py hands i32 arguments to Python as signed integers; WASI pointers and lengths are
# u32, so every one is read through `_u32` (memory above 2 GiB is within our limits).
#
# Host calls do work that wasm's fuel and epoch checks never see, so each shadowed call pays
# fuel for its bytes before doing them, and long ones look at the run's deadline as they go.

# Fuel a shadowed call costs: a fixed part, and one unit per byte it produces or copies.
HOST_CALL_FUEL = 100
FUEL_PER_BYTE = 1
# random_get works in pieces of this size, looking at the deadline between them.
_RANDOM_PIECE = 1 << 20

_PROBE_WAT = """(module
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fdstat (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "errno") (param i32) (result i32) (call $fdstat (local.get 0) (i32.const 0))))"""


def _u32(value: int) -> int:
    return value & 0xFFFFFFFF


class _HostOutOfFuel(Exception):  # noqa: N818 - control flow, not an error
    """A shadowed call could not pay for its work."""


class _HostInterrupted(Exception):  # noqa: N818 - control flow, not an error
    """A shadowed call found the run past its wall time, or cancelled."""


class _VirtualHost:
    """Per-run state of the deterministic imports."""

    def __init__(
        self, seed: bytes, eng: Engine, deadline: float, cancel: threading.Event | None
    ) -> None:
        self.clocks = [REALTIME_START_NS, MONOTONIC_START_NS, 0, 0]
        self.random = RandomStream(seed)
        self._engine = eng
        self._deadline = deadline  # time.monotonic() past which the run has timed out
        self._cancel = cancel
        self._linker: Linker | None = None
        self._probe: wasmtime.Func | None = None

    # --- limits --------------------------------------------------------------------------

    def _check_time(self) -> None:
        if time.monotonic() > self._deadline or (
            self._cancel is not None and self._cancel.is_set()
        ):
            raise _HostInterrupted

    def _charge(self, caller: wasmtime.Caller, nbytes: int) -> None:
        """Take the call's fuel before it works; no fuel left fails the run as wasm would."""
        self._check_time()
        cost = HOST_CALL_FUEL + nbytes * FUEL_PER_BYTE
        # wasmtime-py's fuel calls need only a store context, which a Caller has.
        left = Store.get_fuel(caller)  # type: ignore[arg-type]
        if cost > left:
            Store.set_fuel(caller, 0)  # type: ignore[arg-type]
            raise _HostOutOfFuel
        Store.set_fuel(caller, left - cost)  # type: ignore[arg-type]

    # --- memory --------------------------------------------------------------------------

    @staticmethod
    def _memory(caller: wasmtime.Caller) -> wasmtime.Memory | None:
        memory = caller.get("memory")
        return memory if isinstance(memory, wasmtime.Memory) else None

    @classmethod
    def _fits(cls, caller: wasmtime.Caller, ptr: int, size: int) -> bool:
        memory = cls._memory(caller)
        return memory is not None and ptr + size <= memory.data_len(caller)

    @classmethod
    def _write(cls, caller: wasmtime.Caller, data: bytes, ptr: int) -> bool:
        memory = cls._memory(caller)
        if memory is None or ptr + len(data) > memory.data_len(caller):
            return False
        if data:
            memory.write(caller, data, ptr)
        return True

    # --- file descriptors ----------------------------------------------------------------

    def _fd_errno(self, caller: wasmtime.Caller, fd: int) -> int:
        """0 for an open fd, else wasmtime's errno (EBADF), asked of wasmtime's own WASI.

        The fd table lives inside wasmtime; a tiny module with a memory of its own calls the
        real `fd_fdstat_get` for us, in the job's store, the first time a call needs it.
        """
        if self._probe is None:
            assert self._linker is not None
            module = Module(self._engine, _PROBE_WAT)
            probe = self._linker.instantiate(caller, module).exports(caller)["errno"]
            assert isinstance(probe, wasmtime.Func)
            self._probe = probe
        errno = self._probe(caller, fd)
        assert isinstance(errno, int)
        return errno

    def _not_a_socket(self, caller: wasmtime.Caller, fd: int, *_args: int) -> int:
        # No job has a socket: an open fd is ENOTSOCK, a closed one EBADF, as wasmtime says.
        self._charge(caller, 0)
        errno = self._fd_errno(caller, fd)
        return errno if errno != _OK else _ENOTSOCK

    # --- the calls -----------------------------------------------------------------------

    def _realtime(self) -> int:
        """The realtime clock, read as clock_time_get reads it (and advanced)."""
        value = self.clocks[0]
        self.clocks[0] = value + TICK_NS
        return value

    def clock_time_get(self, caller: wasmtime.Caller, clock: int, _precision: int, out: int) -> int:
        self._charge(caller, 8)
        clock = _u32(clock)
        if clock >= len(self.clocks):
            return _EINVAL
        value = self.clocks[clock]
        self.clocks[clock] = value + TICK_NS
        return _OK if self._write(caller, struct.pack("<Q", value), _u32(out)) else _EFAULT

    def clock_res_get(self, caller: wasmtime.Caller, clock: int, out: int) -> int:
        self._charge(caller, 8)
        if _u32(clock) >= len(self.clocks):
            return _EINVAL
        return _OK if self._write(caller, struct.pack("<Q", TICK_NS), _u32(out)) else _EFAULT

    def random_get(self, caller: wasmtime.Caller, buf: int, size: int) -> int:
        buf, size = _u32(buf), _u32(size)
        if not self._fits(caller, buf, size):
            self._charge(caller, 0)
            return _EFAULT
        self._charge(caller, size)
        for offset in range(0, size, _RANDOM_PIECE):
            self._check_time()
            piece = self.random.take(min(_RANDOM_PIECE, size - offset))
            if not self._write(caller, piece, buf + offset):
                return _EFAULT  # the guest cannot shrink its memory; kept for safety
        return _OK

    def poll_oneoff(
        self, caller: wasmtime.Caller, subs: int, events: int, count: int, out_count: int
    ) -> int:
        subs, events, count, out_count = _u32(subs), _u32(events), _u32(count), _u32(out_count)
        if count == 0:
            self._charge(caller, 0)
            return _EINVAL
        if not self._fits(caller, subs, 48 * count) or not self._fits(caller, events, 32 * count):
            self._charge(caller, 0)
            return _EFAULT
        self._charge(caller, 80 * count)
        memory = self._memory(caller)
        assert memory is not None
        raw = memory.read(caller, subs, subs + 48 * count)
        fd_events: list[bytes] = []
        clock_events: list[bytes] = []
        ready = False
        for i in range(count):
            userdata, tag = struct.unpack_from("<QB", raw, 48 * i)
            if tag in (_EV_FD_READ, _EV_FD_WRITE):
                (fd,) = struct.unpack_from("<i", raw, 48 * i + 16)
                error = self._fd_errno(caller, fd)
                ready = ready or error == _OK
                fd_events.append(_event(userdata, error, tag))
            elif tag == _EV_CLOCK:
                clock_events.append(_event(userdata, _OK, _EV_CLOCK))
            else:
                fd_events.append(_event(userdata, _EINVAL, _EV_CLOCK))
        # Clocks never move, so a clock fires only when nothing else is ready: a sleep
        # returns at once, and a poll on ready fds with a timeout is not a timeout.
        out = fd_events if ready else fd_events + clock_events
        self._write(caller, b"".join(out), events)
        return _OK if self._write(caller, struct.pack("<I", len(out)), out_count) else _EFAULT

    @staticmethod
    def proc_exit(_caller: wasmtime.Caller, code: int) -> None:
        # WASI's exit code is a u32; wasmtime's own proc_exit refuses codes from 126 up.
        raise _ProcExit(_u32(code))

    def define(self, linker: Linker) -> None:
        i32, i64 = ValType.i32(), ValType.i64()
        self._linker = linker
        linker.allow_shadowing = True
        linker.define_func(
            WASI, "proc_exit", FuncType([i32], []), self.proc_exit, access_caller=True
        )
        funcs: list[tuple[str, list[ValType], Callable[..., int]]] = [
            ("clock_time_get", [i32, i64, i32], self.clock_time_get),
            ("clock_res_get", [i32, i32], self.clock_res_get),
            ("random_get", [i32, i32], self.random_get),
            ("poll_oneoff", [i32, i32, i32, i32], self.poll_oneoff),
            ("sock_accept", [i32, i32, i32], self._not_a_socket),
            ("sock_recv", [i32] * 6, self._not_a_socket),
            ("sock_send", [i32] * 5, self._not_a_socket),
            ("sock_shutdown", [i32, i32], self._not_a_socket),
        ]
        for name, params, func in funcs:
            linker.define_func(WASI, name, FuncType(params, [i32]), func, access_caller=True)
        DeterministicFiles(
            self._engine, REALTIME_START_NS, self._charge, self._realtime, self._check_time
        ).define(linker)


def _event(userdata: int, error: int, kind: int) -> bytes:
    # event: userdata u64, error u16, type u8, then fd_readwrite {nbytes u64, flags u16}
    return struct.pack("<QHBxxxxxQHxxxxxx", userdata, error, kind, 0, 0)


# --- running -----------------------------------------------------------------------------------


def _function(exports: Any, name: str) -> wasmtime.Func:
    """An exported function (the module was checked to export `name` as one)."""
    func = exports[name]
    if not isinstance(func, wasmtime.Func):
        raise WasmRunError(f"export {name!r} is not a function")
    return func


def _first_line(exc: BaseException) -> str:
    """wasmtime's message without its backtrace: the cause when it gives one."""
    text = str(exc).strip()
    if "Caused by:" in text:
        causes = text.split("Caused by:", 1)[1].splitlines()
        return "; ".join(c.strip().removeprefix("0: ").strip() for c in causes if c.strip())
    return text.splitlines()[0] if text else type(exc).__name__


def _check_entry_point(module: Module, name: str) -> None:
    for export in module.exports:
        if export.name != name:
            continue
        ty = export.type
        if not isinstance(ty, FuncType):
            raise WasmRunError(f"entry point {name!r} is not a function")
        results = [str(r) for r in ty.results]
        if ty.params or results not in ([], ["i32"]):
            raise WasmRunError(
                f"entry point {name!r} must take no parameters and return nothing "
                f"(or an i32 exit code); it is {_signature(ty)}"
            )
        return
    exported = sorted(e.name for e in module.exports if isinstance(e.type, FuncType))
    hint = f"; the module exports {', '.join(exported[:10])}" if exported else ""
    raise WasmRunError(f"the module has no exported function {name!r}{hint}")


def _signature(ty: FuncType) -> str:
    params = ", ".join(str(p) for p in ty.params)
    results = ", ".join(str(r) for r in ty.results)
    return f"({params}) -> ({results})"


def _check_imports(module: Module) -> None:
    for imp in module.imports:
        if imp.module != WASI:
            raise WasmRunError(
                f"the module imports {imp.module}.{imp.name}; only {WASI} is provided"
            )


def _memory_note(store: Store, instance: wasmtime.Instance, limit: int) -> str:
    # Store limits make memory.grow fail rather than trap, so a guest that runs out of memory
    # traps later in its own code (Rust aborts with `unreachable`); say when that is likely.
    memory = instance.exports(store).get("memory")
    if isinstance(memory, wasmtime.Memory):
        used = memory.data_len(store)
        if used >= limit * 0.9 or used + (1 << 20) > limit:
            return f" (linear memory {used} of its {limit}-byte limit: likely out of memory)"
    return ""


# wasmtime's own WASI calls trap when the guest passes them an argument they cannot take (a
# misaligned or out-of-bounds pointer, a bad flag: wiggle's GuestError): the program's fault,
# the same on every wasmtime and engine, not the host's.
_GUEST_ERRORS = (
    "Invalid flag value",
    "Invalid enum value",
    "Pointer overflow",
    "Pointer out of bounds",
    "Pointer not aligned",
    "Pointer already borrowed",
    "Borrow checker out of handles",
    "Slice length mismatch",
    "In func ",
    "Invalid UTF-8 encountered",
    "Int conversion error",
)


def _interrupted(cancel: threading.Event | None, timeout_s: float) -> WasmRunError:
    if cancel is not None and cancel.is_set():
        return WasmCancelled("cancelled while running")
    return WasmRunError(f"wall-time limit of {timeout_s} s exceeded", outcomes.TIMED_OUT)


def run_module(
    module_cid: str,
    load_module: Callable[[], bytes],
    *,
    cache: ModuleCache,
    entry_point: str,
    args: tuple[str, ...],
    env: tuple[tuple[str, str], ...],
    mounts: list[Mount],
    stdout: Path,
    stderr: Path,
    seed: bytes,
    timeout_s: float,
    memory_bytes: int,
    fuel: int | None,
    cancel: threading.Event | None = None,
    deadline: float | None = None,
    target: str = TARGET,
) -> WasmOutcome:
    """Run one module to its exit on `target` (TARGETS); raises WasmRunError with a one-line
    reason otherwise (WasmCancelled when `cancel` was set while it ran). The run stops at
    `deadline` (a time.monotonic() value; default `timeout_s` from now), and the reason
    names `timeout_s`."""
    if deadline is None:
        deadline = time.monotonic() + timeout_s
    refused = host_memory.refusal(memory_bytes)
    if refused is not None:
        raise WasmRunError(f"not run: {refused}", outcomes.HOST_FAILURE)
    eng = Engine(_config(target))
    module, compiled = cache.get(module_cid, load_module, eng, target)
    _check_imports(module)
    _check_entry_point(module, entry_point)

    store = Store(eng)
    budget = fuel if fuel is not None else (1 << 63) - 1
    store.set_fuel(budget)
    store.set_limits(memory_size=memory_bytes)
    ticks = max(1, int((deadline - time.monotonic()) / EPOCH_TICK_S + 0.999999))
    store.set_epoch_deadline(ticks)

    wasi = WasiConfig()
    wasi.argv = [module_cid, *args]
    wasi.env = [[k, v] for k, v in env]
    wasi.stdout_file = str(stdout)
    wasi.stderr_file = str(stderr)
    for mount in mounts:
        wasi.preopen_dir(str(mount.host), mount.guest, mount.writable)
    store.set_wasi(wasi)

    linker = Linker(eng)
    linker.define_wasi()
    started = time.perf_counter()
    _VirtualHost(seed, eng, deadline, cancel).define(linker)

    def fuel_used() -> int:
        return budget - store.get_fuel()

    instance = None
    token = _ticker.add(eng, ticks, cancel)
    try:
        try:
            instance = linker.instantiate(store, module)
        except WasmtimeError as exc:
            # The module's own demands (a memory larger than the limit) fail on every machine;
            # the host's refusal (no address space for the reservation) is "os error".
            host = "os error" in str(exc)
            raise WasmRunError(
                f"the module could not be instantiated: {_first_line(exc)}",
                outcomes.HOST_FAILURE if host else None,
            ) from None
        exports = instance.exports(store)
        if entry_point != "_start" and "_initialize" in exports:
            _function(exports, "_initialize")(store)
        result = _function(exports, entry_point)(store)
        exit_code = result if isinstance(result, int) else 0
    except _ProcExit as exc:
        exit_code = exc.code
    except ExitTrap as exc:
        exit_code = exc.code
    except _HostOutOfFuel:
        raise WasmRunError(f"fuel limit of {budget} exhausted", outcomes.FUEL_EXHAUSTED) from None
    except _HostInterrupted:
        raise _interrupted(cancel, timeout_s) from None
    except HostRefused as exc:
        raise WasmRunError(str(exc), outcomes.HOST_FAILURE) from None
    except Trap as exc:
        if exc.trap_code == TrapCode.OUT_OF_FUEL:
            raise WasmRunError(
                f"fuel limit of {budget} exhausted", outcomes.FUEL_EXHAUSTED
            ) from None
        if exc.trap_code == TrapCode.INTERRUPT:
            raise _interrupted(cancel, timeout_s) from None
        if exc.trap_code == TrapCode.STACK_OVERFLOW:
            raise WasmRunError(
                f"the module exhausted the engine's stack: {_first_line(exc)}",
                outcomes.STACK_EXHAUSTED,
            ) from None
        note = _memory_note(store, instance, memory_bytes) if instance is not None else ""
        raise WasmRunError(
            f"the module trapped: {_first_line(exc)}{note}", outcomes.FAILED_IN_PROGRAM
        ) from None
    except WasmtimeError as exc:
        reason = _first_line(exc)
        if any(cause.startswith(_GUEST_ERRORS) for cause in reason.split("; ")):
            raise WasmRunError(
                f"the module passed WASI a bad argument: {reason}", outcomes.FAILED_IN_PROGRAM
            ) from None
        raise WasmRunError(f"the module failed: {reason}", outcomes.HOST_FAILURE) from None
    except MemoryError:
        raise WasmRunError("the host ran out of memory", outcomes.HOST_FAILURE) from None
    finally:
        _ticker.remove(token)
    runtime_ms = int((time.perf_counter() - started) * 1000)
    return WasmOutcome(
        exit_code=exit_code, fuel_used=fuel_used(), runtime_ms=runtime_ms, compiled=compiled
    )
