"""Re-executions never keep submitted jobs waiting (docs/reexecution.md, "Cost and
scheduling"): the embedded worker stops a running re-execution when a job is queued, puts it
back without counting an attempt, and after REEXECUTE_MAX_PREEMPTIONS stops runs it to its
end beside the jobs, so that it cannot be starved either.

The re-execution here is an external node's spin module under a long time limit: left to
itself it would hold a one-thread worker for minutes. Waits are generous margins well below
that limit, never speed goals."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
from django.test import Client

from dashboard.models import AuditEvent
from dashboard.reexecution import services as reexecution
from dashboard.worker import PREEMPTED, execute_reexecution
from executor.run import run_job
from executor.spec import parse_spec
from tests.base import Personas
from tests.dashboard.reexecution.common import node_reports, reads_clock_random_and_input
from tests.executor import wat_modules as wat
from tests.helpers import (
    answers,
    database_urls,
    free_port,
    manage,
    process_env,
    spawn,
    wait_until,
)

SPIN_S = 300  # the re-execution's own time limit: far beyond every wait below


def spinning_job(client: Client, key: str, store, node_store, job_id: str) -> None:  # type: ignore[no-untyped-def]
    """An external job whose spec spins for SPIN_S seconds, reported with any result."""
    spec = {
        "engine": "wasm",
        "wasm": {"module": store.add_bytes(wat.spin())},
        "limits": {"timeout_s": SPIN_S},
    }
    claimed = run_job(parse_spec(reads_clock_random_and_input([node_store])), node_store)
    node_reports(client, key, job_id, spec, claimed)


@pytest.mark.django_db
def test_a_preempted_run_goes_back_to_the_queue_without_losing_an_attempt(
    client: Client, personas: Personas, store, node_store, settings
) -> None:
    settings.REEXECUTE_MAX_PREEMPTIONS = 2
    spinning_job(client, personas.node_key, store, node_store, "spins")
    for stops in (1, 2):
        run = reexecution.claim_next(worker="w", preemptible=True)
        assert run is not None and run.attempts == 1
        # A job is waiting from the start: the lease thread's first look stops the run (not
        # the spin module's five minutes).
        assert execute_reexecution(run, worker="w", preempt=lambda: True) == PREEMPTED
        run.refresh_from_db()
        assert (run.state, run.attempts, run.preemptions) == ("queued", 0, stops)
        assert run.lease_owner == "" and run.started_at is None and run.error == ""
    assert not AuditEvent.objects.filter(action__startswith="reexecution.").exists()
    # Stopped REEXECUTE_MAX_PREEMPTIONS times: the worker's own loop no longer takes it to
    # stop it again; only as a run that goes to its end.
    assert reexecution.claim_next(worker="w", preemptible=True) is None
    last = reexecution.claim_next(worker="w", preemptible=False)
    assert last is not None and last.pk == run.pk and last.attempts == 1


def test_a_submitted_job_does_not_wait_behind_a_long_reexecution(tmp_path: Path) -> None:
    """`serve` with one executor thread: a job submitted while a re-execution spins runs at
    once; the re-execution goes back to the queue, and once it may no longer be stopped it
    runs beside the next job instead of in front of it."""
    databases = database_urls(tmp_path)
    env = process_env(tmp_path, DATABASE_URL=next(databases), REEXECUTE_MAX_PREEMPTIONS="1")
    env.pop("IPFS_API_URL", None)
    assert manage(env, "migrate", "-v0").returncode == 0
    keys = {}
    for scope in ("node", "submitter"):
        made = manage(env, "create_api_key", "--scope", scope, "--name", scope)
        assert made.returncode == 0, made.stderr
        keys[scope] = made.stdout.strip().splitlines()[-1]
    port = free_port()
    server = spawn(env, "serve", "--port", str(port), "--no-scanner")
    url = f"http://127.0.0.1:{port}"

    def rerun_of(job_id: str) -> dict:
        return node.get(f"/api/v1/jobs/{job_id}").json()["reexecution"]

    def stops() -> int:
        shown = manage(env, "shell", "-c", (
            "from dashboard.models import Reexecution; "
            "print(Reexecution.objects.get(job_id='spins').preemptions)"
        ))  # fmt: skip
        assert shown.returncode == 0, shown.stderr
        return int(shown.stdout.split()[-1])

    try:
        wait_until(lambda: server.poll() is not None or answers(f"{url}/healthz"), "serve")
        assert server.poll() is None, server.communicate()[1][-3000:]
        node = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {keys['node']}"})
        submitter = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {keys['submitter']}"}
        )

        def upload(module: bytes) -> str:
            made = node.post(
                "/api/v1/content",
                content=module,
                headers={"Content-Type": "application/octet-stream"},
            )
            return made.json()["cid"]

        quick = {"engine": "wasm", "wasm": {"module": upload(wat.xorshift(1000))}}
        spin = {
            "engine": "wasm",
            "wasm": {"module": upload(wat.spin())},
            "limits": {"timeout_s": SPIN_S},
        }
        # Any result will do as the node's: the re-run never gets that far.
        done = submitter.post("/api/v1/jobs", json=quick).json()["id"]
        finished = wait_until(
            lambda: submitter.get(f"/api/v1/jobs/{done}").json()["result"], "the first job"
        )
        made = node.post("/api/v1/jobs", json={**spin, "external": True, "id": "spins"})
        assert made.status_code == 201, made.text
        finished.pop("parts_checked")  # what the dashboard says of it, not a node's report
        reported = node.post("/api/v1/jobs/spins/results", json=finished)
        assert reported.status_code == 201, reported.text
        wait_until(lambda: rerun_of("spins")["state"] == "running", "the re-execution to start")

        def submit_and_wait() -> None:
            job_id = submitter.post("/api/v1/jobs", json=quick).json()["id"]
            job = wait_until(
                lambda: (
                    (j := submitter.get(f"/api/v1/jobs/{job_id}").json())["state"]
                    in ("completed", "failed")
                    and j
                ),
                "the submitted job",
                timeout=60,  # generous, and far below the re-execution's SPIN_S
            )
            assert job["state"] == "completed", job

        # The re-execution is stopped for the job, and taken again once the job ran.
        submit_and_wait()
        assert stops() == 1
        wait_until(lambda: rerun_of("spins")["state"] == "running", "the re-execution again")
        assert rerun_of("spins")["attempts"] == 1  # the stop did not count as an attempt
        # Stopped once (REEXECUTE_MAX_PREEMPTIONS=1): it now runs beside the next job.
        submit_and_wait()
        assert stops() == 1
        rerun = rerun_of("spins")
        assert (rerun["state"], rerun["attempts"], rerun["error"]) == ("running", 1, None)
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=60)
        databases.close()
