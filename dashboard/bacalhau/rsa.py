"""RSA signatures as Bacalhau's legacy clients make them (docs/bacalhau.md, "Legacy API"):
RSASSA-PKCS1-v1_5 with SHA-256, keys sent as base64 DER, a client named by sha256(N).

Verification only, and small enough to read whole: the public operation s^e mod n and a
comparison with the one encoding PKCS #1 (RFC 8017 §8.2.2, §9.2) allows, so there is no
parsing of the decrypted block to get wrong.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

__all__ = ["BadKey", "PublicKey", "client_id", "parse_public_key", "signature_valid"]

# What Bacalhau's clients generate (bacalhau-sdk: RSA.generate(2048); Go: rsa.GenerateKey,
# e = 65537). Anything else is refused before any arithmetic: a verification costs about
# (bits of e) x (bits of n)^2, so an 8192-bit key with a huge e would cost seconds of CPU.
MIN_BITS, MAX_BITS = 2048, 4096
EXPONENT = 65537
# DER of DigestInfo{sha256, NULL} up to the digest (RFC 8017 §9.2, note 1).
_SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")
_RSA_OID = bytes.fromhex("06092a864886f70d010101")


class BadKey(ValueError):
    """The public key cannot be read, or is not one we accept."""


@dataclass(frozen=True)
class PublicKey:
    n: int
    e: int

    @property
    def size(self) -> int:
        return (self.n.bit_length() + 7) // 8


def _read(data: bytes, at: int, tag: int) -> tuple[bytes, int]:
    """The contents of the DER element of `tag` at `at`, and where the next one starts."""
    if at + 2 > len(data) or data[at] != tag:
        raise BadKey(f"expected DER tag {tag:#x} at byte {at}")
    length, at = data[at + 1], at + 2
    if length & 0x80:
        count = length & 0x7F
        if not 0 < count <= 4 or at + count > len(data):
            raise BadKey("bad DER length")
        length, at = int.from_bytes(data[at : at + count], "big"), at + count
    if at + length > len(data):
        raise BadKey("DER element runs past the end")
    return data[at : at + length], at + length


def _integer(data: bytes, at: int) -> tuple[int, int]:
    body, at = _read(data, at, 0x02)
    if not body or body[0] & 0x80:
        raise BadKey("RSA numbers must be positive integers")
    return int.from_bytes(body, "big"), at


def parse_public_key(text: str) -> PublicKey:
    """A base64 RSAPublicKey (PKCS #1, what the Python SDK sends) or SubjectPublicKeyInfo."""
    try:
        der = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BadKey("the public key is not base64") from None
    outer, end = _read(der, 0, 0x30)
    if end != len(der):
        raise BadKey("bytes after the key")
    if outer[:1] == b"\x30":  # SubjectPublicKeyInfo: {algorithm, BIT STRING of RSAPublicKey}
        algorithm, at = _read(outer, 0, 0x30)
        if not algorithm.startswith(_RSA_OID):
            raise BadKey("not an RSA key")
        bits, _ = _read(outer, at, 0x03)
        if bits[:1] != b"\x00":
            raise BadKey("bad BIT STRING")
        outer, _ = _read(bits[1:], 0, 0x30)
    n, at = _integer(outer, 0)
    e, at = _integer(outer, at)
    if at != len(outer):
        raise BadKey("bytes after the key's numbers")
    if not MIN_BITS <= n.bit_length() <= MAX_BITS:
        raise BadKey(f"the key has {n.bit_length()} bits; {MIN_BITS} to {MAX_BITS} are accepted")
    if e != EXPONENT:
        raise BadKey(f"the public exponent must be {EXPONENT}")
    return PublicKey(n=n, e=e)


def client_id(key: PublicKey) -> str:
    """Bacalhau's client id: lower-case hex SHA-256 of N's big-endian bytes (Go's N.Bytes())."""
    return hashlib.sha256(key.n.to_bytes(key.size, "big")).hexdigest()


def signature_valid(key: PublicKey, message: bytes, signature_b64: str) -> bool:
    """Whether `signature_b64` is the key's PKCS1-v1_5 SHA-256 signature of `message`."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    if len(signature) != key.size:
        return False
    s = int.from_bytes(signature, "big")
    if s >= key.n:
        return False
    encoded = pow(s, key.e, key.n).to_bytes(key.size, "big")
    digest_info = _SHA256_PREFIX + hashlib.sha256(message).digest()
    padding = key.size - len(digest_info) - 3
    expected = b"\x00\x01" + b"\xff" * padding + b"\x00" + digest_info
    return hmac.compare_digest(encoded, expected)
