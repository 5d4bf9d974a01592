"""The risks of verifying a job (dashboard/moderation/risks.py) and the DataCap guard rails:
what GET /jobs/{id} says, and what POST /jobs/{id}/decision refuses, with which code."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from dashboard.keys.services import create_api_key
from dashboard.models import (
    ApiKey,
    AuditEvent,
    Job,
    JobInput,
    JobResult,
    ModeratorProfile,
    Novelty,
    Reexecution,
)
from dashboard.moderation import services as moderation
from tests.base import Personas
from tests.e2e.page_data import BLESSED_CID, SOURCE, make_job

RESULT_CID = "bafybeibvbwys4xy7qangjbe5axy6yokd2lu4q5c7fjmhsgbf4qzjncj44a"
CIDS = {"result_cid": RESULT_CID, "stdout_cid": "", "stderr_cid": "", "outputs_cid": ""}
TIB = 1 << 40
# A result CAR whose smallest piece is 2 TiB: a suggestion above the second-approval line.
CAR_OF_2_TIB = (2 * TIB) * 127 // 128

pytestmark = pytest.mark.django_db


def call(client: Client, key: str, method: str, path: str, body: Any = None) -> Any:
    kwargs: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    if body is not None:
        kwargs.update(data=json.dumps(body), content_type="application/json")
    return getattr(client, method)(f"/api/v1{path}", **kwargs)


def decide(client: Client, key: str, job_id: str, body: dict[str, Any]) -> Any:
    return call(client, key, "post", f"/jobs/{job_id}/decision", body)


def error(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


def risky_job(personas: Personas, job_id: str = "risky") -> Job:
    """An external job from a caught node: an unblessed input, exit 3, never re-run to a
    match, its result not measured here."""
    job = make_job(job_id, blessed=False, node=personas.node, cids=CIDS)
    JobResult.objects.filter(job=job).update(exit_code=3, car_bytes=None)
    liar = make_job("liar-job", node=personas.node, cids=CIDS, moderation="rejected")
    liar.reexecution_verdict = Reexecution.State.MISMATCH
    liar.save(update_fields=["reexecution_verdict"])
    return job


def test_the_job_api_says_what_verifying_risks(client: Client, personas: Personas) -> None:
    make_job("clean", cids=CIDS, size=14)
    JobInput.objects.filter(job_id="clean").update(sources=[{**SOURCE, "status": "active"}])
    risky_job(personas)
    clean = call(client, personas.moderator_key, "get", "/jobs/clean").json()["risks"]
    assert clean == {
        "inputs": "all",
        "blessed_by": {BLESSED_CID: ["claim 12345"]},
        "exit_code": 0,
        "reexecution": "not_verified_by_rerun",
        "node_caught": False,
        "result_measured": True,
        "novelty": {
            "state": "measured",
            "novel_bytes": 14,
            "total_bytes": 14,
            "percent": 100.0,
            "sources": [],
            "method": "test",
            "measured_at": clean["novelty"]["measured_at"],
            "error": "",
        },
        "datacap_suggested": 128,
        "datacap_asked": None,
        "open": [],
    }
    risky = call(client, personas.moderator_key, "get", "/jobs/risky").json()["risks"]
    assert risky["inputs"] == "none" and risky["blessed_by"] == {}
    assert risky["exit_code"] == 3 and risky["node_caught"] is True
    assert risky["result_measured"] is False and risky["datacap_suggested"] is None
    assert risky["open"] == [
        "inputs_not_blessed",
        "nonzero_exit",
        "rerun_not_match",
        "node_caught",
        "result_not_measured",
    ]


def test_verifying_against_risks_names_each_one_and_says_why(
    client: Client, personas: Personas, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.REEXECUTE_BEFORE_VERIFY = False  # the rerun risk is accepted, not a hard gate
    risky_job(personas)
    verify = {"decision": "verify", "datacap_bytes": 512}
    refused = decide(client, personas.moderator_key, "risky", verify)
    assert error(refused) == (409, "risks_not_accepted")
    assert refused.json()["error"]["fields"]["accept_risks"] == [
        "inputs_not_blessed",
        "nonzero_exit",
        "rerun_not_match",
        "node_caught",
        "result_not_measured",
    ]
    some = dict(verify, accept_risks=["nonzero_exit", "node_caught"], reason="seen")
    refused = decide(client, personas.moderator_key, "risky", some)
    assert error(refused) == (409, "risks_not_accepted")
    assert "inputs_not_blessed" in refused.json()["error"]["message"]
    assert "nonzero_exit" not in refused.json()["error"]["fields"]["accept_risks"]
    every = dict(verify, accept_risks=refused.json()["error"]["fields"]["accept_risks"] + [
        "nonzero_exit", "node_caught"])  # fmt: skip
    assert error(decide(client, personas.moderator_key, "risky", every)) == (
        400,
        "invalid_decision",
    )  # no reason
    unknown = dict(every, accept_risks=["nothing_at_all"], reason="x")
    assert error(decide(client, personas.moderator_key, "risky", unknown))[0] == 400
    assert not AuditEvent.objects.filter(action="job.verify").exists()
    ok = decide(client, personas.moderator_key, "risky", dict(every, reason="a known bad exit"))
    assert ok.status_code == 200 and ok.json()["moderation"]["state"] == "verified"
    event = AuditEvent.objects.get(action="job.verify")
    assert event.after["accepted_risks"] == [
        "inputs_not_blessed",
        "nonzero_exit",
        "rerun_not_match",
        "node_caught",
        "result_not_measured",
    ]
    assert event.reason == "a known bad exit"


def test_a_job_with_no_risk_needs_no_acceptance(client: Client, personas: Personas) -> None:
    make_job("clean", cids=CIDS, size=14)
    ok = decide(
        client, personas.moderator_key, "clean", {"decision": "verify", "datacap_bytes": 128}
    )
    assert ok.status_code == 200
    assert AuditEvent.objects.get(action="job.verify").after["accepted_risks"] == []


def test_the_amount_may_not_exceed_the_suggestion_times_the_setting(
    client: Client, personas: Personas, settings
) -> None:  # type: ignore[no-untyped-def]
    # the incident: 1 PiB verified for a 14-byte result whose suggestion was 128 B
    make_job("small", cids=CIDS, size=14)
    pib = {"decision": "verify", "datacap_bytes": "1 PiB"}
    refused = decide(client, personas.moderator_key, "small", pib)
    assert error(refused) == (400, "datacap_over_cap")
    assert refused.json()["error"]["fields"] == {"datacap_bytes": "at most 128"}
    over = {"decision": "verify", "datacap_bytes": 129}
    assert error(decide(client, personas.moderator_key, "small", over)) == (400, "datacap_over_cap")
    settings.DATACAP_MAX_OVER_SUGGESTION = 2
    ok = decide(
        client, personas.moderator_key, "small", {"decision": "verify", "datacap_bytes": 256}
    )
    assert ok.status_code == 200 and ok.json()["moderation"]["datacap_bytes"] == 256


def moderator_key_for(username: str) -> str:
    _, raw = create_api_key(scope="moderator", name=f"{username}-script", username=username,
                            actor="test")  # fmt: skip
    return raw


def test_a_large_verification_waits_for_a_second_moderator(
    client: Client, personas: Personas
) -> None:
    job = make_job("big", cids=CIDS)
    JobResult.objects.filter(job=job).update(car_bytes=CAR_OF_2_TIB, provider="f01234")
    # the job's submitter is victor (a viewer made moderator for this test)
    owner, _ = create_api_key(scope="submitter", name="victor-submits", actor="test")
    ApiKey.objects.filter(pk=owner.pk).update(user=personas.viewer)
    Job.objects.filter(id="big").update(owner=owner)
    ModeratorProfile.objects.filter(user=personas.viewer).update(role="moderator")
    assert error(decide(client, personas.moderator_key, "big", {"decision": "approve"})) == (
        409,
        "not_awaiting_approval",
    )
    verified = decide(client, personas.moderator_key, "big",
                      {"decision": "verify", "datacap_bytes": "2 TiB"})  # fmt: skip
    assert verified.status_code == 200
    assert verified.json()["moderation"]["state"] == "awaiting_second_approval"
    notary = call(client, personas.notary_key, "get", f"/notary/verifications/{RESULT_CID}")
    assert notary.json()["verified"] is False
    assert notary.json()["reason"]["code"] == "awaiting_second_approval"
    assert notary.json()["datacap_bytes"] is None
    # neither the moderator who verified it nor the job's submitter may approve it
    mine = decide(client, personas.moderator_key, "big", {"decision": "approve"})
    assert error(mine) == (403, "second_approver_required") and "you verified" in mine.json()[
        "error"]["message"]  # fmt: skip
    submitter = decide(client, personas.viewer_key, "big", {"decision": "approve"})
    assert error(submitter) == (403, "second_approver_required")
    assert "you submitted" in submitter.json()["error"]["message"]
    assert Job.objects.get(id="big").moderation_state == "awaiting_second_approval"
    # an approval takes no amount and no risks
    ada = moderator_key_for("ada")
    with_amount = {"decision": "approve", "datacap_bytes": 1}
    assert error(decide(client, ada, "big", with_amount)) == (400, "invalid_decision")
    approved = decide(client, ada, "big", {"decision": "approve"})
    assert approved.status_code == 200 and approved.json()["moderation"]["state"] == "verified"
    event = AuditEvent.objects.get(action="job.approve")
    assert event.actor == "user:ada"
    assert event.before["moderation_state"] == "awaiting_second_approval"
    assert event.after["moderation_state"] == "verified"
    notary = call(client, personas.notary_key, "get", f"/notary/verifications/{RESULT_CID}")
    assert notary.json()["verified"] is True and notary.json()["datacap_bytes"] == 2 * TIB
    again = decide(client, personas.viewer_key, "big", {"decision": "approve"})
    assert error(again) == (409, "not_awaiting_approval")


def test_up_to_the_line_one_moderator_is_enough(
    client: Client, personas: Personas, settings
) -> None:  # type: ignore[no-untyped-def]
    settings.DATACAP_SECOND_APPROVAL_BYTES = 1024
    make_job("at", cids=CIDS, size=1000)  # a 1 KiB suggestion
    ok = decide(client, personas.moderator_key, "at", {"decision": "verify", "datacap_bytes": 1024})
    assert ok.json()["moderation"]["state"] == "verified"
    settings.DATACAP_SECOND_APPROVAL_BYTES = 1023
    make_job("over", cids={**CIDS, "result_cid": "bafyother"}, size=1000)
    held = decide(client, personas.moderator_key, "over", {"decision": "verify",
                                                          "datacap_bytes": 1024})  # fmt: skip
    assert held.json()["moderation"]["state"] == "awaiting_second_approval"


def test_an_admin_can_withdraw_a_verification_awaiting_approval(
    client: Client, personas: Personas
) -> None:
    job = make_job("big", cids=CIDS)
    JobResult.objects.filter(job=job).update(car_bytes=CAR_OF_2_TIB)
    decide(client, personas.moderator_key, "big", {"decision": "verify", "datacap_bytes": "2 TiB"})
    moderation.revoke(job_id="big", user=personas.admin, reason="too much for one job")
    assert Job.objects.get(id="big").moderation_state == "revoked"
    ada = moderator_key_for("ada")
    assert error(decide(client, ada, "big", {"decision": "approve"})) == (
        409,
        "not_awaiting_approval",
    )


def test_a_result_mostly_copied_is_a_risk_to_accept(
    client: Client, personas: Personas, settings
) -> None:  # type: ignore[no-untyped-def]
    """Below NOVELTY_MIN_PERCENT of new bytes, verifying names `novelty_low`; the source of
    the copy is on the job API."""
    make_job("copy", cids=CIDS, size=1000)
    Novelty.objects.filter(job_id="copy").update(
        novel_bytes=499,
        sources=[{"cid": BLESSED_CID, "kind": "input", "job_id": None, "bytes": 501}],
    )
    risks = call(client, personas.moderator_key, "get", "/jobs/copy").json()["risks"]
    assert risks["open"] == ["novelty_low"]
    assert risks["novelty"]["percent"] == 49.9
    assert risks["novelty"]["sources"][0]["kind"] == "input"
    verify = {"decision": "verify", "datacap_bytes": 128}
    refused = decide(client, personas.moderator_key, "copy", verify)
    assert error(refused) == (409, "risks_not_accepted")
    assert refused.json()["error"]["fields"]["accept_risks"] == ["novelty_low"]
    settings.NOVELTY_MIN_PERCENT = 40  # 49.9 % new is enough now
    assert call(client, personas.moderator_key, "get", "/jobs/copy").json()["risks"]["open"] == []
    settings.NOVELTY_MIN_PERCENT = 50
    accepted = dict(verify, accept_risks=["novelty_low"], reason="a copy we pay for on purpose")
    assert decide(client, personas.moderator_key, "copy", accepted).status_code == 200


@pytest.mark.parametrize("state", ["queued", "running", "failed"])
def test_a_result_still_being_measured_is_a_risk_to_accept(
    client: Client, personas: Personas, state: str
) -> None:
    make_job("waiting", cids=CIDS, size=1000)
    Novelty.objects.filter(job_id="waiting").update(state=state, novel_bytes=None)
    job = call(client, personas.moderator_key, "get", "/jobs/waiting").json()
    assert job["novelty"]["state"] == state and job["novelty"]["percent"] is None
    assert job["risks"]["open"] == ["novelty_not_measured"]
    refused = decide(
        client, personas.moderator_key, "waiting", {"decision": "verify", "datacap_bytes": 128}
    )
    assert refused.json()["error"]["fields"]["accept_risks"] == ["novelty_not_measured"]


def test_a_result_recorded_before_measuring_began_is_not_measured(
    client: Client, personas: Personas
) -> None:
    make_job("old", cids=CIDS, size=1000)
    Novelty.objects.filter(job_id="old").delete()
    job = call(client, personas.moderator_key, "get", "/jobs/old").json()
    assert job["novelty"]["state"] == "not_measured"
    assert job["risks"]["open"] == ["novelty_not_measured"]
    queued = make_job("queued-job", state=Job.State.QUEUED)
    assert (
        call(client, personas.moderator_key, "get", f"/jobs/{queued.id}").json()["novelty"] is None
    )
