"""What a WASM job sees of its files, made the same on every machine (docs/jobs.md).

wasmtime's WASI lists a directory in the host file system's order (ext4 and tmpfs list the
same files differently), numbers inodes from the host, and reports host timestamps, link
counts and directory sizes. Each of those would make two honest machines give different
results. These shadows of `fd_readdir`, `fd_filestat_get` and `path_filestat_get` call
wasmtime's own functions and rewrite what they return:
- `fd_readdir` lists `.` and `..`, then the entries sorted by name bytes; `d_next` is an
  entry's position + 1 in that order (the cookie to resume after it);
- every inode number (`d_ino`, `ino`) is the first 8 bytes of SHA-256 of the guest path,
  big-endian (1 when that is 0); `dev` is 0;
- every timestamp (access, modification, change) is the realtime origin; a directory has
  one link and size 0.

wasmtime keeps the fd table, and WASI has no call that turns an fd back into a path, so the
guest path of each fd is followed here: preopens from `fd_prestat_dir_name`, and the shadows
of `path_open`, `fd_close` and `fd_renumber` keep the table in step (paths joined lexically:
`a/../b` is `b`; a symlink is named by the path the guest used). The real functions are
called through a helper module with a memory of its own, instantiated in the job's store by a
linker that has only wasmtime's WASI, so that it never reaches these shadows.

Every call pays fuel for the bytes it lists, reads or writes before it works (the
`charge` given), which also checks the wall time: a directory of millions of entries costs
the job, not the host.

A job holds at most MAX_OPEN_FILES descriptors (its preopens included): one more is EMFILE
on every machine. Under that, the host's own limit on open files must never show: the
process raises its soft limit to the hard one, and a host that still refuses (EIO, EMFILE,
ENFILE from an open) ends the run as the host's failure (HostRefused), not as an errno the
guest sees.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import resource
import struct
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import wasmtime
from wasmtime import FuncType, Linker, Module, Store, ValType

__all__ = ["DeterministicFiles", "inode_of"]

WASI = "wasi_snapshot_preview1"
_OK, _EFAULT, _EINVAL, _EIO, _EMFILE, _ENAMETOOLONG, _ENFILE = 0, 21, 28, 29, 33, 37, 41
MAX_OPEN_FILES = 1024
# What wasmtime's path_open answers when the host is out of descriptors: EIO (as measured with
# wasmtime-py 50.0.1 at the process' limit), or EMFILE, ENFILE. Never the guest's doing.
_HOST_REFUSALS = (_EIO, _EMFILE, _ENFILE)
_ATIM, _ATIM_NOW, _MTIM, _MTIM_NOW = 1, 2, 4, 8  # fstflags
_U64 = (1 << 64) - 1
_DIRECTORY = 3  # filetype
_DIRENT = struct.Struct("<QQIBxxx")  # d_next, d_ino, d_namlen, d_type
_FILESTAT = struct.Struct("<QQBxxxxxxxQQQQQ")  # dev, ino, filetype, nlink, size, a/m/ctim
# The helper has one page of memory, so that it fits under the smallest memory limit a job
# may have (one page: store limits apply to every memory of the store).
_SCRATCH = 32768  # where the helper's readdir buffer starts, and its length
_PATH_AT = 1024  # where paths go in the helper's memory
_MAX_PATH = 16384  # longer paths are ENAMETOOLONG (Linux allows 4096)
# Listings kept for readdir calls that read on from a cookie, beside the one being read; each
# entry is reckoned at its name and _ENTRY_BYTES (a tuple of bytes and two ints in CPython).
LISTINGS_KEPT_BYTES = 64 << 20
_ENTRY_BYTES = 160
_PATH2_AT = _PATH_AT + _MAX_PATH  # a rename's second path

_HELPER = """(module
  (import "wasi_snapshot_preview1" "fd_readdir" (func $rd (param i32 i32 i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_filestat_get" (func $fst (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get"
    (func $pst (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $po (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fc (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_renumber" (func $fr (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $pg (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name"
    (func $pn (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_unlink_file"
    (func $ul (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_remove_directory"
    (func $rm (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_rename"
    (func $mv (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "readdir") (param i32 i64) (result i32)
    (call $rd (local.get 0) (i32.const 32768) (i32.const 32768) (local.get 1) (i32.const 0)))
  (func (export "unlink") (param i32 i32) (result i32)
    (call $ul (local.get 0) (i32.const 1024) (local.get 1)))
  (func (export "rmdir") (param i32 i32) (result i32)
    (call $rm (local.get 0) (i32.const 1024) (local.get 1)))
  (func (export "rename") (param i32 i32 i32 i32) (result i32)
    (call $mv (local.get 0) (i32.const 1024) (local.get 1) (local.get 2) (i32.const 17408)
      (local.get 3)))
  (func (export "fdstat") (param i32) (result i32) (call $fst (local.get 0) (i32.const 0)))
  (func (export "pathstat") (param i32 i32 i32) (result i32)
    (call $pst (local.get 0) (local.get 1) (i32.const 1024) (local.get 2) (i32.const 0)))
  (func (export "open") (param i32 i32 i32 i32 i64 i64 i32) (result i32)
    (call $po (local.get 0) (local.get 1) (i32.const 1024) (local.get 2) (local.get 3)
      (local.get 4) (local.get 5) (local.get 6) (i32.const 0)))
  (func (export "close") (param i32) (result i32) (call $fc (local.get 0)))
  (func (export "renumber") (param i32 i32) (result i32) (call $fr (local.get 0) (local.get 1)))
  (func (export "prestat") (param i32) (result i32) (call $pg (local.get 0) (i32.const 0)))
  (func (export "prestat_name") (param i32 i32) (result i32)
    (call $pn (local.get 0) (i32.const 1024) (local.get 1))))"""


def inode_of(path: str) -> int:
    """The inode number a guest path has: SHA-256(path)[:8] big-endian, never 0."""
    return (
        int.from_bytes(hashlib.sha256(path.encode("utf-8", "surrogateescape")).digest()[:8], "big")
        or 1
    )


def _join(base: str, relative: str) -> str:
    parts = [p for p in base.split("/") if p]
    for part in relative.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
        else:
            parts.append(part)
    return "/" + "/".join(parts)


def _u32(value: int) -> int:
    return value & 0xFFFFFFFF


class HostRefused(Exception):
    """The host refused what the job's own limits allow (an open file): the run is the
    host's failure, never an errno the guest sees."""


@functools.cache
def _raise_open_files_limit() -> None:
    # Once a process: our cap, not the host's soft limit (often 1024 for the whole process),
    # is what a job should meet.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class DeterministicFiles:
    """Per-run state of the file shadows; `charge(caller, nbytes)` takes fuel (and checks
    the wall time) before each call works."""

    def __init__(
        self,
        engine: wasmtime.Engine,
        realtime_origin: int,
        charge: Callable[[wasmtime.Caller, int], None],
        now: Callable[[], int],
        check_time: Callable[[], None],
    ) -> None:
        _raise_open_files_limit()
        self._engine = engine
        self._time = realtime_origin
        self._charge = charge
        self._check_time = check_time
        self._now = now  # the job's virtual realtime clock, read as clock_time_get reads it
        self._real = Linker(engine)  # wasmtime's WASI only: the helper must not see shadows
        self._real.define_wasi()
        self._helper: Any = None
        self._paths: dict[int, str] = {}
        # per fd, from cookie 0, with what it is reckoned to take; least recently read first
        self._listings: OrderedDict[int, tuple[list[tuple[bytes, int, int]], int]] = OrderedDict()
        # wasmtime's inode (its hash of the host file's identity) -> ours: the inode of the
        # first path the job saw the file by, so that two names of one file (a hard link)
        # share it and the number does not depend on the host.
        self._inodes: dict[int, int] = {}
        self._times: dict[int, tuple[int, int]] = {}  # our inode -> (atim, mtim) the job set

    # --- the helper and memories ---------------------------------------------------------

    def _exports(self, caller: wasmtime.Caller) -> Any:
        if self._helper is None:
            instance = self._real.instantiate(caller, Module(self._engine, _HELPER))
            self._helper = instance.exports(caller)
            self._load_preopens(caller)
        return self._helper

    def _scratch(self, caller: wasmtime.Caller) -> wasmtime.Memory:
        memory = self._exports(caller)["memory"]
        assert isinstance(memory, wasmtime.Memory)
        return memory

    @staticmethod
    def _guest(caller: wasmtime.Caller) -> wasmtime.Memory | None:
        memory = caller.get("memory")
        return memory if isinstance(memory, wasmtime.Memory) else None

    def _read_guest(self, caller: wasmtime.Caller, ptr: int, size: int) -> bytes | None:
        memory = self._guest(caller)
        if memory is None or ptr + size > memory.data_len(caller):
            return None
        return memory.read(caller, ptr, ptr + size)

    def _fits_guest(self, caller: wasmtime.Caller, ptr: int, size: int) -> bool:
        memory = self._guest(caller)
        return memory is not None and ptr + size <= memory.data_len(caller)

    def _write_guest(self, caller: wasmtime.Caller, data: bytes, ptr: int) -> bool:
        memory = self._guest(caller)
        if memory is None or ptr + len(data) > memory.data_len(caller):
            return False
        if data:
            memory.write(caller, data, ptr)
        return True

    def _load_preopens(self, caller: wasmtime.Caller) -> None:
        exports, memory = self._helper, self._helper["memory"]
        fd = 3
        while exports["prestat"](caller, fd) == _OK:
            tag, length = struct.unpack("<II", memory.read(caller, 0, 8))
            if (
                tag == 0
                and length <= _MAX_PATH
                and exports["prestat_name"](caller, fd, length) == _OK
            ):
                name = memory.read(caller, _PATH_AT, _PATH_AT + length)
                self._paths[fd] = _join("/", name.decode("utf-8", "surrogateescape"))
            fd += 1

    def _path_of(self, fd: int) -> str:
        return self._paths.get(fd, f"/?fd{fd}")  # an fd of unknown origin: still the same

    # --- following fds -------------------------------------------------------------------

    def path_open(
        self,
        caller: wasmtime.Caller,
        dirfd: int,
        dirflags: int,
        path_ptr: int,
        path_len: int,
        oflags: int,
        base_rights: int,
        inheriting_rights: int,
        fdflags: int,
        fd_out: int,
    ) -> int:
        raw = self._path_arg(caller, path_ptr, path_len, _PATH_AT)
        if isinstance(raw, int):
            return raw
        path_len, fd_out = _u32(path_len), _u32(fd_out)
        if not self._fits_guest(caller, fd_out, 4):
            return _EFAULT
        if len(self._paths) >= MAX_OPEN_FILES:  # the preopens are known: _path_arg loaded them
            return _EMFILE  # the job's limit, the same everywhere
        exports = self._exports(caller)
        errno = exports["open"](
            caller, dirfd, dirflags, path_len, oflags, base_rights, inheriting_rights, fdflags
        )
        if errno in _HOST_REFUSALS:
            raise HostRefused(f"the host refused an open file ({len(self._paths)} open)")
        if errno != _OK:
            return int(errno)
        (fd,) = struct.unpack("<I", self._scratch(caller).read(caller, 0, 4))
        self._write_guest(caller, struct.pack("<I", fd), fd_out)
        self._listings.pop(fd, None)
        self._paths[fd] = _join(self._path_of(dirfd), raw.decode("utf-8", "surrogateescape"))
        return _OK

    def fd_close(self, caller: wasmtime.Caller, fd: int) -> int:
        self._charge(caller, 0)
        errno = int(self._exports(caller)["close"](caller, fd))
        if errno == _OK:
            self._paths.pop(_u32(fd), None)
            self._listings.pop(_u32(fd), None)
        return errno

    def fd_renumber(self, caller: wasmtime.Caller, fd: int, to: int) -> int:
        self._charge(caller, 0)
        errno = int(self._exports(caller)["renumber"](caller, fd, to))
        if errno == _OK:
            fd, to = _u32(fd), _u32(to)
            path = self._paths.pop(fd, None)
            self._paths.pop(to, None)
            self._listings.pop(fd, None)
            self._listings.pop(to, None)
            if path is not None:
                self._paths[to] = path
        return errno

    # --- listing ---------------------------------------------------------------------------

    def _listing(self, caller: wasmtime.Caller, fd: int) -> list[tuple[bytes, int, int]] | int:
        """Every (name, d_type, wasmtime's d_ino) of the directory in our order, or
        wasmtime's errno."""
        exports, scratch = self._exports(caller), self._scratch(caller)
        entries: list[tuple[bytes, int, int]] = []
        # The host's order decides where wasmtime's chunks are cut, and so how many calls the
        # listing takes and what the helper's code burns: the fuel is put back as it was, and
        # the listing is charged by what it holds, the same on every host.
        fuel = Store.get_fuel(caller)  # type: ignore[arg-type]
        try:
            found = self._list_chunks(caller, fd, exports, scratch, entries)
        finally:
            Store.set_fuel(caller, fuel)  # type: ignore[arg-type]
        if found != _OK:
            return found
        self._charge(caller, sum(_DIRENT.size + len(name) for name, _, _ in entries))
        dots = sorted((e for e in entries if e[0] in (b".", b"..")), key=lambda e: len(e[0]))
        return dots + sorted(e for e in entries if e[0] not in (b".", b".."))

    def _list_chunks(
        self,
        caller: wasmtime.Caller,
        fd: int,
        exports: Any,
        scratch: wasmtime.Memory,
        entries: list[tuple[bytes, int, int]],
    ) -> int:
        cookie = 0
        while True:
            errno = int(exports["readdir"](caller, fd, cookie))
            if errno != _OK:
                return errno
            (used,) = struct.unpack("<I", scratch.read(caller, 0, 4))
            raw = scratch.read(caller, _SCRATCH, _SCRATCH + used)
            self._check_time()
            position, progress = 0, False
            while position + _DIRENT.size <= used:
                d_next, ino, length, d_type = _DIRENT.unpack_from(raw, position)
                end = position + _DIRENT.size + length
                if end > used:
                    break  # cut off: asked again from `cookie`
                entries.append((raw[position + _DIRENT.size : end], d_type, ino))
                cookie, position, progress = d_next, end, True
            if used < _SCRATCH:
                return _OK
            if not progress:
                return _EIO  # an entry larger than the buffer: no name is that long

    def _keep(self, fd: int, listing: list[tuple[bytes, int, int]]) -> list[tuple[bytes, int, int]]:
        """Keep `fd`'s listing for the calls that read on from a cookie, dropping the least
        recently read others past LISTINGS_KEPT_BYTES: a job that lists a large folder on many
        descriptors cannot make the host hold a copy for each. A dropped listing is built
        again if its descriptor reads on (the same entries in the same order, charged again:
        what is dropped depends only on the job's calls, so the fuel is the same anywhere)."""
        self._listings.pop(fd, None)
        self._listings[fd] = (listing, sum(_ENTRY_BYTES + len(name) for name, _, _ in listing))
        total = sum(cost for _, cost in self._listings.values())
        while total > LISTINGS_KEPT_BYTES and len(self._listings) > 1:
            _, (_, cost) = self._listings.popitem(last=False)
            total -= cost
        return listing

    def fd_readdir(
        self, caller: wasmtime.Caller, fd: int, buf: int, buf_len: int, cookie: int, bufused: int
    ) -> int:
        fd, buf, buf_len, bufused = _u32(fd), _u32(buf), _u32(buf_len), _u32(bufused)
        cookie &= 0xFFFFFFFFFFFFFFFF
        if not self._fits_guest(caller, buf, buf_len) or not self._fits_guest(caller, bufused, 4):
            self._charge(caller, 0)
            return _EFAULT
        kept = self._listings.get(fd) if cookie else None
        if kept is None:
            found = self._listing(caller, fd)
            if isinstance(found, int):
                return found
            listing = self._keep(fd, found)
        else:
            listing = kept[0]
            self._listings.move_to_end(fd)
        directory = self._path_of(fd)
        out = bytearray()
        for position in range(min(cookie, len(listing)), len(listing)):
            if len(out) >= buf_len:
                break
            name, d_type, ino = listing[position]
            path = _join(directory, name.decode("utf-8", "surrogateescape"))
            # a folder by its path (wasmtime gives `.` and `..` one number), a file by the
            # first path the job saw it by
            ours = inode_of(path) if d_type == _DIRECTORY else self._inode(ino, path)
            out += _DIRENT.pack(position + 1, ours, len(name), d_type) + name
        data = bytes(out[:buf_len])  # a cut last entry tells the guest to call again
        self._charge(caller, len(data))
        self._write_guest(caller, data, buf)
        self._write_guest(caller, struct.pack("<I", len(data)), bufused)
        return _OK

    # --- stat ------------------------------------------------------------------------------

    def _inode(self, host: int, path: str) -> int:
        return self._inodes.setdefault(host, inode_of(path))

    def _stat(self, raw: bytes, path: str) -> bytes:
        _dev, host, filetype, links, size, _a, _m, _c = _FILESTAT.unpack(raw)
        if filetype == _DIRECTORY:
            links, size = 1, 0  # the host's: 4096 on ext4, a count of entries on tmpfs
            ino = inode_of(path)
        else:
            ino = self._inode(host, path)
        atim, mtim = self._times.get(ino, (self._time, self._time))
        return _FILESTAT.pack(0, ino, filetype, links, size, atim, mtim, self._time)

    def fd_filestat_get(self, caller: wasmtime.Caller, fd: int, out: int) -> int:
        fd, out = _u32(fd), _u32(out)
        self._charge(caller, _FILESTAT.size)
        if not self._fits_guest(caller, out, _FILESTAT.size):
            return _EFAULT
        errno = int(self._exports(caller)["fdstat"](caller, fd))
        if errno != _OK:
            return errno
        raw = self._scratch(caller).read(caller, 0, _FILESTAT.size)
        self._write_guest(caller, self._stat(raw, self._path_of(fd)), out)
        return _OK

    def path_filestat_get(
        self,
        caller: wasmtime.Caller,
        fd: int,
        flags: int,
        path_ptr: int,
        path_len: int,
        out: int,
    ) -> int:
        raw_path = self._path_arg(caller, path_ptr, path_len, _PATH_AT, extra=_FILESTAT.size)
        if isinstance(raw_path, int):
            return raw_path
        fd, path_len, out = _u32(fd), _u32(path_len), _u32(out)
        if not self._fits_guest(caller, out, _FILESTAT.size):
            return _EFAULT
        errno = int(self._exports(caller)["pathstat"](caller, fd, flags, path_len))
        if errno != _OK:
            return errno
        raw = self._scratch(caller).read(caller, 0, _FILESTAT.size)
        path = _join(self._path_of(fd), raw_path.decode("utf-8", "surrogateescape"))
        self._write_guest(caller, self._stat(raw, path), out)
        return _OK

    # --- removing and renaming ------------------------------------------------------------------
    #
    # A host may give a new file the inode number of one just removed (ext4 does at once,
    # tmpfs does not): what this run learnt of a removed file is forgotten with it.

    def _path_arg(
        self, caller: wasmtime.Caller, ptr: int, length: int, at: int, extra: int = 0
    ) -> bytes | int:
        """The guest's path at `ptr`, copied to `at` in the helper's memory, its bytes (and
        `extra`, what else the call produces) charged first; or the errno."""
        ptr, length = _u32(ptr), _u32(length)
        self._charge(caller, extra + min(length, _MAX_PATH))
        if length > _MAX_PATH:
            return _ENAMETOOLONG
        raw = self._read_guest(caller, ptr, length)
        if raw is None:
            return _EFAULT
        self._scratch(caller).write(caller, raw, at)
        return raw

    def _host_inode(self, caller: wasmtime.Caller, fd: int, length: int) -> int | None:
        """wasmtime's inode of the path at _PATH_AT (not following a symlink), or None."""
        if int(self._exports(caller)["pathstat"](caller, fd, 0, length)) != _OK:
            return None
        return int(_FILESTAT.unpack(self._scratch(caller).read(caller, 0, _FILESTAT.size))[1])

    def _forget(self, host: int | None) -> None:
        if host is not None and host in self._inodes:
            self._times.pop(self._inodes.pop(host), None)
        self._listings.clear()  # a folder's listing changed

    def path_unlink_file(self, caller: wasmtime.Caller, fd: int, ptr: int, length: int) -> int:
        raw = self._path_arg(caller, ptr, length, _PATH_AT)
        if isinstance(raw, int):
            return raw
        host = self._host_inode(caller, _u32(fd), len(raw))
        errno = int(self._exports(caller)["unlink"](caller, fd, len(raw)))
        if errno == _OK:
            self._forget(host)
        return errno

    def path_remove_directory(self, caller: wasmtime.Caller, fd: int, ptr: int, length: int) -> int:
        raw = self._path_arg(caller, ptr, length, _PATH_AT)
        if isinstance(raw, int):
            return raw
        errno = int(self._exports(caller)["rmdir"](caller, fd, len(raw)))
        if errno == _OK:
            self._forget(None)
        return errno

    def path_rename(
        self,
        caller: wasmtime.Caller,
        fd: int,
        old_ptr: int,
        old_length: int,
        new_fd: int,
        new_ptr: int,
        new_length: int,
    ) -> int:
        target = self._path_arg(caller, new_ptr, new_length, _PATH_AT)
        if isinstance(target, int):
            return target
        replaced = self._host_inode(caller, _u32(new_fd), len(target))  # gone if it existed
        source = self._path_arg(caller, old_ptr, old_length, _PATH_AT)
        if isinstance(source, int):
            return source
        self._scratch(caller).write(caller, target, _PATH2_AT)
        errno = int(self._exports(caller)["rename"](caller, fd, len(source), new_fd, len(target)))
        if errno == _OK:
            self._forget(replaced)
        return errno

    # --- setting times -----------------------------------------------------------------------

    def _set_times(self, ino: int, atim: int, mtim: int, flags: int) -> int:
        """Times a job sets are kept here, per inode, and read back by stat (the host's own
        stay whatever they are): "now" is the job's virtual clock."""
        if (flags & _ATIM and flags & _ATIM_NOW) or (flags & _MTIM and flags & _MTIM_NOW):
            return _EINVAL
        old_a, old_m = self._times.get(ino, (self._time, self._time))
        now = self._now() if flags & (_ATIM_NOW | _MTIM_NOW) else 0
        new_a = atim if flags & _ATIM else now if flags & _ATIM_NOW else old_a
        new_m = mtim if flags & _MTIM else now if flags & _MTIM_NOW else old_m
        self._times[ino] = (new_a & _U64, new_m & _U64)
        return _OK

    def fd_filestat_set_times(
        self, caller: wasmtime.Caller, fd: int, atim: int, mtim: int, flags: int
    ) -> int:
        fd = _u32(fd)
        self._charge(caller, _FILESTAT.size)
        errno = int(self._exports(caller)["fdstat"](caller, fd))
        if errno != _OK:
            return errno
        stat = self._stat(self._scratch(caller).read(caller, 0, _FILESTAT.size), self._path_of(fd))
        return self._set_times(_FILESTAT.unpack(stat)[1], atim, mtim, _u32(flags) & 0xFFFF)

    def path_filestat_set_times(
        self,
        caller: wasmtime.Caller,
        fd: int,
        lookup: int,
        path_ptr: int,
        path_len: int,
        atim: int,
        mtim: int,
        flags: int,
    ) -> int:
        raw_path = self._path_arg(caller, path_ptr, path_len, _PATH_AT, extra=_FILESTAT.size)
        if isinstance(raw_path, int):
            return raw_path
        fd, path_len = _u32(fd), _u32(path_len)
        errno = int(self._exports(caller)["pathstat"](caller, fd, lookup, path_len))
        if errno != _OK:
            return errno
        path = _join(self._path_of(fd), raw_path.decode("utf-8", "surrogateescape"))
        stat = self._stat(self._scratch(caller).read(caller, 0, _FILESTAT.size), path)
        return self._set_times(_FILESTAT.unpack(stat)[1], atim, mtim, _u32(flags) & 0xFFFF)

    def define(self, linker: Linker) -> None:
        i32, i64 = ValType.i32(), ValType.i64()
        funcs: list[tuple[str, list[ValType], Callable[..., int]]] = [
            ("fd_readdir", [i32, i32, i32, i64, i32], self.fd_readdir),
            ("fd_filestat_get", [i32, i32], self.fd_filestat_get),
            ("path_filestat_get", [i32] * 5, self.path_filestat_get),
            ("path_open", [i32] * 5 + [i64, i64, i32, i32], self.path_open),
            ("fd_close", [i32], self.fd_close),
            ("fd_renumber", [i32, i32], self.fd_renumber),
            ("fd_filestat_set_times", [i32, i64, i64, i32], self.fd_filestat_set_times),
            (
                "path_filestat_set_times",
                [i32, i32, i32, i32, i64, i64, i32],
                self.path_filestat_set_times,
            ),
            ("path_unlink_file", [i32, i32, i32], self.path_unlink_file),
            ("path_remove_directory", [i32, i32, i32], self.path_remove_directory),
            ("path_rename", [i32] * 6, self.path_rename),
        ]
        for name, params, func in funcs:
            linker.define_func(WASI, name, FuncType(params, [i32]), func, access_caller=True)
