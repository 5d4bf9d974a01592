"""The one CID normaliser: any valid CID string in, canonical CIDv1 base32 lower case out.

Pure Python with no Django import: the dashboard and the chain scanner import it from here.
Structure (version, codec, multihash) is validated by py-cid, a maintained CID library.
The multibase text is decoded with the standard library first because py-multibase's
base32 converter works bit by bit (~300 µs a CID), far too slow for a 130 M-deal dump.
"""

from __future__ import annotations

import base64
import binascii
import re
from functools import lru_cache

import base58
import cid as pycid
import multibase

__all__ = [
    "MAX_CID_LENGTH",
    "InvalidCID",
    "cid_from_bytes",
    "is_piece_cid",
    "label_to_cid",
    "normalize_cid",
]

_DAG_PB = b"\x70"
_CIDV0_PREFIX = b"\x12\x20"  # sha2-256, 32 bytes: the only multihash CIDv0 allows


class InvalidCID(ValueError):
    """The value is not a CID in any form we accept."""


_B32_ALPHABET = re.compile(r"[a-z2-7]+")
# RFC 4648 base32 digits mapped onto the digits int(…, 32) reads, so decoding runs in C:
# the standard library's b32decode is pure Python and dominated dump imports.
_B32_AS_INT_DIGITS = str.maketrans(
    "abcdefghijklmnopqrstuvwxyz234567", "0123456789abcdefghijklmnopqrstuv"
)


def _b32(text: str) -> bytes:
    """Decode unpadded lower-case base32, refusing non-canonical encodings."""
    if not _B32_ALPHABET.fullmatch(text):
        raise InvalidCID("not base32")
    size = len(text) * 5 // 8
    spare = len(text) * 5 - size * 8
    if spare >= 5:
        raise InvalidCID("base32 text has an impossible length")
    value = int(text.translate(_B32_AS_INT_DIGITS), 32)
    if value & ((1 << spare) - 1):
        raise InvalidCID("base32 text has non-zero padding bits")
    return (value >> spare).to_bytes(size, "big")


def _b64(text: str, altchars: bytes | None) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=altchars, validate=True)


def _multibase_decode(text: str) -> bytes:
    prefix, body = text[0], text[1:]
    if prefix == "b":
        return _b32(body)
    if prefix == "B":
        if body != body.upper():
            raise InvalidCID("mixed-case base32")
        return _b32(body.lower())
    if prefix == "z":
        return base58.b58decode(body)
    if prefix in "mM":
        return _b64(body.rstrip("="), None)
    if prefix in "uU":
        return _b64(body.rstrip("="), b"-_")
    if prefix in "fF":
        return bytes.fromhex(body)
    # Rare bases (base36, base32hex, …): the library's slow path is fine for these.
    return multibase.decode(text)


# Binary prefixes (version, codec, multihash code, digest length) of nearly every CID on
# Filecoin, each followed by a 32-byte digest: dag-pb, raw and dag-cbor over sha2-256,
# dag-pb and dag-cbor over blake2b-256, and the piece commitment (fil-commitment-unsealed,
# sha2-256-trunc254-padded). These skip the library's slower generic parse; every other
# CID goes through py-cid (the tests check that both paths agree).
_COMMON_PREFIXES = frozenset(
    {
        b"\x01\x70\x12\x20",
        b"\x01\x55\x12\x20",
        b"\x01\x71\x12\x20",
        b"\x01\x70\xa0\xe4\x02\x20",
        b"\x01\x71\xa0\xe4\x02\x20",
        b"\x01\x81\xe2\x03\x92\x20\x20",
    }
)


def _is_common_cidv1(binary: bytes) -> bool:
    return len(binary) > 32 and binary[:-32] in _COMMON_PREFIXES


def _canonical(binary: bytes, text: str | None = None) -> str:
    if len(binary) == 34 and binary.startswith(_CIDV0_PREFIX):
        # CIDv0 is a bare sha2-256 multihash of a dag-pb node; its v1 form adds version+codec.
        binary = b"\x01" + _DAG_PB + binary
    if not binary or binary[0] != 1:
        raise InvalidCID("not a CIDv1 (version byte is not 1)")
    if not _is_common_cidv1(binary):
        try:
            parsed = pycid.from_bytes(binary)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise InvalidCID(str(exc) or type(exc).__name__) from None
        if parsed.buffer != binary:
            # Trailing bytes or a non-minimal varint: not a well-formed CID.
            raise InvalidCID("trailing or malformed bytes")
    if text is not None:
        return text  # already canonical base32: decoding was strict, so it round-trips
    return "b" + base64.b32encode(binary).decode("ascii").lower().rstrip("=")


# The longest canonical CID anything here stores (the scanner's CID columns hold 128): far
# above any hash-addressed CID (about 60 characters); only identity CIDs that inline their
# content are longer.
MAX_CID_LENGTH = 128


@lru_cache(maxsize=65536)
def normalize_cid(value: str) -> str:
    """Return the canonical CIDv1 base32 form of `value`, or raise InvalidCID.

    Accepts CIDv0 (`Qm…`) and CIDv1 in any multibase. Whitespace, paths and URLs are refused:
    callers decide what text may contain a CID.
    """
    if not isinstance(value, str) or len(value) < 2:
        raise InvalidCID(f"not a CID: {value!r}")
    if len(value) > 512 or not value.isascii() or not value.isprintable() or " " in value:
        raise InvalidCID(f"not a CID: {value[:80]!r}")
    try:
        if len(value) == 46 and value.startswith("Qm"):
            binary = base58.b58decode(value)
            if len(binary) != 34 or not binary.startswith(_CIDV0_PREFIX):
                raise InvalidCID("bad CIDv0")
        else:
            binary = _multibase_decode(value)
    except InvalidCID as exc:
        raise InvalidCID(f"not a CID: {value[:80]!r} ({exc})") from None
    except (ValueError, binascii.Error, KeyError, TypeError) as exc:
        raise InvalidCID(f"not a CID: {value[:80]!r} ({exc})") from None
    try:
        canonical = _canonical(binary, value if value[0] == "b" else None)
    except InvalidCID as exc:
        raise InvalidCID(f"not a CID: {value[:80]!r} ({exc})") from None
    if len(canonical) > MAX_CID_LENGTH:
        raise InvalidCID(
            f"{value[:40]!r}… is {len(canonical)} characters as CIDv1: longer than the "
            f"{MAX_CID_LENGTH} this service stores"
        )
    return canonical


def cid_from_bytes(binary: bytes) -> str:
    """Canonical form of a binary CID (as carried in CBOR tag 42, after its 0x00 prefix)."""
    return _canonical(bytes(binary))


def label_to_cid(label: str) -> str | None:
    """The canonical payload CID a deal label names, or None when the label is not a CID.

    Labels on mainnet are `bafy…`, `Qm…`, multibase base64 `mAXASI…` and blake2b
    `mAXCg5AIg…`; anything else (free text, JSON, empty) stays text and is never indexed.
    """
    if not label:
        return None
    try:
        return normalize_cid(label)
    except InvalidCID:
        return None


# CIDv1, codec fil-commitment-unsealed (0xf101), multihash sha2-256-trunc254-padded (0x1012),
# 32 bytes: the binary prefix of every v1 piece CID, so its base32 text starts baga6ea4seaq.
PIECE_CID_PREFIX = bytes([0x01, 0x81, 0xE2, 0x03, 0x92, 0x20, 0x20])


def is_piece_cid(value: str) -> bool:
    """Whether a CID (any form) is a v1 piece CID (CommP)."""
    try:
        canonical = normalize_cid(value)
    except InvalidCID:
        return False
    binary = base64.b32decode(canonical[1:].upper() + "=" * (-(len(canonical) - 1) % 8))
    return len(binary) == 39 and binary.startswith(PIECE_CID_PREFIX)
