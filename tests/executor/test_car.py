"""CAR reading and writing, checked against cbor2 (an independent CBOR implementation)."""

from __future__ import annotations

import hashlib
import io

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from executor.car import MAX_BLOCK_SIZE, CarError, CarReader, encode_header, write_car
from executor.storage import StorageError
from executor.unixfs import CODEC_DAG_PB, CODEC_RAW, encode_varint, hash_block


def _raw(data: bytes) -> tuple[bytes, bytes]:
    return hash_block(data, CODEC_RAW), data


def _car(roots: list[bytes], blocks: list[tuple[bytes, bytes]]) -> bytes:
    out = io.BytesIO()
    write_car(out, roots, blocks)
    return out.getvalue()


def _read(car: bytes) -> tuple[list[bytes], list[tuple[bytes, bytes]]]:
    reader = CarReader(io.BytesIO(car))
    return reader.roots, [(cid, block) for cid, _, block in reader]


def test_header_is_the_dag_cbor_cbor2_decodes() -> None:
    root = hash_block(b"\x08\x01", CODEC_DAG_PB)
    header = encode_header([root])
    decoded = cbor2.loads(header)
    assert decoded == {"roots": [cbor2.CBORTag(42, b"\x00" + root)], "version": 1}
    # dag-cbor: map keys sorted by length then bytes, so "roots" comes first.
    assert list(decoded) == ["roots", "version"]
    assert header == cbor2.dumps(decoded, canonical=True)


def test_header_written_by_cbor2_is_read() -> None:
    root = hash_block(b"x", CODEC_RAW)
    header = cbor2.dumps({"version": 1, "roots": [cbor2.CBORTag(42, b"\x00" + root)]})
    roots, blocks = _read(encode_varint(len(header)) + header)
    assert roots == [root] and blocks == []


@given(st.lists(st.binary(max_size=3000), max_size=6), st.integers(0, 3))
def test_blocks_round_trip_in_order(datas: list[bytes], root_count: int) -> None:
    blocks = [_raw(data) for data in datas]
    roots = [cid for cid, _ in blocks[:root_count]]
    assert _read(_car(roots, blocks)) == (roots, blocks)


def test_sections_are_length_cid_block() -> None:
    cid, block = _raw(b"hello")
    car = _car([cid], [(cid, block)])
    header = encode_header([cid])
    assert car == encode_varint(len(header)) + header + bytes([len(cid) + 5]) + cid + block


def test_cidv0_blocks_are_read() -> None:
    block = b"\x0a\x04\x08\x02\x18\x00"  # the empty file's dag-pb node
    cid = hash_block(block, CODEC_DAG_PB, cid_version=0)
    assert len(cid) == 34
    assert _read(_car([cid], [(cid, block)])) == ([cid], [(cid, block)])


def test_a_block_that_does_not_match_its_cid_is_refused() -> None:
    cid, _ = _raw(b"the real bytes")
    car = _car([cid], [(cid, b"other bytes!!!")])
    with pytest.raises(CarError, match="does not match its hash") as caught:
        _read(car)
    assert isinstance(caught.value, StorageError)
    assert "bafkrei" in str(caught.value)


def test_an_unsupported_hash_function_is_refused() -> None:
    digest = hashlib.sha512(b"x").digest()
    cid = b"\x01\x55\x13\x40" + digest  # sha2-512
    with pytest.raises(CarError, match="unsupported multihash"):
        _read(_car([cid], [(cid, b"x")]))


def test_blake2b_blocks_are_verified() -> None:
    digest = hashlib.blake2b(b"x", digest_size=32).digest()
    cid = b"\x01\x55\xa0\xe4\x02\x20" + digest
    assert _read(_car([cid], [(cid, b"x")]))[1] == [(cid, b"x")]
    with pytest.raises(CarError):
        _read(_car([cid], [(cid, b"y")]))


def _good() -> bytes:
    cid, block = _raw(b"some block")
    return _car([cid], [(cid, block)])


@pytest.mark.parametrize(
    ("car", "message"),
    [
        (b"", "empty file"),
        (_good()[:-3], "ends inside a block"),
        (_good()[:10], "header is truncated"),
        (b"\x0a" + cbor2.dumps({"version": 3}) + b"\x00" * 20, "unsupported CAR version 3"),
        (
            encode_varint(len(cbor2.dumps({"version": 1, "roots": [1]})))
            + cbor2.dumps({"version": 1, "roots": [1]}),
            "roots are not a list of CIDs",
        ),
        (encode_varint(3) + cbor2.dumps([1, 2]), "version"),
        (b"\xff\xff\xff\xff\x0f", "implausibly large"),
        (encode_header([])[:0] + b"\x01\xa1", "truncated"),
        (
            encode_varint(len(encode_header([]))) + encode_header([]) + encode_varint(1 << 30),
            "larger than any valid block",
        ),
        (
            encode_varint(len(encode_header([]))) + encode_header([]) + b"\x03\x01\x55\x12",
            "malformed CID",
        ),
    ],
)
def test_malformed_cars_give_a_clear_error(car: bytes, message: str) -> None:
    with pytest.raises(CarError, match=message):
        _read(car)


def test_sections_larger_than_the_limit_are_refused_before_reading_them() -> None:
    header = encode_header([])
    car = encode_varint(len(header)) + header + encode_varint(MAX_BLOCK_SIZE + 1000)
    with pytest.raises(CarError, match="larger than any valid block"):
        _read(car)


def _carv2(inner: bytes, trailer: bytes = b"") -> bytes:
    pragma = bytes.fromhex("0aa16776657273696f6e02")
    data_offset = len(pragma) + 40 + 5  # five bytes of padding before the payload
    fixed = (
        bytes(16)
        + data_offset.to_bytes(8, "little")
        + len(inner).to_bytes(8, "little")
        + (data_offset + len(inner) if trailer else 0).to_bytes(8, "little")
    )
    return pragma + fixed + bytes(5) + inner + trailer


def test_carv2_payload_is_read_and_its_index_ignored() -> None:
    blocks = [_raw(b"one"), _raw(b"two")]
    inner = _car([blocks[0][0]], blocks)
    assert _read(_carv2(inner, trailer=b"\x01index bytes")) == ([blocks[0][0]], blocks)
    assert _read(_carv2(inner)) == ([blocks[0][0]], blocks)


def test_truncated_carv2_payload_is_refused() -> None:
    blocks = [_raw(b"one"), _raw(b"two")]
    inner = _car([blocks[0][0]], blocks)
    whole = _carv2(inner)
    with pytest.raises(CarError):
        _read(whole[:-4])


def test_carv2_with_an_absurd_data_offset_is_refused_without_reading_it_whole() -> None:
    pragma = bytes.fromhex("0aa16776657273696f6e02")
    fixed = bytes(16) + (1 << 62).to_bytes(8, "little") + bytes(16)
    with pytest.raises(CarError, match="truncated before its data"):
        _read(pragma + fixed + b"\x00" * 100)


def _read_padded(car: bytes) -> tuple[CarReader, list[bytes]]:
    reader = CarReader(io.BytesIO(car), zero_padded=True)
    return reader, [block for _, _, block in reader]


def test_a_piece_is_read_up_to_its_zero_fill() -> None:
    # booster-http serves a piece as the CAR then zeros up to the unpadded piece size.
    blocks = [_raw(b"one"), _raw(b"two")]
    car = _car([blocks[0][0]], blocks)
    reader, read = _read_padded(car + bytes(3000))
    assert read == [b"one", b"two"]
    assert reader.length == len(car)
    reader, read = _read_padded(car)  # no fill at all (Curio knows the raw size)
    assert read == [b"one", b"two"] and reader.length == len(car)


def test_zero_fill_is_still_refused_by_a_plain_read() -> None:
    blocks = [_raw(b"one")]
    with pytest.raises(CarError):
        _read(_car([blocks[0][0]], blocks) + bytes(100))


def test_bytes_after_the_zero_fill_are_refused() -> None:
    blocks = [_raw(b"one")]
    car = _car([blocks[0][0]], blocks)
    with pytest.raises(CarError, match="not zero fill"):
        _read_padded(car + bytes(2000) + b"\x01" + bytes(10))


def test_a_bad_block_before_the_zero_fill_is_still_refused() -> None:
    cid, _ = _raw(b"one")
    car = _car([cid], [(cid, b"on3")])
    with pytest.raises(CarError, match="does not match"):
        _read_padded(car + bytes(100))
