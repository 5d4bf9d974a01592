"""Storage on a Kubo-compatible IPFS node, through its HTTP RPC (`/api/v0`, every call a POST).

We talk to the RPC with httpx rather than `ipfshttpclient`: that library's `connect()` refuses
any daemon version outside 0.4.23 ≤ v < 0.8.0, so it rejects every Kubo release since 0.8,
and its `add(cid_version=1)` silently sends `raw-leaves=false`.

Only parameters that both Kubo and js-ipfs (npm `ipfs@0.66.1`, our test node) accept are sent.
Where js-ipfs differs from Kubo, the method docstrings say so. The ones that shape this module:
- js-ipfs prints CIDv1 in base58btc unless asked for `cid-base=base32`; every CID a node
  answers goes through `normalize_cid` anyway, so callers always see canonical base32.
- An absent block makes js-ipfs wait forever even when offline (Kubo `--offline` fails at once,
  an online Kubo searches the network). So every read first fetches the root block with the
  RPC's own `timeout` option (`timeout=2s`, a global option in Kubo and a per-call one in
  js-ipfs): an unknown CID becomes `ContentNotFound` within `find_timeout` seconds.
- The RPC `timeout` bounds a whole call, streamed output included, so long streams (cat, CAR
  export) are sent without it and are bounded by httpx's per-read timeout instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import httpx

from executor.car import CarError, CarReader, blocks_within, encode_header
from executor.cids import InvalidCID, cid_from_bytes, normalize_cid
from executor.storage import (
    ENTRY_COST,
    AddedEntry,
    ContentNotFound,
    DirEntry,
    FetchLimit,
    StorageError,
    StorageUnavailable,
)
from executor.unixfs import (
    CODEC_DAG_PB,
    CODEC_RAW,
    DataType,
    UnixFSError,
    cid_to_bytes,
    decode_cid,
    decode_pbnode,
    decode_unixfs,
    encode_varint,
)

__all__ = ["KuboClient"]

# Parameters that make `add` give the CIDs of `ipfs add --cid-version=1` (Kubo's 256 KiB
# chunker and balanced layout are already the default on both nodes).
_ADD_PARAMS = {"cid-version": "1", "raw-leaves": "true", "cid-base": "base32", "pin": "true"}

# Error texts (Kubo, then js-ipfs) meaning "the node does not have it or could not find it".
_NOT_FOUND = re.compile(
    r"not found|could not find|no link named|does not exist|deadline exceeded|timed out|timeout",
    re.IGNORECASE,
)
_NOT_A_FILE = re.compile(r"is a directory|not a file|not unixfs file", re.IGNORECASE)

# `ls` link types as both nodes number them
_LS_DIR_TYPES = {1, 5}

_COPY_CHUNK = 1 << 20


class _Stalled(StorageUnavailable):
    """The node sent nothing for a read timeout: busy, or waiting for a block it lacks."""


@dataclass(frozen=True)
class _Root:
    """What the root block of a CID says: its kind and, for files, the byte count."""

    kind: str  # "file", "dir" or "symlink"
    size: int


class KuboClient:
    """`Storage` on a Kubo (or js-ipfs) node's HTTP RPC.

    `url` is the RPC address, e.g. `http://127.0.0.1:5001` (a trailing `/api/v0` and the
    multiaddr form `/ip4/127.0.0.1/tcp/5001` are accepted too). `timeout` bounds each wait for
    the node: connecting, and every read of an answer, so a stream that stalls for that long
    fails. `find_timeout` bounds the wait for a block the node may not have: a CID's root
    block, and each next block while `has` or `ls` walk a DAG. On an online Kubo a search
    crosses the network, so raise it there; on js-ipfs it is what an absent CID costs.
    """

    def __init__(self, url: str, timeout: float = 60.0, *, find_timeout: float = 2.0) -> None:
        self.url = _base_url(url)
        self.timeout = timeout
        self.find_timeout = find_timeout
        self._client = httpx.Client(base_url=self.url + "/api/v0", timeout=timeout)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> KuboClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KuboClient({self.url!r})"

    # -- adding ------------------------------------------------------------------------------

    def add_bytes(self, data: bytes) -> str:
        parts = [_Part("data", "application/octet-stream", lambda: iter((data,)))]
        entries = self._add(parts)
        return entries[-1].cid

    def add_path(self, path: Path) -> list[AddedEntry]:
        """Add a file or a folder as `ipfs add -r --cid-version=1` does, the root entry last.

        Every entry is sent, dotfiles included, as `ipfs add -r --hidden` does (Kubo's CLI
        drops them client-side without `--hidden`; the RPC adds whatever it is sent), which
        is also what the embedded store adds. Symbolic links are refused rather than
        followed: a job's outputs must not reach outside their folder.
        """
        path = Path(path)
        if path.is_symlink():
            raise StorageError(f"{path} is a symbolic link; add its target instead")
        if not path.exists():
            raise StorageError(f"{path}: no such file or directory")
        parts = list(_multipart_parts(path))  # walks the tree first: refusals come before I/O
        reported = {entry.path: entry for entry in self._add(parts)}
        root_name = parts[0].name if parts[0].content_type == _DIRECTORY else parts[-1].name
        if root_name not in reported:
            raise StorageError(f"the IPFS node at {self.url} did not report a root for {path}")
        # The embedded store's order, which is Kubo's: files as sent, then each directory
        # after its subdirectories. js-ipfs leaves empty directories out of its report
        # (they are in the DAG): those are looked up below the root.
        entries = []
        for part in parts:
            if part.content_type != _DIRECTORY:
                if part.name not in reported:
                    raise StorageError(f"the IPFS node at {self.url} did not report {part.name}")
                entries.append(reported[part.name])
        for name in _post_order([p.name for p in parts if p.content_type == _DIRECTORY]):
            entries.append(reported.get(name) or self._added_dir(reported[root_name], name))
        return entries

    def _added_dir(self, root: AddedEntry, name: str) -> AddedEntry:
        """The add report's line for a directory below `root`, from the DAG itself."""
        cid = root.cid
        for component in name.split("/")[1:]:
            found = [e for e in self.ls(cid) if e.name == component]
            if not found:
                raise StorageError(f"{name} is missing from the DAG the IPFS node built")
            cid = found[0].cid
        block = self._block(cid)
        # A link's cumulative size (what `add` reports) is its block plus everything below.
        links = decode_pbnode(block).links
        return AddedEntry(name, cid, len(block) + sum(link.tsize or 0 for link in links))

    def _add(self, parts: list[_Part]) -> list[AddedEntry]:
        boundary = uuid.uuid4().hex
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        body = _multipart_body(parts, boundary)
        entries: list[AddedEntry] = []
        with self._call("add", stream=True, params=_ADD_PARAMS, content=body, headers=headers) as r:
            for item in _ndjson(r, self.url, "add"):
                if "Hash" not in item:
                    continue  # a progress line
                entries.append(
                    AddedEntry(
                        path=item.get("Name") or "",
                        cid=self._canonical(item["Hash"]),
                        size=int(item.get("Size") or 0),
                    )
                )
        if not entries:
            raise StorageError(f"the IPFS node at {self.url} added nothing")
        return entries

    # -- reading -----------------------------------------------------------------------------

    def iter_cat(self, cid: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Stream a file. The root block is checked first, so ContentNotFound (or StorageError
        for a directory) is raised by this call, not by the first `next()`."""
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        cid = _cid(cid)
        root = self._root(cid)
        if root.kind != "file":
            raise StorageError(f"{cid} is a {_KIND_NAMES[root.kind]}, not a file")
        return self._stream_file(cid, root.size, chunk_size)

    def _stream_file(self, cid: str, expected: int, chunk_size: int) -> Iterator[bytes]:
        received = 0
        with self._call("cat", stream=True, params={"arg": cid}) as response:
            for chunk in self._iter_bytes(response, chunk_size, cid):
                received += len(chunk)
                if received > expected:
                    # The node follows the blocks, not the sizes they declare: stop here.
                    raise StorageError(f"{cid} declares {expected} bytes but its blocks hold more")
                yield chunk
        # A node that fails mid-stream can only end the body early (Kubo reports the error in
        # an HTTP trailer); the size in the root block tells a short read from a whole one.
        if received != expected:
            raise StorageError(
                f"the IPFS node at {self.url} sent {received} of {expected} bytes of {cid}"
            )

    def cat(self, cid: str) -> bytes:
        return b"".join(self.iter_cat(cid))

    def is_dir(self, cid: str) -> bool:
        return self._root(_cid(cid)).kind == "dir"

    def ls(self, cid: str) -> list[DirEntry]:
        """A directory's entries. Kubo and js-ipfs both number link types as UnixFS does (1
        directory, 2 file, 4 symlink, 5 sharded directory); a symlink is listed as a file."""
        cid = _cid(cid)
        root = self._root(cid)
        if root.kind != "dir":
            raise StorageError(f"{cid} is a {_KIND_NAMES[root.kind]}, not a directory")
        return self._list(cid)

    def _list(self, cid: str) -> list[DirEntry]:
        # Both nodes read every entry's block to type it: a missing one stalls the stream.
        entries = []
        for item in self._walk("ls", {"arg": cid, "stream": "true"}, cid):
            for link in (item.get("Objects") or [{}])[0].get("Links") or []:
                is_dir = link.get("Type") in _LS_DIR_TYPES
                entries.append(
                    DirEntry(
                        name=link["Name"],
                        cid=self._canonical(link["Hash"]),
                        size=0 if is_dir else int(link.get("Size") or 0),
                        is_dir=is_dir,
                    )
                )
        return sorted(entries, key=lambda e: e.name.encode())

    def size(self, cid: str) -> int:
        return self._root(_cid(cid)).size

    def get(self, cid: str, dest: Path, limit: FetchLimit | None = None) -> Path:
        """Write the file or tree at `dest` through `ls` and `cat`, which behave alike on both
        nodes (`/api/v0/get`'s tar differs in details). The tree is built beside `dest` and
        renamed into place, so a failure leaves nothing at `dest`."""
        cid = _cid(cid)
        dest = Path(dest)
        if dest.exists() or dest.is_symlink():
            raise StorageError(f"{dest} already exists")
        self._root(cid)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {dest.parent}: {exc.strerror or exc}") from None
        work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            target = work / "root"
            self._get_into(cid, target, limit)
            target.rename(dest)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return dest

    def _get_into(self, top: str, top_target: Path, limit: FetchLimit | None) -> None:
        pending = [(top, top_target)]
        while pending:
            cid, target = pending.pop()
            root = self._root(cid)
            if root.kind == "symlink":
                raise StorageError(f"{cid} is a symbolic link; refusing to write it")
            if limit is not None:
                limit.spend(ENTRY_COST)
            try:
                if root.kind == "file":
                    with target.open("xb") as out:
                        for chunk in self._stream_file(cid, root.size, _COPY_CHUNK):
                            if limit is not None:
                                limit.spend(len(chunk))
                            out.write(chunk)
                    continue
                target.mkdir()
            except OSError as exc:
                raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from None
            for entry in reversed(self._list(cid)):
                if entry.name in ("", ".", "..") or "/" in entry.name or "\0" in entry.name:
                    raise StorageError(f"{cid} holds an entry named {entry.name!r}; refusing it")
                pending.append((entry.cid, target / entry.name))

    def has(self, cid: str) -> bool:
        """Whether every block under the CID is here: `refs -r` with `offline=true`. Kubo then
        never asks the network and reports a missing block at once; js-ipfs ignores the
        option and waits for the block, so a stream that stalls for `find_timeout` counts
        as absent too."""
        cid = _cid(cid)
        params = {"arg": cid, "recursive": "true", "unique": "true", "offline": "true"}
        try:
            self._root(cid)
            for item in self._walk("refs", params, cid):
                if item.get("Err"):
                    return False
        except ContentNotFound:
            return False
        return True

    def pin(self, cid: str) -> None:
        """`pin/add`, once `has` says the whole DAG is here: js-ipfs pinning an incomplete DAG
        waits for the missing blocks forever."""
        cid = _cid(cid)
        if not self.has(cid):
            raise ContentNotFound(f"{cid} is not wholly on the IPFS node at {self.url}")
        params = {"arg": cid, "recursive": "true", "timeout": _duration(self.timeout)}
        self._json("pin/add", params, cid)

    # -- CAR files ---------------------------------------------------------------------------

    def export_car(self, cid: str, out: BinaryIO) -> None:
        """`dag/export`. The DAG is checked to be whole first (`has`): a node that misses a
        block mid-export can only cut the stream short, which would look like a valid CAR."""
        cid = _cid(cid)
        if not self.has(cid):
            raise ContentNotFound(f"{cid} is not wholly on the IPFS node at {self.url}")
        with self._call("dag/export", stream=True, params={"arg": cid}, cid=cid) as response:
            for chunk in self._iter_bytes(response, _COPY_CHUNK, cid):
                out.write(chunk)

    def import_car(self, car: BinaryIO, max_bytes: int | None = None) -> list[str]:
        """`dag/import` of a CARv1 or CARv2: every block is checked against its CID here
        (`executor.car`) and sent on as CARv1. Each root must then be complete on the node,
        and is pinned, as Kubo's default `pin-roots` does, but by us: the node gets
        `pin-roots=false`, since Kubo only reports roots it pins and js-ipfs, pinning an
        incomplete DAG, waits forever. Blocks of a refused CAR stay unpinned, for the node's
        garbage collector.
        """
        reader = CarReader(car)
        roots = [cid_from_bytes(root) for root in reader.roots]
        boundary = uuid.uuid4().hex
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}

        blocks = blocks_within(reader, max_bytes)
        part = _Part("car", "application/octet-stream", lambda: _car_v1(reader.roots, blocks))
        body = _multipart_body([part], boundary)
        params = {"pin-roots": "false"}
        call = self._call("dag/import", stream=True, params=params, content=body, headers=headers)
        with call as response:
            for _ in _ndjson(response, self.url, "dag/import"):
                pass
        for root in roots:
            if not self.has(root):
                raise CarError(f"the DAG of root {root} is neither in the CAR nor stored whole")
        for root in roots:
            self.pin(root)
        return roots

    # -- plumbing ----------------------------------------------------------------------------

    def _root(self, cid: str) -> _Root:
        """The root block, decoded."""
        return _decode_root(cid, self._block(cid))

    def _block(self, cid: str) -> bytes:
        """One block, found within `find_timeout` and checked against its CID."""
        params = {"arg": cid, "timeout": _duration(self.find_timeout)}
        response = self._post("block/get", params, cid, timeout=self.find_timeout + self.timeout)
        parts, _ = decode_cid(cid_to_bytes(cid))
        if not parts.verify(response.content):
            raise StorageError(f"the IPFS node at {self.url} sent a block that is not {cid}")
        return response.content

    def _walk(self, endpoint: str, params: dict[str, str], cid: str) -> Iterator[dict[str, Any]]:
        """The lines of a call that walks a DAG block by block (`refs`, `ls`). No RPC
        `timeout` (it would cut a long walk short): instead the stream may stall for at most
        `find_timeout` between lines, which is how a missing block shows on js-ipfs."""
        timeout = httpx.Timeout(self.timeout, read=self.find_timeout)
        try:
            with self._call(endpoint, stream=True, params=params, cid=cid, timeout=timeout) as r:
                yield from _ndjson(r, self.url, endpoint, cid)
        except _Stalled:
            raise ContentNotFound(
                f"{cid} is not wholly on the IPFS node at {self.url}: it found no next block "
                f"for {self.find_timeout:g} s"
            ) from None

    def _json(self, endpoint: str, params: dict[str, str], cid: str | None = None) -> Any:
        response = self._post(endpoint, params, cid)
        try:
            return response.json()
        except ValueError:
            raise StorageError(
                f"the IPFS node at {self.url} answered {endpoint} with something not JSON"
            ) from None

    def _post(
        self, endpoint: str, params: dict[str, str], cid: str | None, timeout: float | None = None
    ) -> httpx.Response:
        with self._call(endpoint, params=params, cid=cid, timeout=timeout) as response:
            response.read()
            return response

    @contextmanager
    def _call(
        self,
        endpoint: str,
        *,
        stream: bool = False,
        params: dict[str, str],
        cid: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        **kwargs: Any,
    ) -> Iterator[httpx.Response]:
        """POST to the RPC; map transport failures and error answers onto StorageError."""
        if timeout is not None:
            kwargs["timeout"] = timeout
        try:
            with self._client.stream("POST", "/" + endpoint, params=params, **kwargs) as r:
                if r.status_code != 200:
                    r.read()
                    self._raise_for(r, endpoint, cid)
                yield r
        except httpx.ReadTimeout:
            raise _Stalled(f"the IPFS node at {self.url} stopped answering {endpoint}") from None
        except httpx.TimeoutException as exc:
            raise StorageUnavailable(
                f"the IPFS node at {self.url} did not answer {endpoint} in time "
                f"({type(exc).__name__})"
            ) from None
        except httpx.HTTPError as exc:
            raise StorageUnavailable(
                f"cannot reach the IPFS node at {self.url}: {exc or type(exc).__name__}"
            ) from None

    def _raise_for(self, response: httpx.Response, endpoint: str, cid: str | None) -> None:
        message = _error_message(response)
        if cid and _NOT_FOUND.search(message):
            raise ContentNotFound(f"{cid} not found on the IPFS node at {self.url} ({message})")
        if cid and _NOT_A_FILE.search(message):
            raise StorageError(f"{cid} is not a file ({message})")
        if response.status_code >= 500 and not (cid and response.status_code == 500):
            raise StorageUnavailable(
                f"the IPFS node at {self.url} failed on {endpoint}: "
                f"HTTP {response.status_code} {message}"
            )
        # Kubo answers command errors (bad arguments included) with 500 and a JSON message.
        raise StorageError(
            f"the IPFS node at {self.url} refused {endpoint}: HTTP {response.status_code} {message}"
        )

    def _iter_bytes(self, response: httpx.Response, size: int, cid: str) -> Iterator[bytes]:
        # Errors raised while a stream is consumed escape _call's mapping (they surface in the
        # caller's loop), so they are mapped here too.
        try:
            yield from response.iter_bytes(size)
        except httpx.TimeoutException:
            raise _Stalled(
                f"the IPFS node at {self.url} sent nothing for {self.timeout:g} s while "
                f"sending {cid} (a block under it may be missing)"
            ) from None
        except httpx.HTTPError as exc:
            raise StorageUnavailable(
                f"the IPFS node at {self.url} broke off while sending {cid}: {exc}"
            ) from None

    def _canonical(self, cid: str) -> str:
        try:
            return normalize_cid(cid)
        except InvalidCID:
            raise StorageError(f"the IPFS node at {self.url} answered a bad CID {cid!r}") from None


_KIND_NAMES = {"file": "file", "dir": "directory", "symlink": "symbolic link"}


def _base_url(url: str) -> str:
    """`http://host:port` from an RPC URL or a `/ip4|ip6|dns*/HOST/tcp/PORT[/http]` multiaddr."""
    text = url.strip()
    if text.startswith("/"):
        match = re.fullmatch(r"/(ip4|ip6|dns|dns4|dns6)/([^/]+)/tcp/(\d+)(/https?)?/?", text)
        if not match:
            raise StorageError(f"not an IPFS API address: {url!r}")
        proto, host, port, scheme = match.groups()
        host = f"[{host}]" if proto == "ip6" else host
        return f"{(scheme or '/http')[1:]}://{host}:{port}"
    parsed = httpx.URL(text) if "://" in text else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise StorageError(f"not an IPFS API URL (want http://host:port): {url!r}")
    base = text.rstrip("/")
    return base.removesuffix("/api/v0")


def _cid(value: str) -> str:
    try:
        return normalize_cid(value)
    except InvalidCID as exc:
        raise StorageError(str(exc)) from None


def _duration(seconds: float) -> str:
    """A Go duration string, which both nodes' `timeout` option parses."""
    return f"{max(1, round(seconds * 1000))}ms"


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(body, dict) and body.get("Message"):
        return str(body["Message"])
    return response.text.strip()[:300]


def _ndjson(
    response: httpx.Response, url: str, endpoint: str, cid: str | None = None
) -> Iterator[dict[str, Any]]:
    """The JSON objects of a streamed answer; an error object in the stream is raised."""
    try:
        for line in response.iter_lines():
            if not line.strip():
                continue
            item = json.loads(line)
            if item.get("Type") == "error" and "Message" in item:
                message = item["Message"]
                if cid and _NOT_FOUND.search(message):
                    raise ContentNotFound(f"{cid} not found on the IPFS node at {url} ({message})")
                raise StorageError(f"the IPFS node at {url} failed on {endpoint}: {message}")
            yield item
    except ValueError:
        raise StorageError(f"the IPFS node at {url} answered {endpoint} with bad JSON") from None
    except httpx.TimeoutException:
        raise _Stalled(f"the IPFS node at {url} stopped answering {endpoint}") from None
    except httpx.HTTPError as exc:
        raise StorageUnavailable(f"the IPFS node at {url} broke off {endpoint}: {exc}") from None


# -- multipart bodies, as `ipfs add -r` sends them ------------------------------------------


@dataclass(frozen=True)
class _Part:
    name: str  # the path below the added folder's parent, '/'-separated
    content_type: str
    chunks: Callable[[], Iterator[bytes]]


_DIRECTORY = "application/x-directory"


def _post_order(directories: list[str]) -> list[str]:
    """Directory paths given parents first (a depth-first walk) reordered children first."""
    out: list[str] = []
    open_dirs: list[str] = []
    for name in directories:
        while open_dirs and not name.startswith(open_dirs[-1] + "/"):
            out.append(open_dirs.pop())
        open_dirs.append(name)
    out.extend(reversed(open_dirs))
    return out


def _multipart_parts(path: Path) -> Iterator[_Part]:
    """Parts for a file or a folder: each directory before its children, as Kubo's CLI does.

    Both nodes need a content type on every part (js-ipfs answers "No content-type in
    multipart part" otherwise) and take a folder as `application/x-directory` parts."""
    name = path.name or path.resolve().name  # `.` is added under its real name
    if not name:
        raise StorageError(f"{path}: cannot add the file system root")
    if path.is_file():
        yield _Part(name, "application/octet-stream", _file_chunks(path))
        return
    if not path.is_dir():
        raise StorageError(f"{path} is neither a file nor a directory")
    yield from _dir_parts(path, name)


def _dir_parts(directory: Path, name: str) -> Iterator[_Part]:
    yield _Part(name, _DIRECTORY, lambda: iter(()))
    for child in sorted(directory.iterdir(), key=lambda p: os.fsencode(p.name)):
        child_name = f"{name}/{child.name}"
        if child.is_symlink():
            raise StorageError(f"{child} is a symbolic link; refusing to follow it")
        if child.is_dir():
            yield from _dir_parts(child, child_name)
        elif child.is_file():
            yield _Part(child_name, "application/octet-stream", _file_chunks(child))
        else:
            raise StorageError(f"{child} is neither a file nor a directory")


def _file_chunks(path: Path) -> Callable[[], Iterator[bytes]]:
    def chunks() -> Iterator[bytes]:
        try:
            with path.open("rb") as f:
                while chunk := f.read(_COPY_CHUNK):
                    yield chunk
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from None

    return chunks


def _multipart_body(parts: Iterable[_Part], boundary: str) -> Iterator[bytes]:
    """A streamed multipart/form-data body, one file open at a time.

    File names are their percent-encoded bytes (UTF-8 for most names): Kubo unescapes them
    with Go's QueryUnescape, keeping any bytes, and js-ipfs with decodeURIComponent, which
    refuses bytes that are not UTF-8. `%2F`-free slashes mark the folder structure."""
    for part in parts:
        # the name's bytes, as the file system has them: not every name is UTF-8
        filename = quote(os.fsencode(part.name), safe="/")
        yield (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: {part.content_type}\r\n\r\n"
        ).encode("ascii")
        yield from part.chunks()
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode("ascii")


# -- root blocks --------------------------------------------------------------------------


def _decode_root(cid: str, block: bytes) -> _Root:
    parts, _ = decode_cid(cid_to_bytes(cid))
    if parts.codec == CODEC_RAW:
        return _Root("file", len(block))
    if parts.codec != CODEC_DAG_PB:
        raise StorageError(f"{cid} is not UnixFS data (codec 0x{parts.codec:x})")
    try:
        data = decode_unixfs(decode_pbnode(block).data or b"")
    except UnixFSError as exc:
        raise StorageError(f"{cid} is not a UnixFS file or directory: {exc}") from None
    if data.type in (DataType.DIRECTORY, DataType.HAMT_SHARD):
        return _Root("dir", 0)
    if data.type == DataType.SYMLINK:
        return _Root("symlink", 0)
    if data.type not in (DataType.FILE, DataType.RAW):
        raise StorageError(f"{cid} is not a UnixFS file or directory")
    if data.filesize is not None:
        return _Root("file", data.filesize)
    return _Root("file", len(data.data or b"") + sum(data.blocksizes))


def _car_v1(roots: list[bytes], blocks: Iterable[tuple[bytes, bytes]]) -> Iterator[bytes]:
    """A CARv1 of blocks already checked against their CIDs, in pieces of about a megabyte."""
    header = encode_header(roots)
    buffer = bytearray(encode_varint(len(header)) + header)
    for cid, block in blocks:
        buffer += encode_varint(len(cid) + len(block)) + cid + block
        if len(buffer) >= _COPY_CHUNK:
            yield bytes(buffer)
            buffer.clear()
    yield bytes(buffer)
