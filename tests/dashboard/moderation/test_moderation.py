"""Moderation rules: who may decide, once only, with amounts typed with units,
audited in the same transaction; the decision API for scripts uses the same service."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import close_old_connections, connection
from django.test import Client
from django.utils import timezone

from dashboard.errors import DomainError
from dashboard.models import AuditEvent, Decision, Job, JobInput, JobResult, Novelty
from dashboard.moderation import services as moderation
from dashboard.moderation.datacap import format_bytes, parse_datacap, suggested_datacap
from tests.awards import award
from tests.base import Personas

RESULT_CID = "bafybeibvbwys4xy7qangjbe5axy6yokd2lu4q5c7fjmhsgbf4qzjncj44a"
# A result CAR whose smallest piece is 64 GiB: the suggestion, and the cap by default.
CAR_OF_64_GIB = (64 << 30) * 127 // 128


def finished_job(job_id: str = "job-1", *, state: str = "completed") -> Job:
    """A bundled job with no risk: its one input blessed, exit 0, its result measured, all of
    it new."""
    job = Job.objects.create(
        id=job_id,
        engine="wasm",
        spec={"engine": "wasm"},
        spec_digest="0" * 64,
        state=state,
        finished_at=timezone.now(),
        inputs_blessed=True,
    )
    JobInput.objects.create(
        job=job,
        position=0,
        cid=RESULT_CID,
        path="/inputs/a",
        blessed=True,
        status="active",
        sources=[{"kind": "claim", "id": 7, "status": "active"}],
    )
    if state == "completed":
        JobResult.objects.create(
            job=job,
            result_cid=RESULT_CID,
            exit_code=0,
            stdout_cid=RESULT_CID,
            stderr_cid=RESULT_CID,
            outputs_cid=RESULT_CID,
            size_bytes=1000,
            car_bytes=CAR_OF_64_GIB,
            runtime_ms=5,
        )
        Novelty.objects.create(
            job=job,
            result_cid=RESULT_CID,
            state=Novelty.State.MEASURED,
            novel_bytes=1000,
            total_bytes=1000,
            sources=[],
        )
    return job


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("32 GiB", 32 << 30),
        ("1.5 TiB", 3 << 39),
        ("1073741824", 1 << 30),
        (" 2gib ", 2 << 30),
        ("500 GB", 500 * 10**9),
        ("7 B", 7),
        (4096, 4096),
    ],
)
def test_datacap_amounts_with_units(text: str | int, expected: int) -> None:
    assert parse_datacap(text) == expected


@pytest.mark.parametrize("text", ["", "0", "-1 GiB", "1.5 B", "3 furlongs", "GiB", "2 EiB", True])
def test_bad_datacap_amounts(text: str) -> None:
    with pytest.raises(ValueError):
        parse_datacap(text)


def test_suggested_datacap_pads_to_the_piece_size() -> None:
    # the argument is the CAR's size: the suggestion is the piece a node registers for it
    assert suggested_datacap(1, 1) == 128
    assert suggested_datacap(127, 1) == 128
    assert suggested_datacap(128, 1) == 256  # 128 payload bytes need 129.0… after Fr32
    assert suggested_datacap(1 << 30, 1) == 2 << 30
    assert suggested_datacap((1 << 30) * 127 // 128, 1) == 1 << 30
    assert suggested_datacap(420, 3) == 512 * 3
    assert suggested_datacap(None, 3) is None
    assert format_bytes(32 << 30) == "32 GiB"
    assert format_bytes(1500) == "1.46 KiB"
    assert format_bytes(None) == "—"


@pytest.mark.django_db
def test_verify_records_the_decision_and_an_audit_event(personas: Personas) -> None:
    finished_job()
    job = moderation.decide(
        job_id="job-1", user=personas.moderator, decision="verify", datacap="32 GiB", reason="ok"
    )
    assert (job.moderation_state, job.datacap_bytes) == ("verified", 32 << 30)
    assert job.decided_at is not None
    [decision] = Decision.objects.all()
    assert (decision.action, decision.actor, decision.user) == (
        "verify",
        "user:mona",
        personas.moderator,
    )
    event = AuditEvent.objects.get(action="job.verify")
    assert event.target == "job:job-1" and event.actor == "user:mona"
    assert event.before["moderation_state"] == "pending"
    assert event.after["datacap_bytes"] == 32 << 30


@pytest.mark.django_db
def test_rules(personas: Personas) -> None:
    finished_job("done")
    finished_job("still-running", state="running")

    def refused(code: str, **kwargs: object) -> None:
        with pytest.raises(DomainError) as err:
            moderation.decide(**{"job_id": "done", "user": personas.moderator, **kwargs})  # type: ignore[arg-type]
        assert err.value.code == code, err.value.message

    refused("forbidden", user=personas.viewer, decision="verify", datacap="1 GiB")
    refused("forbidden", user=personas.outsider, decision="verify", datacap="1 GiB")
    refused("invalid_decision", decision="verify")
    refused("invalid_decision", decision="verify", datacap="lots")
    refused("invalid_decision", decision="reject", reason="  ")
    refused("invalid_decision", decision="approve", datacap="1 GiB")
    refused("not_awaiting_approval", decision="approve")
    refused("not_found", job_id="nope", decision="reject", reason="x")
    refused("job_not_finished", job_id="still-running", decision="reject", reason="x")
    assert (
        not Decision.objects.exists()
        and not AuditEvent.objects.filter(action__startswith="job.").exists()
    )
    moderation.decide(job_id="done", user=personas.admin, decision="reject", reason="not FIL+ data")
    with pytest.raises(DomainError) as err:
        moderation.decide(
            job_id="done", user=personas.moderator, decision="verify", datacap="1 GiB"
        )
    assert err.value.status == 409 and err.value.code == "already_decided"
    assert "already rejected by ada" in err.value.message
    assert Job.objects.get(id="done").moderation_state == "rejected"


@pytest.mark.django_db
def test_revoke_by_admins_only_and_never_after_an_award(personas: Personas) -> None:
    for job_id in ("a", "b"):
        finished_job(job_id)
        moderation.decide(
            job_id=job_id, user=personas.moderator, decision="verify", datacap=1 << 30
        )
    with pytest.raises(DomainError) as err:
        moderation.revoke(job_id="a", user=personas.moderator, reason="oops")
    assert err.value.status == 403
    with pytest.raises(DomainError):
        moderation.revoke(job_id="a", user=personas.admin, reason="")
    job = moderation.revoke(job_id="a", user=personas.admin, reason="wrong dataset")
    assert job.moderation_state == "revoked"
    assert AuditEvent.objects.filter(action="job.revoke", reason="wrong dataset").count() == 1
    with pytest.raises(DomainError) as err:
        moderation.revoke(job_id="a", user=personas.admin, reason="again")
    assert err.value.code == "not_verified"
    award("b", piece_cid="baga6ea4seaq", provider="f01234", piece_size=1024)
    with pytest.raises(DomainError) as err:
        moderation.revoke(job_id="b", user=personas.admin, reason="too late")
    assert err.value.code == "has_awards"
    assert Job.objects.get(id="b").moderation_state == "verified"


@pytest.mark.django_db(transaction=True)
def test_two_moderators_at_the_same_moment_get_one_decision(personas: Personas) -> None:
    if connection.vendor == "sqlite":
        pytest.skip(
            "the in-memory SQLite test database cannot take writes from two threads; "
            "jobs/test_live.py races two decisions over HTTP against a SQLite file instead"
        )
    finished_job()
    start = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def attempt(user: object, decision: str) -> None:
        try:
            start.wait()
            moderation.decide(
                job_id="job-1", user=user, decision=decision, datacap="1 GiB", reason="r"
            )
            outcomes[decision] = "won"
        except DomainError as exc:
            outcomes[decision] = exc.code
        finally:
            close_old_connections()

    threads = [
        threading.Thread(target=attempt, args=(personas.moderator, "verify")),
        threading.Thread(target=attempt, args=(personas.admin, "reject")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) == ["already_decided", "won"]
    assert Decision.objects.count() == 1
    assert AuditEvent.objects.filter(action__in=["job.verify", "job.reject"]).count() == 1


def decide_api(client: Client, key: str, job_id: str, body: object):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/jobs/{job_id}/decision",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )


@pytest.mark.django_db
def test_decision_api_uses_the_same_rules(client: Client, personas: Personas) -> None:
    finished_job()
    verify = {"decision": "verify", "datacap_bytes": "64 GiB"}
    assert decide_api(client, personas.viewer_key, "job-1", verify).status_code == 403
    assert decide_api(client, personas.submitter_key, "job-1", verify).status_code == 403
    assert decide_api(client, personas.node_key, "job-1", verify).status_code == 403
    bad = decide_api(client, personas.moderator_key, "job-1", {"decision": "verify"})
    assert bad.status_code == 400 and "datacap_bytes" in bad.json()["error"]["fields"]
    assert decide_api(client, personas.moderator_key, "nope", verify).status_code == 404
    ok = decide_api(client, personas.moderator_key, "job-1", verify)
    assert ok.status_code == 200, ok.content
    assert ok.json()["moderation"]["state"] == "verified"
    assert ok.json()["moderation"]["datacap_bytes"] == 64 << 30
    again = decide_api(
        client, personas.moderator_key, "job-1", {"decision": "reject", "reason": "x"}
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_decided"
    assert AuditEvent.objects.get(action="job.verify").actor == "user:mona"
    client.force_login(personas.moderator)
    session = client.post(
        "/api/v1/jobs/job-1/decision", data=json.dumps(verify), content_type="application/json"
    )
    assert session.status_code == 403  # browser sessions decide through the pages
    assert Decision.objects.filter(job_id="job-1").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"decision": "verify", "datacap_bytes": "1 GiB", "extra": 1}, "extra"),
        ({"decision": "reject", "reason": 5}, "reason"),
        ({"decision": "verify", "datacap_bytes": True}, "datacap_bytes"),
        ({"decision": "verify", "datacap_bytes": [1]}, "datacap_bytes"),
        ({"decision": "verify", "datacap_bytes": "a lot"}, "datacap_bytes"),
        ({"decision": "maybe"}, "decision"),
    ],
)
def test_decision_api_names_the_bad_field(
    client: Client, personas: Personas, body: dict, field: str
) -> None:
    finished_job()
    response = decide_api(client, personas.moderator_key, "job-1", body)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert Job.objects.get(id="job-1").moderation_state == "pending"


@pytest.mark.django_db
def test_a_deactivated_accounts_key_stops_deciding_until_reactivated(
    client: Client, personas: Personas
) -> None:
    finished_job("job-1")
    finished_job("job-2")
    verify = {"decision": "verify", "datacap_bytes": "1 GiB"}
    personas.moderator.is_active = False
    personas.moderator.save(update_fields=["is_active"])
    refused = decide_api(client, personas.moderator_key, "job-1", verify)
    assert refused.status_code == 401
    assert "deactivated" in refused.json()["error"]["message"]
    read = client.get("/api/v1/jobs/job-1", HTTP_AUTHORIZATION=f"Bearer {personas.moderator_key}")
    assert read.status_code == 401
    assert not Decision.objects.exists()
    assert not AuditEvent.objects.filter(action="job.verify").exists()
    personas.moderator.is_active = True
    personas.moderator.save(update_fields=["is_active"])
    assert decide_api(client, personas.moderator_key, "job-2", verify).status_code == 200
