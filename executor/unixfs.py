"""UnixFS over dag-pb, as Kubo writes it: the wire format and the file/directory importer.

Encoding (hand-written protobuf, proto2 wire format):
- dag-pb `PBNode` is `Links` (field 2, repeated) then `Data` (field 1), in that order, which
  is the canonical dag-pb form. Every `PBLink` carries `Hash` (1), `Name` (2, written even
  when empty, as go-merkledag does) and `Tsize` (3).
- UnixFS `Data` is `Type` (1), `Data` (2), `filesize` (3), `blocksizes` (4, one unpacked
  varint each), `hashType` (5), `fanout` (6); `mode` (7) and `mtime` (8) are read and ignored.

Importer (what `ipfs add --cid-version=1` builds, raw leaves by default with CIDv1):
- fixed 262144-byte chunks; a file of one chunk or less is that one leaf;
- balanced layout, at most 174 links a node; an internal node's Data is
  `{Type: File, filesize, blocksizes}` with the file bytes under each child, and a link's
  Tsize is the child's block plus everything under it;
- an empty file is one empty leaf;
- directories are basic UnixFS directories (`Data = {Type: Directory}`), links sorted by
  name bytes, until the sum of their names' and binary CIDs' lengths reaches 256 KiB
  (thousands of entries); then, as Kubo does, a HAMT shard: 256 slots a shard, a name's slot
  the next byte of its murmur3-x64-64 hash (most significant first), one entry a slot as a
  link named by the slot in two upper-case hex digits and then the name, or a shard a level
  down where entries share a slot; `Data` is the occupied slots as a big-endian bit field
  without leading zero bytes, `hashType` 0x22, `fanout` 256.

With `cid_version=0` (or `raw_leaves=False`) leaves are dag-pb `{Type: File, Data, filesize}`
nodes, as `ipfs add` with its defaults builds them.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import IntEnum
from typing import BinaryIO

import base58

__all__ = [
    "CHUNK_SIZE",
    "CODEC_DAG_PB",
    "CODEC_RAW",
    "MAX_LINKS",
    "CidParts",
    "DataType",
    "FileImporter",
    "Link",
    "PBLink",
    "PBNode",
    "UnixFSData",
    "UnixFSError",
    "cid_text",
    "cid_to_bytes",
    "decode_cid",
    "decode_pbnode",
    "decode_unixfs",
    "decode_varint",
    "directory_node",
    "encode_pbnode",
    "encode_unixfs",
    "encode_varint",
    "hash_block",
    "import_file",
    "read_chunks",
]

CHUNK_SIZE = 262144
MAX_LINKS = 174
CODEC_RAW = 0x55
CODEC_DAG_PB = 0x70
MH_SHA2_256 = 0x12
MH_BLAKE2B_256 = 0xB220

# A block is put under its binary CID; the importer never reads blocks back.
PutBlock = Callable[[bytes, bytes], None]


class UnixFSError(ValueError):
    """Bytes that are not the dag-pb / UnixFS / CID they claim to be."""


# --- varints and CIDs ------------------------------------------------------------------------


def encode_varint(value: int) -> bytes:
    if value < 0:
        raise ValueError("varints are unsigned")
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    """The unsigned varint at `pos` and the position after it; refuses overlong forms."""
    value = 0
    shift = 0
    start = pos
    while True:
        if pos >= len(buf):
            raise UnixFSError("truncated varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if byte == 0 and pos - start > 1:
                raise UnixFSError("non-minimal varint")
            return value, pos
        shift += 7
        if shift >= 64:
            raise UnixFSError("varint longer than 64 bits")


_HASHERS: dict[int, Callable[[bytes], bytes]] = {
    MH_SHA2_256: lambda block: hashlib.sha256(block).digest(),
    MH_BLAKE2B_256: lambda block: hashlib.blake2b(block, digest_size=32).digest(),
}


@dataclass(frozen=True)
class CidParts:
    version: int
    codec: int
    hash_code: int
    digest: bytes

    @property
    def multihash(self) -> bytes:
        return encode_varint(self.hash_code) + encode_varint(len(self.digest)) + self.digest

    def verify(self, block: bytes | memoryview) -> bool:
        """True when `block` hashes to this CID's digest. Raises for an unknown hash."""
        hasher = _HASHERS.get(self.hash_code)
        if hasher is None:
            raise UnixFSError(f"unsupported multihash function 0x{self.hash_code:x}")
        return hasher(block) == self.digest


def decode_cid(binary: bytes | memoryview, pos: int = 0) -> tuple[CidParts, int]:
    """Parse a binary CID at `pos` (CIDv0 is a bare sha2-256 multihash); return it and the end."""
    if len(binary) - pos >= 34 and binary[pos] == MH_SHA2_256 and binary[pos + 1] == 32:
        return CidParts(0, CODEC_DAG_PB, MH_SHA2_256, bytes(binary[pos + 2 : pos + 34])), pos + 34
    version, pos = decode_varint(binary, pos)
    if version != 1:
        raise UnixFSError(f"unsupported CID version {version}")
    codec, pos = decode_varint(binary, pos)
    hash_code, pos = decode_varint(binary, pos)
    size, pos = decode_varint(binary, pos)
    if pos + size > len(binary):
        raise UnixFSError("truncated CID digest")
    return CidParts(1, codec, hash_code, bytes(binary[pos : pos + size])), pos + size


def cid_to_bytes(canonical: str) -> bytes:
    """Binary form of a canonical (base32, `b…`) CID string from `executor.cids`."""
    body = canonical[1:].upper()
    return base64.b32decode(body + "=" * (-len(body) % 8))


def cid_text(binary: bytes) -> str:
    """String form as Kubo prints it: `Qm…` for CIDv0, base32 `b…` for CIDv1."""
    if binary[0] == MH_SHA2_256:
        return base58.b58encode(binary).decode("ascii")
    return "b" + base64.b32encode(binary).decode("ascii").lower().rstrip("=")


def hash_block(block: bytes | memoryview, codec: int, cid_version: int = 1) -> bytes:
    """Binary sha2-256 CID of a block."""
    digest = b"\x12\x20" + hashlib.sha256(block).digest()
    if cid_version == 0:
        if codec != CODEC_DAG_PB:
            raise ValueError("CIDv0 can only name dag-pb blocks")
        return digest
    return b"\x01" + encode_varint(codec) + digest


# --- protobuf wire format --------------------------------------------------------------------


def _key(field_no: int, wire_type: int) -> bytes:
    return encode_varint(field_no << 3 | wire_type)


def _len_field(field_no: int, value: bytes) -> bytes:
    return _key(field_no, 2) + encode_varint(len(value)) + value


def _varint_field(field_no: int, value: int) -> bytes:
    return _key(field_no, 0) + encode_varint(value)


def _fields(buf: bytes | memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value) for each field; values of wire type 2 are views."""
    view = memoryview(buf)
    pos = 0
    while pos < len(view):
        key, pos = decode_varint(view, pos)
        field_no, wire_type = key >> 3, key & 7
        if field_no == 0:
            raise UnixFSError("protobuf field number 0")
        if wire_type == 0:
            value, pos = decode_varint(view, pos)
            yield field_no, wire_type, value
        elif wire_type == 2:
            size, pos = decode_varint(view, pos)
            if pos + size > len(view):
                raise UnixFSError("truncated protobuf field")
            yield field_no, wire_type, view[pos : pos + size]
            pos += size
        elif wire_type in (1, 5):
            width = 8 if wire_type == 1 else 4
            if pos + width > len(view):
                raise UnixFSError("truncated protobuf field")
            yield field_no, wire_type, int.from_bytes(view[pos : pos + width], "little")
            pos += width
        else:
            raise UnixFSError(f"unsupported protobuf wire type {wire_type}")


@dataclass(frozen=True)
class PBLink:
    hash: bytes  # binary CID
    name: bytes | None = b""
    tsize: int | None = None


@dataclass(frozen=True)
class PBNode:
    links: tuple[PBLink, ...] = ()
    data: bytes | None = None


def encode_pbnode(node: PBNode) -> bytes:
    out = bytearray()
    for link in node.links:
        body = _len_field(1, link.hash)
        if link.name is not None:
            body += _len_field(2, link.name)
        if link.tsize is not None:
            body += _varint_field(3, link.tsize)
        out += _len_field(2, body)
    if node.data is not None:
        out += _len_field(1, node.data)
    return bytes(out)


def decode_pbnode(block: bytes | memoryview) -> PBNode:
    """Strict dag-pb decoding: only the PBNode/PBLink fields, each with its wire type."""
    links: list[PBLink] = []
    data: bytes | None = None
    for field_no, wire_type, value in _fields(block):
        if wire_type != 2 or field_no not in (1, 2):
            raise UnixFSError(f"unexpected dag-pb field {field_no}")
        assert isinstance(value, memoryview)
        if field_no == 1:
            if data is not None:
                raise UnixFSError("duplicate dag-pb Data")
            data = bytes(value)
            continue
        if data is not None:
            raise UnixFSError("dag-pb Links after Data")
        link_hash: bytes | None = None
        name: bytes | None = None
        tsize: int | None = None
        for lfield, lwire, lvalue in _fields(value):
            if lfield == 1 and lwire == 2 and link_hash is None:
                link_hash = bytes(lvalue)
            elif lfield == 2 and lwire == 2 and name is None:
                name = bytes(lvalue)
            elif lfield == 3 and lwire == 0 and tsize is None:
                tsize = lvalue  # type: ignore[assignment]
            else:
                raise UnixFSError(f"unexpected dag-pb link field {lfield}")
        if link_hash is None:
            raise UnixFSError("dag-pb link without a Hash")
        links.append(PBLink(link_hash, name, tsize))
    return PBNode(tuple(links), data)


class DataType(IntEnum):
    RAW = 0
    DIRECTORY = 1
    FILE = 2
    METADATA = 3
    SYMLINK = 4
    HAMT_SHARD = 5


@dataclass(frozen=True)
class UnixFSData:
    type: DataType
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: tuple[int, ...] = field(default=())
    hash_type: int | None = None
    fanout: int | None = None


def encode_unixfs(value: UnixFSData) -> bytes:
    out = bytearray(_varint_field(1, int(value.type)))
    if value.data is not None:
        out += _len_field(2, value.data)
    if value.filesize is not None:
        out += _varint_field(3, value.filesize)
    for size in value.blocksizes:
        out += _varint_field(4, size)
    if value.hash_type is not None:
        out += _varint_field(5, value.hash_type)
    if value.fanout is not None:
        out += _varint_field(6, value.fanout)
    return bytes(out)


def decode_unixfs(buf: bytes | memoryview) -> UnixFSData:
    kind: int | None = None
    data: bytes | None = None
    filesize: int | None = None
    blocksizes: list[int] = []
    hash_type: int | None = None
    fanout: int | None = None
    for field_no, wire_type, value in _fields(buf):
        if field_no == 2 and wire_type == 2:
            data = bytes(value)
        elif field_no == 4 and wire_type == 2:
            # Packed blocksizes: proto2 parsers must accept them although Kubo never packs.
            packed = memoryview(value)  # type: ignore[arg-type]
            pos = 0
            while pos < len(packed):
                size, pos = decode_varint(packed, pos)
                blocksizes.append(size)
        elif wire_type != 0 and field_no in (1, 3, 4, 5, 6):
            raise UnixFSError(f"UnixFS field {field_no} has the wrong wire type")
        elif field_no == 1:
            kind = value  # type: ignore[assignment]
        elif field_no == 3:
            filesize = value  # type: ignore[assignment]
        elif field_no == 4:
            blocksizes.append(value)  # type: ignore[arg-type]
        elif field_no == 5:
            hash_type = value  # type: ignore[assignment]
        elif field_no == 6:
            fanout = value  # type: ignore[assignment]
        # mode (7), mtime (8) and unknown fields carry nothing we use.
    if kind is None:
        raise UnixFSError("UnixFS data without a Type")
    try:
        data_type = DataType(kind)
    except ValueError:
        raise UnixFSError(f"unknown UnixFS type {kind}") from None
    return UnixFSData(data_type, data, filesize, tuple(blocksizes), hash_type, fanout)


# --- importer --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    """A built node as its parent links to it."""

    cid: bytes  # binary CID
    tsize: int  # the block and everything under it (a dag-pb link's Tsize)
    filesize: int  # file bytes under it (0 for directories)


class FileImporter:
    """Builds one file's balanced DAG chunk by chunk, keeping only the pending links.

    Memory is bounded by 174 links per tree level whatever the file size; every block goes
    to `put` as soon as it is complete.
    """

    def __init__(self, put: PutBlock, *, cid_version: int = 1, raw_leaves: bool | None = None):
        if cid_version not in (0, 1):
            raise ValueError("cid_version must be 0 or 1")
        self._put = put
        self._cid_version = cid_version
        self._raw_leaves = cid_version == 1 if raw_leaves is None else raw_leaves
        if self._raw_leaves and cid_version == 0:
            raise ValueError("raw leaves need CIDv1")
        self._levels: list[list[Link]] = [[]]
        self._leaves = 0

    def add_chunk(self, chunk: bytes) -> None:
        """One chunk of the file; every chunk but the last must be CHUNK_SIZE bytes."""
        if self._raw_leaves:
            block = chunk
            cid = hash_block(block, CODEC_RAW, 1)
        else:
            # Kubo leaves Data out of an empty file's node rather than writing it empty.
            data = UnixFSData(DataType.FILE, data=chunk or None, filesize=len(chunk))
            block = encode_pbnode(PBNode((), encode_unixfs(data)))
            cid = hash_block(block, CODEC_DAG_PB, self._cid_version)
        self._put(cid, block)
        self._leaves += 1
        self._push(0, Link(cid, len(block), len(chunk)))

    def _push(self, level: int, link: Link) -> None:
        links = self._levels[level]
        links.append(link)
        # A full node is final at once: later chunks can only go to a new sibling.
        if len(links) == MAX_LINKS:
            parent = self._node(links)
            links.clear()
            if level + 1 == len(self._levels):
                self._levels.append([])
            self._push(level + 1, parent)

    def _node(self, links: list[Link]) -> Link:
        filesize = sum(link.filesize for link in links)
        data = UnixFSData(
            DataType.FILE, filesize=filesize, blocksizes=tuple(link.filesize for link in links)
        )
        node = PBNode(
            tuple(PBLink(link.cid, b"", link.tsize) for link in links), encode_unixfs(data)
        )
        block = encode_pbnode(node)
        cid = hash_block(block, CODEC_DAG_PB, self._cid_version)
        self._put(cid, block)
        return Link(cid, len(block) + sum(link.tsize for link in links), filesize)

    def finish(self) -> Link:
        """The file's root. Partial nodes are closed bottom-up, as Kubo's balanced builder
        leaves them: every level below the top becomes a node, even with one link."""
        if self._leaves == 0:
            self.add_chunk(b"")
        level = 0
        while True:
            links = self._levels[level]
            above = any(self._levels[level + 1 :])
            if not above and len(links) == 1:
                return links[0]
            if links:
                parent = self._node(links)
                links.clear()
                if level + 1 == len(self._levels):
                    self._levels.append([])
                self._levels[level + 1].append(parent)
            level += 1


def read_chunks(stream: BinaryIO, size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Full `size`-byte chunks until the last, like Go's io.ReadFull over short reads."""
    while True:
        chunk = stream.read(size)
        if not chunk:
            return
        while len(chunk) < size:
            more = stream.read(size - len(chunk))
            if not more:
                break
            chunk += more
        yield chunk
        if len(chunk) < size:
            return


def import_file(
    stream: BinaryIO, put: PutBlock, *, cid_version: int = 1, raw_leaves: bool | None = None
) -> Link:
    """Import a file's bytes from `stream` in constant memory; return its root link."""
    importer = FileImporter(put, cid_version=cid_version, raw_leaves=raw_leaves)
    for chunk in read_chunks(stream):
        importer.add_chunk(chunk)
    return importer.finish()


_DIRECTORY_DATA = encode_unixfs(UnixFSData(DataType.DIRECTORY))

# Kubo (boxo) shards a directory once the sum of its links' name and binary CID lengths
# reaches this (HAMTShardingSize), with 256 slots a shard and murmur3-x64-64 name hashes.
HAMT_SHARDING_SIZE = 262144
HAMT_FANOUT = 256
HASH_MURMUR3_X64_64 = 0x22


def directory_node(
    entries: Iterable[tuple[bytes, Link]], put: PutBlock, *, cid_version: int = 1
) -> Link:
    """A UnixFS directory of (name bytes, child) entries, as `ipfs add` builds it: a basic
    directory (links sorted by name, as dag-pb wants), or a HAMT shard when Kubo would
    shard it."""
    ordered = sorted(entries, key=lambda entry: entry[0])
    for (name, _), (following, _) in zip(ordered, ordered[1:], strict=False):
        if name == following:
            raise ValueError(f"duplicate directory entry {name!r}")
    if sum(len(name) + len(child.cid) for name, child in ordered) >= HAMT_SHARDING_SIZE:
        keyed = [(name, child, murmur3_x64_64(name)) for name, child in ordered]
        return _hamt_shard(keyed, 0, put, cid_version)
    node = PBNode(
        tuple(PBLink(child.cid, name, child.tsize) for name, child in ordered), _DIRECTORY_DATA
    )
    return _put_node(node, put, cid_version)


def _put_node(node: PBNode, put: PutBlock, cid_version: int) -> Link:
    block = encode_pbnode(node)
    cid = hash_block(block, CODEC_DAG_PB, cid_version)
    put(cid, block)
    return Link(cid, len(block) + sum(link.tsize or 0 for link in node.links), 0)


def _hamt_shard(
    entries: list[tuple[bytes, Link, int]], depth: int, put: PutBlock, cid_version: int
) -> Link:
    """One shard over entries whose hashes agree on their first `depth` bytes: each of its
    256 slots (the hash's next byte, most significant first) holds one entry as a link named
    slot + name, or, where entries share the slot, a shard a level down named by the slot."""
    if depth == 8:
        raise ValueError("names whose 64-bit hashes collide cannot be sharded")
    slots: dict[int, list[tuple[bytes, Link, int]]] = {}
    for entry in entries:
        slots.setdefault(entry[2] >> (56 - 8 * depth) & 0xFF, []).append(entry)
    links = []
    bitfield = 0
    for slot in sorted(slots):
        bitfield |= 1 << slot
        label = b"%02X" % slot
        group = slots[slot]
        if len(group) == 1:
            name, child, _ = group[0]
            links.append(PBLink(child.cid, label + name, child.tsize))
        else:
            shard = _hamt_shard(group, depth + 1, put, cid_version)
            links.append(PBLink(shard.cid, label, shard.tsize))
    data = UnixFSData(
        DataType.HAMT_SHARD,
        # the occupied slots as a big-endian bit field without leading zero bytes
        data=bitfield.to_bytes((bitfield.bit_length() + 7) // 8, "big"),
        hash_type=HASH_MURMUR3_X64_64,
        fanout=HAMT_FANOUT,
    )
    return _put_node(PBNode(tuple(links), encode_unixfs(data)), put, cid_version)


_M64 = (1 << 64) - 1


def _rotl64(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M64


def _fmix64(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & _M64
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & _M64
    return k ^ (k >> 33)


def murmur3_x64_64(data: bytes) -> int:
    """The first 64 bits (h1) of MurmurHash3_x64_128 with seed 0: the multihash
    murmur3-x64-64 that names HAMT slots."""
    c1, c2 = 0x87C37B91114253D5, 0x4CF5AD432745937F
    h1 = h2 = 0
    whole = len(data) // 16 * 16
    for k1, k2 in struct.iter_unpack("<QQ", data[:whole]):
        h1 ^= (_rotl64((k1 * c1) & _M64, 31) * c2) & _M64
        h1 = (_rotl64(h1, 27) + h2) & _M64
        h1 = (h1 * 5 + 0x52DCE729) & _M64
        h2 ^= (_rotl64((k2 * c2) & _M64, 33) * c1) & _M64
        h2 = (_rotl64(h2, 31) + h1) & _M64
        h2 = (h2 * 5 + 0x38495AB5) & _M64
    tail = data[whole:]
    if len(tail) > 8:
        k2 = int.from_bytes(tail[8:], "little")
        h2 ^= (_rotl64((k2 * c2) & _M64, 33) * c1) & _M64
    if tail:
        k1 = int.from_bytes(tail[:8], "little")
        h1 ^= (_rotl64((k1 * c1) & _M64, 31) * c2) & _M64
    h1 ^= len(data)
    h2 ^= len(data)
    h1 = (h1 + h2) & _M64
    h2 = (h2 + h1) & _M64
    h1, h2 = _fmix64(h1), _fmix64(h2)
    return (h1 + h2) & _M64
