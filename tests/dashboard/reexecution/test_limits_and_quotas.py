"""What a re-execution may cost (docs/reexecution.md, "Limits and quotas"): a spec asking for
more than the re-execution limits is never run, and each node key, Bacalhau legacy client
and Bacalhau orchestrator has an hourly quota of re-executions; beyond either, the job's
re-execution is `not_verifiable`, with why."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from dashboard.keys.services import create_api_key
from dashboard.models import (
    AuditEvent,
    BacalhauClient,
    BacalhauExecution,
    BacalhauOrchestrator,
    BacalhauSubmission,
    Job,
    Reexecution,
)
from dashboard.reexecution import services as reexecution
from dashboard.reexecution.selectors import node_records
from dashboard.worker import execute_reexecution
from executor.run import run_job
from executor.spec import parse_spec
from tests.base import ACCEPT_RISKS, Personas
from tests.dashboard.reexecution.common import (
    call,
    job_json,
    node_reports,
    reads_clock_random_and_input,
    run_reexecutions,
)
from tests.e2e.page_data import make_job
from tests.executor import wat_modules as wat

pytestmark = pytest.mark.django_db


def test_a_spec_over_the_limits_is_not_verifiable_and_never_run(
    client: Client, personas: Personas, store, node_store, settings
) -> None:
    # The spin module with a day to run in 1 TiB: accepted as a job, never re-run.
    greedy = {
        "engine": "wasm",
        "wasm": {"module": store.add_bytes(wat.spin())},
        "limits": {"timeout_s": 86400, "memory_bytes": 1 << 40},
    }
    claimed = run_job(parse_spec(reads_clock_random_and_input([node_store])), node_store)
    reported = node_reports(client, personas.node_key, "greedy", greedy, claimed)
    body = reported["reexecution"]
    assert body["state"] == "not_verifiable" and body["refusal"] == "limits"
    assert body["error"] == (
        "over re-execution limits: limits.timeout_s 86400 > REEXECUTE_MAX_TIMEOUT_S 600; "
        f"limits.memory_bytes {1 << 40} > REEXECUTE_MAX_MEMORY_BYTES {1 << 30}"
    )
    assert run_reexecutions() == []  # nothing was queued
    refused = AuditEvent.objects.get(action="reexecution.not_verifiable")
    assert refused.target == "job:greedy" and "REEXECUTE_MAX_TIMEOUT_S" in refused.reason
    # a moderator's request is refused the same way
    asked = call(client, "post", "/api/v1/jobs/greedy/reexecutions", personas.moderator_key)
    assert asked.status_code == 201
    assert asked.json()["reexecution"]["state"] == "not_verifiable"
    assert Reexecution.objects.filter(state="queued").count() == 0
    # and with REEXECUTE_BEFORE_VERIFY the job cannot be verified: its result is unchecked
    settings.REEXECUTE_BEFORE_VERIFY = True
    decision = {"decision": "verify", "datacap_bytes": "1 GiB", **ACCEPT_RISKS}
    verify = call(client, "post", "/api/v1/jobs/greedy/decision", personas.moderator_key, decision)
    assert verify.status_code == 409 and verify.json()["error"]["code"] == "not_reexecuted"
    message = verify.json()["error"]["message"]
    assert "its latest re-execution is not_verifiable (over re-execution limits" in message
    client.force_login(personas.moderator)
    page = client.get("/jobs/greedy/").content.decode()
    assert "Why it was not run" in page and 'id="reexecution-risk"' in page

    # Within the limits the same module is queued (and stops at its own time limit, which
    # no machine reproduces: not verifiable either, now that it ran).
    modest = {**greedy, "limits": {"timeout_s": 0.5}}
    node_reports(client, personas.node_key, "modest", modest, claimed)
    assert job_json(client, personas.node_key, "modest")["reexecution"]["state"] == "queued"
    assert run_reexecutions() == ["not_verifiable"]


def test_a_fuel_cap_needs_a_fuel_limit_and_a_lowered_limit_fails_a_queued_run(
    client: Client, personas: Personas, store, node_store, settings
) -> None:
    spec = reads_clock_random_and_input([store, node_store])
    ran = run_job(parse_spec(spec), node_store)
    settings.REEXECUTE_MAX_FUEL = 10_000_000
    node_reports(client, personas.node_key, "no-fuel", spec, ran)
    body = job_json(client, personas.node_key, "no-fuel")["reexecution"]
    assert body["state"] == "not_verifiable"
    assert body["error"] == (
        "over re-execution limits: limits.fuel none (unlimited) > REEXECUTE_MAX_FUEL 10000000"
    )
    fueled = {**spec, "limits": {"fuel": 1_000_000}}
    node_reports(
        client, personas.node_key, "fueled", fueled, run_job(parse_spec(fueled), node_store)
    )
    assert job_json(client, personas.node_key, "fueled")["reexecution"]["state"] == "queued"
    # The limit is lowered before a worker takes the run: it fails, with the same words.
    settings.REEXECUTE_MAX_FUEL = 1000
    run = reexecution.claim_next(worker="w")
    assert run is not None
    assert execute_reexecution(run, worker="w") == "failed"
    run.refresh_from_db()
    assert run.error == "over re-execution limits: limits.fuel 1000000 > REEXECUTE_MAX_FUEL 1000"


def test_a_node_keys_hourly_quota(
    client: Client, personas: Personas, store, node_store, settings
) -> None:
    settings.REEXECUTE_QUOTA_PER_NODE = 2
    spec = reads_clock_random_and_input([store, node_store])
    ran = run_job(parse_spec(spec), node_store)
    for n in range(4):
        node_reports(client, personas.node_key, f"q-{n}", spec, ran)
    states = [job_json(client, personas.node_key, f"q-{n}")["reexecution"] for n in range(4)]
    assert [s["state"] for s in states] == ["queued", "queued", "not_verifiable", "not_verifiable"]
    assert states[2]["refusal"] == "quota"
    assert states[2]["error"].startswith(
        "quota: the node key node-1 had 2 re-executions queued in the last hour "
        "(REEXECUTE_QUOTA_PER_NODE)"
    )
    # another node's jobs have a quota of their own
    node_reports(client, personas.other_node_key, "other-0", spec, ran)
    assert Reexecution.objects.get(job_id="other-0").state == "queued"
    # a moderator's request counts, and is refused beyond the quota too
    asked = call(client, "post", "/api/v1/jobs/q-3/reexecutions", personas.moderator_key)
    assert asked.status_code == 201 and asked.json()["reexecution"]["refusal"] == "quota"
    [record] = [r for r in node_records() if r["node"] == "node-1"]
    assert record["over_quota"] == 3
    client.force_login(personas.viewer)
    assert "Over quota" in client.get("/nodes/").content.decode()
    # an hour later the window has moved on
    Reexecution.objects.update(created_at=timezone.now() - timedelta(minutes=61))
    again = call(client, "post", "/api/v1/jobs/q-3/reexecutions", personas.moderator_key)
    assert again.json()["reexecution"]["state"] == "queued"
    assert sorted(run_reexecutions()) == ["match"] * 4


def test_a_bacalhau_orchestrators_and_a_legacy_clients_quotas(
    client: Client, personas: Personas, settings
) -> None:
    settings.REEXECUTE_QUOTA_PER_ORCHESTRATOR = 1
    settings.REEXECUTE_QUOTA_PER_CLIENT = 1
    orchestrator = BacalhauOrchestrator.objects.create(url="http://orchestrator.example:1234")
    for n in range(2):  # two Bacalhau nodes behind one orchestrator
        job = make_job(f"imported-{n}")
        Job.objects.filter(id=job.id).update(external=True)
        BacalhauExecution.objects.create(
            job=job,
            orchestrator=orchestrator,
            bacalhau_job_id=f"j-{n}",
            execution_id=f"e-{n}",
            node_id=f"QmNode{n}",
        )
        reexecution.after_result(Job.objects.get(id=job.id))
    first, second = (Reexecution.objects.get(job_id=f"imported-{n}") for n in range(2))
    assert first.state == "queued" and second.state == "not_verifiable"
    assert second.error.startswith(
        "quota: the Bacalhau orchestrator http://orchestrator.example:1234 had 1 "
        "re-executions queued in the last hour (REEXECUTE_QUOTA_PER_ORCHESTRATOR)"
    )
    records = {r["node"]: r for r in node_records() if r["kind"] == "bacalhau"}
    assert records["QmNode1"]["over_quota"] == 1 and records["QmNode0"]["over_quota"] == 0

    key, _ = create_api_key(scope="submitter", name="airflow", actor="test")
    bound = BacalhauClient.objects.create(client_id="c" * 64, key=key)
    for n in range(2):  # two jobs submitted through the legacy API, asked for by a moderator
        job = make_job(f"legacy-{n}")
        BacalhauSubmission.objects.create(job=job, client=bound, spec={})
        reexecution.request(job_id=job.id, user=personas.moderator)
    assert Reexecution.objects.get(job_id="legacy-0").state == "queued"
    refused = Reexecution.objects.get(job_id="legacy-1")
    assert refused.state == "not_verifiable" and refused.refusal == "quota"
    assert "the Bacalhau client cccccccccccc… had 1" in refused.error
    assert "REEXECUTE_QUOTA_PER_CLIENT" in refused.error
