"""A fake delegated router (`GET /routing/v1/providers/{cid}`) in cid.contact's shape: a
real HTTP server on 127.0.0.1 for retrieval tests instead of mocking httpx.

    with FakeRouting() as router:              # router.url == "http://127.0.0.1:<port>"
        router.add(cid, sp.multiaddr)          # a provider serving HTTP (gateway metadata)
        ...                                    # router.requests counts lookups by CID

What cid.contact does that the spec does not (indexstar's delegated translator): 404 when
it knows no provider (the spec says 200 with none), keys sorted, each protocol also a key
holding the base64 of its metadata (`"transport-ipfs-gateway-http": "oBIA"`).
`oversize` answers with a body larger than any real one, for the size bound.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from executor.cids import InvalidCID, normalize_cid

GATEWAY_METADATA = "oBIA"  # 0x0920 transport-ipfs-gateway-http, no payload
BITSWAP_METADATA = "gBI="  # 0x0900 transport-bitswap


class FakeRouting:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.providers: dict[str, list[dict[str, Any]]] = {}
        self.requests: Counter[str] = Counter()
        self.oversize = False
        self.status: int | None = None  # answer every lookup with this status instead
        self._lock = threading.Lock()
        self._host = host
        self._port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

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

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def start(self) -> FakeRouting:
        self._httpd = _HTTPServer((self._host, self._port), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeRouting:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeRouting


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

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
