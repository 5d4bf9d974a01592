"""A job verified before a re-execution of it mismatched (docs/reexecution.md, "A mismatch
after verification"): the notary is told `rerun_mismatch` and no award is taken until a
moderator confirms the verification (audited, with a reason) or it is revoked; the job is
back in the queue. And the safe default: an external WASM job is verified only after a
re-execution matched, so a node that keeps its module out of our store cannot be verified."""

from __future__ import annotations

import pytest
from django.test import Client

from dashboard import settings as defaults
from dashboard.models import AuditEvent, Decision, Job
from dashboard.reexecution.selectors import node_records
from executor.run import run_job
from executor.spec import parse_spec
from tests.base import ACCEPT_RISKS, Personas
from tests.dashboard.reexecution.common import (
    call,
    node_reports,
    reads_clock_random_and_input,
    run_reexecutions,
)
from tests.e2e.page_data import make_job

pytestmark = pytest.mark.django_db

VERIFY = {"decision": "verify", "datacap_bytes": "1 GiB", **ACCEPT_RISKS}
PIECE = "baga6ea4seaqa32zgo7twhtpi62quq3mcggvjnl5wdh76xb6wns6kyw6zxxcb6jy"  # any piece CID


@pytest.fixture(autouse=True)
def uncapped(settings) -> None:  # type: ignore[no-untyped-def]
    """These tests are about re-executions, not DATACAP_MAX_OVER_SUGGESTION: any amount goes."""
    settings.DATACAP_MAX_OVER_SUGGESTION = 1 << 40


def notary(client: Client, personas: Personas, cid: str) -> dict:
    path = f"/api/v1/notary/verifications/{cid}?provider=f01234"
    return call(client, "get", path, personas.notary_key).json()


def award(client: Client, personas: Personas, cid: str):  # type: ignore[no-untyped-def]
    body = {"cid": cid, "provider": "f01234", "piece_cid": PIECE, "piece_size": 2048}
    return call(client, "post", "/api/v1/notary/awards", personas.notary_key, body)


def decide(client: Client, personas: Personas, job_id: str, body: dict, key: str | None = None):  # type: ignore[no-untyped-def]
    path = f"/api/v1/jobs/{job_id}/decision"
    return call(client, "post", path, key or personas.moderator_key, body)


def test_a_mismatch_after_verification_holds_datacap_until_a_moderator_confirms(
    client: Client, personas: Personas, store, node_store
) -> None:
    # REEXECUTE_BEFORE_VERIFY is off here (the store fixture): verified before the re-run.
    spec = reads_clock_random_and_input([store, node_store])
    fake = run_job(parse_spec(reads_clock_random_and_input([node_store], b"other\n")), node_store)
    node_reports(client, personas.node_key, "early", spec, fake)
    assert decide(client, personas, "early", VERIFY).status_code == 200
    assert notary(client, personas, fake.result_cid)["verified"] is True

    assert run_reexecutions() == ["mismatch"]
    answer = notary(client, personas, fake.result_cid)
    assert answer["verified"] is False and answer["reason"]["code"] == "rerun_mismatch"
    assert answer["moderation_state"] == "verified" and answer["reexecution"]["mismatch_review"]
    refused = award(client, personas, fake.result_cid)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "rerun_mismatch"
    flagged = AuditEvent.objects.get(action="job.mismatch_review")
    assert flagged.actor == "executor" and flagged.target == "job:early"
    # back in the moderators' queue, flagged
    client.force_login(personas.viewer)
    queue = client.get("/").content.decode()
    assert 'id="review-jobs"' in queue and "/jobs/early/" in queue
    page = client.get("/jobs/early/").content.decode()
    assert 'id="mismatch-review"' in page and 'id="confirm-form"' not in page  # a viewer

    # confirming needs a moderator and a reason
    confirm = {"decision": "confirm", "reason": "the node re-uploaded; we checked by hand"}
    viewer = decide(client, personas, "early", confirm, key=personas.viewer_key)
    assert viewer.status_code == 403
    bare = decide(client, personas, "early", {"decision": "confirm"})
    assert bare.status_code == 400 and bare.json()["error"]["fields"] == {"reason": "required"}
    amount = decide(client, personas, "early", {**confirm, "datacap_bytes": "2 GiB"})
    assert amount.status_code == 400 and "datacap_bytes" in amount.json()["error"]["fields"]
    done = decide(client, personas, "early", confirm)
    assert done.status_code == 200, done.json()
    assert done.json()["moderation"]["state"] == "verified"
    assert done.json()["moderation"]["datacap_bytes"] == 1 << 30  # the amount is kept
    assert done.json()["reexecution"]["mismatch_review"] is False
    kept = Decision.objects.get(job_id="early", action="confirm")
    assert kept.actor == "user:mona" and kept.reason == confirm["reason"]
    audited = AuditEvent.objects.get(action="job.confirm")
    assert audited.before["mismatch_review"] and not audited.after["mismatch_review"]
    assert notary(client, personas, fake.result_cid)["verified"] is True
    assert 'id="review-jobs"' not in client.get("/").content.decode()
    again = decide(client, personas, "early", confirm)
    assert again.status_code == 409 and again.json()["error"]["code"] == "nothing_to_confirm"

    # a later mismatch flags it again; an admin's revocation clears it the other way
    call(client, "post", "/api/v1/jobs/early/reexecutions", personas.moderator_key)
    assert run_reexecutions() == ["mismatch"]
    assert notary(client, personas, fake.result_cid)["reason"]["code"] == "rerun_mismatch"
    client.force_login(personas.admin)
    assert client.post("/jobs/early/revoke", {"reason": "the result is wrong"}).status_code == 302
    job = Job.objects.get(id="early")
    assert job.moderation_state == "revoked" and not job.mismatch_review
    assert notary(client, personas, fake.result_cid)["reason"]["code"] == "revoked"


def test_with_the_safe_default_a_confirmation_needs_a_new_match(
    client: Client, personas: Personas, store, node_store, settings, verifier
) -> None:
    settings.REEXECUTE_BEFORE_VERIFY = True
    _, raw = verifier
    spec = reads_clock_random_and_input([store, node_store])
    honest = run_job(parse_spec(spec), node_store)
    node_reports(client, personas.node_key, "honest", spec, honest)
    assert run_reexecutions() == ["match"]
    assert decide(client, personas, "honest", VERIFY).status_code == 200
    # a verifier checks it later and says otherwise
    call(client, "post", "/api/v1/jobs/honest/reexecutions", personas.moderator_key)
    task = call(client, "post", "/api/v1/reexecutions/claim", raw).json()
    wrong = run_job(parse_spec(reads_clock_random_and_input([node_store], b"x\n")), node_store)
    said = call(
        client, "post", f"/api/v1/reexecutions/{task['id']}/result", raw,
        {"result_cid": wrong.result_cid, "exit_code": 0, "runtime_ms": 1},
    )  # fmt: skip
    assert said.json()["state"] == "mismatch"
    assert notary(client, personas, honest.result_cid)["reason"]["code"] == "rerun_mismatch"
    # the moderator cannot confirm on their own word: a new match first
    client.force_login(personas.moderator)
    early = client.post("/jobs/honest/confirm", {"reason": "the verifier is wrong"})
    assert early.status_code == 409 and "latest re-execution is mismatch" in early.content.decode()
    assert client.post("/jobs/honest/reexecute").status_code == 302  # to the bundled executor
    assert run_reexecutions() == ["match"]
    page = client.get("/jobs/honest/").content.decode()
    assert 'id="confirm-form"' in page
    confirmed = client.post("/jobs/honest/confirm", {"reason": "the bundled executor matched"})
    assert confirmed.status_code == 302
    assert notary(client, personas, honest.result_cid)["verified"] is True


def test_external_wasm_jobs_need_a_match_by_default_and_a_failed_rerun_is_a_risk(
    client: Client, personas: Personas, store, node_store, settings
) -> None:
    # the default as dashboard/settings.py reads it, not the store fixture's override
    assert defaults.REEXECUTE_BEFORE_VERIFY is True
    settings.REEXECUTE_BEFORE_VERIFY = defaults.REEXECUTE_BEFORE_VERIFY
    # the node keeps its module (and input) to itself: our re-run cannot even start
    spec = reads_clock_random_and_input([node_store])
    node_reports(client, personas.node_key, "private", spec, run_job(parse_spec(spec), node_store))
    assert run_reexecutions() == ["failed"]
    refused = decide(client, personas, "private", VERIFY)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "not_reexecuted"
    message = refused.json()["error"]["message"]
    assert "its latest re-execution is failed" in message and "cannot be checked" in message
    assert "not found" in message
    [record] = [r for r in node_records() if r["node"] == "node-1"]
    assert record["failed"] == 1
    client.force_login(personas.moderator)
    assert 'id="reexecution-risk"' in client.get("/jobs/private/").content.decode()
    # rejecting is always possible; bundled jobs and Docker jobs are not held back
    reject = {"decision": "reject", "reason": "cannot be checked"}
    assert decide(client, personas, "private", reject).status_code == 200
    make_job("bundled-wasm")
    make_job("external-docker", engine="docker", node=personas.node)
    for job_id in ("bundled-wasm", "external-docker"):
        assert decide(client, personas, job_id, VERIFY).status_code == 200, job_id
