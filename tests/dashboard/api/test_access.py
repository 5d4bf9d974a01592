"""Who may act is settled before a body is read: a caller without the right to act on an
endpoint (or on that job) gets the same 403 or 404 whatever it sends, a malformed body
included, so that an answer never tells an outsider more about the body than about its right.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from dashboard.keys.services import create_api_key
from dashboard.models import ApiKey, Job, JobResult, Reexecution
from tests.base import Personas

pytestmark = pytest.mark.django_db

RESULT = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
BODIES = [
    ("no JSON", "{", "application/json"),
    ("not an object", "[1, 2]", "application/json"),
    ("an empty object", "{}", "application/json"),
]


def jobs(personas: Personas) -> tuple[dict[str, Any], int]:
    """job-ran: an external job node-1 ran and completed, with one re-execution queued;
    job-own: a bundled job node-2 submitted (it can see it, but it runs nothing of it).
    The personas' keys and a verifier node's, and the queued run's id (a sequence on
    PostgreSQL does not start again at 1 for each test)."""
    node_2 = ApiKey.objects.get(name="node-2")
    ran = Job.objects.create(
        id="job-ran",
        engine="wasm",
        spec={"engine": "wasm"},
        spec_digest="0" * 64,
        external=True,
        owner=personas.node,
        node=personas.node,
        state=Job.State.COMPLETED,
        finished_at=timezone.now(),
    )
    JobResult.objects.create(
        job=ran,
        result_cid=RESULT,
        exit_code=0,
        stdout_cid=RESULT,
        stderr_cid=RESULT,
        outputs_cid=RESULT,
        size_bytes=1,
        runtime_ms=1,
        provider="f01234",
    )
    Job.objects.create(
        id="job-own", engine="wasm", spec={"engine": "wasm"}, spec_digest="0" * 64, owner=node_2
    )
    run = Reexecution.objects.create(job=ran, reason="requested", requested_by="test")
    _, verifier = create_api_key(scope="node", name="verifier", verifier=True, actor="test")
    return {**vars(personas), "verifier": verifier}, run.pk


# (what, path, the caller's persona key, the answer it must get whatever its body);
# {run} is the queued run, {no_run} an id no run has
REFUSED = [
    (
        "a node reports a job it only submitted",
        "/api/v1/jobs/job-own/results",
        "other_node_key",
        403,
    ),
    ("a node reports a job it cannot see", "/api/v1/jobs/job-ran/results", "other_node_key", 404),
    ("a submitter reports a result", "/api/v1/jobs/job-ran/results", "submitter_key", 403),
    (
        "a node registers a piece it does not hold",
        "/api/v1/jobs/job-ran/pieces",
        "other_node_key",
        403,
    ),
    ("a piece of no job", "/api/v1/jobs/nope/pieces", "node_key", 404),
    ("a viewer's key decides", "/api/v1/jobs/job-ran/decision", "viewer_key", 403),
    ("a node decides", "/api/v1/jobs/job-ran/decision", "node_key", 403),
    ("a decision on no job", "/api/v1/jobs/nope/decision", "moderator_key", 404),
    (
        "a node that offers no re-runs reports one",
        "/api/v1/reexecutions/{run}/result",
        "other_node_key",
        403,
    ),
    (
        "a node that offers no re-runs fails one",
        "/api/v1/reexecutions/{run}/failure",
        "other_node_key",
        403,
    ),
    (
        "a verifier reports a run it never took",
        "/api/v1/reexecutions/{run}/result",
        "verifier",
        409,
    ),
    ("a verifier reports no run", "/api/v1/reexecutions/{no_run}/failure", "verifier", 404),
    ("a node awards", "/api/v1/notary/awards", "node_key", 403),
    ("a notary asks for eligibility", "/api/v1/eligibility", "notary_key", 403),
    ("a notary submits a job", "/api/v1/jobs", "notary_key", 403),
]


@pytest.mark.parametrize(("what", "path", "who", "status"), REFUSED, ids=[r[0] for r in REFUSED])
@pytest.mark.parametrize(("kind", "body", "content_type"), BODIES, ids=[b[0] for b in BODIES])
def test_a_caller_without_the_right_is_refused_before_its_body_is_read(
    client: Client,
    personas: Personas,
    what: str,
    path: str,
    who: str,
    status: int,
    kind: str,
    body: str,
    content_type: str,
) -> None:
    keys, run = jobs(personas)
    answer = client.post(
        path.format(run=run, no_run=run + 1000),
        data=body,
        content_type=content_type,
        HTTP_AUTHORIZATION=f"Bearer {keys[who]}",
    )
    assert answer.status_code == status, answer.content
    assert "fields" not in answer.json()["error"]  # nothing was said about the body
