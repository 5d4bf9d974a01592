"""Input that PostgreSQL or Python's parsers cannot take is a 400 naming the field (or a 404
for a path), never a 500, and stores nothing; and the spec's limits fit the columns."""

from __future__ import annotations

import json

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import models
from django.test import Client

from chain_scanner import lotus
from dashboard.content import fingerprints
from dashboard.jobs import provenance
from dashboard.keys import services as api_keys
from dashboard.models import Decision, Job, JobInput
from executor import outcomes
from executor import spec as job_spec
from executor.cids import MAX_CID_LENGTH
from executor.unixfs import cid_text
from tests.base import Personas
from tests.dashboard.moderation.test_moderation import decide_api, finished_job

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


# The longest value the code can write into each text column that has no `choices`, from
# the limit the API or the code enforces (CID columns are checked against MAX_CID_LENGTH).
# A new column fails the walk below until its bound is written here.
HOST = 64  # HOST_NAME_MAX on Linux: worker and lease names are host:pid[:thread]
USERNAME = 150  # django.contrib.auth's username column
BOUNDS: dict[tuple[str, str], int] = {
    ("ApiKey", "name"): 100,  # api_keys.create_api_key refuses longer names
    ("ApiKey", "prefix"): api_keys.PREFIX_LENGTH,
    ("ApiKey", "digest"): 64,  # hex SHA-256
    ("ApiKey", "provider"): len("f0") + 20,  # api_keys.PROVIDER_RE
    ("JobResult", "provider"): len("f0") + 20,  # copied from the node's key
    ("Award", "provider"): len("f0") + 20,  # notary._provider takes an ID address
    ("Award", "chain_provider"): 100,  # a claim's ID address, or Deal.provider (100)
    ("SignInThrottle", "key"): max(len("user:") + 40, len("ip:") + 39),  # digest; IPv6 text
    ("AuditEvent", "actor"): max(len("user:") + USERNAME, len("node:") + 100, len("address:") + 39),
    ("AuditEvent", "action"): len("bacalhau_client.bind"),
    ("AuditEvent", "target"): 200,  # sign_in cuts the name it records to 200
    ("Decision", "actor"): len("user:") + USERNAME,
    ("Job", "id"): 100,  # jobs.JOB_ID
    ("Job", "spec_digest"): 64,
    ("Job", "lease_owner"): HOST + len(":4194304:") + 20,  # job_worker's host:pid:thread
    ("Job", "chain_flags"): len("more_on_chain_than_awarded,other_provider"),
    ("Job", "reexecution_verdict"): len("mismatch"),  # "", match or mismatch
    ("Job", "outcome"): max(len(outcome) for outcome in outcomes.ALL),
    ("Reexecution", "reason"): len("node_mismatched"),  # reexecution._automatic_reason
    ("Reexecution", "requested_by"): len("user:") + USERNAME,  # or "policy"
    ("Reexecution", "lease_owner"): HOST + len(":4194304:") + 20,  # worker_name()
    ("Reexecution", "ran_by"): HOST + len(":4194304:") + 20,  # worker_name()
    ("Novelty", "lease_owner"): HOST + len(":4194304:") + 20,  # worker_name()
    ("Novelty", "method"): len(fingerprints.METHOD),
    ("JobInput", "path"): job_spec.MAX_PATH_LENGTH,
    ("JobInput", "status"): len("expired"),  # active, pending, expired or ""
    ("Deal", "client"): len("f0") + 20,  # the market actor stores ID addresses
    ("Deal", "provider"): len("f0") + 20,
    ("ClaimEvent", "tipset_hash"): 16,
    ("DealEvent", "tipset_hash"): 16,
    ("DealEvent", "kind"): len("deal-terminated"),
    ("ScannerCheckpoint", "name"): len("default"),
    ("ScannerCheckpoint", "lease_owner"): HOST + len(":4194304"),  # lease.py's host:pid
    # Bacalhau's ids are cut to 200 where they are stored (bacalhau_scan, map_node)
    ("BacalhauNode", "node_id"): 200,
    ("BacalhauNode", "provider"): len("f0") + 20,  # map_node takes an ID address
    ("BacalhauOrchestrator", "url"): 500,  # settings and scan_bacalhau --url refuse longer
    ("BacalhauOrchestrator", "lease_owner"): HOST + len(":4194304"),
    ("BacalhauOrchestrator", "resume_token"): 500,  # bacalhau_scan.NEXT_TOKEN
    ("BacalhauJob", "job_id"): 200,
    ("BacalhauJob", "state"): 32,
    ("BacalhauExecution", "bacalhau_job_id"): 200,
    ("BacalhauExecution", "execution_id"): 200,
    ("BacalhauExecution", "node_id"): 200,
    ("BacalhauClient", "client_id"): 64,  # hex SHA-256
    ("BacalhauSubmission", "signature"): 64,  # hex SHA-256 of the signature (legacy.submit)
    # a provider, or an HTTP(S) URL's origin cut to 300 (provenance.retrieval_key)
    ("ProviderRetrieval", "key"): 300,
    ("ProviderRetrieval", "provider"): len("f0") + 20,  # provenance._provider: an ID address
    ("ProviderRetrieval", "url"): provenance.MAX_URL,
    ("ProviderAddress", "provider"): len("f0") + 20,  # a deal's provider, or a claim's f0<id>
    ("ProviderAddress", "peer_id"): lotus.MAX_PEER_ID,  # MinerInfo drops a longer one
}


def test_every_text_column_holds_the_longest_value_the_code_lets_through() -> None:
    """Walk every CharField of both apps: a choice column holds its longest choice, a CID
    column the longest CID the normaliser lets through, every other column its bound above;
    the spec's own limits fit their columns; annotations are indexed as text of any length."""
    seen = set()
    for app in ("dashboard", "chain_scanner"):
        for model in apps.get_app_config(app).get_models():
            for field in model._meta.get_fields():
                if not isinstance(field, models.CharField):
                    continue
                where = (model.__name__, field.name)
                seen.add(where)
                if field.choices:
                    longest = max(len(str(value)) for value, _ in field.flatchoices)
                elif field.name.endswith("cid"):
                    longest = MAX_CID_LENGTH
                else:
                    assert where in BOUNDS, f"{where}: say what bounds this column in BOUNDS"
                    longest = BOUNDS[where]
                assert longest <= field.max_length, (where, longest, field.max_length)
    assert set(BOUNDS) <= seen, set(BOUNDS) - seen  # no bound for a column that is gone
    assert len(seen) >= 40
    assert JobInput._meta.get_field("path").max_length >= job_spec.MAX_PATH_LENGTH
    assert get_user_model()._meta.get_field("username").max_length == USERNAME
    assert isinstance(Job._meta.get_field("annotation_index"), models.TextField)
    assert job_spec.MAX_ANNOTATIONS * job_spec.MAX_ANNOTATION_LENGTH < 1 << 20


def test_a_lone_surrogate_echoed_in_an_error_is_sent_as_a_replacement_character(
    client: Client, personas: Personas
) -> None:
    """The eligibility error names the CID it could not read: a lone surrogate in it cannot
    be encoded as UTF-8, so it goes back as U+FFFD (it was a 500)."""
    body = '{"cids": ["\\ud800bafy"]}'  # the JSON escape: valid JSON, a lone surrogate in Python
    answer = post(client, personas.node_key, "/api/v1/eligibility", body)
    assert answer.status_code == 400, answer.content
    assert "\ufffdbafy" in answer.content.decode("utf-8")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"annotation": "x" * 100_000}, "annotation"),  # SQLite: "LIKE pattern too complex"
        ({"node": "n" * 101}, "node"),
        ({"cursor": "A" * 10_000}, "cursor"),
    ],
)
def test_job_list_filters_longer_than_anything_stored_are_400(
    client: Client, personas: Personas, query: dict, field: str
) -> None:
    answer = client.get("/api/v1/jobs", query, HTTP_AUTHORIZATION=f"Bearer {personas.node_key}")
    assert answer.status_code == 400, answer.content
    assert field in answer.json()["error"]["fields"]


@pytest.mark.parametrize("path", ["/api/v1/cids/a%0Ab", "/api/v1/notary/verifications/a%0Ab"])
def test_a_cid_in_a_url_with_a_newline_is_a_400_not_a_404(
    client: Client, personas: Personas, path: str
) -> None:
    answer = client.get(path, HTTP_AUTHORIZATION=f"Bearer {personas.notary_key}")
    assert answer.status_code == 400, answer.content
    assert answer.json()["error"]["code"] == "invalid_cid"
