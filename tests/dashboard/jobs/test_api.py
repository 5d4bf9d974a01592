"""The jobs API (docs/api.md): submission, the bundled executor, external nodes, results, reads."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboard.jobs import services as jobs
from dashboard.models import Job, JobResult
from dashboard.worker import execute_job
from executor.embedded_store import EmbeddedStore
from executor.run import module_cache, run_job
from executor.spec import parse_spec
from tests.base import Personas
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


@pytest.fixture
def store(settings, tmp_path: Path) -> EmbeddedStore:
    settings.DATA_DIR = tmp_path / "data"
    settings.IPFS_API_URL = None
    return EmbeddedStore(settings.DATA_DIR / "ipfs")


def call(client: Client, method: str, path: str, key: str | None, body: object = None):  # type: ignore[no-untyped-def]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    if method == "get":
        return client.get(path, **headers)
    return client.post(
        path,
        data=json.dumps(body) if body is not None else "",
        content_type="application/json",
        **headers,
    )


def wasm_spec(module: str, *args: str, **extra: object) -> dict:
    return {"engine": "wasm", "wasm": {"module": module, "args": list(args)}, **extra}


def run_queued() -> list[str]:
    """What the embedded worker does, synchronously: claim and run every queued job."""
    states = []
    while (job := jobs.claim_next(worker="test-worker")) is not None:
        states.append(execute_job(job, worker="test-worker"))
    return states


# --- submission and validation ------------------------------------------------------------------


def test_submit_validates_and_names_the_bad_field(
    client: Client, personas: Personas, store
) -> None:
    module = store.add_bytes(wat.exit_with(0))
    ok = call(client, "post", "/api/v1/jobs", personas.submitter_key, wasm_spec(module))
    assert ok.status_code == 201
    body = ok.json()
    assert body["state"] == "queued" and body["engine"] == "wasm" and body["external"] is False
    assert body["spec"]["limits"]["timeout_s"] == 600  # defaults written out
    assert body["result"] is None and body["moderation"]["state"] == "pending"
    for bad, field in [
        (wasm_spec("nope"), "wasm.module"),
        (wasm_spec(module, inputs=[{"cid": module, "path": "relative"}]), "inputs.0.path"),
        ({"engine": "wasm"}, "wasm"),
        (wasm_spec(module, limits={"memory_bytes": "lots"}), "limits.memory_bytes"),
        ([1, 2], None),
    ]:
        response = call(client, "post", "/api/v1/jobs", personas.submitter_key, bad)
        assert response.status_code == 400, bad
        error = response.json()["error"]
        assert error["code"] == "invalid_spec"
        if field:
            assert list(error["fields"]) == [field]
    assert Job.objects.count() == 1


def test_who_may_submit(client: Client, personas: Personas, store) -> None:
    spec = wasm_spec(store.add_bytes(wat.exit_with(0)))
    assert call(client, "post", "/api/v1/jobs", None, spec).status_code == 401
    assert call(client, "post", "/api/v1/jobs", "fpk_bogus", spec).status_code == 401
    for key in (personas.notary_key, personas.moderator_key):
        response = call(client, "post", "/api/v1/jobs", key, spec)
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"
    assert call(client, "post", "/api/v1/jobs", personas.node_key, spec).status_code == 201
    client.force_login(personas.moderator)
    assert call(client, "post", "/api/v1/jobs", None, spec).status_code == 403


# --- the bundled executor ---------------------------------------------------------------------


def test_a_queued_job_runs_and_its_inputs_status_is_recorded(
    client: Client, personas: Personas, store, settings
) -> None:
    settings.EXECUTOR_PROVIDER = "f09999"
    scanned_at()
    blessed_input = store.add_bytes(b"blessed data\n")
    deal(1, label=blessed_input)
    other_input = store.add_bytes(b"just data\n")
    module = store.add_bytes(wat.clocks_and_random())
    spec = wasm_spec(
        module,
        inputs=[
            {"cid": blessed_input, "path": "/in/a.txt"},
            {"cid": other_input, "path": "/in/b.txt"},
        ],
        annotations=["filplus"],
    )
    job_id = call(client, "post", "/api/v1/jobs", personas.submitter_key, spec).json()["id"]
    assert run_queued() == ["completed"]
    body = call(client, "get", f"/api/v1/jobs/{job_id}", personas.submitter_key).json()
    assert body["state"] == "completed" and body["error"] is None
    assert body["started_at"] and body["finished_at"] and body["attempts"] == 1
    assert [(i["cid"], i["blessed"], i["status"]) for i in body["inputs"]] == [
        (blessed_input, True, "active"),
        (other_input, False, "unknown"),
    ]
    assert body["inputs_blessed"] is False
    result = body["result"]
    assert result["provider"] == "f09999" and result["exit_code"] == 0
    stdout = store.cat(result["stdout_cid"]).decode().splitlines()
    assert stdout[0] == "1640995200000000000"
    # The same job run locally by the executor's own code path, in another store holding the
    # same bytes: the same result CID.
    elsewhere = EmbeddedStore(Path(settings.DATA_DIR).parent / "elsewhere")
    for data in (b"blessed data\n", b"just data\n", wat.clocks_and_random()):
        elsewhere.add_bytes(data)
    local = run_job(parse_spec(spec), elsewhere, cache=module_cache(None))
    assert local.result_cid == result["result_cid"]
    # beside the result, not in it: what ran and how it ended
    receipt = result["receipt"]
    assert receipt["engine"] == "wasm" and receipt["runtime"].startswith("wasmtime ")
    assert receipt["target"] == "cranelift" and "nan_canonicalization" in receipt["determinism"]
    assert receipt["outcome"] == "completed" and receipt["fuel_used"] == local.fuel_used > 0
    assert receipt["module_cid"] == module
    assert receipt["input_cids"] == [blessed_input, other_input]


def test_a_failing_job_records_the_reason(client: Client, personas: Personas, store) -> None:
    module = store.add_bytes(wat.spin())
    job_id = call(
        client, "post", "/api/v1/jobs", personas.node_key, wasm_spec(module, limits={"fuel": 1000})
    ).json()["id"]
    assert run_queued() == ["failed"]
    body = call(client, "get", f"/api/v1/jobs/{job_id}", personas.node_key).json()
    assert body["state"] == "failed" and body["result"] is None
    assert body["error"] == "fuel limit of 1000 exhausted"
    assert body["outcome"] == "fuel_exhausted"


def test_a_jobs_outcome_says_how_its_run_ended(client: Client, personas: Personas, store) -> None:
    ids = {
        name: call(client, "post", "/api/v1/jobs", personas.node_key, spec).json()["id"]
        for name, spec in {
            "exit": wasm_spec(store.add_bytes(wat.exit_with(3))),
            "trap": wasm_spec(store.add_bytes(wat.divide_by_zero())),
            "slow": wasm_spec(store.add_bytes(wat.spin()), limits={"timeout_s": 0.3}),
            "gone": wasm_spec("bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba"),
        }.items()
    }
    run_queued()
    got = {
        name: call(client, "get", f"/api/v1/jobs/{job_id}", personas.node_key).json()
        for name, job_id in ids.items()
    }
    assert {name: (body["state"], body["outcome"]) for name, body in got.items()} == {
        "exit": ("completed", "completed"),  # any exit code is a result
        "trap": ("failed", "failed_in_program"),
        "slow": ("failed", "timed_out"),
        "gone": ("failed", None),  # it never ran
    }


def test_a_host_failure_is_retried_then_failed(
    client: Client, personas: Personas, store, settings, tmp_path: Path, monkeypatch
) -> None:
    # This machine "has" 512 MiB of RAM and no swap: a job that may grow to 1 GiB is refused
    # by the host before it runs (executor/host_memory.py), which is not the job's failure.
    from executor import host_memory

    (tmp_path / "meminfo").write_text("MemTotal: 524288 kB\nSwapTotal: 0 kB\n")
    (tmp_path / "overcommit").write_text("0\n")
    monkeypatch.setattr(host_memory, "_MEMINFO", tmp_path / "meminfo")
    monkeypatch.setattr(host_memory, "_OVERCOMMIT", tmp_path / "overcommit")
    settings.EXECUTOR_MAX_ATTEMPTS = 3
    spec = wasm_spec(store.add_bytes(wat.exit_with(0)), limits={"memory_bytes": 1 << 30})
    job_id = call(client, "post", "/api/v1/jobs", personas.node_key, spec).json()["id"]
    job = jobs.claim_next(worker="test-worker")
    assert job is not None and execute_job(job, worker="test-worker") == "queued"
    waiting = Job.objects.get(id=job_id)  # back in the queue, saying why
    assert (waiting.state, waiting.outcome, waiting.attempts) == ("queued", "", 1)
    assert waiting.error.startswith("attempt 1 ended in a host failure: not run: ")
    assert run_queued() == ["queued", "failed"]
    body = call(client, "get", f"/api/v1/jobs/{job_id}", personas.node_key).json()
    assert (body["state"], body["outcome"], body["attempts"]) == ("failed", "host_failure", 3)
    assert body["error"].startswith("not run: ")
    assert "more than this machine's RAM and swap" in body["error"]


def test_missing_module_fails_the_job_not_the_worker(
    client: Client, personas: Personas, store
) -> None:
    absent = "bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba"
    call(client, "post", "/api/v1/jobs", personas.submitter_key, wasm_spec(absent))
    assert run_queued() == ["failed"]
    assert "was not found" in Job.objects.get().error


def test_expired_leases_requeue_then_fail(settings, personas: Personas, store) -> None:
    settings.EXECUTOR_MAX_ATTEMPTS = 2
    spec = parse_spec(wasm_spec(store.add_bytes(wat.exit_with(0))))
    job, _ = jobs.submit_job(key=personas.node, spec=spec)
    for attempt in (1, 2):
        claimed = jobs.claim_job(job_id=job.id, worker=f"w{attempt}")
        assert claimed is not None and claimed.attempts == attempt
        assert jobs.claim_job(job_id=job.id, worker="rival") is None  # one owner at a time
        assert jobs.recover_expired() == {"requeued": [], "failed": []}  # lease still live
        Job.objects.filter(id=job.id).update(lease_until=timezone.now() - timedelta(seconds=1))
        assert not jobs.renew_lease(job_id=job.id, worker="someone-else")
        outcome = jobs.recover_expired()
        if attempt == 1:
            assert outcome == {"requeued": [job.id], "failed": []}
            assert Job.objects.get(id=job.id).state == "queued"
    assert outcome == {"requeued": [], "failed": [job.id]}
    failed = Job.objects.get(id=job.id)
    assert failed.state == "failed"
    assert "lost 2 times" in failed.error
    # a late result from the first worker cannot resurrect it
    with pytest.raises(jobs.DomainError) as err:
        jobs.record_result(job_id=job.id, result=jobs.ResultIn(**RESULT))
    assert err.value.status == 409


# --- external compute nodes -------------------------------------------------------------------


def test_external_registration_is_idempotent(client: Client, personas: Personas, store) -> None:
    spec = wasm_spec(store.add_bytes(wat.exit_with(0)), external=True, id="node1-job-7")
    first = call(client, "post", "/api/v1/jobs", personas.node_key, spec)
    assert first.status_code == 201
    assert first.json()["state"] == "running" and first.json()["node"] == "node-1"
    again = call(client, "post", "/api/v1/jobs", personas.node_key, spec)
    assert again.status_code == 200 and again.json()["id"] == "node1-job-7"
    changed = dict(spec, annotations=["different"])
    conflict = call(client, "post", "/api/v1/jobs", personas.node_key, changed)
    assert (conflict.status_code, conflict.json()["error"]["code"]) == (409, "job_conflict")
    taken = call(client, "post", "/api/v1/jobs", personas.other_node_key, spec)
    assert (taken.status_code, taken.json()["error"]["code"]) == (409, "job_id_taken")
    not_a_node = call(client, "post", "/api/v1/jobs", personas.submitter_key, spec)
    assert not_a_node.status_code == 403
    bad_id = call(client, "post", "/api/v1/jobs", personas.node_key, dict(spec, id="bad id"))
    assert bad_id.status_code == 400 and "id" in bad_id.json()["error"]["fields"]
    assert Job.objects.count() == 1


def test_results_are_idempotent_and_only_the_node_may_write(
    client: Client, personas: Personas, store
) -> None:
    spec = wasm_spec(store.add_bytes(wat.exit_with(0)), external=True, id="ext-1")
    call(client, "post", "/api/v1/jobs", personas.node_key, spec)
    path = "/api/v1/jobs/ext-1/results"
    assert call(client, "post", path, personas.other_node_key, RESULT).status_code == 404
    assert call(client, "post", path, personas.submitter_key, RESULT).status_code == 403
    first = call(client, "post", path, personas.node_key, RESULT)
    assert first.status_code == 201
    assert first.json()["state"] == "completed"
    assert first.json()["result"] == {**RESULT, "parts_checked": False, "receipt": None}
    assert call(client, "post", path, personas.node_key, RESULT).status_code == 200
    different = dict(RESULT, result_cid=RESULT["stdout_cid"])
    conflict = call(client, "post", path, personas.node_key, different)
    assert (conflict.status_code, conflict.json()["error"]["code"]) == (409, "result_conflict")
    assert Job.objects.get().result.result_cid == RESULT["result_cid"]  # nothing lost


def test_result_validation_and_provider(client: Client, personas: Personas, store) -> None:
    spec = wasm_spec(store.add_bytes(wat.exit_with(0)), external=True, id="ext-2")
    call(client, "post", "/api/v1/jobs", personas.node_key, spec)
    path = "/api/v1/jobs/ext-2/results"
    for bad, field in [
        (dict(RESULT, result_cid="nope"), "result_cid"),
        (dict(RESULT, size_bytes=-1), "size_bytes"),
        (dict(RESULT, exit_code="0"), "exit_code"),
        (dict(RESULT, provider="t01"), "provider"),
        ({k: v for k, v in RESULT.items() if k != "stdout_cid"}, "stdout_cid"),
        (dict(RESULT, extra=1), "extra"),
    ]:
        response = call(client, "post", path, personas.node_key, bad)
        assert response.status_code == 400, bad
        assert field in response.json()["error"]["fields"]
    wrong = call(client, "post", path, personas.node_key, dict(RESULT, provider="f05"))
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (403, "provider_mismatch")
    # a node key with a provider reports for it by default
    implicit = {k: v for k, v in RESULT.items() if k != "provider"}
    assert call(client, "post", path, personas.node_key, implicit).json()["result"]["provider"] == (
        "f01234"
    )


def test_a_node_cannot_write_results_of_bundled_jobs(
    client: Client, personas: Personas, store
) -> None:
    job_id = call(
        client,
        "post",
        "/api/v1/jobs",
        personas.node_key,
        wasm_spec(store.add_bytes(wat.exit_with(0))),
    ).json()["id"]
    response = call(client, "post", f"/api/v1/jobs/{job_id}/results", personas.node_key, RESULT)
    assert response.status_code == 403
    assert Job.objects.get().state == "queued"


# --- reading: visibility, filters, pagination ------------------------------------------------


def test_each_caller_sees_what_it_may(client: Client, personas: Personas, store) -> None:
    module = store.add_bytes(wat.exit_with(0))
    mine = call(client, "post", "/api/v1/jobs", personas.submitter_key, wasm_spec(module)).json()
    theirs = call(client, "post", "/api/v1/jobs", personas.node_key, wasm_spec(module)).json()

    def ids(key: str | None) -> set[str]:
        return {j["id"] for j in call(client, "get", "/api/v1/jobs", key).json()["results"]}

    assert ids(personas.submitter_key) == {mine["id"]}
    assert ids(personas.node_key) == {theirs["id"]}
    assert ids(personas.other_node_key) == set()
    assert ids(personas.moderator_key) == {mine["id"], theirs["id"]}
    assert (
        call(client, "get", f"/api/v1/jobs/{theirs['id']}", personas.submitter_key).status_code
        == 404
    )
    assert call(client, "get", "/api/v1/jobs", personas.notary_key).status_code == 403
    client.force_login(personas.viewer)
    assert ids(None) == {mine["id"], theirs["id"]}
    client.logout()
    client.force_login(personas.outsider)
    assert call(client, "get", "/api/v1/jobs", None).status_code == 403


def test_filters_and_pagination(client: Client, personas: Personas, store) -> None:
    module = store.add_bytes(wat.exit_with(0))
    created = []
    for n in range(7):
        annotations = ["even"] if n % 2 == 0 else []
        created.append(
            call(
                client,
                "post",
                "/api/v1/jobs",
                personas.submitter_key,
                wasm_spec(module, str(n), annotations=annotations),
            ).json()["id"]
        )
    docker = {"engine": "docker", "docker": {"image": "tiny:1"}}
    created.append(
        call(client, "post", "/api/v1/jobs", personas.submitter_key, docker).json()["id"]
    )
    Job.objects.filter(id=created[0]).update(state="completed")

    def listing(query: str) -> list[str]:
        response = call(client, "get", f"/api/v1/jobs?{query}", personas.moderator_key)
        assert response.status_code == 200, response.content
        return [j["id"] for j in response.json()["results"]]

    assert listing("state=completed") == [created[0]]
    assert listing("engine=docker") == [created[7]]
    assert set(listing("annotation=even")) == {created[i] for i in (0, 2, 4, 6)}
    assert listing("annotation=eve") == []
    assert listing("node=node-1") == []
    seen: list[str] = []
    url = "/api/v1/jobs?limit=3"
    pages = 0
    while url:
        body = call(client, "get", url, personas.moderator_key).json()
        seen += [j["id"] for j in body["results"]]
        url = body["next"]
        pages += 1
    assert pages == 3
    assert seen == list(reversed(created))  # newest first, each exactly once
    for query, field in [
        ("state=done", "state"),
        ("engine=jvm", "engine"),
        ("limit=0", "limit"),
        ("limit=x", "limit"),
        ("cursor=%%%", "cursor"),
        ("blessed=maybe", "blessed"),
        # NUL, which PostgreSQL refuses in text: found by schemathesis as a 500
        ("node=a%00b", "node"),
        ("annotation=%00", "annotation"),
        ("cursor=MjAyNi0wMS0wMVQwMDowMDowMCswMDowMHxhAGI", "cursor"),  # a job id with a NUL in it
    ]:
        response = call(client, "get", f"/api/v1/jobs?{query}", personas.moderator_key)
        assert response.status_code == 400, query
        assert field in response.json()["error"]["fields"]


def test_listing_costs_a_constant_number_of_queries(
    client: Client, personas: Personas, store
) -> None:
    module = store.add_bytes(wat.exit_with(0))
    call(client, "get", "/api/v1/jobs", personas.moderator_key)  # the key's last_used_at write
    counts = []
    for total in (2, 12):
        while Job.objects.count() < total:
            body = wasm_spec(module, inputs=[{"cid": module, "path": "/in/m.wasm"}])
            call(client, "post", "/api/v1/jobs", personas.submitter_key, body)
        with CaptureQueriesContext(connection) as queries:
            assert call(client, "get", "/api/v1/jobs", personas.moderator_key).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_cancel(client: Client, personas: Personas, store) -> None:
    module = store.add_bytes(wat.exit_with(0))
    job_id = call(client, "post", "/api/v1/jobs", personas.submitter_key, wasm_spec(module)).json()[
        "id"
    ]
    path = f"/api/v1/jobs/{job_id}/cancel"
    assert call(client, "post", path, personas.node_key).status_code == 404
    response = call(client, "post", path, personas.submitter_key)
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    assert run_queued() == []  # nothing left to run


def test_uploads_over_the_limit_are_413_and_store_nothing(
    client: Client, personas: Personas, store, settings
) -> None:
    settings.CONTENT_MAX_BYTES = 10
    headers = {"HTTP_AUTHORIZATION": f"Bearer {personas.submitter_key}"}
    ok = client.post("/api/v1/content", data=b"0123456789", content_type="text/plain", **headers)
    assert ok.status_code == 201
    too_big = client.post(
        "/api/v1/content", data=b"0123456789x", content_type="text/plain", **headers
    )
    assert too_big.status_code == 413
    assert too_big.json()["error"]["code"] == "body_too_large"
    assert not store.has("bafkreieodakyotisg3bnqmrwwhiliugmacmaorfjaysz3uun4w73jp5344")
    notary = {"HTTP_AUTHORIZATION": f"Bearer {personas.notary_key}"}
    assert (
        client.post("/api/v1/content", data=b"x", content_type="text/plain", **notary).status_code
        == 403
    )


def _stored_result(store: EmbeddedStore, tmp_path: Path) -> dict:
    root = tmp_path / "result"
    (root / "outputs").mkdir(parents=True)
    (root / "stdout").write_bytes(b"3 KB of output\n" * 200)
    (root / "stderr").write_bytes(b"")
    (root / "exitCode").write_text("0")
    added = {e.path: e.cid for e in store.add_path(root)}
    return dict(
        RESULT,
        result_cid=added["result"],
        stdout_cid=added["result/stdout"],
        stderr_cid=added["result/stderr"],
        outputs_cid=added["result/outputs"],
        size_bytes=3001,  # 3000 bytes of stdout and the exit code's one
    )


def test_a_result_in_the_store_is_measured_and_an_inflated_size_refused(
    client: Client, personas: Personas, store, tmp_path: Path
) -> None:
    spec = wasm_spec(store.add_bytes(wat.exit_with(0)), external=True, id="ext-measured")
    assert call(client, "post", "/api/v1/jobs", personas.node_key, spec).status_code == 201
    result = _stored_result(store, tmp_path)
    path = "/api/v1/jobs/ext-measured/results"
    inflated = call(client, "post", path, personas.node_key, dict(result, size_bytes=2**50))
    assert inflated.status_code == 409
    error = inflated.json()["error"]
    assert error["code"] == "size_mismatch" and error["fields"] == {"size_bytes": 3001}
    assert str(2**50) in error["message"] and "3001" in error["message"]
    assert not JobResult.objects.filter(job_id="ext-measured").exists()
    assert call(client, "post", path, personas.node_key, result).status_code == 201
    stored = JobResult.objects.get(job_id="ext-measured")
    car = io.BytesIO()
    store.export_car(result["result_cid"], car)
    assert stored.car_bytes == len(car.getvalue())


def test_a_result_not_in_the_store_is_recorded_unmeasured(
    client: Client, personas: Personas, store
) -> None:
    spec = wasm_spec(store.add_bytes(wat.exit_with(0)), external=True, id="ext-elsewhere")
    assert call(client, "post", "/api/v1/jobs", personas.node_key, spec).status_code == 201
    path = "/api/v1/jobs/ext-elsewhere/results"
    assert call(client, "post", path, personas.node_key, RESULT).status_code == 201
    assert JobResult.objects.get(job_id="ext-elsewhere").car_bytes is None
    client.force_login(personas.moderator)
    page = client.get("/jobs/ext-elsewhere/").content.decode()
    assert "its size was not measured" in page


@pytest.mark.parametrize(
    ("part", "invented"),
    [
        ("stdout_cid", "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"),
        ("stderr_cid", "bafkreid3yvacrpfyy4vl5imho46qghn5c3clq5vxhrqqvpzfxkdjm3i4g4"),
        ("outputs_cid", RESULT["result_cid"]),  # a folder, not the result's outputs
        ("exit_code", 3),
    ],
)
def test_a_part_the_result_does_not_hold_is_refused(
    client: Client, personas: Personas, store, tmp_path: Path, part: str, invented: object
) -> None:
    """The true result CID (re-execution would say match) with an invented part: refused,
    naming the part and what the result holds; nothing is stored."""
    spec = wasm_spec(store.add_bytes(wat.exit_with(0)), external=True, id="ext-parts")
    assert call(client, "post", "/api/v1/jobs", personas.node_key, spec).status_code == 201
    result = _stored_result(store, tmp_path)
    store.add_bytes(b"an invented stdout, stored so that it could be previewed\n")
    lying = call(client, "post", "/api/v1/jobs/ext-parts/results", personas.node_key,
                 dict(result, **{part: invented}))  # fmt: skip
    assert lying.status_code == 409, lying.json()
    error = lying.json()["error"]
    assert error["code"] == "result_parts_mismatch" and error["fields"] == {part: result[part]}
    assert not JobResult.objects.filter(job_id="ext-parts").exists()
    honest = call(client, "post", "/api/v1/jobs/ext-parts/results", personas.node_key, result)
    assert honest.status_code == 201 and honest.json()["result"]["parts_checked"] is True


def test_a_result_that_is_not_a_result_directory_is_refused(
    client: Client, personas: Personas, store, tmp_path: Path
) -> None:
    spec = wasm_spec(store.add_bytes(wat.exit_with(0)), external=True, id="ext-shape")
    assert call(client, "post", "/api/v1/jobs", personas.node_key, spec).status_code == 201
    root = tmp_path / "odd"
    (root / "outputs").mkdir(parents=True)
    (root / "stdout").write_bytes(b"hi\n")
    (root / "exitCode").write_text("--5")  # not a number, though its digits are
    added = {e.path: e.cid for e in store.add_path(root)}
    body = dict(RESULT, result_cid=added["odd"], stdout_cid=added["odd/stdout"],
                outputs_cid=added["odd/outputs"], size_bytes=6)  # fmt: skip
    refused = call(client, "post", "/api/v1/jobs/ext-shape/results", personas.node_key, body)
    error = refused.json()["error"]
    assert (refused.status_code, error["code"]) == (409, "result_parts_mismatch")
    assert error["fields"] == {"stderr": "missing", "exitCode": "missing"}
    a_file = store.add_bytes(b"just a file")
    body = dict(RESULT, result_cid=a_file, size_bytes=11)
    refused = call(client, "post", "/api/v1/jobs/ext-shape/results", personas.node_key, body)
    assert refused.status_code == 409 and set(refused.json()["error"]["fields"]) == {
        "stdout", "stderr", "exitCode", "outputs",
    }  # fmt: skip


def test_parts_of_a_result_not_in_the_store_are_not_shown(
    client: Client, personas: Personas, store
) -> None:
    """Reported parts of a result this dashboard cannot read are kept as reported, marked not
    checked, and never previewed, even when the reported stdout itself is in the store."""
    spec = wasm_spec(store.add_bytes(wat.exit_with(0)), external=True, id="ext-unread")
    assert call(client, "post", "/api/v1/jobs", personas.node_key, spec).status_code == 201
    invented = store.add_bytes(b"an invented stdout under a match badge\n")
    body = dict(RESULT, stdout_cid=invented)
    made = call(client, "post", "/api/v1/jobs/ext-unread/results", personas.node_key, body)
    assert made.status_code == 201 and made.json()["result"]["parts_checked"] is False
    assert made.json()["result"]["stdout_cid"] == invented  # as reported
    client.force_login(personas.moderator)
    page = client.get("/jobs/ext-unread/").content.decode()
    assert "an invented stdout" not in page
    assert "so its stdout cannot be read from it" in page


def test_a_nodes_receipt_is_kept_and_a_bad_one_refused(
    client: Client, personas: Personas, store
) -> None:
    spec = wasm_spec(store.add_bytes(wat.exit_with(0)), external=True, id="ext-receipt")
    assert call(client, "post", "/api/v1/jobs", personas.node_key, spec).status_code == 201
    receipt = {
        "engine": "wasm", "runtime": "wasmtime 50.0.1", "target": "cranelift",
        "determinism": ["fuel", "nan_canonicalization"], "fuel_used": 1234,
        "outcome": "completed", "module_cid": spec["wasm"]["module"], "image": None,
        "input_cids": [],
    }  # fmt: skip
    path = "/api/v1/jobs/ext-receipt/results"
    bad = call(client, "post", path, personas.node_key,
               dict(RESULT, receipt=dict(receipt, outcome="probably fine")))  # fmt: skip
    assert bad.status_code == 400 and "receipt.outcome" in bad.json()["error"]["fields"]
    # A result's receipt that says the run timed out contradicts the report it comes with.
    timed_out = call(client, "post", path, personas.node_key,
                     dict(RESULT, receipt=dict(receipt, outcome="timed_out")))  # fmt: skip
    assert timed_out.status_code == 400
    assert "receipt.outcome" in timed_out.json()["error"]["fields"]
    made = call(client, "post", path, personas.node_key, dict(RESULT, receipt=receipt))
    assert made.status_code == 201 and made.json()["result"]["receipt"] == receipt
    client.force_login(personas.moderator)
    page = client.get("/jobs/ext-receipt/").content.decode()
    assert 'id="result-receipt"' in page and "wasmtime 50.0.1 (cranelift), completed" in page
