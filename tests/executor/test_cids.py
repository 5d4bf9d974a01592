from __future__ import annotations

import base64
import random

import cid as pycid
import pytest

from executor.cids import InvalidCID, cid_from_bytes, label_to_cid, normalize_cid

V1 = "bafybeiehumusc3x3hmz3urvbjqo37ccbg3ljfzoewriactfjeyqluvywvm"


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        # Real mainnet deal 5083158: multibase base64 label (legacy Lotus markets)
        ("mAXASIIejKSFu+zszukahTB2/iEE21pLlxLRQAUypJiC6Vxar", V1),
        # blake2b-256 dag-pb, base64 (Wallaby deal 67)
        (
            "mAXCg5AIg8YBXbFjtdBy1iZjpDYAwRSt0elGLF5GvTqulEii1VcM",
            "bafykbzacedyyav3mldwxihfvrgmosdmagbcsw5d2kgfrpenpj2v2keriwvk4g",
        ),
        (V1, V1),
        (V1.upper(), V1),
        ("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", None),
        (
            "baga6ea4seaqmh37khqbfmvt3phtfsxuz2ok3koypajjxn7gwml26uojmub54kny",
            "baga6ea4seaqmh37khqbfmvt3phtfsxuz2ok3koypajjxn7gwml26uojmub54kny",
        ),
    ],
)
def test_every_label_encoding_seen_on_mainnet_normalises(given: str, canonical: str | None) -> None:
    expected = canonical or pycid.from_string(given).to_v1().encode("base32").decode()
    assert normalize_cid(given) == expected
    assert label_to_cid(given) == expected


def test_cidv0_and_its_cidv1_form_are_the_same_cid() -> None:
    v0 = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
    v1 = normalize_cid(v0)
    assert v1.startswith("bafybei")
    base58_v1 = pycid.from_string(v1).encode("base58btc").decode()
    assert normalize_cid(base58_v1) == v1
    hex_v1 = "f" + pycid.from_string(v1).buffer.hex()
    assert normalize_cid(hex_v1) == v1
    b64url = "u" + base64.urlsafe_b64encode(pycid.from_string(v1).buffer).decode().rstrip("=")
    assert normalize_cid(b64url) == v1


def test_rare_multibase_goes_through_the_library() -> None:
    base36 = "k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8"
    assert normalize_cid(base36) == pycid.from_string(base36).encode("base32").decode()


@pytest.mark.parametrize(
    "label",
    [
        "",
        "hello world",
        "my dataset v2",
        '{"pcids":["bafy"]}',
        "bafyxyz",
        "Qm123",
        "mAXASII",
        V1 + "aa",  # wrong digest length
        V1[:-1],
        "bafyBEIEHUMUSC3X3HMZ3URVBJQO37CCBG3LJFZOEWRIACTFJEYQLUVYWVM",  # mixed case
        "/ipfs/" + V1,
        " " + V1,
        "b" + "a" * 60,
    ],
)
def test_non_cid_labels_stay_text(label: str) -> None:
    assert label_to_cid(label) is None
    with pytest.raises(InvalidCID):
        normalize_cid(label)


def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_fast_path_agrees_with_py_cid_on_random_cids() -> None:
    rng = random.Random(42)
    accepted = 0
    for _ in range(2000):
        codec = rng.choice([0x70, 0x55, 0x71, 0xF101, 0x0129, 0x0200])
        code, length = rng.choice([(0x12, 32), (0xB220, 32), (0x1012, 32), (0x13, 64), (0x12, 31)])
        binary = b"\x01" + _uvarint(codec) + _uvarint(code) + _uvarint(length)
        binary += rng.randbytes(length) + (b"\x00" if rng.random() < 0.1 else b"")
        text = "b" + base64.b32encode(binary).decode().lower().rstrip("=")
        try:
            parsed = pycid.from_bytes(binary)
            reference = parsed.encode("base32").decode() if parsed.buffer == binary else None
        except ValueError:
            reference = None
        try:
            ours: str | None = normalize_cid(text)
        except InvalidCID:
            ours = None
        assert ours == reference, text
        accepted += ours is not None
    assert 1000 < accepted < 2000  # both valid and invalid CIDs were exercised


def test_binary_cid_from_cbor_tag() -> None:
    binary = pycid.from_string(V1).buffer
    assert cid_from_bytes(binary) == V1
    with pytest.raises(InvalidCID):
        cid_from_bytes(b"\x01\x70\x12")
