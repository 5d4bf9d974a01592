"""DAGs an attacker can build cheaply: valid UnixFS that claims, or expands to, far more than
it weighs. Each builder puts its blocks through `put(binary CID, block)` and returns the
root's binary CID."""

from __future__ import annotations

import io
from collections.abc import Callable

from executor.car import write_car
from executor.unixfs import (
    CODEC_DAG_PB,
    CODEC_RAW,
    DataType,
    PBLink,
    PBNode,
    UnixFSData,
    encode_pbnode,
    encode_unixfs,
    hash_block,
)

Put = Callable[[bytes, bytes], None]


def _file_node(put: Put, children: list[tuple[bytes, int]], filesize: int | None = None) -> bytes:
    """A UnixFS file node over (child CID, child bytes) links; `filesize` may lie."""
    sizes = tuple(size for _, size in children)
    data = UnixFSData(
        DataType.FILE, filesize=sum(sizes) if filesize is None else filesize, blocksizes=sizes
    )
    links = tuple(PBLink(cid, b"", size) for cid, size in children)
    block = encode_pbnode(PBNode(links, encode_unixfs(data)))
    cid = hash_block(block, CODEC_DAG_PB)
    put(cid, block)
    return cid


def raw_leaf(put: Put, data: bytes) -> bytes:
    cid = hash_block(data, CODEC_RAW)
    put(cid, data)
    return cid


def repeated_leaf_file(put: Put, leaf_size: int, count: int) -> bytes:
    """A file of `count` times one `leaf_size` leaf: a few KB of blocks, count x leaf_size of
    file. Honest sizes: this is legitimate UnixFS dedup, just large."""
    assert count <= 174 * 174, "two levels of links at most"
    leaf = raw_leaf(put, b"\xab" * leaf_size)
    nodes = []
    for start in range(0, count, 174):
        n = min(174, count - start)
        nodes.append((_file_node(put, [(leaf, leaf_size)] * n), n * leaf_size))
    return nodes[0][0] if len(nodes) == 1 else _file_node(put, nodes)


def lying_file(put: Put, declared: int, actual: int) -> bytes:
    """A file whose root declares `declared` bytes over one raw leaf of `actual` bytes."""
    leaf = raw_leaf(put, b"\xcd" * actual)
    return _file_node(put, [(leaf, declared)], filesize=declared)


def _directory(put: Put, entries: list[tuple[bytes, bytes]]) -> bytes:
    links = tuple(PBLink(cid, name, 1) for name, cid in sorted(entries))
    block = encode_pbnode(PBNode(links, encode_unixfs(UnixFSData(DataType.DIRECTORY))))
    cid = hash_block(block, CODEC_DAG_PB)
    put(cid, block)
    return cid


def doubling_dirs(put: Put, depth: int) -> bytes:
    """A folder holding `a` and `b`, both the same folder holding `a` and `b`, ... `depth`
    levels down to one 1-byte file: 2**depth files from depth + 2 blocks."""
    below = raw_leaf(put, b"x")
    below = _directory(put, [(b"f", below)])
    for _ in range(depth):
        below = _directory(put, [(b"a", below), (b"b", below)])
    return below


def many_tiny_blocks_car(count: int) -> tuple[bytes, bytes]:
    """(CAR bytes, root): a file of `count` distinct 4-byte raw leaves, as one CAR."""
    blocks: list[tuple[bytes, bytes]] = []

    def put(cid: bytes, block: bytes) -> None:
        blocks.append((cid, block))

    leaves = [(raw_leaf(put, i.to_bytes(4, "big")), 4) for i in range(count)]
    level = leaves
    while len(level) > 1:
        level = [
            (_file_node(put, level[i : i + 174]), sum(s for _, s in level[i : i + 174]))
            for i in range(0, len(level), 174)
        ]
    root = level[0][0]
    out = io.BytesIO()
    write_car(out, [root], reversed(blocks))
    return out.getvalue(), root


def car_of(
    root: bytes, blocks: list[tuple[bytes, bytes]], roots: list[bytes] | None = None
) -> bytes:
    out = io.BytesIO()
    write_car(out, roots if roots is not None else [root], blocks)
    return out.getvalue()
