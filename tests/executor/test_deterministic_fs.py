"""What a job sees of its files is the same on every machine (executor/deterministic_fs.py):
the same input files on tmpfs and on a disk folder list in the same order, with the same
inode numbers, link counts, sizes and timestamps, on both engines."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pytest
import wasmtime

from executor.deterministic_fs import inode_of
from executor.wasm import REALTIME_START_NS, ModuleCache, Mount, WasmRunError, run_module

# Opens "." under the preopen at fd 3, lists it with a 96-byte buffer and cookies (as
# wasi-libc does), then stats the folder and "b.txt": stdout gets each complete dirent
# (24-byte header and name), then the two 64-byte filestats.
LISTER = """(module
  (import "wasi_snapshot_preview1" "fd_readdir"
    (func $readdir (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_get" (func $fstat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get"
    (func $pstat (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 48) "b.txt")
  (data (i32.const 64) "sub/..")
  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 16) (local.get $ptr))
    (i32.store (i32.const 20) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24))))
  (func (export "_start")
    (local $cookie i64) (local $used i32) (local $pos i32) (local $n i32)
    (if (call $open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 6) (i32.const 2)
          (i64.const 0x4002) (i64.const 0x4002) (i32.const 0) (i32.const 8))
      (then (call $exit (i32.const 99))))
    (loop $call
      (if (call $readdir (i32.load (i32.const 8)) (i32.const 1024) (i32.const 96)
            (local.get $cookie) (i32.const 0))
        (then (call $exit (i32.const 98))))
      (local.set $used (i32.load (i32.const 0)))
      (local.set $pos (i32.const 0))
      (block $done
        (loop $entry
          (br_if $done (i32.gt_u (i32.add (local.get $pos) (i32.const 24)) (local.get $used)))
          (local.set $n (i32.load (i32.add (i32.const 1040) (local.get $pos))))
          (br_if $done (i32.gt_u (i32.add (i32.add (local.get $pos) (i32.const 24)) (local.get $n))
                                  (local.get $used)))
          (call $write (i32.add (i32.const 1024) (local.get $pos))
                       (i32.add (i32.const 24) (local.get $n)))
          (local.set $cookie (i64.load (i32.add (i32.const 1024) (local.get $pos))))
          (local.set $pos (i32.add (local.get $pos) (i32.add (i32.const 24) (local.get $n))))
          (br $entry)))
      (br_if $call (i32.eq (local.get $used) (i32.const 96))))
    (if (call $fstat (i32.load (i32.const 8)) (i32.const 4096)) (then (call $exit (i32.const 97))))
    (call $write (i32.const 4096) (i32.const 64))
    (if (call $pstat (i32.const 3) (i32.const 1) (i32.const 48) (i32.const 5) (i32.const 4096))
      (then (call $exit (i32.const 96))))
    (call $write (i32.const 4096) (i32.const 64))))"""

NAMES = ["b.txt", "a", "Zeta", "é", "10", "9", "x y", "c" * 40]


def _fill(folder: Path, order: list[str]) -> Path:
    folder.mkdir(parents=True)
    for name in order:
        (folder / name).write_bytes(name.encode() * 3)
    (folder / "sub").mkdir()
    (folder / "sub" / "inner").write_bytes(b"x")
    return folder


def _list(folder: Path, work: Path, target: str, memory: int = 1 << 24) -> bytes:
    work.mkdir(parents=True, exist_ok=True)
    module = bytes(wasmtime.wat2wasm(LISTER))
    outcome = run_module(
        hashlib.sha256(module).hexdigest(), lambda: module, cache=ModuleCache(None),
        entry_point="_start", args=(), env=(),
        mounts=[Mount(host=folder, guest="/inputs", writable=False)],
        stdout=work / "stdout", stderr=work / "stderr", seed=b"s" * 32, timeout_s=30,
        memory_bytes=memory, fuel=None, target=target,
    )  # fmt: skip
    assert outcome.exit_code == 0
    # the fuel used, appended: the same on every host and engine, or the test fails
    return (work / "stdout").read_bytes() + struct.pack("<Q", outcome.fuel_used)


def _parse(out: bytes) -> tuple[list[tuple[bytes, int, int, int]], bytes, bytes]:
    out = out[:-8]  # the fuel
    entries, position = [], 0
    while len(out) - position > 128:
        d_next, ino, length, d_type = struct.unpack_from("<QQIBxxx", out, position)
        name = out[position + 24 : position + 24 + length]
        entries.append((name, d_next, ino, d_type))
        position += 24 + length
    return entries, out[position : position + 64], out[position + 64 :]


def test_the_same_files_list_the_same_on_tmpfs_and_on_disk_on_both_engines(
    tmp_path: Path,
) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no /dev/shm (tmpfs) on this machine to compare a disk folder with")
    on_disk = _fill(tmp_path / "disk", NAMES)
    on_tmpfs = _fill(Path(tmp_path_shm := shm / f"filplus-{tmp_path.name}") / "d", NAMES[::-1])
    try:
        outs = {
            (place, target): _list(folder, tmp_path / f"w-{place}-{target}", target)
            for place, folder in (("disk", on_disk), ("tmpfs", on_tmpfs))
            for target in ("cranelift", "pulley")
        }
    finally:
        import shutil

        shutil.rmtree(tmp_path_shm, ignore_errors=True)
    assert len(set(outs.values())) == 1, "the listing depends on the host or the engine"
    entries, folder_stat, file_stat = _parse(outs[("disk", "cranelift")])
    names = [e[0] for e in entries]
    rest = sorted(n.encode() for n in [*NAMES, "sub"])
    assert names == [b".", b"..", *rest]  # by name bytes, after the dots
    assert [e[1] for e in entries] == list(range(1, len(names) + 1))  # cookies: positions
    assert entries[names.index(b"b.txt")][2] == inode_of("/inputs/b.txt")
    assert entries[0][2] == inode_of("/inputs") and entries[1][2] == inode_of("/")
    dev, ino, kind, links, size, a, m, c = struct.unpack("<QQBxxxxxxxQQQQQ", folder_stat)
    assert (dev, ino, kind, links, size) == (0, inode_of("/inputs"), 3, 1, 0)
    assert a == m == c == REALTIME_START_NS
    dev, ino, kind, links, size, a, m, c = struct.unpack("<QQBxxxxxxxQQQQQ", file_stat)
    assert (dev, ino, kind, size) == (0, inode_of("/inputs/b.txt"), 4, 15)
    assert a == m == c == REALTIME_START_NS


HOSTILE = """(module
  (import "wasi_snapshot_preview1" "fd_readdir"
    (func $readdir (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get"
    (func $pstat (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_get" (func $fstat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    ;; each errno in turn, as the exit code: 100 * step + errno
    (if (i32.ne (call $readdir (i32.const 3) (i32.const 65500) (i32.const 100) (i64.const 0)
                  (i32.const 0)) (i32.const 21)) (then (call $exit (i32.const 101))))
    (if (i32.ne (call $open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 0x7fffffff)
                  (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 8))
                (i32.const 37)) (then (call $exit (i32.const 102))))
    (if (i32.ne (call $pstat (i32.const 3) (i32.const 0) (i32.const 65000) (i32.const 1000)
                  (i32.const 0)) (i32.const 21)) (then (call $exit (i32.const 103))))
    (if (i32.ne (call $fstat (i32.const 3) (i32.const -8)) (i32.const 21))
      (then (call $exit (i32.const 104))))
    (if (i32.ne (call $readdir (i32.const 77) (i32.const 0) (i32.const 100) (i64.const 0)
                  (i32.const 200)) (i32.const 8)) (then (call $exit (i32.const 105))))
    ;; a cookie past the end lists nothing
    (if (call $readdir (i32.const 3) (i32.const 0) (i32.const 100) (i64.const 1000000)
          (i32.const 200)) (then (call $exit (i32.const 106))))
    (if (i32.load (i32.const 200)) (then (call $exit (i32.const 107))))
    (call $exit (i32.const 0))))"""


def test_hostile_arguments_get_errnos_and_listing_costs_fuel(tmp_path: Path) -> None:
    folder = _fill(tmp_path / "in", NAMES)
    module = bytes(wasmtime.wat2wasm(HOSTILE))
    outcome = run_module(
        "hostile", lambda: module, cache=ModuleCache(None), entry_point="_start", args=(),
        env=(), mounts=[Mount(host=folder, guest="/inputs", writable=False)],
        stdout=tmp_path / "out", stderr=tmp_path / "err", seed=b"s" * 32, timeout_s=30,
        memory_bytes=1 << 24, fuel=None,
    )  # fmt: skip
    assert outcome.exit_code == 0
    # the shadowed calls pay fuel before they work: a tight budget stops a listing job
    lister = bytes(wasmtime.wat2wasm(LISTER))
    with pytest.raises(WasmRunError, match="fuel"):
        run_module(
            "lister", lambda: lister, cache=ModuleCache(None), entry_point="_start", args=(),
            env=(), mounts=[Mount(host=folder, guest="/inputs", writable=False)],
            stdout=tmp_path / "out2", stderr=tmp_path / "err2", seed=b"s" * 32, timeout_s=30,
            memory_bytes=1 << 24, fuel=2_000,
        )  # fmt: skip


# In the writable preopen (fd 3): creates "f", hard-links it as "g", sets f's mtime to 77 and
# g's atime to "now", then writes the two 64-byte filestats of "f" and "g" to stdout.
TIMES_AND_LINKS = """(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_link"
    (func $link (param i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_set_times"
    (func $times (param i32 i32 i32 i32 i64 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get"
    (func $pstat (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 48) "f")
  (data (i32.const 56) "g")
  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 16) (local.get $ptr))
    (i32.store (i32.const 20) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24))))
  (func (export "_start")
    (if (call $open (i32.const 3) (i32.const 0) (i32.const 48) (i32.const 1) (i32.const 1)
          (i64.const 0x1ff) (i64.const 0x1ff) (i32.const 0) (i32.const 8))
      (then (call $exit (i32.const 91))))
    (if (call $link (i32.const 3) (i32.const 0) (i32.const 48) (i32.const 1) (i32.const 3)
          (i32.const 56) (i32.const 1))
      (then (call $exit (i32.const 92))))
    (if (call $times (i32.const 3) (i32.const 0) (i32.const 48) (i32.const 1) (i64.const 0)
          (i64.const 77) (i32.const 4))
      (then (call $exit (i32.const 93))))
    (if (call $times (i32.const 3) (i32.const 0) (i32.const 56) (i32.const 1) (i64.const 0)
          (i64.const 0) (i32.const 2))
      (then (call $exit (i32.const 94))))
    (if (i32.ne (call $times (i32.const 3) (i32.const 0) (i32.const 56) (i32.const 1)
          (i64.const 0) (i64.const 0) (i32.const 3)) (i32.const 28))
      (then (call $exit (i32.const 95))))
    (drop (call $pstat (i32.const 3) (i32.const 0) (i32.const 48) (i32.const 1) (i32.const 4096)))
    (call $write (i32.const 4096) (i32.const 64))
    (drop (call $pstat (i32.const 3) (i32.const 0) (i32.const 56) (i32.const 1) (i32.const 4096)))
    (call $write (i32.const 4096) (i32.const 64))))"""


def test_times_a_job_sets_read_back_and_a_hard_link_shares_its_inode(tmp_path: Path) -> None:
    out = tmp_path / "outputs"
    out.mkdir()
    module = bytes(wasmtime.wat2wasm(TIMES_AND_LINKS))
    outcome = run_module(
        "times", lambda: module, cache=ModuleCache(None), entry_point="_start", args=(),
        env=(), mounts=[Mount(host=out, guest="/outputs", writable=True)],
        stdout=tmp_path / "out", stderr=tmp_path / "err", seed=b"s" * 32, timeout_s=30,
        memory_bytes=1 << 24, fuel=None,
    )  # fmt: skip
    assert outcome.exit_code == 0, (tmp_path / "err").read_text()
    raw = (tmp_path / "out").read_bytes()
    f = struct.unpack("<QQBxxxxxxxQQQQQ", raw[:64])
    g = struct.unpack("<QQBxxxxxxxQQQQQ", raw[64:])
    assert f[1] == g[1] == inode_of("/outputs/f")  # one file, two names: the first name's
    assert f[6] == g[6] == 77  # the mtime set through "f"
    assert f[5] == g[5] == REALTIME_START_NS  # "now" is the virtual clock, unread until then
    assert f[7] == REALTIME_START_NS  # ctime: the origin


def test_many_files_cost_the_same_fuel_on_tmpfs_and_disk_and_one_page_is_enough(
    tmp_path: Path,
) -> None:
    """wasmtime's chunks of a big listing are cut where the host's order puts them: the fuel
    must not follow. And a job with the smallest memory limit (one page) still lists."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no /dev/shm (tmpfs) on this machine to compare a disk folder with")
    names = ["b.txt", *(f"file-{n:05d}-{'x' * (n % 37)}" for n in range(3000))]
    on_disk = _fill(tmp_path / "disk", names)
    tmpfs_root = shm / f"filplus-many-{tmp_path.name}"
    try:
        on_tmpfs = _fill(tmpfs_root / "d", names[::-1])
        disk = _list(on_disk, tmp_path / "w1", "cranelift", memory=65536)
        tmpfs = _list(on_tmpfs, tmp_path / "w2", "cranelift", memory=65536)
    finally:
        import shutil

        shutil.rmtree(tmpfs_root, ignore_errors=True)
    assert disk == tmpfs  # entries, stats and the fuel used
    assert len(_parse(disk)[0]) == 3001 + 3  # ., .., sub


FORGETS = """(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_unlink_file"
    (func $unlink (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get"
    (func $pstat (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 48) "a")
  (data (i32.const 56) "b")
  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 16) (local.get $ptr))
    (i32.store (i32.const 20) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24))))
  (func $make (param $name i32)
    (drop (call $open (i32.const 3) (i32.const 0) (local.get $name) (i32.const 1) (i32.const 1)
      (i64.const 0x1ff) (i64.const 0x1ff) (i32.const 0) (i32.const 8)))
    (drop (call $close (i32.load (i32.const 8)))))
  (func (export "_start")
    (call $make (i32.const 48))
    (drop (call $pstat (i32.const 3) (i32.const 0) (i32.const 48) (i32.const 1) (i32.const 4096)))
    (call $write (i32.const 4096) (i32.const 64))
    (drop (call $unlink (i32.const 3) (i32.const 48) (i32.const 1)))
    (call $make (i32.const 56))
    (drop (call $pstat (i32.const 3) (i32.const 0) (i32.const 56) (i32.const 1) (i32.const 4096)))
    (call $write (i32.const 4096) (i32.const 64))))"""


def test_a_file_made_after_another_was_removed_is_numbered_by_its_own_path(
    tmp_path: Path,
) -> None:
    """ext4 gives a new file the inode number of one just removed: what the run knew of the
    removed file must not carry over to the new one."""
    out = tmp_path / "outputs"
    out.mkdir()
    module = bytes(wasmtime.wat2wasm(FORGETS))
    run_module(
        "forgets", lambda: module, cache=ModuleCache(None), entry_point="_start", args=(),
        env=(), mounts=[Mount(host=out, guest="/outputs", writable=True)],
        stdout=tmp_path / "out", stderr=tmp_path / "err", seed=b"s" * 32, timeout_s=30,
        memory_bytes=1 << 24, fuel=None,
    )  # fmt: skip
    raw = (tmp_path / "out").read_bytes()
    a = struct.unpack("<QQBxxxxxxxQQQQQ", raw[:64])
    b = struct.unpack("<QQBxxxxxxxQQQQQ", raw[64:])
    assert a[1] == inode_of("/outputs/a") and b[1] == inode_of("/outputs/b")


# Opens the folder on 8 descriptors, reads one 96-byte buffer of each from cookie 0, then
# reads each on to its end: stdout gets every complete dirent, descriptor by descriptor.
HOARDER = """(module
  (import "wasi_snapshot_preview1" "fd_readdir"
    (func $readdir (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "sub/..")
  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 16) (local.get $ptr))
    (i32.store (i32.const 20) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24))))
  ;; one buffer of $fd from $cookie: writes its complete entries; the next cookie, or -1
  ;; when the buffer was not full (the end)
  (func $chunk (param $fd i32) (param $cookie i64) (result i64)
    (local $used i32) (local $pos i32) (local $n i32)
    (if (call $readdir (local.get $fd) (i32.const 1024) (i32.const 96) (local.get $cookie)
          (i32.const 0))
      (then (call $exit (i32.const 98))))
    (local.set $used (i32.load (i32.const 0)))
    (block $done
      (loop $entry
        (br_if $done (i32.gt_u (i32.add (local.get $pos) (i32.const 24)) (local.get $used)))
        (local.set $n (i32.load (i32.add (i32.const 1040) (local.get $pos))))
        (br_if $done (i32.gt_u (i32.add (i32.add (local.get $pos) (i32.const 24)) (local.get $n))
                                (local.get $used)))
        (call $write (i32.add (i32.const 1024) (local.get $pos))
                     (i32.add (i32.const 24) (local.get $n)))
        (local.set $cookie (i64.load (i32.add (i32.const 1024) (local.get $pos))))
        (local.set $pos (i32.add (local.get $pos) (i32.add (i32.const 24) (local.get $n))))
        (br $entry)))
    (if (result i64) (i32.eq (local.get $used) (i32.const 96))
      (then (local.get $cookie)) (else (i64.const -1))))
  (func (export "_start") (local $i i32) (local $cookie i64)
    (loop $opens
      (if (call $open (i32.const 3) (i32.const 0) (i32.const 64) (i32.const 6) (i32.const 2)
            (i64.const 0x4002) (i64.const 0x4002) (i32.const 0)
            (i32.add (i32.const 200) (i32.shl (local.get $i) (i32.const 2))))
        (then (call $exit (i32.const 99))))
      (i64.store (i32.add (i32.const 300) (i32.shl (local.get $i) (i32.const 3)))
        (call $chunk (i32.load (i32.add (i32.const 200) (i32.shl (local.get $i) (i32.const 2))))
                     (i64.const 0)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $opens (i32.lt_u (local.get $i) (i32.const 8))))
    (local.set $i (i32.const 0))
    (loop $fds
      (local.set $cookie
        (i64.load (i32.add (i32.const 300) (i32.shl (local.get $i) (i32.const 3)))))
      (block $end
        (loop $more
          (br_if $end (i64.eq (local.get $cookie) (i64.const -1)))
          (local.set $cookie
            (call $chunk (i32.load (i32.add (i32.const 200) (i32.shl (local.get $i) (i32.const 2))))
                         (local.get $cookie)))
          (br $more)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $fds (i32.lt_u (local.get $i) (i32.const 8))))))"""


def test_many_descriptors_on_one_folder_keep_a_bounded_copy_and_list_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listing is kept per descriptor for the calls that read on; past the budget the least
    recently read are dropped and built again when read on: the job sees the same entries."""
    from executor import deterministic_fs

    folder = _fill(tmp_path / "d", NAMES)
    module = bytes(wasmtime.wat2wasm(HOARDER))
    kept: list[int] = []
    keep = deterministic_fs.DeterministicFiles._keep

    def watched(self, fd, listing):  # type: ignore[no-untyped-def]
        out = keep(self, fd, listing)
        kept.append(sum(cost for _, cost in self._listings.values()))
        return out

    monkeypatch.setattr(deterministic_fs.DeterministicFiles, "_keep", watched)

    def listed(budget: int, work: Path) -> tuple[bytes, int, int]:
        monkeypatch.setattr(deterministic_fs, "LISTINGS_KEPT_BYTES", budget)
        kept.clear()
        work.mkdir()
        outcome = run_module(
            "hoarder", lambda: module, cache=ModuleCache(None), entry_point="_start", args=(),
            env=(), mounts=[Mount(host=folder, guest="/inputs", writable=False)],
            stdout=work / "stdout", stderr=work / "stderr", seed=b"s" * 32, timeout_s=30,
            memory_bytes=1 << 24, fuel=None,
        )  # fmt: skip
        assert outcome.exit_code == 0
        return (work / "stdout").read_bytes(), max(kept), len(kept)

    roomy, roomy_most, roomy_built = listed(64 << 20, tmp_path / "roomy")
    tight, tight_most, tight_built = listed(1, tmp_path / "tight")
    one_listing = roomy_most // 8
    assert roomy_built == 8 and roomy_most == 8 * one_listing  # all 8 kept, each built once
    assert tight_most == one_listing  # only the one being read
    assert tight_built > 8  # the dropped ones were built again when read on...
    assert tight == roomy  # ...and the job saw the same entries in the same order
    names, position = [], 0
    while position < len(roomy):
        (length,) = struct.unpack_from("<I", roomy, position + 16)
        names.append(roomy[position + 24 : position + 24 + length])
        position += 24 + length
    one_fd = [b".", b"..", *sorted(n.encode() for n in [*NAMES, "sub"])]
    # The first buffer of each descriptor holds ., .. and 10; then each reads on to its end:
    # every descriptor read the whole folder, in name order.
    assert names == one_fd[:3] * 8 + one_fd[3:] * 8
