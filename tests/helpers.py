"""Running manage.py in real subprocesses, for tests of commands, signals and processes."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import dj_database_url

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (once this returns)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


T = TypeVar("T")


def wait_until(check: Callable[[], T], what: str = "the condition", timeout: float = 60.0) -> T:
    """The first truthy value of check(), polled every 50 ms for up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def answers(url: str) -> bool:
    """Whether a server answers `url` over HTTP at all (any status)."""
    import httpx

    try:
        httpx.get(url, timeout=2)
    except httpx.TransportError:
        return False
    return True


def process_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """Environment for a child process with its own SQLite file under tmp_path, unless the
    caller passes DATABASE_URL."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="dashboard.settings", PYTHONWARNINGS="ignore")
    env.pop("DATABASE_URL", None)
    env.update(DATA_DIR=str(tmp_path / "data"), PYTHONPATH=str(ROOT))
    env.update(overrides)
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def spawn(env: dict[str, str], *args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,  # type: ignore[arg-type]
    )


def database_urls(tmp_path: Path) -> Iterator[str]:
    """Fresh databases for child processes, of the kind the suite runs on: SQLite files, or
    throw-away PostgreSQL databases (dropped when the generator is closed)."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        while True:
            yield f"sqlite:///{tmp_path / uuid.uuid4().hex}.sqlite3"
    import psycopg

    config = dj_database_url.parse(base)
    admin = psycopg.connect(
        host=config["HOST"],
        port=config["PORT"] or 5432,
        user=config["USER"],
        password=config["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
    created: list[str] = []
    try:
        while True:
            name = f"filplus_kill_{uuid.uuid4().hex[:12]}"
            admin.execute(f'CREATE DATABASE "{name}"')
            created.append(name)
            yield base.rsplit("/", 1)[0] + "/" + name
    finally:
        for name in created:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def redis_or_skip(url: str) -> None:
    """Skip (saying why) when Redis is not there; in CI it must be, so fail instead."""
    import pytest
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis at {url} is required in CI: {exc}")
        pytest.skip(f"no Redis at {url} ({exc}); .ci/run starts one")


def celery(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """A `celery -A dashboard …` process (worker, beat) with its output captured."""
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "dashboard", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@contextlib.contextmanager
def silent_node(asked: threading.Event | None = None) -> Iterator[str]:
    """A JSON-RPC URL whose server accepts connections and never answers: a client waits
    until its own timeout. Given `asked`, it is set once a request's first bytes arrive, so
    a test knows its client is waiting in the read (a fixed sleep raced a loaded machine)."""
    held: list[socket.socket] = []

    def listen(server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return  # the server socket was closed
            held.append(conn)  # kept open, never answered
            if conn.recv(1) and asked is not None:
                asked.set()

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        if asked is not None:
            threading.Thread(target=listen, args=(silent,), daemon=True).start()
        try:
            yield f"http://127.0.0.1:{silent.getsockname()[1]}/rpc/v1"
        finally:
            if asked is not None:
                silent.shutdown(socket.SHUT_RDWR)  # wakes the accept: the thread ends
            for conn in held:
                conn.close()
