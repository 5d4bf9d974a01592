"""A Docker job through the dashboard: submitted over the API, run by the bundled executor's
worker on a real (private) Docker engine, its result recorded and readable back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.test import Client

from dashboard.jobs import services as jobs
from dashboard.reexecution import services as reexecution
from dashboard.worker import execute_job, execute_reexecution
from executor.embedded_store import EmbeddedStore
from tests.base import Personas
from tests.executor.docker_fixtures import (  # noqa: F401 (fixtures, by their names)
    docker_daemon_fixture,
    docker_env_fixture,
    docker_host_fixture,
)

pytestmark = pytest.mark.django_db


def test_a_docker_job_runs_end_to_end(
    client: Client, personas: Personas, settings, tmp_path: Path, docker_env: str
) -> None:
    settings.DATA_DIR = tmp_path / "data"
    settings.IPFS_API_URL = None
    settings.EXECUTOR_PROVIDER = "f01234"
    store = EmbeddedStore(settings.DATA_DIR / "ipfs")
    data = store.add_bytes(b"one\ntwo\nthree\n")
    spec = {
        "engine": "docker",
        "docker": {
            "image": "tiny:1",
            "entrypoint": ["sh", "-c", "wc -l < /inputs/lines.txt > /outputs/count; echo done"],
        },
        "inputs": [{"cid": data, "path": "/inputs/lines.txt"}],
        "limits": {"timeout_s": 60, "memory_bytes": 64 << 20},
    }
    response = client.post(
        "/api/v1/jobs",
        data=json.dumps(spec),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {personas.submitter_key}",
    )
    assert response.status_code == 201, response.content
    job = jobs.claim_next(worker="w")
    assert job is not None and execute_job(job, worker="w") == "completed"
    body = client.get(
        f"/api/v1/jobs/{job.id}", HTTP_AUTHORIZATION=f"Bearer {personas.submitter_key}"
    ).json()
    assert body["state"] == "completed" and body["engine"] == "docker"
    assert body["inputs"][0]["status"] == "unknown"
    result = body["result"]
    assert result["exit_code"] == 0 and result["provider"] == "f01234"
    assert store.cat(result["stdout_cid"]) == b"done\n"
    outputs = {e.name: e.cid for e in store.ls(result["outputs_cid"])}
    assert store.cat(outputs["count"]).strip() == b"3"


def test_a_docker_job_reexecuted_on_request_is_compared_but_not_evidence(
    client: Client, personas: Personas, settings, tmp_path: Path, docker_env: str
) -> None:
    settings.DATA_DIR = tmp_path / "data"
    settings.IPFS_API_URL = None
    auth = {"HTTP_AUTHORIZATION": f"Bearer {personas.moderator_key}"}

    def submit_and_rerun(command: str) -> dict:
        spec = {
            "engine": "docker",
            "docker": {"image": "tiny:1", "entrypoint": ["sh", "-c", command]},
        }
        job_id = client.post(
            "/api/v1/jobs",
            data=json.dumps(spec),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {personas.submitter_key}",
        ).json()["id"]
        job = jobs.claim_next(worker="w")
        assert job is not None and execute_job(job, worker="w") == "completed"
        asked = client.post(f"/api/v1/jobs/{job_id}/reexecutions", **auth)
        assert asked.status_code == 201, asked.content
        run = reexecution.claim_next(worker="w")
        assert run is not None
        execute_reexecution(run, worker="w")
        return client.get(f"/api/v1/jobs/{job_id}", **auth).json()

    steady = submit_and_rerun("echo steady > /outputs/out")
    assert steady["reexecution"]["state"] == "match"
    assert steady["reexecution"]["deterministic"] is False
    noisy = submit_and_rerun("head -c 16 /dev/urandom | od -An -tx1")
    rerun = noisy["reexecution"]
    assert rerun["state"] == "mismatch" and rerun["deterministic"] is False
    assert [d["path"] for d in rerun["diff"]] == ["stdout"]
    client.force_login(personas.moderator)
    page = client.get(f"/jobs/{noisy['id']}/").content.decode()
    assert "engine not deterministic" in page and "information only" in page
    assert "re-run mismatch" not in client.get("/").content.decode()  # no flag in the queue
