"""Jobs that ran on Bacalhau networks, imported from their orchestrators (docs/bacalhau.md).

A pass over one orchestrator pages through `GET /api/v1/orchestrator/jobs`, most recently
modified first, down to the orchestrator's watermark (every job modified before it was
read by an earlier pass), then reads again the jobs it saw unfinished. For each job it reads
the executions, and every completed execution with an IPFS-published result becomes an
external job here, in the moderation queue like any other. Each import commits on its own
and is keyed by the orchestrator and the execution id, so a killed pass re-run imports
nothing twice; the watermark moves only when a sweep down to it completes. One process at a
time holds an orchestrator's lease (chain_scanner.leases, as the chain scanner does).

An orchestrator is a peer that may be hostile, and each one fails alone. Every request has a
deadline and a byte cap, an answer nested too deep is refused, a pass has a deadline and a
page cap (the next pass resumes its sweep where it stopped), ids that are not Bacalhau's
are never put in a URL, a job whose executions cannot be read is retried on later passes
(a few times) instead of holding the others back, nodes are told apart by orchestrator, and
imports are held to an hourly quota (the rest waits for a later pass).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction
from django.db.models import F, Q
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
from executor.spec import MAX_PATH_LENGTH, SpecError, parse_spec, storable_text

__all__ = [
    "OrchestratorClient",
    "OrchestratorError",
    "PassReport",
    "PassStopped",
    "follow",
    "import_execution",
    "map_node",
    "scan_all",
    "scan_orchestrator",
]

log = logging.getLogger(__name__)

PAGE = 100
# A job's executions are a few (its Count, and retries): more pages than this is not a job.
EXECUTION_PAGES = 10
# Bacalhau's bodies are about 10 deep; JSON nested deeper than this is refused unread.
MAX_DEPTH = 64
# A job whose executions cannot be read is read again after 1, 2, 4 and 8 minutes, then
# given up (finished, with its error); jobs failing one after the other, this many in a
# row, are the orchestrator failing: the pass stops there.
JOB_ATTEMPTS = 5
JOB_RETRY = timedelta(minutes=1)
FAILURES_IN_A_ROW = 3
# Bacalhau's job and execution ids: `j-<uuid>`, `e-<uuid>`, a legacy job's bare UUID. Only
# such ids are put in a URL (quoted all the same) or stored.
BACALHAU_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
# A node id is only stored and shown: printable text without spaces.
NODE_ID = re.compile(r"[^\s\x00-\x1f\x7f]{1,200}")
NEXT_TOKEN = re.compile(r"[!-~]{1,500}")
JOB_STATE = re.compile(r"[A-Za-z]{1,32}")
INT64 = 1 << 63
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


class PassStopped(Exception):
    """The pass reached its deadline or its page cap, or was asked to stop: not an error;
    the next pass resumes the sweep where this one stopped."""


class OrchestratorClient:
    """The orchestrator's read API, as its Go server answers it (keys are Go field names).

    Every answer is read against a deadline (BACALHAU_TIMEOUT_S from the request's start,
    and never past the pass's own) and a byte cap (BACALHAU_MAX_ANSWER_BYTES); the client
    counts the answers of the pass it serves against BACALHAU_PAGES_PER_PASS."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float | None = None,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = float(timeout or settings.BACALHAU_TIMEOUT_S)
        self.should_stop = should_stop
        self.pages = 0
        self.deadline = time.monotonic() + settings.BACALHAU_PASS_DEADLINE_S
        self._http = httpx.Client(
            base_url=self.url,
            timeout=self.timeout,
            # Compressed answers are not asked for: the byte cap counts what is sent.
            headers={"Accept": "application/json", "Accept-Encoding": "identity"},
        )

    def close(self) -> None:
        self._http.close()

    def start_pass(self) -> None:
        self.pages = 0
        self.deadline = time.monotonic() + settings.BACALHAU_PASS_DEADLINE_S

    def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        if self.should_stop():
            raise PassStopped("asked to stop")
        if self.pages >= settings.BACALHAU_PAGES_PER_PASS:
            raise PassStopped(f"read its {settings.BACALHAU_PAGES_PER_PASS} pages")
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise PassStopped(f"reached its {settings.BACALHAU_PASS_DEADLINE_S} s deadline")
        self.pages += 1
        budget = min(self.timeout, left)
        try:
            status, data = self._fetch(path, params, budget)
        except OrchestratorError:
            if time.monotonic() >= self.deadline:
                raise PassStopped(
                    f"reached its {settings.BACALHAU_PASS_DEADLINE_S} s deadline"
                ) from None
            raise
        if status == 404:
            return None
        if status != 200:
            raise OrchestratorError(f"{self.url}{path}: HTTP {status}")
        return _decode(data, f"{self.url}{path}")

    def _fetch(self, path: str, params: dict[str, Any] | None, budget: float) -> tuple[int, bytes]:
        """The status and the body's bytes, within `budget` seconds (a read that stalls
        is given as long as there was left when the request started) and the byte cap."""
        cap = settings.BACALHAU_MAX_ANSWER_BYTES
        ends = time.monotonic() + budget
        where = f"{self.url}{path}"
        try:
            with self._http.stream("GET", path, params=params, timeout=budget) as response:
                if response.status_code != 200:
                    return response.status_code, b""
                encoding = response.headers.get("content-encoding", "identity").strip().lower()
                if encoding not in ("", "identity"):
                    raise OrchestratorError(
                        f"{where}: a {encoding[:40]!r} answer was not asked for"
                    )
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > cap:
                    raise OrchestratorError(f"{where}: the answer is over {cap} bytes")
                body = bytearray()
                for chunk in response.iter_raw():
                    body += chunk
                    if len(body) > cap:
                        raise OrchestratorError(f"{where}: the answer is over {cap} bytes")
                    if time.monotonic() > ends:
                        raise OrchestratorError(f"{where}: no whole answer in {budget:.0f} s")
                return response.status_code, bytes(body)
        except httpx.TimeoutException:
            raise OrchestratorError(f"{where}: no whole answer in {budget:.0f} s") from None
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
            raise OrchestratorError(f"{where}: {exc}") from None

    def jobs(self, *, labels: str, next_token: str) -> tuple[list[dict[str, Any]], str]:
        """One page of jobs, most recently modified first, and the token of the next."""
        params: dict[str, Any] = {"limit": PAGE, "order_by": "modified_at", "reverse": "true"}
        if labels:
            params["labels"] = labels
        if next_token:  # Bacalhau's token carries the order and the offset: it alone is sent
            params = {"next_token": next_token}
        body = self._get("/api/v1/orchestrator/jobs", params)
        return _items(body, "jobs"), _token(body, "jobs")

    def job(self, job_id: str) -> dict[str, Any] | None:
        body = self._get(f"/api/v1/orchestrator/jobs/{_segment(job_id)}")
        if body is None:
            return None
        job = body.get("job") if isinstance(body, dict) else None
        if not isinstance(job, dict) or job.get("id") != job_id:
            raise OrchestratorError(f"{self.url}: job {job_id}: no such Job in the answer")
        return job

    def executions(self, job_id: str) -> Iterator[dict[str, Any]]:
        """Every execution of a job, in at most EXECUTION_PAGES pages."""
        token = ""
        path = f"/api/v1/orchestrator/jobs/{_segment(job_id)}/executions"
        for _ in range(EXECUTION_PAGES):
            params: dict[str, Any] = {"next_token": token} if token else {"limit": PAGE}
            body = self._get(path, params)
            if body is None:
                return
            what = f"job {job_id}'s executions"
            yield from _items(body, what)
            token = _token(body, what)
            if not token:
                return
        raise OrchestratorError(
            f"{self.url}: job {job_id}: over {EXECUTION_PAGES} pages of executions"
        )


def _segment(job_id: str) -> str:
    """A job id as one path segment: only Bacalhau's ids come here, quoted all the same."""
    if not BACALHAU_ID.fullmatch(job_id):
        raise OrchestratorError(f"{job_id[:100]!r} is not a Bacalhau job id")
    return quote(job_id, safe="")


def _decode(data: bytes, where: str) -> Any:
    """The answer's JSON, folded; refused when it is not JSON or nested over MAX_DEPTH."""
    try:
        value = json.loads(data)
    except RecursionError:
        raise OrchestratorError(f"{where}: the answer is nested over {MAX_DEPTH} deep") from None
    except ValueError:
        raise OrchestratorError(f"{where}: the answer is not JSON") from None
    if _deeper_than(value, MAX_DEPTH):
        raise OrchestratorError(f"{where}: the answer is nested over {MAX_DEPTH} deep")
    return fold(value)


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and objects nest in `value` more than `limit` deep (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _items(body: Any, what: str) -> list[dict[str, Any]]:
    items = body.get("items") if isinstance(body, dict) else None
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise OrchestratorError(f"{what}: Items is not a list of objects")
    return items


def _token(body: Any, what: str) -> str:
    token = body.get("nexttoken") if isinstance(body, dict) else None
    if token is None or token == "":
        return ""
    if not isinstance(token, str) or not NEXT_TOKEN.fullmatch(token):
        raise OrchestratorError(f"{what}: NextToken is not a paging token")
    return token


@dataclass
class PassReport:
    url: str
    skipped: bool = False
    jobs_read: int = 0
    executions_read: int = 0
    imported: list[str] = field(default_factory=list)  # our job ids
    not_imported: dict[str, str] = field(default_factory=dict)  # execution id -> why
    not_read: dict[str, str] = field(default_factory=dict)  # job id -> why
    waiting: int = 0  # executions over the import quota, for a later pass
    stopped: str = ""  # why the pass stopped before the end of its sweep, if it did

    def summary(self) -> str:
        if self.skipped:
            return f"bacalhau {self.url}: skipped, another pass holds its lease"
        line = (
            f"bacalhau {self.url}: jobs_read={self.jobs_read} "
            f"executions_read={self.executions_read} imported={len(self.imported)} "
            f"not_imported={len(self.not_imported)}"
        )
        if self.not_read:
            line += f" jobs_not_read={len(self.not_read)}"
        if self.waiting:
            line += f" waiting_for_quota={self.waiting}"
        if self.stopped:
            line += f" (stopped: {self.stopped}; the next pass resumes)"
        return line


@dataclass
class _Pass:
    """What one pass carries from job to job."""

    client: OrchestratorClient
    orchestrator: BacalhauOrchestrator
    report: PassReport
    quota: ImportQuota
    started: datetime
    failures: int = 0  # jobs in a row that could not be read


def _state_name(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return EXECUTION_STATES[value] if 0 <= value < len(EXECUTION_STATES) else "undefined"
    return value.lower() if isinstance(value, str) else "undefined"


def _job_state(job: dict[str, Any]) -> str:
    state = job.get("state")
    value = state.get("statetype") if isinstance(state, dict) else state
    return value if isinstance(value, str) and JOB_STATE.fullmatch(value) else "Undefined"


def _int(value: Any) -> int:
    """A JSON integer that fits 64 bits; 0 for anything else."""
    if isinstance(value, int) and not isinstance(value, bool) and -INT64 <= value < INT64:
        return value
    return 0


def _time(value: Any) -> int:
    """A Bacalhau time (unix ns): 0 for anything that is not one."""
    value = _int(value)
    return value if value > 0 else 0


def scan_orchestrator(
    client: OrchestratorClient,
    *,
    labels: str | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> PassReport:
    """One pass over one orchestrator. A pass cut short by its deadline or page cap says so
    in its report (`stopped`); OrchestratorError when the orchestrator cannot be read, and
    any other error, is recorded on its row (`last_error`) and raised: what was imported
    stays."""
    labels = settings.BACALHAU_LABELS if labels is None else labels
    orchestrator, _ = BacalhauOrchestrator.objects.get_or_create(url=client.url)
    report = PassReport(url=client.url)
    if not take_pass(BacalhauOrchestrator, orchestrator.pk):
        report.skipped = True
        return report
    client.start_pass()
    rows = BacalhauOrchestrator.objects.filter(pk=orchestrator.pk)
    rows.update(last_pass_started_at=timezone.now())
    hour_ago = timezone.now() - timedelta(hours=1)
    recent = BacalhauExecution.objects.filter(
        orchestrator=orchestrator, imported_at__gte=hour_ago
    ).count()
    quota = ImportQuota(settings.BACALHAU_IMPORTS_PER_HOUR - recent)
    run = _Pass(client, orchestrator, report, quota, started=timezone.now())
    try:
        try:
            _sweep(run, labels, progress)
            _read_open_jobs(run)
        except PassStopped as exc:
            report.stopped = str(exc)
            log.warning("bacalhau: %s: pass stopped: %s", client.url, exc)
        rows.update(last_pass_finished_at=timezone.now(), last_error="")
        return report
    except Exception as exc:
        with contextlib.suppress(DatabaseError):
            rows.update(last_error=_why(exc)[:2000], last_error_at=timezone.now())
        raise
    finally:
        release_pass(BacalhauOrchestrator, orchestrator.pk)


def _why(exc: BaseException) -> str:
    """What went wrong, as text any database stores (an orchestrator's bytes may be in it)."""
    text = str(exc) if isinstance(exc, OrchestratorError) else f"{type(exc).__name__}: {exc}"
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def _sweep(run: _Pass, labels: str, progress: Callable[[str], None]) -> None:
    """Page down to the watermark, from where an earlier pass stopped, if one did; when the
    sweep is done, the newest ModifyTime it saw is the watermark."""
    orchestrator, client = run.orchestrator, run.client
    rows = BacalhauOrchestrator.objects.filter(pk=orchestrator.pk)
    watermark = orchestrator.watermark
    newest = max(orchestrator.sweep_newest or 0, watermark or 0)
    token = orchestrator.resume_token
    while True:
        page = token
        try:
            jobs, token = client.jobs(labels=labels, next_token=page)
            below = False
            for job in jobs:
                modified = _time(job.get("modifytime"))
                if watermark is not None and modified < watermark:
                    below = True  # this and every later job was read by an earlier pass
                    break
                newest = max(newest, modified)
                _sweep_job(run, job, modified)
        except Exception:
            # The next pass reads this page again first (what was read of it whole is not
            # read twice), and keeps what this sweep saw.
            with contextlib.suppress(DatabaseError):
                rows.update(resume_token=page, sweep_newest=newest or None)
            raise
        renew_pass(BacalhauOrchestrator, orchestrator.pk)
        progress(f"{client.url}: {run.report.jobs_read} jobs read")
        if below or not token or not jobs:
            break
    rows.update(watermark=newest or watermark, resume_token="", sweep_newest=None)


def _sweep_job(run: _Pass, job: dict[str, Any], modified: int) -> None:
    job_id = job.get("id")
    if not isinstance(job_id, str) or not BACALHAU_ID.fullmatch(job_id):
        run.report.not_read[repr(job_id)[:100]] = "its ID is not a Bacalhau job id"
        return
    known = BacalhauJob.objects.filter(orchestrator=run.orchestrator, job_id=job_id).first()
    if known is not None and known.read_at is not None and known.read_at >= run.started:
        return  # read by this pass already (listed twice: the list moved under it)
    if known is not None and known.modify_time == modified:
        if known.finished:
            return  # read whole, and not changed since
        if known.retry_at is not None and known.retry_at > timezone.now():
            return  # failed lately: read again when its retry is due
    _read_job(run, job)


def _read_open_jobs(run: _Pass) -> None:
    """Jobs that were unfinished, or left to read again, and not read yet by this pass:
    their executions may have finished since, even where the job itself did not change.
    Those read longest ago first, so that a pass cut short by its page cap leaves the
    others for the next."""
    now = timezone.now()
    open_jobs = BacalhauJob.objects.filter(orchestrator=run.orchestrator, finished=False)
    due = (
        open_jobs.filter(Q(retry_at__isnull=True) | Q(retry_at__lte=now))
        .filter(Q(read_at__isnull=True) | Q(read_at__lt=run.started))
        .order_by(F("read_at").asc(nulls_first=True), "pk")
        .values_list("job_id", flat=True)
    )
    left = settings.BACALHAU_PAGES_PER_PASS - run.client.pages
    for job_id in list(due[: max(0, left)]):
        try:
            again = run.client.job(job_id)
        except OrchestratorError as exc:
            _job_failed(run, job_id, None, exc)
            continue
        if again is None:  # deleted on the orchestrator: nothing more will come of it
            open_jobs.filter(job_id=job_id).update(finished=True, state="Deleted", read_at=now)
            continue
        _read_job(run, again)


def _read_job(run: _Pass, job: dict[str, Any]) -> None:
    """Read a job's executions and import the completed ones. A job that cannot be read
    (its executions fail, or its data cannot be stored) fails alone: recorded, and read again
    on a later pass; FAILURES_IN_A_ROW jobs failing one after the other stop the pass."""
    job_id, report = job["id"], run.report
    state = _job_state(job)
    report.jobs_read += 1
    waiting = 0
    try:
        for execution in run.client.executions(job_id):
            report.executions_read += 1
            why = import_execution(run.orchestrator, job, execution, quota=run.quota)
            if why is None:
                continue
            if why.startswith("imported "):
                report.imported.append(why.removeprefix("imported "))
            elif why == OVER_QUOTA:
                waiting += 1
            elif not why.startswith("already"):
                report.not_imported[str(execution.get("id"))[:200]] = why
    except PassStopped:
        raise
    except Exception as exc:  # this job's answers, or its data: it fails alone
        _job_failed(run, job_id, job, exc)
        return
    run.failures = 0
    report.waiting += waiting
    BacalhauJob.objects.update_or_create(
        orchestrator=run.orchestrator,
        job_id=job_id,
        defaults={
            "state": state,
            "modify_time": _time(job.get("modifytime")),
            # A job with executions over the quota stays open: a later pass imports them.
            "finished": state.lower() in FINISHED_JOB_STATES and not waiting,
            "read_at": timezone.now(),
            "attempts": 0,
            "retry_at": None,
            "error": "",
        },
    )
    BacalhauOrchestrator.objects.filter(pk=run.orchestrator.pk).update(jobs_read=F("jobs_read") + 1)
    renew_pass(BacalhauOrchestrator, run.orchestrator.pk)


def _job_failed(run: _Pass, job_id: str, job: dict[str, Any] | None, exc: Exception) -> None:
    why = _why(exc)
    log.warning("bacalhau: %s: job %s not read: %s", run.orchestrator.url, job_id, why)
    row = BacalhauJob.objects.filter(orchestrator=run.orchestrator, job_id=job_id).first()
    modified = (
        row is not None and job is not None and row.modify_time != _time(job.get("modifytime"))
    )
    # A job the orchestrator modified since it was given up has its attempts again.
    attempts = 1 if row is None or modified else row.attempts + 1
    given_up = attempts >= JOB_ATTEMPTS
    now = timezone.now()
    defaults: dict[str, Any] = {
        "finished": given_up,
        "read_at": now,
        "attempts": attempts,
        "retry_at": None if given_up else now + JOB_RETRY * 2 ** (attempts - 1),
        "error": (f"gave up after {attempts} attempts: {why}" if given_up else why)[:2000],
    }
    if job is not None:
        defaults.update(state=_job_state(job), modify_time=_time(job.get("modifytime")))
    elif row is None:
        defaults.update(state="Undefined", modify_time=0)
    BacalhauJob.objects.update_or_create(
        orchestrator=run.orchestrator, job_id=job_id, defaults=defaults
    )
    run.report.not_read[job_id] = defaults["error"]
    renew_pass(BacalhauOrchestrator, run.orchestrator.pk)
    run.failures += 1
    if run.failures >= FAILURES_IN_A_ROW:
        raise OrchestratorError(
            f"{run.orchestrator.url}: {run.failures} jobs in a row could not be read; "
            f"the last: {why}"
        )


def _our_id(orchestrator: BacalhauOrchestrator, job_id: str, execution_id: str) -> str:
    """Our job id: the orchestrator (a short hash of its URL), Bacalhau's job id and the
    execution's, or a hash of them all where they do not fit our rule."""
    site = hashlib.sha256(orchestrator.url.encode()).hexdigest()[:8]
    candidate = f"bac-{site}:{job_id}:{execution_id}"
    if JOB_ID.fullmatch(candidate):
        return candidate
    digest = hashlib.sha256(f"{job_id}\0{execution_id}".encode()).hexdigest()[:40]
    return f"bac-{site}:{digest}"


OVER_QUOTA = "over the import quota: a later pass imports it"


class ImportQuota:
    """Imports one pass may still make (BACALHAU_IMPORTS_PER_HOUR less the last hour's)."""

    def __init__(self, left: int) -> None:
        self.left = max(0, left)

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


def import_execution(
    orchestrator: BacalhauOrchestrator,
    job: dict[str, Any],
    execution: dict[str, Any],
    *,
    quota: ImportQuota | None = None,
) -> str | None:
    """Import one folded execution of a folded v2 job. Returns None for executions that are
    not (yet) results (running, failed, cancelled), "imported <our id>", "already …",
    OVER_QUOTA when `quota` has none left, or why a completed one cannot be imported."""
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
    if not BACALHAU_ID.fullmatch(execution_id) or not BACALHAU_ID.fullmatch(bacalhau_job_id):
        return "its ID is not a Bacalhau execution id"
    node_id = execution.get("nodeid") or ""
    if not isinstance(node_id, str) or (node_id and not NODE_ID.fullmatch(node_id)):
        return "its NodeID is not a node id"
    if BacalhauExecution.objects.filter(
        orchestrator=orchestrator, execution_id=execution_id
    ).exists():
        return "already imported"
    output = member(execution, "runoutput")
    exit_code = output.get("exitcode", 0)
    if exit_code is not None and _int(exit_code) != exit_code:
        return "cannot be read: RunOutput.ExitCode is not an integer of 64 bits"
    try:
        spec = spec_from_job(job)
        result_cid = normalize_cid(str(params["cid"]))
    except (BacalhauError, InvalidCID) as exc:
        return f"cannot be read: {exc}"
    if spec is None:
        return "its engine is neither wasm nor docker"
    if not _storable(spec) or any(
        len(str(item.get("path", ""))) > MAX_PATH_LENGTH for item in spec.get("inputs", [])
    ):
        return "cannot be read: its job holds text a database cannot store"
    if quota is not None and not quota.take():
        return OVER_QUOTA
    our_id = _our_id(orchestrator, bacalhau_job_id, execution_id)
    with transaction.atomic():
        if Job.objects.filter(id=our_id).exists():
            return "already imported"
        record = _create_job(our_id, spec, execution)
        BacalhauExecution.objects.create(
            job=record,
            orchestrator=orchestrator,
            bacalhau_job_id=bacalhau_job_id,
            execution_id=execution_id,
            node_id=node_id,
            imported_at=timezone.now(),
        )
        mark_inputs_blessed(job_id=our_id)
        record_result(
            job_id=our_id, result=_result(orchestrator, result_cid, output, execution, node_id)
        )
        BacalhauOrchestrator.objects.filter(pk=orchestrator.pk).update(
            executions_imported=F("executions_imported") + 1
        )
    log.info("bacalhau: imported %s from %s", our_id, orchestrator.url)
    return f"imported {our_id}"


def _storable(value: Any) -> bool:
    """Whether every string in a JSON value (keys too) is text a database can store."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not storable_text(item):
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def spec_from_job(job: dict[str, Any]) -> dict[str, Any] | None:
    """Our spec (docs/jobs.md) for a folded v2 job's first task, or None for another engine.
    A spec our executor could not run as it is (an inline module, a mount at /) is kept as
    mapped, for moderators to read."""
    tasks = _list(job.get("tasks"))
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
        spec["docker"] = {
            "image": params.get("image"),
            "entrypoint": _list(params.get("entrypoint")) + _list(params.get("parameters")),
            "env": dict(
                str(e).partition("=")[::2] for e in _list(params.get("environmentvariables"))
            ),
        }
    else:
        return None
    try:
        return parse_spec(spec).to_json()
    except SpecError:
        return spec


def _create_job(our_id: str, spec: dict[str, Any], execution: dict[str, Any]) -> Job:
    created = _time(execution.get("createtime"))
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
    orchestrator: BacalhauOrchestrator,
    result_cid: str,
    output: dict[str, Any],
    execution: dict[str, Any],
    node_id: str,
) -> ResultIn:
    """The result as far as this dashboard can tell: measured where the result is in its
    store (record_result then reads its parts from it), otherwise only its root CID, the
    exit code and the node's mapped provider (the node of this orchestrator: another's node
    of the same id is another node)."""
    measured = content.measure(result_cid)
    size = measured.file_bytes if measured is not None else None
    created, modified = _time(execution.get("createtime")), _time(execution.get("modifytime"))
    runtime = modified - created if created and modified else 0
    provider = (
        BacalhauNode.objects.filter(orchestrator=orchestrator, node_id=node_id)
        .values_list("provider", flat=True)
        .first()
    )
    return ResultIn(
        result_cid=result_cid,
        exit_code=_int(output.get("exitcode")),
        stdout_cid="",
        stderr_cid="",
        outputs_cid="",
        size_bytes=size,
        runtime_ms=max(0, runtime // 1_000_000),
        provider=provider or "",
    )


def scan_all(
    urls: list[str] | None = None,
    *,
    progress: Callable[[str], None] = lambda line: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> list[PassReport]:
    """A pass over every configured orchestrator. Each fails alone, whatever its error:
    logged with its reason (its row keeps it), and the others are scanned all the same."""
    reports = []
    for url in settings.BACALHAU_ORCHESTRATORS if urls is None else urls:
        if should_stop():
            break
        client = None
        try:
            client = OrchestratorClient(url, should_stop=should_stop)
            reports.append(scan_orchestrator(client, progress=progress))
        except Exception as exc:
            log.warning("bacalhau: %s: pass failed: %s", url, _why(exc))
        finally:
            if client is not None:
                client.close()
    return reports


def follow(stop: threading.Event, *, progress: Callable[[str], None] = log.info) -> None:
    """Scan every orchestrator every BACALHAU_SCAN_INTERVAL_S until `stop` is set. Nothing
    an orchestrator sends (nor a database that is away for a while) ends the loop."""
    while not stop.is_set():
        try:
            for report in scan_all(progress=progress, should_stop=stop.is_set):
                progress(report.summary())
        except Exception:
            log.exception("bacalhau: a scan of the orchestrators failed")
        finally:
            close_old_connections()
        stop.wait(settings.BACALHAU_SCAN_INTERVAL_S)


def map_node(*, orchestrator: BacalhauOrchestrator, node_id: str, provider: str, actor: str) -> int:
    """Set the storage provider the results of a Bacalhau node of `orchestrator` are stored
    with; results already imported from it that have no award yet get it too. Returns how
    many changed. A node of the same id on another orchestrator is another node."""
    if not node_id or not NODE_ID.fullmatch(node_id) or not storable_text(node_id):
        raise DomainError(
            "invalid_node",
            "node_id must be 1 to 200 characters, without spaces",
            fields={"node_id": node_id},
        )
    if provider and not PROVIDER_ADDRESS.fullmatch(provider):
        raise DomainError(
            "invalid_provider",
            "provider must be a storage provider id address like f01234, or empty",
            fields={"provider": provider},
        )
    with transaction.atomic():
        nodes = BacalhauNode.objects.select_for_update().filter(
            orchestrator=orchestrator, node_id=node_id
        )
        node = nodes.first()
        before = {"provider": node.provider} if node is not None else None
        BacalhauNode.objects.update_or_create(
            orchestrator=orchestrator, node_id=node_id, defaults={"provider": provider}
        )
        changed = (
            JobResult.objects.filter(
                job__bacalhau__orchestrator=orchestrator,
                job__bacalhau__node_id=node_id,
                job__award_shares__isnull=True,
            )
            .exclude(provider=provider)
            .update(provider=provider)
        )
        record(
            actor=actor,
            action="bacalhau_node.map",
            target=f"bacalhau_node:{node_id[:180]}",
            before=before,
            after={
                "orchestrator": orchestrator.url,
                "provider": provider,
                "results_changed": changed,
            },
        )
    return changed
