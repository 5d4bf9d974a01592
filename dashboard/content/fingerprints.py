"""Chunk fingerprints of stored content: what the copy index holds and novelty looks up.

A file's bytes are cut twice while they stream past:
- into content-defined chunks (FastCDC, about 5 KiB on average), whose cut points depend on
  the bytes around them, so that a copy shifted by a byte prepended still cuts into mostly the
  same chunks;
- into the 256 KiB blocks `ipfs add` cuts a file into, whose fingerprints are the leading
  bytes of the raw leaves' multihashes (sha256), so a file that reuses stored blocks matches
  block for block.

A fingerprint is the first 8 bytes of the sha256 of the chunk's bytes, as a signed 64-bit
integer (a database's BIGINT). It depends on the bytes alone: a copy cannot hide behind a
name, a CID or metadata, only by changing its bytes, which makes it new data. Eight bytes
keep the index small; at 10 million chunks indexed, a chance collision between two different
chunks is about one in 10^11 per lookup, and it could only count a chunk as a copy.

A file that starts like a gzip, zstd, bzip2 or xz stream is also read decompressed (one
level), up to a bound, so that a recompressed copy of stored bytes is recognised.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Protocol

import zstandard
from pyfastcdc import FastCDC

__all__ = [
    "AVERAGE_CHUNK",
    "BLOCK",
    "METHOD",
    "Piece",
    "TooLarge",
    "compression_of",
    "fingerprint",
    "pieces",
    "unpacked",
]

AVERAGE_CHUNK = 4096  # FastCDC's avg_size; its chunks average about 5.4 KiB with MIN_CHUNK
MIN_CHUNK = 2048
MAX_CHUNK = 32768
BLOCK = 256 * 1024  # the chunk size of `ipfs add`: a raw leaf of the stored DAG
METHOD = "fastcdc-4k+blocks-256k/sha256-64"  # what `novelty.method` names

# Magic numbers of the compressed streams looked inside.
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
)


class TooLarge(Exception):
    """A decompressed stream passed its bound."""


@dataclass(frozen=True)
class Piece:
    """A chunk or block of a file: where it sits and its fingerprint."""

    start: int
    end: int
    fingerprint: int


def fingerprint(data: bytes | memoryview) -> int:
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big", signed=True)


class _Reader(io.RawIOBase):
    """An iterator of byte strings as a readable stream; `on_bytes` sees every byte read."""

    def __init__(
        self, chunks: Iterable[bytes], on_bytes: Callable[[memoryview], None] | None = None
    ) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        # A view, so that handing out a slice of it copies nothing (re-slicing the bytes
        # themselves copied each remainder: bench_novelty measured the loop 40 % slower).
        self._left = memoryview(b"")
        self._on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._left:
            try:
                self._left = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._left))
        taken, self._left = self._left[:size], self._left[size:]
        buffer[:size] = taken
        if self._on_bytes is not None:
            self._on_bytes(taken)
        return size


class _Blocks:
    """Fingerprints of the fixed BLOCK-sized blocks of a stream, fed in any slices."""

    def __init__(self) -> None:
        self.found: list[Piece] = []
        self._hash = hashlib.sha256()
        self._filled = 0
        self._offset = 0

    def feed(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while view:
            take = min(len(view), BLOCK - self._filled)
            self._hash.update(view[:take])
            self._filled += take
            view = view[take:]
            if self._filled == BLOCK:
                self._close()

    def _close(self) -> None:
        digest = self._hash.digest()[:8]
        start = self._offset
        self._offset += self._filled
        self.found.append(Piece(start, self._offset, int.from_bytes(digest, "big", signed=True)))
        self._hash = hashlib.sha256()
        self._filled = 0

    def completed(self) -> list[Piece]:
        """The blocks completed since last asked (the one being filled stays)."""
        found, self.found = self.found, []
        return found

    def finish(self) -> list[Piece]:
        if self._filled:
            self._close()
        return self.completed()


def pieces(chunks: Iterable[bytes], *, batch: int = 4096) -> Iterator[list[Piece]]:
    """The chunks and blocks of a stream of bytes, in batches of about `batch` (chunks in
    order, each batch followed by the blocks that ended within it)."""
    cdc = FastCDC(avg_size=AVERAGE_CHUNK, min_size=MIN_CHUNK, max_size=MAX_CHUNK)
    blocks = _Blocks()
    found: list[Piece] = []
    for chunk in cdc.cut_stream(_Reader(chunks, blocks.feed)):
        start = chunk.offset
        found.append(Piece(start, start + chunk.length, fingerprint(chunk.data)))
        if len(found) >= batch:
            found.extend(blocks.completed())
            yield found
            found = []
    found.extend(blocks.finish())
    if found:
        yield found


def compression_of(head: bytes) -> str | None:
    """The compressed stream a file's first bytes announce, or None."""
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _decompressing(name: str, raw: IO[bytes]) -> _Readable:
    if name == "gzip":
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if name == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    if name == "bzip2":
        return bz2.BZ2File(raw, mode="rb")
    return lzma.LZMAFile(raw, mode="rb")


def unpacked(name: str, chunks: Iterable[bytes], *, limit: int) -> Iterator[bytes]:
    """The decompressed bytes of a stream compressed with `name`. TooLarge past `limit`
    bytes; ValueError when the stream is not what it announced (it is then measured as it
    is stored)."""
    stream = _decompressing(name, io.BufferedReader(_Reader(chunks)))
    seen = 0
    try:
        while True:
            block = stream.read(1 << 20)
            if not block:
                return
            seen += len(block)
            if seen > limit:
                raise TooLarge(f"decompresses to more than {limit} bytes")
            yield block
    except (OSError, EOFError, lzma.LZMAError, zlib.error, zstandard.ZstdError) as exc:
        raise ValueError(f"not a whole {name} stream: {exc}") from None
