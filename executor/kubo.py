"""Storage on a Kubo-compatible IPFS node, through its HTTP RPC (`/api/v0`, every call a POST).

We talk to the RPC with httpx rather than `ipfshttpclient`: that library's `connect()` refuses
any daemon version outside 0.4.23 ≤ v < 0.8.0, so it rejects every Kubo release since 0.8
(PLATFORM.md §1d), and its `add(cid_version=1)` silently sends `raw-leaves=false`.

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

import base64
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

import cbor2
import httpx

from executor.cids import InvalidCID, cid_from_bytes, normalize_cid
from executor.storage import (
    AddedEntry,
    ContentNotFound,
    DirEntry,
    StorageError,
    StorageUnavailable,
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

_CODEC_RAW = 0x55
_CODEC_DAG_PB = 0x70
# UnixFS Data.Type values (unixfs.proto)
_UNIXFS_DIR_TYPES = {1, 5}  # Directory, HAMTShard
_UNIXFS_FILE_TYPES = {0, 2}  # Raw, File
_UNIXFS_SYMLINK = 4
# `ls` link types as both nodes number them
_LS_DIR_TYPES = {1, 5}
_LS_SYMLINK = 4

_COPY_CHUNK = 1 << 20


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
    fails. `find_timeout` bounds the search for a CID's root block; on an online Kubo the
    search crosses the network, so raise it there.
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

        Like Kubo's CLI, entries whose name starts with a dot are skipped inside a folder (the
        CLI's default without `--hidden`). Symbolic links are refused rather than followed: a
        job's outputs must not reach outside their folder.
        """
        path = Path(path)
        if path.is_symlink():
            raise StorageError(f"{path} is a symbolic link; add its target instead")
        if not path.exists():
            raise StorageError(f"{path}: no such file or directory")
        parts = list(_multipart_parts(path))
        entries = self._add(parts)
        root_name = path.name
        root = [e for e in entries if e.path == root_name]
        if not root:
            raise StorageError(f"the IPFS node at {self.url} did not report a root for {path}")
        return [e for e in entries if e.path != root_name] + root[-1:]

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
        params = {"arg": cid, "timeout": _duration(self.timeout)}
        answer = self._json("ls", params, cid)
        entries = []
        for obj in answer.get("Objects") or []:
            for link in obj.get("Links") or []:
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

    def get(self, cid: str, dest: Path) -> Path:
        """Write the file or tree at `dest` through `ls` and `cat`, which behave alike on both
        nodes (`/api/v0/get`'s tar differs in details). The tree is built beside `dest` and
        renamed into place, so a failure leaves nothing at `dest`."""
        cid = _cid(cid)
        dest = Path(dest)
        if dest.exists() or dest.is_symlink():
            raise StorageError(f"{dest} already exists")
        if not dest.parent.is_dir():
            raise StorageError(f"{dest.parent}: no such directory")
        root = self._root(cid)
        work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            target = work / "root"
            self._get_into(cid, root, target)
            target.rename(dest)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return dest

    def _get_into(self, cid: str, root: _Root, target: Path) -> None:
        if root.kind == "symlink":
            raise StorageError(f"{cid} is a symbolic link; refusing to write it")
        if root.kind == "file":
            with target.open("xb") as out:
                for chunk in self._stream_file(cid, root.size, _COPY_CHUNK):
                    out.write(chunk)
            return
        target.mkdir()
        for entry in self.ls(cid):
            if entry.name in ("", ".", "..") or "/" in entry.name or "\0" in entry.name:
                raise StorageError(f"{cid} holds an entry named {entry.name!r}; refusing it")
            self._get_into(entry.cid, self._root(entry.cid), target / entry.name)

    def has(self, cid: str) -> bool:
        """Whether every block under the CID is here: `refs -r` with `offline=true` (Kubo then
        never asks the network; js-ipfs ignores the option and, missing a block, waits until
        the `find_timeout` runs out, which also counts as absent)."""
        cid = _cid(cid)
        try:
            self._root(cid)
            params = {
                "arg": cid,
                "recursive": "true",
                "unique": "true",
                "offline": "true",
                "timeout": _duration(self.find_timeout),
            }
            with self._call("refs", stream=True, params=params, cid=cid) as response:
                for item in _ndjson(response, self.url, "refs", cid):
                    if item.get("Err"):
                        return False
        except ContentNotFound:
            return False
        return True

    def pin(self, cid: str) -> None:
        cid = _cid(cid)
        self._root(cid)
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

    def import_car(self, car: BinaryIO) -> list[str]:
        """`dag/import` with `pin-roots=false`, the roots read from the CAR header here.

        Kubo only reports roots when it pins them, and js-ipfs pinning a root whose blocks are
        not all in the CAR waits forever; so roots are returned unpinned (call `pin`)."""
        header, roots = _read_car_header(car)
        boundary = uuid.uuid4().hex
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}

        def content() -> Iterator[bytes]:
            yield header
            while chunk := car.read(_COPY_CHUNK):
                yield chunk

        body = _multipart_body([_Part("car", "application/octet-stream", content)], boundary)
        params = {"pin-roots": "false"}
        with self._call(
            "dag/import", stream=True, params=params, content=body, headers=headers
        ) as r:
            for _ in _ndjson(r, self.url, "dag/import"):
                pass
        return roots

    # -- plumbing ----------------------------------------------------------------------------

    def _root(self, cid: str) -> _Root:
        """Fetch and decode the root block, within `find_timeout`."""
        params = {"arg": cid, "timeout": _duration(self.find_timeout)}
        response = self._post("block/get", params, cid, timeout=self.find_timeout + self.timeout)
        return _decode_root(cid, response.content)

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
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Iterator[httpx.Response]:
        """POST to the RPC; map transport failures and error answers onto StorageError."""
        extra = {"timeout": timeout} if timeout is not None else {}
        try:
            with self._client.stream("POST", "/" + endpoint, params=params, **kwargs, **extra) as r:
                if r.status_code != 200:
                    r.read()
                    self._raise_for(r, endpoint, cid)
                yield r
        except httpx.TimeoutException as exc:
            raise StorageUnavailable(
                f"the IPFS node at {self.url} did not answer {endpoint} within "
                f"{timeout or self.timeout:g} s ({type(exc).__name__})"
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
            raise StorageUnavailable(
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
        raise StorageUnavailable(f"the IPFS node at {url} stopped answering {endpoint}") from None
    except httpx.HTTPError as exc:
        raise StorageUnavailable(f"the IPFS node at {url} broke off {endpoint}: {exc}") from None


# -- multipart bodies, as `ipfs add -r` sends them ------------------------------------------


@dataclass(frozen=True)
class _Part:
    name: str  # the path below the added folder's parent, '/'-separated
    content_type: str
    chunks: Callable[[], Iterator[bytes]]


def _multipart_parts(path: Path) -> Iterator[_Part]:
    """Parts for a file or a folder: each directory before its children, as Kubo's CLI does.

    Both nodes need a content type on every part (js-ipfs answers "No content-type in
    multipart part" otherwise) and take a folder as `application/x-directory` parts."""
    if path.is_file():
        yield _Part(path.name, "application/octet-stream", _file_chunks(path))
        return
    if not path.is_dir():
        raise StorageError(f"{path} is neither a file nor a directory")
    yield from _dir_parts(path, path.name)


def _dir_parts(directory: Path, name: str) -> Iterator[_Part]:
    yield _Part(name, "application/x-directory", lambda: iter(()))
    for child in sorted(directory.iterdir(), key=lambda p: os.fsencode(p.name)):
        if child.name.startswith("."):
            continue
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

    File names are percent-encoded UTF-8: Kubo unescapes them with Go's QueryUnescape and
    js-ipfs with decodeURIComponent, and `%2F`-free slashes mark the folder structure."""
    for part in parts:
        filename = quote(part.name, safe="/")
        yield (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: {part.content_type}\r\n\r\n"
        ).encode("ascii")
        yield from part.chunks()
        yield b"\r\n"
    yield f"--{boundary}--\r\n".encode("ascii")


# -- blocks and CAR headers -----------------------------------------------------------------


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _protobuf_fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs of a protobuf message: varints and length-delimited only,
    the two wire types dag-pb and UnixFS use."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, value
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated field")
            yield number, data[pos : pos + length]
            pos += length
        else:
            raise ValueError(f"unexpected wire type {wire}")


def _codec(cid: str) -> int:
    binary = base64.b32decode(cid[1:].upper() + "=" * (-len(cid[1:]) % 8))
    codec, _ = _varint(binary, 1)
    return codec


def _decode_root(cid: str, block: bytes) -> _Root:
    codec = _codec(cid)
    if codec == _CODEC_RAW:
        return _Root("file", len(block))
    if codec != _CODEC_DAG_PB:
        raise StorageError(f"{cid} is not UnixFS data (codec 0x{codec:x})")
    try:
        data = next((v for n, v in _protobuf_fields(block) if n == 1), b"")
        assert isinstance(data, bytes)
        fields = list(_protobuf_fields(data))
    except ValueError as exc:
        raise StorageError(f"{cid} is not a valid dag-pb block: {exc}") from None
    kind = next((v for n, v in fields if n == 1), None)
    if kind in _UNIXFS_DIR_TYPES:
        return _Root("dir", 0)
    if kind == _UNIXFS_SYMLINK:
        return _Root("symlink", 0)
    if kind not in _UNIXFS_FILE_TYPES:
        raise StorageError(f"{cid} is not a UnixFS file or directory")
    filesize = next((v for n, v in fields if n == 3), None)
    if isinstance(filesize, int):
        return _Root("file", filesize)
    inline = next((v for n, v in fields if n == 2), b"")
    blocksizes = sum(v for n, v in fields if n == 4 and isinstance(v, int))
    return _Root("file", len(inline) + blocksizes)


def _read_car_header(car: BinaryIO) -> tuple[bytes, list[str]]:
    """The raw header bytes of a CARv1 and its roots, canonical."""
    raw = bytearray()
    while True:
        byte = car.read(1)
        if not byte:
            raise StorageError("not a CAR file: it ends inside the header length")
        raw += byte
        if byte[0] < 0x80 or len(raw) > 9:
            break
    length, _ = _varint(bytes(raw), 0)
    if length > 1 << 20:
        raise StorageError("not a CAR file: header length is implausible")
    body = car.read(length)
    if len(body) != length:
        raise StorageError("not a CAR file: it ends inside the header")
    try:
        header = cbor2.loads(body)
    except (cbor2.CBORDecodeError, ValueError) as exc:
        raise StorageError(f"not a CAR file: bad header ({exc})") from None
    if not isinstance(header, dict) or header.get("version") != 1:
        version = header.get("version") if isinstance(header, dict) else None
        raise StorageError(f"not a CARv1 file (header version {version!r})")
    roots = []
    for root in header.get("roots") or []:
        if not (isinstance(root, cbor2.CBORTag) and root.tag == 42 and root.value[:1] == b"\0"):
            raise StorageError("not a CAR file: a root is not a CID")
        try:
            roots.append(cid_from_bytes(root.value[1:]))
        except InvalidCID as exc:
            raise StorageError(f"not a CAR file: bad root CID ({exc})") from None
    return bytes(raw) + body, roots
