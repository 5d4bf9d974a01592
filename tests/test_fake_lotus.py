"""The fake Lotus node speaks Lotus' wire format (docs/filecoin.md), and the chain data
builders reproduce the real fixtures byte for byte. No database: plain httpx calls."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cid
import httpx
import multihash
import pytest

from tests.chain_data import (
    BLOCK_FIELDS,
    DEAL_EVENT_KINDS,
    FIXTURES,
    REAL_EVENTS_FROM,
    REAL_EVENTS_TO,
    SYNTHETIC_ID_FOR_PRE_NV22_DEAL,
    cbor_text_b64,
    cid_from_str,
    decode_event_entries,
    encode_claim_event,
    load_decoded_claims,
    load_real_chainhead,
    load_real_claim_events,
    load_real_deals,
    make_deal,
    synthetic_message_cid,
    synthetic_payload_cid,
    synthetic_piece_cid,
    synthetic_tipset_cid,
)
from tests.fake_lotus import TOO_MANY_EVENTS, FakeChain, FakeLotusServer, url_multiaddr

CLAIM_FILTER = {"$type": [{"codec": 81, "value": cbor_text_b64("claim")}]}


def rpc_body(method: str, *params: Any, request_id: Any = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "method": f"Filecoin.{method}",
        "params": list(params),
        "id": request_id,
    }


# One keep-alive client for the whole module: a new client per call costs ~15 ms.
_http = httpx.Client(timeout=5)


@pytest.fixture(scope="module", autouse=True)
def _close_http() -> Iterator[None]:
    yield
    _http.close()


def post(url: str, payload: Any, **kwargs: Any) -> httpx.Response:
    return _http.post(url, json=payload, **kwargs)


def call(url: str, method: str, *params: Any) -> Any:
    """The result of a call that must succeed."""
    body = post(url, rpc_body(method, *params)).json()
    assert "error" not in body, body
    return body["result"]


def call_error(url: str, method: str, *params: Any) -> dict[str, Any]:
    """The error object of a method error (HTTP 200, code 1 by default)."""
    response = post(url, rpc_body(method, *params))
    assert response.status_code == 200
    return response.json()["error"]


@pytest.fixture(scope="module")
def real() -> Iterator[FakeLotusServer]:
    """Read-only server over the real fixtures, shared by the tests that don't mutate it."""
    with FakeLotusServer(FakeChain.from_fixtures()) as server:
        yield server


@pytest.fixture
def lotus() -> Iterator[FakeLotusServer]:
    """A small synthetic chain (head 1000) per test, free to mutate."""
    with FakeLotusServer(FakeChain(head_height=1000)) as server:
        yield server


def claim_event(
    claim_id: int, height: int, kind: str = "claim", **overrides: Any
) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "claim_id": claim_id,
        "client": 3300309,
        "provider": "f01531188",
        "piece_cid": synthetic_piece_cid(claim_id),
        "piece_size": 34359738368,
        "term_min": 1056960,
        "term_max": 1316160,
        "term_start": height,
        "sector": claim_id % 1000,
        "height": height,
        "msg_cid": synthetic_message_cid(claim_id),
        "tipset_key": None,
    }
    fields.update(overrides)
    return encode_claim_event(kind, **fields)


# --- envelope ------------------------------------------------------------------------------


def test_success_envelope_has_sorted_keys_and_a_trailing_newline(real: FakeLotusServer) -> None:
    response = post(real.url, rpc_body("StateNetworkVersion", None, request_id=3))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert "server" not in response.headers
    assert response.content == b'{"id":3,"jsonrpc":"2.0","result":28}\n'


def test_chain_head_is_the_real_tipset_in_lotus_field_order(real: FakeLotusServer) -> None:
    text = post(real.url, rpc_body("ChainGetTipSetByHeight", REAL_EVENTS_TO, None)).text
    assert text.startswith('{"id":1,"jsonrpc":"2.0","result":{"Cids":[{"/":"bafy2bzace')
    tipset = json.loads(text)["result"]
    assert list(tipset) == ["Cids", "Blocks", "Height"]
    real_head = load_real_chainhead()
    # The 3 blocks of the real ChainHead sample plus the late 4th block the events name.
    assert [c["/"] for c in tipset["Cids"]] == [
        "bafy2bzacebfszvuwfda2ndsn4iua7qcccdgyxr5g66lg75pk7gwo5rtwn5koi",
        "bafy2bzacedxw4ahzaol4ovttokstgthjb4blarlf7bdrm3u62fa34wihyxr2g",
        "bafy2bzaceckgd3fyg4sdtmpul54jxcoqjygxlclde53qagvsb4wo6ggmnyhyc",
        "bafy2bzacecumvrshkdpsypq4nm67vtjvxmogdqbqag5lgb4myxbpomyja52u4",
    ]
    assert tipset["Blocks"][0] == real_head["Blocks"][0]
    for block in tipset["Blocks"]:
        assert tuple(block) == BLOCK_FIELDS
        assert block["Timestamp"] == 1736970570
        assert block["Parents"] == real_head["Blocks"][0]["Parents"]
    # The real 3-block key of the snapshot still resolves to the same height.
    older = call(real.url, "ChainGetTipSet", real_head["Cids"])
    assert older["Height"] == REAL_EVENTS_TO and older["Cids"] == real_head["Cids"]


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [(7, b"7"), ("abc", b'"abc"'), (1.0, b"1"), (2.5, b"2.5"), (2**53 + 1, b"9007199254740992")],
)
def test_request_id_is_echoed_like_go(real: FakeLotusServer, sent: Any, echoed: bytes) -> None:
    body = post(real.url, rpc_body("StateNetworkVersion", None, request_id=sent)).content
    assert body.startswith(b'{"id":' + echoed + b',"jsonrpc"')


def test_notification_gets_no_body(real: FakeLotusServer) -> None:
    response = post(real.url, {"jsonrpc": "2.0", "method": "Filecoin.ChainHead", "params": []})
    assert (response.status_code, response.content) == (200, b"")


def test_batch_answers_an_array_in_order_and_counts_each_call(lotus: FakeLotusServer) -> None:
    batch = [
        rpc_body("StateNetworkVersion", None, request_id=1),
        rpc_body("NoSuchMethod", request_id=2),
        rpc_body("StateMarketStorageDeal", 5, None, request_id=3),
    ]
    response = post(lotus.url, batch)
    # go-jsonrpc has already written "[" when an element fails: always 200.
    assert response.status_code == 200
    assert response.content == (
        b'[{"id":1,"jsonrpc":"2.0","result":28}\n'
        b',{"error":{"code":-32601,"message":"method \'Filecoin.NoSuchMethod\' not found"},'
        b'"id":2,"jsonrpc":"2.0"}\n'
        b',{"error":{"code":1,"message":"deal 5 not found - deal may not have completed '
        b'sealing before deal proposal start epoch, or deal may have been slashed"},'
        b'"id":3,"jsonrpc":"2.0"}\n]'
    )
    assert lotus.http_requests == 1
    assert lotus.requests["StateNetworkVersion"] == 1
    assert lotus.requests["Filecoin.StateMarketStorageDeal"] == 1
    assert sum(lotus.requests.values()) == 3


# --- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        (b'{"jsonrpc":"2.0","method":', 500, -32700, "Parse error"),
        (b"[1, 2]", 500, -32700, "Parse error"),
        (b"", 400, -32600, "Invalid request"),
        (b" [] ", 400, -32600, "Invalid request"),
    ],
)
def test_protocol_errors_without_a_request(
    real: FakeLotusServer, body: bytes, status: int, code: int, message: str
) -> None:
    response = _http.post(real.url, content=body)
    assert response.status_code == status
    assert response.json() == {
        "error": {"code": code, "message": message},
        "id": None,
        "jsonrpc": "2.0",
    }
    assert response.content.endswith(b"}\n")


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        (rpc_body("ChainHeadd"), -32601, "method 'Filecoin.ChainHeadd' not found"),
        (
            rpc_body("ChainHead") | {"method": "ChainHead"},
            -32601,
            "method 'ChainHead' not found",
        ),
        (
            rpc_body("ChainGetTipSetByHeight", 10),
            -32602,
            "wrong param count (method 'Filecoin.ChainGetTipSetByHeight'): 1 != 2",
        ),
        (
            rpc_body("StateMarketStorageDeal", "5", None),
            -32700,
            "unmarshaling params for 'Filecoin.StateMarketStorageDeal' (param: *abi.DealID): "
            "json: cannot unmarshal string into Go value of type abi.DealID",
        ),
    ],
)
def test_protocol_errors_are_http_500(
    real: FakeLotusServer, request_: Any, code: int, message: str
) -> None:
    response = post(real.url, request_ | {"id": 9})
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": code, "message": message},
        "id": 9,
        "jsonrpc": "2.0",
    }


def test_v1_only_methods_are_missing_on_v0(real: FakeLotusServer) -> None:
    assert call(real.url_v0, "ChainHead")["Height"] == REAL_EVENTS_TO + 901
    for method, params in [("ChainGetFinalizedTipSet", []), ("GetActorEventsRaw", [{}])]:
        response = post(real.url_v0, rpc_body(method, *params))
        assert response.status_code == 500
        assert response.json()["error"]["code"] == -32601


def test_only_post_on_known_paths(real: FakeLotusServer) -> None:
    assert _http.get(real.url).status_code == 405
    response = _http.post(real.url.replace("/rpc/v1", "/rpc/v9"), json=rpc_body("ChainHead"))
    assert response.status_code == 404


def test_token_is_required_when_set() -> None:
    with FakeLotusServer(FakeChain(head_height=50), token="s3cret") as server:
        payload = rpc_body("StateNetworkVersion", None)
        assert post(server.url, payload).status_code == 401
        assert (
            post(server.url, payload, headers={"Authorization": "Bearer nope"}).status_code == 401
        )
        assert post(server.url, payload, headers={"Authorization": "s3cret"}).status_code == 401
        ok = post(server.url, payload, headers={"Authorization": "Bearer s3cret"})
        assert (ok.status_code, ok.json()["result"]) == (200, 28)
        assert post(server.url + "?token=s3cret", payload).status_code == 200
        assert server.requests["StateNetworkVersion"] == 2


# --- tipsets -------------------------------------------------------------------------------


def test_tipset_key_params_null_empty_and_explicit(lotus: FakeLotusServer) -> None:
    head = call(lotus.url, "ChainHead")
    assert head["Height"] == 1000
    assert call(lotus.url, "ChainGetTipSetByHeight", 990, None) == call(
        lotus.url, "ChainGetTipSetByHeight", 990, []
    )
    at_990 = call(lotus.url, "ChainGetTipSetByHeight", 990, head["Cids"])
    assert at_990["Height"] == 990
    assert all(b["Timestamp"] == 1598306400 + 30 * 990 for b in at_990["Blocks"])
    below = call(lotus.url, "ChainGetTipSetByHeight", 989, at_990["Cids"])
    assert at_990["Blocks"][0]["Parents"] == below["Cids"]
    # Anchored at 990, 995 is "above the start point".
    error = call_error(lotus.url, "ChainGetTipSetByHeight", 995, at_990["Cids"])
    assert error == {
        "code": 1,
        "message": "looking for tipset with height greater than start point, req: 995, head: 990",
    }
    unknown = [{"/": synthetic_tipset_cid(1, 99)}]
    error = call_error(lotus.url, "StateNetworkVersion", unknown)
    assert error["code"] == 1 and error["message"].startswith("loading tipset {bafy2bzace")


def test_null_rounds_return_the_tipset_below(lotus: FakeLotusServer) -> None:
    lotus.chain.null_rounds.update({97, 98, 100})
    assert call(lotus.url, "ChainGetTipSetByHeight", 98, None)["Height"] == 96
    at_99 = call(lotus.url, "ChainGetTipSetByHeight", 99, None)
    assert at_99["Height"] == 99
    # 101's parent is 99: the null round 100 has no tipset.
    assert (
        call(lotus.url, "ChainGetTipSetByHeight", 101, None)["Blocks"][0]["Parents"]
        == at_99["Cids"]
    )
    # The EC-finalized height (head 1000 - 900) is null too: rewind to 99.
    assert call(lotus.url, "ChainGetFinalizedTipSet")["Height"] == 99


def test_finalized_tipset_ec_fallback_and_f3_override(lotus: FakeLotusServer) -> None:
    assert call(lotus.url, "ChainGetFinalizedTipSet")["Height"] == 100
    lotus.chain.finalized_override = 995
    assert call(lotus.url, "ChainGetFinalizedTipSet")["Height"] == 995
    lotus.chain.finalized_override = None
    lotus.chain.set_head(500)
    assert call_error(lotus.url, "ChainGetFinalizedTipSet")["message"] == "height -400 is negative"


def test_grow_head_changes_the_key_at_the_same_height(lotus: FakeLotusServer) -> None:
    before = call(lotus.url, "ChainHead")
    lotus.chain.grow_head()
    after = call(lotus.url, "ChainHead")
    assert after["Height"] == before["Height"]
    assert after["Cids"][: len(before["Cids"])] == before["Cids"]
    assert len(after["Cids"]) == len(before["Cids"]) + 1
    # The smaller tipset is still a valid anchor, as on Lotus.
    assert call(lotus.url, "ChainGetTipSet", before["Cids"])["Cids"] == before["Cids"]


# --- market --------------------------------------------------------------------------------


def test_real_deal_and_not_found_after_removal(real: FakeLotusServer) -> None:
    deal = call(real.url, "StateMarketStorageDeal", 5083158, None)
    assert deal["Proposal"]["Label"] == "mAXASIIejKSFu+zszukahTB2/iEE21pLlxLRQAUypJiC6Vxar"
    assert deal["State"] == {
        "SectorStartEpoch": 1681205,
        "LastUpdatedEpoch": 1696278,
        "SlashEpoch": -1,
    }
    assert call(real.url, "StateReadState", "f05", None)["State"]["NextID"] == 5083159


def test_deal_lifecycle_and_next_id_at_an_older_tipset(lotus: FakeLotusServer) -> None:
    chain = lotus.chain
    chain.add_deal(41, make_deal(41, start_epoch=1100, end_epoch=600000), height=0)
    at_999 = call(lotus.url, "ChainGetTipSetByHeight", 999, None)["Cids"]
    old = call(lotus.url, "StateReadState", "f05", at_999)["State"]
    assert old["NextID"] == 42
    assert list(old)[:6] == [
        "Proposals",
        "States",
        "PendingProposals",
        "EscrowTable",
        "LockedTable",
        "NextID",
    ]

    chain.add_deal(42, make_deal(42, start_epoch=1100, end_epoch=600000))  # visible from 1000 on
    chain.advance(5)
    new = call(lotus.url, "StateReadState", "f05", None)["State"]
    assert new["NextID"] == 43 and new["Proposals"] != old["Proposals"]
    # At the older tipset neither the new id nor the new deal exist yet.
    assert call(lotus.url, "StateReadState", "f05", at_999)["State"] == old
    assert call_error(lotus.url, "StateMarketStorageDeal", 42, at_999)["message"].startswith(
        "deal 42 not found - "
    )
    assert call(lotus.url, "StateMarketStorageDeal", 42, None)["State"]["SectorNumber"] == 0

    chain.update_deal_state(42, SectorNumber=7, SectorStartEpoch=1003, LastUpdatedEpoch=1003)
    assert call(lotus.url, "StateMarketStorageDeal", 42, None)["State"] == {
        "SectorNumber": 7,
        "SectorStartEpoch": 1003,
        "LastUpdatedEpoch": 1003,
        "SlashEpoch": -1,
    }
    chain.remove_deal(41)
    assert call_error(lotus.url, "StateMarketStorageDeal", 41, None) == {
        "code": 1,
        "message": "deal 41 not found - deal may not have completed sealing before deal "
        "proposal start epoch, or deal may have been slashed",
    }
    assert call(lotus.url, "StateReadState", "f05", None)["State"]["NextID"] == 43  # never shrinks
    assert call_error(lotus.url, "StateReadState", "f01234", None)["code"] == 1


def test_make_deal_state_shapes() -> None:
    def state_keys(shape: str) -> list[str]:
        return list(make_deal(1, start_epoch=1, end_epoch=2, shape=shape)["State"])

    epochs = ["SectorStartEpoch", "LastUpdatedEpoch", "SlashEpoch"]
    assert state_keys("legacy") == epochs
    assert state_keys("nv17") == [*epochs, "VerifiedClaim"]
    assert state_keys("nv22") == ["SectorNumber", *epochs]
    assert state_keys("forest") == [*epochs, "SectorNumber"]
    real = load_real_deals()[SYNTHETIC_ID_FOR_PRE_NV22_DEAL]
    built = make_deal(
        1,
        piece_cid=real["Proposal"]["PieceCID"]["/"],
        label=real["Proposal"]["Label"],
        start_epoch=2867966,
        end_epoch=4359806,
        sector_start_epoch=2856167,
        last_updated_epoch=3106586,
        verified_claim=18771683,
        shape="nv17",
    )
    # Same keys, same order, same values as the real pre-nv22 StateMarketDeals value.
    assert json.dumps(built) == json.dumps(real)
    assert set(load_real_deals()) == {5083158, SYNTHETIC_ID_FOR_PRE_NV22_DEAL}


# --- claims and actor events ---------------------------------------------------------------


def test_claims_come_from_the_events_and_match_the_fixture(real: FakeLotusServer) -> None:
    claims = call(real.url, "StateGetAllClaims", None)
    with (FIXTURES / "claims_as_StateGetAllClaims_result.json").open() as fh:
        assert claims == json.load(fh)
    assert list(claims) == sorted(claims)  # Go map keys: sorted as strings
    provider = call(real.url, "StateGetClaims", "f03254063", None)
    assert len(provider) == 44
    assert provider["87873151"]["TermStart"] == 4622138
    assert call(real.url, "StateGetClaim", "f01531188", 87884600, None)["Sector"] == 103327
    assert call(real.url, "StateGetClaim", "f01531188", 1, None) is None


def test_state_reads_the_parent_state_of_the_tipset(real: FakeLotusServer) -> None:
    # Claim 87884600's event is at 4622129: state shows it from tipset 4622130 on.
    at = {h: call(real.url, "ChainGetTipSetByHeight", h, None)["Cids"] for h in (4622129, 4622130)}
    assert call(real.url, "StateGetClaim", "f01531188", 87884600, at[4622129]) is None
    assert call(real.url, "StateGetClaim", "f01531188", 87884600, at[4622130]) is not None


@pytest.mark.parametrize("case", ["lower", "Upper"])
def test_events_filter_by_height_and_type(real: FakeLotusServer, case: str) -> None:
    codec, value = ("codec", "value") if case == "lower" else ("Codec", "Value")
    fields = {"$type": [{codec: 81, value: cbor_text_b64("claim")}]}
    everything = call(
        real.url,
        "GetActorEventsRaw",
        {"fromHeight": REAL_EVENTS_FROM, "toHeight": REAL_EVENTS_TO, "fields": fields},
    )
    assert everything == load_real_claim_events()
    one = call(
        real.url,
        "GetActorEventsRaw",
        {"fromHeight": 4622134, "toHeight": 4622134, "fields": fields},
    )
    assert len(one) == 60 and {e["height"] for e in one} == {4622134}
    removed = {"$type": [{codec: 81, value: cbor_text_b64("claim-removed")}]}
    # Lotus answers null, not [], when nothing matches.
    assert (
        call(real.url, "GetActorEventsRaw", {"fromHeight": REAL_EVENTS_FROM, "fields": removed})
        is None
    )
    by_emitter = {"fromHeight": 4622134, "toHeight": 4622134}
    assert len(call(real.url, "GetActorEventsRaw", by_emitter | {"addresses": ["f06"]})) == 60
    assert call(real.url, "GetActorEventsRaw", by_emitter | {"addresses": ["f05"]}) is None
    # Without fromHeight Lotus reads no history.
    assert call(real.url, "GetActorEventsRaw", {"fields": fields}) is None


def test_event_range_and_result_limits(real: FakeLotusServer) -> None:
    error = call_error(real.url, "GetActorEventsRaw", {"fromHeight": 4619000, "toHeight": 4622139})
    assert error == {
        "code": 1,
        "message": "invalid epoch range: range between to and 'from' heights is too large "
        "(maximum: 2880)",
    }
    error = call_error(real.url, "GetActorEventsRaw", {"fromHeight": 10, "toHeight": 5})
    assert error["message"].startswith("invalid epoch range: 'to' height")
    real.chain.max_event_results = 50
    try:
        error = call_error(
            real.url,
            "GetActorEventsRaw",
            {"fromHeight": REAL_EVENTS_FROM, "toHeight": REAL_EVENTS_TO},
        )
        assert error == {"code": 1, "message": TOO_MANY_EVENTS}
        # One tipset may exceed the cap (60 events at 4622134).
        assert (
            len(call(real.url, "GetActorEventsRaw", {"fromHeight": 4622134, "toHeight": 4622134}))
            == 60
        )
    finally:
        real.chain.max_event_results = 10_000


def test_events_of_the_head_tipset_are_not_executed_yet(lotus: FakeLotusServer) -> None:
    lotus.chain.add_event(claim_event(1, 1000))
    assert call(lotus.url, "GetActorEventsRaw", {"fromHeight": 990}) is None
    lotus.chain.advance()
    [event] = call(lotus.url, "GetActorEventsRaw", {"fromHeight": 990})
    assert event["tipsetKey"] == call(lotus.url, "ChainGetTipSetByHeight", 1000, None)["Cids"]


def test_reorg_reverts_events(lotus: FakeLotusServer) -> None:
    chain = lotus.chain
    for claim_id, height in [(1, 950), (2, 960), (3, 970)]:
        chain.add_event(claim_event(claim_id, height))
    old_key = call(lotus.url, "ChainGetTipSetByHeight", 960, None)["Cids"]
    assert len(call(lotus.url, "StateGetClaims", "f01531188", None)) == 3

    chain.reorg(955)
    chain.add_event(claim_event(4, 961))  # the replacement, on the new fork
    new_key = call(lotus.url, "ChainGetTipSetByHeight", 960, None)["Cids"]
    assert new_key != old_key
    assert call(lotus.url, "ChainGetTipSetByHeight", 950, None)["Cids"] == chain.tipset_key(950)

    # Height-range queries skip reverted events (Lotus: e.reverted=false)...
    events = call(lotus.url, "GetActorEventsRaw", {"fromHeight": 900, "toHeight": 999})
    assert [decode_event_entries(e)["id"] for e in events] == [1, 4]
    # ...the old tipset key shows them, reverted.
    [reverted] = call(lotus.url, "GetActorEventsRaw", {"tipsetKey": old_key})
    assert (reverted["reverted"], reverted["tipsetKey"], reverted["height"]) == (True, old_key, 960)
    assert call(lotus.url, "GetActorEventsRaw", {"tipsetKey": new_key}) is None
    assert sorted(call(lotus.url, "StateGetClaims", "f01531188", None)) == ["1", "4"]

    chain.range_queries_include_reverted = True
    events = call(lotus.url, "GetActorEventsRaw", {"fromHeight": 900, "toHeight": 999})
    ids = [(decode_event_entries(e)["id"], e["reverted"]) for e in events]
    assert ids == [(1, False), (2, True), (4, False), (3, True)]  # ordered by height


def test_claim_updates_and_removals(lotus: FakeLotusServer) -> None:
    chain = lotus.chain
    chain.add_event(claim_event(5, 900))
    chain.add_event(claim_event(5, 910, "claim-updated", term_max=2000000))
    chain.add_event(claim_event(6, 910))
    chain.add_event(claim_event(6, 920, "claim-removed"))
    claims = call(lotus.url, "StateGetClaims", "f01531188", None)
    assert list(claims) == ["5"] and claims["5"]["TermMax"] == 2000000
    at_915 = call(lotus.url, "ChainGetTipSetByHeight", 915, None)["Cids"]
    assert sorted(call(lotus.url, "StateGetClaims", "f01531188", at_915)) == ["5", "6"]


def test_undecodable_events_are_served_verbatim(lotus: FakeLotusServer) -> None:
    event = claim_event(8, 900)
    event["entries"][1]["Value"] = "////"  # not CBOR: served as is, but makes no claim
    lotus.chain.add_event(event)
    [served] = call(lotus.url, "GetActorEventsRaw", {"fromHeight": 900, "toHeight": 900})
    assert served["entries"] == event["entries"]
    assert call(lotus.url, "StateGetClaims", "f01531188", None) == {}


# --- faults --------------------------------------------------------------------------------


def test_http_status_fault(lotus: FakeLotusServer) -> None:
    lotus.faults.http_status(503, times=2)
    payload = rpc_body("StateNetworkVersion", None)
    first, second, third = (post(lotus.url, payload) for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (503, 503, 200)
    assert first.headers["content-type"].startswith("text/plain")
    assert lotus.http_requests == 3 and lotus.requests["StateNetworkVersion"] == 1
    assert lotus.faults.pending() == 0


def test_drop_connection_fault(lotus: FakeLotusServer) -> None:
    lotus.faults.drop_connection()
    with pytest.raises(httpx.RemoteProtocolError):
        post(lotus.url, rpc_body("ChainHead"))
    assert post(lotus.url, rpc_body("ChainHead")).status_code == 200


def test_delay_fault(lotus: FakeLotusServer) -> None:
    lotus.faults.delay(0.5)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(lotus.url, json=rpc_body("ChainHead"), timeout=0.1)
    assert post(lotus.url, rpc_body("ChainHead")).status_code == 200


def test_rpc_error_fault_hits_only_its_method(lotus: FakeLotusServer) -> None:
    lotus.faults.rpc_error("Filecoin.ChainHead", -32005, "rate limited", times=2)
    batch = [
        rpc_body("StateNetworkVersion", None, request_id=1),
        rpc_body("ChainHead", request_id=2),
    ]
    answers = post(lotus.url, batch).json()
    assert answers[0]["result"] == 28
    assert answers[1]["error"] == {"code": -32005, "message": "rate limited"}
    assert call_error(lotus.url, "ChainHead")["code"] == -32005
    assert call(lotus.url, "ChainHead")["Height"] == 1000
    # A protocol code gets go-jsonrpc's HTTP status; clear() drops what is left.
    lotus.faults.rpc_error("ChainHead", -32601, "method 'Filecoin.ChainHead' not found")
    assert post(lotus.url, rpc_body("ChainHead")).status_code == 500
    lotus.faults.http_status(502, times=5)
    lotus.faults.clear()
    assert post(lotus.url, rpc_body("ChainHead")).status_code == 200


def test_concurrent_clients(lotus: FakeLotusServer) -> None:
    def worker() -> None:
        with httpx.Client(timeout=5) as client:
            for _ in range(10):
                assert client.post(lotus.url, json=rpc_body("ChainHead")).status_code == 200

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert lotus.requests["ChainHead"] == 60 and lotus.http_requests == 60


# --- chain data ----------------------------------------------------------------------------


def test_real_claim_events_reencode_byte_for_byte() -> None:
    events = load_real_claim_events()
    decoded = load_decoded_claims()
    assert len(events) == len(decoded) == 360
    for event, claim in zip(events, decoded, strict=True):
        assert list(event) == ["entries", "emitter", "reverted", "height", "tipsetKey", "msgCid"]
        rebuilt = encode_claim_event(
            "claim",
            claim_id=claim["id"],
            client=claim["client"],
            provider=claim["provider"],
            piece_cid=claim["pieceCid"],
            piece_size=claim["pieceSize"],
            term_min=claim["termMin"],
            term_max=claim["termMax"],
            term_start=claim["termStart"],
            sector=claim["sector"],
            height=claim["height"],
            msg_cid=claim["msgCid"],
            tipset_key=[c["/"] for c in event["tipsetKey"]],
        )
        assert json.dumps(rebuilt) == json.dumps(event)
        assert decode_event_entries(event)["piece-cid"] == claim["pieceCid"]


def decode_cid(text: str) -> tuple[int, str, str, bytes]:
    """(version, codec, hash function, digest) as py-cid (the project's CID library) reads them."""
    parsed = cid.make_cid(text)
    digest = multihash.decode(parsed.multihash)
    return parsed.version, parsed.codec, digest.name, digest.digest


def test_synthetic_cids_are_valid_multiformats() -> None:
    version, codec, hashfun, digest = decode_cid(synthetic_piece_cid(7))
    assert synthetic_piece_cid(7).startswith("baga6ea4seaq")
    assert (version, codec, hashfun) == (1, "fil-commitment-unsealed", "sha2-256-trunc254-padded")
    assert len(digest) == 32 and digest[-1] < 0x40  # a 254-bit CommP
    assert synthetic_payload_cid(7).startswith("bafybei")
    assert decode_cid(synthetic_payload_cid(7))[:3] == (1, "dag-pb", "sha2-256")
    assert synthetic_tipset_cid(4622139, 1).startswith("bafy2bzace")
    assert decode_cid(synthetic_tipset_cid(4622139, 1))[:3] == (1, "dag-cbor", "blake2b-256")
    assert synthetic_message_cid(1).startswith("bafy2bzace")
    assert (
        len({synthetic_tipset_cid(5), synthetic_tipset_cid(5, 1), synthetic_tipset_cid(6, 1)}) == 3
    )
    real = "baga6ea4seaqepbqg7dxrdphrvusy3pmc5lelcczwwi5nydduyog655wgnby4ijq"
    assert cid_from_str(real) == cid.make_cid(real).buffer


def test_standalone_main_serves_fixtures() -> None:
    repo = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_lotus", "--port", "0", "--fixtures"],
        cwd=repo,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/rpc/v1")
        assert call(url, "ChainHead")["Height"] == REAL_EVENTS_TO + 901
    finally:
        process.terminate()
        process.wait(timeout=5)


def test_market_changes_are_versioned_and_announced_by_events() -> None:
    chain = FakeChain(head_height=5000)
    chain.add_deal(1, make_deal(1, start_epoch=4000, end_epoch=10**6), height=100)
    chain.activate_deal(1, height=200, sector_number=9)
    chain.terminate_deal(1, height=300)
    with FakeLotusServer(chain) as server:

        def state_at(height: int) -> Any:
            tsk = call(server.url, "ChainGetTipSetByHeight", height, None)["Cids"]
            body = post(server.url, rpc_body("StateMarketStorageDeal", 1, tsk)).json()
            return body.get("result") or body["error"]["message"]

        assert "not found" in state_at(99)
        assert state_at(100)["State"]["SectorStartEpoch"] == -1
        # A message at 200 shows in the parent state of the tipset at 201.
        assert state_at(200)["State"]["SectorStartEpoch"] == -1
        assert state_at(201)["State"]["SectorStartEpoch"] == 200
        assert state_at(201)["State"]["SectorNumber"] == 9
        assert state_at(300)["State"]["SectorStartEpoch"] == 200
        assert "not found" in state_at(301)
        market = {
            "addresses": ["f05"],
            "fields": {
                "$type": [{"codec": 81, "value": cbor_text_b64(k)} for k in DEAL_EVENT_KINDS]
            },
            "fromHeight": 0,
            "toHeight": 1000,
        }
        events = call(server.url, "GetActorEventsRaw", market)
        assert [(e["height"], decode_event_entries(e)) for e in events] == [
            (99, {"$type": "deal-published", "id": 1, "client": 1880278, "provider": 2118066}),
            (200, {"$type": "deal-activated", "id": 1, "client": 1880278, "provider": 2118066}),
            (300, {"$type": "deal-terminated", "id": 1, "client": 1880278, "provider": 2118066}),
        ]
        assert {e["emitter"] for e in events} == {"f05"}
        assert all(entry["Flags"] == 3 for e in events for entry in e["entries"])
        only = market | {"fields": {"$type": [{"codec": 81, "value": cbor_text_b64("claim")}]}}
        assert call(server.url, "GetActorEventsRaw", only) is None
        chain.reorg(250)  # the termination's branch is replaced: the deal is back
        assert state_at(301)["State"]["SectorStartEpoch"] == 200


def test_url_multiaddr_is_what_a_provider_would_publish() -> None:
    assert url_multiaddr("http://127.0.0.1:7777") == "/ip4/127.0.0.1/tcp/7777/http"
    assert url_multiaddr("https://sp.example/") == "/dns/sp.example/tcp/443/https"
    assert url_multiaddr("http://[::1]:80/a/b") == "/ip6/::1/tcp/80/http/http-path/a%2Fb"
    with pytest.raises(ValueError):
        url_multiaddr("ftp://x")


def test_standalone_main_serves_provider_urls_and_pieces() -> None:
    """The walkthrough's chain: f01234's HTTP address, and a piece it holds under an active
    verified deal and claim, added from the command line next to the fixtures."""
    from executor.multiaddr import from_base64, http_url

    piece = synthetic_piece_cid(77)
    payload = synthetic_payload_cid(77)
    repo = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fake_lotus",
            "--port",
            "0",
            "--fixtures",
            "--provider-url",
            "f01234=http://127.0.0.1:7777",
            "--piece",
            f"{piece}:2048:{payload}",
        ],
        cwd=repo,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        info = call(url, "StateMinerInfo", "f01234", None)
        assert [http_url(from_base64(m)) for m in info["Multiaddrs"]] == ["http://127.0.0.1:7777"]
        assert call(url, "StateMinerInfo", "f05555", None)["Multiaddrs"] is None
        finalized = call(url, "ChainGetFinalizedTipSet")
        claims = call(url, "StateGetClaims", "f01234", finalized["Cids"])
        assert [c["Data"]["/"] for c in claims.values()] == [piece]
        deal_id = call(url, "StateReadState", "f05", finalized["Cids"])["State"]["NextID"] - 1
        deal = call(url, "StateMarketStorageDeal", deal_id, finalized["Cids"])
        assert deal["Proposal"]["PieceCID"]["/"] == piece
        assert deal["Proposal"]["Label"] == payload
        assert deal["Proposal"]["VerifiedDeal"] and deal["Proposal"]["Provider"] == "f01234"
        assert deal["State"]["SectorStartEpoch"] > 0
    finally:
        process.terminate()
        process.wait(timeout=5)


def test_a_bad_provider_url_or_piece_is_refused() -> None:
    repo = Path(__file__).resolve().parent.parent
    for flag, value in (("--provider-url", "f01234"), ("--piece", "bafy:12")):
        done = subprocess.run(
            [sys.executable, "-m", "tests.fake_lotus", "--port", "0", flag, value],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 2 and flag in done.stderr


def test_fake_claim_lands_a_claim_the_next_finalized_tipset_shows(lotus: FakeLotusServer) -> None:
    """The walkthrough's control path: a claim on the next tipset, the chain grown until that
    tipset is final; a body it cannot read is a 400, and the chain is unchanged."""
    chain = lotus.chain
    control = lotus.url.replace("/rpc/v1", "/fake/claim")
    piece = "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"
    head = chain.head_height
    refused = httpx.post(control, content=b'{"piece_cid": "x"}')
    assert refused.status_code == 400 and chain.head_height == head
    landed = httpx.post(
        control, json={"piece_cid": piece, "piece_size": 8192, "provider": "f01234"}
    )
    assert landed.status_code == 200
    claim_id = landed.json()["claim_id"]
    assert chain.head_height == head + chain.finality + 2
    final = chain.head_height - chain.finality
    claims = chain.get_claims("f01234", chain.tipset_key(final))
    assert claims[str(claim_id)]["Data"] == {"/": piece} and claims[str(claim_id)]["Size"] == 8192
    assert claims[str(claim_id)]["TermStart"] == head + 1 < final
