"""The production gunicorn (gunicorn.conf.py, dashboard/gunicorn_worker.py) with real workers.

gunicorn runs from the repository root serving `app` below, which answers with the pid of
the worker that served the request, after sleeping `?sleep=S` seconds if asked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from tests.helpers import ROOT, answers, free_port, wait_until

APP = "tests.dashboard.test_gunicorn_worker:app"


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    sleep = float(parse_qs(environ.get("QUERY_STRING", "")).get("sleep", ["0"])[0])
    time.sleep(sleep)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@contextmanager
def gunicorn(*args: str) -> Iterator[str]:
    """gunicorn with gunicorn.conf.py and `args`; yields its base URL."""
    port = free_port()
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", APP, "-c", "gunicorn.conf.py"]
            + ["-b", f"127.0.0.1:{port}", "--access-logfile", "/dev/null", *args],
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:

            def up() -> bool:
                if process.poll() is not None:
                    output.seek(0)
                    raise AssertionError(f"gunicorn exited:\n{output.read().decode()}")
                return answers(base)

            wait_until(up, "gunicorn", timeout=30)
            yield base
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                raise


def pid_of(base: str, sleep: float = 0, timeout: float = 30) -> int:
    return int(httpx.get(f"{base}/?sleep={sleep}", timeout=timeout).text)


@pytest.mark.slow
def test_a_request_longer_than_the_timeout_finishes() -> None:
    # The arbiter's timeout is 2 s; the request takes 5.
    with gunicorn("-w", "1", "--timeout", "2") as base:
        before = pid_of(base)
        assert pid_of(base, sleep=5) == before
        assert pid_of(base) == before  # the same worker, never killed and replaced


@pytest.mark.slow
def test_the_stock_sync_worker_is_killed_in_such_a_request() -> None:
    """What the heartbeat is for: the same request on gunicorn's own sync worker."""
    with gunicorn("-w", "1", "--timeout", "2", "-k", "sync") as base:
        before = pid_of(base)
        try:  # the arbiter aborts the worker: a 500 or a dropped connection
            answered = httpx.get(f"{base}/?sleep=5", timeout=30).status_code
        except httpx.TransportError:
            answered = None
        assert answered != 200
        assert pid_of(base) != before  # and starts another


@pytest.mark.slow
def test_a_busy_worker_takes_no_connections_while_another_is_free() -> None:
    """Requests wait in one line for whichever worker is free: while one worker serves a
    slow request, every other request goes to the other worker, without waiting."""
    with gunicorn("-w", "2") as base:
        slow: dict[str, int] = {}
        thread = threading.Thread(target=lambda: slow.update(pid=pid_of(base, sleep=6)))
        thread.start()
        time.sleep(0.5)  # the slow request is in a worker
        quick = {pid_of(base, timeout=10) for _ in range(20)}
        thread.join()
        # A quick request queued behind the slow one would carry the slow worker's pid.
        assert len(quick) == 1 and slow["pid"] not in quick


def test_the_access_log_never_shows_a_key_from_a_url(tmp_path: Path) -> None:
    """A Bacalhau node's key rides in its probe URL (gunicorn.conf.py's logger_class)."""
    access = tmp_path / "access.log"
    key = "fpk_" + "Ab3d" * 10
    with gunicorn("-w", "1", "--access-logfile", str(access)) as base:
        assert httpx.post(f"{base}/api/v1/bacalhau/probe/{key}").status_code == 200
    logged = access.read_text()
    assert f'"POST /api/v1/bacalhau/probe/{key[:12]}*** HTTP/1.1" 200' in logged, logged
    assert key[12:] not in logged
