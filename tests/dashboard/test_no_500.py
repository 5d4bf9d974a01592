"""Input that PostgreSQL or Python's parsers cannot take is a 400 naming the field (or a 404
for a path), never a 500, and stores nothing; and the spec's limits fit the columns."""

from __future__ import annotations

import json

import pytest
from django.apps import apps
from django.db import models
from django.test import Client

from dashboard.models import Decision, Job, JobInput
from executor import spec as job_spec
from executor.cids import MAX_CID_LENGTH
from executor.unixfs import cid_text
from tests.base import Personas
from tests.dashboard.test_moderation import decide_api, finished_job

MODULE = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
# An identity-multihash CID of 300 bytes of content: valid, and far longer than any column.
LONG_CID = cid_text(b"\x01\x55\x00" + bytes([0xAC, 0x02]) + b"x" * 300)


def post(client: Client, key: str, path: str, body: str):  # type: ignore[no-untyped-def]
    return client.post(
        path, data=body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {key}"
    )


def submit(client: Client, key: str, body: object):  # type: ignore[no-untyped-def]
    return post(client, key, "/api/v1/jobs", json.dumps(body))


def wasm(**extra: object) -> dict:
    return {"engine": "wasm", "wasm": {"module": MODULE}, **extra}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"engine": "docker", "docker": {"image": "busy\x00box"}}, "docker.image"),
        (wasm(inputs=[{"cid": MODULE, "path": "/in/" + "x" * 1000}]), "inputs.0.path"),
        (wasm(annotations=["a" * 257]), "annotations.0"),
        (wasm(annotations=["ok"] * 65), "annotations"),
        (wasm(inputs=[{"cid": LONG_CID, "path": "/in/x"}]), "inputs.0.cid"),
        ({"engine": "wasm", "wasm": {"module": LONG_CID}}, "wasm.module"),
        (wasm(annotations=["\ud800"]), "annotations.0"),
        ({"engine": "wasm", "wasm": {"module": MODULE, "args": ["\udfff"]}}, "wasm.args.0"),
        ({"engine": "wasm", "wasm": {"module": MODULE, "env": {"K": "\ud800"}}}, "wasm.env.K"),
        ({"engine": "docker", "docker": {"image": "img\ud800"}}, "docker.image"),
    ],
)
def test_spec_text_that_cannot_be_stored_is_a_400(
    client: Client, personas: Personas, body: dict, field: str
) -> None:
    answer = submit(client, personas.submitter_key, body)
    assert answer.status_code == 400, answer.content
    assert field in answer.json()["error"]["fields"]
    assert not Job.objects.exists()


def test_a_doubled_leading_slash_is_the_same_path(client: Client, personas: Personas) -> None:
    one = submit(client, personas.submitter_key, wasm(inputs=[{"cid": MODULE, "path": "/data/x"}]))
    two = submit(client, personas.submitter_key, wasm(inputs=[{"cid": MODULE, "path": "//data/x"}]))
    assert one.status_code == two.status_code == 201
    assert set(JobInput.objects.values_list("path", flat=True)) == {"/data/x"}
    assert one.json()["spec"] == two.json()["spec"]


@pytest.mark.parametrize("depth", [10_000, 100_000])
def test_deeply_nested_json_is_a_400(client: Client, personas: Personas, depth: int) -> None:
    for path in ("/api/v1/jobs", "/api/v1/eligibility", "/api/v1/notary/awards"):
        key = personas.notary_key if "notary" in path else personas.node_key
        answer = post(client, key, path, "[" * depth)
        assert answer.status_code == 400, (path, answer.content[:200])
        assert answer.json()["error"]["code"]


def test_job_ids_that_cannot_be_job_ids_are_404(client: Client, personas: Personas) -> None:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {personas.moderator_key}"}
    for job_id in ("a%00b", "%ED%A0%80", "x" * 101):
        api = client.get(f"/api/v1/jobs/{job_id}", **headers)
        assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"
    client.force_login(personas.moderator)
    assert client.get("/jobs/a%00b/").status_code == 404


def test_a_decision_reason_with_nul_or_a_surrogate_is_a_400(
    client: Client, personas: Personas
) -> None:
    finished_job()
    for reason in ("bad\x00", "bad\ud800"):
        answer = decide_api(
            client, personas.moderator_key, "job-1", {"decision": "reject", "reason": reason}
        )
        assert answer.status_code == 400 and "reason" in answer.json()["error"]["fields"]
    assert not Decision.objects.exists()


def test_huge_piece_sizes_and_long_result_cids_are_400(client: Client, personas: Personas) -> None:
    job = finished_job()
    job.node = personas.node  # the node holding the results may register their pieces
    job.save(update_fields=["node"])
    piece = "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"
    for size in (1 << 63, 1 << 64):
        answer = post(
            client,
            personas.node_key,
            f"/api/v1/jobs/{job.id}/pieces",
            json.dumps({"piece_cid": piece, "piece_size": size, "payload_cid": MODULE}),
        )
        assert answer.status_code == 400 and "piece_size" in answer.json()["error"]["fields"]
    award = post(
        client,
        personas.notary_key,
        "/api/v1/notary/awards",
        json.dumps(
            {"cid": MODULE, "provider": "f01234", "piece_cid": piece, "piece_size": 1 << 63}
        ),
    )
    assert award.status_code == 400 and "piece_size" in award.json()["error"]["fields"]
    result = {
        "result_cid": LONG_CID,
        "exit_code": 0,
        "stdout_cid": MODULE,
        "stderr_cid": MODULE,
        "outputs_cid": MODULE,
        "size_bytes": 1,
        "runtime_ms": 1,
    }
    running = Job.objects.create(
        id="job-2", engine="wasm", spec={}, spec_digest="0" * 64, state="running",
        node=personas.node,
    )  # fmt: skip
    answer = post(
        client, personas.node_key, f"/api/v1/jobs/{running.id}/results", json.dumps(result)
    )
    assert answer.status_code == 400 and "result_cid" in answer.json()["error"]["fields"]


def test_the_specs_limits_fit_every_column() -> None:
    """Every CID column holds the longest CID the normaliser lets through, the input path
    column the longest path, and the annotation index every annotation a spec may carry."""
    cid_columns = []
    for app in ("dashboard", "chain_scanner"):
        for model in apps.get_app_config(app).get_models():
            for field in model._meta.get_fields():
                if isinstance(field, models.CharField) and field.name.endswith("cid"):
                    cid_columns.append((model.__name__, field.name, field.max_length))
    assert len(cid_columns) >= 10
    for name, column, length in cid_columns:
        assert length >= MAX_CID_LENGTH, (name, column, length)
    assert JobInput._meta.get_field("path").max_length >= job_spec.MAX_PATH_LENGTH
    # the annotations are indexed as text of any length
    assert isinstance(Job._meta.get_field("annotation_index"), models.TextField)
    assert job_spec.MAX_ANNOTATIONS * job_spec.MAX_ANNOTATION_LENGTH < 1 << 20
