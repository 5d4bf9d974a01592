"""A result's `inputs`: where each input was fetched from, read by one set of rules for node
reports and the bundled executor's runs, shown per input, and added up per provider."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from dashboard.errors import DomainError
from dashboard.jobs import provenance
from dashboard.jobs import services as jobs
from dashboard.models import Job, JobResult, ProviderRetrieval
from executor.embedded_store import EmbeddedStore
from executor.run import RunResult
from tests.base import Personas
from tests.chain_data import synthetic_payload_cid
from tests.dashboard.chain_rows import deal, scanned_at
from tests.executor import wat_modules as wat

pytestmark = pytest.mark.django_db

RESULT = {
    "result_cid": "bafybeibvbwys4xy7qangjbe5axy6yokd2lu4q5c7fjmhsgbf4qzjncj44a",
    "exit_code": 0,
    "stdout_cid": "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4",
    "stderr_cid": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
    "outputs_cid": "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354",
    "size_bytes": 1234,
    "runtime_ms": 56,
    "provider": "f01234",
}
BLESSED = synthetic_payload_cid(5)  # deal 5's label
PIECE_URL = "http://127.0.0.1:7777"


@pytest.fixture
def store(settings, tmp_path: Path) -> EmbeddedStore:
    settings.DATA_DIR = tmp_path / "data"
    settings.IPFS_API_URL = None
    return EmbeddedStore(settings.DATA_DIR / "ipfs")


def post(client: Client, path: str, key: str, body: object):  # type: ignore[no-untyped-def]
    return client.post(
        path,
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )


def attempt(ok: bool, reason: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "provider": "f01234",
        "url": f"{PIECE_URL}/piece/x",
        "ok": ok,
        "reason": reason,
        "bytes": 2048 if ok else 0,
        "seconds": 0.5,
        **extra,
    }


def inputs_of(module: str) -> list[dict[str, Any]]:
    """A report's inputs for external_job's spec: the blessed payload fetched from f01234 as
    a piece after two failures (one from a gateway no provider was named for), and the
    module from the node's own store."""
    return [
        {
            "cid": BLESSED,
            "path": "/inputs/data",
            "verified": "piece",
            "provider": "f01234",
            "url": f"{PIECE_URL}/piece/x",
            "bytes": 2048,
            "seconds": 0.5,
            "attempts": [
                attempt(False, "http 404"),
                attempt(False, "timeout", provider=None, url="https://gw.example/ipfs/x"),
                attempt(True),
            ],
        },
        {
            "cid": module,
            "path": "/inputs/m.wasm",
            "verified": "store",
            "provider": None,
            "url": None,
            "bytes": 10,
            "seconds": 0.0,
            "attempts": [],
        },
    ]


def external_job(client: Client, personas: Personas, store: EmbeddedStore, job_id: str) -> str:
    """An external job of node-1 with two inputs, the first blessed by deal 5."""
    scanned_at()
    deal(5)
    module = store.add_bytes(wat.exit_with(0))
    spec = {
        "engine": "wasm",
        "wasm": {"module": module},
        "inputs": [
            {"cid": BLESSED, "path": "/inputs/data"},
            {"cid": module, "path": "/inputs/m.wasm"},
        ],
        "external": True,
        "id": job_id,
    }
    assert post(client, "/api/v1/jobs", personas.node_key, spec).status_code == 201
    return module


def test_a_report_s_inputs_are_shown_per_input_and_added_up_per_provider(
    client: Client, personas: Personas, store: EmbeddedStore
) -> None:
    module = external_job(client, personas, store, "ext-p")
    response = post(
        client,
        "/api/v1/jobs/ext-p/results",
        personas.node_key,
        dict(RESULT, inputs=inputs_of(module)),
    )
    assert response.status_code == 201, response.content
    job = client.get("/api/v1/jobs/ext-p", HTTP_AUTHORIZATION=f"Bearer {personas.node_key}").json()
    first, second = job["inputs"]
    assert first["blessed"] is True and first["blessed_by"] == ["deal 5"]
    assert first["retrieval"]["verified"] == "piece"
    assert (
        first["retrieval"]["url"] == f"{PIECE_URL}/piece/x" and first["retrieval"]["bytes"] == 2048
    )
    assert [a["ok"] for a in first["retrieval"]["attempts"]] == [False, False, True]
    assert second["blessed"] is False and second["blessed_by"] == []
    assert second["retrieval"]["verified"] == "store" and second["retrieval"]["provider"] is None
    provider = ProviderRetrieval.objects.get(key="f01234")
    assert (provider.tries, provider.successes, provider.failures) == (2, 1, 1)
    assert provider.failure_reasons == {"http 404": 1}
    assert (provider.bytes, provider.seconds) == (2048, 0.5)
    gateway = ProviderRetrieval.objects.get(key="https://gw.example")
    assert (gateway.tries, gateway.failures, gateway.provider) == (1, 1, "")
    assert gateway.failure_reasons == {"timeout": 1}
    # the same report again (re-measured times): the same result, counted once
    again = inputs_of(module)
    again[0]["seconds"] = 0.7
    response = post(
        client, "/api/v1/jobs/ext-p/results", personas.node_key, dict(RESULT, inputs=again)
    )
    assert response.status_code == 200
    assert ProviderRetrieval.objects.get(key="f01234").tries == 2


def test_a_report_without_inputs_is_still_taken(
    client: Client, personas: Personas, store: EmbeddedStore
) -> None:
    external_job(client, personas, store, "ext-none")
    response = post(client, "/api/v1/jobs/ext-none/results", personas.node_key, RESULT)
    assert response.status_code == 201
    assert JobResult.objects.get().inputs is None
    job = client.get(
        "/api/v1/jobs/ext-none", HTTP_AUTHORIZATION=f"Bearer {personas.node_key}"
    ).json()
    assert [i["retrieval"] for i in job["inputs"]] == [None, None]
    assert not ProviderRetrieval.objects.exists()


def _bad_reports(module: str) -> list[tuple[str, Any, str]]:
    def changed(path: str, value: Any) -> list[dict[str, Any]]:
        body = inputs_of(module)
        target: Any = body
        *parents, last = path.split(".")
        for part in parents:
            target = target[int(part) if part.isdigit() else part]
        target[int(last) if last.isdigit() else last] = value
        return body

    too_many_attempts = inputs_of(module)
    too_many_attempts[0]["attempts"] = [attempt(True)] * (provenance.MAX_ATTEMPTS + 1)
    return [
        ("not a list", {"a": 1}, "inputs"),
        ("too many", [inputs_of(module)[1]] * (provenance.MAX_INPUTS + 1), "inputs"),
        ("one missing", inputs_of(module)[:1], "inputs"),
        ("not an object", [1, inputs_of(module)[1]], "inputs.0"),
        ("not a CID", changed("0.cid", "nope"), "inputs.0.cid"),
        ("another CID", changed("0.cid", module), "inputs.0.cid"),
        ("another path", changed("1.path", "/elsewhere"), "inputs.1.path"),
        ("a NUL in a path", changed("1.path", "/in\x00"), "inputs.1.path"),
        ("an unknown check", changed("0.verified", "trust me"), "inputs.0.verified"),
        ("a bad provider", changed("0.provider", "t01"), "inputs.0.provider"),
        ("not an HTTP URL", changed("0.url", "file:///etc/passwd"), "inputs.0.url"),
        ("a long URL", changed("0.url", "http://x/" + "a" * 3000), "inputs.0.url"),
        ("negative bytes", changed("0.bytes", -1), "inputs.0.bytes"),
        ("bytes as text", changed("0.bytes", "2048"), "inputs.0.bytes"),
        ("seconds as text", changed("0.seconds", "0.5"), "inputs.0.seconds"),
        ("too many attempts", too_many_attempts, "inputs.0.attempts"),
        ("ok not a boolean", changed("0.attempts.1.ok", "yes"), "inputs.0.attempts.1.ok"),
        ("a NUL reason", changed("0.attempts.0.reason", "a\x00"), "inputs.0.attempts.0.reason"),
        ("an attempt's URL", changed("0.attempts.2.url", "gopher://x"), "inputs.0.attempts.2.url"),
    ]


def test_bad_inputs_are_400_naming_the_field(
    client: Client, personas: Personas, store: EmbeddedStore
) -> None:
    module = external_job(client, personas, store, "ext-bad")
    for what, inputs, field in _bad_reports(module):
        response = post(
            client, "/api/v1/jobs/ext-bad/results", personas.node_key, dict(RESULT, inputs=inputs)
        )
        assert response.status_code == 400, what
        error = response.json()["error"]
        assert error["code"] == "invalid_result" and field in error["fields"], (what, error)
    assert Job.objects.get(id="ext-bad").state == "running"  # nothing recorded
    assert not ProviderRetrieval.objects.exists()


def test_reasons_are_cut_and_bounded_per_provider() -> None:
    inputs = provenance.read_inputs(
        [
            {
                "cid": BLESSED,
                "path": "/in",
                "verified": "blocks",
                "provider": "f07",
                "url": "https://sp.example/ipfs/x",
                "bytes": 1,
                "seconds": 1,
                "attempts": [
                    attempt(False, f"reason {n} " + "x" * 500, provider="f07")
                    for n in range(provenance.MAX_REASONS + 5)
                ],
                "unknown": "dropped",
            }
        ]
    )
    assert inputs is not None and "unknown" not in inputs[0]
    assert len(inputs[0]["attempts"][0]["reason"]) == provenance.MAX_REASON_TEXT
    provenance.record_retrievals(inputs)
    row = ProviderRetrieval.objects.get(key="f07")
    assert len(row.failure_reasons) == provenance.MAX_REASONS
    assert row.failure_reasons["other"] == 6 and row.failures == provenance.MAX_REASONS + 5


def test_byte_sums_stop_at_the_column_s_largest_value() -> None:
    inputs = provenance.read_inputs(
        [
            {
                "cid": BLESSED, "path": "/in", "verified": "piece", "bytes": 1, "seconds": 1,
                "attempts": [attempt(True, bytes=2**63 - 1, provider="f07")] * 3,
            }
        ]
    )  # fmt: skip
    provenance.record_retrievals(inputs)
    provenance.record_retrievals(inputs)
    row = ProviderRetrieval.objects.get(key="f07")
    assert (row.bytes, row.successes) == (2**63 - 1, 6)


@dataclass(frozen=True)
class RunWithInputs(RunResult):
    """What the executor's RunResult reports once it fetches inputs (issue 29)."""

    inputs: Any = None

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "inputs": self.inputs}


def test_the_bundled_executor_s_inputs_go_through_the_same_rules(
    personas: Personas, store: EmbeddedStore
) -> None:
    module = store.add_bytes(wat.exit_with(0))
    run = RunWithInputs(
        result_cid=RESULT["result_cid"],  # type: ignore[arg-type]
        stdout_cid=RESULT["stdout_cid"],  # type: ignore[arg-type]
        stderr_cid=RESULT["stderr_cid"],  # type: ignore[arg-type]
        outputs_cid=RESULT["outputs_cid"],  # type: ignore[arg-type]
        exit_code=0,
        size_bytes=1234,
        runtime_ms=5,
        inputs=[{**inputs_of(module)[0], "cid": "B" + BLESSED[1:].upper()}],
    )
    result = jobs.ResultIn.from_run(run, provider="f01234")
    assert result.inputs is not None and result.inputs[0]["cid"] == BLESSED  # canonical
    assert result.inputs[0]["attempts"][2]["ok"] is True
    bad = RunWithInputs(**{**run.__dict__, "inputs": [{"cid": BLESSED}]})
    with pytest.raises(DomainError, match=r"inputs\.0"):
        jobs.ResultIn.from_run(bad, provider="f01234")
