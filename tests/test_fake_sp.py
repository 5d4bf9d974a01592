"""The fake storage provider and router behave as the real ones do where retrieval cares:
the piece's length (booster-http or Curio), Range and HEAD, 404s, CAR bodies; cid.contact's
404 for none."""

from __future__ import annotations

import io

import httpx
import pytest

from executor.car import CarReader
from executor.cids import cid_from_bytes
from executor.commp import unpadded_size
from executor.embedded_store import EmbeddedStore
from tests.fake_routing import FakeRouting
from tests.fake_sp import FakeSP

DATA = bytes(range(256)) * 10


@pytest.mark.parametrize("curio", [False, True])
def test_a_piece_whole_in_ranges_and_by_head(curio: bool) -> None:
    with FakeSP(curio=curio) as sp:
        piece = sp.add_piece(DATA)
        body = DATA if curio else DATA + bytes(unpadded_size(piece.size) - len(DATA))
        url = f"{sp.url}/piece/{piece.cid}"
        whole = httpx.get(url)
        assert whole.status_code == 200 and whole.content == body
        assert whole.headers["Etag"] == f'"{piece.cid}"'
        assert whole.headers["Content-Type"] == "application/piece"
        part = httpx.get(url, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == body[100:200]
        assert part.headers["Content-Range"] == f"bytes 100-199/{len(body)}"
        tail = httpx.get(url, headers={"Range": "bytes=-10"})
        assert tail.content == body[-10:]
        assert httpx.get(url, headers={"Range": f"bytes={len(body)}-"}).status_code == 416
        head = httpx.head(url)
        assert head.status_code == 200 and head.headers["Content-Length"] == str(len(body))
        assert head.content == b""
        assert httpx.get(f"{sp.url}/piece/{piece.cid[:-2]}aa").status_code in (400, 404)
        assert sp.requests[f"/piece/{piece.cid}"] == 5


def test_a_car_of_a_stored_dag(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = EmbeddedStore(tmp_path / "sp")
    cid = store.add_bytes(DATA)
    with FakeSP(store) as sp:
        answer = httpx.get(f"{sp.url}/ipfs/{cid}?format=car")
        assert answer.status_code == 200
        reader = CarReader(io.BytesIO(answer.content))
        assert [cid_from_bytes(root) for root in reader.roots] == [cid]
        assert httpx.get(f"{sp.url}/ipfs/{cid}").status_code == 406
        other = EmbeddedStore(tmp_path / "x").add_bytes(b"elsewhere")
        assert httpx.get(f"{sp.url}/ipfs/{other}?format=car").status_code == 404


def test_the_router_answers_in_cid_contacts_shape() -> None:
    cid = "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"
    with FakeRouting() as router:
        assert httpx.get(f"{router.url}/routing/v1/providers/{cid}").status_code == 404
        router.add(cid, "/ip4/127.0.0.1/tcp/7777/http", peer_id="12D3KooWX")
        body = httpx.get(f"{router.url}/routing/v1/providers/{cid}").json()
        assert body == {
            "Providers": [
                {
                    "Addrs": ["/ip4/127.0.0.1/tcp/7777/http"],
                    "ID": "12D3KooWX",
                    "Protocols": ["transport-ipfs-gateway-http"],
                    "Schema": "peer",
                    "transport-ipfs-gateway-http": "oBIA",
                }
            ]
        }
        assert router.requests[cid] == 2
