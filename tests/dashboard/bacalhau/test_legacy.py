"""Bacalhau's legacy requester API (docs/bacalhau.md): signed submits from bound clients, the
spec mapping and its refusals, events and results per client. Keys and signatures are made
by openssl, not by our code."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from dashboard.bacalhau.clients import bind_client
from dashboard.jobs import services as jobs
from dashboard.models import ApiKey, AuditEvent, BacalhauSubmission, Job
from tests.base import make_personas
from tests.dashboard.bacalhau.shapes import MODULE

pytestmark = pytest.mark.django_db

INPUT = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
RESULT = "bafybeibvbwys4xy7qangjbe5axy6yokd2lu4q5c7fjmhsgbf4qzjncj44a"


class OpensslClient:
    """A legacy client's identity made and used by openssl: an RSA key, its PKCS #1 public
    key in base64, its client id (sha256 of the modulus openssl prints) and signatures."""

    def __init__(self, folder: Path, bits: int = 2048) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.pem = folder / "user_id.pem"
        subprocess.run(
            ["openssl", "genrsa", "-out", self.pem, str(bits)], check=True, capture_output=True
        )
        der = subprocess.run(
            ["openssl", "rsa", "-in", self.pem, "-RSAPublicKey_out", "-outform", "DER"],
            check=True,
            capture_output=True,
        ).stdout
        self.public_key = base64.b64encode(der).decode()
        modulus = (
            subprocess.run(
                ["openssl", "rsa", "-in", self.pem, "-noout", "-modulus"],
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .split("=", 1)[1]
        )
        self.client_id = hashlib.sha256(bytes.fromhex(modulus)).hexdigest()

    def sign(self, data: bytes) -> str:
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", self.pem],
            input=data,
            check=True,
            capture_output=True,
        ).stdout
        return base64.b64encode(signature).decode()

    def submit_body(
        self, spec: dict[str, Any], *, compact: bool = False, client_id: str | None = None
    ) -> bytes:
        """As bacalhau-sdk 1.3 sends it (json.dumps with ", " and ": "), or as a Go client
        does (compact); the signature is over the payload's bytes either way."""
        payload = {"apiversion": "V1beta1", "clientid": client_id or self.client_id, "spec": spec}
        separators = (",", ":") if compact else (", ", ": ")
        payload_text = json.dumps(payload, separators=separators)
        signature = self.sign(payload_text.encode())
        return (
            f'{{"client_public_key": "{self.public_key}", "payload": {payload_text}, '
            f'"signature": "{signature}"}}'
        ).encode()


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> OpensslClient:
    return OpensslClient(tmp_path_factory.mktemp("bacalhau"))


def wasm_spec(**extra: Any) -> dict[str, Any]:
    """What the provider's README DAG sends (keys as DAG authors write them)."""
    return {
        "engine": "Wasm",
        "publisher": "IPFS",
        "wasm": {
            "EntryModule": {"StorageSource": "ipfs", "CID": MODULE},
            "EntryPoint": "_start",
            "Parameters": ["/inputs/data.txt"],
            "EnvironmentVariables": {"STAGE": "wasm", "lower_case": "kept"},
        },
        "outputs": [{"StorageSource": "IPFS", "Name": "outputs", "path": "/outputs"}],
        "annotations": ["filplus"],
        "timeout": 300,
        "deal": {"concurrency": 1},
        "inputs": [{"cid": INPUT, "path": "/inputs/data.txt", "storagesource": "ipfs"}],
        **extra,
    }


def post(path: str, body: bytes | dict[str, Any]) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Client().post(path, data=data, content_type="application/json")


@pytest.fixture
def bound(identity: OpensslClient):  # type: ignore[no-untyped-def]
    personas = make_personas()
    key = ApiKey.objects.get(name="alice")
    bind_client(identity=identity.public_key, key_prefix=key.prefix, actor="test")
    return personas


def test_a_signed_submit_from_a_bound_client_is_our_job(identity, bound) -> None:
    response = post("/requester/submit", identity.submit_body(wasm_spec()))
    assert response.status_code == 200, response.content
    answer = response.json()["job"]
    job = Job.objects.get(id=answer["Metadata"]["ID"])
    assert response["X-Bacalhau-Job-ID"] == job.id
    assert answer["Metadata"]["ClientID"] == identity.client_id
    assert answer["Spec"] == wasm_spec()  # as submitted
    assert job.owner.name == "alice" and job.state == Job.State.QUEUED
    assert job.spec["wasm"] == {
        "module": MODULE,
        "entry_point": "_start",
        "args": ["/inputs/data.txt"],
        "env": {"STAGE": "wasm", "lower_case": "kept"},  # map keys keep their case
    }
    assert job.spec["inputs"] == [{"cid": INPUT, "path": "/inputs/data.txt"}]
    assert job.spec["limits"]["timeout_s"] == 300 and job.annotations == ["filplus"]
    assert BacalhauSubmission.objects.get(job=job).client.client_id == identity.client_id
    # a Go client's compact JSON verifies too, and the same routes serve /api/v1/requester/
    docker = {
        "Engine": "Docker",
        "Docker": {
            "Image": "tiny:1",
            "Entrypoint": ["/bin/sh", "-c"],
            "Parameters": ["cat /inputs/a/stdout"],
            "EnvironmentVariables": ["STAGE=docker", "X=a=b"],
        },
        "Inputs": [{"StorageSource": "IPFS", "CID": RESULT, "Path": "/inputs/a"}],
    }
    response = post("/api/v1/requester/submit", identity.submit_body(docker, compact=True))
    assert response.status_code == 200, response.content
    job = Job.objects.get(id=response.json()["job"]["Metadata"]["ID"])
    assert job.spec["docker"] == {
        "image": "tiny:1",
        "entrypoint": ["/bin/sh", "-c", "cat /inputs/a/stdout"],
        "env": {"STAGE": "docker", "X": "a=b"},
    }
    assert AuditEvent.objects.filter(action="bacalhau_client.bind").count() == 1


def test_unbound_or_badly_signed_submits_are_refused(identity, tmp_path: Path) -> None:
    make_personas()
    body = identity.submit_body(wasm_spec())
    response = post("/requester/submit", body)
    assert response.status_code == 403 and response.json()["error"]["code"] == "unbound_client"
    key = ApiKey.objects.get(name="alice")
    bind_client(identity=identity.client_id.upper(), key_prefix=key.prefix, actor="test")
    # the payload changed after signing: one byte
    tampered = body.replace(b'"timeout": 300', b'"timeout": 301')
    response = post("/requester/submit", tampered)
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_signature"
    # re-serialised, the payload no longer has the bytes that were signed
    document = json.loads(body)
    assert (
        post("/requester/submit", json.dumps(document, separators=(",", ":")).encode()).status_code
        == 401
    )
    # someone else's key signing a payload that claims our client id
    other = OpensslClient(tmp_path / "other")
    response = post(
        "/requester/submit", other.submit_body(wasm_spec(), client_id=identity.client_id)
    )
    assert response.status_code == 401
    assert "ClientID" in response.json()["error"]["message"]
    # a 1024-bit key is not accepted at all
    weak = OpensslClient(tmp_path / "weak", bits=1024)
    response = post("/requester/submit", weak.submit_body(wasm_spec()))
    assert response.status_code == 401 and "2048" in response.json()["error"]["message"]
    # no signature, garbage, not JSON
    assert post("/requester/submit", {"payload": {"clientid": "x"}}).status_code == 401
    assert post("/requester/submit", b"{nope").status_code == 400
    assert post("/requester/submit", b"[]").status_code == 400
    # a revoked submitter key's client is unbound in effect
    key.revoked_at = key.created_at
    key.save()
    assert post("/requester/submit", body).status_code == 403
    assert Job.objects.count() == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            {
                "wasm": {
                    "EntryModule": {"StorageSource": "ipfs", "CID": MODULE},
                    "ImportModules": [{"StorageSource": "ipfs", "CID": MODULE}],
                }
            },
            "spec.Wasm.ImportModules",
        ),
        (
            {"wasm": {"EntryModule": {"StorageSource": "urlDownload", "URL": "https://x"}}},
            "spec.Wasm.EntryModule.StorageSource",
        ),
        ({"inputs": [{"storagesource": "s3", "path": "/inputs/x"}]}, "spec.Inputs.0.StorageSource"),
        ({"inputs": [{"storagesource": "ipfs", "cid": "", "path": "/x"}]}, "spec.Inputs.0.CID"),
        ({"network": {"Type": "Full"}}, "spec.Network.Type"),
        ({"publisher": "Estuary"}, "spec.Publisher"),
        ({"deal": {"concurrency": 3}}, "spec.Deal.Concurrency"),
        ({"outputs": [{"Name": "results", "path": "/results"}]}, "spec.Outputs"),
        ({"resources": {"GPU": "1"}}, "spec.Resources.GPU"),
        ({"resources": {"Memory": "lots"}}, "spec.Resources.Memory"),
        ({"engine": "Noop"}, "spec.Engine"),
        (
            {"inputs": [{"storagesource": "ipfs", "cid": INPUT, "path": "/outputs"}]},
            "spec (inputs.0.path)",
        ),
    ],
)
def test_what_we_cannot_run_is_a_400_naming_the_field(identity, bound, change, field) -> None:  # type: ignore[no-untyped-def]
    response = post("/requester/submit", identity.submit_body(wasm_spec(**change)))
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_spec" and field in error["fields"], error
    assert Job.objects.count() == 0


def test_memory_and_docker_working_directory(identity, bound) -> None:
    response = post(
        "/requester/submit", identity.submit_body(wasm_spec(resources={"Memory": "64Mb"}))
    )
    job = Job.objects.get(id=response.json()["job"]["Metadata"]["ID"])
    assert job.spec["limits"]["memory_bytes"] == 64 * 10**6
    response = post(
        "/requester/submit", identity.submit_body(wasm_spec(resources={"memory": "1GiB"}))
    )
    job = Job.objects.get(id=response.json()["job"]["Metadata"]["ID"])
    assert job.spec["limits"]["memory_bytes"] == 1 << 30
    docker = {"engine": "docker", "docker": {"image": "x", "WorkingDirectory": "/w"}}
    response = post("/requester/submit", identity.submit_body(docker))
    assert response.status_code == 400
    assert "spec.Docker.WorkingDirectory" in response.json()["error"]["fields"]


def _terminal(events: list[dict[str, Any]]) -> list[str]:
    return [
        e["JobState"]["New"]
        for e in events
        if e["Type"] == "JobLevel" and e["JobState"]["New"] in ("Completed", "Error", "Cancelled")
    ]


def test_events_and_results_follow_the_job_for_its_client_only(identity, bound) -> None:
    job_id = post("/requester/submit", identity.submit_body(wasm_spec())).json()["job"]["Metadata"][
        "ID"
    ]
    ask = {"client_id": identity.client_id, "job_id": job_id}
    events = post("/requester/events", ask).json()["events"]
    assert [e["JobState"]["New"] for e in events] == ["New"] and _terminal(events) == []
    assert post("/requester/results", ask).json() == {"results": []}
    job = jobs.claim_job(job_id=job_id, worker="w")
    assert job is not None
    events = post("/api/v1/requester/events", ask).json()["events"]
    assert [e["JobState"]["New"] for e in events] == ["New", "InProgress"]
    jobs.record_result(
        job_id=job_id,
        result=jobs.ResultIn(
            result_cid=RESULT,
            exit_code=1,
            stdout_cid=INPUT,
            stderr_cid=INPUT,
            outputs_cid=RESULT,
            size_bytes=5,
            runtime_ms=1,
            provider="f01234",
        ),
    )
    events = post("/requester/events", ask).json()["events"]
    assert _terminal(events) == ["Completed"]  # a non-zero exit still completes
    assert post("/requester/results", ask).json() == {
        "results": [
            {
                "NodeID": "f01234",
                "Data": {"StorageSource": "ipfs", "Name": "outputs", "CID": RESULT},
            }
        ]
    }
    # another client id, or a job that is not a legacy client's: as if it did not exist
    for other in [
        {"client_id": "0" * 64, "job_id": job_id},
        {"client_id": identity.client_id, "job_id": "nope"},
    ]:
        for path in ("/requester/events", "/requester/results"):
            response = post(path, other)
            assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert post("/requester/events", {"job_id": job_id}).status_code == 400


def test_a_failed_job_ends_with_one_error_event(identity, bound) -> None:
    job_id = post("/requester/submit", identity.submit_body(wasm_spec())).json()["job"]["Metadata"][
        "ID"
    ]
    jobs.claim_job(job_id=job_id, worker="w")
    jobs.fail_job(job_id=job_id, reason="fuel exhausted")
    events = post("/requester/events", {"client_id": identity.client_id, "job_id": job_id}).json()[
        "events"
    ]
    assert _terminal(events) == ["Error"] and events[-1]["Comment"] == "fuel exhausted"


def test_text_no_database_stores_is_refused_before_it_reaches_one(identity, bound) -> None:
    """Found by schemathesis: a lone surrogate in job_id was a 500 (UTF-8 cannot encode it)."""
    for body in [
        '{"client_id": "\\ud800", "job_id": "x"}',
        '{"client_id": "a", "job_id": "\\ud800"}',
        '{"client_id": "a", "job_id": "a\\u0000b"}',
    ]:
        response = Client().post("/requester/events", data=body, content_type="application/json")
        assert response.status_code == 404, body
    spec = wasm_spec(nodeselectors=[{"key": "a\u0000b"}])
    response = post("/requester/submit", identity.submit_body(spec))
    assert response.status_code == 400 and "spec" in response.json()["error"]["fields"]
    assert Job.objects.count() == 0


# --- hardening (issue 28) ----------------------------------------------------------------------


def signed(identity: OpensslClient, payload_text: str, *, extra: str = "") -> bytes:
    """A submit whose payload is `payload_text` exactly, signed by `identity`, with `extra`
    members (raw JSON text) written before it."""
    signature = identity.sign(payload_text.encode())
    return (
        f'{{"client_public_key": "{identity.public_key}", {extra}"payload": {payload_text}, '
        f'"signature": "{signature}"}}'
    ).encode()


def payload_text(identity: OpensslClient, spec: dict[str, Any]) -> str:
    return json.dumps({"apiversion": "V1beta1", "clientid": identity.client_id, "spec": spec})


@pytest.mark.parametrize(
    "where",
    ["a second Payload beside the signed one", "Spec twice in the payload", "an env map"],
)
def test_member_names_twice_in_any_case_are_refused_anywhere(identity, bound, where) -> None:  # type: ignore[no-untyped-def]
    """A Go peer and our reader could pick different members of an object that names one
    twice; the signed bytes must be the only reading there is."""
    unsigned = payload_text(
        identity, wasm_spec(wasm={"EntryModule": {"StorageSource": "ipfs", "CID": INPUT}})
    )
    if where == "a second Payload beside the signed one":
        body = signed(
            identity, payload_text(identity, wasm_spec()), extra=f'"Payload": {unsigned}, '
        )
        field = "payload"  # the second of the two names
    elif where == "Spec twice in the payload":
        text = payload_text(identity, wasm_spec())[:-1] + ', "Spec": {"engine": "Docker"}}'
        body = signed(identity, text)
        field = "payload.Spec"
    else:
        spec = wasm_spec()
        spec["wasm"]["EnvironmentVariables"] = {"STAGE": "a"}
        text = payload_text(identity, spec).replace('"STAGE": "a"', '"STAGE": "a", "stage": "b"')
        body = signed(identity, text)
        field = "payload.spec.wasm.EnvironmentVariables.stage"
    response = post("/requester/submit", body)
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and field in error["fields"], error
    assert Job.objects.count() == 0


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_numbers_json_has_not_are_refused(identity, bound, value: str) -> None:  # type: ignore[no-untyped-def]
    """NaN and the infinities are not JSON: PostgreSQL refuses to store them."""
    text = payload_text(identity, wasm_spec(nodeselectors=[{"key": "x", "values": [1]}]))
    text = text.replace('"values": [1]', f'"values": [{value}]')
    response = post("/requester/submit", signed(identity, text))
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "malformed_json"
    assert Job.objects.count() == 0


def test_memory_too_large_for_any_number_is_a_400_naming_it(identity, bound) -> None:
    """400 nines of memory overflowed a float: a 500."""
    for change, field in [
        ({"resources": {"Memory": "9" * 400}}, "spec.Resources.Memory"),
        ({"resources": {"Memory": "2TiB"}}, "spec.Resources.Memory"),
        ({"timeout": 10**30}, "spec.Timeout"),
    ]:
        response = post("/requester/submit", identity.submit_body(wasm_spec(**change)))
        assert response.status_code == 400, response.content
        assert field in response.json()["error"]["fields"], response.content
    response = post(
        "/requester/submit", identity.submit_body(wasm_spec(resources={"Memory": "1.5GiB"}))
    )
    job = Job.objects.get(id=response.json()["job"]["Metadata"]["ID"])
    assert job.spec["limits"]["memory_bytes"] == 3 << 29


@pytest.mark.parametrize("path", ["/requester/submit", "/requester/events", "/requester/results"])
def test_bodies_nested_deep_are_a_400(bound, path: str) -> None:  # type: ignore[no-untyped-def]
    body = '{"client_id": "a", "job_id": "b", "x": ' + "[" * 500 + "]" * 500 + "}"
    response = Client().post(path, data=body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "malformed_json"


def der_public_key(n: int, e: int) -> str:
    """A base64 PKCS #1 RSAPublicKey of any numbers, as a client could send them."""

    def length(size: int) -> bytes:
        if size < 0x80:
            return bytes([size])
        raw = size.to_bytes((size.bit_length() + 7) // 8, "big")
        return bytes([0x80 | len(raw)]) + raw

    def integer(value: int) -> bytes:
        body = value.to_bytes(value.bit_length() // 8 + 1, "big")
        return b"\x02" + length(len(body)) + body

    numbers = integer(n) + integer(e)
    return base64.b64encode(b"\x30" + length(len(numbers)) + numbers).decode()


@pytest.fixture
def rsa_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every RSA verification a submit runs, counted (and refused, so none costs anything)."""
    from dashboard.bacalhau import legacy

    calls: list[int] = []

    def counted(key, message, signature):  # type: ignore[no-untyped-def]
        calls.append(key.n.bit_length())
        return False

    monkeypatch.setattr(legacy, "signature_valid", counted)
    return calls


@pytest.mark.parametrize(
    ("bits", "exponent"),
    [(8192, "n-2"), (16384, 65537), (4097, 65537), (1024, 65537), (2048, 3), (2048, "n-2")],
)
def test_keys_no_client_makes_are_refused_before_any_rsa(
    bound, rsa_calls: list[int], bits: int, exponent: Any
) -> None:  # type: ignore[no-untyped-def]
    """An 8192-bit modulus with e = n - 2 cost 1.5 to 2.2 s of CPU a request, before anyone
    asked whether the client may submit at all. Bacalhau's clients make 2048-bit keys with
    e = 65537; 2048 to 4096 bits are accepted, with that exponent only."""
    n = (1 << (bits - 1)) | int.from_bytes(hashlib.sha256(str(bits).encode()).digest()) | 1
    e = n - 2 if exponent == "n-2" else exponent
    client = hashlib.sha256(n.to_bytes((bits + 7) // 8, "big")).hexdigest()
    bind_client(identity=client, key_prefix=ApiKey.objects.get(name="alice").prefix, actor="t")
    payload = json.dumps({"apiversion": "V1beta1", "clientid": client, "spec": wasm_spec()})
    signature = base64.b64encode(b"\x01" * ((bits + 7) // 8)).decode()
    body = (
        f'{{"client_public_key": "{der_public_key(n, e)}", "payload": {payload}, '
        f'"signature": "{signature}"}}'
    )
    response = post("/requester/submit", body.encode())
    assert response.status_code == 401, response.content
    assert response.json()["error"]["code"] == "invalid_signature"
    assert rsa_calls == []
    assert Job.objects.count() == 0


def test_an_unbound_client_costs_no_rsa(identity, rsa_calls: list[int]) -> None:  # type: ignore[no-untyped-def]
    make_personas()
    response = post("/requester/submit", identity.submit_body(wasm_spec()))
    assert response.status_code == 403 and response.json()["error"]["code"] == "unbound_client"
    assert rsa_calls == []
    # bound, the same submit is verified (and, here, refused by the counting stand-in)
    bind_client(
        identity=identity.client_id, key_prefix=ApiKey.objects.get(name="alice").prefix, actor="t"
    )
    assert post("/requester/submit", identity.submit_body(wasm_spec())).status_code == 401
    assert rsa_calls == [2048]


def test_a_4096_bit_key_is_accepted(tmp_path: Path) -> None:
    big = OpensslClient(tmp_path / "big", bits=4096)
    make_personas()
    bind_client(
        identity=big.public_key, key_prefix=ApiKey.objects.get(name="alice").prefix, actor="t"
    )
    response = post("/requester/submit", big.submit_body(wasm_spec()))
    assert response.status_code == 200, response.content


def test_the_same_signed_submit_again_answers_the_job_it_made(identity, bound) -> None:  # type: ignore[no-untyped-def]
    body = identity.submit_body(wasm_spec())
    first = post("/requester/submit", body)
    assert first.status_code == 200
    # byte for byte, and with the same payload and signature laid out otherwise
    document = json.loads(body)
    text = body.decode()
    payload = text[text.index('"payload": ') + 11 : text.index(', "signature"')]
    relaid = (
        f'{{ "signature":"{document["signature"]}",\n"Payload": {payload},'
        f'"CLIENT_PUBLIC_KEY": "{document["client_public_key"]}" }}'
    ).encode()
    for again in (body, relaid):
        response = post("/requester/submit", again)
        assert response.status_code == 200, response.content
        assert response.json() == first.json()
        assert response["X-Bacalhau-Job-ID"] == first["X-Bacalhau-Job-ID"]
    assert Job.objects.count() == 1
    # another payload, even the same spec signed again by a Go client, is another submit
    second = post("/requester/submit", identity.submit_body(wasm_spec(), compact=True))
    assert second.status_code == 200
    assert second["X-Bacalhau-Job-ID"] != first["X-Bacalhau-Job-ID"]
    assert Job.objects.count() == 2


def test_a_submit_accepted_twice_at_once_makes_one_job(
    identity, bound, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """Two copies in flight both find no earlier job; the record's uniqueness decides."""
    from dashboard.bacalhau import legacy

    body = identity.submit_body(wasm_spec())
    first = post("/requester/submit", body)
    looked = legacy._submitted
    calls: list[str] = []

    def missed_once(signature: str) -> Job | None:
        calls.append(signature)
        return None if len(calls) == 1 else looked(signature)

    monkeypatch.setattr(legacy, "_submitted", missed_once)
    response = post("/requester/submit", body)
    assert response.status_code == 200, response.content
    assert response["X-Bacalhau-Job-ID"] == first["X-Bacalhau-Job-ID"]
    assert len(calls) == 2 and Job.objects.count() == 1


def test_a_client_is_counted_whatever_its_address(identity, bound, settings) -> None:  # type: ignore[no-untyped-def]
    """The legacy API's client id rides in its body: it is counted as a key is."""
    settings.API_RATE_LIMIT = "3/min"

    def from_(i: int, path: str, body: bytes) -> Any:
        return Client(REMOTE_ADDR=f"203.0.113.{i}").post(
            path, data=body, content_type="application/json"
        )

    submits = [
        from_(i, "/requester/submit", identity.submit_body(wasm_spec(annotations=[f"n{i}"])))
        for i in range(4)
    ]
    assert [r.status_code for r in submits] == [200, 200, 200, 429]
    assert submits[-1].json()["error"]["code"] == "rate_limited" and Job.objects.count() == 3
    cache.clear()
    ask = json.dumps(
        {"client_id": identity.client_id, "job_id": submits[0]["X-Bacalhau-Job-ID"]}
    ).encode()
    statuses = [
        from_(i, path, ask).status_code
        for i in range(2)
        for path in ("/requester/events", "/requester/results")
    ]
    assert statuses == [200, 200, 200, 429]
    # a client that may not submit, or a job no client of that id has, is not counted
    cache.clear()
    other = json.dumps({"client_id": "0" * 64, "job_id": "nope"}).encode()
    assert [from_(i, "/requester/events", other).status_code for i in range(4)] == [404] * 4


def test_whoever_may_not_submit_is_refused_before_the_spec_is_read(identity, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A legacy client names itself in its body, so the body is read; its spec is not, until
    the client is known to be bound and its signature verifies."""
    make_personas()
    unrunnable = wasm_spec(engine="Noop", resources={"Memory": "9" * 400})
    response = post("/requester/submit", identity.submit_body(unrunnable))
    assert response.status_code == 403 and response.json()["error"]["code"] == "unbound_client"
    bind_client(
        identity=identity.client_id, key_prefix=ApiKey.objects.get(name="alice").prefix, actor="t"
    )
    forged = identity.submit_body(unrunnable).replace(b'"signature": "', b'"signature": "AAAA')
    assert post("/requester/submit", forged).status_code == 401
    assert post("/requester/submit", identity.submit_body(unrunnable)).status_code == 400
