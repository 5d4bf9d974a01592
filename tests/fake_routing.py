"""A fake delegated router (`GET /routing/v1/providers/{cid}`) in cid.contact's shape: a
real HTTP server on 127.0.0.1 for retrieval tests instead of mocking httpx.

    with FakeRouting() as router:              # router.url == "http://127.0.0.1:<port>"
        router.add(cid, sp.multiaddr)          # a provider serving HTTP (gateway metadata)
        ...                                    # router.requests counts lookups by CID

What cid.contact does that the spec does not (indexstar's delegated translator): 404 when
it knows no provider (the spec says 200 with none), keys sorted, each protocol also a key
holding the base64 of its metadata (`"transport-ipfs-gateway-http": "oBIA"`).
`oversize` answers with a body larger than any real one, for the size bound; `nest_depth`
with JSON nested that deep, for the nesting bound.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import ThreadingHTTPServer
from typing import Any

from executor.cids import InvalidCID, normalize_cid
from tests.fake_server import FakeHandler, FakeHTTPServer, ServedFake

GATEWAY_METADATA = "oBIA"  # 0x0920 transport-ipfs-gateway-http, no payload
BITSWAP_METADATA = "gBI="  # 0x0900 transport-bitswap


class FakeRouting(ServedFake):
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.providers: dict[str, list[dict[str, Any]]] = {}
        self.requests: Counter[str] = Counter()
        self.oversize = False
        self.nest_depth = 0  # answer JSON nested this deep instead (under the size bound)
        self.status: int | None = None  # answer every lookup with this status instead
        self._lock = threading.Lock()
        super().__init__(host=host, port=port)

    def add(
        self,
        cid: str,
        *addrs: str,
        peer_id: str = "12D3KooWFakeProvider",
        protocol: str = "transport-ipfs-gateway-http",
    ) -> None:
        metadata = GATEWAY_METADATA if protocol.endswith("gateway-http") else BITSWAP_METADATA
        record = {
            "Addrs": list(addrs),
            "ID": peer_id,
            "Protocols": [protocol],
            "Schema": "peer",
            protocol: metadata,
        }
        self.providers.setdefault(normalize_cid(cid), []).append(record)

    def _server(self, address: tuple[str, int]) -> ThreadingHTTPServer:
        return _HTTPServer(address, _Handler)


class _HTTPServer(FakeHTTPServer):
    fake: FakeRouting


class _Handler(FakeHandler):
    server: _HTTPServer

    def do_GET(self) -> None:
        fake = self.server.fake
        prefix = "/routing/v1/providers/"
        if not self.path.startswith(prefix):
            return self._send(404, b"404 page not found\n", "text/plain")
        try:
            cid = normalize_cid(self.path[len(prefix) :].split("?")[0])
        except InvalidCID:
            return self._send(400, b"invalid cid\n", "text/plain")
        with fake._lock:
            fake.requests[cid] += 1
        if fake.status is not None:
            return self._send(fake.status, b"error\n", "text/plain")
        if fake.nest_depth:
            body = b'{"Providers": ' + b"[" * fake.nest_depth + b"]" * fake.nest_depth + b"}"
            return self._send(200, body, "application/json")
        if fake.oversize:
            filler = [{"Schema": "peer", "ID": "x" * 100, "Addrs": []}] * 20000
            return self._send(200, json.dumps({"Providers": filler}).encode(), "application/json")
        records = fake.providers.get(cid)
        if not records:
            return self._send(404, b"", "text/plain")  # cid.contact: 404 for none
        body = json.dumps({"Providers": records}, sort_keys=True).encode()
        return self._send(200, body, "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(body)
