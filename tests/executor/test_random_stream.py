"""The random stream against its definition, through both of its paths (hashlib for small
requests, the SIMD module for large ones) and across the counter's 32-bit boundary."""

from __future__ import annotations

import hashlib

from executor.random_stream import PIECE_BLOCKS, RandomStream


def definition(seed: bytes, start: int, nbytes: int) -> bytes:
    blocks = nbytes // 32 + 1
    out = b"".join(
        hashlib.sha256(seed + i.to_bytes(8, "big")).digest() for i in range(start, start + blocks)
    )
    return out[:nbytes]


SEED = hashlib.sha256(b"a canonical job spec").digest()


def test_small_and_large_requests_continue_one_stream() -> None:
    stream = RandomStream(SEED)
    sizes = [0, 1, 31, 33, 5, 100_000, 7, 32 * PIECE_BLOCKS + 17, 3, 8192 * 32 + 1]
    taken = b"".join(stream.take(n) for n in sizes)
    assert taken == definition(SEED, 0, sum(sizes))


def test_lanes_carry_into_the_counters_high_word() -> None:
    stream = RandomStream(SEED)
    stream._counter = (1 << 32) - 3  # the four lanes of a group straddle 2**32
    assert stream.take(32 * 1000) == definition(SEED, (1 << 32) - 3, 32 * 1000)


def test_every_seed_byte_matters() -> None:
    other = bytes([SEED[0] ^ 1]) + SEED[1:]
    assert RandomStream(other).take(1 << 16) == definition(other, 0, 1 << 16)
    assert RandomStream(other).take(1 << 16) != RandomStream(SEED).take(1 << 16)
