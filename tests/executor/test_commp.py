"""Piece commitments against two independent computations: a bit-by-bit reference written
here from the definition, and @web3-storage/data-segment (JavaScript) as an outside oracle;
plus the well-known CommP of an all-zero 32 GiB piece."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from executor.commp import CommP, _Tree, commp, fr32_pad, root_of_piece_cid, unpadded_size
from tests.executor.node_oracles import require_oracle, run_oracle


def reference_root(data: bytes, piece_size: int) -> bytes:
    """The definition, slowly: zero-fill, then 2 zero bits after every 254 bits (bits read
    least significant first), then the sha256-trunc254 tree over 32-byte leaves."""
    filled = data + bytes(unpadded_size(piece_size) - len(data))
    bits = [(byte >> i) & 1 for byte in filled for i in range(8)]
    padded_bits: list[int] = []
    for start in range(0, len(bits), 254):
        padded_bits += bits[start : start + 254] + [0, 0]
    padded = bytes(
        sum(bit << i for i, bit in enumerate(padded_bits[start : start + 8]))
        for start in range(0, len(padded_bits), 8)
    )
    assert len(padded) == piece_size
    level = [padded[i : i + 32] for i in range(0, len(padded), 32)]
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), 2):
            digest = bytearray(hashlib.sha256(level[i] + level[i + 1]).digest())
            digest[31] &= 0x3F
            nxt.append(bytes(digest))
        level = nxt
    return level[0]


def root_of(cid: str) -> bytes:
    raw = base64.b32decode(cid[1:].upper() + "=" * (-len(cid[1:]) % 8))
    assert raw[:7] == bytes([0x01, 0x81, 0xE2, 0x03, 0x92, 0x20, 0x20])  # v1 f101 / 1012 / 32
    return raw[7:]


@pytest.mark.parametrize(
    "size", [0, 1, 64, 65, 126, 127, 128, 200, 254, 255, 508, 1000, 4064, 4065]
)
def test_matches_the_reference(size: int) -> None:
    data = random.Random(size).randbytes(size)
    piece = commp(data)
    assert piece.cid.startswith("baga6ea4seaq")
    assert root_of(piece.cid) == reference_root(data, piece.size)
    assert piece.payload_size == size
    assert unpadded_size(piece.size) >= size and (
        piece.size == 128 or unpadded_size(piece.size // 2) < size
    )


def test_larger_piece_sizes_pad_with_zero_subtrees() -> None:
    data = random.Random(1).randbytes(300)
    for size in (512, 1024, 4096):
        assert root_of(commp(data, piece_size=size).cid) == reference_root(data, size)
    with pytest.raises(ValueError, match="at least 512"):
        commp(data, piece_size=256)
    with pytest.raises(ValueError, match="power of two"):
        commp(data, piece_size=1000)


def test_the_zero_32_gib_piece() -> None:
    # The CommP of 32 GiB of zeros, as found on chain for empty sectors.
    assert (
        commp(b"", piece_size=32 << 30).cid
        == "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"
    )


def test_streams_give_the_same_answer() -> None:
    data = random.Random(7).randbytes(3 * 127 * 8192 + 55)  # crosses the read size
    whole = commp(data)
    assert commp(io.BytesIO(data)) == whole
    assert commp(data[i : i + 1000] for i in range(0, len(data), 1000)) == whole


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=3000))
def test_property_matches_the_reference(data: bytes) -> None:
    piece = commp(data)
    assert root_of(piece.cid) == reference_root(data, piece.size)


def test_matches_web3_storage_data_segment(tmp_path: Path) -> None:
    require_oracle("@web3-storage/data-segment")
    rng = random.Random(42)
    cases = [rng.randbytes(n) for n in (65, 127, 128, 1000, 127 * 1024, 300_001, 1 << 20)]
    for i, data in enumerate(cases):
        (tmp_path / f"{i}.bin").write_bytes(data)
    out = run_oracle(
        "import { Piece } from '@web3-storage/data-segment'\n"
        "import { readFileSync } from 'node:fs'\n"
        "const out = process.argv.slice(2).map(f => {\n"
        "  const p = Piece.fromPayload(readFileSync(f))\n"
        "  return { root: Buffer.from(p.link.multihash.digest.slice(-32)).toString('hex'),\n"
        "           size: Number(p.size) }\n"
        "})\n"
        "console.log(JSON.stringify(out))\n",
        *(str(tmp_path / f"{i}.bin") for i in range(len(cases))),
    )
    answers = json.loads(out)
    for data, answer in zip(cases, answers, strict=True):
        piece = commp(data)
        assert root_of(piece.cid).hex() == answer["root"], len(data)
        assert piece.size == answer["size"]


def test_incremental_hashing_at_any_piece_size() -> None:
    # Odd chunk sizes cross quad boundaries; a root may be asked mid-stream and again later.
    data = random.Random(11).randbytes(5000)
    hasher = CommP()
    for start in range(0, 2000, 333):
        hasher.update(data[start : start + 333])
    done = hasher.payload_size  # 2331: seven chunks
    assert hasher.cid_at(4096) == commp(data[:done], piece_size=4096).cid
    for start in range(done, len(data), 777):
        hasher.update(data[start : start + 777])
    assert hasher.payload_size == len(data)
    assert hasher.root_at(8192) == reference_root(data, 8192)
    for size in (8192, 16384, 1 << 20):
        assert hasher.cid_at(size) == commp(data, piece_size=size).cid
    with pytest.raises(ValueError, match="at least 8192"):
        hasher.root_at(4096)


def test_a_piece_grows_by_zero_subtrees() -> None:
    # What retrieval relies on to find the size of a piece whose size it was not told: each
    # size's root is the parent of the one below and a zero subtree.
    data = random.Random(12).randbytes(1000)
    hasher = CommP()
    hasher.update(data)
    assert [hasher.cid_at(128 << k) for k in range(3, 8)] == [
        commp(data, piece_size=128 << k).cid for k in range(3, 8)
    ]
    assert len({hasher.cid_at(128 << k) for k in range(3, 8)}) == 5


def test_incremental_matches_web3_storage_data_segment(tmp_path: Path) -> None:
    require_oracle("@web3-storage/data-segment")
    rng = random.Random(43)
    cases = [rng.randbytes(n) for n in (1, 127, 4000, 127 * 8192 + 1, 700_000)]
    for i, data in enumerate(cases):
        (tmp_path / f"{i}.bin").write_bytes(data)
    out = run_oracle(
        "import { Piece } from '@web3-storage/data-segment'\n"
        "import { readFileSync } from 'node:fs'\n"
        "const out = process.argv.slice(2).map(f => {\n"
        "  const p = Piece.fromPayload(readFileSync(f))\n"
        "  return { root: Buffer.from(p.link.multihash.digest.slice(-32)).toString('hex'),\n"
        "           size: Number(p.size) }\n"
        "})\n"
        "console.log(JSON.stringify(out))\n",
        *(str(tmp_path / f"{i}.bin") for i in range(len(cases))),
    )
    for data, answer in zip(cases, json.loads(out), strict=True):
        hasher = CommP()
        step = 1 + len(data) // 7
        for start in range(0, len(data), step):
            hasher.update(data[start : start + step])
        assert hasher.minimal_size == answer["size"]
        assert hasher.root_at(answer["size"]).hex() == answer["root"], len(data)


def test_the_size_of_a_piece_is_found_from_its_root() -> None:
    data = random.Random(13).randbytes(3000)
    hasher = CommP()
    hasher.update(data)
    for size in (4096, 8192, 1 << 20, 32 << 30):
        assert hasher.size_of(root_of_piece_cid(commp(data, piece_size=size).cid)) == size
    assert hasher.size_of(root_of_piece_cid(commp(data + b"x").cid)) is None
    with pytest.raises(ValueError, match="not a piece CID"):
        root_of_piece_cid("bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4")


def per_node_root(hasher: CommP, piece_size: int) -> bytes:
    """root_at as it was before the last part block went through whole subtrees: its leaves
    pushed one 32-byte node at a time."""
    tail = _Tree()
    tail.stack = list(hasher._tree.stack)
    tail.leaves = hasher._tree.leaves
    pending = bytes(hasher._pending)
    tail.add(fr32_pad(pending + bytes(-len(pending) % 127)))
    return tail.root((piece_size // 32).bit_length() - 1)


BLOCK = 127 * 8192  # executor.commp._BLOCK_IN: input hashed as one whole subtree


def test_last_part_block_roots_are_those_leaf_by_leaf() -> None:
    rng = random.Random(14)
    around = [BLOCK * k + d for k in (1, 2, 3) for d in (-128, -127, -1, 0, 1, 127, 128)]
    powers = [127 * (1 << k) // 4 + d for k in range(2, 14) for d in (-1, 0, 1)]
    lengths = sorted(
        {1, 2, 31, 32, 33, 126, 127, 128, 129, 254, 255, 4064, 4065, 65_000, 700_000}
        | {3 << 20, (3 << 20) + 77}
        | set(around)
        | set(powers)
        | {rng.randrange(1, 4 << 20) for _ in range(20)}
    )
    data = rng.randbytes(max(lengths))
    for length in lengths:
        hasher = CommP()
        step = 100_003 if length % 2 else BLOCK  # odd chunks or whole blocks
        for start in range(0, length, step):
            hasher.update(data[start : min(length, start + step)])
        for size in (hasher.minimal_size, hasher.minimal_size * 4):
            assert hasher.root_at(size) == per_node_root(hasher, size), (length, size)
        if length <= 4065:  # and the definition itself, where it is quick enough
            size = hasher.minimal_size
            assert hasher.root_at(size) == reference_root(data[:length], size), length
