"""Jobs that ran on Bacalhau networks, imported from their orchestrators (docs/bacalhau.md).

A pass over one orchestrator pages through `GET /api/v1/orchestrator/jobs`, most recently
modified first, down to the orchestrator's watermark (every job modified before it was
read by an earlier pass), then reads again the jobs it saw unfinished. For each job it reads
the executions, and every completed execution with an IPFS-published result becomes an
external job here, in the moderation queue like any other. Each import commits on its own
and is keyed by the orchestrator and the execution id, so a killed pass re-run imports
nothing twice; the watermark moves only when a pass completes. One process at a time holds
an orchestrator's lease (chain_scanner.leases, as the chain scanner does).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from chain_scanner.leases import release_pass, renew_pass, take_pass
from dashboard.addresses import PROVIDER_ADDRESS
from dashboard.audit import record
from dashboard.bacalhau.bodies import BacalhauError, fold, job_cids, member
from dashboard.content import services as content
from dashboard.errors import DomainError
from dashboard.jobs.services import (
    JOB_ID,
    ResultIn,
    annotation_index,
    mark_inputs_blessed,
    record_result,
)
from dashboard.models import (
    BacalhauExecution,
    BacalhauJob,
    BacalhauNode,
    BacalhauOrchestrator,
    Job,
    JobInput,
    JobResult,
)
from executor.cids import InvalidCID, normalize_cid
from executor.spec import SpecError, parse_spec, storable_text

__all__ = [
    "OrchestratorClient",
    "OrchestratorError",
    "PassReport",
    "follow",
    "import_execution",
    "map_node",
    "scan_all",
    "scan_orchestrator",
]

log = logging.getLogger(__name__)

PAGE = 100
FINISHED_JOB_STATES = {"completed", "failed", "stopped"}
# models.ExecutionStateType: an int in JSON up to v1.4 (no MarshalText), a name in others.
EXECUTION_STATES = [
    "undefined",
    "new",
    "askforbid",
    "askforbidaccepted",
    "askforbidrejected",
    "bidaccepted",
    "bidrejected",
    "completed",
    "failed",
    "cancelled",
]


class OrchestratorError(Exception):
    """The orchestrator could not be read: down, refusing, or answering nonsense."""


class OrchestratorClient:
    """The orchestrator's read API, as its Go server answers it (keys are Go field names)."""

    def __init__(self, url: str, *, timeout: float | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url,
            timeout=timeout or settings.BACALHAU_TIMEOUT_S,
            headers={"Accept": "application/json"},
        )

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        try:
            response = self._http.get(path, params=params)
        except httpx.HTTPError as exc:
            raise OrchestratorError(f"{self.url}{path}: {exc}") from None
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise OrchestratorError(f"{self.url}{path}: HTTP {response.status_code}")
        try:
            return fold(response.json())
        except ValueError:
            raise OrchestratorError(f"{self.url}{path}: the answer is not JSON") from None

    def jobs(self, *, labels: str, next_token: str) -> tuple[list[dict[str, Any]], str]:
        """One page of jobs, most recently modified first, and the token of the next."""
        params: dict[str, Any] = {"limit": PAGE, "order_by": "modified_at", "reverse": "true"}
        if labels:
            params["labels"] = labels
        if next_token:  # Bacalhau's token carries the order and the offset: it alone is sent
            params = {"next_token": next_token}
        body = self._get("/api/v1/orchestrator/jobs", params)
        return _items(body, "jobs"), _token(body)

    def job(self, job_id: str) -> dict[str, Any] | None:
        body = self._get(f"/api/v1/orchestrator/jobs/{job_id}")
        if body is None:
            return None
        job = body.get("job") if isinstance(body, dict) else None
        if not isinstance(job, dict):
            raise OrchestratorError(f"{self.url}: job {job_id}: no Job in the answer")
        return job

    def executions(self, job_id: str) -> Iterator[dict[str, Any]]:
        token = ""
        while True:
            params: dict[str, Any] = {"next_token": token} if token else {"limit": PAGE}
            body = self._get(f"/api/v1/orchestrator/jobs/{job_id}/executions", params)
            if body is None:
                return
            yield from _items(body, f"job {job_id}'s executions")
            token = _token(body)
            if not token:
                return


def _items(body: Any, what: str) -> list[dict[str, Any]]:
    items = body.get("items") if isinstance(body, dict) else None
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise OrchestratorError(f"{what}: Items is not a list of objects")
    return items


def _token(body: Any) -> str:
    token = body.get("nexttoken") if isinstance(body, dict) else None
    return token if isinstance(token, str) else ""


@dataclass
class PassReport:
    url: str
    skipped: bool = False
    jobs_read: int = 0
    executions_read: int = 0
    imported: list[str] = field(default_factory=list)  # our job ids
    not_imported: dict[str, str] = field(default_factory=dict)  # execution id -> why

    def summary(self) -> str:
        if self.skipped:
            return f"bacalhau {self.url}: skipped, another pass holds its lease"
        return (
            f"bacalhau {self.url}: jobs_read={self.jobs_read} "
            f"executions_read={self.executions_read} imported={len(self.imported)} "
            f"not_imported={len(self.not_imported)}"
        )


def _state_name(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return EXECUTION_STATES[value] if 0 <= value < len(EXECUTION_STATES) else "undefined"
    return value.lower() if isinstance(value, str) else "undefined"


def _job_state(job: dict[str, Any]) -> str:
    state = job.get("state")
    value = state.get("statetype") if isinstance(state, dict) else state
    return value if isinstance(value, str) else str(value)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def scan_orchestrator(
    client: OrchestratorClient,
    *,
    labels: str | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> PassReport:
    """One pass over one orchestrator; OrchestratorError when it cannot be read (what was
    imported stays, the error is recorded on its row)."""
    labels = settings.BACALHAU_LABELS if labels is None else labels
    orchestrator, _ = BacalhauOrchestrator.objects.get_or_create(url=client.url)
    report = PassReport(url=client.url)
    if not take_pass(BacalhauOrchestrator, orchestrator.pk):
        report.skipped = True
        return report
    BacalhauOrchestrator.objects.filter(pk=orchestrator.pk).update(
        last_pass_started_at=timezone.now()
    )
    try:
        watermark = orchestrator.watermark
        newest = watermark or 0
        seen: set[str] = set()
        token = ""
        while True:
            jobs, token = client.jobs(labels=labels, next_token=token)
            below = False
            for job in jobs:
                modified = _int(job.get("modifytime"))
                if watermark is not None and modified < watermark:
                    below = True  # this and every later job was read by an earlier pass
                    break
                newest = max(newest, modified)
                job_id = job.get("id")
                if isinstance(job_id, str) and job_id not in seen:
                    seen.add(job_id)
                    _read_job(client, orchestrator, job, report)
            renew_pass(BacalhauOrchestrator, orchestrator.pk)
            progress(f"{client.url}: {report.jobs_read} jobs read")
            if below or not token or not jobs:
                break
        # Jobs that were unfinished: their executions may have finished since, even where
        # the job itself did not change.
        open_jobs = BacalhauJob.objects.filter(orchestrator=orchestrator, finished=False)
        for job_id in list(open_jobs.values_list("job_id", flat=True)):
            if job_id in seen:
                continue
            again = client.job(job_id)
            if again is None:  # deleted on the orchestrator: nothing more will come of it
                open_jobs.filter(job_id=job_id).update(finished=True, state="Deleted")
                continue
            _read_job(client, orchestrator, again, report)
            renew_pass(BacalhauOrchestrator, orchestrator.pk)
        BacalhauOrchestrator.objects.filter(pk=orchestrator.pk).update(
            watermark=newest if newest else watermark,
            last_pass_finished_at=timezone.now(),
            last_error="",
        )
        return report
    except OrchestratorError as exc:
        BacalhauOrchestrator.objects.filter(pk=orchestrator.pk).update(
            last_error=str(exc)[:2000], last_error_at=timezone.now()
        )
        raise
    finally:
        release_pass(BacalhauOrchestrator, orchestrator.pk)


def _read_job(
    client: OrchestratorClient,
    orchestrator: BacalhauOrchestrator,
    job: dict[str, Any],
    report: PassReport,
) -> None:
    job_id = job["id"]
    state = _job_state(job)
    report.jobs_read += 1
    for execution in client.executions(job_id):
        report.executions_read += 1
        why = import_execution(orchestrator, job, execution)
        if why is None:
            continue
        if why.startswith("imported "):
            report.imported.append(why.removeprefix("imported "))
        elif not why.startswith("already"):
            report.not_imported[str(execution.get("id"))] = why
    BacalhauJob.objects.update_or_create(
        orchestrator=orchestrator,
        job_id=job_id[:200],
        defaults={
            "state": state[:32],
            "modify_time": _int(job.get("modifytime")),
            "finished": state.lower() in FINISHED_JOB_STATES,
        },
    )
    BacalhauOrchestrator.objects.filter(pk=orchestrator.pk).update(jobs_read=F("jobs_read") + 1)


def _our_id(orchestrator: BacalhauOrchestrator, job_id: str, execution_id: str) -> str:
    """Our job id: the orchestrator (a short hash of its URL), Bacalhau's job id and the
    execution's, or a hash of them all where they do not fit our rule."""
    site = hashlib.sha256(orchestrator.url.encode()).hexdigest()[:8]
    candidate = f"bac-{site}:{job_id}:{execution_id}"
    if JOB_ID.fullmatch(candidate):
        return candidate
    digest = hashlib.sha256(f"{job_id}\0{execution_id}".encode()).hexdigest()[:40]
    return f"bac-{site}:{digest}"


def import_execution(
    orchestrator: BacalhauOrchestrator, job: dict[str, Any], execution: dict[str, Any]
) -> str | None:
    """Import one folded execution of a folded v2 job. Returns None for executions that are
    not (yet) results (running, failed, cancelled), "imported <our id>", "already …", or why
    a completed one cannot be imported."""
    compute = execution.get("computestate")
    state = _state_name(compute.get("statetype") if isinstance(compute, dict) else None)
    if state != "completed":
        return None
    published = member(execution, "publishedresult")
    params = member(published, "params")
    if str(published.get("type", "")).lower() != "ipfs" or not params.get("cid"):
        return "its result is not published to IPFS"
    execution_id = execution.get("id")
    bacalhau_job_id = job.get("id")
    if not isinstance(execution_id, str) or not isinstance(bacalhau_job_id, str):
        return "the execution has no ID"
    if BacalhauExecution.objects.filter(
        orchestrator=orchestrator, execution_id=execution_id
    ).exists():
        return "already imported"
    try:
        spec = spec_from_job(job)
        result_cid = normalize_cid(str(params["cid"]))
    except (BacalhauError, InvalidCID) as exc:
        return f"cannot be read: {exc}"
    if spec is None:
        return "its engine is neither wasm nor docker"
    node_id = str(execution.get("nodeid") or "")[:200]
    our_id = _our_id(orchestrator, bacalhau_job_id, execution_id)
    output = member(execution, "runoutput")
    with transaction.atomic():
        if Job.objects.filter(id=our_id).exists():
            return "already imported"
        record = _create_job(our_id, spec, execution)
        BacalhauExecution.objects.create(
            job=record,
            orchestrator=orchestrator,
            bacalhau_job_id=bacalhau_job_id[:200],
            execution_id=execution_id[:200],
            node_id=node_id,
        )
        mark_inputs_blessed(job_id=our_id)
        record_result(job_id=our_id, result=_result(result_cid, output, execution, node_id))
        BacalhauOrchestrator.objects.filter(pk=orchestrator.pk).update(
            executions_imported=F("executions_imported") + 1
        )
    log.info("bacalhau: imported %s from %s", our_id, orchestrator.url)
    return f"imported {our_id}"


def spec_from_job(job: dict[str, Any]) -> dict[str, Any] | None:
    """Our spec (docs/jobs.md) for a folded v2 job's first task, or None for another engine.
    A spec our executor could not run as it is (an inline module, a mount at /) is kept as
    mapped, for moderators to read."""
    tasks = job.get("tasks") if isinstance(job.get("tasks"), list) else []
    task = tasks[0] if tasks and isinstance(tasks[0], dict) else {}
    engine = member(task, "engine")
    kind = str(engine.get("type", "")).lower()
    params = member(engine, "params")
    cids, _ = job_cids({"tasks": [task]})
    labels = member(job, "labels")
    timeouts = member(task, "timeouts")
    timeout = _int(timeouts.get("executiontimeout"))
    spec: dict[str, Any] = {
        "engine": kind,
        "inputs": [{"cid": c.cid, "path": c.path} for c in cids if c.role == "input"],
        "annotations": sorted(str(k) for k in labels)[:64],
    }
    if 0 < timeout <= 86400:
        spec["limits"] = {"timeout_s": timeout}
    if kind == "wasm":
        module = next((c.cid for c in cids if c.role == "entry module"), None)
        env = params.get("environmentvariables")
        spec["wasm"] = {
            "module": module,
            "entry_point": params.get("entrypoint") or "_start",
            "args": params.get("parameters") or [],
            "env": env if isinstance(env, dict) else {},
        }
    elif kind == "docker":
        env_list = params.get("environmentvariables")
        env_list = env_list if isinstance(env_list, list) else []
        spec["docker"] = {
            "image": params.get("image"),
            "entrypoint": list(params.get("entrypoint") or [])
            + list(params.get("parameters") or []),
            "env": dict(str(e).partition("=")[::2] for e in env_list),
        }
    else:
        return None
    try:
        return parse_spec(spec).to_json()
    except SpecError:
        return spec


def _create_job(our_id: str, spec: dict[str, Any], execution: dict[str, Any]) -> Job:
    created = _int(execution.get("createtime"))
    started = datetime.fromtimestamp(created / 1e9, tz=UTC) if created else None
    annotations = [a for a in spec.get("annotations", []) if isinstance(a, str)]
    record = Job.objects.create(
        id=our_id,
        engine=spec["engine"],
        spec=spec,
        spec_digest=hashlib.sha256(
            json.dumps(spec, sort_keys=True, separators=(",", ":")).encode()
        ).hexdigest(),
        external=True,
        annotations=annotations,
        annotation_index=annotation_index(tuple(annotations)),
        state=Job.State.RUNNING,
        started_at=started or timezone.now(),
    )
    JobInput.objects.bulk_create(
        JobInput(job=record, position=i, cid=item["cid"], path=item["path"])
        for i, item in enumerate(spec.get("inputs", []))
    )
    return record


def _result(
    result_cid: str, output: dict[str, Any], execution: dict[str, Any], node_id: str
) -> ResultIn:
    """The result as far as this dashboard can tell: measured where the result is in its
    store, otherwise only its root CID, the exit code and the node's mapped provider."""
    parts = {"stdout": "", "stderr": "", "outputs": ""}
    size = None
    measured = content.measure(result_cid)
    if measured is not None:
        size = measured.file_bytes
        for name in parts:
            with contextlib.suppress(DomainError):  # a result without that part
                parts[name] = content.resolve(result_cid, name)[0]
    runtime = _int(execution.get("modifytime")) - _int(execution.get("createtime"))
    provider = (
        BacalhauNode.objects.filter(node_id=node_id).values_list("provider", flat=True).first()
    )
    return ResultIn(
        result_cid=result_cid,
        exit_code=_int(output.get("exitcode")),
        stdout_cid=parts["stdout"],
        stderr_cid=parts["stderr"],
        outputs_cid=parts["outputs"],
        size_bytes=size,
        runtime_ms=max(0, runtime // 1_000_000),
        provider=provider or "",
    )


def scan_all(
    urls: list[str] | None = None, *, progress: Callable[[str], None] = lambda line: None
) -> list[PassReport]:
    """A pass over every configured orchestrator; one that fails is logged and does not stop
    the others (its row keeps the error)."""
    reports = []
    for url in settings.BACALHAU_ORCHESTRATORS if urls is None else urls:
        client = OrchestratorClient(url)
        try:
            reports.append(scan_orchestrator(client, progress=progress))
        except OrchestratorError as exc:
            log.warning("bacalhau: %s", exc)
        finally:
            client.close()
    return reports


def follow(stop: threading.Event, *, progress: Callable[[str], None] = log.info) -> None:
    """Scan every orchestrator every BACALHAU_SCAN_INTERVAL_S until `stop` is set."""
    while not stop.is_set():
        for report in scan_all():
            progress(report.summary())
        stop.wait(settings.BACALHAU_SCAN_INTERVAL_S)


def map_node(*, node_id: str, provider: str, actor: str) -> int:
    """Set the storage provider a Bacalhau node's results are stored with; results already
    imported from it that have no award yet get it too. Returns how many changed."""
    if not node_id or len(node_id) > 200 or not storable_text(node_id):
        raise DomainError(
            "invalid_node", "node_id must be 1 to 200 characters", fields={"node_id": node_id}
        )
    if provider and not PROVIDER_ADDRESS.fullmatch(provider):
        raise DomainError(
            "invalid_provider",
            "provider must be a storage provider id address like f01234, or empty",
            fields={"provider": provider},
        )
    with transaction.atomic():
        node = BacalhauNode.objects.select_for_update().filter(node_id=node_id).first()
        before = {"provider": node.provider} if node is not None else None
        BacalhauNode.objects.update_or_create(node_id=node_id, defaults={"provider": provider})
        changed = (
            JobResult.objects.filter(job__bacalhau__node_id=node_id, job__awards__isnull=True)
            .exclude(provider=provider)
            .update(provider=provider)
        )
        record(
            actor=actor,
            action="bacalhau_node.map",
            target=f"bacalhau_node:{node_id[:180]}",
            before=before,
            after={"provider": provider, "results_changed": changed},
        )
    return changed
