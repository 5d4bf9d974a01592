"""A verifier node over real HTTP: `python -m executor verify` against a live `manage.py serve`
with no executor thread of its own, so that only the verifier can run the re-executions."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from executor.embedded_store import EmbeddedStore
from executor.run import run_job
from executor.spec import parse_spec
from tests.dashboard.reexecution.common import report_of
from tests.executor import wat_modules as wat
from tests.helpers import database_urls, free_port, manage, process_env, spawn


def _key(env: dict[str, str], *args: str) -> str:
    made = manage(env, "create_api_key", *args)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip().splitlines()[-1]


def _verify(env: dict[str, str], url: str, key: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "executor", "verify", "--api", url, "--api-key", key, *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_executor_verify_reruns_reported_jobs(tmp_path: Path) -> None:
    databases = database_urls(tmp_path)
    env = process_env(tmp_path, DATABASE_URL=next(databases), EXECUTOR_LEASE_S="5")
    env.pop("IPFS_API_URL", None)
    assert manage(env, "migrate", "-v0").returncode == 0
    node = _key(env, "--scope", "node", "--name", "reporter", "--provider", "f01234")
    verifier = _key(env, "--scope", "node", "--name", "verifier-1", "--verifier")
    port = free_port()
    server = spawn(env, "serve", "--port", str(port), "--no-scanner", "--no-executor")
    url = f"http://127.0.0.1:{port}"
    # The reporting node's store, and the verifier's (the CLI's DATA_DIR), hold the module and
    # the input; the dashboard's store holds neither: the verifier runs the job, not we.
    reporter = EmbeddedStore(tmp_path / "reporter")
    verifier_env = process_env(tmp_path / "verifier")
    verifier_env.pop("IPFS_API_URL", None)
    verifier_store = EmbeddedStore(tmp_path / "verifier" / "data" / "ipfs")
    module, data = wat.clock_random_and_input(), b"read by the job\n"
    for store in (reporter, verifier_store):
        spec = {
            "engine": "wasm",
            "wasm": {"module": store.add_bytes(module)},
            "inputs": [{"cid": store.add_bytes(data), "path": "/in/input.txt"}],
        }
    unknown = reporter.add_bytes(b"only the reporter has this\n")
    lacking = {**spec, "inputs": [{"cid": unknown, "path": "/in/input.txt"}]}
    other = {**spec, "inputs": [{"cid": reporter.add_bytes(b"other\n"), "path": "/in/input.txt"}]}
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()[1][-3000:]
            try:
                httpx.get(f"{url}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not answer"
                time.sleep(0.1)
        headers = {"Authorization": f"Bearer {node}"}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            reports = (
                ("v-honest", spec, run_job(parse_spec(spec), reporter)),
                ("v-liar", spec, run_job(parse_spec(other), reporter)),
                ("v-lacking", lacking, run_job(parse_spec(lacking), reporter)),
            )
            for job_id, job_spec, result in reports:
                made = http.post("/api/v1/jobs", json={**job_spec, "external": True, "id": job_id})
                assert made.status_code == 201, made.text
                assert (
                    http.post(
                        f"/api/v1/jobs/{job_id}/results", json=report_of(result, job_spec)
                    ).status_code
                    == 201
                )
            lines = []
            for _ in reports:
                done = _verify(verifier_env, url, verifier, "--once")
                assert done.returncode == 0, done.stderr
                lines.append(done.stdout.strip())
            assert lines == ["v-honest match", "v-liar mismatch", "v-lacking failed"], lines
            idle = _verify(verifier_env, url, verifier, "--once")
            assert idle.returncode == 0 and idle.stdout == ""
            assert "nothing queued for re-execution" in idle.stderr
            honest = http.get("/api/v1/jobs/v-honest").json()["reexecution"]
            assert honest["ran_by"] == "node:verifier-1" and honest["state"] == "match"
            failed = http.get("/api/v1/jobs/v-lacking").json()["reexecution"]
            assert unknown in failed["error"] and failed["ran_by"] == "node:verifier-1"
            # A run whose lease the verifier loses while it runs: it stops and reports nothing.
            slow = {
                "engine": "wasm",
                "wasm": {"module": verifier_store.add_bytes(wat.xorshift(4_000_000_000))},
            }
            assert (
                http.post(
                    "/api/v1/jobs", json={**slow, "external": True, "id": "v-slow"}
                ).status_code
                == 201
            )
            assert (
                http.post(
                    "/api/v1/jobs/v-slow/results", json=report_of(reports[0][2], slow)
                ).status_code
                == 201
            )
            running = subprocess.Popen(
                [sys.executable, "-m", "executor", "verify", "--once", "--api", url,
                 "--api-key", verifier],
                env=verifier_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            deadline = time.monotonic() + 60
            while http.get("/api/v1/jobs/v-slow").json()["reexecution"]["state"] != "running":
                assert time.monotonic() < deadline, "the verifier never took it"
                time.sleep(0.1)
            taken = manage(env, "shell", "-c", (
                "from dashboard.models import Reexecution; "
                "Reexecution.objects.filter(job_id='v-slow').update(lease_owner='elsewhere')"
            ))  # fmt: skip
            assert taken.returncode == 0, taken.stderr
            out, err = running.communicate(timeout=60)
            assert running.returncode == 0 and out.strip() == "v-slow lost", (out, err)
            slow_run = http.get("/api/v1/jobs/v-slow").json()["reexecution"]
            assert slow_run["state"] == "running" and slow_run["rerun_cid"] is None
        refused = _verify(verifier_env, url, node, "--once")  # a node key that does not verify
        assert refused.returncode == 1 and "HTTP 403" in refused.stderr
        assert "create_api_key --verifier" in refused.stderr
        no_api = _verify(verifier_env, "", verifier, "--once")
        assert no_api.returncode == 2 and "needs --api" in no_api.stderr
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=60)
        databases.close()
