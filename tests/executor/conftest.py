"""Fixtures for the executor tests: a real js-ipfs daemon and a KuboClient on it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from executor.kubo import KuboClient
from tests.executor.ipfs_daemon import JsIpfsDaemon, jsipfs_missing


def skip_or_fail(reason: str) -> None:
    """Skip a test that needs something absent; in CI (CI=true) fail instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: this test must run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def jsipfs_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JsIpfsDaemon]:
    """One offline js-ipfs daemon for the whole session (it takes seconds to start)."""
    missing = jsipfs_missing()
    if missing:
        skip_or_fail(missing)
    daemon = JsIpfsDaemon(tmp_path_factory.mktemp("jsipfs") / "repo")
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def jsipfs_url(jsipfs_daemon: JsIpfsDaemon) -> str:
    """The RPC URL of the session's js-ipfs daemon, e.g. `http://127.0.0.1:40123`."""
    return jsipfs_daemon.url


@pytest.fixture
def kubo(jsipfs_url: str) -> Iterator[KuboClient]:
    with KuboClient(jsipfs_url, timeout=30, find_timeout=2) as client:
        yield client
