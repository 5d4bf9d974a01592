"""Helpers of the re-execution tests: an external node that registers and reports jobs over
the HTTP API, and the embedded worker's re-executions run by hand."""

from __future__ import annotations

import json

from django.test import Client

from dashboard.reexecution import services as reexecution
from dashboard.worker import execute_reexecution
from executor.embedded_store import EmbeddedStore
from executor.run import RunResult
from executor.spec import parse_spec
from tests.executor import wat_modules as wat

INPUT = b"the input the job reads\n"


def call(client: Client, method: str, path: str, key: str | None, body: object = None):  # type: ignore[no-untyped-def]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    if method == "get":
        return client.get(path, **headers)
    return client.post(
        path,
        data=json.dumps(body) if body is not None else "",
        content_type="application/json",
        **headers,
    )


def reads_clock_random_and_input(stores: list[EmbeddedStore], data: bytes = INPUT) -> dict:
    """A spec whose result depends on the clock, random bytes and its input; the module and
    the input are put in each of `stores`."""
    for s in stores:
        module = s.add_bytes(wat.clock_random_and_input())
        cid = s.add_bytes(data)
    return {
        "engine": "wasm",
        "wasm": {"module": module},
        "inputs": [{"cid": cid, "path": "/in/input.txt"}],
    }


def report_of(result: RunResult, spec: dict) -> dict:
    """The body a node reports `result` with for a job of `spec`. A run of another spec (a
    lying node, or a result used as filler) is reported without its inputs' provenance,
    which names the other spec's inputs and is refused for this job (400)."""
    body = result.to_json()
    asked = [mount.cid for mount in parse_spec(spec).inputs]
    if [item["cid"] for item in body["inputs"]] != asked:
        del body["inputs"]
    return body


def node_reports(client: Client, key: str, job_id: str, spec: dict, result: RunResult) -> dict:
    """Register an external job and report a result for it (the key's provider holds it)."""
    registered = call(client, "post", "/api/v1/jobs", key, {**spec, "external": True, "id": job_id})
    assert registered.status_code == 201, registered.json()
    reported = call(
        client,
        "post",
        f"/api/v1/jobs/{job_id}/results",
        key,
        report_of(result, spec),
    )
    assert reported.status_code == 201, reported.json()
    return reported.json()


def run_reexecutions(worker: str = "test-worker") -> list[str]:
    """What the embedded worker does once no job is queued: run every queued re-execution."""
    outcomes = []
    while (run := reexecution.claim_next(worker=worker)) is not None:
        outcomes.append(execute_reexecution(run, worker=worker))
    return outcomes


def job_json(client: Client, key: str, job_id: str) -> dict:
    return call(client, "get", f"/api/v1/jobs/{job_id}", key).json()
