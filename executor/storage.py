"""Where job inputs come from and results go: the storage interface both IPFS backends share.

Two backends implement `Storage`:
- `executor.kubo.KuboClient`: a Kubo-compatible HTTP RPC node (`IPFS_API_URL`);
- `executor.store.EmbeddedStore`: blocks on local disk under `DATA_DIR/ipfs`, used when
  `IPFS_API_URL` is unset.
Both give exactly the CIDs `ipfs add --cid-version=1` gives (raw leaves, 256 KiB chunks,
balanced DAG) and answer CIDs in canonical form (CIDv1, base32, lower case).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

__all__ = [
    "AddedEntry",
    "ContentNotFound",
    "DirEntry",
    "Storage",
    "StorageError",
    "StorageUnavailable",
    "open_storage",
]


class StorageError(Exception):
    """Content could not be stored or read; the message says why in one line."""


class ContentNotFound(StorageError):
    """The CID (or a path under it) is not in the store."""


class StorageUnavailable(StorageError):
    """The IPFS node could not be reached or answered with a server error."""


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

    def get(self, cid: str, dest: Path) -> Path:
        """Write a file or a directory tree at `dest` (which must not exist); return `dest`."""

    def has(self, cid: str) -> bool:
        """True when every block under the CID is available here."""

    def pin(self, cid: str) -> None:
        """Keep the content from garbage collection."""

    def export_car(self, cid: str, out: BinaryIO) -> None:
        """Write a CARv1 with the CID as its single root and every block under it."""

    def import_car(self, car: BinaryIO) -> list[str]:
        """Store every block of a CARv1; return its roots (canonical CIDs)."""


def open_storage(ipfs_api_url: str | None = None, data_dir: Path | None = None) -> Storage:
    """The configured backend: Kubo RPC when `IPFS_API_URL` is set, else the embedded store.

    Arguments override the environment so that the dashboard passes its settings and the
    CLI, which has no Django, reads the same variables itself.
    """
    url = ipfs_api_url if ipfs_api_url is not None else os.environ.get("IPFS_API_URL") or None
    if url:
        from executor.kubo import KuboClient

        # How long a node may look for a block before we call it absent: 2 s suits an
        # offline node; an online Kubo searching the network needs longer.
        raw = os.environ.get("IPFS_FIND_TIMEOUT_S") or "2"
        try:
            find_timeout = float(raw)
        except ValueError:
            raise StorageError(
                f"IPFS_FIND_TIMEOUT_S must be a number of seconds, got {raw!r}"
            ) from None
        return KuboClient(url, find_timeout=find_timeout)
    from executor.store import EmbeddedStore

    root = data_dir if data_dir is not None else Path(os.environ.get("DATA_DIR") or "data")
    return EmbeddedStore(root / "ipfs")
