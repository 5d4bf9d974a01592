"""FRC-0058 aggregates against @web3-storage/data-segment (JavaScript) as an outside oracle:
the same inputs give the same aggregate piece CID and the same proofs, each side verifies
the other's proofs, and altered proofs are refused with the failure named. Plus the
streaming writer's bytes, the one-pass writer against build + write, and `python -m
executor aggregate` end to end."""

from __future__ import annotations

import copy
import io
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from executor.aggregate import (
    InclusionProof,
    ProofError,
    build_aggregate,
    decode_entry,
    index_entries,
    index_start,
    pack_aggregate,
    place_pieces,
    read_index,
    verify_proof,
    write_aggregate,
)
from executor.cli import main
from executor.commp import _BLOCK_IN, commp, unpadded_size
from executor.embedded_store import EmbeddedStore
from tests.executor.node_oracles import require_oracle, run_oracle
from tests.helpers import process_env

ORACLE = Path(__file__).with_name("data_segment_oracle.mjs")

# (aggregate size, payload sizes of its sub-pieces, in the order given)
CASES = [
    (2048, [100, 300, 127]),
    (8192, [3000, 100, 700, 1000]),
    (131072, [20000, 3000, 127 * 64, 5]),
    (1 << 20, [300_000, 100_000, 60_000, 128, 4000, 1]),
]


def _payloads(sizes: list[int], seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(n) for n in sizes]


def _pieces(payloads: list[bytes]) -> list[tuple[str, int]]:
    return [(piece.cid, piece.size) for piece in map(commp, payloads)]


def _oracle(tmp_path: Path, request: dict) -> dict:
    require_oracle("@web3-storage/data-segment")
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps(request))
    return json.loads(run_oracle(ORACLE.read_text(), str(request_file)))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> list[tuple[int, list[tuple[str, int]], dict]]:
    """Each case built by the oracle: (size, pieces, its answer)."""
    cases = [(size, _pieces(_payloads(sizes, size))) for size, sizes in CASES]
    request = {
        "build": [
            {"size": size, "pieces": [{"link": c, "size": s} for c, s in pieces]}
            for size, pieces in cases
        ]
    }
    answer = _oracle(tmp_path_factory.mktemp("oracle"), request)
    return [(size, pieces, out) for (size, pieces), out in zip(cases, answer["built"], strict=True)]


def test_same_aggregate_and_proofs_as_data_segment(built) -> None:
    for size, pieces, theirs in built:
        ours = build_aggregate(pieces, size)
        assert (ours.cid, ours.size) == (theirs["link"], theirs["size"])
        for (cid, _), proof in zip(pieces, theirs["proofs"], strict=True):
            assert ours.proof(cid).to_json() == proof


def test_their_proofs_verify_with_ours(built) -> None:
    for size, pieces, theirs in built:
        for (cid, piece_size), proof in zip(pieces, theirs["proofs"], strict=True):
            verify_proof(theirs["link"], size, cid, piece_size, proof)
            # the array form resolveProof returns reads the same
            as_array = [[proof[k]["offset"], proof[k]["path"]] for k in ("tree", "index")]
            verify_proof(theirs["link"], size, cid, piece_size, as_array)


def test_our_proofs_verify_with_theirs(tmp_path: Path) -> None:
    checks = []
    expected = []
    for size, sizes in CASES:
        pieces = _pieces(_payloads(sizes, size + 1))
        aggregate = build_aggregate(pieces, size)
        for cid, piece_size in pieces:
            proof = aggregate.proof(cid).to_json()
            checks.append({"piece": {"link": cid, "size": piece_size}, "proof": proof})
            expected.append(f"{aggregate.cid} {size}")
        # and another piece's proof is refused by both
        (cid0, size0), (cid1, size1) = pieces[:2]
        swapped = aggregate.proof(cid1).to_json()
        checks.append({"piece": {"link": cid0, "size": size0}, "proof": swapped})
        expected.append("error")
        with pytest.raises(ProofError):
            verify_proof(aggregate.cid, size, cid0, size0, swapped)
    answers = _oracle(tmp_path, {"verify": checks})["verified"]
    assert [a if not a.startswith("error") else "error" for a in answers] == expected


@pytest.fixture(scope="module")
def case(built) -> tuple[str, int, str, int, dict, list[tuple[str, int]]]:
    """The oracle's 128 KiB aggregate and its second piece's proof."""
    size, pieces, theirs = built[2]
    cid, piece_size = pieces[1]
    return theirs["link"], size, cid, piece_size, theirs["proofs"][1], pieces


def _refused(case, code: str, **change) -> ProofError:
    aggregate, size, cid, piece_size, proof, _ = case
    args = {"aggregate_cid": aggregate, "aggregate_size": size, "piece_cid": cid}
    args |= {"piece_size": piece_size, "proof": proof} | change
    with pytest.raises(ProofError) as caught:
        verify_proof(**args)
    assert caught.value.code == code, caught.value
    assert str(caught.value).startswith(code + ":")
    return caught.value


def test_altered_proofs_are_refused_naming_the_failure(case, built) -> None:
    aggregate, size, cid, piece_size, proof, pieces = case
    verify_proof(aggregate, size, cid, piece_size, proof)

    shifted = copy.deepcopy(proof)
    shifted["tree"]["offset"] += 1
    assert "offset" in str(_refused(case, "offset", proof=shifted))
    into_index = copy.deepcopy(proof)
    into_index["tree"]["offset"] = (1 << len(proof["tree"]["path"])) - 1
    assert "index area" in str(_refused(case, "offset", proof=into_index))

    outside = copy.deepcopy(proof)
    outside["index"]["offset"] = index_start(size) // 64 - 1
    _refused(case, "outside_index", proof=outside)
    other_slot = copy.deepcopy(proof)
    other_slot["index"]["offset"] += 1
    _refused(case, "index_entry", proof=other_slot)

    # a proof against another aggregate of the same size, and of another size
    other = build_aggregate(list(reversed(pieces)), size)
    _refused(case, "wrong_aggregate", aggregate_cid=other.cid)
    _refused(case, "size_mismatch", aggregate_cid=built[3][2]["link"], aggregate_size=1 << 20)
    _refused(case, "size_mismatch", piece_size=piece_size * 2)
    _refused(case, "size_mismatch", piece_size=piece_size + 1)
    shallow = copy.deepcopy(proof)
    shallow["index"]["path"].pop()
    _refused(case, "size_mismatch", proof=shallow)

    tampered = copy.deepcopy(proof)
    tampered["tree"]["path"][0] = "00" * 32
    _refused(case, "subtree", proof=tampered)


def test_hostile_proofs_are_bounded(case) -> None:
    _, size, _, _, proof, _ = case
    deep = copy.deepcopy(proof)
    deep["index"]["path"] = ["00" * 32] * 65
    _refused(case, "malformed", proof=deep)
    _refused(case, "size_mismatch", proof={**proof, "tree": {"offset": 0, "path": []}})
    past = {"offset": 1 << 40, "path": proof["tree"]["path"]}
    assert "past" in str(_refused(case, "offset", proof={**proof, "tree": past}))
    past = {"offset": 1 << 40, "path": proof["index"]["path"]}
    assert "past" in str(_refused(case, "outside_index", proof={**proof, "index": past}))
    _refused(case, "malformed", proof={**proof, "tree": {"offset": -1, "path": []}})
    _refused(case, "malformed", proof={**proof, "tree": {"offset": "1", "path": []}})
    _refused(case, "malformed", proof={**proof, "tree": {"offset": 0, "path": ["zz"]}})
    _refused(case, "malformed", proof=[1, 2, 3])
    _refused(case, "malformed", aggregate_size=3 << 30)
    _refused(case, "malformed", aggregate_size=128 << 30)
    _refused(
        case,
        "malformed",
        aggregate_cid="bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba",
    )


def test_written_bytes_have_the_aggregate_piece_cid() -> None:
    for size, sizes in CASES:
        payloads = _payloads(sizes, size)
        aggregate = build_aggregate(_pieces(payloads), size)
        out = io.BytesIO()
        sources = [io.BytesIO(data) for data in payloads]
        assert write_aggregate(aggregate, sources, out) == unpadded_size(size)
        data = out.getvalue()
        assert len(data) == unpadded_size(size)
        assert commp(data, piece_size=size).cid == aggregate.cid
        for piece, payload in zip(aggregate.pieces, payloads, strict=True):
            start = unpadded_size(piece.offset)
            assert data[start : start + len(payload)] == payload
        entries = read_index(io.BytesIO(data), size)
        assert entries == [piece.entry for piece in aggregate.pieces]


def test_a_flipped_checksum_bit_invalidates_the_entry() -> None:
    payloads = _payloads([100, 300, 127], 7)
    aggregate = build_aggregate(_pieces(payloads), 2048)
    entry = aggregate.pieces[1].entry.to_bytes()
    assert decode_entry(entry) == aggregate.pieces[1].entry
    flipped = entry[:50] + bytes([entry[50] ^ 1]) + entry[51:]
    with pytest.raises(ProofError, match="^checksum:"):
        decode_entry(flipped)
    with pytest.raises(ProofError, match="^checksum:"):
        decode_entry(bytes(64))
    # written into the aggregate, the flipped entry reads back as invalid
    out = io.BytesIO()
    write_aggregate(aggregate, [io.BytesIO(d) for d in payloads], out)
    padded_index = bytearray(b"".join(p.entry.to_bytes() for p in aggregate.pieces) + bytes(64))
    padded_index[64 + 50] ^= 1
    from executor.commp import fr32_unpad

    data = bytearray(out.getvalue())
    begin = unpadded_size(index_start(2048))
    data[begin : begin + 254] = fr32_unpad(bytes(padded_index))
    found = read_index(io.BytesIO(bytes(data)), 2048)
    assert found[0] == aggregate.pieces[0].entry and found[2] == aggregate.pieces[2].entry
    assert isinstance(found[1], ProofError) and found[1].code == "checksum"


def test_building_refuses_what_does_not_fit() -> None:
    pieces = _pieces(_payloads([1000] * 5, 3))  # 1 KiB pieces
    assert index_entries(2048) == 4 and index_entries(1 << 30) == 8192
    with pytest.raises(ValueError, match="does not fit"):
        build_aggregate(pieces[:2], 2048)  # 2 KiB of pieces + the index
    with pytest.raises(ValueError, match="more than 4 pieces"):
        build_aggregate(pieces, 8192)
    with pytest.raises(ValueError, match="power of two"):
        build_aggregate(pieces[:1], 3000)
    with pytest.raises(KeyError):
        build_aggregate(pieces[:1], 4096).proof(pieces[1][0])


def test_large_aggregates_without_the_bytes() -> None:
    # a 64 GiB aggregate is computed from the sub-piece commitments alone
    pieces = _pieces(_payloads([5000, 100], 5))
    big = build_aggregate([(pieces[0][0], 32 << 30), (pieces[1][0], 128)], 64 << 30)
    for placed in big.pieces:
        proof = big.proof(placed.cid)
        verify_proof(big.cid, 64 << 30, placed.cid, placed.size, proof.to_json())
        assert InclusionProof.from_json(proof.to_json()) == proof


# --- the CLI -------------------------------------------------------------------------------------


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = process_env(tmp_path)
    env.pop("IPFS_API_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "executor", "aggregate", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    return lines[0]


def _car(tmp_path: Path, name: str, data: bytes) -> tuple[Path, str]:
    store = EmbeddedStore(tmp_path / "cars")
    root = store.add_bytes(data)
    path = tmp_path / name
    with path.open("wb") as out:
        store.export_car(root, out)
    return path, root


def test_cli_builds_an_aggregate_with_registrations(tmp_path: Path) -> None:
    small, small_root = _car(tmp_path, "small.car", b"a small result\n")
    big, big_root = _car(tmp_path, "big.car", random.Random(2).randbytes(3000))
    done = _cli(tmp_path, "--size", "8KiB", "--out", "agg.bin", "small.car", "big.car")
    assert done.returncode == 0, done.stderr
    aggregate_cid, aggregate_size = done.stdout.split()
    assert int(aggregate_size) == 8192
    data = (tmp_path / "agg.bin").read_bytes()
    assert len(data) == unpadded_size(8192)
    assert commp(data, piece_size=8192).cid == aggregate_cid
    checks = []
    for path, root in ((small, small_root), (big, big_root)):
        piece = commp(path.read_bytes())
        body = json.loads((tmp_path / f"{piece.cid}.json").read_text())
        assert body["piece_cid"] == piece.cid and body["piece_size"] == piece.size
        assert body["payload_cid"] == root
        assert body["aggregate"]["piece_cid"] == aggregate_cid
        assert body["aggregate"]["piece_size"] == 8192
        verify_proof(aggregate_cid, 8192, piece.cid, piece.size, body["aggregate"]["proof"])
        checks.append(
            {"piece": {"link": piece.cid, "size": piece.size}, "proof": body["aggregate"]["proof"]}
        )
    # and the npm implementation accepts the registrations' proofs
    assert _oracle(tmp_path, {"verify": checks})["verified"] == [f"{aggregate_cid} 8192"] * 2

    elsewhere = _cli(
        tmp_path, "--size", "16384", "--out", "agg2.bin", "--registrations", "regs", "big.car"
    )
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert len(list((tmp_path / "regs").glob("*.json"))) == 1


def test_cli_errors_are_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    _car(tmp_path, "big.car", random.Random(2).randbytes(3000))
    (tmp_path / "junk.car").write_bytes(b"\x05hello")
    # one real process: exit status, one line, no traceback
    line = _one_line_error(_cli(tmp_path, "--size", "8KiB", "--out", "a.bin", "junk.car"))
    assert "CAR" in line
    monkeypatch.chdir(tmp_path)
    cases = {
        "no CAR files": ["--size", "8KiB", "--out", "a.bin"],
        "does not fit": ["--size", "2KiB", "--out", "a.bin", "big.car"],
        "not a size": ["--size", "lots", "--out", "a.bin", "big.car"],
        "power of two": ["--size", "3000", "--out", "a.bin", "big.car"],
        "missing.car": ["--size", "8KiB", "--out", "a.bin", "missing.car"],
        "Is a directory": ["--size", "8KiB", "--out", "a.bin", "."],
    }
    for needle, args in cases.items():
        assert main(["aggregate", *args]) != 0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and needle in err[0], err
    assert not (tmp_path / "a.bin").exists()


# --- one pass: pack_aggregate ---------------------------------------------------------------------

# (aggregate size, payload lengths in the order given): the cases above, pieces of whole
# CommP blocks and just around them, ties, and a mix largest first as the CLI orders them
PACK_CASES = [
    *CASES,
    (16 << 20, [_BLOCK_IN, _BLOCK_IN - 1, _BLOCK_IN + 1, 2 * _BLOCK_IN + 5, 0]),
    (4 << 20, [127, 127, 128, 1, 1, 500, 127 * 2 + 1]),
    (16 << 20, sorted([3 << 20, 70_000, 65_000, 1 << 20, 1016, 127 * 8], reverse=True)),
]


def _odd_chunks(data: bytes, seed: int) -> list[bytes]:
    """The bytes in chunks of random lengths, as an iterable source gives them."""
    rng = random.Random(seed)
    chunks, at = [], 0
    while at < len(data):
        step = rng.choice([1, 31, 127, 4096, 300_000, _BLOCK_IN + 3])
        chunks.append(data[at : at + step])
        at += step
    return chunks


@pytest.mark.parametrize(("size", "lengths"), PACK_CASES)
def test_one_pass_matches_build_then_write(size: int, lengths: list[int]) -> None:
    payloads = _payloads(lengths, size + len(lengths))
    pieces = _pieces(payloads)
    built = build_aggregate(pieces, size)
    expected = io.BytesIO()
    write_aggregate(built, [io.BytesIO(d) for d in payloads], expected)

    for sources in (
        [(io.BytesIO(d), len(d)) for d in payloads],
        [(_odd_chunks(d, n), len(d)) for n, d in enumerate(payloads)],
    ):
        out = io.BytesIO()
        packed = pack_aggregate(sources, size, out)
        assert out.getvalue() == expected.getvalue()
        assert (packed.cid, packed.size, packed.root) == (built.cid, built.size, built.root)
        assert packed.pieces == built.pieces
        assert [(p.cid, p.size) for p in packed.pieces] == pieces
        for cid, piece_size in pieces:
            proof = packed.proof(cid)
            assert proof.to_json() == built.proof(cid).to_json()
            verify_proof(packed.cid, size, cid, piece_size, proof.to_json())
    assert place_pieces([s for _, s in pieces], size) == [p.offset for p in built.pieces]


def test_one_pass_refuses_a_source_of_another_length() -> None:
    data = random.Random(9).randbytes(1000)
    for given, stated, message in (
        (data, 999, "piece 1: more than the 999 bytes stated"),
        (data[:-1], 1000, "piece 1: 999 bytes, not the 1000 stated"),
        (data, 127, "piece 1: more than the 127 bytes stated"),
        (b"", 1, "piece 1: 0 bytes, not the 1 stated"),
    ):
        sources = [(io.BytesIO(b"first"), 5), (io.BytesIO(given), stated)]
        with pytest.raises(ValueError, match=f"^{message} \\(it changed since it was measured\\)"):
            pack_aggregate(sources, 8192, io.BytesIO())
    named = [(io.BytesIO(data), 2000)]
    with pytest.raises(ValueError, match="^result.car: 1000 bytes, not the 2000 stated"):
        pack_aggregate(named, 8192, io.BytesIO(), names=["result.car"])


def test_one_pass_places_before_writing() -> None:
    out = io.BytesIO()
    sources = [(io.BytesIO(bytes(1000)), 1000)] * 2
    with pytest.raises(ValueError, match="^b.car \\(1024 bytes\\) does not fit"):
        pack_aggregate(sources, 2048, out, names=["a.car", "b.car"])
    with pytest.raises(ValueError, match="more than 4 pieces"):
        pack_aggregate([(io.BytesIO(b"x"), 1)] * 5, 8192, out)
    with pytest.raises(ValueError, match="power of two"):
        pack_aggregate(sources[:1], 3000, out)
    with pytest.raises(ValueError, match="a payload length is a number of bytes"):
        pack_aggregate([(io.BytesIO(b"x"), -1)], 8192, out)
    assert out.getvalue() == b""
    with pytest.raises(ValueError, match="2 pieces but 1 names"):
        place_pieces([128, 128], 2048, ["a"])


def test_cli_registrations_are_those_of_build_aggregate(tmp_path: Path) -> None:
    # what the CLI wrote before it packed in one pass: commp of each CAR, largest first (ties
    # in the order given), build_aggregate, each body from the piece and its proof
    rng = random.Random(4)
    cars = [
        _car(tmp_path, f"r{n}.car", rng.randbytes(length))
        for n, length in enumerate([40, 3000, 900, 3100, 70_000, 5])
    ]
    done = _cli(tmp_path, "--size", "1MiB", "--out", "agg.bin", *(p.name for p, _ in cars))
    assert done.returncode == 0, done.stderr
    inputs = [(path, root, commp(path.read_bytes())) for path, root in cars]
    inputs.sort(key=lambda item: -item[2].size)
    aggregate = build_aggregate([(p.cid, p.size) for _, _, p in inputs], 1 << 20)
    assert done.stdout.split() == [aggregate.cid, str(1 << 20)]
    for _, root, piece in inputs:
        body = {
            "piece_cid": piece.cid,
            "piece_size": piece.size,
            "payload_cid": root,
            "aggregate": {
                "piece_cid": aggregate.cid,
                "piece_size": aggregate.size,
                "proof": aggregate.proof(piece.cid).to_json(),
            },
        }
        written = (tmp_path / f"{piece.cid}.json").read_text()
        assert written == json.dumps(body, indent=2) + "\n"
    expected = io.BytesIO()
    write_aggregate(aggregate, [path.open("rb") for path, _, _ in inputs], expected)
    assert (tmp_path / "agg.bin").read_bytes() == expected.getvalue()
    assert not (tmp_path / "agg.bin.part").exists()
