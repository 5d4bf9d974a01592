"""`GET /ipfs/{cid}[/path]` as a trustless gateway (specs.ipfs.tech/http-gateways/
trustless-gateway): which verifiable answer a request asks for, one block by its CID, and the
CAR of the blocks a `dag-scope` covers.

A CAR is CARv1 in depth-first order with each block once (`order=dfs; dups=n`), rooted at the
requested CID: first the blocks that verify the path (each folder on it, a sharded folder's
shard blocks included), then those of the scope at its end. Everything is read through the
store's `export_car`, the one call every backend has: a single block is the first section of
the CAR of its DAG, read no further. With a Kubo node behind the store, `export_car` first
checks the whole DAG is there, so a block is served only when its whole DAG is.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import BinaryIO, Literal

from dashboard.errors import DomainError
from executor.car import encode_header
from executor.cids import InvalidCID, normalize_cid
from executor.storage import Storage, StorageError
from executor.unixfs import (
    CODEC_DAG_PB,
    CODEC_RAW,
    CidParts,
    DataType,
    PBNode,
    UnixFSError,
    cid_text,
    cid_to_bytes,
    decode_cid,
    decode_pbnode,
    decode_unixfs,
    encode_varint,
)

__all__ = [
    "CAR_CONTENT_TYPE",
    "CAR_TYPE",
    "RAW_TYPE",
    "Wanted",
    "read_block",
    "wanted",
    "write_car",
]

CAR_TYPE = "application/vnd.ipld.car"
RAW_TYPE = "application/vnd.ipld.raw"
# What every CAR of ours is: CARv1, depth first, no block twice.
CAR_CONTENT_TYPE = f"{CAR_TYPE}; version=1; order=dfs; dups=n"
Scope = Literal["all", "entity", "block"]
SCOPES: tuple[Scope, ...] = ("all", "entity", "block")
# What a request may ask of a CAR, and what we send: the first value of each.
_CAR_PARAMS = {"version": ("1",), "order": ("dfs", "unk"), "dups": ("n",)}


@dataclass(frozen=True)
class Wanted:
    """A verifiable answer: a CAR of `scope`, or one raw block."""

    format: Literal["car", "raw"]
    scope: Scope
    negotiated: bool  # chosen by the Accept header, not by ?format=

    def etag(self, cid: str, path: str) -> str:
        """Strong, and different for each format, scope and path (the spec asks the scope to
        show in it)."""
        if self.format == "raw":
            return f'"{cid}.raw"'
        where = cid if not path else f"{cid}-{hashlib.sha256(path.encode()).hexdigest()[:16]}"
        return f'"{self.scope}-dfs-n-{where}.car"'


def _media_ranges(accept: str) -> list[tuple[str, dict[str, str]]]:
    """The Accept header's media ranges with their parameters, best first (by q)."""
    ranges = []
    for item in accept.split(","):
        kind, *raw_params = (part.strip() for part in item.split(";"))
        params = {}
        for param in raw_params:
            name, _, value = param.partition("=")
            params[name.strip().lower()] = value.strip().strip('"').lower()
        try:
            quality = float(params.pop("q", "1"))
        except ValueError:
            quality = 0.0
        if kind and quality > 0:
            ranges.append((quality, kind.lower(), params))
    ranges.sort(key=lambda item: -item[0])  # stable: equal q keep the client's order
    return [(kind, params) for _q, kind, params in ranges]


def _car_refusal(params: Mapping[str, str | None], prefix: str) -> str | None:
    """Why a CAR with these `version`/`order`/`dups` cannot be sent; None when it can."""
    for name, served in _CAR_PARAMS.items():
        value = params.get(name)
        if value is not None and value not in served:
            return f"{prefix}{name}={value} is not served: only {CAR_CONTENT_TYPE}"
    return None


def wanted(query: Mapping[str, str], accept: str, path: str) -> Wanted | None:
    """The verifiable answer a request asks for; None for the deserialized one (a file's
    bytes, a folder's page). `?format=` beats `Accept`. 400 for a query we cannot answer,
    406 when Accept names only CAR or raw forms we do not send."""
    chosen: Literal["car", "raw"] | None = None
    negotiated = False
    form = query.get("format")
    if form is not None:
        if form not in ("car", "raw"):
            raise DomainError(
                "unsupported_format",
                f"format={form} is not served: car or raw (or none, for the content itself)",
                fields={"format": form},
            )
        chosen = form  # type: ignore[assignment]
        if form == "car":
            refusal = _car_refusal({name: query.get(f"car-{name}") for name in _CAR_PARAMS}, "car-")
            if refusal:
                raise DomainError("unsupported_format", refusal)
    else:
        ranges = [(k, p) for k, p in _media_ranges(accept) if k in (CAR_TYPE, RAW_TYPE)]
        for kind, params in ranges:
            if kind == RAW_TYPE:
                chosen = "raw"
                break
            if _car_refusal(params, "") is None:
                chosen = "car"
                break
        if chosen is None and ranges:
            raise DomainError(
                "not_acceptable",
                f"Accept names no form served here: {CAR_CONTENT_TYPE} or {RAW_TYPE}",
                status=406,
            )
        negotiated = chosen is not None
    if chosen is None:
        return None
    if chosen == "raw":
        if path.strip("/"):
            raise DomainError(
                "unsupported_format",
                "a raw block is asked for by its CID alone, with no path: /ipfs/{cid}?format=raw",
            )
        return Wanted("raw", "block", negotiated)
    scope = query.get("dag-scope", "all")
    if scope not in SCOPES:
        raise DomainError(
            "invalid_dag_scope",
            f"dag-scope must be one of {', '.join(SCOPES)}",
            fields={"dag-scope": scope},
        )
    if "entity-bytes" in query:
        raise DomainError(
            "unsupported_format",
            "entity-bytes is not supported here: ask for dag-scope=entity",
            fields={"entity-bytes": query["entity-bytes"]},
        )
    return Wanted("car", scope, negotiated)  # type: ignore[arg-type]


# --- blocks out of the store's CAR export ---------------------------------------------------


class _Enough(Exception):
    """Stops an export once the sections wanted have been read."""


Take = Callable[[bytes, CidParts, bytes], None]


class _Sections:
    """A file for `Storage.export_car` to write into that hands each block section (binary
    CID, parsed CID, block) to `take`, which may raise _Enough to stop the export."""

    def __init__(self, take: Take) -> None:
        self.take = take
        self.buf = bytearray()
        self.header_seen = False

    def write(self, data: bytes) -> int:
        self.buf += data
        pos = 0
        try:
            while (section := _section_at(self.buf, pos)) is not None:
                start, pos = section
                if not self.header_seen:
                    self.header_seen = True
                    continue
                body = bytes(self.buf[start:pos])
                try:
                    parts, cid_end = decode_cid(body)
                except UnixFSError as exc:
                    raise StorageError(f"the store exported a malformed CID: {exc}") from None
                self.take(body[:cid_end], parts, body[cid_end:])
        finally:
            del self.buf[:pos]
        return len(data)


def _section_at(buf: bytearray, pos: int) -> tuple[int, int] | None:
    """(start, end) of the length-prefixed section at `pos`; None until it is all there."""
    length, shift, index = 0, 0, pos
    while True:
        if index >= len(buf):
            return None
        byte = buf[index]
        length |= (byte & 0x7F) << shift
        index += 1
        if not byte & 0x80:
            break
        shift += 7
        if shift > 63:
            raise StorageError("the store exported a CAR with an overlong varint")
    if index + length > len(buf):
        return None
    return index, index + length


def _export(store: Storage, cid: str, take: Take) -> None:
    with contextlib.suppress(_Enough):
        store.export_car(cid, _Sections(take))  # type: ignore[arg-type]


def read_block(store: Storage, cid: str) -> bytes:
    """One block's bytes (ContentNotFound when it is not in the store)."""
    found: list[bytes] = []

    def take(_cid: bytes, _parts: CidParts, block: bytes) -> None:
        found.append(block)
        raise _Enough

    _export(store, cid, take)
    if not found:
        raise StorageError(f"the store's CAR of {cid} holds no block")
    return found[0]


# --- folders ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Folder:
    """A UnixFS folder's own blocks (one, or a HAMT's shards) in depth-first order."""

    blocks: list[tuple[bytes, bytes]]
    entries: dict[bytes, bytes]  # name -> binary CID


def _unixfs(cid: bytes, block: bytes) -> tuple[PBNode, DataType] | None:
    """The dag-pb node and its UnixFS type; None for a raw leaf or another codec."""
    parts, _ = decode_cid(cid)
    if parts.codec != CODEC_DAG_PB:
        return None
    try:
        node = decode_pbnode(block)
        if node.data is None:
            return None
        return node, decode_unixfs(node.data).type
    except UnixFSError as exc:
        raise StorageError(f"{cid_text(cid)} is not valid UnixFS: {exc}") from None


def _folder(store: Storage, cid: bytes, block: bytes | None = None) -> _Folder | None:
    """The folder at `cid` (whose `block` may be known) with its shard blocks; None when it
    is not a folder."""
    if block is None:
        block = read_block(store, cid_text(cid))
    decoded = _unixfs(cid, block)
    if decoded is None or decoded[1] not in (DataType.DIRECTORY, DataType.HAMT_SHARD):
        return None
    node, kind = decoded
    folder = _Folder([(cid, block)], {})
    if kind == DataType.DIRECTORY:
        folder.entries.update((link.name or b"", link.hash) for link in node.links)
        return folder
    _add_shard(store, cid, node, folder)
    return folder


def _add_shard(store: Storage, cid: bytes, node: PBNode, folder: _Folder) -> None:
    assert node.data is not None
    fanout = decode_unixfs(node.data).fanout or 256
    width = len(f"{fanout - 1:X}")
    for link in node.links:
        name = link.name or b""
        if len(name) > width:
            folder.entries[name[width:]] = link.hash
            continue
        block = read_block(store, cid_text(link.hash))
        decoded = _unixfs(link.hash, block)
        if len(name) < width or decoded is None or decoded[1] != DataType.HAMT_SHARD:
            raise StorageError(f"{cid_text(cid)} has a broken HAMT shard link")
        folder.blocks.append((link.hash, block))
        _add_shard(store, link.hash, decoded[0], folder)


# --- the CAR ----------------------------------------------------------------------------------


def write_car(store: Storage, cid: str, path: str, scope: Scope, out: BinaryIO) -> list[str]:
    """Write the CAR of `scope` at the end of `path` under `cid`; the CIDs along the path,
    `cid` first and the target last (X-Ipfs-Roots)."""
    try:
        root = cid_to_bytes(normalize_cid(cid))
    except InvalidCID:
        raise DomainError("invalid_cid", f"{cid!r} is not a CID", fields={"cid": cid}) from None
    names = [part for part in path.split("/") if part]
    if scope == "all" and not names:  # the store's own export is that CAR
        store.export_car(cid_text(root), out)
        return [cid_text(root)]
    header = encode_header([root])
    out.write(encode_varint(len(header)) + header)
    sent: set[bytes] = set()  # multihashes, as the stores key their blocks

    def send(cid: bytes, parts: CidParts, block: bytes) -> None:
        if parts.multihash in sent:
            return
        sent.add(parts.multihash)
        out.write(encode_varint(len(cid) + len(block)) + cid + block)

    def send_all(blocks: list[tuple[bytes, bytes]]) -> None:
        for binary, block in blocks:
            send(binary, decode_cid(binary)[0], block)

    current, along = root, [cid_text(root)]
    for name in names:
        folder = _folder(store, current)
        if folder is None:
            raise DomainError("not_found", f"{cid_text(current)} is a file, not a directory",
                              status=404)  # fmt: skip
        send_all(folder.blocks)
        child = folder.entries.get(name.encode())
        if child is None:
            raise DomainError("not_found", f"no {name!r} under {cid_text(current)}", status=404)
        current = child
        along.append(cid_text(current))
    target = cid_text(current)
    if scope == "all":
        _export(store, target, send)
        return along
    block = read_block(store, target)
    folder = _folder(store, current, block) if scope == "entity" else None
    if folder is not None:
        send_all(folder.blocks)
    elif scope == "entity" and _is_file(current, block):
        _export(store, target, send)
    else:
        send_all([(current, block)])
    return along


def _is_file(cid: bytes, block: bytes) -> bool:
    """A UnixFS file (a raw leaf is one): its entity is all of it."""
    if decode_cid(cid)[0].codec == CODEC_RAW:
        return True
    decoded = _unixfs(cid, block)
    return decoded is not None and decoded[1] in (DataType.FILE, DataType.RAW)
