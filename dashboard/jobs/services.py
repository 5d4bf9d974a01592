"""Jobs: submission, claiming and leases, input eligibility, and the one result-recording service.

Every write here is a keyword-only function in a transaction; the API views, the Celery task
and the embedded worker call the same functions. State moves queued → running → completed |
failed | cancelled, always with a conditional UPDATE so two workers (or a worker and an
API call) can never both win a transition.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from dashboard.audit import record
from dashboard.content import services as content
from dashboard.eligibility import selectors
from dashboard.errors import DomainError, job_not_found
from dashboard.jobs import provenance
from dashboard.models import MAX_REASON, ApiKey, Job, JobInput, JobResult, Reexecution
from dashboard.novelty import services as novelty
from dashboard.queue import RUN_JOB_TASK, Queue
from dashboard.reexecution import services as reexecution
from executor import outcomes
from executor.run import RunResult
from executor.spec import JobSpec

__all__ = [
    "ResultIn",
    "cancel_job",
    "check_stored_result",
    "check_writer",
    "mark_inputs_blessed",
    "claim_job",
    "claim_next",
    "fail_job",
    "retry_after_host_failure",
    "mark_cancelled",
    "record_result",
    "recover_expired",
    "renew_lease",
    "submit_job",
    "visible_jobs",
]

JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
# Bundled jobs: external ones run on their node, which reports them.
JOBS = Queue(Job, RUN_JOB_TASK, members=Q(external=False), runnable=Q(cancel_requested=False))


# --- submission --------------------------------------------------------------------------------


def _spec_digest(spec: JobSpec) -> str:
    return hashlib.sha256(spec.canonical_json()).hexdigest()


def annotation_index(annotations: tuple[str, ...]) -> str:
    return "|" + "|".join(a.replace("|", "") for a in annotations) + "|" if annotations else ""


@transaction.atomic
def submit_job(
    *, key: ApiKey, spec: JobSpec, external: bool = False, job_id: str | None = None
) -> tuple[Job, bool]:
    """Create a job from a spec; returns (job, created). External registrations (a node's own
    job, under its own `job_id`) are idempotent."""
    if external and key.scope != ApiKey.Scope.NODE:
        raise DomainError(
            "forbidden", "only compute nodes register jobs they run themselves", status=403
        )
    digest = _spec_digest(spec)
    now = timezone.now()
    job = Job(
        id=job_id or uuid.uuid4().hex,
        engine=spec.engine,
        spec=spec.to_json(),
        spec_digest=digest,
        external=external,
        owner=key,
        node=key if external else None,
        annotations=list(spec.annotations),
        annotation_index=annotation_index(spec.annotations),
        state=Job.State.RUNNING if external else Job.State.QUEUED,
        started_at=now if external else None,
    )
    if external:
        existing = Job.objects.filter(id=job.id).first()
        if existing is not None:
            return _same_registration(existing, key, digest), False
        try:
            with transaction.atomic():
                job.save(force_insert=True)
        except IntegrityError:  # registered concurrently: compare with the winner
            return _same_registration(Job.objects.get(id=job.id), key, digest), False
    else:
        job.save(force_insert=True)
    JobInput.objects.bulk_create(
        JobInput(job=job, position=i, cid=m.cid, path=m.path) for i, m in enumerate(spec.inputs)
    )
    record(
        actor=f"{key.scope}:{key.name}",
        action="job.submit",
        target=f"job:{job.id}",
        after={"engine": job.engine, "external": external, "inputs": len(spec.inputs)},
    )
    if external:
        # The node runs it now: its inputs' status now is their status at run time.
        mark_inputs_blessed(job_id=job.id)
    else:
        JOBS.enqueue(job.id)
    return job, True


def _same_registration(existing: Job, key: ApiKey, digest: str) -> Job:
    if existing.owner_id != key.pk:
        raise DomainError(
            "job_id_taken", f"job id {existing.id} belongs to another client", status=409
        )
    if not existing.external or existing.spec_digest != digest:
        raise DomainError(
            "job_conflict",
            f"job {existing.id} was registered with a different spec",
            status=409,
        )
    return existing


# --- claiming, leases and recovery -------------------------------------------------------------


def claim_job(*, job_id: str, worker: str) -> Job | None:
    """Take a queued bundled job for this worker; None when someone else has it (or it's gone)."""
    return Job.objects.get(id=job_id) if JOBS.claim(job_id, worker=worker) else None


def claim_next(*, worker: str) -> Job | None:
    """The oldest queued bundled job, claimed; None when the queue is empty."""
    job_id = JOBS.claim_oldest(worker=worker)
    return Job.objects.get(id=job_id) if job_id is not None else None


def renew_lease(*, job_id: str, worker: str) -> bool:
    """Extend our lease; False when the job is no longer ours to run (recovered or cancelled)."""
    return JOBS.renew(job_id, worker=worker)


def recover_expired(*, now: Any = None) -> dict[str, list[str]]:
    """Running bundled jobs whose worker stopped renewing: back to the queue, or failed."""
    return JOBS.recover_expired(
        lost=lambda attempts: (
            f"the worker running this job was lost {attempts} times (its lease expired)"
        ),
        now=now,
    ).as_json()


# --- inputs ------------------------------------------------------------------------------------


def mark_inputs_blessed(*, job_id: str) -> bool | None:
    """Record each input's FIL+ status now, through the eligibility API's own selectors."""
    inputs = list(JobInput.objects.filter(job_id=job_id).order_by("position"))
    if not inputs:
        Job.objects.filter(id=job_id).update(inputs_blessed=None)
        return None
    answer = selectors.eligibility(cids=[(i.cid, i.cid) for i in inputs])  # stored canonical
    now = timezone.now()
    for item, result in zip(inputs, answer["results"], strict=True):
        item.blessed = result["blessed"]
        item.status = result["status"]
        item.sources = (
            selectors.cid_report(item.cid)["sources"] if result["status"] != "unknown" else []
        )
        item.checked_at = now
        item.as_of_epoch = answer["as_of_epoch"]
    with transaction.atomic():
        JobInput.objects.bulk_update(
            inputs, ["blessed", "status", "sources", "checked_at", "as_of_epoch"]
        )
        Job.objects.filter(id=job_id).update(inputs_blessed=answer["eligible"])
    return answer["eligible"]


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultIn:
    result_cid: str
    exit_code: int
    stdout_cid: str
    stderr_cid: str
    outputs_cid: str  # the three part CIDs are "" where unknown (an imported Bacalhau result)
    size_bytes: int | None  # None: not measured (an imported result not in our store)
    runtime_ms: int
    provider: str
    # Where each input came from (dashboard/jobs/provenance.py, read_inputs' form); None when
    # the report does not say.
    inputs: list[dict[str, Any]] | None = None
    receipt: dict[str, Any] | None = None  # what ran, and how it ended (docs/jobs.md)

    @classmethod
    def reported(cls, values: dict[str, Any], *, default_provider: str) -> ResultIn:
        """A node's validated report; without a provider, the one its key is bound to."""
        provider = values.get("provider", default_provider) or ""
        return cls(**{**values, "provider": provider})

    @classmethod
    def from_run(cls, run: RunResult, *, provider: str) -> ResultIn:
        """What the bundled executor's run produced, as a node would report it: its
        `inputs` are read by the same rules as a node's."""
        values = run.to_json()
        return cls(
            **{**values, "inputs": provenance.read_inputs(values.get("inputs"))}, provider=provider
        )

    def same_as(self, stored: JobResult) -> bool:
        # runtime_ms, inputs and the receipt are left out: a retried delivery of the same
        # result may have re-measured them (inputs hold each fetch's time).
        return all(
            getattr(stored, f.name) == getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("runtime_ms", "inputs", "receipt")
        )


def record_result(
    *, job_id: str, result: ResultIn, key: ApiKey | None = None
) -> tuple[JobResult, bool]:
    """The one place a job's result is written: by a node over HTTP (key) or our worker (None).

    Idempotent: the same result again returns (stored, False); a different one is a 409.
    When the result is in this dashboard's store, its size is measured here and a report
    whose `size_bytes` disagrees is refused: DataCap rests on what was measured.
    """
    measured = content.measure(result.result_cid)
    if (
        measured is not None
        and result.size_bytes is not None
        and measured.file_bytes != result.size_bytes
    ):
        raise DomainError(
            "size_mismatch",
            f"size_bytes is {result.size_bytes}, but {result.result_cid} holds "
            f"{measured.file_bytes} bytes of files",
            status=409,
            fields={"size_bytes": measured.file_bytes},
        )
    if measured is not None:
        checked = _with_parts_of_the_result(result)
        if checked is None:  # gone from the store since it was measured: as if never there
            measured = None
        else:
            result = checked
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(id=job_id).first()
        if job is None:
            raise job_not_found(job_id)
        check_writer(job, key)
        if key is not None and key.provider and result.provider != key.provider:
            raise DomainError(
                "provider_mismatch",
                f"this key's storage provider is {key.provider}, not {result.provider or 'none'}",
                status=403,
                fields={"provider": "must be the key's provider"},
            )
        stored = JobResult.objects.filter(job=job).first()
        if stored is not None:
            if result.same_as(stored):
                return stored, False
            raise DomainError(
                "result_conflict",
                f"job {job_id} already has a different result ({stored.result_cid})",
                status=409,
            )
        if job.state not in (Job.State.QUEUED, Job.State.RUNNING):
            raise DomainError(
                "job_finished", f"job {job_id} is {job.state}; it takes no result", status=409
            )
        if result.inputs is not None:
            spec = JobInput.objects.filter(job=job).order_by("position")
            provenance.check_against_spec(result.inputs, list(spec.values_list("cid", "path")))
        stored = JobResult.objects.create(
            job=job,
            car_bytes=measured.car_bytes if measured is not None else None,
            **asdict(result),
        )
        provenance.record_retrievals(result.inputs)  # once: only a new result gets here
        record(
            actor=f"{key.scope}:{key.name}" if key is not None else "executor",
            action="job.result",
            target=f"job:{job_id}",
            before={"state": job.state},
            after={
                "state": Job.State.COMPLETED.value,
                "result_cid": stored.result_cid,
                "exit_code": stored.exit_code,
                "size_bytes": stored.size_bytes,
                "provider": stored.provider,
            },
        )
        Job.objects.filter(id=job_id).update(
            state=Job.State.COMPLETED,
            finished_at=timezone.now(),
            lease_owner="",
            lease_until=None,
            error="",
            outcome=outcomes.COMPLETED,
        )
        reexecution.after_result(job)
        novelty.queue_measurement(job, stored, in_store=measured is not None)
        return stored, True


def _with_parts_of_the_result(result: ResultIn) -> ResultIn | None:
    """A result's parts are what its directory holds, never what a node says they are: a
    report naming another stdout, stderr, exit code or outputs than the result in the store
    is refused (409 result_parts_mismatch, naming the part), so a true result CID cannot
    carry invented parts past re-execution. Parts a report leaves blank (an imported
    Bacalhau result) are filled in from the result."""
    parts = content.result_parts(result.result_cid)
    if parts is None:  # not (wholly) in the store after all: nothing was checked
        return None
    if parts.missing:
        raise DomainError(
            "result_parts_mismatch",
            f"{result.result_cid} is not a result directory: it has no valid "
            f"{', '.join(parts.missing)} (a result holds stdout, stderr, exitCode and outputs/)",
            status=409,
            fields={name: "missing" for name in parts.missing},
        )
    wrong = content.misreported_parts(parts, result)
    if wrong:
        field, name, reported, held = wrong[0]
        raise DomainError(
            "result_parts_mismatch",
            f"{field} is {reported}, but the {name} of {result.result_cid} is {held}",
            status=409,
            fields={field: held},
        )
    derived = {field: getattr(parts, field) for field, _ in content.PARTS}
    return replace(result, **derived)


def check_stored_result(*, job_id: str) -> bool:
    """A result reported while it was not in the store, now that it is (a matching re-run
    put it there): measure it and read its parts from it, as record_result does for a result
    in the store, so its DataCap suggestion and parts rest on the result itself. Whether it
    was checked now (False: checked before, still not in the store, or not what was
    reported, which the re-execution said as a mismatch)."""
    stored = JobResult.objects.filter(job_id=job_id).first()
    if stored is None or stored.parts_checked:
        return False
    measured = content.measure(stored.result_cid)
    parts = content.result_parts(stored.result_cid) if measured is not None else None
    if measured is None or parts is None or parts.missing:
        return False
    if content.misreported_parts(parts, stored):
        return False
    checked = {
        "car_bytes": measured.car_bytes,
        "size_bytes": measured.file_bytes,  # what was measured, whatever was said
        **{field: getattr(parts, field) for field, _ in content.PARTS},
    }
    with transaction.atomic():
        if not JobResult.objects.filter(pk=stored.pk, car_bytes__isnull=True).update(**checked):
            return False  # checked meanwhile
        record(
            actor="executor",
            action="job.result_checked",
            target=f"job:{job_id}",
            before={"size_bytes": stored.size_bytes, "car_bytes": None},
            after={"size_bytes": measured.file_bytes, "car_bytes": measured.car_bytes},
            reason="the result reached the store: measured, its parts read from it",
        )
    return True


def check_writer(job: Job, key: ApiKey | None) -> None:
    """403 unless `key` is the node that runs `job` (None: our own worker)."""
    if key is None:
        return  # our own worker
    if key.scope != ApiKey.Scope.NODE or job.node_id != key.pk:
        raise DomainError("forbidden", f"job {job.id} is not run by this key", status=403)


def _end(
    *, job_id: str, state: str, reason: str, worker: str | None, outcome: str | None = None
) -> bool:
    return JOBS.end(
        job_id, worker=worker, state=state, error=reason[:MAX_REASON], outcome=outcome or ""
    )


def fail_job(
    *, job_id: str, reason: str, worker: str | None = None, outcome: str | None = None
) -> bool:
    """Mark a running job failed, saying how its run ended (`outcome`, executor/outcomes.py;
    None when it never ran); with a worker, only while that worker holds the lease."""
    return _end(
        job_id=job_id, state=Job.State.FAILED, reason=reason, worker=worker, outcome=outcome
    )


def retry_after_host_failure(*, job_id: str, reason: str, worker: str) -> bool:
    """A host failure is the machine's, not the job's: put the job back in the queue for
    another attempt while it has attempts left (EXECUTOR_MAX_ATTEMPTS, counted as a lost
    worker's are), its error saying what happened. False when it has none left (then fail
    it) or `worker` no longer holds it."""
    attempts = Job.objects.filter(id=job_id).values_list("attempts", flat=True).first()
    if attempts is None or attempts >= settings.EXECUTOR_MAX_ATTEMPTS:
        return False
    note = f"attempt {attempts} ended in a host failure: {reason}"
    return JOBS.give_back(job_id, worker=worker, error=note[:MAX_REASON])


def mark_cancelled(*, job_id: str, reason: str, worker: str) -> bool:
    """A worker stopped a running job because it was cancelled."""
    return _end(job_id=job_id, state=Job.State.CANCELLED, reason=reason, worker=worker)


def cancel_job(*, job_id: str, key: ApiKey) -> Job:
    """Cancel a queued job at once; ask the worker of a running one to stop."""
    job = visible_jobs(key).filter(id=job_id).first()
    if job is None:
        raise job_not_found(job_id)
    # Flag first: a worker claiming the job at this moment then sees the cancel (claims skip
    # flagged jobs, and a running job's worker looks for the flag every second).
    Job.objects.filter(id=job_id, state__in=[Job.State.QUEUED, Job.State.RUNNING]).update(
        cancel_requested=True
    )
    now = timezone.now()
    Job.objects.filter(id=job_id, state=Job.State.QUEUED).update(
        state=Job.State.CANCELLED, finished_at=now, error="cancelled"
    )
    if job.external:  # the node runs it: we can only stop waiting for it
        Job.objects.filter(id=job_id, state=Job.State.RUNNING).update(
            state=Job.State.CANCELLED, finished_at=now, error="cancelled"
        )
    return Job.objects.get(id=job_id)


# --- reading -----------------------------------------------------------------------------------


def visible_jobs(who: ApiKey | None) -> QuerySet[Job]:
    """Jobs a caller may see: a key its own (submitted or run), moderators all (who=None)."""
    jobs = Job.objects.select_related(
        "node", "result", "novelty", "bacalhau", "bacalhau__orchestrator"
    ).prefetch_related(
        Prefetch("inputs", queryset=JobInput.objects.order_by("position")),
        Prefetch("reexecutions", queryset=Reexecution.objects.order_by("-created_at", "-id")),
    )
    if who is None or who.scope == ApiKey.Scope.MODERATOR:
        return jobs
    return jobs.filter(Q(owner=who) | Q(node=who))
