"""The WASM workloads build from source into valid WASI modules and behave as specified when run
under plain wasmtime-py WASI (not our deterministic runner, which has its own tests).

A few tests replace the WASI clock and random imports with recording stand-ins: that proves the
C and Rust standard libraries reach exactly those imports, which the runner's determinism needs.
"""

from __future__ import annotations

import re
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
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

from tests.executor import resize_reference as ref
from tests.executor import wasm_build

WORKLOADS = ["cat", "probe", "resize"]
WASI = "wasi_snapshot_preview1"
REALTIME_START_NS = 1_640_995_200_000_000_000
TICK_NS = 1_000_000
_ENGINE = Engine()


@dataclass
class Run:
    exit_code: int | None  # None when the guest trapped
    stdout: bytes
    stderr: bytes
    trap: Trap | None = None


@dataclass
class Mount:
    host: Path
    guest: str
    writable: bool = False


@dataclass
class Shadow:
    """Stand-ins for the WASI clock and random imports that record what the guest asked."""

    random_bytes: bytes = bytes(range(256))
    random_calls: list[int] = field(default_factory=list)
    clock_reads: list[int] = field(default_factory=list)
    _clocks: dict[int, int] = field(default_factory=lambda: {0: REALTIME_START_NS})
    _random_pos: int = 0

    def install(self, linker: Linker) -> None:
        i32, i64 = ValType.i32(), ValType.i64()
        linker.allow_shadowing = True
        linker.define_func(
            WASI, "clock_time_get", FuncType([i32, i64, i32], [i32]), self._time, True
        )
        linker.define_func(WASI, "random_get", FuncType([i32, i32], [i32]), self._random, True)

    def _time(self, caller: Any, clock_id: int, _precision: int, out: int) -> int:
        self.clock_reads.append(clock_id)
        now = self._clocks.get(clock_id, 0)
        self._clocks[clock_id] = now + TICK_NS
        caller["memory"].write(caller, struct.pack("<Q", now), out)
        return 0

    def _random(self, caller: Any, buf: int, length: int) -> int:
        self.random_calls.append(length)
        chunk = self.random_bytes[self._random_pos : self._random_pos + length]
        assert len(chunk) == length, "the test's random bytes ran out"
        self._random_pos += length
        caller["memory"].write(caller, chunk, buf)
        return 0


_compiled: dict[str, Module] = {}


def compiled(name: str) -> Module:
    """The workload compiled once per test session for the shared engine."""
    path = wasm_build.require(name)  # skips or fails here, not at collection
    if name not in _compiled:
        _compiled[name] = Module.from_file(_ENGINE, str(path))
    return _compiled[name]


def run(
    module: Module,
    args: list[str],
    tmp_path: Path,
    mounts: list[Mount],
    env: dict[str, str] | None = None,
    shadow: Shadow | None = None,
    configure: Callable[[Store], None] | None = None,
    engine: Engine = _ENGINE,
) -> Run:
    """Run `_start` with plain wasmtime-py WASI and collect what the guest wrote."""
    wasi = WasiConfig()
    wasi.argv = ["module.wasm", *args]
    wasi.env = sorted((env or {}).items())
    for mount in mounts:
        wasi.preopen_dir(str(mount.host), mount.guest, mount.writable)
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    wasi.stdout_file = str(stdout)
    wasi.stderr_file = str(stderr)
    store = Store(engine)
    store.set_wasi(wasi)
    if configure is not None:
        configure(store)
    linker = Linker(engine)
    linker.define_wasi()
    if shadow is not None:
        shadow.install(linker)
    instance = linker.instantiate(store, module)
    exit_code: int | None = 0
    trap = None
    try:
        instance.exports(store)["_start"](store)
    except ExitTrap as exc:
        exit_code = exc.code
    except Trap as exc:
        exit_code, trap = None, exc
    return Run(exit_code, stdout.read_bytes(), stderr.read_bytes(), trap)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_bytes(b"alpha\n")
    (data / "b.bin").write_bytes(bytes(range(256)) * 3)
    return data


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    out = tmp_path / "outputs"
    out.mkdir()
    return out


@pytest.fixture
def mounts(data_dir: Path, outputs: Path) -> list[Mount]:
    return [Mount(data_dir, "/data"), Mount(outputs, "/outputs", writable=True)]


# --- the builds ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", WORKLOADS)
def test_builds_a_wasi_command_module(name: str) -> None:
    path = wasm_build.require(name)
    module = Module(_ENGINE, path.read_bytes())
    exports = {export.name: export.type for export in module.exports}
    assert isinstance(exports["_start"], FuncType)
    assert exports["_start"].params == [] and exports["_start"].results == []
    assert {imp.module for imp in module.imports} == {WASI}
    # The checkout's location must not leak into the bytes: the module CID depends on them.
    assert str(wasm_build.SOURCE_DIR).encode() not in path.read_bytes()


def test_build_is_cached_under_tools_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wasm_build.require("cat")
    monkeypatch.setenv("FILPLUS_TOOLS_DIR", str(tmp_path))
    first = wasm_build.build("cat")
    assert first.parent == tmp_path / "wasm"
    assert re.fullmatch(r"cat-[0-9a-f]{64}\.wasm", first.name)
    stamp = first.stat().st_mtime_ns
    assert wasm_build.build("cat") == first
    assert first.stat().st_mtime_ns == stamp, "the second build must reuse the cached file"
    assert [p.name for p in first.parent.iterdir()] == [first.name], "no temporary file left"


def test_rust_build_does_not_depend_on_checkout_path(tmp_path: Path) -> None:
    """The same source compiled from another directory gives the same bytes."""
    built = wasm_build.require("probe")
    copy = tmp_path / "elsewhere" / "probe.rs"
    copy.parent.mkdir()
    copy.write_bytes(wasm_build.source_path("probe").read_bytes())
    output = tmp_path / "probe.wasm"
    subprocess.run(wasm_build.build_command(copy, output), check=True, capture_output=True)
    assert output.read_bytes() == built.read_bytes()


def test_missing_toolchain_names_the_installer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    wasm_build._version_text.cache_clear()
    try:
        reason = wasm_build.toolchain_missing("cat")
        assert reason is not None
        assert "clang-14" in reason and ".ci/install-wasm-toolchains.sh" in reason
        monkeypatch.delenv("CI", raising=False)
        with pytest.raises(pytest.skip.Exception, match="install-wasm-toolchains"):
            wasm_build.require("cat")
        monkeypatch.setenv("CI", "true")
        with pytest.raises(pytest.fail.Exception, match="install-wasm-toolchains"):
            wasm_build.require("cat")
    finally:
        wasm_build._version_text.cache_clear()


def test_unknown_workload_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"no single WASM source named 'nope'.*'cat'"):
        wasm_build.source_path("nope")


# --- cat (C, wasi-libc) ----------------------------------------------------------------------


def test_cat_concatenates_and_reports(
    tmp_path: Path, mounts: list[Mount], data_dir: Path, outputs: Path
) -> None:
    result = run(compiled("cat"), ["/data/a.txt", "/data/b.bin"], tmp_path, mounts)
    expected = (data_dir / "a.txt").read_bytes() + (data_dir / "b.bin").read_bytes()
    assert result.exit_code == 0, result.stderr
    assert result.stdout == expected
    assert re.fullmatch(
        rb"bytes=%d now=\d+ mono=\d+ rand=[0-9a-f]{16}\n" % len(expected), result.stderr
    )
    assert (outputs / "count.txt").read_text() == f"{len(expected)}\n"


def test_cat_clock_and_random_go_through_wasi(tmp_path: Path, mounts: list[Mount]) -> None:
    module = compiled("cat")
    runs = []
    for seed in (b"\x01" * 256, b"\x01" * 256, b"\x02" * 256):
        shadow = Shadow(random_bytes=seed)
        runs.append(run(module, ["/data/a.txt"], tmp_path, mounts, shadow=shadow))
        assert shadow.clock_reads == [0, 1]  # CLOCK_REALTIME, then CLOCK_MONOTONIC
        assert shadow.random_calls == [32]  # wasi-libc seeds arc4random with one 32-byte read
    line = runs[0].stderr.decode()
    assert line.startswith(f"bytes=6 now={REALTIME_START_NS} mono=0 rand=")
    assert runs[0].stderr == runs[1].stderr
    assert runs[2].stderr != runs[0].stderr


def test_cat_missing_file_fails_with_a_message(tmp_path: Path, mounts: list[Mount]) -> None:
    result = run(compiled("cat"), ["/data/nope.txt"], tmp_path, mounts)
    assert result.exit_code == 1
    assert result.stderr == b"cat: /data/nope.txt: No such file or directory\n"


def test_cat_cannot_reach_outside_the_mounts(tmp_path: Path, mounts: list[Mount]) -> None:
    result = run(compiled("cat"), ["/etc/hostname"], tmp_path, mounts)
    assert result.exit_code == 1
    assert result.stdout == b""
    assert result.stderr.startswith(b"cat: /etc/hostname: ")


# --- probe (Rust std) ------------------------------------------------------------------------


def probe(tmp_path: Path, mounts: list[Mount], *args: str, **kwargs: Any) -> Run:
    return run(compiled("probe"), list(args), tmp_path, mounts, **kwargs)


def test_probe_reads_a_mounted_file(tmp_path: Path, mounts: list[Mount]) -> None:
    result = probe(tmp_path, mounts, "read", "/data/b.bin")
    assert (result.exit_code, result.stdout) == (0, bytes(range(256)) * 3)


def test_probe_read_errors(tmp_path: Path, mounts: list[Mount]) -> None:
    missing = probe(tmp_path, mounts, "read", "/data/nope")
    assert missing.exit_code == 1
    assert missing.stdout == b"error: /data/nope: No such file or directory (os error 44)\n"
    outside = probe(tmp_path, mounts, "read", "/etc/passwd")
    assert outside.exit_code == 1
    assert b"failed to find a pre-opened file descriptor" in outside.stdout


def test_probe_writes_only_to_the_writable_mount(
    tmp_path: Path, mounts: list[Mount], data_dir: Path, outputs: Path
) -> None:
    ok = probe(tmp_path, mounts, "write", "/outputs/note.txt", "hello there")
    assert (ok.exit_code, ok.stdout) == (0, b"ok\n")
    assert (outputs / "note.txt").read_text() == "hello there"

    refused = probe(tmp_path, mounts, "write", "/data/a.txt", "overwritten")
    assert refused.exit_code == 1
    assert refused.stdout.startswith(b"error: /data/a.txt: ")
    assert (data_dir / "a.txt").read_bytes() == b"alpha\n"
    created = probe(tmp_path, mounts, "write", "/data/new.txt", "x")
    assert created.exit_code == 1
    assert not (data_dir / "new.txt").exists()


def test_probe_lists_directories_sorted(
    tmp_path: Path, mounts: list[Mount], data_dir: Path
) -> None:
    (data_dir / "sub").mkdir()
    (data_dir / "0first").write_text("")
    result = probe(tmp_path, mounts, "ls", "/data")
    assert (result.exit_code, result.stdout) == (0, b"0first\na.txt\nb.bin\nsub/\n")


def test_probe_env_and_args_are_exactly_what_was_given(tmp_path: Path, mounts: list[Mount]) -> None:
    env = probe(tmp_path, mounts, "env", env={"ZED": "last", "ALPHA": "a=b c"})
    assert env.stdout == b"ALPHA=a=b c\nZED=last\n"
    args = probe(tmp_path, mounts, "args", env={})
    assert args.stdout == b"module.wasm\nargs\n"
    empty = probe(tmp_path, mounts, "env")
    assert empty.stdout == b""


def test_probe_time_reads_the_wasi_clocks(tmp_path: Path, mounts: list[Mount]) -> None:
    plain = probe(tmp_path, mounts, "time")
    assert re.fullmatch(rb"system_ns=\d{19}\nelapsed_ns=\d+\nelapsed_ns=\d+\n", plain.stdout)

    shadow = Shadow()
    virtual = probe(tmp_path, mounts, "time", shadow=shadow)
    assert shadow.clock_reads == [0, 1, 1, 1]  # SystemTime, then Instant::now and two elapsed
    assert (
        virtual.stdout
        == (
            f"system_ns={REALTIME_START_NS}\nelapsed_ns={TICK_NS}\nelapsed_ns={2 * TICK_NS}\n"
        ).encode()
    )


def test_probe_random_raw_is_random_get_verbatim(tmp_path: Path, mounts: list[Mount]) -> None:
    plain = probe(tmp_path, mounts, "random-raw", "12")
    assert re.fullmatch(rb"[0-9a-f]{24}\n", plain.stdout)
    shadow = Shadow()
    result = probe(tmp_path, mounts, "random-raw", "12", shadow=shadow)
    assert shadow.random_calls == [12]
    assert result.stdout == bytes(range(12)).hex().encode() + b"\n"


def test_probe_random_uses_randomstate_seeded_once_by_random_get(
    tmp_path: Path, mounts: list[Mount]
) -> None:
    outputs = []
    for seed in (b"\x07" * 256, b"\x07" * 256, b"\x08" * 256):
        shadow = Shadow(random_bytes=seed)
        result = probe(tmp_path, mounts, "random", "40", shadow=shadow)
        assert result.exit_code == 0
        # std's RandomState: one random_get of 16 bytes (the SipHash keys), whatever N is.
        assert shadow.random_calls == [16]
        outputs.append(result.stdout)
    assert re.fullmatch(rb"[0-9a-f]{80}\n", outputs[0])
    assert outputs[0] == outputs[1]
    assert outputs[0] != outputs[2]


@pytest.mark.parametrize("code", [0, 3, 125])
def test_probe_exit_code_is_reported(tmp_path: Path, mounts: list[Mount], code: int) -> None:
    assert probe(tmp_path, mounts, "exit", str(code)).exit_code == code


def test_plain_wasi_refuses_exit_codes_from_126(tmp_path: Path, mounts: list[Mount]) -> None:
    """wasmtime's own proc_exit rejects 126..255 with an error rather than an ExitTrap, so a
    runner that records every code must handle (or shadow) that case."""
    with pytest.raises(WasmtimeError, match=r"invalid exit status outside of \[0\.\.126\)"):
        probe(tmp_path, mounts, "exit", "200")


def test_probe_bad_usage(tmp_path: Path, mounts: list[Mount]) -> None:
    result = probe(tmp_path, mounts, "frobnicate")
    assert result.exit_code == 2
    assert result.stderr.startswith(b"usage: probe read PATH")
    bad = probe(tmp_path, mounts, "alloc", "lots")
    assert (bad.exit_code, bad.stderr) == (
        1,
        b'probe: expected a non-negative integer, got "lots"\n',
    )


def test_probe_panic_traps(tmp_path: Path, mounts: list[Mount]) -> None:
    result = probe(tmp_path, mounts, "panic")
    assert result.exit_code is None and result.trap is not None
    assert result.trap.trap_code == TrapCode.UNREACHABLE
    assert b"panicked at 'probe: panic requested', wasm_src/probe.rs" in result.stderr


def test_probe_alloc_touches_memory_and_a_limit_stops_it(
    tmp_path: Path, mounts: list[Mount]
) -> None:
    module = compiled("probe")
    fine = run(module, ["alloc", "8"], tmp_path, mounts)
    assert fine.stdout == b"allocated 8 MiB (checksum 36)\n"

    def limit(store: Store) -> None:
        store.set_limits(memory_size=16 * 2**20)

    bomb = run(module, ["alloc", "64"], tmp_path, mounts, configure=limit)
    assert bomb.exit_code is None and bomb.trap is not None
    assert b"memory allocation of 1048576 bytes failed" in bomb.stderr


def test_probe_spin_is_stopped_by_fuel(tmp_path: Path, mounts: list[Mount]) -> None:
    config = Config()
    config.consume_fuel = True
    engine = Engine(config)
    module = Module.from_file(engine, str(wasm_build.require("probe")))

    def fuel(store: Store) -> None:
        store.set_fuel(5_000_000)

    result = run(module, ["spin"], tmp_path, mounts, configure=fuel, engine=engine)
    assert result.trap is not None and result.trap.trap_code == TrapCode.OUT_OF_FUEL


# --- resize (Rust std, the demo) -------------------------------------------------------------


def test_reference_filter_by_hand() -> None:
    two = ref.Image(2, 1, bytes([10, 0, 255, 21, 1, 0]))
    assert ref.resize(two, 1, 1).pixels == bytes([16, 1, 128])  # (31+1)//2, (1+1)//2, (255+1)//2
    three = ref.Image(3, 1, bytes([0, 0, 0, 30, 30, 30, 90, 90, 90]))
    # 3 -> 2: target 0 covers source 0 fully and half of 1; weights on the axis of 3*2 units.
    assert ref.resize(three, 2, 1).pixels == bytes([10, 10, 10, 70, 70, 70])
    image = ref.sample_image(5, 4)
    assert ref.resize(image, 5, 4) == image
    assert ref.parse_ppm(image.to_ppm()) == image


@pytest.mark.parametrize(
    ("width", "height"), [(16, 10), (50, 31), (37, 23), (1, 1), (7, 40)], ids=str
)
def test_resize_matches_the_python_reference(
    tmp_path: Path, mounts: list[Mount], data_dir: Path, outputs: Path, width: int, height: int
) -> None:
    image = ref.sample_image(37, 23)
    (data_dir / "image.ppm").write_bytes(b"P6\n# written by the test\n37 23\n255\n" + image.pixels)
    result = run(
        compiled("resize"),
        ["/data/image.ppm", str(width), str(height)],
        tmp_path,
        mounts,
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"37x23 -> {width}x{height}\n".encode()
    produced = (outputs / "resized.ppm").read_bytes()
    assert produced == ref.resize(image, width, height).to_ppm()


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (b"P3\n1 1\n255\n0 0 0\n", ["10", "10"], b"not a binary PPM (expected the P6 magic)"),
        (b"P6\n2 2\n65535\n", ["10", "10"], b"maxval 65535 is not supported (only 255)"),
        (
            b"P6\n2 2\n255\n" + b"\0" * 5,
            ["1", "1"],
            b"truncated: 2x2 needs 12 pixel bytes, found 5",
        ),
        (b"P6\n1 1\n255\n\0\0\0", ["0", "5"], b'WIDTH must be an integer from 1 to 16384, got "0"'),
    ],
    ids=["p3", "maxval", "truncated", "width"],
)
def test_resize_rejects_bad_input_with_a_message(
    tmp_path: Path,
    mounts: list[Mount],
    data_dir: Path,
    content: bytes,
    args: list[str],
    message: bytes,
) -> None:
    (data_dir / "in.ppm").write_bytes(content)
    result = run(compiled("resize"), ["/data/in.ppm", *args], tmp_path, mounts)
    assert result.exit_code == 1
    assert message in result.stderr
    assert result.stderr.startswith(b"resize: ")
