"""The balanced gthread worker (dashboard/gunicorn_worker.py) under a real gunicorn.

gunicorn runs from the repository root with gunicorn.conf.py and 2 workers, serving `app`
below, which answers with the pid of the worker that served the connection. Clients are raw
sockets: a burst connects every socket before sending any request, as wrk and the compute
nodes' pools do, and keeps them open.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.dashboard.test_gunicorn_worker:app"
BURST = 32
log = logging.getLogger(__name__)  # the splits and waits: pytest --log-cli-level=INFO
TIMEOUT_S = 10.0  # generous: for a response to arrive, a worker to boot, a count to settle


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """`/` answers the worker's pid; `/counts` the balancing table's connection counts."""
    if environ["PATH_INFO"] == "/counts":
        from dashboard.gunicorn_worker import connection_counts

        body = json.dumps(connection_counts()).encode()
    else:
        body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


class Conn:
    """One kept-alive HTTP/1.1 connection on a raw socket."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
        self.pid = 0

    def send(self, path: str = "/") -> None:
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())

    def receive(self) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            data += self._recv()
        head, body = data.split(b"\r\n\r\n", 1)
        assert head.startswith(b"HTTP/1.1 200"), head
        match = re.search(rb"\r\ncontent-length: *(\d+)", head, re.IGNORECASE)
        assert match, head
        while len(body) < int(match[1]):
            body += self._recv()
        return body

    def ask_pid(self) -> int:
        self.send()
        self.pid = int(self.receive())
        return self.pid

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        return chunk

    def close(self) -> None:
        self.sock.close()


class Gunicorn:
    """`python -m gunicorn APP -c gunicorn.conf.py -w 2` on a free port of 127.0.0.1."""

    def __init__(self, *extra: str) -> None:
        # stdout (the access log) and stderr to a file: a pipe would fill up
        self.output = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", APP, "-c", "gunicorn.conf.py"]
            + ["-w", "2", "-b", "127.0.0.1:0", *extra],
            cwd=ROOT,
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )
        self.conns: list[Conn] = []
        try:
            listening = until(lambda: re.search(rb"Listening at: http://[\d.]+:(\d+)", self.text()))
            self.port = int(listening[1])
            self.wait_serving()
        except BaseException:
            self.stop()
            raise

    def text(self) -> bytes:
        assert self.proc.poll() is None, "gunicorn exited"
        self.output.seek(0)
        return self.output.read()

    def workers(self) -> set[int]:
        pids = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid:
                pids.add(int(stat.parent.name))
        return pids

    def wait_serving(self) -> set[int]:
        """Until 2 workers run and each has answered a fresh connection (it has booted)."""
        answered: set[int] = set()

        def all_answered() -> set[int] | None:
            workers = self.workers()
            conn = Conn(self.port)
            answered.add(conn.ask_pid())
            conn.close()
            return workers if len(workers) == 2 and workers <= answered else None

        return until(all_answered)

    def open(self, count: int) -> Counter[int]:
        """Connect `count` sockets, then send one request on each; keep them open."""
        new = [Conn(self.port) for _ in range(count)]
        for conn in new:
            conn.send()
        for conn in new:
            conn.pid = int(conn.receive())
        self.conns += new
        return self.split()

    def split(self) -> Counter[int]:
        return Counter(conn.pid for conn in self.conns)

    def counts(self) -> list[int]:
        conn = Conn(self.port)
        conn.send("/counts")
        counts = json.loads(conn.receive())
        conn.close()
        return counts

    def close(self, conns: list[Conn] | None = None) -> None:
        """Close `conns` (all by default) and let the workers count them out."""
        for conn in self.conns if conns is None else conns:
            conn.close()
        self.conns = [conn for conn in self.conns if conns is not None and conn not in conns]
        self.settle()

    def settle(self) -> None:
        """With the balanced worker, until the workers count only the connections held (and
        the probe asking); the stock worker has no counts to wait on."""
        until(lambda: (counts := self.counts()) == [] or sum(counts) == len(self.conns) + 1)

    def stop(self) -> None:
        for conn in self.conns:
            conn.close()
        # SIGTERM, not SIGQUIT: a gthread worker (stock too) deadlocks when SIGQUIT lands
        # while its main thread is in ThreadPoolExecutor.submit (handle_quit calls shutdown,
        # which takes the lock submit holds), until the master kills it 30 s later.
        workers = self.workers()
        self.proc.terminate()
        try:
            self.proc.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            for pid in workers:  # they would outlive a killed master
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.proc.kill()
            self.proc.wait()
        self.output.close()


def until(check: Callable[[], Any]) -> Any:
    """The first truthy value of check(), polled for TIMEOUT_S."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"gave up waiting for {check}"
        time.sleep(0.05)


@pytest.fixture
def balanced() -> Iterator[Gunicorn]:
    server = Gunicorn()
    yield server
    server.stop()


def assert_balanced(split: Counter[int], workers: set[int], spread: int = 2) -> None:
    assert set(split) == workers, (split, workers)
    assert max(split.values()) - min(split.values()) <= spread, split


def test_bursts_of_kept_alive_connections_split_evenly(balanced: Gunicorn) -> None:
    workers = balanced.workers()
    for _ in range(5):
        started = time.perf_counter()
        split = balanced.open(BURST)
        took_ms = (time.perf_counter() - started) * 1000
        log.info("balanced split: %s, all answered in %.1f ms", sorted(split.values()), took_ms)
        assert_balanced(split, workers)
        counts = balanced.counts()  # the shared table agrees, with the probe asking
        assert len(counts) == 2 and sum(counts) == BURST + 1, counts
        balanced.close()


def test_stock_worker_runs_under_the_same_harness() -> None:
    """`-k gthread` overrides gunicorn.conf.py's worker: the hooks leave it alone, and its
    split is whatever the kernel makes of it (logged, not asserted)."""
    stock = Gunicorn("-k", "gthread")
    try:
        workers = stock.workers()
        for _ in range(5):
            started = time.perf_counter()
            split = stock.open(BURST)
            took_ms = (time.perf_counter() - started) * 1000
            log.info("stock split: %s, all answered in %.1f ms", sorted(split.values()), took_ms)
            assert set(split) <= workers and sum(split.values()) == BURST
            assert stock.counts() == []  # no balancing slot was handed out
            stock.close()
            time.sleep(0.2)  # no counts to wait on: let the workers see the closes
    finally:
        stock.stop()


def test_a_killed_workers_slot_is_freed_and_its_replacement_takes_new_connections(
    balanced: Gunicorn,
) -> None:
    split = balanced.open(BURST)
    assert_balanced(split, balanced.workers())
    victim, survivor = split
    os.kill(victim, signal.SIGKILL)
    balanced.close([conn for conn in balanced.conns if conn.pid == victim])

    # Until the replacement serves, the survivor takes the new connections alone.
    workers = balanced.wait_serving()
    assert survivor in workers and victim not in workers
    balanced.settle()
    # Two live slots: the victim's was freed (a stale one would still count its connections).
    assert len(balanced.counts()) == 2

    balanced.open(BURST - len(balanced.conns))
    log.info("split after the kill: %s", sorted(balanced.split().values()))
    assert_balanced(balanced.split(), workers)

    balanced.close()
    assert_balanced(balanced.open(BURST), workers)


def test_an_idle_least_loaded_worker_that_stopped_accepting_resumes(balanced: Gunicorn) -> None:
    """Three connections split 2/1; closing the two of one worker leaves the other over the
    least count. New connections, one at a time, are each answered and balance again.

    Opened one after another, new connections can find every worker stopped: the one that
    took the last connection stopped above the least count, while the least loaded had
    stopped earlier and has had no event since. The stopping worker wakes it, or its 50 ms
    poll does (logged: how long each connection took to be answered)."""
    workers = balanced.workers()
    split = balanced.open(3)
    assert sorted(split.values()) == [1, 2]
    busier = max(split, key=split.__getitem__)
    balanced.close([conn for conn in balanced.conns if conn.pid == busier])

    waits = []
    for _ in range(7):
        started = time.perf_counter()
        split = balanced.open(1)
        waits.append(round((time.perf_counter() - started) * 1000, 1))
        # The other worker may still take the first: it last looked at the table before the
        # closes. Each worker accepts only at the least count after that.
        assert max(split.values()) - min(split[pid] for pid in workers) <= 2, split
    log.info("ms to answer each new connection: %s", waits)
    assert sorted(balanced.split().values()) == [4, 4]
