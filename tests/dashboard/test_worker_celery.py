"""Jobs in production mode: a real Redis broker, real `celery worker` and `celery beat`
processes, and the web server as a separate process. A worker killed mid-job loses nothing:
the job's lease lapses, beat sends it back to the queue, and another worker finishes it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import redis

from dashboard.celery import app
from tests.executor.wat_modules import xorshift
from tests.helpers import (
    celery,
    database_urls,
    free_port,
    manage,
    process_env,
    redis_or_skip,
    spawn,
)

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/12")


def test_routes_and_beat_entry() -> None:
    assert app.conf.task_routes["dashboard.run_job"] == {"queue": "executor"}
    assert app.conf.task_routes["dashboard.measure_novelty"] == {"queue": "executor"}
    assert app.conf.beat_schedule["recover-jobs"]["task"] == "dashboard.recover_jobs"


def _worker(env: dict[str, str], name: str) -> subprocess.Popen[str]:
    return celery(
        env, "worker", "-Q", "executor", "--pool", "solo", "-n", f"{name}@%h",
        "--without-gossip", "--without-mingle", "--loglevel", "INFO",
    )  # fmt: skip


def _wait(client: httpx.Client, job_id: str, states: set[str], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never reached {states}: {job}")


def _stop(*procs: subprocess.Popen[str]) -> list[str]:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    return [proc.communicate(timeout=60)[0] or "" for proc in procs]


def test_jobs_run_on_celery_workers_and_survive_a_killed_worker(tmp_path: Path) -> None:
    redis_or_skip(REDIS_URL)
    redis.Redis.from_url(REDIS_URL).flushdb()
    databases = database_urls(tmp_path)  # SQLite file, or PostgreSQL when the suite runs on it
    env = process_env(
        tmp_path,
        DATABASE_URL=next(databases),
        CELERY_BROKER_URL=REDIS_URL,
        EXECUTOR_LEASE_S="2",
        EXECUTOR_MAX_ATTEMPTS="3",
        EXECUTOR_PROVIDER="f07777",
    )
    env.pop("IPFS_API_URL", None)
    assert manage(env, "migrate", "-v0").returncode == 0
    made = manage(env, "create_api_key", "--scope", "submitter", "--name", "celery-test")
    key = made.stdout.strip().splitlines()[-1]
    port = free_port()
    web = spawn(env, "serve", "--port", str(port), "--no-scanner", "--no-executor")
    first = _worker(env, "first")
    procs = [web, first]
    try:
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {key}"}
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                client.get("/healthz")
                break
            except httpx.TransportError:
                time.sleep(0.1)

        def submit(module: bytes) -> str:
            cid = client.post(
                "/api/v1/content",
                content=module,
                headers={"Content-Type": "application/octet-stream"},
            ).json()["cid"]
            body = {"engine": "wasm", "wasm": {"module": cid}}
            response = client.post("/api/v1/jobs", json=body)
            assert response.status_code == 201, response.text
            return response.json()["id"]

        quick = _wait(client, submit(xorshift(1000)), {"completed", "failed"}, 60)
        assert quick["state"] == "completed", quick
        assert quick["result"]["provider"] == "f07777" and quick["attempts"] == 1

        # A job long enough to kill its worker in the middle of it.
        slow_id = submit(xorshift(4_000_000_000))
        _wait(client, slow_id, {"running"}, 60)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        second = _worker(env, "second")
        beat = celery(env, "beat", "--schedule", str(tmp_path / "beat"), "--loglevel", "INFO")
        procs += [second, beat]
        done = _wait(client, slow_id, {"completed", "failed"}, 180)
        assert done["state"] == "completed", done
        assert done["attempts"] == 2
        assert done["result"]["exit_code"] == 0
    finally:
        logs = _stop(*procs)
        databases.close()
    assert any("dashboard.recover_jobs" in log for log in logs)


def test_a_reexecution_runs_on_its_own_queue_and_survives_a_killed_worker(
    tmp_path: Path,
) -> None:
    """A moderator's re-execution goes to the `reexecute` queue, never to an executor worker;
    its worker killed mid-run records nothing, and after the lease lapses another worker
    re-runs it to a match."""
    redis_or_skip(REDIS_URL)
    redis.Redis.from_url(REDIS_URL).flushdb()
    databases = database_urls(tmp_path)
    env = process_env(
        tmp_path,
        DATABASE_URL=next(databases),
        CELERY_BROKER_URL=REDIS_URL,
        EXECUTOR_LEASE_S="2",
        EXECUTOR_MAX_ATTEMPTS="3",
    )
    env.pop("IPFS_API_URL", None)
    assert manage(env, "migrate", "-v0").returncode == 0
    submitter = manage(env, "create_api_key", "--scope", "submitter", "--name", "s")
    moderator = dict(env, MODERATOR_PASSWORD="a long passphrase")
    assert manage(moderator, "create_moderator", "mona", "--role", "moderator").returncode == 0
    mona = manage(env, "create_api_key", "--scope", "moderator", "--name", "m", "--user", "mona")
    keys = [made.stdout.strip().splitlines()[-1] for made in (submitter, mona)]
    port = free_port()
    web = spawn(env, "serve", "--port", str(port), "--no-scanner", "--no-executor")
    executor = _worker(env, "executor")
    first = celery(
        env, "worker", "-Q", "reexecute", "--pool", "solo", "-n", "rerun1@%h",
        "--without-gossip", "--without-mingle", "--loglevel", "INFO",
    )  # fmt: skip
    procs = [web, executor, first]
    try:
        base = f"http://127.0.0.1:{port}"
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {keys[0]}"})
        moderating = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {keys[1]}"})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                client.get("/healthz")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        cid = client.post(
            "/api/v1/content",
            content=xorshift(4_000_000_000),
            headers={"Content-Type": "application/octet-stream"},
        ).json()["cid"]
        job_id = client.post("/api/v1/jobs", json={"engine": "wasm", "wasm": {"module": cid}})
        job_id = job_id.json()["id"]
        done = _wait(client, job_id, {"completed", "failed"}, 120)
        assert done["state"] == "completed", done
        deadline = time.monotonic() + 60  # the executor's worker measures it after the job
        while (found := client.get(f"/api/v1/jobs/{job_id}").json()["novelty"])["state"] in (
            "queued",
            "running",
        ):
            assert time.monotonic() < deadline, found
            time.sleep(0.1)
        assert found["state"] == "measured" and found["total_bytes"] > 0, found

        asked = moderating.post(f"/api/v1/jobs/{job_id}/reexecutions")
        assert asked.status_code == 201, asked.text
        deadline = time.monotonic() + 60
        while client.get(f"/api/v1/jobs/{job_id}").json()["reexecution"]["state"] != "running":
            assert time.monotonic() < deadline, "the re-execution never started"
            time.sleep(0.1)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        time.sleep(3)  # past its lease, but no beat yet to recover it: still the dead worker's
        assert client.get(f"/api/v1/jobs/{job_id}").json()["reexecution"]["state"] == "running"
        second = celery(
            env, "worker", "-Q", "reexecute", "--pool", "solo", "-n", "rerun2@%h",
            "--without-gossip", "--without-mingle", "--loglevel", "INFO",
        )  # fmt: skip
        beat = celery(env, "beat", "--schedule", str(tmp_path / "beat"), "--loglevel", "INFO")
        procs += [second, beat]
        deadline = time.monotonic() + 180
        while True:
            rerun = client.get(f"/api/v1/jobs/{job_id}").json()["reexecution"]
            if rerun["state"] in ("match", "mismatch", "failed"):
                break
            assert time.monotonic() < deadline, rerun
            time.sleep(0.2)
        assert rerun["state"] == "match", rerun
        assert rerun["attempts"] == 2 and rerun["runs"] == 1
        assert rerun["rerun_cid"] == done["result"]["result_cid"]
        # run by the second re-execution worker, not by the executor worker that was idle
        assert rerun["ran_by"].split(":")[1] == str(second.pid), (rerun, second.pid)
    finally:
        logs = _stop(*procs)
        databases.close()
    executor_log = logs[1]  # the worker on the executor queue ran the job and no re-execution
    assert "Task dashboard.run_job[" in executor_log
    assert "Task dashboard.measure_novelty[" in executor_log
    assert "Task dashboard.reexecute[" not in executor_log
