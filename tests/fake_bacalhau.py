"""A Bacalhau orchestrator's read API on 127.0.0.1, as its Go server (v1.4) answers it:
`GET /api/v1/orchestrator/jobs` with labels, order_by, reverse, limit and offset paging
through `next_token` (base64url without padding of "sortBy:Y|N:limit:offset",
pkg/models/paging_token.go), `GET /jobs/{id}` and `GET /jobs/{id}/executions`, paged too.

Jobs and executions are bodies built by tests/dashboard/bacalhau/shapes.py. `hang_after`
makes the server stop answering after that many requests (a pass killed mid-way), and
`requests` records every path asked, for tests of what a pass reads.

It can be hostile, as any peer may be (tests and benchmarks/bench_bacalhau_hostile.py):
- `endless_pages`: the list of jobs runs that many pages (a large number: it never ends),
  each page 100 jobs never seen before and a next token;
- `nest_depth`: every answer is JSON nested that deep (`[[[…]]]` in `Items`);
- `answer_bytes`: every list of jobs is a valid JSON answer of exactly that many bytes, sent
  in 64 KiB writes (the server never holds it whole);
- `no_length`: answers have no Content-Length: the body ends when the connection closes;
- `drip_s`: every answer is sent one byte at a time, this many seconds apart;
- `failing_jobs`: the executions of these jobs answer HTTP 500, every time.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def _token(sort_by: str, reverse: bool, limit: int, offset: int) -> str:
    text = f"{sort_by}:{'Y' if reverse else 'N'}:{limit}:{offset}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _untoken(token: str) -> tuple[str, bool, int, int]:
    text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    sort_by, reverse, limit, offset = text.split(":")
    return sort_by, reverse == "Y", int(limit), int(offset)


class FakeOrchestrator:
    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.executions: dict[str, list[dict[str, Any]]] = {}
        self.requests: list[str] = []
        self.hang_after: int | None = None
        self.fail_with: int | None = None  # answer every request with this HTTP status
        self.endless_pages = 0
        self.no_length = False
        self.nest_depth: int | None = None
        self.answer_bytes: int | None = None
        self.drip_s: float | None = None
        self.failing_jobs: set[str] = set()
        self.released = threading.Event()
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()

    def put(self, job: dict[str, Any], *executions: dict[str, Any]) -> None:
        with self.lock:
            self.jobs[job["ID"]] = job
            self.executions[job["ID"]] = list(executions)

    def _endless_page(self, query: dict[str, list[str]]) -> dict[str, Any]:
        """Page n of a list that never ends: 100 jobs never seen before, each older than the
        last, and the token of page n + 1."""
        page = _untoken(query["next_token"][0])[3] // 100 if "next_token" in query else 0
        newest = 1_900_000_000 * 10**9 - page * 100
        items = []
        for n in range(100):
            item = dict(next(iter(self.jobs.values()))) if self.jobs else {"Labels": {}}
            item.update(ID=f"j-endless-{page}-{n}", ModifyTime=newest - n, CreateTime=newest - n)
            items.append(item)
        more = page + 1 < self.endless_pages
        next_token = _token("modified_at", True, 100, (page + 1) * 100) if more else ""
        return {"Items": items, "NextToken": next_token}

    def _list_jobs(self, query: dict[str, list[str]]) -> dict[str, Any]:
        if self.endless_pages:
            return self._endless_page(query)
        if "next_token" in query:
            sort_by, reverse, limit, offset = _untoken(query["next_token"][0])
        else:
            sort_by = query.get("order_by", ["created_at"])[0]
            reverse = query.get("reverse", ["false"])[0].lower() in ("1", "t", "true")
            limit = int(query.get("limit", ["0"])[0])
            offset = 0
        wanted = query.get("labels", [])
        jobs = [j for j in self.jobs.values() if all(label in j["Labels"] for label in wanted)]
        field = {"created_at": "CreateTime", "modified_at": "ModifyTime"}[sort_by]
        jobs.sort(key=lambda j: (j[field], j["ID"]), reverse=reverse)
        page = jobs[offset : offset + limit] if limit else jobs[offset:]
        more = bool(limit) and offset + limit < len(jobs)
        next_token = _token(sort_by, reverse, limit, offset + limit) if more else ""
        return {"Items": page, "NextToken": next_token}

    def _list_executions(self, job_id: str, query: dict[str, list[str]]) -> dict[str, Any]:
        if "next_token" in query:
            _, _, limit, offset = _untoken(query["next_token"][0])
        else:
            limit, offset = int(query.get("limit", ["0"])[0]), 0
        items = self.executions[job_id]
        page = items[offset : offset + limit] if limit else items
        more = bool(limit) and offset + limit < len(items)
        return {
            "Items": page,
            "NextToken": _token("created_at", False, limit, offset + limit) if more else "",
        }

    def _answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        parts = path.strip("/").split("/")
        if parts[:3] != ["api", "v1", "orchestrator"] or len(parts) < 4 or parts[3] != "jobs":
            return 404, {"error": "not found"}
        with self.lock:
            if len(parts) == 4:
                return 200, self._list_jobs(query)
            job_id = parts[4]
            if len(parts) == 6 and job_id in self.failing_jobs:
                return 500, {"error": "boom", "code": 500}
            if job_id not in self.jobs:
                return 404, {"error": f"job not found: {job_id}", "code": 404}
            if len(parts) == 5:
                return 200, {"Job": self.jobs[job_id]}
            if parts[5] == "executions":
                return 200, self._list_executions(job_id, query)
        return 404, {"error": "not found"}

    def _encode(self, path: str, body: Any) -> tuple[int, Iterator[bytes]]:
        """The answer's length and its bytes, in pieces; hostile when asked to be."""
        if self.nest_depth is not None:
            data = b'{"Items": [' + b"[" * self.nest_depth + b"]" * self.nest_depth + b"]}"
            return len(data), iter([data])
        if self.answer_bytes is not None and path.rstrip("/").endswith("/orchestrator/jobs"):
            head, tail = b'{"Items": [], "NextToken": "", "Padding": "', b'"}'
            padding = max(0, self.answer_bytes - len(head) - len(tail))

            def pieces() -> Iterator[bytes]:
                yield head
                left = padding
                while left:
                    size = min(left, 1 << 16)
                    yield b"x" * size
                    left -= size
                yield tail

            return len(head) + padding + len(tail), pieces()
        data = json.dumps(body).encode()
        return len(data), iter([data])

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, Nagle's algorithm and
            # the client's delayed ACK hold the body 40 ms.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                with fake.lock:
                    fake.requests.append(self.path)
                    count = len(fake.requests)
                if fake.hang_after is not None and count > fake.hang_after:
                    fake.released.wait(120)
                    return
                if fake.fail_with is not None:
                    status, body = fake.fail_with, {"error": "unavailable"}
                else:
                    status, body = fake._answer(url.path, parse_qs(url.query))
                length, chunks = fake._encode(url.path, body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                if fake.no_length:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                else:
                    self.send_header("Content-Length", str(length))
                self.end_headers()
                try:
                    for chunk in chunks:
                        if fake.drip_s is None:
                            self.wfile.write(chunk)
                            continue
                        for byte in chunk:
                            if fake.released.wait(fake.drip_s):
                                return
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                except OSError:  # the client gave up
                    self.close_connection = True

        return Handler
