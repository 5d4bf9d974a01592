"""Fixtures for tests that need a real Docker engine; a module imports the ones it uses:

    from tests.executor.docker_fixtures import docker_env_fixture  # noqa: F401

Each is registered under the name without `_fixture` (`docker_env`), so a test's parameter
does not shadow the import. Import the ones a fixture depends on too: pytest finds fixtures
in the test module, so `docker_env` needs `docker_host_fixture` and `docker_daemon_fixture`
there as well.

`docker_host` is the `unix://` address of a private dockerd (started once a session) on which
`tiny:1` exists; `debian_image` adds `local/debian-py:bookworm`; `docker_env` also points
DOCKER_HOST at the daemon for the test, as `executor.run.run_job` reads it from there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NoReturn

import pytest

from tests.executor.docker_daemon import (
    DockerDaemon,
    DockerDaemonError,
    debootstrap_missing,
    docker_missing,
)


def skip_or_fail(reason: str) -> NoReturn:
    """Skip a test that needs something absent; in CI (CI=true) fail instead."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: this test must run)")
    pytest.skip(f"NO DOCKER ENGINE TESTS: {reason}")


@pytest.fixture(scope="session", name="docker_daemon")
def docker_daemon_fixture() -> Iterator[DockerDaemon]:
    """A private dockerd for the session, stopped at its end."""
    missing = docker_missing()
    if missing:
        skip_or_fail(missing)
    daemon = DockerDaemon()
    try:
        daemon.start()
    except DockerDaemonError as exc:  # start() has stopped it again
        skip_or_fail(f"the Docker engine cannot start here: {exc}")
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session", name="docker_host")
def docker_host_fixture(docker_daemon: DockerDaemon) -> str:
    """The daemon's address, e.g. `unix:///tmp/fpd-x1y2z3/docker.sock`, with `tiny:1` on it."""
    try:
        docker_daemon.ensure_tiny_image()
    except DockerDaemonError as exc:
        skip_or_fail(str(exc))
    return docker_daemon.host


@pytest.fixture(scope="session", name="debian_image")
def debian_image_fixture(docker_daemon: DockerDaemon) -> str:
    """`local/debian-py:bookworm` on the daemon (debootstrap once, then a cached tar)."""
    missing = debootstrap_missing()
    if missing:
        skip_or_fail(missing)
    try:
        return docker_daemon.ensure_debian_image()
    except DockerDaemonError as exc:
        skip_or_fail(f"the Debian image cannot be built: {exc}")


@pytest.fixture(name="docker_env")
def docker_env_fixture(docker_host: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """DOCKER_HOST set to the session's daemon for this test."""
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    return docker_host
