"""Fixtures for the Airflow tests: a private dockerd (when possible), one live dashboard and one
migrated Airflow home, shared by every test here (`airflow db migrate` runs once). Package
scope: they stop when the last Airflow test is done, before the rest of the suite starts its
own dockerd."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator

import pytest

from tests.airflow.harness import (
    Airflow,
    Dashboard,
    airflow_missing,
    skip_or_fail,
    start_dashboard,
    stop,
)
from tests.executor.docker_daemon import DockerDaemon, DockerDaemonError, docker_missing


def _no_docker(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the pipeline's Docker stage must run)")
    message = (
        f"NO DOCKER ENGINE: {reason}. The example pipeline's second stage runs as a WASM job "
        "instead; its Docker stage is NOT tested in this run."
    )
    sys.stderr.write(f"\n*** {message}\n\n")
    warnings.warn(pytest.PytestWarning(message), stacklevel=2)


@pytest.fixture(scope="package")
def airflow_installed() -> None:
    missing = airflow_missing()
    if missing:
        skip_or_fail(missing)


@pytest.fixture(scope="package")
def airflow_docker_host(airflow_installed: None) -> Iterator[str | None]:
    """A private dockerd with `tiny:1` on it, or None (said loudly) when there can be none."""
    missing = docker_missing()
    if missing:
        _no_docker(missing)
        yield None
        return
    daemon = DockerDaemon()
    try:
        daemon.start()
    except DockerDaemonError as exc:  # start() has stopped it again
        _no_docker(f"the Docker engine cannot start here: {exc}")
        yield None
        return
    try:
        daemon.ensure_tiny_image()
        yield daemon.host
    except DockerDaemonError as exc:
        _no_docker(str(exc))
        yield None
    finally:
        daemon.stop()


@pytest.fixture(scope="package")
def dashboard(
    tmp_path_factory: pytest.TempPathFactory, airflow_docker_host: str | None
) -> Iterator[Dashboard]:
    proc, live = start_dashboard(tmp_path_factory.mktemp("dashboard"), airflow_docker_host)
    try:
        yield live
    finally:
        stop(proc)


@pytest.fixture(scope="package")
def airflow(tmp_path_factory: pytest.TempPathFactory, dashboard: Dashboard) -> Airflow:
    af = Airflow(home=tmp_path_factory.mktemp("airflow-home"), dashboard=dashboard)
    migrated = af.run("db", "migrate")
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    return af
