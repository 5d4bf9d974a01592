"""The embedded IPFS store: UnixFS blocks on local disk, the same CIDs as Kubo.

Layout under `root`:
- `blocks/<xy>/<multihash>` one file a block, named by the base32 of its multihash (so a
  CIDv0 and its CIDv1 find the same block) and sharded on two characters of the name,
  like Kubo's flatfs. A block is written to a temporary name and moved into place with
  `os.replace`, so a crash leaves either the whole block or none of it; leftover `.tmp`
  files are harmless. Every block read is checked against its hash: a damaged block raises
  StorageError and is removed, so adding the content again repairs it.
- `pins/<cid>` one empty file a pinned root. Nothing is ever garbage-collected yet.
- `staging/car-<pid>-…/` a CAR import in progress (see `import_car`); one left by a killed
  process is removed when the store is next opened.

Adding streams files chunk by chunk (see `executor.unixfs`), so memory stays constant
whatever their size. Folders are added as `ipfs add -r --hidden` would: every entry,
dotfiles included; symlinks and special files are refused rather than followed, so a job
cannot publish files from outside its output folder.
"""

from __future__ import annotations

import base64
import io
import itertools
import os
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from executor.car import CarError, CarReader, blocks_within, write_car
from executor.cids import InvalidCID, cid_from_bytes, normalize_cid
from executor.storage import (
    ENTRY_COST,
    AddedEntry,
    ContentNotFound,
    DirEntry,
    FetchLimit,
    StorageError,
    staging_dir,
    sweep_stale,
)
from executor.unixfs import (
    CODEC_DAG_PB,
    CODEC_RAW,
    CidParts,
    DataType,
    Link,
    PBNode,
    UnixFSData,
    UnixFSError,
    cid_text,
    decode_cid,
    decode_pbnode,
    decode_unixfs,
    directory_node,
    import_file,
)
from executor.unixfs import cid_to_bytes as _canonical_to_bytes

__all__ = ["EmbeddedStore"]


@dataclass(frozen=True)
class _Node:
    """One block interpreted as UnixFS: a raw leaf has `node` and `unixfs` None."""

    cid: bytes
    block: bytes
    node: PBNode | None
    unixfs: UnixFSData | None

    @property
    def is_dir(self) -> bool:
        return self.unixfs is not None and self.unixfs.type in (
            DataType.DIRECTORY,
            DataType.HAMT_SHARD,
        )


@dataclass
class _Frame:
    """A folder being added: its entries still to visit and the links made so far."""

    display: str
    name: bytes
    entries: Iterator[os.DirEntry[str]]
    links: list[tuple[bytes, Link]]


def _text(binary: bytes) -> str:
    try:
        return cid_from_bytes(binary)
    except InvalidCID:
        return cid_text(binary)  # a codec py-cid does not know: still name it in messages


def _parts(cid: bytes) -> CidParts:
    """The parsed CID, or StorageError for the malformed link hashes a foreign DAG may hold."""
    try:
        parts, end = decode_cid(cid)
    except UnixFSError as exc:
        raise StorageError(f"malformed CID {cid.hex()}: {exc}") from None
    if end != len(cid):
        raise StorageError(f"malformed CID {cid.hex()}: trailing bytes")
    return parts


def _declared_size(node: _Node) -> int:
    """A file's size as its root block declares it (a raw leaf is its own bytes)."""
    if node.unixfs is None:
        return len(node.block)
    if node.unixfs.filesize is not None:
        return node.unixfs.filesize
    return len(node.unixfs.data or b"") + sum(node.unixfs.blocksizes)


def _safe_name(name: bytes, parent: bytes) -> str:
    """A directory entry name that is safe to create on disk, or StorageError."""
    if not name or name in (b".", b"..") or b"/" in name or b"\x00" in name:
        raise StorageError(f"directory {_text(parent)} has an unsafe entry name {name!r}")
    return os.fsdecode(name)


class _BlockWriter:
    """Writes blocks on two threads while the caller reads and hashes the next chunk.

    Creating one file a block, not hashing, dominates adding (a fresh 64 MiB add measured
    494 ms inline, 229 ms this way, on this project's 2-core VM). At most `in_flight`
    blocks wait at a time, so memory stays bounded. The first failure is raised by the
    next `put` or on leaving the `with` block, which waits for every write first.
    """

    def __init__(self, store: EmbeddedStore, workers: int = 2, in_flight: int = 8) -> None:
        self._store = store
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="ipfs-put")
        self._slots = threading.BoundedSemaphore(in_flight)
        self._errors: list[BaseException] = []

    def put(self, cid: bytes, block: bytes) -> None:
        self._raise_first()
        if self._store.has_block(cid):
            return  # already stored: a stat here is cheaper than a trip through the pool
        self._slots.acquire()
        try:
            future = self._pool.submit(self._store.put_block, cid, block)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        self._slots.release()
        error = future.exception()
        if error is not None:
            self._errors.append(error)

    def _raise_first(self) -> None:
        if self._errors:
            error = self._errors[0]
            if isinstance(error, OSError):
                raise StorageError(f"cannot store a block under {self._store.root}: {error}")
            raise error

    def __enter__(self) -> _BlockWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self._pool.shutdown(wait=True)
        if kind is None:
            self._raise_first()


class EmbeddedStore:
    """`Storage` on local disk; see the module docstring for the layout."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._blocks = self.root / "blocks"
        self._pins = self.root / "pins"
        try:
            self._blocks.mkdir(parents=True, exist_ok=True)
            self._pins.mkdir(exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the IPFS store at {self.root}: {exc}") from None
        self._shards: set[str] = set()
        self._tmp_names = itertools.count()
        sweep_stale(self.root / "staging", "car")

    def __repr__(self) -> str:
        return f"EmbeddedStore({str(self.root)!r})"

    # --- blocks ------------------------------------------------------------------------------

    def _block_path(self, multihash: bytes) -> Path:
        key = base64.b32encode(multihash).decode("ascii").lower().rstrip("=")
        return self._blocks / key[-3:-1] / key

    def put_block(self, cid: bytes, block: bytes) -> None:
        """Store one block under its binary CID (the caller vouches for the hash)."""
        path = self._block_path(_parts(cid).multihash)
        if path.exists():
            return
        shard = path.parent
        if shard.name not in self._shards:
            shard.mkdir(exist_ok=True)
            self._shards.add(shard.name)
        tmp = shard / f".{path.name}.{os.getpid()}.{next(self._tmp_names)}.tmp"
        try:
            with tmp.open("wb") as handle:
                handle.write(block)
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _parse(self, cid: str) -> bytes:
        try:
            return _canonical_to_bytes(normalize_cid(cid))
        except InvalidCID as exc:
            raise StorageError(str(exc)) from None

    def _block(self, cid: bytes) -> bytes:
        parts = _parts(cid)
        path = self._block_path(parts.multihash)
        try:
            block = path.read_bytes()
        except FileNotFoundError:
            raise ContentNotFound(f"{_text(cid)} is not in the IPFS store") from None
        try:
            intact = parts.verify(block)
        except UnixFSError as exc:
            raise StorageError(f"{_text(cid)}: {exc}") from None
        if not intact:
            path.unlink(missing_ok=True)
            raise StorageError(f"block {_text(cid)} was damaged on disk and has been removed")
        return block

    def _block_size(self, cid: bytes) -> int:
        try:
            return self._block_path(_parts(cid).multihash).stat().st_size
        except FileNotFoundError:
            raise ContentNotFound(f"{_text(cid)} is not in the IPFS store") from None

    def _has_block(self, parts: CidParts) -> bool:
        return self._block_path(parts.multihash).exists()

    def has_block(self, cid: bytes) -> bool:
        """True when the block itself (not necessarily its children) is stored."""
        return self._has_block(_parts(cid))

    def _node(self, cid: bytes) -> _Node:
        parts = _parts(cid)
        block = self._block(cid)
        if parts.codec == CODEC_RAW:
            return _Node(cid, block, None, None)
        if parts.codec != CODEC_DAG_PB:
            raise StorageError(f"{_text(cid)} is not UnixFS (codec 0x{parts.codec:x})")
        try:
            node = decode_pbnode(block)
            if node.data is None:
                raise UnixFSError("dag-pb node without UnixFS data")
            unixfs = decode_unixfs(node.data)
        except UnixFSError as exc:
            raise StorageError(f"{_text(cid)} is not valid UnixFS: {exc}") from None
        return _Node(cid, block, node, unixfs)

    # --- adding ------------------------------------------------------------------------------

    def _add_file(self, path: Path, writer: _BlockWriter) -> Link:
        try:
            with path.open("rb", buffering=0) as handle:
                return import_file(handle, writer.put)
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from None

    def add_bytes(self, data: bytes) -> str:
        with _BlockWriter(self) as writer:
            link = import_file(io.BytesIO(data), writer.put)
        cid = _text(link.cid)
        self._pin(cid)
        return cid

    def add_path(self, path: Path) -> list[AddedEntry]:
        path = Path(path)
        if path.is_symlink():
            raise StorageError(f"{path} is a symbolic link; add its target instead")
        try:
            info = path.stat()
        except FileNotFoundError:
            raise StorageError(f"{path}: no such file or directory") from None
        except OSError as exc:
            raise StorageError(f"{path}: {exc.strerror or exc}") from None
        name = path.name or path.resolve().name or "/"
        if not (path.is_dir() or path.is_file()):
            raise StorageError(f"{path}: not a regular file or directory (mode {info.st_mode:o})")
        with _BlockWriter(self) as writer:
            if path.is_dir():
                entries = self._add_dir(path, name, writer)
            else:
                link = self._add_file(path, writer)
                entries = [AddedEntry(name, _text(link.cid), link.tsize)]
        self._pin(entries[-1].cid)
        return entries

    def _sorted_entries(self, directory: Path) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(directory) as scan:
                entries = list(scan)
        except OSError as exc:
            raise StorageError(f"cannot list {directory}: {exc.strerror or exc}") from None
        # Kubo walks names in Go string order, which is byte order.
        return sorted(entries, key=lambda entry: os.fsencode(entry.name))

    def _add_dir(self, top: Path, name: str, writer: _BlockWriter) -> list[AddedEntry]:
        """Post-order walk with an explicit stack (no recursion limit on deep trees).

        Output order is Kubo's: files as they are added, then every directory after its
        subdirectories, the root last.
        """
        files: list[AddedEntry] = []
        dirs: list[AddedEntry] = []

        stack = [_Frame(name, b"", iter(self._sorted_entries(top)), [])]
        while stack:
            frame = stack[-1]
            entry = next(frame.entries, None)
            if entry is None:
                stack.pop()
                link = directory_node(frame.links, writer.put)
                dirs.append(AddedEntry(frame.display, _text(link.cid), link.tsize))
                if stack:
                    stack[-1].links.append((frame.name, link))
                continue
            display = f"{frame.display}/{entry.name}"
            raw_name = os.fsencode(entry.name)
            if entry.is_symlink():
                raise StorageError(f"{entry.path}: symbolic links are not added")
            if entry.is_dir(follow_symlinks=False):
                stack.append(
                    _Frame(display, raw_name, iter(self._sorted_entries(Path(entry.path))), [])
                )
            elif entry.is_file(follow_symlinks=False):
                link = self._add_file(Path(entry.path), writer)
                files.append(AddedEntry(display, _text(link.cid), link.tsize))
                frame.links.append((raw_name, link))
            else:
                raise StorageError(f"{entry.path}: not a regular file or directory")
        return files + dirs

    # --- reading -----------------------------------------------------------------------------

    def _root(self, cid: str) -> _Node:
        return self._node(self._parse(cid))

    def iter_cat(self, cid: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Stream a file's bytes in pieces of at most `chunk_size` bytes."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        root = self._root(cid)
        if root.is_dir:
            raise StorageError(f"{cid} is a directory, not a file")
        return self._iter_file(root, chunk_size)

    def _iter_file(self, root: _Node, chunk_size: int) -> Iterator[bytes]:
        """The file's bytes, exactly as many as its root declares: StorageError as soon as
        its blocks hold more, or at the end when they hold fewer."""
        declared = _declared_size(root)
        sent = 0
        stack: list[bytes] = []
        node: _Node | None = root
        while True:
            if node is None:
                if not stack:
                    break
                node = self._node(stack.pop())
            data = self._file_data(node)
            if data:
                sent += len(data)
                if sent > declared:
                    raise StorageError(
                        f"{_text(root.cid)} declares {declared} bytes but its blocks hold more"
                    )
                for start in range(0, len(data), chunk_size):
                    yield data[start : start + chunk_size]
            if node.node is not None:
                stack.extend(link.hash for link in reversed(node.node.links))
            node = None
        if sent != declared:
            raise StorageError(
                f"{_text(root.cid)} declares {declared} bytes but its blocks hold {sent}"
            )

    @staticmethod
    def _file_data(node: _Node) -> bytes | None:
        if node.unixfs is None:
            return node.block
        if node.unixfs.type in (DataType.FILE, DataType.RAW):
            return node.unixfs.data
        raise StorageError(f"{_text(node.cid)} is a UnixFS {node.unixfs.type.name.lower()}")

    def cat(self, cid: str) -> bytes:
        return b"".join(self.iter_cat(cid))

    def is_dir(self, cid: str) -> bool:
        return self._root(cid).is_dir

    def _dir_links(self, node: _Node) -> list[tuple[bytes, bytes]]:
        """(name, binary CID) of a directory's entries, HAMT shards flattened, name order."""
        assert node.node is not None and node.unixfs is not None
        if node.unixfs.type == DataType.DIRECTORY:
            return [(link.name or b"", link.hash) for link in node.node.links]
        out: list[tuple[bytes, bytes]] = []
        shards = [node]
        while shards:
            shard = shards.pop()
            assert shard.node is not None and shard.unixfs is not None
            fanout = shard.unixfs.fanout or 256
            width = len(f"{fanout - 1:X}")
            for link in shard.node.links:
                name = link.name or b""
                if len(name) == width:
                    child = self._node(link.hash)
                    if child.unixfs is None or child.unixfs.type != DataType.HAMT_SHARD:
                        raise StorageError(f"{_text(shard.cid)} has a broken HAMT shard link")
                    shards.append(child)
                elif len(name) > width:
                    out.append((name[width:], link.hash))
                else:
                    raise StorageError(f"{_text(shard.cid)} has a malformed HAMT entry")
        out.sort(key=lambda entry: entry[0])
        return out

    def _directory(self, cid: str) -> _Node:
        node = self._root(cid)
        if not node.is_dir:
            raise StorageError(f"{cid} is a file, not a directory")
        return node

    def ls(self, cid: str) -> list[DirEntry]:
        node = self._directory(cid)
        entries = []
        for name, child_cid in self._dir_links(node):
            if _parts(child_cid).codec == CODEC_RAW:
                # A raw leaf's size is its block's: no need to read it.
                is_dir, size = False, self._block_size(child_cid)
            else:
                child = self._node(child_cid)
                is_dir = child.is_dir
                size = 0 if is_dir else _declared_size(child)
            entries.append(DirEntry(_safe_name(name, node.cid), _text(child_cid), size, is_dir))
        return entries

    def size(self, cid: str) -> int:
        root = self._root(cid)
        return 0 if root.is_dir else _declared_size(root)

    def get(self, cid: str, dest: Path, limit: FetchLimit | None = None) -> Path:
        dest = Path(dest)
        if os.path.lexists(dest):
            raise StorageError(f"{dest} already exists")
        root = self._root(cid)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {dest.parent}: {exc.strerror or exc}") from None
        # Build beside the destination and rename at the end: a failed get leaves nothing.
        partial = dest.parent / f".{dest.name}.partial-{os.getpid()}-{next(self._tmp_names)}"
        try:
            self._write_tree(root, partial, limit)
            partial.rename(dest)
        except BaseException:
            if partial.is_dir():
                shutil.rmtree(partial, ignore_errors=True)
            else:
                partial.unlink(missing_ok=True)
            raise
        return dest

    def _write_tree(self, root: _Node, dest: Path, limit: FetchLimit | None) -> None:
        pending: list[tuple[bytes, Path]] = [(root.cid, dest)]
        while pending:
            cid, path = pending.pop()
            node = root if cid is root.cid else self._node(cid)
            if limit is not None:
                limit.spend(ENTRY_COST)
            try:
                if node.is_dir:
                    path.mkdir()
                    for name, child in self._dir_links(node):
                        pending.append((child, path / _safe_name(name, node.cid)))
                else:
                    with path.open("xb") as handle:
                        for piece in self._iter_file(node, 1 << 20):
                            if limit is not None:
                                limit.spend(len(piece))
                            handle.write(piece)
            except OSError as exc:
                raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None

    def _blocks_under(self, root: bytes, read_leaves: bool) -> Iterator[tuple[bytes, bytes]]:
        """Every block under `root` once, depth first in link order (Kubo's `dag export`).

        Leaves are only checked for presence when `read_leaves` is false (then the block
        yielded is empty). Blocks of codecs other than dag-pb are yielded but not followed.
        """
        seen: set[bytes] = set()
        stack = [root]
        while stack:
            cid = stack.pop()
            parts = _parts(cid)
            if parts.multihash in seen:
                continue
            seen.add(parts.multihash)
            if parts.codec != CODEC_DAG_PB:
                if read_leaves:
                    yield cid, self._block(cid)
                elif not self._has_block(parts):
                    raise ContentNotFound(f"{_text(cid)} is not in the IPFS store")
                else:
                    yield cid, b""
                continue
            block = self._block(cid)
            try:
                node = decode_pbnode(block)
            except UnixFSError as exc:
                raise StorageError(f"{_text(cid)} is not valid dag-pb: {exc}") from None
            yield cid, block
            stack.extend(link.hash for link in reversed(node.links))

    def has(self, cid: str) -> bool:
        try:
            for _ in self._blocks_under(self._parse(cid), read_leaves=False):
                pass
        except ContentNotFound:
            return False
        return True

    def _pin(self, cid: str) -> None:
        (self._pins / cid).touch()

    def pin(self, cid: str) -> None:
        canonical = _text(self._parse(cid))
        if not self.has(canonical):
            raise ContentNotFound(f"{canonical} is not (entirely) in the IPFS store")
        self._pin(canonical)

    def pins(self) -> list[str]:
        """Pinned root CIDs, sorted."""
        return sorted(path.name for path in self._pins.iterdir() if not path.name.startswith("."))

    def export_car(self, cid: str, out: BinaryIO) -> None:
        root = self._parse(cid)
        if not self._has_block(_parts(root)):
            raise ContentNotFound(f"{_text(root)} is not in the IPFS store")
        write_car(out, [root], self._blocks_under(root, read_leaves=True))

    def import_car(self, car: BinaryIO, max_bytes: int | None = None) -> list[str]:
        """All or nothing: the blocks are staged under `staging/`, every root's DAG is checked
        to be whole (in the CAR or already stored), then the staged blocks under the roots
        are moved into `blocks/`, each after the blocks it links to. So even a kill half way
        through publishing leaves only whole DAGs readable; a kill before it leaves a staging
        directory, swept when the store is next opened. Blocks no root reaches are dropped."""
        reader = CarReader(car)
        roots = []
        for raw_root in reader.roots:
            try:
                roots.append(_text(raw_root))
            except InvalidCID as exc:
                raise CarError(f"CAR root is not a CID: {exc}") from None
        staging = staging_dir(self.root / "staging", "car")
        try:
            stage = EmbeddedStore(staging)
            with _BlockWriter(stage) as writer:
                for cid, block in blocks_within(reader, max_bytes):
                    writer.put(cid, block)
            for cid in self._publish_order(stage, reader.roots):
                self._publish(stage, cid)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        for root in roots:
            self._pin(root)
        return roots

    def _publish_order(self, stage: EmbeddedStore, roots: list[bytes]) -> list[bytes]:
        """The staged blocks under `roots`, each after every block it links to; CarError
        naming the root when a block of its DAG is neither staged nor stored here."""
        order: list[bytes] = []
        seen: set[bytes] = set()
        for root in roots:
            stack: list[tuple[bytes, bool]] = [(root, False)]
            while stack:
                cid, expanded = stack.pop()
                if expanded:
                    if stage.has_block(cid):
                        order.append(cid)
                    continue
                parts = _parts(cid)
                if parts.multihash in seen:
                    continue
                seen.add(parts.multihash)
                stack.append((cid, True))
                source = stage if stage.has_block(cid) else self
                if not source.has_block(cid):
                    if cid == root:
                        raise CarError(f"root {_text(root)} is neither in the CAR nor stored here")
                    raise CarError(
                        f"the DAG of root {_text(root)} needs {_text(cid)}, which is neither "
                        "in the CAR nor stored here"
                    )
                if parts.codec != CODEC_DAG_PB:
                    continue
                try:
                    links = decode_pbnode(source._block(cid)).links
                except UnixFSError as exc:
                    raise CarError(f"{_text(cid)} is not valid dag-pb: {exc}") from None
                stack.extend((link.hash, False) for link in reversed(links))
        return order

    def _publish(self, stage: EmbeddedStore, cid: bytes) -> None:
        multihash = _parts(cid).multihash
        target = self._block_path(multihash)
        if target.exists():
            return
        target.parent.mkdir(exist_ok=True)
        stage._block_path(multihash).replace(target)
