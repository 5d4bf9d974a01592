"""Scanning Bacalhau orchestrators (docs/bacalhau.md): a local orchestrator answering real-shaped
bodies, paging, jobs seen running then completed, failed executions, int and string states,
idempotent passes, the lease, a killed pass, and the node-to-provider mapping."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone

from dashboard.bacalhau import scan as bacalhau_scan
from dashboard.bacalhau.scan import OrchestratorClient, OrchestratorError, scan_orchestrator
from dashboard.models import (
    AuditEvent,
    BacalhauExecution,
    BacalhauOrchestrator,
    Job,
    JobResult,
)
from dashboard.moderation import services as moderation
from executor.embedded_store import EmbeddedStore
from tests.base import make_personas
from tests.dashboard.bacalhau.shapes import (
    MODULE,
    NODE_ID,
    docker_task,
    execution,
    job,
    wasm_task,
)
from tests.dashboard.chain_rows import deal, scanned_at
from tests.fake_bacalhau import FakeOrchestrator
from tests.helpers import ROOT, process_env, wait_until

RESULT = "bafybeibvbwys4xy7qangjbe5axy6yokd2lu4q5c7fjmhsgbf4qzjncj44a"
OTHER_RESULT = "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"


@pytest.fixture
def orchestrator() -> Iterator[FakeOrchestrator]:
    fake = FakeOrchestrator()
    yield fake
    fake.close()


@pytest.fixture
def store(settings, tmp_path: Path) -> EmbeddedStore:
    settings.DATA_DIR = tmp_path / "data"
    settings.IPFS_API_URL = None
    return EmbeddedStore(settings.DATA_DIR / "ipfs")


def scan(fake: FakeOrchestrator, labels: str = "") -> bacalhau_scan.PassReport:
    client = OrchestratorClient(fake.url)
    try:
        return scan_orchestrator(client, labels=labels)
    finally:
        client.close()


def our_job(execution_id: str) -> Job:
    return Job.objects.select_related("result").get(bacalhau__execution_id=execution_id)


@pytest.mark.django_db
def test_a_completed_execution_becomes_an_external_job_in_the_queue(orchestrator, store) -> None:
    scanned_at()
    payload, _ = deal(1)
    personas = make_personas()
    orchestrator.put(
        job("j-1", wasm_task(MODULE, [(payload, "/inputs/data")], Parameters=["/inputs/data"])),
        execution("e-1", "j-1", state=7, result_cid=RESULT, exit_code=3),
    )
    report = scan(orchestrator)
    assert len(report.imported) == 1 and report.not_imported == {}
    imported = our_job("e-1")
    assert imported.id == report.imported[0]
    assert imported.id.startswith("bac-") and imported.id.endswith(":j-1:e-1")
    assert imported.external and imported.state == Job.State.COMPLETED
    assert imported.engine == "wasm" and imported.spec["wasm"]["module"] == MODULE
    assert imported.spec["wasm"]["args"] == ["/inputs/data"]
    assert imported.annotations == ["filplus"]
    assert imported.moderation_state == Job.Moderation.PENDING
    assert [(i.cid, i.path, i.blessed) for i in imported.inputs.all()] == [
        (payload, "/inputs/data", True)
    ]
    assert imported.inputs_blessed is True
    assert imported.result.result_cid == RESULT and imported.result.exit_code == 3
    assert imported.result.size_bytes is None  # not in our store: not measured
    assert imported.result.runtime_ms == 3000
    origin = imported.bacalhau
    assert (origin.bacalhau_job_id, origin.node_id) == ("j-1", NODE_ID)
    # the API shows where it ran; moderators see it like any other job
    answer = (
        Client()
        .get(f"/api/v1/jobs/{imported.id}", HTTP_AUTHORIZATION=f"Bearer {personas.moderator_key}")
        .json()
    )
    assert answer["bacalhau"] == {
        "orchestrator": orchestrator.url,
        "job_id": "j-1",
        "execution_id": "e-1",
        "node_id": NODE_ID,
    }
    assert answer["result"]["size_bytes"] is None and answer["result"]["stdout_cid"] is None
    client = Client()
    client.force_login(personas.moderator)
    assert imported.id in client.get("/").content.decode()
    page = client.get(f"/jobs/{imported.id}/").content.decode()
    assert f'Bacalhau node <span class="mono">{NODE_ID}</span>' in page
    assert "not measured: the result is not in this dashboard's store" in page


@pytest.mark.django_db
def test_a_result_in_our_store_is_measured(orchestrator, store, tmp_path: Path) -> None:
    folder = tmp_path / "result"
    (folder / "outputs").mkdir(parents=True)
    (folder / "stdout").write_bytes(b"hello\n")
    (folder / "stderr").write_bytes(b"")
    (folder / "exitCode").write_bytes(b"0")
    (folder / "outputs" / "o.txt").write_bytes(b"x" * 100)
    root = store.add_path(folder)[-1].cid
    orchestrator.put(
        job("j-1", docker_task("ubuntu", [])), execution("e-1", "j-1", result_cid=root)
    )
    scan(orchestrator)
    result = our_job("e-1").result
    assert result.size_bytes == 6 + 0 + 1 + 100
    assert result.stdout_cid == store.add_bytes(b"hello\n")
    assert result.outputs_cid and result.car_bytes is not None


@pytest.mark.django_db
def test_paging_reads_every_job_and_states_come_as_ints_or_names(orchestrator, store) -> None:
    for n in range(230):
        state: int | str = 7 if n % 2 else "Completed"
        orchestrator.put(
            job(f"j-{n}", docker_task("ubuntu", []), created=1_700_000_000 + n),
            execution(f"e-{n}", f"j-{n}", state=state, result_cid=RESULT),
        )
    report = scan(orchestrator)
    assert report.jobs_read == 230 and len(report.imported) == 230
    pages = [p for p in orchestrator.requests if p.startswith("/api/v1/orchestrator/jobs?")]
    assert len(pages) == 3 and "next_token=" in pages[1]
    assert BacalhauExecution.objects.count() == 230


@pytest.mark.django_db
def test_a_job_seen_running_is_imported_once_it_completes(orchestrator, store) -> None:
    task = docker_task("ubuntu", [])
    orchestrator.put(
        job("j-1", task, state="Running", modified=1_717_243_210),
        execution("e-1", "j-1", state=5),  # BidAccepted: running
    )
    assert scan(orchestrator).imported == []
    # the execution completes while the job itself is still Running with the same
    # ModifyTime (a job of several executions): the pass reads it again all the same
    orchestrator.put(
        job("j-1", task, state="Running", modified=1_717_243_210),
        execution("e-1", "j-1", state=7, result_cid=RESULT),
    )
    assert len(scan(orchestrator).imported) == 1
    orchestrator.put(
        job("j-1", task, state="Completed", modified=1_717_243_300),
        execution("e-1", "j-1", state=7, result_cid=RESULT),
    )
    again = scan(orchestrator)
    assert again.imported == [] and again.jobs_read == 1
    assert Job.objects.count() == 1


@pytest.mark.django_db
def test_failed_and_unpublished_executions_are_not_imported(orchestrator, store) -> None:
    orchestrator.put(
        job("j-1", docker_task("ubuntu", []), state="Failed"),
        execution("e-1", "j-1", state=8, error="exit status 1: out of memory"),
        execution("e-2", "j-1", state="Failed", error="boom"),
        execution("e-3", "j-1", state=9),  # cancelled
    )
    orchestrator.put(
        job("j-2", docker_task("ubuntu", [])),
        execution("e-4", "j-2", state=7),  # completed, published nowhere
    )
    noop = docker_task("ubuntu", [])
    noop["Engine"] = {"Type": "noop", "Params": {}}
    orchestrator.put(job("j-3", noop), execution("e-5", "j-3", result_cid=RESULT))
    report = scan(orchestrator)
    assert report.imported == []
    assert report.not_imported == {
        "e-4": "its result is not published to IPFS",
        "e-5": "its engine is neither wasm nor docker",
    }
    assert Job.objects.count() == 0


@pytest.mark.django_db
def test_passes_are_idempotent_and_read_only_what_changed(orchestrator, store) -> None:
    for n in range(150):
        orchestrator.put(
            job(f"j-{n}", docker_task("ubuntu", []), modified=1_700_000_000 + n),
            execution(f"e-{n}", f"j-{n}", result_cid=RESULT),
        )
    assert len(scan(orchestrator).imported) == 150
    orchestrator.requests.clear()
    orchestrator.put(
        job("j-new", docker_task("ubuntu", []), modified=1_800_000_000),
        execution("e-new", "j-new", result_cid=OTHER_RESULT),
    )
    second = scan(orchestrator)
    assert second.imported == [our_job("e-new").id]
    # one page of jobs (stopped at the watermark), the new job's and the boundary job's
    # executions: not 150 jobs' again
    assert len(orchestrator.requests) <= 4, orchestrator.requests
    assert Job.objects.count() == 151


@pytest.mark.django_db
def test_labels_select_jobs(orchestrator, store) -> None:
    orchestrator.put(job("j-1", docker_task("a", [])), execution("e-1", "j-1", result_cid=RESULT))
    orchestrator.put(
        job("j-2", docker_task("a", []), labels={}), execution("e-2", "j-2", result_cid=RESULT)
    )
    scan(orchestrator, labels="filplus")
    assert list(BacalhauExecution.objects.values_list("execution_id", flat=True)) == ["e-1"]
    assert "labels=filplus" in orchestrator.requests[0]


@pytest.mark.django_db
def test_an_orchestrator_that_fails_keeps_what_was_imported(orchestrator, store) -> None:
    for n in range(120):
        orchestrator.put(
            job(f"j-{n}", docker_task("ubuntu", []), modified=1_700_000_000 + n),
            execution(f"e-{n}", f"j-{n}", result_cid=RESULT),
        )
    real_jobs = OrchestratorClient.jobs
    pages = 0

    def jobs_then_down(self, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal pages
        pages += 1
        if pages == 2:
            orchestrator.fail_with = 503
        return real_jobs(self, **kwargs)

    OrchestratorClient.jobs = jobs_then_down  # type: ignore[method-assign]
    try:
        with pytest.raises(OrchestratorError, match="HTTP 503"):
            scan(orchestrator)
    finally:
        OrchestratorClient.jobs = real_jobs  # type: ignore[method-assign]
    row = BacalhauOrchestrator.objects.get()
    assert "HTTP 503" in row.last_error and row.watermark is None
    assert Job.objects.count() == 100  # the first page's imports stay
    assert row.lease_owner == ""  # released
    orchestrator.fail_with = None
    report = scan(orchestrator)
    assert len(report.imported) == 20 and Job.objects.count() == 120
    assert BacalhauOrchestrator.objects.get().last_error == ""


@pytest.mark.django_db
def test_a_pass_is_skipped_while_another_holds_the_lease(orchestrator, store) -> None:
    orchestrator.put(job("j-1", docker_task("a", [])), execution("e-1", "j-1", result_cid=RESULT))
    BacalhauOrchestrator.objects.create(
        url=orchestrator.url,
        lease_owner="another-host:1",
        lease_until=timezone.now() + timedelta(minutes=1),
    )
    assert scan(orchestrator).skipped is True
    assert Job.objects.count() == 0 and orchestrator.requests == []
    BacalhauOrchestrator.objects.update(lease_until=timezone.now() - timedelta(seconds=1))
    assert len(scan(orchestrator).imported) == 1  # an expired lease is free


@pytest.mark.django_db
def test_unmapped_nodes_cannot_be_awarded_until_an_admin_maps_them(orchestrator, store) -> None:
    personas = make_personas()
    orchestrator.put(job("j-1", docker_task("a", [])), execution("e-1", "j-1", result_cid=RESULT))
    scan(orchestrator)
    imported = our_job("e-1")
    moderation.decide(
        job_id=imported.id, user=personas.moderator, decision="verify", datacap="1 GiB"
    )
    path = f"/api/v1/notary/verifications/{RESULT}"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {personas.notary_key}"}
    answer = Client().get(path, **auth).json()
    assert answer["verified"] is False and answer["reason"]["code"] == "no_holder"
    assert NODE_ID in answer["reason"]["message"]
    # the admin maps the node in the admin site
    admin = Client()
    admin.force_login(personas.admin)
    personas.admin.is_staff = personas.admin.is_superuser = True
    personas.admin.save()
    response = admin.post(
        "/admin/dashboard/bacalhaunode/add/", {"node_id": NODE_ID, "provider": "not-an-sp"}
    )
    assert response.status_code == 200 and b"storage provider id address" in response.content
    response = admin.post(
        "/admin/dashboard/bacalhaunode/add/", {"node_id": NODE_ID, "provider": "f01234"}
    )
    assert response.status_code == 302
    assert JobResult.objects.get(job=imported).provider == "f01234"
    answer = Client().get(f"{path}?provider=f01234", **auth).json()
    assert answer["verified"] is True and answer["provider"] == "f01234"
    event = AuditEvent.objects.get(action="bacalhau_node.map")
    assert event.after == {"provider": "f01234", "results_changed": 1}
    # a later import from the node is mapped at once
    orchestrator.put(job("j-2", docker_task("a", [])), execution("e-2", "j-2", result_cid=RESULT))
    scan(orchestrator)
    assert our_job("e-2").result.provider == "f01234"


@pytest.mark.django_db(transaction=True)
def test_a_killed_pass_resumes_without_importing_twice(orchestrator, tmp_path: Path) -> None:
    """`manage.py scan_bacalhau --once` killed mid-pass (SIGKILL: no cleanup); the next run
    takes over the dead process's lease at once and imports the rest, nothing twice."""
    from django.db import connection

    for n in range(150):
        orchestrator.put(
            job(f"j-{n}", docker_task("ubuntu", []), modified=1_700_000_000 + n),
            execution(f"e-{n}", f"j-{n}", result_cid=RESULT),
        )
    db = connection.settings_dict
    overrides = {}
    if db["ENGINE"].endswith("postgresql"):
        overrides["DATABASE_URL"] = (
            f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        )
    else:
        overrides["DATABASE_URL"] = f"sqlite:///{tmp_path / 'scan.sqlite3'}"
    env = process_env(tmp_path, **overrides)
    command = [sys.executable, "manage.py", "scan_bacalhau", "--once", "--url", orchestrator.url]
    if "sqlite" in overrides["DATABASE_URL"]:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True
        )
    # answer the first page and 60 jobs' executions, then hang
    orchestrator.hang_after = 61
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    wait_until(lambda: len(orchestrator.requests) > 61, "the pass to reach the hang")
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    orchestrator.hang_after = None
    orchestrator.released.set()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "not_imported=0" in done.stdout
    imported_now = int(done.stdout.split("imported=")[1].split()[0])
    assert 0 < imported_now < 150  # the killed pass had committed some
    check = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from dashboard.models import BacalhauExecution as B, Job;"
            "import json; print(json.dumps([B.objects.count(), Job.objects.count()]))",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(check.stdout.strip().splitlines()[-1]) == [150, 150]
