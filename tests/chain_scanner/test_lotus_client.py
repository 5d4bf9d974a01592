"""The Lotus client against a real HTTP server speaking Lotus' wire format."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from chain_scanner.lotus import (
    MAX_MINER_MULTIADDRS,
    MAX_MULTIADDR_BASE64,
    MAX_PEER_ID,
    LotusClient,
    LotusError,
    LotusProtocolError,
    LotusRPCError,
    LotusUnavailable,
    MinerInfo,
)
from tests.fake_lotus import FakeLotusServer
from tests.helpers import free_port


def test_call_returns_result_and_tipset(rpc: LotusClient, lotus: FakeLotusServer) -> None:
    head = rpc.chain_head()
    assert head.height == lotus.chain.head_height
    assert all(c["/"].startswith("bafy2bzace") for c in head.key)
    assert rpc.call("StateNetworkVersion", None) == 28


def test_rpc_error_is_typed_with_code_and_message(rpc: LotusClient) -> None:
    with pytest.raises(LotusRPCError) as info:
        rpc.call("StateMarketStorageDeal", 999_999_999, None)
    assert info.value.code == 1
    assert "deal 999999999 not found" in info.value.message
    assert info.value.method == "StateMarketStorageDeal"


def test_method_not_found_is_final_even_though_lotus_answers_http_500(
    rpc: LotusClient, lotus: FakeLotusServer
) -> None:
    with pytest.raises(LotusRPCError) as info:
        rpc.call("NoSuchMethod")
    assert info.value.code == -32601
    assert lotus.http_requests == 1  # not retried


def test_retries_http_503_then_succeeds(rpc: LotusClient, lotus: FakeLotusServer) -> None:
    lotus.faults.http_status(503, times=2)
    assert rpc.chain_head().height == lotus.chain.head_height
    assert lotus.http_requests == 3


def test_an_answer_nested_too_deep_is_a_protocol_error(
    rpc: LotusClient, lotus: FakeLotusServer
) -> None:
    """JSON nested 100,000 deep raised RecursionError out of the client (and out of a
    locations request that read a provider's addresses); now a node that sends it is wrong."""
    lotus.faults.raw_body(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(LotusProtocolError, match="without a JSON-RPC body"):
        rpc.chain_head()


def test_retries_dropped_connections(rpc: LotusClient, lotus: FakeLotusServer) -> None:
    lotus.faults.drop_connection(times=2)
    assert rpc.chain_head().height == lotus.chain.head_height
    assert lotus.http_requests == 3


def test_timeout_is_retried(lotus: FakeLotusServer) -> None:
    lotus.faults.delay(1.5, times=1)
    with LotusClient(lotus.url, timeout=0.5, retries=2, backoff=0.01) as client:
        assert client.chain_head().height == lotus.chain.head_height
        assert client.http_requests == 2


def test_gives_up_after_retries_naming_the_url(lotus: FakeLotusServer) -> None:
    lotus.faults.http_status(503, times=10)
    slept: list[float] = []
    with (
        LotusClient(lotus.url, retries=3, backoff=0.5, sleep=slept.append) as client,
        pytest.raises(LotusUnavailable, match=lotus.url.replace(".", r"\.")) as info,
    ):
        client.chain_head()
    assert "HTTP 503" in str(info.value)
    assert len(slept) == 3
    # exponential backoff with jitter: each delay within [base·2^n / 2, base·2^n]
    for attempt, delay in enumerate(slept):
        assert 0.25 * 2**attempt <= delay <= 0.5 * 2**attempt


def test_unreachable_endpoint() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/rpc/v1"
    with (
        LotusClient(url, retries=1, backoff=0.01) as client,
        pytest.raises(LotusUnavailable, match=f"127.0.0.1:{port}") as info,
    ):
        client.chain_head()
    assert "ConnectError" in info.value.reason


def test_batch_answers_in_call_order_with_per_call_errors(
    rpc: LotusClient, lotus: FakeLotusServer
) -> None:
    answers = rpc.batch(
        [
            ("StateMarketStorageDeal", (5083158, None)),
            ("StateMarketStorageDeal", (1, None)),
            ("StateNetworkVersion", (None,)),
        ]
    )
    assert answers[0]["Proposal"]["Provider"] == "f01240"
    assert isinstance(answers[1], LotusRPCError) and "not found" in answers[1].message
    assert answers[2] == 28
    assert lotus.http_requests == 1
    assert lotus.requests["StateMarketStorageDeal"] == 2


def test_bearer_token_is_sent(chain) -> None:  # type: ignore[no-untyped-def]
    with FakeLotusServer(chain, token="s3cret") as server:
        with LotusClient(server.url, token="s3cret") as client:
            assert client.chain_head().height == chain.head_height
        with (
            LotusClient(server.url, token="wrong", retries=0) as client,
            pytest.raises(LotusError, match="LOTUS_RPC_TOKEN"),
        ):
            client.chain_head()


def test_finalized_tipset_and_fallback_on_v0(lotus: FakeLotusServer) -> None:
    with LotusClient(lotus.url, retries=0) as client:
        finalized, head = client.finalized_tipset()
        assert head is None
        assert finalized.height == lotus.chain.head_height - 900
    # /rpc/v0 has no ChainGetFinalizedTipSet: head − 900 instead
    with LotusClient(lotus.url_v0, retries=0) as client:
        finalized, head = client.finalized_tipset()
        assert head is not None and head.height == lotus.chain.head_height
        assert finalized.height == lotus.chain.head_height - 900


def test_state_miner_info_reads_peer_id_and_binary_multiaddrs(
    rpc: LotusClient, lotus: FakeLotusServer
) -> None:
    lotus.chain.set_miner_addrs(
        "f01234", ["/ip4/127.0.0.1/tcp/7777/http", "/ip4/10.0.0.1/tcp/24001"], peer_id="12D3KooW"
    )
    info = rpc.state_miner_info("f01234")
    assert info.peer_id == "12D3KooW"
    assert info.multiaddrs == ["BH8AAAEGHmHgAw==", "BAoAAAEGXcE="]
    # a miner that never set its addresses: PeerId and Multiaddrs null
    assert rpc.state_miner_info("f09") == MinerInfo(peer_id=None, multiaddrs=[])


def test_state_miner_info_bounds_what_a_miner_put_on_chain(
    rpc: LotusClient, lotus: FakeLotusServer
) -> None:
    lotus.chain.set_miner_info(
        "f01234",
        peer_id="x" * (MAX_PEER_ID + 1),
        multiaddrs=[7, None, "A" * (MAX_MULTIADDR_BASE64 + 4)] + ["BH8AAAEGHmHgAw=="] * 100,
    )
    info = rpc.state_miner_info("f01234")
    assert info.peer_id is None
    assert info.multiaddrs == ["BH8AAAEGHmHgAw=="] * MAX_MINER_MULTIADDRS
    lotus.chain.set_miner_info("f01234", multiaddrs={"not": "a list"})  # type: ignore[arg-type]
    with pytest.raises(LotusProtocolError, match="Multiaddrs"):
        rpc.state_miner_info("f01234")


def test_a_bounded_client_refuses_a_larger_answer(lotus: FakeLotusServer) -> None:
    lotus.chain.set_miner_info("f01234", multiaddrs=["A" * 1000] * 200)
    with (
        LotusClient(lotus.url, retries=0, timeout=5, max_response_bytes=65536) as client,
        pytest.raises(LotusProtocolError, match="more than 65536 bytes"),
    ):
        client.state_miner_info("f01234")
    with LotusClient(lotus.url, retries=0, timeout=5, max_response_bytes=65536) as client:
        assert client.chain_head().height == lotus.chain.head_height  # small answers pass


def test_state_miner_infos_answers_several_in_one_batch(
    rpc: LotusClient, lotus: FakeLotusServer
) -> None:
    lotus.chain.set_miner_addrs("f01234", ["/dns/sp.example/tcp/443/https"])
    lotus.faults.rpc_error("StateMinerInfo", message="actor not found")
    first, second = rpc.state_miner_infos(["f01234", "f01234"])
    assert isinstance(first, LotusRPCError) and "actor not found" in first.message
    assert isinstance(second, MinerInfo)
    assert second.multiaddrs == ["NQpzcC5leGFtcGxlBgG7uwM="]
    assert lotus.http_requests == 1


def test_a_bounded_client_cuts_off_a_node_that_drips_its_answer() -> None:
    """Headers at once, then a byte every 0.2 s: each read is quick, the whole is not."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100000\r\n\r\n")  # fmt: skip
            while not stop.is_set():
                try:
                    conn.sendall(b" ")
                except OSError:
                    return
                time.sleep(0.2)

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/rpc/v1"
    started = time.monotonic()
    try:
        with (
            LotusClient(url, retries=0, timeout=1, max_response_bytes=65536) as client,
            pytest.raises(LotusUnavailable, match="ReadTimeout"),
        ):
            client.state_miner_info("f01234")
        assert time.monotonic() - started < 2.5
    finally:
        stop.set()
        listener.close()
