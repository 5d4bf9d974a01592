"""Scanning Bacalhau orchestrators (docs/bacalhau.md): a local orchestrator answering real-shaped
bodies, paging, jobs seen running then completed, failed executions, int and string states,
idempotent passes, the lease, a killed pass, and the node-to-provider mapping; then hostile
orchestrators (tests/fake_bacalhau.py): answers nested deep, slow, endless or oversized, ids
that are paths, values that fit no column, a job that always fails, a node id claimed by
another orchestrator, and more imports than the quota."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
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
    BacalhauJob,
    BacalhauOrchestrator,
    Job,
    JobResult,
    Reexecution,
)
from dashboard.moderation import services as moderation
from dashboard.moderation.risks import job_risks
from dashboard.reexecution.selectors import node_records
from executor.embedded_store import EmbeddedStore
from tests.base import ACCEPT_RISKS, make_personas
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


@pytest.fixture
def no_quota(settings) -> None:
    """For tests of passes that import more than the default hourly quota."""
    settings.BACALHAU_IMPORTS_PER_HOUR = 100_000


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
def test_paging_reads_every_job_and_states_come_as_ints_or_names(
    orchestrator, store, no_quota
) -> None:
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
def test_passes_are_idempotent_and_read_only_what_changed(orchestrator, store, no_quota) -> None:
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
def test_an_orchestrator_that_fails_keeps_what_was_imported(orchestrator, store, no_quota) -> None:
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
        job_id=imported.id,
        user=personas.moderator,
        decision="verify",
        datacap="1 GiB",
        **ACCEPT_RISKS,
    )
    path = f"/api/v1/notary/verifications/{RESULT}"
    auth = {"HTTP_AUTHORIZATION": f"Bearer {personas.notary_key}"}
    answer = Client().get(path, **auth).json()
    assert answer["verified"] is False and answer["reason"]["code"] == "no_holder"
    assert f"{NODE_ID} on {orchestrator.url}" in answer["reason"]["message"]
    # the admin maps the node (of that orchestrator) in the admin site
    admin = Client()
    admin.force_login(personas.admin)
    personas.admin.is_staff = personas.admin.is_superuser = True
    personas.admin.save()
    site = BacalhauOrchestrator.objects.get().pk
    response = admin.post(
        "/admin/dashboard/bacalhaunode/add/",
        {"orchestrator": site, "node_id": NODE_ID, "provider": "not-an-sp"},
    )
    assert response.status_code == 200 and b"storage provider id address" in response.content
    response = admin.post(
        "/admin/dashboard/bacalhaunode/add/",
        {"orchestrator": site, "node_id": NODE_ID, "provider": "f01234"},
    )
    assert response.status_code == 302
    assert JobResult.objects.get(job=imported).provider == "f01234"
    answer = Client().get(f"{path}?provider=f01234", **auth).json()
    assert answer["verified"] is True and answer["provider"] == "f01234"
    event = AuditEvent.objects.get(action="bacalhau_node.map")
    assert event.after == {
        "orchestrator": orchestrator.url,
        "provider": "f01234",
        "results_changed": 1,
    }
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
    env = process_env(tmp_path, BACALHAU_IMPORTS_PER_HOUR="1000", **overrides)
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


# --- hostile orchestrators ---------------------------------------------------------------------


@pytest.fixture
def hostile() -> Iterator[FakeOrchestrator]:
    fake = FakeOrchestrator()
    yield fake
    fake.close()


def honest_jobs(fake: FakeOrchestrator, count: int, *, first: int = 0) -> None:
    for n in range(first, first + count):
        fake.put(
            job(f"j-{n}", docker_task("ubuntu", []), modified=1_700_000_000 + n),
            execution(f"e-{n}", f"j-{n}", result_cid=RESULT),
        )


@pytest.mark.django_db
def test_an_answer_nested_too_deep_fails_its_orchestrator_alone(
    orchestrator, hostile, store, caplog
) -> None:
    """JSON nested 100,000 deep raised RecursionError out of scan_all: the orchestrators
    after it were never scanned."""
    hostile.nest_depth = 100_000
    honest_jobs(orchestrator, 2)
    with caplog.at_level("WARNING", logger="dashboard.bacalhau.scan"):
        reports = bacalhau_scan.scan_all([hostile.url, orchestrator.url])
    assert [r.url for r in reports] == [orchestrator.url]
    assert len(reports[0].imported) == 2
    row = BacalhauOrchestrator.objects.get(url=hostile.url)
    assert "nested over 64 deep" in row.last_error and row.lease_owner == ""
    assert f"bacalhau: {hostile.url}: pass failed: " in caplog.text
    assert "nested over 64 deep" in caplog.text


@pytest.mark.django_db
def test_an_error_nobody_foresaw_fails_its_orchestrator_alone(
    orchestrator, hostile, store, caplog, monkeypatch
) -> None:
    """Whatever one orchestrator's pass raises, not only OrchestratorError, is logged with
    its reason and kept on its row, and the next orchestrator is scanned."""
    honest_jobs(orchestrator, 1)
    honest_jobs(hostile, 1)
    sweep = bacalhau_scan._sweep

    def unforeseen(run, *args):  # type: ignore[no-untyped-def]
        if run.client.url == hostile.url:
            raise ZeroDivisionError("something nobody foresaw")
        return sweep(run, *args)

    monkeypatch.setattr(bacalhau_scan, "_sweep", unforeseen)
    with caplog.at_level("WARNING", logger="dashboard.bacalhau.scan"):
        reports = bacalhau_scan.scan_all([hostile.url, orchestrator.url])
    assert [(r.url, len(r.imported)) for r in reports] == [(orchestrator.url, 1)]
    row = BacalhauOrchestrator.objects.get(url=hostile.url)
    assert row.last_error == "ZeroDivisionError: something nobody foresaw"
    assert row.lease_owner == ""
    assert "pass failed: ZeroDivisionError: something nobody foresaw" in caplog.text


def test_the_scanner_loop_outlives_a_failed_round(settings, monkeypatch, caplog) -> None:
    """An error out of a whole round (the database away, say) is logged; the loop goes on."""
    settings.BACALHAU_SCAN_INTERVAL_S = 0.01
    rounds: list[int] = []
    stop = threading.Event()

    def scan_all(**kwargs):  # type: ignore[no-untyped-def]
        rounds.append(1)
        if len(rounds) == 1:
            raise RuntimeError("the database is away")
        if len(rounds) == 3:
            stop.set()
        return []

    monkeypatch.setattr(bacalhau_scan, "scan_all", scan_all)
    monkeypatch.setattr(bacalhau_scan, "close_old_connections", lambda: None)
    with caplog.at_level("ERROR", logger="dashboard.bacalhau.scan"):
        bacalhau_scan.follow(stop)
    assert len(rounds) == 3
    assert "a scan of the orchestrators failed" in caplog.text
    assert "RuntimeError: the database is away" in caplog.text


@pytest.mark.django_db
def test_hostile_values_fail_their_job_or_execution_alone(hostile, store) -> None:
    """A job id with a newline (httpx.InvalidURL), a CreateTime and a ModifyTime of 2^70,
    an ExitCode of 2^70: each escaped scan_all. Now the id is not requested, the times are
    read as unknown, the exit code refuses its execution, and the honest job is imported."""
    task = docker_task("ubuntu", [])
    hostile.put(job("j-new\nline", task), execution("e-1", "j-new\nline", result_cid=RESULT))
    late = job("j-time", task)
    late["ModifyTime"] = 2**70
    hostile.put(
        late,
        {**execution("e-time", "j-time", result_cid=RESULT), "CreateTime": 2**70},
    )
    exit_code = execution("e-exit", "j-exit", result_cid=RESULT)
    exit_code["RunOutput"]["ExitCode"] = 2**70
    hostile.put(job("j-exit", task), exit_code)
    honest_jobs(hostile, 1)
    [report] = bacalhau_scan.scan_all([hostile.url])
    assert report.not_read == {"'j-new\\nline'": "its ID is not a Bacalhau job id"}
    assert report.not_imported == {
        "e-exit": "cannot be read: RunOutput.ExitCode is not an integer of 64 bits"
    }
    assert sorted(BacalhauExecution.objects.values_list("execution_id", flat=True)) == [
        "e-0",
        "e-time",
    ]
    assert our_job("e-time").result.runtime_ms == 0  # its times are unknown
    assert not any("\n" in path for path in hostile.requests)
    assert BacalhauOrchestrator.objects.get().last_error == ""


@pytest.mark.django_db(transaction=True)
def test_the_scanner_thread_outlives_a_hostile_orchestrator(
    orchestrator, hostile, store, settings
) -> None:
    """`serve`'s Bacalhau thread (follow) died of the first hostile answer; now it scans the
    honest orchestrator after it, pass after pass."""
    hostile.nest_depth = 100_000
    settings.BACALHAU_ORCHESTRATORS = [hostile.url, orchestrator.url]
    settings.BACALHAU_SCAN_INTERVAL_S = 0.05
    honest_jobs(orchestrator, 1)
    stop = threading.Event()
    lines: list[str] = []
    thread = threading.Thread(
        target=bacalhau_scan.follow, args=(stop,), kwargs={"progress": lines.append}
    )
    thread.start()
    try:
        wait_until(lambda: len(hostile.requests) >= 3, "three passes over the hostile one")
        honest_jobs(orchestrator, 1, first=1)  # a job that comes later is imported too
        wait_until(lambda: BacalhauExecution.objects.count() == 2, "the honest imports")
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
    assert any(line.startswith(f"bacalhau {orchestrator.url}: ") for line in lines)


@pytest.mark.django_db
def test_job_ids_that_are_not_bacalhau_ids_are_never_put_in_a_url(hostile, store) -> None:
    """`../../secret?x=1#` as a job id made the scanner ask for /secret on the orchestrator's
    host."""
    task = docker_task("ubuntu", [])
    refused = ["../../secret?x=1#", "j-1/../../../secret", "..", "%2e%2e", "j-1 x", "", "-j"]
    for bad in refused:
        hostile.put(job(bad, task), execution(f"e-{len(bad)}", bad, result_cid=RESULT))
    honest_jobs(hostile, 1)
    report = scan(hostile)
    assert set(report.not_read) == {repr(bad) for bad in refused}
    assert set(report.not_read.values()) == {"its ID is not a Bacalhau job id"}
    assert [e.execution_id for e in BacalhauExecution.objects.all()] == ["e-0"]
    paths = [path.split("?")[0] for path in hostile.requests]
    assert set(paths) == {
        "/api/v1/orchestrator/jobs",
        "/api/v1/orchestrator/jobs/j-0/executions",
    }, hostile.requests


@pytest.mark.django_db
def test_endless_paging_stops_at_the_page_cap(hostile, store, settings) -> None:
    """A list of jobs that never ends (193 pages in 12 s and going): a pass reads at most
    BACALHAU_PAGES_PER_PASS answers, then says it stopped."""
    settings.BACALHAU_PAGES_PER_PASS = 7
    hostile.endless_pages = 1000
    report = scan(hostile)
    assert len(hostile.requests) == 7
    assert report.stopped == "read its 7 pages"
    assert "(stopped: read its 7 pages; the next pass resumes)" in report.summary()
    row = BacalhauOrchestrator.objects.get()
    assert row.last_error == "" and row.lease_owner == "" and row.watermark is None
    hostile.requests.clear()
    scan(hostile)
    assert len(hostile.requests) == 7


@pytest.mark.django_db
def test_a_sweep_cut_short_by_the_page_cap_resumes_where_it_stopped(
    orchestrator, store, settings, no_quota, monkeypatch
) -> None:
    """A backlog deeper than one pass may page: each pass goes on from the page where the
    last stopped (paging from the top again, a pass would spend its pages reaching the
    frontier and never pass it), and no job's executions are read twice."""
    monkeypatch.setattr(bacalhau_scan, "PAGE", 10)
    settings.BACALHAU_PAGES_PER_PASS = 4
    honest_jobs(orchestrator, 45)  # 5 pages of jobs
    passes = 0
    while True:
        passes += 1
        report = scan(orchestrator)
        if not report.stopped:
            break
        assert passes < 30, "the sweep makes no progress"
        assert BacalhauOrchestrator.objects.get().watermark is None  # not done yet
    assert BacalhauExecution.objects.count() == 45
    reads = [p for p in orchestrator.requests if p.endswith("/executions?limit=10")]
    assert len(reads) == len(set(reads)) == 45
    # 45 executions and 5 pages, and most passes read again the page they resume at
    assert passes == 16
    row = BacalhauOrchestrator.objects.get()
    assert row.watermark == (1_700_000_000 + 44) * 10**9 and row.resume_token == ""
    orchestrator.requests.clear()
    assert scan(orchestrator).imported == [] and len(orchestrator.requests) == 1


@pytest.mark.django_db
def test_a_slow_drip_answer_ends_by_the_request_deadline(hostile, store, settings) -> None:
    """One byte every 0.5 s held a pass 22 s under a 2 s timeout (the timeout was per read):
    BACALHAU_TIMEOUT_S is now the whole request's."""
    settings.BACALHAU_TIMEOUT_S = 2
    hostile.drip_s = 0.5
    started = time.monotonic()
    with pytest.raises(OrchestratorError, match="no whole answer in 2 s"):
        scan(hostile)
    assert time.monotonic() - started < 2 + 5
    assert "no whole answer in 2 s" in BacalhauOrchestrator.objects.get().last_error


@pytest.mark.django_db
def test_a_pass_ends_by_its_deadline(hostile, store, settings) -> None:
    """A pass has BACALHAU_PASS_DEADLINE_S, even where each answer is within the request's
    deadline: it stops there and says so."""
    settings.BACALHAU_TIMEOUT_S = 60
    settings.BACALHAU_PASS_DEADLINE_S = 2
    honest_jobs(hostile, 20)
    hostile.drip_s = 0.001  # a page of 20 jobs takes a minute
    started = time.monotonic()
    report = scan(hostile)
    assert time.monotonic() - started < 2 + 5
    assert report.stopped == "reached its 2 s deadline"
    assert BacalhauOrchestrator.objects.get().last_error == ""


@pytest.mark.django_db
@pytest.mark.parametrize("no_length", [False, True], ids=["content-length", "until-close"])
def test_an_answer_over_the_byte_cap_is_refused(hostile, store, settings, no_length) -> None:
    """A 160 MiB answer raised the scanner's memory by 481 MiB: answers are read up to
    BACALHAU_MAX_ANSWER_BYTES, to the byte, declared or not."""
    settings.BACALHAU_MAX_ANSWER_BYTES = 65536
    hostile.no_length = no_length
    hostile.answer_bytes = 65536  # exactly the cap: read
    assert scan(hostile).stopped == ""
    hostile.answer_bytes = 65537
    with pytest.raises(OrchestratorError, match="the answer is over 65536 bytes"):
        scan(hostile)
    hostile.answer_bytes = 50 << 20
    with pytest.raises(OrchestratorError, match="the answer is over 65536 bytes"):
        scan(hostile)


@pytest.mark.django_db
def test_a_job_whose_executions_always_fail_is_retried_then_given_up(hostile, store) -> None:
    """One job whose /executions failed every time held back every job listed after it
    (the watermark never moved): it fails alone, is read again later, then given up."""
    honest_jobs(hostile, 5)
    hostile.failing_jobs = {"j-3"}
    report = scan(hostile)
    assert report.not_read == {
        "j-3": f"{hostile.url}/api/v1/orchestrator/jobs/j-3/executions: HTTP 500"
    }
    assert sorted(BacalhauExecution.objects.values_list("execution_id", flat=True)) == [
        "e-0",
        "e-1",
        "e-2",
        "e-4",
    ]
    row = BacalhauOrchestrator.objects.get()
    assert row.watermark == (1_700_000_000 + 4) * 10**9 and row.last_error == ""
    failed = BacalhauJob.objects.get(job_id="j-3")
    assert failed.attempts == 1 and not failed.finished and "HTTP 500" in failed.error
    assert failed.retry_at is not None
    # not read again before its retry is due
    hostile.requests.clear()
    scan(hostile)
    assert not any("j-3" in path for path in hostile.requests)
    for attempt in range(2, bacalhau_scan.JOB_ATTEMPTS + 1):
        BacalhauJob.objects.filter(job_id="j-3").update(retry_at=timezone.now())
        hostile.requests.clear()
        scan(hostile)
        assert any("/jobs/j-3/executions" in path for path in hostile.requests)
        assert BacalhauJob.objects.get(job_id="j-3").attempts == attempt
    given_up = BacalhauJob.objects.get(job_id="j-3")
    assert given_up.finished and given_up.error.startswith("gave up after 5 attempts: ")
    hostile.requests.clear()
    scan(hostile)
    assert not any("j-3" in path for path in hostile.requests)
    # the orchestrator modifies the job: it is read again, and now it answers
    hostile.failing_jobs = set()
    hostile.put(
        job("j-3", docker_task("ubuntu", []), modified=1_800_000_000),
        execution("e-3", "j-3", result_cid=RESULT),
    )
    assert scan(hostile).imported == [our_job("e-3").id]


@pytest.mark.django_db
def test_a_job_that_fails_then_answers_is_imported(hostile, store) -> None:
    honest_jobs(hostile, 2)
    hostile.failing_jobs = {"j-1"}
    scan(hostile)
    hostile.failing_jobs = set()
    BacalhauJob.objects.filter(job_id="j-1").update(retry_at=timezone.now())
    report = scan(hostile)
    assert report.imported == [our_job("e-1").id] and report.not_read == {}
    recovered = BacalhauJob.objects.get(job_id="j-1")
    assert recovered.finished and recovered.attempts == 0 and recovered.error == ""


@pytest.mark.django_db
def test_jobs_failing_in_a_row_fail_the_pass(hostile, store) -> None:
    """The orchestrator failing, not a job: the pass stops at the third failure in a row."""
    honest_jobs(hostile, 6)
    hostile.failing_jobs = {f"j-{n}" for n in range(6)}
    with pytest.raises(OrchestratorError, match="3 jobs in a row could not be read"):
        scan(hostile)
    assert BacalhauJob.objects.count() == 3
    assert BacalhauOrchestrator.objects.get().watermark is None


@pytest.mark.django_db
def test_a_node_id_reported_by_another_orchestrator_is_another_node(
    orchestrator, hostile, store, settings
) -> None:
    """A second orchestrator reporting under an honest node's id got that node marked caught
    and its provider mapping applied: a node is its id on the orchestrator reporting it."""
    settings.REEXECUTE_POLICY = "on_request"
    task = wasm_task(MODULE, [])
    orchestrator.put(job("j-1", task), execution("e-1", "j-1", result_cid=RESULT))
    hostile.put(job("j-1", task), execution("e-1", "j-1", result_cid=OTHER_RESULT))
    scan(orchestrator)
    honest_site = BacalhauOrchestrator.objects.get(url=orchestrator.url)
    bacalhau_scan.map_node(
        orchestrator=honest_site, node_id=NODE_ID, provider="f01234", actor="user:admin"
    )
    scan(hostile)
    honest, lying = (
        Job.objects.select_related("result").get(bacalhau__orchestrator__url=url)
        for url in (orchestrator.url, hostile.url)
    )
    assert honest.result.provider == "f01234"
    assert lying.result.provider == ""  # the mapping is the honest orchestrator's node's
    # the hostile orchestrator's node is caught lying
    Job.objects.filter(id=lying.id).update(reexecution_verdict=Reexecution.State.MISMATCH)
    orchestrator.put(job("j-2", task), execution("e-2", "j-2", result_cid=RESULT))
    hostile.put(job("j-2", task), execution("e-2", "j-2", result_cid=OTHER_RESULT))
    scan(orchestrator)
    scan(hostile)
    reruns = dict(Reexecution.objects.values_list("job__bacalhau__orchestrator__url", "reason"))
    assert reruns == {hostile.url: "node_mismatched"}
    # and a moderator verifying its next job is told so (the one "node caught" rule)
    assert "node_caught" in job_risks(our_job_on(hostile, "e-2")).open
    assert "node_caught" not in job_risks(our_job_on(orchestrator, "e-2")).open
    assert our_job_on(orchestrator, "e-2").result.provider == "f01234"
    records = [r for r in node_records() if r["kind"] == "bacalhau"]
    assert sorted((r["id"], r["caught"]) for r in records) == sorted(
        [(orchestrator.url, False), (hostile.url, True)]
    )


def our_job_on(fake: FakeOrchestrator, execution_id: str) -> Job:
    return Job.objects.select_related("result").get(
        bacalhau__orchestrator__url=fake.url, bacalhau__execution_id=execution_id
    )


@pytest.mark.django_db
def test_imports_over_the_hourly_quota_wait_for_a_later_pass(orchestrator, store, settings) -> None:
    """One pass imported 150 executions and queued 150 re-executions: an orchestrator's
    imports are held to BACALHAU_IMPORTS_PER_HOUR, and what is over waits, not lost."""
    settings.BACALHAU_IMPORTS_PER_HOUR = 3
    settings.REEXECUTE_POLICY = "all"
    for n in range(5):
        orchestrator.put(
            job(f"j-{n}", wasm_task(MODULE, []), modified=1_700_000_000 + n),
            execution(f"e-{n}", f"j-{n}", result_cid=RESULT),
        )
    first = scan(orchestrator)
    assert len(first.imported) == 3 and first.waiting == 2
    assert "waiting_for_quota=2" in first.summary()
    assert Reexecution.objects.count() == 3
    # the watermark moved: the two left wait as open jobs
    assert BacalhauOrchestrator.objects.get().watermark == (1_700_000_000 + 4) * 10**9
    assert BacalhauJob.objects.filter(finished=False).count() == 2
    second = scan(orchestrator)
    assert second.imported == [] and second.waiting == 2  # within the same hour
    BacalhauExecution.objects.update(imported_at=timezone.now() - timedelta(hours=1, seconds=1))
    third = scan(orchestrator)
    assert len(third.imported) == 2 and third.waiting == 0
    assert BacalhauExecution.objects.count() == 5
    assert BacalhauJob.objects.filter(finished=False).count() == 0


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_each_mapping_for_the_orchestrators_of_its_node() -> None:
    """Mappings made by node id alone (before 0016) stay for every orchestrator whose results
    ran on a node of that id, or for every orchestrator where none did; and back."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = (
        [("dashboard", "0015_bacalhau_hardening")],
        [("dashboard", "0016_bacalhau_nodes_per_orchestrator")],
    )
    executor = MigrationExecutor(connection)
    try:
        executor.migrate(before)
        old = executor.loader.project_state(before).apps
        sites = [
            old.get_model("dashboard", "BacalhauOrchestrator").objects.create(url=f"http://{n}")
            for n in "abc"
        ]
        for n, site in enumerate(sites[:2]):
            ran = old.get_model("dashboard", "Job").objects.create(
                id=f"bac-{n}", engine="docker", spec={}, spec_digest="0" * 64, external=True
            )
            old.get_model("dashboard", "BacalhauExecution").objects.create(
                job=ran, orchestrator=site, bacalhau_job_id="j-1", execution_id="e-1", node_id="n-1"
            )
        nodes = old.get_model("dashboard", "BacalhauNode").objects
        nodes.create(node_id="n-1", provider="f01")
        nodes.create(node_id="n-2", provider="f02")  # no result ran on it yet
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        new = executor.loader.project_state(after).apps
        rows = new.get_model("dashboard", "BacalhauNode").objects
        assert set(rows.values_list("orchestrator__url", "node_id", "provider")) == {
            ("http://a", "n-1", "f01"),
            ("http://b", "n-1", "f01"),
            ("http://a", "n-2", "f02"),
            ("http://b", "n-2", "f02"),
            ("http://c", "n-2", "f02"),
        }
        executor = MigrationExecutor(connection)
        executor.migrate(before)
        back = executor.loader.project_state(before).apps
        rows = back.get_model("dashboard", "BacalhauNode").objects
        assert sorted(rows.values_list("node_id", "provider")) == [("n-1", "f01"), ("n-2", "f02")]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
