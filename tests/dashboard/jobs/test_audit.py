"""Job submissions and reported results are in the audit log (once each: a repeated,
idempotent call writes nothing more), so /audit/?job=… tells a job's whole story."""

from __future__ import annotations

import pytest
from django.test import Client

from dashboard.models import AuditEvent
from executor.embedded_store import EmbeddedStore
from tests.base import Personas
from tests.dashboard.jobs.test_api import RESULT, call, run_queued, store, wasm_spec
from tests.executor import wat_modules as wat

pytestmark = pytest.mark.django_db
__all__ = ["store"]  # the fixture, imported for these tests


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_a_submission_is_audited_with_its_submitter(
    client: Client, personas: Personas, store: EmbeddedStore
) -> None:
    module = store.add_bytes(wat.exit_with(0))
    answer = call(client, "post", "/api/v1/jobs", personas.submitter_key, wasm_spec(module))
    assert answer.status_code == 201
    job_id = answer.json()["id"]
    [event] = events("job.submit")
    assert (event.actor, event.target) == ("submitter:alice", f"job:{job_id}")
    assert event.before is None
    assert event.after == {"engine": "wasm", "external": False, "inputs": 0}


def test_an_external_registration_is_audited_once(
    client: Client, personas: Personas, store: EmbeddedStore
) -> None:
    spec = wasm_spec(store.add_bytes(wat.exit_with(0)), external=True, id="ext-9")
    assert call(client, "post", "/api/v1/jobs", personas.node_key, spec).status_code == 201
    assert call(client, "post", "/api/v1/jobs", personas.node_key, spec).status_code == 200
    [event] = events("job.submit")
    assert (event.actor, event.target) == ("node:node-1", "job:ext-9")
    assert event.after["external"] is True


def test_a_reported_result_is_audited_once(
    client: Client, personas: Personas, store: EmbeddedStore
) -> None:
    spec = wasm_spec(store.add_bytes(wat.exit_with(0)), external=True, id="ext-10")
    call(client, "post", "/api/v1/jobs", personas.node_key, spec)
    path = "/api/v1/jobs/ext-10/results"
    assert call(client, "post", path, personas.node_key, RESULT).status_code == 201
    assert call(client, "post", path, personas.node_key, RESULT).status_code == 200
    [event] = events("job.result")
    assert (event.actor, event.target) == ("node:node-1", "job:ext-10")
    assert event.before == {"state": "running"}
    assert event.after == {
        "state": "completed",
        "result_cid": RESULT["result_cid"],
        "exit_code": 0,
        "size_bytes": 1234,
        "provider": "f01234",
    }
    # a refused result writes nothing
    different = dict(RESULT, result_cid=RESULT["stdout_cid"])
    assert call(client, "post", path, personas.node_key, different).status_code == 409
    assert len(events("job.result")) == 1


def test_the_bundled_executors_result_is_audited_as_the_executor(
    client: Client, personas: Personas, store: EmbeddedStore
) -> None:
    module = store.add_bytes(wat.exit_with(0))
    job_id = call(client, "post", "/api/v1/jobs", personas.submitter_key, wasm_spec(module)).json()[
        "id"
    ]
    assert run_queued() == ["completed"]
    [event] = events("job.result")
    assert (event.actor, event.target) == ("executor", f"job:{job_id}")
    assert event.before == {"state": "running"}
