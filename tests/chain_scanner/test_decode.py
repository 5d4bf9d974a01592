from __future__ import annotations

import base64
import copy

import cbor2
import pytest

from chain_scanner.decode import (
    CLAIM_KINDS,
    DEAL_KINDS,
    BadChainData,
    DealEventRow,
    decode_event,
    kinds_filter,
    parse_deal,
    parse_deal_id,
)
from tests.chain_data import (
    DEAL_STATE_SHAPES,
    load_decoded_claims,
    load_real_claim_events,
    load_real_deals,
    make_deal,
    synthetic_piece_cid,
)


def test_real_deal_5083158_with_base64_label() -> None:
    row = parse_deal(5083158, load_real_deals()[5083158])
    assert row is not None
    assert row.payload_cid == "bafybeiehumusc3x3hmz3urvbjqo37ccbg3ljfzoewriactfjeyqluvywvm"
    assert row.piece_cid == "baga6ea4seaqhrk3pg4thkoaukss2ehqer65t3gtj7e4hku6jmkdoygnc6wzoeca"
    assert (row.provider, row.client) == ("f01240", "f0743060")
    assert (row.sector_start_epoch, row.slash_epoch, row.sector_number) == (1681205, -1, None)
    assert row.end_epoch == 3152158


@pytest.mark.parametrize("shape", DEAL_STATE_SHAPES)
def test_every_state_shape(shape: str) -> None:
    value = make_deal(
        7,
        start_epoch=100,
        end_epoch=900,
        sector_start_epoch=90,
        sector_number=12,
        verified_claim=555,
        shape=shape,
    )
    row = parse_deal(7, value)
    assert row is not None
    assert row.sector_start_epoch == 90
    assert row.sector_number == (None if shape in ("legacy", "nv17") else 12)
    assert row.verified_claim == (555 if shape == "nv17" else None)


def test_unverified_deal_is_skipped_and_published_deal_without_state_is_pending() -> None:
    assert parse_deal(1, make_deal(1, start_epoch=1, end_epoch=2, verified=False)) is None
    value = make_deal(2, start_epoch=1, end_epoch=2)
    value["State"] = None
    row = parse_deal(2, value)
    assert row is not None and row.sector_start_epoch == -1


@pytest.mark.parametrize("label", ["", "hello", "not a cid but text", '{"pcids":[]}'])
def test_text_labels_are_kept_but_not_indexed(label: str) -> None:
    row = parse_deal(3, make_deal(3, start_epoch=1, end_epoch=2, label=label))
    assert row is not None and row.label == label and row.payload_cid is None


@pytest.mark.parametrize(
    "mutate",
    [
        lambda v: v["Proposal"].pop("PieceCID"),
        lambda v: v["Proposal"].__setitem__("PieceCID", {"/": "not-a-cid"}),
        lambda v: v["Proposal"].__setitem__("StartEpoch", "12"),
        lambda v: v["Proposal"].__setitem__("VerifiedDeal", "yes"),
        lambda v: v["Proposal"].__setitem__("Label", 5),
        lambda v: v["State"].__setitem__("SlashEpoch", True),
        lambda v: v.pop("Proposal"),
    ],
)
def test_malformed_deals_raise_bad_chain_data(mutate) -> None:  # type: ignore[no-untyped-def]
    value = make_deal(4, start_epoch=1, end_epoch=2)
    mutate(value)
    with pytest.raises(BadChainData, match="deal 4"):
        parse_deal(4, value)


def test_deal_ids_must_be_canonical_integers() -> None:
    assert parse_deal_id("131800583") == 131800583
    for bad in ("-1", "01", "x", "1.5", ""):
        with pytest.raises(BadChainData):
            parse_deal_id(bad)


def test_all_360_real_claim_events_decode_to_the_recorded_values() -> None:
    rows = [decode_event(e) for e in load_real_claim_events()]
    expected = load_decoded_claims()
    assert len(rows) == len(expected) == 360
    for row, want in zip(rows, expected, strict=True):
        assert row is not None and row.kind == "claim" and not row.reverted
        assert (row.claim_id, row.client, row.provider) == (
            want["id"],
            want["client"],
            want["provider"],
        )
        assert (row.piece_cid, row.piece_size, row.sector) == (
            want["pieceCid"],
            want["pieceSize"],
            want["sector"],
        )
        assert (row.term_min, row.term_max, row.term_start, row.height) == (
            want["termMin"],
            want["termMax"],
            want["termStart"],
            want["height"],
        )


def _entry(event: dict, key: str) -> dict:
    return next(e for e in event["entries"] if e["Key"] == key)


def test_undecodable_cbor_and_wrong_types_are_bad_data() -> None:
    event = copy.deepcopy(load_real_claim_events()[0])
    _entry(event, "term-max")["Value"] = "////"
    with pytest.raises(BadChainData, match="undecodable CBOR"):
        decode_event(event)
    event = copy.deepcopy(load_real_claim_events()[0])
    _entry(event, "piece-cid")["Value"] = base64.b64encode(cbor2.dumps("baga")).decode()
    with pytest.raises(BadChainData, match="tag 42"):
        decode_event(event)
    event = copy.deepcopy(load_real_claim_events()[0])
    _entry(event, "id")["Value"] = base64.b64encode(cbor2.dumps(-5)).decode()
    with pytest.raises(BadChainData, match="unsigned"):
        decode_event(event)


def test_other_event_types_are_ignored() -> None:
    event = copy.deepcopy(load_real_claim_events()[0])
    _entry(event, "$type")["Value"] = base64.b64encode(cbor2.dumps("allocation")).decode()
    assert decode_event(event) is None


def test_type_filter_matches_the_real_claim_encoding() -> None:
    values = [f["value"] for f in kinds_filter(CLAIM_KINDS)["$type"]]
    assert values[0] == "ZWNsYWlt"  # base64(CBOR "claim"), as in real requests
    assert synthetic_piece_cid(1).startswith("baga6ea4seaq")


def _b64(hex_text: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_text)).decode("ascii")


# A market event written out byte by byte from RFC 8949, not through any CBOR library:
# 0x6f = text of length 15; 0x1a = a 4-byte unsigned integer.
HAND_BUILT_TERMINATION = {
    "emitter": "f05",
    "entries": [
        {"Flags": 3, "Key": "$type", "Codec": 81, "Value": _b64("6f" + b"deal-terminated".hex())},
        {"Flags": 3, "Key": "id", "Codec": 81, "Value": _b64("1a00bc614e")},  # 12345678
        {"Flags": 3, "Key": "client", "Codec": 81, "Value": _b64("1a00325bd5")},  # 3300309
        {"Flags": 3, "Key": "provider", "Codec": 81, "Value": _b64("1a00175d34")},  # 1531188
    ],
    "height": 4622135,
    "msgCid": {"/": "bafy2bzacebtcy2us37j4rzgu5phfi5767ryfuhbpwedekvwhc5mrakq5dtl7k"},
    "reverted": False,
    "tipsetKey": [{"/": "bafy2bzaced4v32oeij3l7ru547vuzgkgeh6uwyjsi7f22uwi7acahe4babr4m"}],
}


def test_a_hand_built_market_event_decodes() -> None:
    row = decode_event(HAND_BUILT_TERMINATION)
    assert row == DealEventRow(
        kind="deal-terminated",
        deal_id=12345678,
        client=3300309,
        provider=1531188,
        height=4622135,
        msg_cid="bafy2bzacebtcy2us37j4rzgu5phfi5767ryfuhbpwedekvwhc5mrakq5dtl7k",
        reverted=False,
        tipset_key="bafy2bzaced4v32oeij3l7ru547vuzgkgeh6uwyjsi7f22uwi7acahe4babr4m",
    )


def test_the_fake_chains_encoder_writes_the_hand_built_bytes() -> None:
    from tests.chain_data import encode_deal_event

    event = encode_deal_event(
        "deal-terminated",
        deal_id=12345678,
        client="f03300309",
        provider=1531188,
        height=4622135,
        msg_cid=HAND_BUILT_TERMINATION["msgCid"]["/"],
        tipset_key=HAND_BUILT_TERMINATION["tipsetKey"],
    )
    assert event["entries"] == HAND_BUILT_TERMINATION["entries"]


def test_our_event_types_from_any_other_actor_are_ignored() -> None:
    # Any contract can emit an event whose $type is "deal-terminated": only f05's count.
    for emitter in ("f01234", "f410fxyz", "f06", "t0x5"):
        assert decode_event({**HAND_BUILT_TERMINATION, "emitter": emitter}) is None
    assert decode_event({**HAND_BUILT_TERMINATION, "emitter": "t05"}) is not None
    claim = copy.deepcopy(load_real_claim_events()[0])
    assert decode_event({**claim, "emitter": "f05"}) is None


def test_deal_event_ids_must_be_unsigned_integers() -> None:
    event = copy.deepcopy(HAND_BUILT_TERMINATION)
    _entry(event, "id")["Value"] = _b64("20")  # CBOR -1
    with pytest.raises(BadChainData, match="id is not an unsigned integer"):
        decode_event(event)
    del event["entries"][1]
    with pytest.raises(BadChainData, match="id is not an unsigned integer"):
        decode_event(event)


def test_one_filter_asks_for_claim_and_deal_events() -> None:
    values = [f["value"] for f in kinds_filter(CLAIM_KINDS + DEAL_KINDS)["$type"]]
    assert len(values) == 7
    assert base64.b64decode(values[-1]) == bytes.fromhex("6e") + b"deal-completed"
