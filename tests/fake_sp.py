"""A fake storage provider's HTTP retrieval (booster-http or Curio): a real HTTP server on
127.0.0.1 for retrieval tests and benchmarks instead of mocking httpx.

    sp = FakeSP(store)                         # store: an EmbeddedStore for /ipfs/
    piece = sp.add_piece(car_bytes)            # or add_piece_file(path); returns its Piece
    with sp:                                   # sp.url == "http://127.0.0.1:<port>"
        ...                                    # sp.requests counts requests by path

Standalone: `python -m tests.fake_sp --port 7777 --piece FILE [--piece FILE] [--curio]`
(prints its URL and each piece's CID and size).

Routes, as booster-http and Curio serve them (both go through Go's http.ServeContent):
- `GET|HEAD /piece/{pieceCid}`: the piece unpadded, not Fr32-expanded. booster-http sends
  the full unpadded length (the data, then zeros); with `curio=True`, only the data. A single
  `Range: bytes=a-b` gives 206 with `Content-Range`; an unknown piece 404. Headers:
  `Content-Type: application/piece`, a quoted `Etag` of the piece CID, `Accept-Ranges`.
- `GET /ipfs/{cid}?format=car` (or `Accept: application/vnd.ipld.car`): a CARv1 of the
  CID's DAG from the store, the CID as its root; 404 when the store lacks it.

`mode` makes it lie, for the retrieval tests: "flip" (one byte flipped), "other" (another
piece's bytes, or another DAG's CAR), "extra" (an unrelated block added), "missing" (a block
left out), "wrong-root" (the CAR names another root), "slow" (drips a byte every
`drip_s`), "truncate" (stops half way, having announced the whole length), "gzip" (gzips
though nobody asked), "error" (503), "endless" (zeros until the client hangs up), "html"
(a 200 error page).
"""

from __future__ import annotations

import argparse
import gzip
import io
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from executor.car import CarReader, write_car
from executor.cids import InvalidCID, normalize_cid
from executor.commp import Piece, commp, unpadded_size
from executor.embedded_store import EmbeddedStore
from executor.unixfs import CODEC_RAW, hash_block
from tests.fake_server import FakeHandler, FakeHTTPServer, ServedFake

MODES = (
    "honest",
    "flip",
    "other",
    "extra",
    "missing",
    "wrong-root",
    "slow",
    "truncate",
    "gzip",
    "error",
    "endless",
    "html",
)
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class _Stored:
    path: Path | None  # the data on disk (large pieces), or
    data: bytes | None  # in memory (small ones)
    piece: Piece

    def read(self, start: int, end: int) -> bytes:
        """Bytes [start, end) of the data, zeros past its end (the zero fill)."""
        size = self.piece.payload_size
        out = b""
        if start < size:
            stop = min(end, size)
            if self.data is not None:
                out = self.data[start:stop]
            else:
                assert self.path is not None
                with self.path.open("rb") as f:
                    f.seek(start)
                    out = f.read(stop - start)
        return out + bytes(end - start - len(out))


class FakeSP(ServedFake):
    """One fake provider in one mode; see the module docstring."""

    def __init__(
        self,
        store: EmbeddedStore | None = None,
        *,
        mode: str = "honest",
        curio: bool = False,
        drip_s: float = 0.05,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.store = store
        self.mode = mode
        self.curio = curio
        self.drip_s = drip_s
        self.pieces: dict[str, _Stored] = {}
        self.cars: dict[str, bytes] = {}  # CAR bodies served as is for /ipfs/{cid}
        self.other: bytes = b"another piece entirely" * 50  # what "other" serves
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        super().__init__(host=host, port=port)

    # --- content -------------------------------------------------------------------------------

    def add_piece(self, data: bytes, piece_size: int | None = None) -> Piece:
        piece = commp(data, piece_size=piece_size)
        self.pieces[piece.cid] = _Stored(None, data, piece)
        return piece

    def add_piece_file(self, path: Path, piece: Piece | None = None) -> Piece:
        """A piece whose data is a file (for large ones); `piece` when already computed."""
        if piece is None:
            with path.open("rb") as f:
                piece = commp(f)
        self.pieces[piece.cid] = _Stored(path, None, piece)
        return piece

    def serve_car(self, cid: str, car: bytes) -> None:
        """Answer /ipfs/{cid} with this CAR body, whatever it holds (a DAG bomb, say)."""
        self.cars[normalize_cid(cid)] = car

    def total_requests(self) -> int:
        with self._lock:
            return sum(self.requests.values())

    # --- server --------------------------------------------------------------------------------

    def _server(self, address: tuple[str, int]) -> ThreadingHTTPServer:
        return _HTTPServer(address, _Handler)

    @property
    def multiaddr(self) -> str:
        return f"/ip4/{self._host}/tcp/{self.port}/http"

    def _count(self, path: str) -> None:
        with self._lock:
            self.requests[path] += 1

    # --- bodies --------------------------------------------------------------------------------

    def car_of(self, cid: str) -> bytes | None:
        """The /ipfs/ CAR of `cid`, as this provider's mode has it."""
        if cid in self.cars:
            return self.cars[cid]
        if self.store is None or not self.store.has(cid):
            return None
        out = io.BytesIO()
        self.store.export_car(cid, out)
        honest = out.getvalue()
        if self.mode in ("extra", "missing", "wrong-root", "other"):
            return _rewrite_car(honest, self.mode, self.other)
        return honest


def _rewrite_car(car: bytes, mode: str, other: bytes) -> bytes:
    reader = CarReader(io.BytesIO(car))
    roots = reader.roots
    blocks = [(cid, block) for cid, _, block in reader]
    stranger = (hash_block(other, CODEC_RAW), other)
    if mode == "extra":
        blocks.append(stranger)
    elif mode == "missing" and len(blocks) > 1:
        blocks = blocks[:-1]
    elif mode == "wrong-root":
        roots = [stranger[0]]
        blocks.append(stranger)
    elif mode == "other":
        roots, blocks = [stranger[0]], [stranger]
    out = io.BytesIO()
    write_car(out, roots, blocks)
    return out.getvalue()


class _HTTPServer(FakeHTTPServer):
    fake: FakeSP


class _Handler(FakeHandler):
    server: _HTTPServer

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    def _route(self, head: bool) -> None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        fake._count(parts.path)
        try:
            if fake.mode == "error":
                return self._plain(503, b"service unavailable\n", head)
            if parts.path.startswith("/piece/"):
                return self._piece(parts.path[len("/piece/") :], head)
            if parts.path.startswith("/ipfs/"):
                query = parse_qs(parts.query)
                wants_car = query.get("format") == ["car"] or "application/vnd.ipld.car" in (
                    self.headers.get("Accept") or ""
                )
                if not wants_car:
                    return self._plain(406, b"only CARs here\n", head)
                return self._car(parts.path[len("/ipfs/") :], head)
            return self._plain(404, b"404 page not found\n", head)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on us: what the hostile modes are for

    def _plain(self, status: int, body: bytes, head: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _piece(self, text: str, head: bool) -> None:
        fake = self.server.fake
        try:
            cid = normalize_cid(text)
        except InvalidCID:
            return self._plain(400, b"bad piece CID\n", head)
        stored = fake.pieces.get(cid)
        if stored is None:
            return self._plain(404, b"piece not found\n", head)
        total = stored.piece.payload_size if fake.curio else unpadded_size(stored.piece.size)
        start, end, status = 0, total, 200
        wanted = self.headers.get("Range")
        if wanted is not None:
            match = _RANGE.fullmatch(wanted.strip())
            if match is None or (not match.group(1) and not match.group(2)):
                return self._plain(416, b"bad range\n", head)
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)) + 1, total) if match.group(2) else total
            else:  # a suffix: the last N bytes
                start = max(total - int(match.group(2)), 0)
            if start >= total or start >= end:
                return self._plain(416, b"range not satisfiable\n", head)
            status = 206
        headers = {
            "Content-Type": "application/piece",
            "Etag": f'"{cid}"',
            "Accept-Ranges": "bytes",
            "Cache-Control": "public, max-age=29030400, immutable",
            "Vary": "Accept-Encoding",
        }
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{total}"

        def body() -> Any:
            for offset in range(start, end, _CHUNK):
                yield stored.read(offset, min(offset + _CHUNK, end))

        if fake.mode == "other":
            other = fake.other
            return self._send(200, headers, len(other), iter([other]), head)
        return self._send(status, headers, end - start, body(), head)

    def _car(self, text: str, head: bool) -> None:
        fake = self.server.fake
        try:
            cid = normalize_cid(text.split("/")[0])
        except InvalidCID:
            return self._plain(400, b"bad CID\n", head)
        car = fake.car_of(cid)
        if car is None:
            return self._plain(404, b"not found\n", head)
        headers = {"Content-Type": "application/vnd.ipld.car;version=1;order=dfs;dups=n"}
        return self._send(200, headers, len(car), iter([car]), head)

    def _send(
        self, status: int, headers: dict[str, str], length: int, chunks: Any, head: bool
    ) -> None:
        fake = self.server.fake
        mode = fake.mode
        if mode == "html":
            return self._plain(200, b"<html><body>Oops, try again later</body></html>", head)
        if mode == "gzip":
            data = gzip.compress(b"".join(chunks))
            headers = {**headers, "Content-Encoding": "gzip"}
            chunks, length = iter([data]), len(data)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if mode == "endless":
            self.send_header("Connection", "close")
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        if head:
            return
        if mode == "endless":
            while True:
                self.wfile.write(bytes(1 << 16))
        sent = 0
        for chunk in chunks:
            if mode == "flip" and sent <= length // 2 < sent + len(chunk):
                at = length // 2 - sent
                chunk = chunk[:at] + bytes([chunk[at] ^ 0x01]) + chunk[at + 1 :]
            if mode == "truncate" and sent + len(chunk) > length // 2:
                self.wfile.write(chunk[: length // 2 - sent])
                self.wfile.flush()
                self.close_connection = True
                return
            if mode == "slow":
                for i in range(len(chunk)):
                    self.wfile.write(chunk[i : i + 1])
                    self.wfile.flush()
                    time.sleep(fake.drip_s)
            else:
                self.wfile.write(chunk)
            sent += len(chunk)


def _pack(sp: FakeSP, path: Path) -> tuple[Piece, str]:
    """Serve a CAR of `path` as a piece: (the piece, the CAR's root)."""
    with tempfile.TemporaryDirectory() as scratch:
        store = EmbeddedStore(Path(scratch))
        [*_, top] = store.add_path(path)
        car = io.BytesIO()
        store.export_car(top.cid, car)
    return sp.add_piece(car.getvalue()), top.cid


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve pieces as a fake storage provider.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7777)
    parser.add_argument("--piece", type=Path, action="append", default=[], metavar="FILE")
    parser.add_argument(
        "--car-of",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="pack FILE into a CAR (as `ipfs add --cid-version=1` would) and serve that piece",
    )
    parser.add_argument("--store", type=Path, default=None, help="an embedded store for /ipfs/")
    parser.add_argument("--curio", action="store_true", help="send the data only, no zero fill")
    parser.add_argument("--mode", default="honest", choices=MODES)
    args = parser.parse_args(argv)
    store = EmbeddedStore(args.store) if args.store is not None else None
    sp = FakeSP(store, mode=args.mode, curio=args.curio, host=args.host, port=args.port)
    pieces = [sp.add_piece_file(path) for path in args.piece]
    packed = [_pack(sp, path) for path in args.car_of]
    sp.start()
    sys.stdout.write(f"{sp.url}\n")
    for path, piece in zip(args.piece, pieces, strict=True):
        sys.stdout.write(f"{piece.cid} {piece.size} {path}\n")
    for piece, root in packed:  # the payload root is what a deal's label would name
        sys.stdout.write(f"{piece.cid} {piece.size} {root}\n")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sp.stop()


if __name__ == "__main__":
    main()
