"""Cancelling a running job stops exactly that job, on both engines, within a second or so."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from executor.embedded_store import EmbeddedStore
from executor.run import JobCancelled, module_cache, run_job
from executor.spec import parse_spec
from tests.executor import wat_modules as wat
from tests.executor.docker_fixtures import (  # noqa: F401 (fixtures, by their names)
    docker_daemon_fixture,
    docker_env_fixture,
    docker_host_fixture,
)


def _cancel_after(seconds: float) -> threading.Event:
    event = threading.Event()
    threading.Timer(seconds, event.set).start()
    return event


def test_a_running_wasm_job_stops_when_cancelled_and_others_go_on(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "ipfs")
    spin = parse_spec(
        {
            "engine": "wasm",
            "wasm": {"module": store.add_bytes(wat.spin())},
            "limits": {"timeout_s": 60},
        }
    )
    other_done: list[str] = []

    def other() -> None:  # a job running beside it must be untouched by the cancel
        result = run_job(spin_then_exit, store, cache=module_cache(None))
        other_done.append(result.result_cid)

    spin_then_exit = parse_spec(
        {"engine": "wasm", "wasm": {"module": store.add_bytes(wat.exit_with(4))}}
    )
    started = time.monotonic()
    neighbour = threading.Thread(target=other)
    neighbour.start()
    with pytest.raises(JobCancelled, match="cancelled while running"):
        run_job(spin, store, cache=module_cache(None), cancel=_cancel_after(0.5))
    assert time.monotonic() - started < 5
    neighbour.join()
    assert len(other_done) == 1
    with pytest.raises(JobCancelled, match="before it started"):
        already = threading.Event()
        already.set()
        run_job(spin, store, cache=module_cache(None), cancel=already)


def test_a_running_docker_job_is_killed_when_cancelled(tmp_path: Path, docker_env: str) -> None:
    store = EmbeddedStore(tmp_path / "ipfs")
    spec = parse_spec(
        {
            "engine": "docker",
            "docker": {"image": "tiny:1", "entrypoint": ["sh", "-c", "echo started; sleep 60"]},
            "limits": {"timeout_s": 120},
        }
    )
    started = time.monotonic()
    with pytest.raises(JobCancelled, match="container was killed"):
        run_job(spec, store, cancel=_cancel_after(1.0))
    assert time.monotonic() - started < 15
