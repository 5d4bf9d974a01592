"""Inputs fetched from storage providers (executor/retrieval.py) through real HTTP: fake
providers (tests/fake_sp.py), a fake router (tests/fake_routing.py), the embedded store.

Every provider that lies, stalls, truncates or overflows is skipped with its reason and the
next one used; what nobody can give fails the job naming every location tried; nothing
fetched is kept unless proven, and nothing is left on disk when a fetch fails.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from executor.api_client import DashboardClient
from executor.embedded_store import EmbeddedStore
from executor.locations import Location
from executor.pieces import PieceIndex
from executor.retrieval import RetrievalSettings
from executor.run import JobCancelled, JobFailed, RunResult, run_job
from executor.spec import parse_spec
from executor.unixfs import cid_text
from executor.wasm import ModuleCache
from tests.executor import hostile_dags as dags
from tests.executor import wat_modules as wat
from tests.fake_routing import FakeRouting
from tests.fake_sp import FakeSP

MiB = 1 << 20
HELLO = b"hello from a piece\n"


@pytest.fixture
def node(tmp_path: Path) -> EmbeddedStore:
    """Our compute node's store, empty of the inputs."""
    return EmbeddedStore(tmp_path / "node" / "ipfs")


@pytest.fixture
def sp_store(tmp_path: Path) -> EmbeddedStore:
    """What the providers hold."""
    return EmbeddedStore(tmp_path / "sp")


@pytest.fixture
def folder(sp_store: EmbeddedStore, tmp_path: Path) -> str:
    """A payload: a folder with hello.txt and a 600 KiB file (several blocks)."""
    top = tmp_path / "payload"
    top.mkdir()
    (top / "hello.txt").write_bytes(HELLO)
    (top / "big.bin").write_bytes(bytes(range(256)) * 2400)
    return sp_store.add_path(top)[-1].cid


def car_of(store: EmbeddedStore, cid: str) -> bytes:
    out = io.BytesIO()
    store.export_car(cid, out)
    return out.getvalue()


@pytest.fixture
def servers() -> Iterator[list[FakeSP | FakeRouting]]:
    started: list[FakeSP | FakeRouting] = []
    yield started
    for server in started:
        server.stop()


def start(servers: list[FakeSP | FakeRouting], server: FakeSP | FakeRouting) -> FakeSP:
    server.start()
    servers.append(server)
    return server  # type: ignore[return-value]


def reader_spec(node: EmbeddedStore, cid: str, path: str, name: str, **item: object) -> object:
    """A job that prints the first 4 KiB of `name` in the folder its input is mounted in."""
    return parse_spec(
        {
            "engine": "wasm",
            "wasm": {"module": node.add_bytes(wat.clock_random_and_input(name))},
            "inputs": [{"cid": cid, "path": path, **item}],
        }
    )


def run(
    node: EmbeddedStore,
    spec: object,
    tmp_path: Path,
    locations: Sequence[Location] | None = None,
    *,
    input_limit: int = 64 * MiB,
    **settings: object,
) -> RunResult:
    retrieval = RetrievalSettings(piece_dir=tmp_path / "node" / "pieces", **settings)  # type: ignore[arg-type]
    locate = (lambda _cid: list(locations)) if locations is not None else None
    (tmp_path / "work").mkdir(parents=True, exist_ok=True)
    return run_job(
        spec,  # type: ignore[arg-type]
        node,
        cache=ModuleCache(None),
        workdir=tmp_path / "work",
        locate=locate,
        retrieval=retrieval,
        input_limit=input_limit,
    )


def stdout(node: EmbeddedStore, result: RunResult) -> bytes:
    return node.cat(result.stdout_cid)


def nothing_left(tmp_path: Path, node: EmbeddedStore) -> None:
    (tmp_path / "work").mkdir(exist_ok=True)
    assert list((tmp_path / "work").iterdir()) == []
    assert list((node.root / "staging").glob("*")) == []


# --- pieces -------------------------------------------------------------------------------------


def test_a_piece_holding_a_car_is_mounted_as_its_dag(
    node: EmbeddedStore, sp_store: EmbeddedStore, folder: str, tmp_path: Path, servers: list
) -> None:
    sp = start(servers, FakeSP())
    piece = sp.add_piece(car_of(sp_store, folder))
    where = Location(sp.url, "f01234", piece.cid, piece.size, folder, "claim 7")
    result = run(node, reader_spec(node, piece.cid, "/in", "hello.txt"), tmp_path, [where])
    assert result.exit_code == 0
    assert HELLO in stdout(node, result)
    [record] = result.inputs
    assert record["cid"] == piece.cid and record["path"] == "/in"
    assert record["verified"] == "piece"
    assert record["provider"] == "f01234"
    assert record["url"] == f"{sp.url}/piece/{piece.cid}"
    # booster-http sends the whole unpadded piece: the CAR and its zero fill
    assert record["bytes"] == piece.size // 128 * 127
    assert [a["ok"] for a in record["attempts"]] == [True]
    assert result.to_json()["inputs"] == [record]
    assert node.has(folder) and folder in node.pins()
    entry = PieceIndex(tmp_path / "node" / "pieces").get(piece.cid, raw=False)
    assert entry is not None and (entry.form, entry.cid, entry.piece_size) == (
        "car",
        folder,
        piece.size,
    )
    nothing_left(tmp_path, node)


def test_a_piece_of_unknown_size_from_curio(
    node: EmbeddedStore, sp_store: EmbeddedStore, folder: str, tmp_path: Path, servers: list
) -> None:
    # Curio sends only the data; with no size given, the size is the one whose root matches.
    car = car_of(sp_store, folder)
    sp = start(servers, FakeSP(curio=True))
    piece = sp.add_piece(car, piece_size=4 * MiB)  # larger than the smallest that fits
    result = run(
        node, reader_spec(node, piece.cid, "/in", "hello.txt"), tmp_path, [Location(sp.url)]
    )
    assert HELLO in stdout(node, result)
    assert result.inputs[0]["bytes"] == len(car)
    entry = PieceIndex(tmp_path / "node" / "pieces").get(piece.cid, raw=False)
    assert entry is not None and entry.piece_size == 4 * MiB


def test_a_piece_that_is_not_a_car_is_one_file(
    node: EmbeddedStore, tmp_path: Path, servers: list
) -> None:
    data = b"just bytes, no CAR here\n" * 100
    sp = start(servers, FakeSP(curio=True))
    piece = sp.add_piece(data)
    result = run(
        node, reader_spec(node, piece.cid, "/in/data.bin", "data.bin"), tmp_path, [Location(sp.url)]
    )
    assert data[:1000] in stdout(node, result)
    entry = PieceIndex(tmp_path / "node" / "pieces").get(piece.cid, raw=False)
    assert entry is not None and entry.form == "raw"
    # the whole unpadded piece, zero-filled, whatever length the provider sent
    assert node.cat(entry.cid) == data + bytes(piece.size // 128 * 127 - len(data))


def test_raw_asks_for_the_bytes_of_a_car(
    node: EmbeddedStore, sp_store: EmbeddedStore, folder: str, tmp_path: Path, servers: list
) -> None:
    car = car_of(sp_store, folder)
    sp = start(servers, FakeSP())
    piece = sp.add_piece(car)
    spec = reader_spec(node, piece.cid, "/in/piece.car", "piece.car", raw=True)
    result = run(node, spec, tmp_path, [Location(sp.url, piece_size=piece.size)])
    assert car[:2000] in stdout(node, result)
    index = PieceIndex(tmp_path / "node" / "pieces")
    entry = index.get(piece.cid, raw=True)
    assert entry is not None and entry.form == "raw"
    assert node.cat(entry.cid)[: len(car)] == car
    assert index.get(piece.cid, raw=False) is None  # the DAG form was never made
    assert not node.has(folder)


def test_a_deal_label_that_is_not_a_root_of_the_car_skips_that_provider(
    node: EmbeddedStore, sp_store: EmbeddedStore, folder: str, tmp_path: Path, servers: list
) -> None:
    sp = start(servers, FakeSP())
    piece = sp.add_piece(car_of(sp_store, folder))
    other = sp_store.add_bytes(b"something else")
    wrong = Location(sp.url, "f01", piece.cid, piece.size, payload_cid=other)
    right = Location(sp.url, "f02", piece.cid, piece.size, payload_cid=folder)
    result = run(node, reader_spec(node, piece.cid, "/in", "hello.txt"), tmp_path, [wrong, right])
    first, second = result.inputs[0]["attempts"]
    assert not first["ok"] and f"payload {other} is not a root" in first["reason"]
    assert second["ok"] and result.inputs[0]["provider"] == "f02"


PIECE_LIES = {
    "flip": "CommP is",
    "other": "CommP is",
    "truncate": "RemoteProtocolError",
    "gzip": "Content-Encoding gzip",
    "error": "HTTP 503",
    "html": "CommP is",
    "endless": "sent more than",
    "slow": "not done after",
}


@pytest.mark.parametrize("mode", sorted(PIECE_LIES))
def test_a_lying_piece_provider_is_skipped(
    mode: str,
    node: EmbeddedStore,
    sp_store: EmbeddedStore,
    folder: str,
    tmp_path: Path,
    servers: list,
) -> None:
    car = car_of(sp_store, folder)
    liar = start(servers, FakeSP(mode=mode, drip_s=0.01))
    honest = start(servers, FakeSP())
    piece = liar.add_piece(car)
    honest.add_piece(car)
    size = None if mode == "endless" else piece.size  # unknown size: the input limit cuts it
    locations = [Location(liar.url, "f0666", piece_size=size), Location(honest.url, "f0777")]
    spec = reader_spec(node, piece.cid, "/in", "hello.txt")
    result = run(node, spec, tmp_path, locations, timeout_s=1.0, input_limit=8 * MiB)
    assert HELLO in stdout(node, result)
    lie, good = result.inputs[0]["attempts"]
    assert (lie["provider"], lie["ok"]) == ("f0666", False)
    assert PIECE_LIES[mode] in lie["reason"]
    assert (good["provider"], good["ok"]) == ("f0777", True)
    assert result.inputs[0]["provider"] == "f0777"
    if mode == "slow":
        assert lie["seconds"] < 3
    nothing_left(tmp_path, node)


def test_a_piece_larger_than_the_input_limit_is_refused(
    node: EmbeddedStore, sp_store: EmbeddedStore, folder: str, tmp_path: Path, servers: list
) -> None:
    sp = start(servers, FakeSP())
    piece = sp.add_piece(car_of(sp_store, folder), piece_size=8 * MiB)
    spec = reader_spec(node, piece.cid, "/in", "hello.txt")
    with pytest.raises(JobFailed, match="would send 8323072 bytes, more than 1048576") as err:
        run(node, spec, tmp_path, [Location(sp.url, "f01")], input_limit=MiB)
    assert f"f01 {sp.url}/piece/{piece.cid}: " in str(err.value)
    nothing_left(tmp_path, node)
    assert not node.has(folder)


# --- payloads -----------------------------------------------------------------------------------


def test_a_payload_by_car(
    node: EmbeddedStore, sp_store: EmbeddedStore, folder: str, tmp_path: Path, servers: list
) -> None:
    sp = start(servers, FakeSP(sp_store))
    result = run(
        node, reader_spec(node, folder, "/in", "hello.txt"), tmp_path, [Location(sp.url, "f01")]
    )
    assert HELLO in stdout(node, result)
    record = result.inputs[0]
    assert record["verified"] == "blocks"
    assert record["url"] == f"{sp.url}/ipfs/{folder}?format=car&dag-scope=all"
    assert folder in node.pins()
    nothing_left(tmp_path, node)


PAYLOAD_LIES = {
    "flip": "does not match its hash",
    "other": "the CAR's root is",
    "missing": "neither in the CAR nor stored",
    "wrong-root": "the CAR's root is",
    "truncate": "RemoteProtocolError",
    "gzip": "Content-Encoding gzip",
    "error": "HTTP 503",
    "html": "not a CAR",
    "endless": "sent more than",
    "slow": "not done after",
}


@pytest.mark.parametrize("mode", sorted(PAYLOAD_LIES))
def test_a_lying_gateway_is_skipped(
    mode: str,
    node: EmbeddedStore,
    sp_store: EmbeddedStore,
    folder: str,
    tmp_path: Path,
    servers: list,
) -> None:
    liar = start(servers, FakeSP(sp_store, mode=mode, drip_s=0.01))
    honest = start(servers, FakeSP(sp_store))
    spec = reader_spec(node, folder, "/in", "hello.txt")
    locations = [Location(liar.url, "f0666"), Location(honest.url, "f0777")]
    result = run(node, spec, tmp_path, locations, timeout_s=1.0, input_limit=8 * MiB)
    assert HELLO in stdout(node, result)
    lie, good = result.inputs[0]["attempts"]
    assert not lie["ok"] and PAYLOAD_LIES[mode] in lie["reason"], lie["reason"]
    assert good["ok"] and good["provider"] == "f0777"
    nothing_left(tmp_path, node)


def test_extra_blocks_are_not_kept(
    node: EmbeddedStore, sp_store: EmbeddedStore, folder: str, tmp_path: Path, servers: list
) -> None:
    # The DAG asked for is whole and proven; a block no root reaches is dropped, not stored.
    sp = start(servers, FakeSP(sp_store, mode="extra"))
    result = run(node, reader_spec(node, folder, "/in", "hello.txt"), tmp_path, [Location(sp.url)])
    assert HELLO in stdout(node, result)
    stranger = sp_store.add_bytes(sp.other)
    assert not node.has(stranger)


def test_a_payload_from_the_piece_that_holds_it(
    node: EmbeddedStore, sp_store: EmbeddedStore, folder: str, tmp_path: Path, servers: list
) -> None:
    # A provider with /ipfs/ off (no store): the location's piece is fetched and proven.
    sp = start(servers, FakeSP())
    piece = sp.add_piece(car_of(sp_store, folder))
    where = Location(sp.url, "f01", piece.cid, piece.size)
    result = run(node, reader_spec(node, folder, "/in", "hello.txt"), tmp_path, [where])
    assert HELLO in stdout(node, result)
    ipfs, by_piece = result.inputs[0]["attempts"]
    assert ipfs["reason"] == "HTTP 404" and by_piece["ok"]
    assert result.inputs[0]["verified"] == "piece"


def test_a_dag_bomb_is_cut_at_the_input_limit(
    node: EmbeddedStore, tmp_path: Path, servers: list
) -> None:
    car, root = dags.many_tiny_blocks_car(2000)  # 2000 blocks: 8 MB on disk from 8 KB of data
    sp = start(servers, FakeSP())
    sp.serve_car(cid_text(root), car)
    spec = reader_spec(node, cid_text(root), "/in/f", "f")
    with pytest.raises(JobFailed, match="take more than 1048576 bytes on disk"):
        run(node, spec, tmp_path, [Location(sp.url, "f01")], input_limit=MiB)
    nothing_left(tmp_path, node)
    assert not node.has(cid_text(root))


def test_a_dag_that_declares_too_much_fails_as_a_local_one_would(
    node: EmbeddedStore, tmp_path: Path, servers: list
) -> None:
    blocks: list[tuple[bytes, bytes]] = []
    root = dags.doubling_dirs(lambda cid, block: blocks.append((cid, block)), 40)
    sp = start(servers, FakeSP())
    sp.serve_car(cid_text(root), dags.car_of(root, blocks))
    spec = reader_spec(node, cid_text(root), "/in", "x")
    with pytest.raises(JobFailed, match="the inputs declare more than their limit"):
        run(node, spec, tmp_path, [Location(sp.url)], input_limit=MiB)
    nothing_left(tmp_path, node)


# --- where from ---------------------------------------------------------------------------------


def test_nobody_has_it(node: EmbeddedStore, tmp_path: Path, servers: list) -> None:
    empty = start(servers, FakeSP())
    broken = start(servers, FakeSP(mode="error"))
    router = start(servers, FakeRouting())
    missing = node.add_bytes(b"x")  # a real CID, then make the node forget it
    fresh = EmbeddedStore(tmp_path / "other" / "ipfs")
    spec = reader_spec(fresh, missing, "/in/x", "x")
    with pytest.raises(JobFailed) as err:
        run(
            fresh,
            spec,
            tmp_path,
            [Location(empty.url, "f01"), Location(broken.url, "f02")],
            ipni_url=router.url,
            gateways=(empty.url,),
        )
    lines = str(err.value).splitlines()
    assert lines[0] == (
        f"inputs.0: {missing} is not in the IPFS store and no location could give it (4 tried):"
    )
    assert lines[1:] == [
        f"  f01 {empty.url}/ipfs/{missing}?format=car&dag-scope=all: HTTP 404",
        f"  f02 {broken.url}/ipfs/{missing}?format=car&dag-scope=all: HTTP 503",
        f"  routing {router.url}/routing/v1/providers/{missing}: no provider",
        f"  {empty.url}/ipfs/{missing}?format=car&dag-scope=all: HTTP 404",
    ]


def test_without_any_source_the_message_is_as_before(node: EmbeddedStore, tmp_path: Path) -> None:
    missing = EmbeddedStore(tmp_path / "elsewhere").add_bytes(b"x")
    with pytest.raises(JobFailed, match=f"^inputs.0: {missing} was not found in the IPFS store$"):
        run(node, reader_spec(node, missing, "/in/x", "x"), tmp_path)


def test_a_second_run_does_no_network(
    node: EmbeddedStore, sp_store: EmbeddedStore, folder: str, tmp_path: Path, servers: list
) -> None:
    sp = start(servers, FakeSP(sp_store))
    piece = sp.add_piece(car_of(sp_store, folder))
    for cid in (piece.cid, folder):
        spec = reader_spec(node, cid, "/in", "hello.txt")
        first = run(node, spec, tmp_path, [Location(sp.url)])
        asked = sp.total_requests()
        second = run(node, spec, tmp_path, [Location(sp.url)])
        assert sp.total_requests() == asked
        assert second.result_cid == first.result_cid
        assert second.inputs[0]["verified"] == "store"
        assert second.inputs[0]["attempts"] == [] and second.inputs[0]["bytes"] == 0
    # the payload was already there from the piece: no /ipfs/ request at all
    assert sp.requests[f"/ipfs/{folder}"] == 0


def test_routing_only(
    node: EmbeddedStore, sp_store: EmbeddedStore, folder: str, tmp_path: Path, servers: list
) -> None:
    sp = start(servers, FakeSP(sp_store))
    piece = sp.add_piece(car_of(sp_store, folder))
    router = start(servers, FakeRouting())
    router.add(folder, "/ip4/127.0.0.1/udp/1/quic-v1", sp.multiaddr, peer_id="12D3KooWGood")
    router.add(folder, sp.multiaddr, peer_id="12D3KooWBitswap", protocol="transport-bitswap")
    router.add(piece.cid, sp.multiaddr, peer_id="12D3KooWPiece")
    result = run(node, reader_spec(node, folder, "/in", "hello.txt"), tmp_path, ipni_url=router.url)
    assert HELLO in stdout(node, result)
    assert result.inputs[0]["provider"] == "12D3KooWGood"
    assert len(result.inputs[0]["attempts"]) == 1  # the bitswap-only record was not tried
    fresh = EmbeddedStore(tmp_path / "fresh" / "ipfs")
    spec = reader_spec(fresh, piece.cid, "/in", "hello.txt")
    result = run(fresh, spec, tmp_path / "fresh", ipni_url=router.url)
    assert result.inputs[0]["verified"] == "piece"
    assert result.inputs[0]["provider"] == "12D3KooWPiece"


def test_an_oversized_routing_answer_is_refused(
    node: EmbeddedStore, sp_store: EmbeddedStore, folder: str, tmp_path: Path, servers: list
) -> None:
    sp = start(servers, FakeSP(sp_store))
    router = start(servers, FakeRouting())
    router.oversize = True
    spec = reader_spec(node, folder, "/in", "hello.txt")
    result = run(node, spec, tmp_path, ipni_url=router.url, gateways=(sp.url,))
    routing, gateway = result.inputs[0]["attempts"]
    assert "answer larger than" in routing["reason"] and gateway["ok"]


def test_a_routing_answer_nested_too_deep_is_one_failed_attempt(
    node: EmbeddedStore, sp_store: EmbeddedStore, folder: str, tmp_path: Path, servers: list
) -> None:
    sp = start(servers, FakeSP(sp_store))
    router = start(servers, FakeRouting())
    router.nest_depth = 100_000  # 200 KB: within the size bound, past Python's recursion
    spec = reader_spec(node, folder, "/in", "hello.txt")
    result = run(node, spec, tmp_path, ipni_url=router.url, gateways=(sp.url,))
    routing, gateway = result.inputs[0]["attempts"]
    assert "nested too deep" in routing["reason"] and gateway["ok"]


def test_gateway_only(
    node: EmbeddedStore, sp_store: EmbeddedStore, folder: str, tmp_path: Path, servers: list
) -> None:
    sp = start(servers, FakeSP(sp_store))
    result = run(node, reader_spec(node, folder, "/in", "hello.txt"), tmp_path, gateways=(sp.url,))
    assert HELLO in stdout(node, result)
    assert result.inputs[0]["provider"] is None
    assert result.inputs[0]["url"].startswith(sp.url + "/ipfs/")


def test_a_failing_dashboard_is_one_more_attempt(
    node: EmbeddedStore, sp_store: EmbeddedStore, folder: str, tmp_path: Path, servers: list
) -> None:
    sp = start(servers, FakeSP(sp_store))

    def locate(_cid: str) -> list[Location]:
        raise ConnectionError("cannot reach the dashboard")

    result = run_job(
        reader_spec(node, folder, "/in", "hello.txt"),  # type: ignore[arg-type]
        node,
        cache=ModuleCache(None),
        locate=locate,
        retrieval=RetrievalSettings(gateways=(sp.url,)),
    )
    failed, ok = result.inputs[0]["attempts"]
    assert failed["reason"] == "locations: cannot reach the dashboard" and ok["ok"]


class _Dashboard(BaseHTTPRequestHandler):
    """`GET /api/v1/locations/{cid}` as the dashboard answers it (docs/api.md's shape)."""

    answers: ClassVar[dict[str, tuple[int, object]]] = {}
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        type(self).seen.append((self.path, self.headers.get("Authorization")))
        status, body = type(self).answers.get(self.path, (404, {"error": {"code": "not_found"}}))
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def dashboard() -> Iterator[str]:
    _Dashboard.answers, _Dashboard.seen = {}, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Dashboard)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_the_dashboards_locations_through_its_api(
    node: EmbeddedStore,
    sp_store: EmbeddedStore,
    folder: str,
    tmp_path: Path,
    servers: list,
    dashboard: str,
) -> None:
    sp = start(servers, FakeSP())
    piece = sp.add_piece(car_of(sp_store, folder))
    where = Location(sp.url, "f01234", piece.cid, piece.size, folder, "claim 7")
    _Dashboard.answers[f"/api/v1/locations/{piece.cid}"] = (
        200,
        {
            "cid": piece.cid,
            "kind": "piece",
            "piece_size": piece.size,
            "blessed": True,
            "locations": [where.to_json()],
        },
    )
    _Dashboard.answers[f"/api/v1/locations/{folder}"] = (
        500,
        {"error": {"code": "server_error", "message": "boom"}},
    )
    with DashboardClient(dashboard, "fp_node_key") as client:
        assert client.locations(piece.cid) == [where]
        spec = reader_spec(node, piece.cid, "/in", "hello.txt")
        result = run_job(spec, node, cache=ModuleCache(None), locate=client.locations)  # type: ignore[arg-type]
        assert HELLO in stdout(node, result)
        assert result.inputs[0]["provider"] == "f01234"
        fresh = EmbeddedStore(tmp_path / "fresh")
        spec = reader_spec(fresh, folder, "/in", "hello.txt")
        with pytest.raises(JobFailed) as err:
            run_job(spec, fresh, cache=ModuleCache(None), locate=client.locations)  # type: ignore[arg-type]
    assert str(err.value).splitlines()[1] == "  locations: HTTP 500: boom"
    assert _Dashboard.seen[0] == (f"/api/v1/locations/{piece.cid}", "Bearer fp_node_key")


def test_the_jobs_wall_time_and_cancel_stop_a_fetch(
    node: EmbeddedStore, sp_store: EmbeddedStore, folder: str, tmp_path: Path, servers: list
) -> None:
    # Not a provider's failure: the job stops, whatever the request's own time allows.
    sp = start(servers, FakeSP(mode="slow", drip_s=0.01))
    piece = sp.add_piece(car_of(sp_store, folder))
    module = node.add_bytes(wat.clock_random_and_input("hello.txt"))
    spec = parse_spec(
        {
            "engine": "wasm",
            "wasm": {"module": module},
            "inputs": [{"cid": piece.cid, "path": "/in"}],
            "limits": {"timeout_s": 1},
        }
    )
    began = time.monotonic()
    with pytest.raises(JobFailed, match=r"^wall-time limit exceeded while fetching inputs.0"):
        run(node, spec, tmp_path, [Location(sp.url)])
    assert time.monotonic() - began < 5
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    with pytest.raises(JobCancelled):
        run_job(
            reader_spec(node, piece.cid, "/in", "hello.txt"),  # type: ignore[arg-type]
            node,
            cache=ModuleCache(None),
            workdir=tmp_path / "work",
            locate=lambda _cid: [Location(sp.url)],
            cancel=cancel,
        )
    nothing_left(tmp_path, node)
