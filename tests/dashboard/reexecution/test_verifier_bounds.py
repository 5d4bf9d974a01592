"""What a verifier node may not do (docs/reexecution.md, "Verifier nodes"): hold a run past
its deadline however often it renews, have its own mismatch checked by itself when a
moderator asks again, or learn the CID a job's node reported from a /failure reply."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from dashboard.keys.services import create_api_key
from dashboard.models import AuditEvent, Job, Reexecution
from dashboard.reexecution import services as reexecution
from dashboard.reexecution.selectors import node_records
from executor.embedded_store import EmbeddedStore
from executor.run import module_cache, run_job
from executor.spec import parse_spec
from executor.verify import verify_one
from tests.base import Personas
from tests.dashboard.reexecution.common import (
    call,
    job_json,
    node_reports,
    reads_clock_random_and_input,
    run_reexecutions,
)
from tests.executor import wat_modules as wat

pytestmark = pytest.mark.django_db


def claim(client: Client, raw: str) -> dict:
    taken = call(client, "post", "/api/v1/reexecutions/claim", raw)
    assert taken.status_code == 200, taken.content
    return taken.json()


def test_a_verifier_that_keeps_renewing_loses_the_run_at_its_deadline(
    client: Client, personas: Personas, store, node_store, verifier, settings
) -> None:
    settings.REEXECUTE_GRACE_S = 1
    key, raw = verifier
    spec = {**reads_clock_random_and_input([store, node_store]), "limits": {"timeout_s": 2}}
    ran = run_job(parse_spec(spec), node_store)
    node_reports(client, personas.node_key, "held", spec, ran)
    task = claim(client, raw)
    run = Reexecution.objects.get(pk=task["id"])
    assert run.verifier == key and run.started_at is not None
    # the job's 2 s and a grace of 1 s, from the claim
    assert run.deadline == run.started_at + timedelta(seconds=3)
    assert task["deadline"].startswith(run.deadline.isoformat()[:19])
    assert call(client, "post", f"/api/v1/reexecutions/{run.pk}/lease", raw).status_code == 200

    # Ten seconds on, the verifier still renews (its lease itself has 60 s left).
    Reexecution.objects.filter(pk=run.pk).update(
        started_at=run.started_at - timedelta(seconds=10),
        deadline=run.deadline - timedelta(seconds=10),
    )
    renewed = call(client, "post", f"/api/v1/reexecutions/{run.pk}/lease", raw)
    assert renewed.status_code == 409 and renewed.json()["error"]["code"] == "lease_lost"
    report = {"result_cid": ran.result_cid, "exit_code": 0, "runtime_ms": 1}
    late = call(client, "post", f"/api/v1/reexecutions/{run.pk}/result", raw, report)
    assert late.status_code == 409 and late.json()["error"]["code"] == "lease_lost"
    # the next recovery pass takes it back, for the bundled executor only
    assert reexecution.recover_expired() == {"requeued": [run.pk], "failed": []}
    run.refresh_from_db()
    assert (run.state, run.bundled_only, run.verifier, run.overrun_by) == (
        "queued",
        True,
        None,
        key,
    )
    overran = AuditEvent.objects.get(action="reexecution.overran")
    assert overran.actor == "node:verifier-1" and overran.target == "job:held"
    assert (
        call(client, "post", f"/api/v1/reexecutions/{run.pk}/result", raw, report).status_code
        == 409
    )
    # the verifier's record shows it, and no verifier gets the run again
    [record] = [r for r in node_records() if r["node"] == "verifier-1"]
    assert record["verifier"] is True and record["overran"] == 1
    client.force_login(personas.viewer)
    assert "overran 1 run" in client.get("/nodes/").content.decode()
    _, other = create_api_key(scope="node", name="verifier-2", verifier=True, actor="test")
    for someone in (raw, other):
        assert call(client, "post", "/api/v1/reexecutions/claim", someone).status_code == 204
    assert run_reexecutions() == ["match"]
    page = client.get("/jobs/held/").content.decode()
    assert f"taken back from verifier node verifier-1 ({key.prefix}…)" in page


def test_a_bundled_run_past_its_deadline_is_taken_back_too(
    client: Client, personas: Personas, store, node_store, settings
) -> None:
    settings.REEXECUTE_GRACE_S = 1
    spec = {**reads_clock_random_and_input([store, node_store]), "limits": {"timeout_s": 1}}
    node_reports(client, personas.node_key, "stuck", spec, run_job(parse_spec(spec), node_store))
    run = reexecution.claim_next(worker="stuck-worker")
    assert run is not None and run.deadline is not None
    assert reexecution.renew_lease(run_id=run.pk, worker="stuck-worker")
    later = run.deadline + timedelta(seconds=1)
    assert run.lease_until is not None and later < run.lease_until  # the lease is live then
    assert reexecution.recover_expired(now=later) == {"requeued": [run.pk], "failed": []}
    run.refresh_from_db()
    assert run.state == "queued" and not run.bundled_only and run.overrun_by is None


def test_asking_again_after_a_verifiers_mismatch_never_goes_back_to_that_verifier(
    client: Client, personas: Personas, store, node_store, verifier
) -> None:
    key, raw = verifier
    _, other = create_api_key(scope="node", name="verifier-2", verifier=True, actor="test")
    spec = reads_clock_random_and_input([store, node_store])
    honest = run_job(parse_spec(spec), node_store)
    node_reports(client, personas.node_key, "disputed", spec, honest)
    wrong = run_job(parse_spec(reads_clock_random_and_input([node_store], b"x\n")), node_store)
    task = claim(client, raw)
    said = call(
        client, "post", f"/api/v1/reexecutions/{task['id']}/result", raw,
        {"result_cid": wrong.result_cid, "exit_code": 0, "runtime_ms": 1},
    )  # fmt: skip
    assert said.json()["state"] == "mismatch"

    asked = call(client, "post", "/api/v1/jobs/disputed/reexecutions", personas.moderator_key)
    assert asked.status_code == 201
    again = Reexecution.objects.get(job_id="disputed", state="queued")
    assert again.bundled_only
    assert AuditEvent.objects.get(action="job.reexecute").after["bundled_only"] is True
    for someone in (raw, other):  # kept for the bundled executor
        assert call(client, "post", "/api/v1/reexecutions/claim", someone).status_code == 204
    assert run_reexecutions() == ["match"]
    # asked once more, after the bundled executor's match: any verifier but that one
    call(client, "post", "/api/v1/jobs/disputed/reexecutions", personas.moderator_key)
    assert call(client, "post", "/api/v1/reexecutions/claim", raw).status_code == 204
    assert claim(client, other)["job_id"] == "disputed"

    # the page names who ran each run
    client.force_login(personas.viewer)
    page = client.get("/jobs/disputed/").content.decode()
    history = page[page.index('id="reexecution-history"') :]
    assert f'run by <span class="runner">verifier node verifier-1 ({key.prefix}…)' in history
    assert 'run by <span class="runner">bundled executor (test-worker)' in history
    assert "kept for the bundled executor" in history
    assert "verifier node verifier-2" in history  # running now


def test_a_verifiers_failure_reply_does_not_echo_the_reported_cid(
    client: Client, personas: Personas, store, node_store, verifier
) -> None:
    _, raw = verifier
    spec = reads_clock_random_and_input([store, node_store])
    ran = run_job(parse_spec(spec), node_store)
    node_reports(client, personas.node_key, "quiet", spec, ran)
    task = claim(client, raw)
    failed = call(
        client, "post", f"/api/v1/reexecutions/{task['id']}/failure", raw, {"error": "no input"}
    )
    assert failed.status_code == 200
    assert failed.json()["state"] == "failed" and "reported_cid" not in failed.json()
    assert ran.result_cid not in failed.content.decode()
    # moderators still read it
    body = job_json(client, personas.moderator_key, "quiet")["reexecution"]
    assert body["reported_cid"] == ran.result_cid


def test_a_verifier_that_timed_out_makes_the_run_not_verifiable(
    client: Client, personas: Personas, store, node_store, verifier
) -> None:
    _, raw = verifier
    spec = reads_clock_random_and_input([store, node_store])
    ran = run_job(parse_spec(spec), node_store)
    node_reports(client, personas.node_key, "slow", spec, ran)
    task = claim(client, raw)
    path = f"/api/v1/reexecutions/{task['id']}/failure"
    unknown = call(client, "post", path, raw, {"error": "x", "outcome": "bored"})
    assert unknown.status_code == 400 and "outcome" in unknown.json()["error"]["fields"]
    body = {"error": "wall-time limit of 600 s exceeded", "outcome": "timed_out"}
    failed = call(client, "post", path, raw, body)
    assert failed.status_code == 200 and failed.json()["state"] == "not_verifiable"
    assert failed.json()["error"].startswith("timed_out: wall-time limit")
    assert Job.objects.get(id="slow").reexecution_verdict == ""


class FakeDashboard:
    """The verifier's side of the API, answering as the dashboard would."""

    def __init__(self, task: dict[str, Any]) -> None:
        self.task = task
        self.reports: list[dict[str, Any]] = []

    def claim_reexecution(self) -> dict[str, Any] | None:
        return self.task

    def renew_reexecution(self, run_id: int) -> dict[str, Any]:
        return self.task  # a dashboard that never refuses: only the deadline stops the run

    def report_reexecution(self, run_id: int, outcome: dict[str, Any]) -> dict[str, Any]:
        self.reports.append(outcome)
        return {"state": "match"}

    def locations(self, cid: str) -> list[Any]:
        return []  # the run's module is in the verifier's store: nothing to fetch


def test_executor_verify_stops_a_run_at_its_deadline(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "verifier")
    now = timezone.now()
    task = {
        "id": 7,
        "job_id": "spins",
        "spec": {
            "engine": "wasm",
            "wasm": {"module": store.add_bytes(wat.spin())},
            "limits": {"timeout_s": 10},
        },
        "lease_until": (now + timedelta(seconds=60)).isoformat(),
        "deadline": (now + timedelta(seconds=1)).isoformat(),  # before the spin's own 10 s
        "attempts": 1,
    }
    fake = FakeDashboard(json.loads(json.dumps(task)))
    said: list[str] = []
    done = verify_one(fake, store, module_cache(None), said.append)  # type: ignore[arg-type]
    assert done == {"job_id": "spins", "state": "lost"}
    assert fake.reports == []  # nothing is reported for a run taken back
