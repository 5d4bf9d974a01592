"""CAR files (content-addressed archives): CARv1 written, CARv1 and CARv2 read.

CARv1 is `varint(len) + dag-cbor {"roots": [CID…], "version": 1}` then sections of
`varint(len) + binary CID + block`. Reading checks every block against its CID's hash, so a
CAR can never put bytes into the store under a CID they do not hash to.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import BinaryIO

from executor.storage import ENTRY_COST, LimitExceeded, StorageError
from executor.unixfs import CidParts, UnixFSError, cid_text, decode_cid, encode_varint

__all__ = ["MAX_BLOCK_SIZE", "CarError", "CarReader", "blocks_within", "write_car"]

# Kubo refuses blocks over 2 MiB on the network; a larger section is a broken or hostile file.
MAX_BLOCK_SIZE = 8 << 20
_MAX_HEADER_SIZE = 1 << 20
_CARV2_PRAGMA = bytes.fromhex("0aa16776657273696f6e02")
_CBOR_TAG_CID = 42


class CarError(StorageError):
    """The bytes are not a well-formed CAR, or a block does not match its CID."""


# --- the little dag-cbor a CAR header needs --------------------------------------------------


def _cbor_head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes([major << 5 | value])
    for extra, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * width):
            return bytes([major << 5 | extra]) + value.to_bytes(width, "big")
    raise ValueError("CBOR integer too large")


def _cbor_text(text: str) -> bytes:
    raw = text.encode()
    return _cbor_head(3, len(raw)) + raw


def encode_header(roots: Sequence[bytes]) -> bytes:
    """dag-cbor `{"roots": [...], "version": 1}`: keys sorted length-first, as dag-cbor wants."""
    out = bytearray(_cbor_head(5, 2))
    out += _cbor_text("roots") + _cbor_head(4, len(roots))
    for root in roots:
        # A CID in dag-cbor is tag 42 over the binary CID behind a 0x00 multibase prefix.
        out += _cbor_head(6, _CBOR_TAG_CID) + _cbor_head(2, len(root) + 1) + b"\x00" + root
    out += _cbor_text("version") + _cbor_head(0, 1)
    return bytes(out)


class _Cbor:
    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def _take(self, size: int) -> bytes:
        if self.pos + size > len(self.buf):
            raise CarError("CAR header is truncated")
        out = self.buf[self.pos : self.pos + size]
        self.pos += size
        return out

    def item(self, depth: int = 0) -> object:
        if depth > 16:
            raise CarError("CAR header nests too deeply")
        initial = self._take(1)[0]
        major, extra = initial >> 5, initial & 31
        if extra < 24:
            value = extra
        elif extra <= 27:
            value = int.from_bytes(self._take(1 << (extra - 24)), "big")
        else:
            raise CarError("CAR header uses indefinite-length CBOR")
        if major == 0:
            return value
        if major == 1:
            return -1 - value
        if major in (2, 3):
            raw = self._take(value)
            if major == 2:
                return raw
            try:
                return raw.decode()
            except UnicodeDecodeError:
                raise CarError("CAR header has invalid UTF-8") from None
        if major == 4:
            return [self.item(depth + 1) for _ in range(value)]
        if major == 5:
            out: dict[str, object] = {}
            for _ in range(value):
                key = self.item(depth + 1)
                if not isinstance(key, str):
                    raise CarError("CAR header has a map key that is not text")
                out[key] = self.item(depth + 1)
            return out
        if major == 6:
            inner = self.item(depth + 1)
            if value != _CBOR_TAG_CID or not isinstance(inner, bytes) or inner[:1] != b"\x00":
                raise CarError("CAR header has a tag that is not a CID")
            return _CidRef(inner[1:])
        if major == 7 and extra in (20, 21, 22):
            return {20: False, 21: True, 22: None}[extra]
        raise CarError("CAR header has an unsupported CBOR value")


class _CidRef(bytes):
    """Binary CID decoded from CBOR tag 42."""


# --- reading and writing ---------------------------------------------------------------------


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    out = stream.read(size)
    while len(out) < size:
        more = stream.read(size - len(out))
        if not more:
            break
        out += more
    return out


def _read_varint(stream: BinaryIO) -> int | None:
    """A varint from the stream, or None at a clean end of file."""
    value = 0
    for index in range(10):
        byte = stream.read(1)
        if not byte:
            if index == 0:
                return None
            raise CarError("CAR ends inside a varint")
        value |= (byte[0] & 0x7F) << (7 * index)
        if not byte[0] & 0x80:
            return value
    raise CarError("CAR has a varint longer than 64 bits")


class CarReader:
    """Streams a CAR's blocks one at a time, each checked against its CID.

    `roots` is read on construction; iterate to get `(binary CID, parsed CID, block)`.
    A CARv2 file is read through to the CARv1 payload it wraps.

    `zero_padded` reads a CARv1 as a storage provider serves it from a piece: the CAR, then
    zero fill up to the piece's unpadded size. A zero-length section (which no block can
    have) ends the CAR there, and everything after it must be zeros; `length` is then the
    CAR's own length, without the fill.
    """

    def __init__(self, stream: BinaryIO, *, zero_padded: bool = False) -> None:
        self._stream = stream
        self._remaining: int | None = None
        self._header_length = 0
        self._zero_padded = zero_padded
        self.roots: list[bytes] = self._read_header()
        self.length = self._header_length  # bytes of the CAR read so far

    def _read_header(self) -> list[bytes]:
        size = _read_varint(self._stream)
        if size is None:
            raise CarError("empty file, not a CAR")
        if size > _MAX_HEADER_SIZE:
            raise CarError("CAR header is implausibly large")
        raw = _read_exact(self._stream, size)
        if len(raw) < size:
            raise CarError("CAR header is truncated")
        self._header_length = len(encode_varint(size)) + size
        if encode_varint(size) + raw == _CARV2_PRAGMA:
            return self._read_v2()
        header = _Cbor(raw).item()
        if not isinstance(header, dict) or header.get("version") != 1:
            version = header.get("version") if isinstance(header, dict) else None
            raise CarError(f"unsupported CAR version {version!r}")
        roots = header.get("roots")
        if not isinstance(roots, list) or not all(isinstance(r, _CidRef) for r in roots):
            raise CarError("CAR header roots are not a list of CIDs")
        for root in roots:
            self._parse_cid(root)
        return [bytes(root) for root in roots]

    def _read_v2(self) -> list[bytes]:
        fixed = _read_exact(self._stream, 40)
        if len(fixed) < 40:
            raise CarError("CARv2 header is truncated")
        data_offset = int.from_bytes(fixed[16:24], "little")
        data_size = int.from_bytes(fixed[24:32], "little")
        consumed = len(_CARV2_PRAGMA) + 40
        if data_offset < consumed:
            raise CarError("CARv2 data offset points into its header")
        gap = data_offset - consumed
        while gap > 0:  # in pieces: the offset comes from the file and may be absurd
            skipped = _read_exact(self._stream, min(gap, 1 << 20))
            if not skipped:
                raise CarError("CARv2 is truncated before its data")
            gap -= len(skipped)
        roots = self._read_header()
        # The inner CARv1 ends at data_size; an index may follow it.
        self._remaining = data_size - self._header_length
        return roots

    @staticmethod
    def _parse_cid(binary: bytes) -> tuple[CidParts, int]:
        try:
            return decode_cid(binary)
        except UnixFSError as exc:
            raise CarError(f"CAR has a malformed CID: {exc}") from None

    def __iter__(self) -> Iterator[tuple[bytes, CidParts, bytes]]:
        while self._remaining is None or self._remaining > 0:
            size = _read_varint(self._stream)
            if size is None:
                if self._remaining is not None:
                    raise CarError("CARv2 payload is shorter than its header says")
                return
            if size == 0 and self._zero_padded and self._remaining is None:
                self._read_zero_fill()
                return
            self.length += len(encode_varint(size)) + size
            if size > MAX_BLOCK_SIZE + 128:
                raise CarError(f"CAR section of {size} bytes is larger than any valid block")
            section = _read_exact(self._stream, size)
            if len(section) < size:
                raise CarError("CAR ends inside a block")
            if self._remaining is not None:
                self._remaining -= len(encode_varint(size)) + size
            parts, end = self._parse_cid(section)
            binary, block = section[:end], section[end:]
            try:
                matches = parts.verify(block)
            except UnixFSError as exc:
                raise CarError(f"CAR block {binary.hex()}: {exc}") from None
            if not matches:
                raise CarError(f"CAR block {cid_text(binary)} does not match its hash")
            yield binary, parts, block

    def _read_zero_fill(self) -> None:
        while chunk := self._stream.read(1 << 20):
            if chunk.count(0) != len(chunk):
                raise CarError("CAR is followed by bytes that are not zero fill")


def blocks_within(reader: CarReader, max_bytes: int | None) -> Iterator[tuple[bytes, bytes]]:
    """`(binary CID, block)` of each section, counting what the blocks take on disk (each its
    bytes plus ENTRY_COST, one file a block): LimitExceeded once that passes `max_bytes`."""
    cost = 0
    for cid, _parts, block in reader:
        cost += ENTRY_COST + len(block)
        if max_bytes is not None and cost > max_bytes:
            raise LimitExceeded(
                f"the CAR's blocks take more than {max_bytes} bytes on disk "
                f"(each block counts its size plus {ENTRY_COST} bytes)"
            )
        yield cid, block


def write_car(out: BinaryIO, roots: Sequence[bytes], blocks: Iterable[tuple[bytes, bytes]]) -> None:
    """Write a CARv1 of `(binary CID, block)` pairs in the order given."""
    header = encode_header(roots)
    out.write(encode_varint(len(header)) + header)
    for cid, block in blocks:
        out.write(encode_varint(len(cid) + len(block)))
        out.write(cid)
        out.write(block)
