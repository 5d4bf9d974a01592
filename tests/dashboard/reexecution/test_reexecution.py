"""Re-execution (docs/reexecution.md): the bundled executor runs a finished job's spec again
and compares the result CID with the one its node reported.

The external node here is real code on its own store: `executor.run.run_job`, as the CLI
runs it, in another directory holding the same module and input bytes; it registers and
reports over the HTTP API. A lying node reports the result of a different run.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from dashboard.models import AuditEvent, Job, Novelty, Reexecution
from dashboard.reexecution import services as reexecution
from dashboard.reexecution.selectors import node_records
from dashboard.worker import run_once
from executor.embedded_store import EmbeddedStore
from executor.run import run_job
from executor.spec import parse_spec
from tests.base import ACCEPT_RISKS, Personas
from tests.dashboard.reexecution.common import (
    INPUT,
    call,
    job_json,
    node_reports,
    reads_clock_random_and_input,
    report_of,
    run_reexecutions,
)
from tests.executor import wat_modules as wat
from tests.executor.engine_defects import pulley_keeps_nan_payloads

pytestmark = pytest.mark.django_db

# --- an honest node -------------------------------------------------------------------------------


def test_an_honest_nodes_job_reexecutes_to_the_same_cid(
    client: Client, personas: Personas, store, node_store
) -> None:
    spec = reads_clock_random_and_input([store, node_store])
    ran = run_job(parse_spec(spec), node_store)
    stdout = node_store.cat(ran.stdout_cid).decode().splitlines()
    assert stdout[0] == "1640995200000000000" and stdout[2] == INPUT.decode().strip()
    reported = node_reports(client, personas.node_key, "honest-1", spec, ran)
    assert reported["reexecution"]["state"] == "queued"  # REEXECUTE_POLICY=all
    assert reported["reexecution"]["reason"] == "policy"
    assert reported["reexecution"]["requested_by"] == "policy"
    assert not store.has(ran.result_cid)  # only the node has its result

    assert run_reexecutions() == ["match"]
    body = job_json(client, personas.node_key, "honest-1")["reexecution"]
    assert body["state"] == "match" and body["deterministic"] is True and body["runs"] == 1
    assert body["reported_cid"] == body["rerun_cid"] == ran.result_cid
    assert body["ran_by"] == "test-worker" and body["finished_at"] and body["diff"] is None
    assert store.has(ran.result_cid)  # the re-run published the same bytes here
    notary = call(
        client, "get", f"/api/v1/notary/verifications/{ran.result_cid}", personas.notary_key
    ).json()
    assert notary["reexecution"]["state"] == "match"
    assert notary["reexecution"]["rerun_cid"] == ran.result_cid
    event = AuditEvent.objects.get(action="reexecution.match")
    assert event.target == "job:honest-1" and event.actor == "executor"
    [record] = [r for r in node_records() if r["node"] == "node-1"]
    assert (record["reported"], record["reexecuted"], record["matched"]) == (1, 1, 1)
    assert record["mismatched"] == 0 and record["caught"] is False


def test_policies_choose_which_external_wasm_jobs_are_reexecuted(
    client: Client, personas: Personas, store, node_store, settings
) -> None:
    spec = reads_clock_random_and_input([store, node_store])
    ran = run_job(parse_spec(spec), node_store)
    settings.REEXECUTE_POLICY = "on_request"
    node_reports(client, personas.node_key, "asked-0", spec, ran)
    assert Reexecution.objects.count() == 0
    assert job_json(client, personas.node_key, "asked-0")["reexecution"]["state"] == (
        "not_verified_by_rerun"
    )
    settings.REEXECUTE_POLICY = "sample"
    settings.REEXECUTE_SAMPLE_PERCENT = 50
    ids = [f"sampled-{n}" for n in range(40)]
    for job_id in ids:
        node_reports(client, personas.node_key, job_id, spec, ran)
    sampled = set(Reexecution.objects.values_list("job_id", flat=True))
    assert 8 <= len(sampled) <= 32  # about half, and not all or none
    assert set(Reexecution.objects.values_list("reason", flat=True)) == {"sampled"}
    settings.REEXECUTE_SAMPLE_PERCENT = 100
    node_reports(client, personas.node_key, "sampled-all", spec, ran)
    assert Reexecution.objects.get(job_id="sampled-all").reason == "sampled"
    settings.REEXECUTE_SAMPLE_PERCENT = 0
    node_reports(client, personas.node_key, "sampled-none", spec, ran)
    assert not Reexecution.objects.filter(job_id="sampled-none").exists()


# --- a lying node ---------------------------------------------------------------------------------


def test_a_lying_node_is_caught_flagged_and_its_job_cannot_be_verified(
    client: Client, personas: Personas, store, node_store, settings, tmp_path: Path
) -> None:
    settings.REEXECUTE_BEFORE_VERIFY = True
    spec = reads_clock_random_and_input([store, node_store])
    honest = run_job(parse_spec(spec), node_store)
    # The liar reports the result of another job (other input bytes) as this job's result,
    # and uploads it, so that the dashboard can read both directories.
    other = reads_clock_random_and_input([node_store], data=b"something else entirely\n")
    fake = run_job(parse_spec(other), node_store)
    car = io.BytesIO()
    node_store.export_car(fake.result_cid, car)
    uploaded = client.post(
        "/api/v1/content",
        data=car.getvalue(),
        content_type="application/vnd.ipld.car",
        HTTP_AUTHORIZATION=f"Bearer {personas.node_key}",
    )
    assert uploaded.status_code == 201, uploaded.json()
    node_reports(client, personas.node_key, "liar-1", spec, fake)

    assert run_reexecutions() == ["mismatch"]
    body = job_json(client, personas.node_key, "liar-1")["reexecution"]
    assert body["state"] == "mismatch"
    assert body["reported_cid"] == fake.result_cid and body["rerun_cid"] == honest.result_cid
    # exitCode and stderr are the same; the printed input and its copy are not
    assert body["diff"] == [
        {
            "path": "outputs/copy",
            "reported": node_store.ls(fake.outputs_cid)[0].cid,
            "rerun": node_store.ls(honest.outputs_cid)[0].cid,
        },
        {"path": "stdout", "reported": fake.stdout_cid, "rerun": honest.stdout_cid},
    ]
    assert AuditEvent.objects.filter(action="reexecution.mismatch", target="job:liar-1").exists()
    # what each side ran: the node's receipt, as it reported it, and the re-run's
    assert body["receipt"]["outcome"] == "completed" and body["receipt"]["engine"] == "wasm"
    client.force_login(personas.viewer)
    page = client.get("/jobs/liar-1/").content.decode()
    assert 'id="mismatch-reported-receipt"' in page and 'id="mismatch-rerun-receipt"' in page

    # the node is marked, and the queue flags the job and the node
    [record] = [r for r in node_records() if r["node"] == "node-1"]
    assert record["caught"] is True and record["mismatched"] == 1
    client.force_login(personas.moderator)
    queue = client.get("/").content.decode()
    assert "re-run mismatch" in queue and "node caught" in queue
    nodes = client.get("/nodes/").content.decode()
    assert "node-1" in nodes and "caught" in nodes

    # REEXECUTE_BEFORE_VERIFY: verification is refused, with the reason; rejecting resolves it
    refused = call(
        client,
        "post",
        "/api/v1/jobs/liar-1/decision",
        personas.moderator_key,
        {"decision": "verify", "datacap_bytes": "1 GiB", **ACCEPT_RISKS},
    )
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "not_reexecuted"
    assert "mismatch" in refused.json()["error"]["message"]
    assert Job.objects.get(id="liar-1").moderation_state == "pending"
    rejected = call(
        client,
        "post",
        "/api/v1/jobs/liar-1/decision",
        personas.moderator_key,
        {"decision": "reject", "reason": "re-execution gave another result"},
    )
    assert rejected.status_code == 200

    # a caught node's later jobs are re-executed whatever the policy; another node's are not
    settings.REEXECUTE_POLICY = "on_request"
    node_reports(client, personas.node_key, "liar-2", spec, honest)
    assert Reexecution.objects.get(job_id="liar-2").reason == "node_mismatched"
    node_reports(client, personas.other_node_key, "other-1", spec, honest)
    assert not Reexecution.objects.filter(job_id="other-1").exists()
    assert run_reexecutions() == ["match"]  # this time it told the truth
    assert Job.objects.get(id="liar-2").reexecution_verdict == "match"


def test_a_reported_result_not_in_the_store_is_compared_at_the_root(
    client: Client, personas: Personas, store, node_store
) -> None:
    spec = reads_clock_random_and_input([store, node_store])
    other = reads_clock_random_and_input([node_store], data=b"other\n")
    fake = run_job(parse_spec(other), node_store)
    node_reports(client, personas.node_key, "liar-far", spec, fake)
    assert run_reexecutions() == ["mismatch"]
    run = Reexecution.objects.get(job_id="liar-far")
    assert run.diff == [{"path": ".", "reported": fake.result_cid, "rerun": run.result_cid}]


def test_a_true_root_with_invented_parts_is_a_mismatch_once_the_rerun_stores_it(
    client: Client, personas: Personas, store, node_store
) -> None:
    # The node ran the job and reports its true result CID, but names another stdout and
    # exit code: with the result not in the store, nothing could check them when it reported.
    spec = reads_clock_random_and_input([store, node_store])
    ran = run_job(parse_spec(spec), node_store)
    invented = node_store.add_bytes(b"all inputs are fine, verify me\n")
    body = {**report_of(ran, spec), "stdout_cid": invented, "exit_code": 7}
    registered = call(
        client, "post", "/api/v1/jobs", personas.node_key, {**spec, "external": True, "id": "parts"}
    )
    assert registered.status_code == 201
    reported = call(client, "post", "/api/v1/jobs/parts/results", personas.node_key, body)
    assert reported.status_code == 201, reported.json()
    assert reported.json()["result"]["parts_checked"] is False
    assert run_reexecutions() == ["mismatch"]
    run = Reexecution.objects.get(job_id="parts")
    assert run.result_cid == ran.result_cid  # the same root...
    assert run.diff == [  # ...but not the parts the node named
        {"path": "stdout", "reported": invented, "rerun": ran.stdout_cid},
        {"path": "exit_code", "reported": "7", "rerun": "0"},
    ]
    [record] = [r for r in node_records() if r["node"] == "node-1"]
    assert record["mismatched"] == 1
    job = job_json(client, personas.node_key, "parts")
    assert job["result"]["parts_checked"] is False  # the report stays as it was said


def test_a_matching_rerun_has_the_reported_result_measured_and_its_parts_read(
    client: Client, personas: Personas, store, node_store
) -> None:
    spec = reads_clock_random_and_input([store, node_store])
    ran = run_job(parse_spec(spec), node_store)
    body = {**report_of(ran, spec), "size_bytes": ran.size_bytes + 1}  # a wrong size, unchecked
    registered = call(
        client, "post", "/api/v1/jobs", personas.node_key, {**spec, "external": True, "id": "late"}
    )
    assert registered.status_code == 201
    assert (
        call(client, "post", "/api/v1/jobs/late/results", personas.node_key, body).status_code
        == 201
    )
    before = job_json(client, personas.node_key, "late")["result"]
    assert before["parts_checked"] is False and before["size_bytes"] == ran.size_bytes + 1
    assert run_reexecutions() == ["match"]
    after = job_json(client, personas.node_key, "late")["result"]
    assert after["parts_checked"] is True
    assert after["size_bytes"] == ran.size_bytes  # measured, not as said
    assert (after["stdout_cid"], after["outputs_cid"]) == (ran.stdout_cid, ran.outputs_cid)
    event = AuditEvent.objects.get(action="job.result_checked")
    assert event.target == "job:late" and event.before["size_bytes"] == ran.size_bytes + 1
    assert run_reexecutions() == []  # and a second look changes nothing
    from dashboard.jobs import services as jobs

    assert jobs.check_stored_result(job_id="late") is False


def test_without_the_setting_a_mismatched_job_can_still_be_verified(
    client: Client, personas: Personas, store, node_store
) -> None:
    spec = reads_clock_random_and_input([store, node_store])
    other = reads_clock_random_and_input([node_store], data=b"other\n")
    node_reports(client, personas.node_key, "liar-ok", spec, run_job(parse_spec(other), node_store))
    assert run_reexecutions() == ["mismatch"]
    verified = call(
        client,
        "post",
        "/api/v1/jobs/liar-ok/decision",
        personas.moderator_key,
        {"decision": "verify", "datacap_bytes": "1 GiB", **ACCEPT_RISKS},
    )
    assert verified.status_code == 200  # REEXECUTE_BEFORE_VERIFY is off: the moderator's call


def test_the_setting_holds_back_verification_until_the_rerun_matched(
    client: Client, personas: Personas, store, node_store, settings
) -> None:
    settings.REEXECUTE_BEFORE_VERIFY = True
    spec = reads_clock_random_and_input([store, node_store])
    node_reports(client, personas.node_key, "waits", spec, run_job(parse_spec(spec), node_store))
    # The match measures the result (it reached the store), so the amount is held to the
    # suggestion: the minimal piece of its CAR.
    decision = {"decision": "verify", "datacap_bytes": "1 KiB", **ACCEPT_RISKS}
    early = call(client, "post", "/api/v1/jobs/waits/decision", personas.moderator_key, decision)
    assert early.status_code == 409 and "queued" in early.json()["error"]["message"]
    assert run_reexecutions() == ["match"]
    late = call(client, "post", "/api/v1/jobs/waits/decision", personas.moderator_key, decision)
    assert late.status_code == 200, late.json()
    assert late.json()["moderation"]["state"] == "verified"


# --- failures, retries, lost workers --------------------------------------------------------


def test_a_failed_reexecution_is_readable_retryable_and_audited(
    client: Client, personas: Personas, store, node_store
) -> None:
    # The node has the input; the dashboard's store does not (yet).
    spec = reads_clock_random_and_input([node_store])
    store.add_bytes(wat.clock_random_and_input())
    ran = run_job(parse_spec(spec), node_store)
    node_reports(client, personas.node_key, "gone-1", spec, ran)
    assert run_reexecutions() == ["failed"]
    body = job_json(client, personas.node_key, "gone-1")["reexecution"]
    assert body["state"] == "failed" and body["rerun_cid"] is None
    assert spec["inputs"][0]["cid"] in body["error"] and "not found" in body["error"]
    failed = AuditEvent.objects.get(action="reexecution.failed")
    assert failed.target == "job:gone-1" and spec["inputs"][0]["cid"] in failed.reason

    store.add_bytes(INPUT)  # the input is back
    again = call(client, "post", "/api/v1/jobs/gone-1/reexecutions", personas.moderator_key)
    assert again.status_code == 201 and again.json()["reexecution"]["state"] == "queued"
    assert again.json()["reexecution"]["requested_by"] == "user:mona"
    twice = call(client, "post", "/api/v1/jobs/gone-1/reexecutions", personas.moderator_key)
    assert twice.status_code == 200 and twice.json()["reexecution"]["runs"] == 2  # no third
    assert AuditEvent.objects.filter(action="job.reexecute", actor="user:mona").count() == 1
    assert run_reexecutions() == ["match"]
    assert job_json(client, personas.node_key, "gone-1")["reexecution"]["state"] == "match"


def test_a_limit_the_rerun_hits_fails_it(
    client: Client, personas: Personas, store, node_store
) -> None:
    # The node claims a job that spins past its fuel limit completed: the re-run, with the
    # original's limits, stops where the limit is.
    spec = {"engine": "wasm", "wasm": {"module": store.add_bytes(wat.spin())}}
    spec["limits"] = {"fuel": 1000}
    claimed = run_job(
        parse_spec(reads_clock_random_and_input([node_store])), node_store
    )  # any result
    node_reports(client, personas.node_key, "spins", spec, claimed)
    assert run_reexecutions() == ["failed"]
    assert (
        Reexecution.objects.get(job_id="spins").error
        == "fuel_exhausted: fuel limit of 1000 exhausted"
    )


@pytest.mark.parametrize(
    ("module", "limits", "outcome"),
    [(wat.spin, {"timeout_s": 0.5}, "timed_out"), (wat.recursion, {}, "stack_exhausted")],
)
def test_a_rerun_that_ends_in_a_way_no_machine_reproduces_is_not_verifiable(
    client: Client, personas: Personas, store, node_store, module, limits, outcome
) -> None:
    """A wall-time timeout or the engine's stack running out says nothing about what the
    node reported: the re-run is not_verifiable with the reason, never a mismatch, and the
    node is not caught."""
    spec = {"engine": "wasm", "wasm": {"module": store.add_bytes(module())}, "limits": limits}
    claimed = run_job(parse_spec(reads_clock_random_and_input([node_store])), node_store)
    node_reports(client, personas.node_key, "unrepeatable", spec, claimed)
    assert run_reexecutions() == ["not_verifiable"]
    body = job_json(client, personas.node_key, "unrepeatable")["reexecution"]
    assert body["state"] == "not_verifiable" and body["error"].startswith(f"{outcome}: ")
    assert "not reproducible" in body["error"]
    assert Job.objects.get(id="unrepeatable").reexecution_verdict == ""  # no match, no mismatch
    assert not AuditEvent.objects.filter(action="reexecution.mismatch").exists()
    assert AuditEvent.objects.filter(action="reexecution.not_verifiable").count() == 1


def test_a_lost_worker_records_nothing_and_the_run_is_requeued(
    client: Client, personas: Personas, store, node_store, settings
) -> None:
    settings.EXECUTOR_MAX_ATTEMPTS = 2
    spec = reads_clock_random_and_input([store, node_store])
    ran = run_job(parse_spec(spec), node_store)
    node_reports(client, personas.node_key, "lost-1", spec, ran)
    first = reexecution.claim_next(worker="first")
    assert first is not None and reexecution.claim_next(worker="rival") is None
    assert job_json(client, personas.node_key, "lost-1")["reexecution"]["state"] == "running"
    assert reexecution.recover_expired() == {"requeued": [], "failed": []}  # lease still live
    Reexecution.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert reexecution.recover_expired() == {"requeued": [first.pk], "failed": []}
    assert job_json(client, personas.node_key, "lost-1")["reexecution"]["state"] == "queued"
    # the first worker comes back with a "match": it no longer holds the lease, so nothing
    assert (
        reexecution.finish(
            first, worker="first", result_cid=ran.result_cid, exit_code=0, runtime_ms=1
        )
        is None
    )
    assert Reexecution.objects.get(pk=first.pk).state == "queued"
    assert not AuditEvent.objects.filter(action__startswith="reexecution.").exists()
    # lost a second time: failed, readable, and retryable by asking again
    second = reexecution.claim_next(worker="second")
    assert second is not None and second.attempts == 2
    Reexecution.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert reexecution.recover_expired() == {"requeued": [], "failed": [first.pk]}
    body = job_json(client, personas.node_key, "lost-1")["reexecution"]
    assert body["state"] == "failed" and "lost 2 times" in body["error"]
    retry = call(client, "post", "/api/v1/jobs/lost-1/reexecutions", personas.moderator_key)
    assert retry.status_code == 201
    assert run_reexecutions() == ["match"]


# --- asking for one -------------------------------------------------------------------------------


def test_who_may_ask_and_for_which_jobs(
    client: Client, personas: Personas, store, node_store, settings
) -> None:
    settings.REEXECUTE_POLICY = "on_request"
    spec = reads_clock_random_and_input([store, node_store])
    node_reports(client, personas.node_key, "ask-1", spec, run_job(parse_spec(spec), node_store))
    path = "/api/v1/jobs/ask-1/reexecutions"
    for key in (personas.node_key, personas.submitter_key, personas.notary_key):
        assert call(client, "post", path, key).status_code == 403
    viewer = call(client, "post", path, personas.viewer_key)
    assert viewer.status_code == 403 and "moderator or admin" in viewer.json()["error"]["message"]
    assert call(client, "post", path, None).status_code == 401
    missing = call(client, "post", "/api/v1/jobs/nope/reexecutions", personas.moderator_key)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    registered = call(
        client, "post", "/api/v1/jobs", personas.node_key, {**spec, "external": True, "id": "r"}
    )
    assert registered.status_code == 201
    running = call(client, "post", "/api/v1/jobs/r/reexecutions", personas.moderator_key)
    assert running.status_code == 409 and running.json()["error"]["code"] == "job_not_finished"
    assert Reexecution.objects.count() == 0
    asked = call(client, "post", path, personas.moderator_key)
    assert asked.status_code == 201 and asked.json()["reexecution"]["reason"] == "requested"
    assert run_reexecutions() == ["match"]


def test_the_job_page_shows_the_state_and_asks_for_a_run(
    client: Client, personas: Personas, store, node_store, settings
) -> None:
    settings.REEXECUTE_POLICY = "on_request"
    spec = reads_clock_random_and_input([store, node_store])
    node_reports(client, personas.node_key, "page-1", spec, run_job(parse_spec(spec), node_store))
    client.force_login(personas.viewer)
    page = client.get("/jobs/page-1/").content.decode()
    assert "not verified by re-run" in page and 'id="reexecute-form"' not in page
    assert client.post("/jobs/page-1/reexecute").status_code == 403
    client.force_login(personas.moderator)
    assert 'id="reexecute-form"' in client.get("/jobs/page-1/").content.decode()
    asked = client.post("/jobs/page-1/reexecute")
    assert asked.status_code == 302
    assert run_reexecutions() == ["match"]
    page = client.get("/jobs/page-1/").content.decode()
    assert 'id="reexecution-state"' in page and ">match<" in page and "test-worker" in page


def test_a_docker_job_is_marked_not_deterministic(
    client: Client, personas: Personas, store
) -> None:
    spec = {"engine": "docker", "docker": {"image": "busybox:1.36", "entrypoint": ["true"]}}
    registered = call(
        client, "post", "/api/v1/jobs", personas.node_key, {**spec, "external": True, "id": "d"}
    )
    assert registered.status_code == 201
    ran = run_job(
        parse_spec(reads_clock_random_and_input([store])), store
    )  # any result in the store
    reported = call(
        client, "post", "/api/v1/jobs/d/results", personas.node_key, report_of(ran, spec)
    ).json()
    # Docker is not re-executed by the policy, only on request, and never as evidence
    rerun = reported["reexecution"]
    assert (rerun["state"], rerun["deterministic"], rerun["runs"]) == (
        "not_verified_by_rerun",
        False,
        0,
    )
    client.force_login(personas.moderator)
    assert "engine not deterministic" in client.get("/jobs/d/").content.decode()


def test_the_embedded_worker_runs_submitted_jobs_before_reexecutions(
    client: Client, personas: Personas, store, node_store
) -> None:
    spec = reads_clock_random_and_input([store, node_store])
    node_reports(client, personas.node_key, "older", spec, run_job(parse_spec(spec), node_store))
    [queued] = Reexecution.objects.filter(job_id="older")  # queued first
    submitted = call(client, "post", "/api/v1/jobs", personas.submitter_key, spec).json()["id"]
    assert run_once("w") == f"job {submitted}"
    assert Job.objects.get(id=submitted).state == "completed"
    assert Reexecution.objects.get(pk=queued.pk).state == "queued"
    # How new the job's result is, measured before any re-execution runs.
    assert run_once("w") == f"novelty {submitted}"
    assert run_once("w") == f"reexecution {queued.pk}"
    assert Reexecution.objects.get(pk=queued.pk).state == "match"
    # The match put the node's result in our store: now its novelty can be measured.
    assert Novelty.objects.get(job_id="older").state == "queued"
    assert run_once("w") == "novelty older"
    assert Novelty.objects.get(job_id="older").state == "measured"
    assert run_once("w") is None


# --- verifier nodes -------------------------------------------------------------------------------


def test_a_verifier_node_reruns_another_nodes_job_and_the_dashboard_compares(
    client: Client, personas: Personas, store, node_store, verifier, tmp_path: Path
) -> None:
    key, raw = verifier
    spec = reads_clock_random_and_input([store, node_store])
    honest = run_job(parse_spec(spec), node_store)
    node_reports(client, personas.node_key, "checked-1", spec, honest)
    # who may take one: a verifier node key only
    for other in (personas.node_key, personas.submitter_key, personas.moderator_key):
        assert call(client, "post", "/api/v1/reexecutions/claim", other).status_code == 403
    task = call(client, "post", "/api/v1/reexecutions/claim", raw)
    assert task.status_code == 200, task.json()
    body = task.json()
    assert body["job_id"] == "checked-1" and body["spec"] == parse_spec(spec).to_json()
    assert honest.result_cid not in json.dumps(body)  # it must compute the CID, not echo it
    assert call(client, "post", "/api/v1/reexecutions/claim", raw).status_code == 204  # taken
    assert reexecution.claim_next(worker="bundled") is None  # ours cannot take it either

    lease = call(client, "post", f"/api/v1/reexecutions/{body['id']}/lease", raw)
    assert lease.status_code == 200 and lease.json()["lease_until"] >= body["lease_until"]
    # the verifier runs it on its own store, with the same bytes
    verifier_store = EmbeddedStore(tmp_path / "verifier")
    reads_clock_random_and_input([verifier_store])
    rerun = run_job(parse_spec(body["spec"]), verifier_store)
    bad = call(
        client, "post", f"/api/v1/reexecutions/{body['id']}/result", raw,
        {"result_cid": rerun.result_cid, "exit_code": 0, "runtime_ms": 2, "error": "both"},
    )  # fmt: skip
    assert bad.status_code == 400 and list(bad.json()["error"]["fields"]) == ["error"]
    partial = call(
        client, "post", f"/api/v1/reexecutions/{body['id']}/result", raw,
        {"result_cid": rerun.result_cid},
    )  # fmt: skip
    assert partial.status_code == 400
    assert set(partial.json()["error"]["fields"]) == {"exit_code", "runtime_ms"}
    outcome = call(
        client, "post", f"/api/v1/reexecutions/{body['id']}/result", raw,
        {"result_cid": rerun.result_cid, "exit_code": 0, "runtime_ms": 2},
    )  # fmt: skip
    assert outcome.status_code == 200, outcome.json()
    assert outcome.json()["state"] == "match" and outcome.json()["ran_by"] == "node:verifier-1"
    again = call(
        client, "post", f"/api/v1/reexecutions/{body['id']}/failure", raw, {"error": "late"}
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "lease_lost"
    assert job_json(client, personas.node_key, "checked-1")["reexecution"]["state"] == "match"


def test_a_verifier_never_checks_its_own_jobs_and_loses_a_lapsed_lease(
    client: Client, personas: Personas, store, node_store, verifier
) -> None:
    key, raw = verifier
    spec = reads_clock_random_and_input([store, node_store])
    ran = run_job(parse_spec(spec), node_store)
    node_reports(client, raw, "own-1", spec, ran)  # the verifier reports a job of its own
    assert call(client, "post", "/api/v1/reexecutions/claim", raw).status_code == 204
    node_reports(client, personas.node_key, "theirs-1", spec, ran)
    task = call(client, "post", "/api/v1/reexecutions/claim", raw).json()
    assert task["job_id"] == "theirs-1"
    Reexecution.objects.filter(pk=task["id"]).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    assert reexecution.recover_expired()["requeued"] == [task["id"]]
    late = call(
        client, "post", f"/api/v1/reexecutions/{task['id']}/result", raw,
        {"result_cid": ran.result_cid, "exit_code": 0, "runtime_ms": 1},
    )  # fmt: skip
    assert late.status_code == 409 and late.json()["error"]["code"] == "lease_lost"
    renew = call(client, "post", f"/api/v1/reexecutions/{task['id']}/lease", raw)
    assert renew.status_code == 409
    assert Reexecution.objects.get(pk=task["id"]).state == "queued"  # nothing recorded
    missing = call(client, "post", "/api/v1/reexecutions/999999/lease", raw)
    assert missing.status_code == 404
    # the bundled executor takes the requeued run, and the own job's run too
    assert sorted(run_reexecutions()) == ["match", "match"]
    failed = call(client, "post", "/api/v1/reexecutions/claim", raw)
    assert failed.status_code == 204


def test_a_run_id_no_row_can_have_is_a_404(client: Client, verifier) -> None:
    _, raw = verifier
    for run_id in ("0", str(2**63), str(2**70)):
        answer = call(client, "post", f"/api/v1/reexecutions/{run_id}/lease", raw)
        assert answer.status_code == 404, (run_id, answer.content)
        assert answer.json()["error"]["code"] == "not_found"


# --- a second engine --------------------------------------------------------------------------


def test_with_two_engines_an_honest_result_matches_on_both(
    client: Client, personas: Personas, store, node_store, settings
) -> None:
    settings.REEXECUTE_ENGINES = ["cranelift", "pulley"]
    spec = {"engine": "wasm", "wasm": {"module": store.add_bytes(wat.nan_bits())}}
    node_store.add_bytes(wat.nan_bits())
    honest = run_job(parse_spec(spec), node_store)
    node_reports(client, personas.node_key, "two-engines", spec, honest)
    assert run_reexecutions() == ["match"]
    body = job_json(client, personas.node_key, "two-engines")["reexecution"]
    assert body["receipt"]["target"] == "cranelift, pulley"
    assert body["receipt"]["fuel_used"] == honest.fuel_used


def test_our_two_engines_disagreeing_is_our_defect_not_the_nodes(
    client: Client, personas: Personas, store, node_store, settings, monkeypatch
) -> None:
    """Pulley with NaN canonicalisation turned off (a defect planted in our own engine):
    the run is not_verifiable naming both engines' answers, never a mismatch, and the node
    that reported the honest result is not caught."""
    settings.REEXECUTE_ENGINES = ["cranelift", "pulley"]
    spec = {"engine": "wasm", "wasm": {"module": store.add_bytes(wat.nan_bits())}}
    node_store.add_bytes(wat.nan_bits())
    honest = run_job(parse_spec(spec), node_store)
    node_reports(client, personas.node_key, "diverges", spec, honest)
    pulley_keeps_nan_payloads(monkeypatch)
    assert run_reexecutions() == ["not_verifiable"]
    body = job_json(client, personas.node_key, "diverges")["reexecution"]
    assert body["error"].startswith(f"engine_divergence: cranelift: {honest.result_cid}")
    assert "pulley: " in body["error"] and "a defect of this executor" in body["error"]
    assert Job.objects.get(id="diverges").reexecution_verdict == ""
    [record] = [r for r in node_records() if r["node"] == "node-1"]
    assert record["caught"] is False and record["mismatched"] == 0


@pytest.mark.parametrize(
    ("outcome", "state"),
    [("timed_out", "match"), (None, "match"), ("failed_in_program", "not_verifiable")],
)
def test_when_the_second_engine_gives_no_result(
    client: Client, personas: Personas, store, node_store, settings, monkeypatch, outcome, state
) -> None:
    """The first engine's result decides unless the second ended reproducibly without one:
    running out of time (slower, an interpreter) or an input fetched again failing is no
    evidence; a trap where the first engine gave a result is our engines disagreeing."""
    from dashboard import worker
    from executor.run import JobFailed

    real = worker._run

    def second_fails(spec, keeper, engine):  # type: ignore[no-untyped-def]
        if engine == "pulley":
            raise JobFailed("it stopped", outcome)
        return real(spec, keeper, engine)

    settings.REEXECUTE_ENGINES = ["cranelift", "pulley"]
    spec = {"engine": "wasm", "wasm": {"module": store.add_bytes(wat.nan_bits())}}
    node_store.add_bytes(wat.nan_bits())
    honest = run_job(parse_spec(spec), node_store)
    node_reports(client, personas.node_key, "second", spec, honest)
    monkeypatch.setattr(worker, "_run", second_fails)
    assert run_reexecutions() == [state]
    body = job_json(client, personas.node_key, "second")["reexecution"]
    if state == "match":
        assert body["receipt"]["target"] == "cranelift"  # the engine that gave the result
    else:
        assert body["error"].startswith("engine_divergence: cranelift: ")
        assert "pulley: failed_in_program: it stopped" in body["error"]
