"""Where job inputs come from and results go: the storage interface both IPFS backends share.

Two backends implement `Storage`:
- `executor.kubo.KuboClient`: a Kubo-compatible HTTP RPC node (`IPFS_API_URL`);
- `executor.embedded_store.EmbeddedStore`: blocks on local disk under `DATA_DIR/ipfs`, used when
  `IPFS_API_URL` is unset.
Both give exactly the CIDs `ipfs add --cid-version=1` gives (raw leaves, 256 KiB chunks,
balanced DAG) and answer CIDs in canonical form (CIDv1, base32, lower case).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

__all__ = [
    "ENTRY_COST",
    "AddedEntry",
    "ContentNotFound",
    "DirEntry",
    "FetchCancelled",
    "FetchLimit",
    "FetchTimedOut",
    "LimitExceeded",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "declared_size",
    "staging_dir",
    "sweep_stale",
]

# What one file or directory written to disk counts against a byte limit beyond its bytes:
# a file system block, so that a DAG of many tiny or empty entries cannot fill a disk for free.
ENTRY_COST = 4096


class StorageError(Exception):
    """Content could not be stored or read; the message says why in one line."""


class ContentNotFound(StorageError):
    """The CID (or a path under it) is not in the store."""


class StorageUnavailable(StorageError):
    """The IPFS node could not be reached or answered with a server error."""


class LimitExceeded(StorageError):
    """Content is larger than the limit it is read or stored under."""


class FetchCancelled(StorageError):
    """A fetch stopped because its job was cancelled."""


class FetchTimedOut(StorageError):
    """A fetch stopped because its job ran out of wall time."""


@dataclass
class FetchLimit:
    """What a `get` may write: at most `max_bytes` (file bytes plus ENTRY_COST a file or
    directory), before `deadline` (a time.monotonic() value) and until `cancel` is set."""

    max_bytes: int
    deadline: float | None = None
    cancel: threading.Event | None = None
    used: int = 0

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise FetchCancelled("cancelled while fetching inputs")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise FetchTimedOut("ran out of wall time while fetching inputs")

    def spend(self, nbytes: int) -> None:
        self.used += nbytes
        if self.used > self.max_bytes:
            raise LimitExceeded(f"inputs are larger than their limit of {self.max_bytes} bytes")
        self.check()


@dataclass(frozen=True)
class AddedEntry:
    """One line of `ipfs add -r` output: a path relative to the added folder's parent."""

    path: str
    cid: str
    size: int


@dataclass(frozen=True)
class DirEntry:
    """One entry of a UnixFS directory listing."""

    name: str
    cid: str
    size: int  # file bytes for files, 0 for directories
    is_dir: bool


@runtime_checkable
class Storage(Protocol):
    def add_bytes(self, data: bytes) -> str:
        """Store one file's bytes; return its canonical CID."""

    def add_path(self, path: Path) -> list[AddedEntry]:
        """Store a file or a folder recursively, as `ipfs add -r`: the root entry last."""

    def iter_cat(self, cid: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Stream a file's bytes. Raises ContentNotFound, or StorageError for a directory."""

    def cat(self, cid: str) -> bytes:
        """A file's bytes in one piece."""

    def ls(self, cid: str) -> list[DirEntry]:
        """A directory's entries, in UnixFS (byte-wise name) order."""

    def is_dir(self, cid: str) -> bool:
        """True for a UnixFS directory, False for a file. Raises ContentNotFound."""

    def size(self, cid: str) -> int:
        """A file's size as its root block declares it; 0 for a directory."""

    def get(self, cid: str, dest: Path, limit: FetchLimit | None = None) -> Path:
        """Write a file or a directory tree at `dest` (which must not exist); return `dest`.

        Every file is written to exactly the size its DAG declares (StorageError otherwise,
        as soon as it is exceeded); `limit` is spent as bytes and entries are written."""

    def has(self, cid: str) -> bool:
        """True when every block under the CID is available here."""

    def pin(self, cid: str) -> None:
        """Keep the content from garbage collection."""

    def export_car(self, cid: str, out: BinaryIO) -> None:
        """Write a CARv1 with the CID as its single root and every block under it."""

    def import_car(self, car: BinaryIO, max_bytes: int | None = None) -> list[str]:
        """Store a CAR's blocks, all or nothing: every root's whole DAG must be in the CAR or
        already stored (CarError naming the root otherwise), and the blocks may take at most
        `max_bytes` on disk (LimitExceeded). Returns the roots (canonical CIDs)."""


def declared_size(
    storage: Storage, cid: str, limit: FetchLimit, entry_cost: int = ENTRY_COST
) -> int:
    """What a `get` of `cid` would write, from the sizes its DAG declares: file bytes plus
    `entry_cost` for every file and directory, counted each time they are linked (that is
    what lands on disk). LimitExceeded as soon as the count passes `limit.max_bytes`.

    Each distinct directory is listed once, so a DAG that links the same folder many times
    costs a walk of its distinct blocks however large it claims to be."""
    totals: dict[str, int] = {}
    pending = [cid] if storage.is_dir(cid) else []
    while pending:
        top = pending[-1]
        if top in totals:
            pending.pop()
            continue
        limit.check()
        entries = storage.ls(top)
        missing = [e.cid for e in entries if e.is_dir and e.cid not in totals]
        if missing:
            pending.extend(missing)
            continue
        pending.pop()
        total = entry_cost
        for entry in entries:
            total += totals[entry.cid] if entry.is_dir else entry_cost + entry.size
            if total > limit.max_bytes:
                raise LimitExceeded(
                    f"{cid} declares more than the inputs' limit of {limit.max_bytes} bytes"
                )
        totals[top] = total
    size = totals[cid] if cid in totals else entry_cost + storage.size(cid)
    if size > limit.max_bytes:
        raise LimitExceeded(f"{cid} declares {size} bytes; the inputs' limit is {limit.max_bytes}")
    return size


def staging_dir(parent: Path, prefix: str) -> Path:
    """A new directory under `parent` whose name says which process made it, so that
    `sweep_stale` can tell one left by a killed process from one still in use."""
    parent.mkdir(parents=True, exist_ok=True)
    for n in range(1000):
        path = parent / f"{prefix}-{os.getpid()}-{time.time_ns()}-{n}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise StorageError(f"cannot create a staging directory under {parent}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# A directory of a live process older than this is taken as left by a recycled pid.
STALE_AFTER_S = 24 * 3600


def sweep_stale(parent: Path, prefix: str) -> int:
    """Remove the `staging_dir`s under `parent` whose process is gone (or that are older
    than a day); return how many. Safe to run while other processes stage their own."""
    removed = 0
    try:
        children = list(parent.iterdir())
    except FileNotFoundError:
        return 0
    now = time.time()
    for path in children:
        fields = path.name.split("-")
        if len(fields) != 4 or fields[0] != prefix or not fields[1].isdigit():
            continue
        pid = int(fields[1])
        try:
            old = now - path.lstat().st_mtime > STALE_AFTER_S
        except FileNotFoundError:
            continue
        if pid == os.getpid() and not old:
            continue
        if old or not _alive(pid):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed
