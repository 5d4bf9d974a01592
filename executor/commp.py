"""Piece commitments (CommP): the piece CID a storage deal of some bytes (a CAR) will carry.

The bytes are zero-padded to fill a piece, Fr32-padded (every 254 bits get 2 zero bits, so
127 bytes become 128), then hashed as a binary Merkle tree of 32-byte nodes whose parent is
SHA-256 of its two children with the top two bits of the last byte cleared
(sha2-256-trunc254-padded). The root, as a CIDv1 with codec fil-commitment-unsealed (0xf101)
and multihash 0x1012, is the piece CID (`baga6ea4seaq…`; docs/filecoin.md).

Memory stays constant: input is read in blocks and the tree is folded with a stack, one node
per level. Whole zero subtrees at the end are taken from precomputed zero commitments.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from executor.cids import cid_from_bytes, normalize_cid

__all__ = [
    "MAX_PIECE_SIZE",
    "MIN_PIECE_SIZE",
    "CommP",
    "Piece",
    "commp",
    "fr32_pad",
    "fr32_unpad",
    "merkle_parent",
    "minimal_piece_size",
    "piece_cid_from_root",
    "root_of_piece_cid",
    "unpadded_size",
    "zero_commitment",
]

NODE = 32
QUAD_IN = 127
QUAD_OUT = 128
MIN_PIECE_SIZE = 128  # bytes, padded: one quad
MAX_PIECE_SIZE = 64 << 30  # the largest sector, so the largest piece a deal can hold
_CID_PREFIX = bytes([0x01, 0x81, 0xE2, 0x03, 0x92, 0x20, 0x20])  # v1, 0xf101, 0x1012, 32 bytes
_MASK254 = (1 << 254) - 1
_READ = QUAD_IN * 8192  # about 1 MiB of input at a time
# Input hashed as one whole subtree: 8192 quads are 2**15 leaves. Hashing a level at a time
# costs half what pushing each leaf through the stack does (benchmarks/bench_retrieval.py).
_BLOCK_IN = QUAD_IN * 8192
_BLOCK_LEVEL = 15


@dataclass(frozen=True)
class Piece:
    cid: str  # baga6ea4seaq…
    size: int  # padded piece size, a power of two
    payload_size: int  # bytes hashed (before any padding)


def _parent(left: bytes, right: bytes) -> bytes:
    digest = bytearray(hashlib.sha256(left + right).digest())
    digest[31] &= 0x3F
    return bytes(digest)


def _zero_commitments(levels: int = 64) -> list[bytes]:
    zeros = [bytes(NODE)]
    for _ in range(levels):
        zeros.append(_parent(zeros[-1], zeros[-1]))
    return zeros


_ZERO = _zero_commitments()


def merkle_parent(left: bytes, right: bytes) -> bytes:
    """The parent of two 32-byte nodes: SHA-256 of both, top two bits cleared."""
    return _parent(left, right)


def zero_commitment(level: int) -> bytes:
    """The root of a subtree of 2**level zero leaves (0 <= level <= 64)."""
    return _ZERO[level]


def unpadded_size(piece_size: int) -> int:
    """The payload bytes a padded piece holds: 127/128 of it."""
    return piece_size // QUAD_OUT * QUAD_IN


def minimal_piece_size(payload: int) -> int:
    """The smallest padded piece that holds `payload` bytes."""
    size = MIN_PIECE_SIZE
    while unpadded_size(size) < payload:
        size <<= 1
    return size


def _fr32(block: bytes | memoryview) -> bytes:
    """Fr32-pad whole quads: each 127 bytes, read as a little-endian 1016-bit number, become
    four 254-bit numbers in four 32-byte little-endian slots."""
    out = bytearray()
    for start in range(0, len(block), QUAD_IN):
        value = int.from_bytes(block[start : start + QUAD_IN], "little")
        quad = (
            (value & _MASK254)
            | ((value >> 254) & _MASK254) << 256
            | ((value >> 508) & _MASK254) << 512
            | (value >> 762) << 768
        )
        out += quad.to_bytes(QUAD_OUT, "little")
    return bytes(out)


def fr32_pad(block: bytes | memoryview) -> bytes:
    """Fr32-pad whole quads: 127*n bytes become 128*n."""
    if len(block) % QUAD_IN:
        raise ValueError(f"Fr32 padding takes whole 127-byte quads, not {len(block)} bytes")
    return _fr32(block)


def fr32_unpad(block: bytes | memoryview) -> bytes:
    """The inverse of Fr32 padding: 128*n bytes become 127*n. ValueError when a 32-byte
    slot has either of its top two bits set (such bytes are no Fr32 output)."""
    if len(block) % QUAD_OUT:
        raise ValueError(f"Fr32 unpadding takes whole 128-byte quads, not {len(block)} bytes")
    out = bytearray()
    for start in range(0, len(block), QUAD_OUT):
        quad = int.from_bytes(block[start : start + QUAD_OUT], "little")
        value = 0
        for slot in range(4):
            field = (quad >> (256 * slot)) & ((1 << 256) - 1)
            if field >> 254:
                raise ValueError(f"bytes at {start + NODE * slot} are not a field element")
            value |= field << (254 * slot)
        out += value.to_bytes(QUAD_IN, "little")
    return bytes(out)


def _level_mask(size: int) -> int:
    """The AND mask that clears the top two bits of every 32-byte node in `size` bytes."""
    mask = _MASKS.get(size)
    if mask is None:
        mask = _MASKS[size] = int.from_bytes((b"\xff" * 31 + b"\x3f") * (size // NODE), "little")
    return mask


_MASKS: dict[int, int] = {}


def _subtree(padded: bytes) -> bytes:
    """The root of a power-of-two run of leaves, a level at a time: one SHA-256 per node, and
    the truncation of a whole level as one big-integer AND."""
    level = padded
    while len(level) > NODE:
        view = memoryview(level)
        sha256 = hashlib.sha256
        joined = b"".join(
            [sha256(view[i : i + 2 * NODE]).digest() for i in range(0, len(level), 2 * NODE)]
        )
        size = len(joined)
        level = (int.from_bytes(joined, "little") & _level_mask(size)).to_bytes(size, "little")
    return level


class _Tree:
    """Folds leaves into their root with one pending node per level."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, bytes]] = []
        self.leaves = 0

    def push(self, level: int, node: bytes) -> None:
        while self.stack and self.stack[-1][0] == level:
            _, left = self.stack.pop()
            node = _parent(left, node)
            level += 1
        self.stack.append((level, node))

    def add(self, padded: bytes) -> None:
        for start in range(0, len(padded), NODE):
            self.push(0, padded[start : start + NODE])
        self.leaves += len(padded) // NODE

    def root(self, levels: int) -> bytes:
        """The root of a tree of 2**levels leaves, the rest zero; the tree itself is kept
        as it is, so that it may grow and be asked again."""
        # Complete the tree with zero subtrees: the rest of the piece is zero bytes, and
        # Fr32 of zeros is zeros.
        if not self.stack:
            return _ZERO[levels]
        stack = list(self.stack)
        level, node = stack.pop()
        while stack or level < levels:
            if stack and stack[-1][0] == level:
                node = _parent(stack.pop()[1], node)
            else:
                node = _parent(node, _ZERO[level])
            level += 1
        if level != levels:
            raise ValueError(f"{self.leaves} leaves do not fit a tree of {levels} levels")
        return node


def piece_cid_from_root(root: bytes) -> str:
    return cid_from_bytes(_CID_PREFIX + root)


def root_of_piece_cid(cid: str) -> bytes:
    """The 32-byte root a v1 piece CID carries; ValueError for any other CID."""
    canonical = normalize_cid(cid)
    binary = base64.b32decode(canonical[1:].upper() + "=" * (-(len(canonical) - 1) % 8))
    if len(binary) != len(_CID_PREFIX) + NODE or not binary.startswith(_CID_PREFIX):
        raise ValueError(f"{cid} is not a piece CID")
    return binary[len(_CID_PREFIX) :]


def _check_size(size: int, minimal: int, total: int) -> None:
    if size < MIN_PIECE_SIZE or size & (size - 1):
        raise ValueError(f"a piece size is a power of two of at least 128 bytes, not {size}")
    if size < minimal:
        raise ValueError(f"{total} bytes need a piece of at least {minimal} bytes, not {size}")


class CommP:
    """CommP computed as bytes arrive, for a download that must not be held in memory:
    `update()` with each chunk, then `root_at(size)` or `cid_at(size)` for any piece size
    that holds them (asking costs a few hashes a level, so trying several sizes is cheap)."""

    def __init__(self) -> None:
        self._tree = _Tree()
        self._pending = bytearray()  # less than one block: the tree holds whole blocks only
        self.payload_size = 0

    def update(self, chunk: bytes) -> None:
        self.payload_size += len(chunk)
        self._pending += chunk
        if len(self._pending) < _BLOCK_IN:
            return
        whole = len(self._pending) - len(self._pending) % _BLOCK_IN
        with memoryview(self._pending) as view:
            for start in range(0, whole, _BLOCK_IN):
                node = _subtree(_fr32(view[start : start + _BLOCK_IN]))
                self._tree.push(_BLOCK_LEVEL, node)
                self._tree.leaves += 1 << _BLOCK_LEVEL
        del self._pending[:whole]

    @property
    def minimal_size(self) -> int:
        return minimal_piece_size(self.payload_size)

    def root_at(self, piece_size: int) -> bytes:
        """The 32-byte root of the bytes so far zero-filled to a piece of `piece_size`."""
        _check_size(piece_size, self.minimal_size, self.payload_size)
        levels = (piece_size // NODE).bit_length() - 1
        if not self._pending:
            return self._tree.root(levels)
        # The last part block, its partial last quad zero-filled, is hashed on a copy of the
        # tree (so that update() may go on) as power-of-two runs of leaves, largest first, each
        # a subtree a level at a time: the runs are aligned, since the tree holds whole blocks
        # and each run is larger than the ones after it.
        tail = _Tree()
        tail.stack = list(self._tree.stack)
        tail.leaves = self._tree.leaves
        pending = bytes(self._pending)
        padded = _fr32(pending + bytes(-len(pending) % QUAD_IN))
        leaves = len(padded) // NODE  # at most a block's 2**15, its last quad zero-filled
        start = 0
        for level in range(_BLOCK_LEVEL, -1, -1):
            if leaves >> level & 1:
                end = start + (NODE << level)
                tail.push(level, _subtree(padded[start:end]))
                start = end
        tail.leaves += leaves
        return tail.root(levels)

    def size_of(self, root: bytes, largest: int = MAX_PIECE_SIZE) -> int | None:
        """The piece size, up to `largest`, at which these bytes have `root`; None when none
        does. Each size up is one hash: root(2n) = parent(root(n), zero subtree of size n)."""
        size = self.minimal_size
        node = self.root_at(size)
        level = (size // NODE).bit_length() - 1
        while size <= largest:
            if node == root:
                return size
            node = _parent(node, _ZERO[level])
            level += 1
            size <<= 1
        return None

    def cid_at(self, piece_size: int) -> str:
        return piece_cid_from_root(self.root_at(piece_size))

    def piece(self, piece_size: int | None = None) -> Piece:
        size = self.minimal_size if piece_size is None else piece_size
        return Piece(cid=self.cid_at(size), size=size, payload_size=self.payload_size)


def commp(data: bytes | BinaryIO | Iterable[bytes], *, piece_size: int | None = None) -> Piece:
    """The piece CID of `data` in a piece of `piece_size` bytes (default: the smallest that
    fits). ValueError when piece_size is not a power of two or cannot hold the data."""
    hasher = CommP()
    for chunk in _chunks(data):
        hasher.update(chunk)
    return hasher.piece(piece_size)


def _chunks(data: bytes | BinaryIO | Iterable[bytes]) -> Iterable[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        view = memoryview(data)
        for start in range(0, len(view), _READ):
            yield bytes(view[start : start + _READ])
        return
    read = getattr(data, "read", None)
    if read is not None:
        while chunk := read(_READ):
            yield chunk
        return
    yield from data
