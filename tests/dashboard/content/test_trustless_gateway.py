"""`GET /ipfs/{cid}[/path]` as a trustless gateway: the answers' forms and headers through the
test client, then a real server read by independent verifying clients (@helia/verified-fetch
and @ipld/car, trustless_oracle.mjs) and by our own executor/car.py."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.test import Client

from dashboard.content import trustless
from executor.car import CarReader
from executor.embedded_store import EmbeddedStore
from executor.kubo import KuboClient
from executor.storage import Storage
from executor.unixfs import (
    CODEC_DAG_PB,
    DataType,
    cid_text,
    cid_to_bytes,
    decode_cid,
    decode_pbnode,
    decode_unixfs,
)
from tests.base import Personas
from tests.executor.ipfs_daemon import JsIpfsDaemon, jsipfs_missing
from tests.executor.node_oracles import node22, require_oracle, run_oracle
from tests.helpers import ROOT, answers, database_urls, free_port, manage, process_env, wait_until

CAR_TYPE = "application/vnd.ipld.car; version=1; order=dfs; dups=n"
ORACLE = Path(__file__).with_name("trustless_oracle.mjs")
BIG = os.urandom(3 * 262144 + 1000)  # four 256 KiB chunks: a root and four raw leaves


def make_folder(top: Path) -> Path:
    """A folder with a multi-block file (twice: its blocks are sent once), a small one and a
    subfolder."""
    (top / "sub").mkdir(parents=True)
    (top / "big.bin").write_bytes(BIG)
    (top / "small.txt").write_text("small\n")
    (top / "sub" / "inner.txt").write_text("inner\n")
    (top / "sub" / "big-copy.bin").write_bytes(BIG)
    return top


def make_sharded(top: Path) -> Path:
    """A folder with enough long names to be a HAMT (256 KiB of names and CIDs)."""
    top.mkdir(parents=True)
    for index in range(1200):
        (top / f"{index:04d}-{'n' * 200}").write_text(str(index % 7))
    return top


@dataclass
class Parsed:
    roots: list[str]
    blocks: list[tuple[str, bytes]]  # (CID, block), as sent

    @property
    def cids(self) -> list[str]:
        return [cid for cid, _ in self.blocks]


def parse_car(body: bytes) -> Parsed:
    """Our own reader: every block is checked against its CID's hash."""
    reader = CarReader(io.BytesIO(body))
    return Parsed(
        [cid_text(root) for root in reader.roots],
        [(cid_text(cid), block) for cid, _parts, block in reader],
    )


def dfs_order(root: str, blocks: dict[str, bytes]) -> list[str]:
    """The depth-first, first-visit order of the DAG under `root` over the blocks given (the
    order `order=dfs; dups=n` promises), stopping at blocks not given."""
    order: list[str] = []
    seen: set[bytes] = set()
    stack = [root]
    while stack:
        cid = stack.pop()
        parts, _ = decode_cid(cid_to_bytes(cid))
        if parts.multihash in seen or cid not in blocks:
            continue
        seen.add(parts.multihash)
        order.append(cid)
        if parts.codec == CODEC_DAG_PB:
            links = decode_pbnode(blocks[cid]).links
            stack.extend(cid_text(link.hash) for link in reversed(links))
    return order


# --- through the test client -----------------------------------------------------------------


@pytest.fixture
def store(settings, tmp_path: Path) -> EmbeddedStore:
    settings.DATA_DIR = tmp_path / "data"
    settings.IPFS_API_URL = None
    return EmbeddedStore(settings.DATA_DIR / "ipfs")


@pytest.fixture
def auth(personas: Personas) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {personas.node_key}"}


def body(response) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_a_car_answer_has_the_trustless_headers_and_verifies(
    client: Client, store: EmbeddedStore, auth: dict[str, str], tmp_path: Path
) -> None:
    root = store.add_path(make_folder(tmp_path / "folder"))[-1].cid
    for query, accept in (("?format=car", ""), ("", "application/vnd.ipld.car")):
        answer = client.get(f"/ipfs/{root}{query}", HTTP_ACCEPT=accept, **auth)
        assert answer.status_code == 200
        assert answer["Content-Type"] == CAR_TYPE
        assert answer["X-Content-Type-Options"] == "nosniff"
        assert answer["Cache-Control"] == "private, max-age=29030400, immutable"
        assert answer["Etag"] == f'"all-dfs-n-{root}.car"'
        assert answer["Content-Disposition"] == f'attachment; filename="{root}.car"'
        assert "Accept" in answer["Vary"]
        data = body(answer)
        assert int(answer["Content-Length"]) == len(data)
        car = parse_car(data)
        assert car.roots == [root] and car.cids[0] == root
        # Depth first, each block once: the big file's blocks appear once for its two copies.
        assert car.cids == dfs_order(root, dict(car.blocks))
        assert len(set(car.cids)) == len(car.cids) == 1 + 4 + 1 + 1 + 1 + 1  # 2 dirs, 4+1, 2
    negotiated = client.get(f"/ipfs/{root}?dag-scope=block", HTTP_ACCEPT=CAR_TYPE, **auth)
    assert negotiated["Content-Location"] == f"/ipfs/{root}?dag-scope=block&format=car"
    assert "Content-Location" not in client.get(f"/ipfs/{root}?format=car", **auth)


def test_dag_scopes_block_entity_and_all(
    client: Client, store: EmbeddedStore, auth: dict[str, str], tmp_path: Path
) -> None:
    root = store.add_path(make_folder(tmp_path / "folder"))[-1].cid
    big = store.add_bytes(BIG)

    def cids(cid: str, scope: str) -> list[str]:
        answer = client.get(f"/ipfs/{cid}?format=car&dag-scope={scope}", **auth)
        assert answer.status_code == 200, answer.content
        assert answer["Etag"] == f'"{scope}-dfs-n-{cid}.car"'
        car = parse_car(body(answer))
        assert car.roots == [cid]
        return car.cids

    assert cids(root, "block") == [root]
    assert cids(big, "block") == [big]
    assert cids(root, "entity") == [root]  # a folder's entity is its own node
    assert len(cids(big, "entity")) == 5  # a file's is all of it
    assert cids(big, "entity") == cids(big, "all")
    assert len(cids(root, "all")) == 9


def test_a_path_car_starts_with_the_blocks_that_verify_the_path(
    client: Client, store: EmbeddedStore, auth: dict[str, str], tmp_path: Path
) -> None:
    added = store.add_path(make_folder(tmp_path / "folder"))
    root, sub = added[-1].cid, next(e.cid for e in added if e.path.endswith("sub"))
    inner = store.add_bytes(b"inner\n")
    answer = client.get(f"/ipfs/{root}/sub/inner.txt?format=car", **auth)
    assert answer.status_code == 200
    assert answer["X-Ipfs-Roots"] == f"{root},{sub},{inner}"
    car = parse_car(body(answer))
    assert car.roots == [root] and car.cids == [root, sub, inner]
    blocks = dict(car.blocks)
    assert any(cid_text(link.hash) == sub for link in decode_pbnode(blocks[root]).links)
    assert any(cid_text(link.hash) == inner for link in decode_pbnode(blocks[sub]).links)
    missing = client.get(f"/ipfs/{root}/sub/nope?format=car", **auth)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_a_sharded_folders_entity_is_its_shards(
    client: Client, store: EmbeddedStore, auth: dict[str, str], tmp_path: Path
) -> None:
    root = store.add_path(make_sharded(tmp_path / "sharded"))[-1].cid
    car = parse_car(body(client.get(f"/ipfs/{root}?format=car&dag-scope=entity", **auth)))
    assert car.cids[0] == root and len(car.cids) > 1
    names = set()
    for _cid, block in car.blocks:
        node = decode_pbnode(block)
        assert node.data is not None and decode_unixfs(node.data).type == DataType.HAMT_SHARD
        names |= {link.name for link in node.links if link.name and len(link.name) > 2}
    assert len(names) == 1200
    name = f"0042-{'n' * 200}"
    path = parse_car(body(client.get(f"/ipfs/{root}/{name}?format=car", **auth)))
    assert path.cids[-1] == store.add_bytes(b"0") and set(path.cids[:-1]) <= set(car.cids)


def test_a_raw_block(client: Client, store: EmbeddedStore, auth: dict[str, str]) -> None:
    big = store.add_bytes(BIG)
    for query, accept in (("?format=raw", ""), ("", "application/vnd.ipld.raw")):
        answer = client.get(f"/ipfs/{big}{query}", HTTP_ACCEPT=accept, **auth)
        assert answer.status_code == 200
        assert answer["Content-Type"] == "application/vnd.ipld.raw"
        assert answer["Content-Disposition"] == f'attachment; filename="{big}.bin"'
        assert answer["Etag"] == f'"{big}.raw"'
        assert answer["X-Content-Type-Options"] == "nosniff"
        block = body(answer)
        parts, _ = decode_cid(cid_to_bytes(big))
        assert parts.verify(block) and decode_pbnode(block).links  # the root, not the file
    leaf = cid_text(decode_pbnode(block).links[0].hash)
    assert body(client.get(f"/ipfs/{leaf}?format=raw", **auth)) == BIG[:262144]


def test_head_says_whether_the_block_is_here_at_no_cost(
    client: Client, store: EmbeddedStore, auth: dict[str, str], settings
) -> None:
    big = store.add_bytes(BIG)
    settings.GATEWAY_BYTES_PER_HOUR = 1000
    for form, kind in (("car", CAR_TYPE), ("raw", "application/vnd.ipld.raw")):
        for _ in range(3):
            answer = client.head(f"/ipfs/{big}?format={form}", **auth)
            assert answer.status_code == 200 and answer["Content-Type"] == kind
            assert answer["Etag"] and answer["Content-Disposition"].startswith("attachment")
            assert body(answer) == b""
    assert client.head(f"/ipfs/{big}?format=raw", **auth)["Content-Length"] != "0"
    absent = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    assert client.head(f"/ipfs/{absent}?format=car", **auth).status_code == 404
    assert client.head(f"/ipfs/{absent}?format=raw", **auth).status_code == 404


def test_forms_not_served_are_refused_as_json(
    client: Client, store: EmbeddedStore, auth: dict[str, str]
) -> None:
    cid = store.add_bytes(b"x")

    def refused(url: str, status: int, code: str, accept: str = "") -> None:
        answer = client.get(url, HTTP_ACCEPT=accept, **auth)
        assert answer.status_code == status, (url, answer.content)
        assert answer.json()["error"]["code"] == code

    refused(f"/ipfs/{cid}?format=car&car-version=2", 400, "unsupported_format")
    refused(f"/ipfs/{cid}?format=car&car-dups=y", 400, "unsupported_format")
    refused(f"/ipfs/{cid}?format=tar", 400, "unsupported_format")
    refused(f"/ipfs/{cid}?format=car&entity-bytes=0:10", 400, "unsupported_format")
    refused(f"/ipfs/{cid}?format=car&dag-scope=most", 400, "invalid_dag_scope")
    refused(f"/ipfs/{cid}/a?format=raw", 400, "unsupported_format")
    refused(f"/ipfs/{cid}", 406, "not_acceptable", "application/vnd.ipld.car; version=2")
    refused(f"/ipfs/{cid}", 406, "not_acceptable", "application/vnd.ipld.car; dups=y")
    refused("/ipfs/not-a-cid?format=car", 400, "invalid_cid")
    absent = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
    refused(f"/ipfs/{absent}?format=car", 404, "not_found")
    refused(f"/ipfs/{absent}?format=raw", 404, "not_found")
    # A CAR form among others in Accept is chosen when one of them is ours.
    accept = "application/vnd.ipld.car; version=2, application/vnd.ipld.car; version=1; q=0.5"
    assert client.get(f"/ipfs/{cid}", HTTP_ACCEPT=accept, **auth)["Content-Type"] == CAR_TYPE
    # Browsers' Accept headers still get the content itself.
    page = client.get(f"/ipfs/{cid}", HTTP_ACCEPT="text/html,*/*;q=0.8", **auth)
    assert page["Content-Type"] == "application/octet-stream"


def test_limits_auth_and_revalidation_hold_for_cars_and_blocks(
    client: Client, store: EmbeddedStore, auth: dict[str, str], personas: Personas, settings
) -> None:
    big = store.add_bytes(BIG)
    assert client.get(f"/ipfs/{big}?format=car").status_code == 401
    assert client.get(f"/ipfs/{big}?format=raw").status_code == 401
    etag = client.get(f"/ipfs/{big}?format=car", **auth)["Etag"]
    assert client.get(f"/ipfs/{big}?format=car", HTTP_IF_NONE_MATCH=etag, **auth).status_code == 304
    settings.GATEWAY_MAX_RESPONSE_BYTES = 100_000
    for form in ("car", "raw"):
        too_large = client.get(f"/ipfs/{big}?format={form}", **auth)
        if form == "raw":  # the root block is small: only the CAR is refused
            assert too_large.status_code == 200
            continue
        assert too_large.status_code == 413
        assert too_large.json()["error"]["code"] == "response_too_large"
    settings.GATEWAY_MAX_RESPONSE_BYTES = 1 << 30
    settings.GATEWAY_BYTES_PER_HOUR = len(BIG) + 1000
    fresh = {"HTTP_AUTHORIZATION": f"Bearer {personas.notary_key}"}  # a budget of its own
    assert client.get(f"/ipfs/{big}?format=car", **fresh).status_code == 200
    over = client.get(f"/ipfs/{big}?format=car", **fresh)
    assert over.status_code == 429 and over.json()["error"]["code"] == "egress_limit"
    assert client.get(f"/ipfs/{big}?format=car&dag-scope=block", **fresh).status_code == 200
    assert client.get(f"/ipfs/{big}?format=raw", **fresh).status_code == 200


def car_from(store: Storage, cid: str, path: str, scope: trustless.Scope) -> bytes:
    out = io.BytesIO()
    trustless.write_car(store, cid, path, scope, out)
    return out.getvalue()


def test_with_an_ipfs_node_behind_the_store(tmp_path: Path) -> None:
    """The CARs and blocks come from any store's export_car: here a real node's (js-ipfs,
    Kubo's RPC), the export stopped after the block wanted."""
    missing = jsipfs_missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    daemon = JsIpfsDaemon(tmp_path / "repo")
    daemon.start()
    try:
        with KuboClient(daemon.url, timeout=30) as node:
            added = {e.path: e.cid for e in node.add_path(make_folder(tmp_path / "folder"))}
            root, big = added["folder"], added["folder/big.bin"]
            assert parse_car(car_from(node, root, "", "block")).cids == [root]
            whole = parse_car(car_from(node, root, "", "all"))
            assert whole.roots == [root] and len(whole.cids) == 9
            assert whole.cids == dfs_order(root, dict(whole.blocks))
            path = parse_car(car_from(node, root, "sub/big-copy.bin", "entity"))
            assert path.cids[:2] == [root, added["folder/sub"]] and path.cids[2] == big
            assert len(path.cids) == 2 + 5
            block = trustless.read_block(node, big)
            assert decode_cid(cid_to_bytes(big))[0].verify(block)
    finally:
        daemon.stop()


# --- a real server, read by independent verifying clients -------------------------------------


@dataclass
class Gateway:
    url: str
    key: str
    store: EmbeddedStore
    folder: str
    added: dict[str, str]  # path under the folder -> CID
    sharded: str


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    for package in ("@helia/verified-fetch", "helia", "@helia/http", "@ipld/car", "multiformats"):
        require_oracle(package)  # before the server starts, to skip (or fail) at once
    node22()
    tmp = tmp_path_factory.mktemp("gateway")
    databases = database_urls(tmp)
    env = process_env(tmp, DATABASE_URL=next(databases), API_RATE_LIMIT="0")
    env.pop("IPFS_API_URL", None)
    assert manage(env, "migrate", "-v0").returncode == 0
    made = manage(
        env, "create_api_key", "--scope", "node", "--name", "peer", "--provider", "f01234"
    )
    assert made.returncode == 0, made.stderr
    store = EmbeddedStore(tmp / "data" / "ipfs")
    added = {e.path: e.cid for e in store.add_path(make_folder(tmp / "folder"))}
    sharded = store.add_path(make_sharded(tmp / "sharded"))[-1].cid
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "dashboard.wsgi", "-c", "gunicorn.conf.py"]
        + ["-w", "2", "-b", f"127.0.0.1:{port}", "--access-logfile", "/dev/null"],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: answers(f"{url}/healthz"), "gunicorn")
        yield Gateway(url, made.stdout.split()[-1], store, added["folder"], added, sharded)
    finally:
        server.terminate()
        server.wait(timeout=30)
        databases.close()


def oracle(gateway: Gateway, mode: str, *args: str) -> dict:
    out = run_oracle(ORACLE.read_text(), mode, gateway.url, gateway.key, *args, node=node22())
    return json.loads(out)


def test_verified_fetch_reads_our_files_as_we_store_them(gateway: Gateway) -> None:
    root, sharded = gateway.folder, gateway.sharded
    paths = {
        gateway.added["folder/big.bin"]: BIG,
        f"{root}/big.bin": BIG,
        f"{root}/sub/big-copy.bin": BIG,
        f"{root}/small.txt": b"small\n",
        f"{root}/sub/inner.txt": b"inner\n",
        f"{sharded}/0042-{'n' * 200}": b"0",
    }
    fetched = oracle(gateway, "fetch", *paths)
    assert fetched["requests"] > len(paths)  # block by block, all from us
    for path, data in paths.items():
        ours = b"".join(gateway.store.iter_cat(_last_cid(gateway, path)))
        assert ours == data
        assert fetched["files"][path] == {
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
        }


def _last_cid(gateway: Gateway, path: str) -> str:
    cid, *names = path.split("/")
    for name in names:
        cid = next(e.cid for e in gateway.store.ls(cid) if e.name == name)
    return cid


def test_verified_fetch_rebuilds_the_dag_we_serve(gateway: Gateway) -> None:
    root = gateway.folder
    rebuilt = oracle(gateway, "dag", root)
    ours = parse_car(
        httpx.get(
            f"{gateway.url}/ipfs/{root}?format=car",
            headers={"Authorization": f"Bearer {gateway.key}"},
        ).content
    )
    # The same blocks: it walks the file's two copies, we send its blocks once.
    assert set(rebuilt["blocks"]) == set(ours.cids)
    assert (len(rebuilt["blocks"]), len(ours.cids)) == (9 + 5, 9)


@pytest.mark.parametrize("scope", ["all", "entity", "block"])
def test_ipld_car_verifies_every_block_we_send(gateway: Gateway, scope: str) -> None:
    big = gateway.added["folder/big.bin"]
    for cid, count in ((gateway.folder, {"all": 9, "entity": 1, "block": 1}), (big, None)):
        url = f"{gateway.url}/ipfs/{cid}?format=car&dag-scope={scope}"
        car = oracle(gateway, "car", url)
        assert car["contentType"] == CAR_TYPE
        assert car["roots"] == [cid] and car["blocks"][0] == cid
        expected = count[scope] if count else {"all": 5, "entity": 5, "block": 1}[scope]
        assert len(car["blocks"]) == expected
    sharded = oracle(gateway, "car", f"{gateway.url}/ipfs/{gateway.sharded}?format=car")
    assert len(sharded["blocks"]) > 3 and sharded["blocks"][0] == gateway.sharded
