"""FRC-0058 aggregates: many small pieces packed into one deal piece, each with a proof that
it is inside.

Layout (all offsets and sizes in padded bytes, the way piece sizes are counted):
- Sub-pieces are placed in the order given, each at the next offset that is a multiple of
  its own size (the same placement as go-data-segment and @web3-storage/data-segment, so the
  same inputs in the same order give the same aggregate piece CID).
- The data segment index fills the end of the aggregate: `index_entries(size)` entries of
  64 bytes, `max(4, size / 2048 / 64)`. Entry n, at `index_start(size) + 64 n`, is the
  sub-piece's CommP root (32 bytes), its offset and size (uint64 little-endian each) and a
  checksum: the first 16 bytes of SHA-256 of the entry with the checksum zeroed, the top two
  bits of the last byte cleared. Unused entries are zero bytes.
- The aggregate's commitment is the root of the tree with each sub-piece's root at its
  place, each used entry's two 32-byte halves as leaves, and zero commitments elsewhere, so
  it never needs the sub-pieces' bytes.

`build_aggregate` places pieces known by CID and size; `write_aggregate` then writes their
bytes (checking each CommP again by default). `pack_aggregate` does both from the bytes and
their lengths in one pass: placement needs only the sizes, and the index, which needs the
roots, comes last, so each sub-piece's CommP is computed while its bytes are copied out.

An inclusion proof has two Merkle paths to the aggregate root: `tree`, from the sub-piece's
root (its position is the sub-piece's offset divided by its size), and `index`, from the
hash of the sub-piece's 64-byte index entry (a node one level above the leaves; its
position times 64 is the entry's offset). A path lists the sibling nodes from the bottom up;
bit i of the position says whether the node carried up is the right child at step i.

Proof JSON (the object form @web3-storage/data-segment's `Proof.from` reads, with nodes as
hex)::

    {"tree": {"offset": 3, "path": ["<64 hex digits>", ...]},
     "index": {"offset": 16376, "path": ["<64 hex digits>", ...]}}

The array form `[[3, [...]], [16376, [...]]]` (the package's `resolveProof` result, `[tree,
index]`, each `[offset, path]`) is read as well. `verify_proof` recomputes the aggregate
from both paths and raises `ProofError` whose `code` names the first check that failed:
`malformed`, `size_mismatch`, `offset`, `outside_index`, `index_entry`, `subtree`,
`wrong_aggregate` (and `checksum` when decoding a stored index entry).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from executor.commp import (
    MAX_PIECE_SIZE,
    MIN_PIECE_SIZE,
    CommP,
    fr32_pad,
    fr32_unpad,
    merkle_parent,
    minimal_piece_size,
    piece_cid_from_root,
    root_of_piece_cid,
    unpadded_size,
    zero_commitment,
)

__all__ = [
    "ENTRY_SIZE",
    "MAX_AGGREGATE_SIZE",
    "MIN_AGGREGATE_SIZE",
    "Aggregate",
    "Entry",
    "InclusionProof",
    "MerklePath",
    "Placement",
    "ProofError",
    "build_aggregate",
    "decode_entry",
    "index_entries",
    "index_start",
    "pack_aggregate",
    "place_pieces",
    "read_index",
    "verify_proof",
    "write_aggregate",
]

NODE = 32
ENTRY_SIZE = 64
MIN_AGGREGATE_SIZE = 512  # the smallest index (4 entries) plus room for one 128-byte piece
MAX_AGGREGATE_SIZE = MAX_PIECE_SIZE
MAX_PATH = 64  # nodes in one Merkle path; a 64 GiB tree is 31 levels deep
_CHUNK = 1 << 20  # bytes written or read at a time
_READ = 127 * 8192  # what pack_aggregate reads at a time: one block of CommP's


class ProofError(ValueError):
    """A proof, an index entry or an aggregate that does not hold; `code` names the check."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def _power_of_two(value: object) -> bool:
    return (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value > 0
        and not (value & (value - 1))
    )


def index_entries(size: int) -> int:
    """Entries in the data segment index of an aggregate of `size` padded bytes."""
    return max(4, size // 2048 // ENTRY_SIZE)


def index_start(size: int) -> int:
    """The padded offset where the index area begins: it runs to the end."""
    return size - index_entries(size) * ENTRY_SIZE


def _check_aggregate_size(size: int) -> None:
    if not _power_of_two(size) or not MIN_AGGREGATE_SIZE <= size <= MAX_AGGREGATE_SIZE:
        raise ValueError(
            f"an aggregate size is a power of two from {MIN_AGGREGATE_SIZE} bytes to "
            f"{MAX_AGGREGATE_SIZE >> 30} GiB, not {size}"
        )


def _checksum(head: bytes) -> bytes:
    digest = bytearray(hashlib.sha256(head + bytes(16)).digest()[:16])
    digest[15] &= 0x3F
    return bytes(digest)


def _entry_bytes(root: bytes, offset: int, size: int) -> bytes:
    head = root + offset.to_bytes(8, "little") + size.to_bytes(8, "little")
    return head + _checksum(head)


@dataclass(frozen=True)
class Entry:
    """One data segment index entry."""

    root: bytes
    offset: int  # padded bytes from the start of the aggregate
    size: int  # padded size of the sub-piece

    @property
    def cid(self) -> str:
        return piece_cid_from_root(self.root)

    @property
    def payload_offset(self) -> int:
        """Where the sub-piece's bytes start in the unpadded aggregate."""
        return unpadded_size(self.offset)

    def to_bytes(self) -> bytes:
        return _entry_bytes(self.root, self.offset, self.size)


def decode_entry(raw: bytes) -> Entry:
    """An index entry from its 64 bytes; ProofError `checksum` when the checksum does not
    match (zero bytes, an unused entry, fail it too), `offset` when offset or size is not a
    multiple of 128."""
    if len(raw) != ENTRY_SIZE:
        raise ProofError("malformed", f"an index entry is 64 bytes, not {len(raw)}")
    if _checksum(raw[:48]) != raw[48:]:
        raise ProofError("checksum", "the index entry's checksum does not match its fields")
    offset = int.from_bytes(raw[32:40], "little")
    size = int.from_bytes(raw[40:48], "little")
    if offset % 128 or size % 128:
        raise ProofError("offset", f"offset {offset} or size {size} is not a multiple of 128")
    return Entry(root=bytes(raw[:32]), offset=offset, size=size)


@dataclass(frozen=True)
class MerklePath:
    offset: int  # the position of the proven node in its level
    path: tuple[bytes, ...]  # sibling nodes, bottom up

    def root(self, node: bytes) -> bytes:
        position = self.offset
        for sibling in self.path:
            node = merkle_parent(sibling, node) if position & 1 else merkle_parent(node, sibling)
            position >>= 1
        return node

    def to_json(self) -> dict[str, object]:
        return {"offset": self.offset, "path": [node.hex() for node in self.path]}

    @classmethod
    def from_json(cls, value: object, name: str) -> MerklePath:
        if isinstance(value, dict):
            offset, path = value.get("offset"), value.get("path")
        elif isinstance(value, list) and len(value) == 2:
            offset, path = value
        else:
            raise ProofError("malformed", f"{name}: not an object with offset and path")
        if not isinstance(path, list) or len(path) > MAX_PATH:
            raise ProofError("malformed", f"{name}.path: a list of at most {MAX_PATH} nodes")
        if not isinstance(offset, int) or isinstance(offset, bool):
            raise ProofError("malformed", f"{name}.offset: not an integer")
        if offset < 0:
            raise ProofError("malformed", f"{name}.offset: negative")
        nodes = []
        for node in path:
            try:
                raw = bytes.fromhex(node) if isinstance(node, str) else b""
            except ValueError:
                raw = b""
            if len(raw) != NODE:
                raise ProofError("malformed", f"{name}.path: nodes are 64 hex digits")
            nodes.append(raw)
        return cls(offset=offset, path=tuple(nodes))


@dataclass(frozen=True)
class InclusionProof:
    tree: MerklePath  # from the sub-piece's root
    index: MerklePath  # from the hash of its index entry

    def to_json(self) -> dict[str, object]:
        return {"tree": self.tree.to_json(), "index": self.index.to_json()}

    @classmethod
    def from_json(cls, value: object) -> InclusionProof:
        if isinstance(value, dict):
            tree, index = value.get("tree"), value.get("index")
        elif isinstance(value, list) and len(value) == 2:
            tree, index = value
        else:
            raise ProofError("malformed", "a proof is {tree, index} or [tree, index]")
        return cls(MerklePath.from_json(tree, "tree"), MerklePath.from_json(index, "index"))


def verify_proof(
    aggregate_cid: str,
    aggregate_size: int,
    piece_cid: str,
    piece_size: int,
    proof: InclusionProof | object,
) -> None:
    """Check that the piece (`piece_cid`, `piece_size`) is inside the aggregate
    (`aggregate_cid`, `aggregate_size`) by `proof` (an InclusionProof or its JSON);
    ProofError otherwise. Work is bounded: paths of at most 64 nodes, one hash a node."""
    if not _power_of_two(aggregate_size) or not (
        MIN_AGGREGATE_SIZE <= aggregate_size <= MAX_AGGREGATE_SIZE
    ):
        raise ProofError("malformed", f"aggregate size {aggregate_size} is not a legal size")
    if not _power_of_two(piece_size) or not MIN_PIECE_SIZE <= piece_size <= aggregate_size:
        raise ProofError("size_mismatch", f"piece size {piece_size} does not fit the aggregate")
    try:
        expected = root_of_piece_cid(aggregate_cid)
    except ValueError as exc:
        raise ProofError("malformed", f"aggregate: {exc}") from None
    try:
        piece_root = root_of_piece_cid(piece_cid)
    except ValueError as exc:
        raise ProofError("malformed", f"piece: {exc}") from None
    if not isinstance(proof, InclusionProof):
        proof = InclusionProof.from_json(proof)

    if piece_size << len(proof.tree.path) != aggregate_size:
        raise ProofError(
            "size_mismatch",
            f"a {piece_size}-byte piece {len(proof.tree.path)} levels down is not "
            f"{aggregate_size} bytes",
        )
    if ENTRY_SIZE << len(proof.index.path) != aggregate_size:
        raise ProofError(
            "size_mismatch",
            f"an index path of {len(proof.index.path)} levels is not a "
            f"{aggregate_size}-byte aggregate",
        )
    start = index_start(aggregate_size)
    if proof.index.offset >> len(proof.index.path):
        raise ProofError("outside_index", "the entry's position is past the aggregate's end")
    if proof.tree.offset >> len(proof.tree.path):
        raise ProofError("offset", "the piece's position is past the aggregate's end")
    offset = proof.tree.offset * piece_size
    if offset + piece_size > start:
        raise ProofError("offset", f"the piece at offset {offset} overlaps the index area")
    if proof.index.offset * ENTRY_SIZE < start:
        raise ProofError(
            "outside_index",
            f"the entry at {proof.index.offset * ENTRY_SIZE} is before the index area at {start}",
        )

    entry = _entry_bytes(piece_root, offset, piece_size)
    by_tree = proof.tree.root(piece_root)
    by_index = proof.index.root(merkle_parent(entry[:NODE], entry[NODE:]))
    if by_tree != by_index:
        if by_tree == expected:
            raise ProofError(
                "index_entry", f"the index path does not prove an entry for offset {offset}"
            )
        if by_index == expected:
            raise ProofError("subtree", "the subtree path does not lead to the aggregate")
        raise ProofError(
            "offset",
            f"the piece at offset {offset} and its index entry lead to different roots "
            "(a wrong offset, or a proof for another piece)",
        )
    if by_tree != expected:
        raise ProofError(
            "wrong_aggregate",
            f"the proof leads to {piece_cid_from_root(by_tree)}, not {aggregate_cid}",
        )


@dataclass(frozen=True)
class Placement:
    cid: str
    size: int  # padded
    offset: int  # padded, a multiple of size
    root: bytes

    @property
    def entry(self) -> Entry:
        return Entry(root=self.root, offset=self.offset, size=self.size)


class _SparseTree:
    """A Merkle tree of 2**height leaves that stores only its non-zero nodes."""

    def __init__(self, height: int) -> None:
        self.height = height
        self.levels: list[dict[int, bytes]] = [{} for _ in range(height + 1)]

    def set(self, level: int, index: int, node: bytes) -> None:
        self.levels[level][index] = node

    def fold(self) -> None:
        for level in range(self.height):
            nodes, above = self.levels[level], self.levels[level + 1]
            zero = zero_commitment(level)
            for parent in sorted({index >> 1 for index in nodes}):
                if parent in above:
                    raise ValueError(f"overlapping nodes at level {level + 1}, {parent}")
                left = nodes.get(2 * parent, zero)
                right = nodes.get(2 * parent + 1, zero)
                above[parent] = merkle_parent(left, right)

    @property
    def root(self) -> bytes:
        return self.levels[self.height].get(0, zero_commitment(self.height))

    def path(self, level: int, index: int) -> MerklePath:
        siblings = []
        position = index
        for at in range(level, self.height):
            siblings.append(self.levels[at].get(position ^ 1, zero_commitment(at)))
            position >>= 1
        return MerklePath(offset=index, path=tuple(siblings))


@dataclass(frozen=True)
class Aggregate:
    size: int  # padded
    root: bytes
    pieces: tuple[Placement, ...]
    _tree: _SparseTree

    @property
    def cid(self) -> str:
        return piece_cid_from_root(self.root)

    @property
    def payload_size(self) -> int:
        """Bytes of the aggregate as a storage provider stores it (unpadded)."""
        return unpadded_size(self.size)

    def proof(self, piece_cid: str) -> InclusionProof:
        """The inclusion proof of the first sub-piece with this CID; KeyError if none."""
        for number, placed in enumerate(self.pieces):
            if placed.cid == piece_cid:
                level = (placed.size // NODE).bit_length() - 1
                tree = self._tree.path(level, placed.offset // placed.size)
                index = self._tree.path(1, index_start(self.size) // ENTRY_SIZE + number)
                return InclusionProof(tree=tree, index=index)
        raise KeyError(f"{piece_cid} is not in aggregate {self.cid}")


def _check_piece(name: str, piece_size: int, size: int) -> None:
    if not _power_of_two(piece_size) or piece_size < MIN_PIECE_SIZE:
        raise ValueError(f"{name}: a piece size is a power of two of at least 128 bytes")
    if piece_size > size:
        raise ValueError(f"{name} ({piece_size} bytes) does not fit in {size} bytes")


def _next_offset(name: str, piece_size: int, size: int, count: int, cursor: int) -> int:
    """Where the piece after `count` others, the last ending at `cursor`, goes."""
    limit = index_entries(size)
    if count == limit:
        raise ValueError(f"more than {limit} pieces for a {size}-byte aggregate")
    offset = -(-cursor // piece_size) * piece_size
    start = index_start(size)
    if offset + piece_size > start:
        raise ValueError(
            f"{name} ({piece_size} bytes) does not fit: the pieces need "
            f"{offset + piece_size} bytes and the index {size - start} of {size}"
        )
    return offset


def place_pieces(
    piece_sizes: Sequence[int], size: int, names: Sequence[str] | None = None
) -> list[int]:
    """The padded offsets of pieces of these padded sizes, in that order, in an aggregate of
    `size` (the placement `build_aggregate` makes: it needs no CIDs). ValueError, naming the
    piece by `names` (default: its number), when a size is wrong or they do not fit."""
    _check_aggregate_size(size)
    labels = [f"piece {n}" for n in range(len(piece_sizes))] if names is None else names
    if len(labels) != len(piece_sizes):
        raise ValueError(f"{len(piece_sizes)} pieces but {len(labels)} names")
    offsets: list[int] = []
    cursor = 0
    for name, piece_size in zip(labels, piece_sizes, strict=True):
        _check_piece(name, piece_size, size)
        offset = _next_offset(name, piece_size, size, len(offsets), cursor)
        offsets.append(offset)
        cursor = offset + piece_size
    return offsets


def _assemble(size: int, placed: Sequence[Placement]) -> Aggregate:
    """The aggregate of pieces already placed: its tree, index entries and root."""
    start = index_start(size)
    tree = _SparseTree((size // NODE).bit_length() - 1)
    for piece in placed:
        level = (piece.size // NODE).bit_length() - 1
        tree.set(level, piece.offset // piece.size, piece.root)
    for number, piece in enumerate(placed):
        entry = piece.entry.to_bytes()
        leaf = start // NODE + 2 * number
        tree.set(0, leaf, entry[:NODE])
        tree.set(0, leaf + 1, entry[NODE:])
    tree.fold()
    return Aggregate(size=size, root=tree.root, pieces=tuple(placed), _tree=tree)


def build_aggregate(pieces: Iterable[tuple[str, int]], size: int) -> Aggregate:
    """An aggregate of `size` padded bytes of (piece CID, padded piece size), in that order.
    ValueError when a size is wrong, a CID is not a piece CID, or they do not fit."""
    _check_aggregate_size(size)
    placed: list[Placement] = []
    cursor = 0
    for cid, piece_size in pieces:
        _check_piece(cid, piece_size, size)
        root = root_of_piece_cid(cid)
        offset = _next_offset(cid, piece_size, size, len(placed), cursor)
        cursor = offset + piece_size
        placed.append(Placement(cid=cid, size=piece_size, offset=offset, root=root))
    return _assemble(size, placed)


def _write_zeros(out: BinaryIO, count: int) -> None:
    block = bytes(min(count, _CHUNK))
    while count > 0:
        out.write(block[: min(count, _CHUNK)])
        count -= min(count, _CHUNK)


def _chunks(source: BinaryIO | Iterable[bytes], size: int = _CHUNK) -> Iterable[bytes]:
    read = getattr(source, "read", None)
    if read is None:
        yield from source
        return
    while chunk := read(size):
        yield chunk


def _write_index(aggregate: Aggregate, out: BinaryIO, position: int) -> None:
    """The zeros from `position` (unpadded) to the index, the index, and the zeros after it."""
    begin = index_start(aggregate.size)
    _write_zeros(out, unpadded_size(begin) - position)
    entries = b"".join(piece.entry.to_bytes() for piece in aggregate.pieces)
    entries += bytes(-len(entries) % 128)
    index = fr32_unpad(entries)
    out.write(index)
    position = unpadded_size(begin) + len(index)
    _write_zeros(out, aggregate.payload_size - position)


def write_aggregate(
    aggregate: Aggregate,
    sources: Sequence[BinaryIO | Iterable[bytes]],
    out: BinaryIO,
    *,
    check: bool = True,
) -> int:
    """Write the aggregate's unpadded bytes to `out`: each sub-piece's bytes (one source per
    piece, in the aggregate's order) at its unpadded offset, zeros between, the index at
    the end. With `check` each source's CommP must be its piece CID. Memory stays bounded
    by a block of input; returns the bytes written. ValueError when a source is too long or
    does not match. (`pack_aggregate` does it from the bytes alone, hashing them once.)"""
    if len(sources) != len(aggregate.pieces):
        raise ValueError(f"{len(aggregate.pieces)} pieces but {len(sources)} sources")
    position = 0
    for piece, source in zip(aggregate.pieces, sources, strict=True):
        start = unpadded_size(piece.offset)
        _write_zeros(out, start - position)
        room = unpadded_size(piece.size)
        hasher = CommP() if check else None
        written = 0
        for chunk in _chunks(source):
            written += len(chunk)
            if written > room:
                raise ValueError(f"{piece.cid}: more than {room} bytes for its piece")
            if hasher is not None:
                hasher.update(chunk)
            out.write(chunk)
        if hasher is not None and hasher.root_at(piece.size) != piece.root:
            raise ValueError(f"{piece.cid}: the bytes given have another piece CID")
        position = start + written
    _write_index(aggregate, out, position)
    return aggregate.payload_size


def pack_aggregate(
    sources: Sequence[tuple[BinaryIO | Iterable[bytes], int]],
    size: int,
    out: BinaryIO,
    *,
    names: Sequence[str] | None = None,
) -> Aggregate:
    """Build and write an aggregate of `size` padded bytes in one pass over the bytes: each
    (source, payload length) becomes a sub-piece of the smallest piece size that holds that
    length, placed in the order given (as `build_aggregate` places them), its CommP computed
    while its bytes are copied to `out`; the tree, the index and the aggregate's CID come at
    the end. Returns the Aggregate (its pieces, proofs and CID, the same as build_aggregate
    with those CIDs gives; the bytes the same as write_aggregate's).

    ValueError before anything is written when a length or the size is wrong or the pieces
    do not fit (naming the piece by `names`, default its number); ValueError while writing
    when a source gives more or fewer bytes than its length (it changed since it was
    measured), and then `out` holds a partial aggregate."""
    labels = [f"piece {n}" for n in range(len(sources))] if names is None else list(names)
    lengths = [length for _, length in sources]
    for name, length in zip(labels, lengths, strict=False):
        if not isinstance(length, int) or isinstance(length, bool) or length < 0:
            raise ValueError(f"{name}: a payload length is a number of bytes, not {length!r}")
        if length > unpadded_size(MAX_PIECE_SIZE):
            raise ValueError(f"{name}: {length} bytes are more than the largest piece holds")
    piece_sizes = [minimal_piece_size(length) for length in lengths]
    offsets = place_pieces(piece_sizes, size, labels)
    placed: list[Placement] = []
    position = 0
    for name, (source, length), piece_size, offset in zip(
        labels, sources, piece_sizes, offsets, strict=True
    ):
        start = unpadded_size(offset)
        _write_zeros(out, start - position)
        hasher = CommP()
        for chunk in _chunks(source, _READ):
            if hasher.payload_size + len(chunk) > length:
                raise ValueError(
                    f"{name}: more than the {length} bytes stated (it changed since it was "
                    "measured)"
                )
            hasher.update(chunk)
            out.write(chunk)
        if hasher.payload_size != length:
            raise ValueError(
                f"{name}: {hasher.payload_size} bytes, not the {length} stated (it changed "
                "since it was measured)"
            )
        root = hasher.root_at(piece_size)
        cid = piece_cid_from_root(root)
        placed.append(Placement(cid=cid, size=piece_size, offset=offset, root=root))
        position = start + length
    aggregate = _assemble(size, placed)
    _write_index(aggregate, out, position)
    return aggregate


def read_index(data: BinaryIO, size: int) -> list[Entry | ProofError]:
    """The index of an unpadded aggregate of `size` padded bytes (a seekable stream), one
    item per slot that is not zero: the entry, or the ProofError that rules it invalid."""
    _check_aggregate_size(size)
    data.seek(unpadded_size(index_start(size)))
    remaining = unpadded_size(index_entries(size) * ENTRY_SIZE)
    found: list[Entry | ProofError] = []
    while remaining:
        raw = data.read(min(remaining, 127 * 8192))
        if not raw or len(raw) % 127:
            raise ProofError("malformed", "the aggregate ends inside its index")
        remaining -= len(raw)
        padded = fr32_pad(raw)
        for at in range(0, len(padded), ENTRY_SIZE):
            slot = padded[at : at + ENTRY_SIZE]
            if not any(slot):
                continue
            try:
                found.append(decode_entry(slot))
            except ProofError as exc:
                found.append(exc)
    return found
