"""Job spec validation and its canonical form (the seed of a WASM job's random stream)."""

from __future__ import annotations

import hashlib
import json

import pytest

from executor.spec import SpecError, parse_mount, parse_spec

HELLO_V0 = "QmSoASxb8aNVGk3pNWpZvXEZTQKxjGeu9bvpYHuo5bP1VJ"
HELLO_V1_DAGPB = "bafybeicchf4xyrxmdwz5raasiohhwujb5t5dlqs57a4xuq2gffzyw25t7e"
RAW = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"


def wasm(**overrides: object) -> dict:
    body: dict = {"engine": "wasm", "wasm": {"module": RAW}}
    body.update(overrides)
    return body


def test_defaults_are_filled_in_and_canonical_json_is_pinned() -> None:
    spec = parse_spec(wasm())
    assert spec.canonical_json() == (
        b'{"annotations":[],"engine":"wasm","inputs":[],'
        b'"limits":{"fuel":null,"memory_bytes":268435456,"timeout_s":600},'
        b'"wasm":{"args":[],"entry_point":"_start","env":{},'
        b'"module":"bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"}}'
    )
    assert spec.seed() == hashlib.sha256(spec.canonical_json()).digest()


def test_equivalent_specs_share_one_seed() -> None:
    a = parse_spec(
        {
            "engine": "wasm",
            "wasm": {"module": HELLO_V0, "env": {"B": "2", "A": "1"}},
            "inputs": [{"cid": HELLO_V0, "path": "/data//x.txt"}],
            "limits": {"timeout_s": 600.0},
        }
    )
    b = parse_spec(
        json.loads(
            json.dumps(
                {
                    "limits": {"memory_bytes": 268435456, "timeout_s": 600, "fuel": None},
                    "inputs": [f"{HELLO_V1_DAGPB}:/data/x.txt"],
                    "wasm": {"env": {"A": "1", "B": "2"}, "entry_point": "_start", "args": []},
                    "engine": "wasm",
                }
            ).replace('"wasm": {', f'"wasm": {{"module": "{HELLO_V1_DAGPB}", ')
        )
    )
    assert a.module == HELLO_V1_DAGPB
    assert a.inputs[0].path == "/data/x.txt"
    assert a.canonical_json() == b.canonical_json()
    assert a.seed() != parse_spec(wasm()).seed()


def test_non_ascii_is_written_as_utf8_not_escaped() -> None:
    spec = parse_spec(wasm(wasm={"module": RAW, "args": ["é"]}))
    assert '"args":["é"]'.encode() in spec.canonical_json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "spec"),
        ({"engine": "wasm", "wasm": {"module": RAW}, "extra": 1}, "extra"),
        ({"engine": "java"}, "engine"),
        ({"engine": "wasm"}, "wasm"),
        (wasm(wasm={"module": "not-a-cid"}), "wasm.module"),
        (wasm(wasm={"module": RAW, "args": "a b"}), "wasm.args"),
        (wasm(wasm={"module": RAW, "args": ["a", 3]}), "wasm.args.1"),
        (wasm(wasm={"module": RAW, "env": {"1X": "v"}}), "wasm.env.1X"),
        (wasm(wasm={"module": RAW, "env": {"X": 1}}), "wasm.env.X"),
        (wasm(wasm={"module": RAW, "entry_point": ""}), "wasm.entry_point"),
        (wasm(wasm={"module": RAW, "foo": 1}), "wasm.foo"),
        (wasm(inputs=[{"cid": RAW, "path": "data"}]), "inputs.0.path"),
        (wasm(inputs=[{"cid": RAW, "path": "/a/../b"}]), "inputs.0.path"),
        (wasm(inputs=[{"cid": RAW, "path": "/"}]), "inputs.0.path"),
        (wasm(inputs=[{"cid": RAW, "path": "/outputs/x"}]), "inputs.0.path"),
        (wasm(inputs=[{"cid": "x", "path": "/a"}]), "inputs.0.cid"),
        (wasm(inputs=[{"cid": RAW, "path": "/a"}, {"cid": RAW, "path": "/a/"}]), "inputs.1.path"),
        (wasm(inputs=["nocolon"]), "inputs.0"),
        (wasm(limits={"timeout_s": 0}), "limits.timeout_s"),
        (wasm(limits={"timeout_s": True}), "limits.timeout_s"),
        (wasm(limits={"memory_bytes": 100}), "limits.memory_bytes"),
        (wasm(limits={"memory_bytes": 1.5}), "limits.memory_bytes"),
        (wasm(limits={"fuel": -1}), "limits.fuel"),
        (wasm(limits={"cpu": 1}), "limits.cpu"),
        (wasm(annotations=["ok", 1]), "annotations.1"),
        ({"engine": "docker", "docker": {"image": "bad image"}}, "docker.image"),
        ({"engine": "docker", "docker": {"image": "x", "entrypoint": "sh"}}, "docker.entrypoint"),
        # the other engine's object would be ignored: refused instead
        (wasm(docker={"image": "x"}), "docker"),
        ({"engine": "docker", "docker": {"image": "x"}, "wasm": {"module": RAW}}, "wasm"),
    ],
)
def test_bad_fields_are_named(body: object, field: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(body)
    assert err.value.field == field


def test_docker_spec_round_trips() -> None:
    spec = parse_spec(
        {
            "engine": "docker",
            "docker": {"image": "local/tiny:1", "entrypoint": ["sh", "-c", "echo hi"]},
            "inputs": [{"cid": RAW, "path": "/inputs/a"}],
        }
    )
    assert spec.to_json()["docker"] == {
        "image": "local/tiny:1",
        "entrypoint": ["sh", "-c", "echo hi"],
        "env": {},
    }
    assert parse_spec(spec.to_json()) == spec


def test_parse_mount() -> None:
    mount = parse_mount(f"{HELLO_V0}:/data/hello.txt")
    assert (mount.cid, mount.path) == (HELLO_V1_DAGPB, "/data/hello.txt")
    with pytest.raises(SpecError, match="CID:/path"):
        parse_mount("/data/hello.txt")


PIECE = "baga6ea4seaqae5ysjdbsr4b5jhotaz5ooh62jrrdbxwygfpkkfjz44kvywycmgy"


def test_a_piece_input_and_its_raw_flag() -> None:
    plain = parse_spec(wasm(inputs=[{"cid": RAW, "path": "/in/a"}]))
    # `raw` absent or false leaves the canonical form (and so the seed) as it always was.
    assert b'"raw"' not in plain.canonical_json()
    assert parse_spec(wasm(inputs=[{"cid": RAW, "path": "/in/a", "raw": False}])) == plain
    assert (
        plain.canonical_json()
        == b'{"annotations":[],"engine":"wasm","inputs":[{"cid":"' + RAW.encode()
        + b'",'
        b'"path":"/in/a"}],"limits":{"fuel":null,"memory_bytes":268435456,"timeout_s":600},'
        b'"wasm":{"args":[],"entry_point":"_start","env":{},"module":"' + RAW.encode() + b'"}}'
    )
    piece = parse_spec(wasm(inputs=[{"cid": PIECE, "path": "/in/p", "raw": True}]))
    assert piece.inputs[0].raw is True
    assert piece.to_json()["inputs"] == [{"cid": PIECE, "path": "/in/p", "raw": True}]
    assert parse_spec(piece.to_json()) == piece
    assert piece.seed() != parse_spec(wasm(inputs=[{"cid": PIECE, "path": "/in/p"}])).seed()


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"cid": RAW, "path": "/in/a", "raw": True}, "piece CID"),
        ({"cid": PIECE, "path": "/in/a", "raw": 1}, "true or false"),
        ({"cid": PIECE, "path": "/in/a", "raw": "yes"}, "true or false"),
    ],
)
def test_raw_is_a_boolean_for_pieces_only(item: dict, message: str) -> None:
    with pytest.raises(SpecError, match=message) as err:
        parse_spec(wasm(inputs=[item]))
    assert err.value.field == "inputs.0.raw"
