"""Re-execution: run a finished job's spec again on the bundled executor and compare result CIDs.

A WASM job is deterministic (virtual clocks, seeded randomness, no network), so running its
spec again anywhere gives the same result CID; a node that reported another CID reported a
result its job does not give. Docker jobs can be re-run and compared too, but their engine
is not deterministic, so their mismatch is information, not evidence.

Which jobs: every completed external WASM job under REEXECUTE_POLICY=all, a sample under
`sample`, and any job a moderator asks for. A node caught once (its latest re-execution of
some WASM job mismatched) has every later WASM job re-executed whatever the policy.

A re-execution is queued, claimed under a lease and finished like a bundled job, on a queue
of its own (Celery queue `reexecute`; the embedded worker takes one only when no submitted
job is queued, and stops it for one that comes: `preempted`). Finishing is a conditional
UPDATE on the worker's lease: a worker that lost its lease (killed, or too slow) can never
record an outcome, so no match is recorded that this run did not compute. A run's whole
time is bounded too (`deadline`: its time limit plus REEXECUTE_GRACE_S), however often its
lease is renewed. The job row keeps the verdict of its latest re-execution that compared a
result (`Job.reexecution_verdict`: match or mismatch) for the queue, the moderation rule and
the node records; asking again does not clear it until the new run has an outcome.

What a re-execution may cost is bounded before it is queued: a spec over the re-execution
limits, or a job whose node key, Bacalhau legacy client or orchestrator passed its hourly
quota, gets a `not_verifiable` run that never runs. A mismatch found after the job was
verified flags it (`Job.mismatch_review`) for the notary and the moderators.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from dashboard.access import DECIDERS, require_role
from dashboard.audit import record
from dashboard.content.services import misreported_parts, result_parts, storage
from dashboard.errors import DomainError, job_not_found
from dashboard.models import (
    MAX_REASON,
    ApiKey,
    BacalhauExecution,
    BacalhauSubmission,
    Job,
    JobResult,
    Reexecution,
)
from dashboard.queue import REEXECUTE_TASK, Queue
from dashboard.reexecution.diff import result_diff
from dashboard.reexecution.selectors import deterministic, node_caught
from executor import outcomes
from executor.run import JobFailed, RunResult
from executor.spec import SpecError, parse_spec

__all__ = [
    "after_result",
    "claim",
    "claim_for_node",
    "claim_next",
    "fail",
    "finish",
    "held",
    "over_limits",
    "preempted",
    "recover_expired",
    "renew_for_node",
    "renew_lease",
    "report_failure",
    "report_result",
    "request",
]

log = logging.getLogger(__name__)

OPEN = (Reexecution.State.QUEUED, Reexecution.State.RUNNING)
COMPARED = (Reexecution.State.MATCH, Reexecution.State.MISMATCH)
RERUNS = Queue(Reexecution, REEXECUTE_TASK)
QUOTA_WINDOW = timedelta(hours=1)


# --- queueing ------------------------------------------------------------------------------------


def _sampled(job_id: str) -> bool:
    # By the job's id, not a random draw: the same job is always in or out of the sample.
    draw = int.from_bytes(hashlib.sha256(job_id.encode()).digest()[:8], "big") % 100
    return draw < settings.REEXECUTE_SAMPLE_PERCENT


def _automatic_reason(job: Job) -> str | None:
    if not job.external or not deterministic(job):
        return None
    if node_caught(job):
        return "node_mismatched"
    if settings.REEXECUTE_POLICY == "all":
        return "policy"
    if settings.REEXECUTE_POLICY == "sample" and _sampled(job.id):
        return "sampled"
    return None


def after_result(job: Job) -> Reexecution | None:
    """Called by jobs.record_result, in its transaction, when a job completes: queue a
    re-execution when the policy (or the node's record) asks for one."""
    reason = _automatic_reason(job)
    if reason is None:
        return None
    return _queue(job, reason=reason, actor="policy")


def request(*, job_id: str, user: Any) -> tuple[Reexecution, bool]:
    """A moderator asks for a re-execution of a completed job: (run, created). While one is
    queued or running, that one is the answer (asking twice queues one run). After a
    verifier node's mismatch the new run is the bundled executor's only: a verifier's word is
    never checked by the same verifier (nor by another one)."""
    require_role(user, *DECIDERS)
    actor = f"user:{user.get_username()}"
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(id=job_id).first()
        if job is None:
            raise job_not_found(job_id)
        if job.state != Job.State.COMPLETED:
            raise DomainError(
                "job_not_finished",
                f"job {job_id} is {job.state}: only a completed job's result can be checked",
                status=409,
            )
        running = job.reexecutions.filter(state__in=OPEN).order_by("-created_at").first()
        if running is not None:
            return running, False
        last = job.reexecutions.filter(state__in=COMPARED).order_by("-finished_at", "-id").first()
        bundled_only = (
            last is not None and last.state == Reexecution.State.MISMATCH and last.verifier_id
        )
        run = _queue(job, reason="requested", actor=actor, bundled_only=bool(bundled_only))
        record(
            actor=actor,
            action="job.reexecute",
            target=f"job:{job_id}",
            after={
                "reexecution": run.pk,
                "reason": run.reason,
                "state": run.state,
                "bundled_only": run.bundled_only,
            },
        )
        return run, True


def _queue(job: Job, *, reason: str, actor: str, bundled_only: bool = False) -> Reexecution:
    """Queue a run of `job`, or record at once why it is not verifiable (over the
    re-execution limits, or over a quota)."""
    with transaction.atomic():
        refusal = over_limits(job.spec)
        kind = Reexecution.Refusal.LIMITS
        if refusal is None:
            refusal, kind = _over_quota(job), Reexecution.Refusal.QUOTA
        if refusal is not None:
            run = Reexecution.objects.create(
                job=job,
                reason=reason,
                requested_by=actor,
                state=Reexecution.State.NOT_VERIFIABLE,
                refusal=kind,
                error=refusal[:MAX_REASON],
                finished_at=timezone.now(),
            )
            _audit_outcome(run.pk, job.id, run.state, refusal)
            return run
        run = Reexecution.objects.create(
            job=job, reason=reason, requested_by=actor, bundled_only=bundled_only
        )
        RERUNS.enqueue(run.pk)
        return run


# --- limits and quotas ------------------------------------------------------------------------


def over_limits(spec: dict[str, Any]) -> str | None:
    """Why a re-execution of `spec` would ask for more than REEXECUTE_MAX_TIMEOUT_S,
    REEXECUTE_MAX_MEMORY_BYTES or REEXECUTE_MAX_FUEL; None when it is within them. The spec's
    own limits are what a re-run must use (they are part of what seeds it), so a spec over
    them is not run at all rather than run under other limits."""
    try:
        parsed = parse_spec(spec)
    except SpecError:
        return None  # stored specs were validated; the worker fails an old bad one with why
    limits, over = parsed.limits, []
    if limits.timeout_s > settings.REEXECUTE_MAX_TIMEOUT_S:
        over.append(
            f"limits.timeout_s {limits.timeout_s:g} > REEXECUTE_MAX_TIMEOUT_S "
            f"{settings.REEXECUTE_MAX_TIMEOUT_S}"
        )
    if limits.memory_bytes > settings.REEXECUTE_MAX_MEMORY_BYTES:
        over.append(
            f"limits.memory_bytes {limits.memory_bytes} > REEXECUTE_MAX_MEMORY_BYTES "
            f"{settings.REEXECUTE_MAX_MEMORY_BYTES}"
        )
    cap = settings.REEXECUTE_MAX_FUEL
    if cap and parsed.engine == "wasm" and (limits.fuel is None or limits.fuel > cap):
        asked = "none (unlimited)" if limits.fuel is None else str(limits.fuel)
        over.append(f"limits.fuel {asked} > REEXECUTE_MAX_FUEL {cap}")
    return "over re-execution limits: " + "; ".join(over) if over else None


def _time_limit(job: Job) -> timedelta:
    """How long a run of `job` may take in all: its time limit (at most
    REEXECUTE_MAX_TIMEOUT_S) for each engine it runs on, plus REEXECUTE_GRACE_S to publish
    and report."""
    try:
        spec = parse_spec(job.spec)
    except SpecError:
        return timedelta(seconds=settings.REEXECUTE_GRACE_S)
    # a WASM job runs once on each of REEXECUTE_ENGINES, each with its own time limit
    runs = len(settings.REEXECUTE_ENGINES) if spec.engine == "wasm" else 1
    timeout = min(float(spec.limits.timeout_s), settings.REEXECUTE_MAX_TIMEOUT_S)
    return timedelta(seconds=timeout * runs + settings.REEXECUTE_GRACE_S)


def _over_quota(job: Job) -> str | None:
    """Why one more re-execution of `job` passes an hourly quota: of the node key that
    reported it, the Bacalhau legacy client that submitted it, or the Bacalhau orchestrator
    it was imported from; None when it does not. Every run queued in the window counts,
    requested or not; runs that were not verifiable do not."""
    recent = Reexecution.objects.filter(created_at__gte=timezone.now() - QUOTA_WINDOW).exclude(
        state=Reexecution.State.NOT_VERIFIABLE
    )
    scopes: list[tuple[str, QuerySet[Reexecution], int, str]] = []
    if job.node_id is not None:
        # One node's reports are counted one at a time (its key row locked until commit).
        name = ApiKey.objects.select_for_update().values_list("name", flat=True).get(pk=job.node_id)
        scopes.append(
            (
                f"the node key {name}",
                recent.filter(job__node_id=job.node_id),
                settings.REEXECUTE_QUOTA_PER_NODE,
                "REEXECUTE_QUOTA_PER_NODE",
            )
        )
    client = (
        BacalhauSubmission.objects.filter(job_id=job.id)
        .values_list("client_id", "client__client_id")
        .first()
    )
    if client is not None:
        scopes.append(
            (
                f"the Bacalhau client {client[1][:12]}…",
                recent.filter(job__bacalhau_submission__client_id=client[0]),
                settings.REEXECUTE_QUOTA_PER_CLIENT,
                "REEXECUTE_QUOTA_PER_CLIENT",
            )
        )
    origin = (
        BacalhauExecution.objects.filter(job_id=job.id)
        .values_list("orchestrator_id", "orchestrator__url")
        .first()
    )
    if origin is not None:
        scopes.append(
            (
                f"the Bacalhau orchestrator {origin[1]}",
                recent.filter(job__bacalhau__orchestrator_id=origin[0]),
                settings.REEXECUTE_QUOTA_PER_ORCHESTRATOR,
                "REEXECUTE_QUOTA_PER_ORCHESTRATOR",
            )
        )
    for who, runs, quota, setting in scopes:
        if quota and runs.count() >= quota:
            return (
                f"quota: {who} had {quota} re-executions queued in the last hour ({setting}); "
                "ask again once the hour has passed"
            )
    return None


def _record_verdict(job_id: str) -> None:
    """Keep on the job row the outcome of its latest run that compared a result
    (Job.reexecution_verdict), for the queue, the moderation rule and the node records."""
    compared = Reexecution.objects.filter(
        job_id=OuterRef("pk"), state__in=[Reexecution.State.MATCH, Reexecution.State.MISMATCH]
    ).order_by("-finished_at", "-id")
    Job.objects.filter(id=job_id).update(
        reexecution_verdict=Coalesce(Subquery(compared.values("state")[:1]), Value(""))
    )


# --- claiming, leases and recovery ------------------------------------------------------------


def _claimed(run_id: int, worker: str) -> Reexecution:
    """The run this worker just claimed, with its deadline set: its start plus its time
    limit and REEXECUTE_GRACE_S, after which its lease is taken back whatever was renewed."""
    run = Reexecution.objects.select_related("job", "job__result").get(pk=run_id)
    assert run.started_at is not None
    run.deadline = run.started_at + _time_limit(run.job)
    ours = Reexecution.objects.filter(pk=run_id, state=Reexecution.State.RUNNING)
    ours.filter(lease_owner=worker).update(deadline=run.deadline)
    return run


def claim(*, run_id: int, worker: str) -> Reexecution | None:
    """Take a queued re-execution for this worker; None when someone else has it."""
    return _claimed(run_id, worker) if RERUNS.claim(run_id, worker=worker) else None


def claim_next(*, worker: str, preemptible: bool | None = None) -> Reexecution | None:
    """The oldest queued re-execution, claimed; None when there is none. `preemptible`: only
    one the embedded worker may still stop for a waiting job (True: stopped fewer than
    REEXECUTE_MAX_PREEMPTIONS times), or only one it may not (False)."""
    most = settings.REEXECUTE_MAX_PREEMPTIONS
    among = {
        None: None,
        True: Q(preemptions__lt=most),
        False: Q(preemptions__gte=most),
    }[preemptible]
    run_id = RERUNS.claim_oldest(worker=worker, among=among)
    return _claimed(run_id, worker) if run_id is not None else None


def renew_lease(*, run_id: int, worker: str) -> bool:
    """Extend our lease; False when the run is no longer ours (it was recovered) or its
    deadline has passed."""
    in_time = Q(deadline__isnull=True) | Q(deadline__gt=timezone.now())
    return RERUNS.renew(run_id, worker=worker, among=in_time)


def preempted(run: Reexecution, *, worker: str) -> bool:
    """The embedded worker stopped this run to let a submitted job run: back to the queue,
    its attempt given back (it was neither lost nor failed), one more preemption counted."""
    gave_back = RERUNS.give_back(
        run.pk,
        worker=worker,
        attempts=F("attempts") - 1,
        preemptions=F("preemptions") + 1,
        started_at=None,
        deadline=None,
    )
    if gave_back:
        log.info("re-execution %s stopped for a waiting job; back in the queue", run.pk)
    return gave_back


def recover_expired(*, now: datetime | None = None) -> dict[str, list[int]]:
    """Running re-executions whose worker stopped renewing, or that ran past their deadline
    however often they were renewed: back to the queue, or failed after
    EXECUTOR_MAX_ATTEMPTS runs (retryable by asking again). A verifier node that held a run
    past its deadline has it taken back for the bundled executor, and its record shows it."""
    now = now or timezone.now()

    def audit_failed(run_id: int, error: str) -> None:
        job_id = Reexecution.objects.values_list("job_id", flat=True).get(pk=run_id)
        _audit_outcome(run_id, job_id, Reexecution.State.FAILED, error)

    def audit_overrun(run_id: int) -> None:
        run = Reexecution.objects.select_related("overrun_by").get(pk=run_id)
        assert run.overrun_by is not None
        record(
            actor=f"node:{run.overrun_by.name}",
            action="reexecution.overran",
            target=f"job:{run.job_id}",
            after={"reexecution": run_id, "state": run.state, "verifier": run.overrun_by.prefix},
            reason="the verifier held the run past its time limit plus REEXECUTE_GRACE_S",
        )

    overran = RERUNS.recover_expired(
        lost=lambda attempts: (
            f"the workers running it were lost or overran {attempts} times (a verifier held "
            "it past its time limit plus REEXECUTE_GRACE_S)"
        ),
        on_failed=audit_failed,
        on_taken=audit_overrun,
        now=now,
        overdue=Q(deadline__lt=now, verifier__isnull=False),
        verifier=None,
        overrun_by_id=F("verifier_id"),
        bundled_only=True,
    )
    lost = RERUNS.recover_expired(
        lost=lambda attempts: (
            f"the worker running it was lost {attempts} times (its lease expired, or it ran "
            "past its time limit)"
        ),
        on_failed=audit_failed,
        now=now,
        overdue=Q(lease_until__lt=now) | Q(deadline__lt=now),
        verifier=None,
    )
    return {
        "requeued": overran.requeued + lost.requeued,
        "failed": overran.failed + lost.failed,
    }


# --- outcomes ------------------------------------------------------------------------------------


def _end(run: Reexecution, worker: str, **fields: Any) -> bool:
    """Write an outcome only while `worker` still holds the run's lease."""
    with transaction.atomic():
        won = RERUNS.end(run.pk, worker=worker, **fields)
        if not won:
            log.warning("re-execution %s was recovered elsewhere; its outcome is dropped", run.pk)
            return False
        _record_verdict(run.job_id)
        _audit_outcome(run.pk, run.job_id, fields["state"], fields.get("error", ""))
        if fields["state"] == Reexecution.State.MISMATCH and deterministic(run.job):
            _flag_if_verified(run)
    return True


def _flag_if_verified(run: Reexecution) -> None:
    """A mismatch found after the job was verified: the notary answers rerun_mismatch (and
    takes no award) until a moderator confirms the verification or it is revoked; the job
    is back in the moderators' queue."""
    flagged = Job.objects.filter(
        id=run.job_id, moderation_state=Job.Moderation.VERIFIED, mismatch_review=False
    ).update(mismatch_review=True)
    if flagged:
        record(
            actor="executor",
            action="job.mismatch_review",
            target=f"job:{run.job_id}",
            before={"mismatch_review": False},
            after={"mismatch_review": True, "reexecution": run.pk},
            reason="a re-execution gave another result after the job was verified",
        )


def _audit_outcome(run_id: int, job_id: str, state: str, error: str) -> None:
    record(
        actor="executor",
        action=f"reexecution.{state}",
        target=f"job:{job_id}",
        after={"reexecution": run_id, "state": state},
        reason=error[:MAX_REASON],
    )


# REEXECUTE_ENGINES ran the job on two engines of ours and they disagreed: a defect of this
# dashboard's executor, never held against the job or its node.
ENGINE_DIVERGENCE = "engine_divergence"


def engine_divergence(runs: list[tuple[str, RunResult | JobFailed]]) -> str | None:
    """Why our engines disagree on one job, or None when they agree. `runs` is each engine's
    result or failure, in REEXECUTE_ENGINES order, the first a result (the first engine's
    ending is the run's). A later engine agrees when it gives the same result CID and fuel;
    one that ends without a result in a way that says nothing (not reproducible: time, stack,
    host; or an input fetched again failed) leaves the decision to the others; one that ends
    reproducibly without a result (a trap, the fuel) disagrees."""
    first_engine, first = runs[0]
    assert isinstance(first, RunResult)
    diverged = []
    for engine, other in runs[1:]:
        if isinstance(other, RunResult):
            if (other.result_cid, other.fuel_used) != (first.result_cid, first.fuel_used):
                diverged.append(f"{engine}: {other.result_cid} ({other.fuel_used} fuel)")
        elif other.outcome is not None and other.outcome not in outcomes.NOT_REPRODUCIBLE:
            diverged.append(f"{engine}: {other.outcome}: {other}")
        else:
            log.warning("a re-execution on %s gave no result: %s", engine, other)
    if not diverged:
        return None
    return f"{first_engine}: {first.result_cid} ({first.fuel_used} fuel); " + "; ".join(diverged)


def failure_state(outcome: str | None) -> str:
    """What a re-run that gave no result is: not_verifiable when it ended in a way another
    honest machine may not reproduce, or our own engines disagreed; failed otherwise."""
    if outcome in outcomes.NOT_REPRODUCIBLE or outcome == ENGINE_DIVERGENCE:
        return Reexecution.State.NOT_VERIFIABLE
    return Reexecution.State.FAILED


def fail(
    run: Reexecution,
    *,
    worker: str,
    reason: str,
    ran_by: str | None = None,
    outcome: str | None = None,
) -> bool:
    """The run did not give a result (an input gone, a limit): readable, and retryable by
    asking again. `outcome` is how the run ended (executor/outcomes.py): one another honest
    machine may not reproduce (wall time, the engine's stack, the host) makes the run
    `not_verifiable`, never a failure to hold against the job or its node."""
    state = failure_state(outcome)
    if outcome == ENGINE_DIVERGENCE:
        reason = f"{outcome}: {reason} (our own engines disagree: a defect of this executor)"
    elif state == Reexecution.State.NOT_VERIFIABLE:
        reason = f"{outcome}: {reason} (not reproducible: this re-run cannot check the result)"
    elif outcome is not None:
        reason = f"{outcome}: {reason}"
    return _end(
        run,
        worker,
        state=state,
        error=reason[:MAX_REASON],
        ran_by=ran_by or worker,
    )


def finish(
    run: Reexecution,
    *,
    worker: str,
    result_cid: str,
    exit_code: int,
    runtime_ms: int,
    ran_by: str | None = None,
    receipt: dict[str, Any] | None = None,
) -> str | None:
    """Compare the re-run's result CID with the one reported; the outcome, or None when the
    lease was lost (nothing recorded)."""
    reported = JobResult.objects.filter(job_id=run.job_id).first()
    if reported is None:  # results are never deleted; this guards a hand-edited database
        fail(run, worker=worker, reason="the job has no reported result to compare with")
        return None
    same = reported.result_cid == result_cid
    diff = None if same else result_diff(storage(), reported.result_cid, result_cid)
    if same and not reported.parts_checked:
        # The node's parts were taken on its word (the result was not in the store when it
        # reported). The same root is not a match if the report named other parts.
        diff = _misreported_parts(reported) or None
        same = diff is None
    state = Reexecution.State.MATCH if same else Reexecution.State.MISMATCH
    won = _end(
        run,
        worker,
        state=state,
        result_cid=result_cid,
        exit_code=exit_code,
        runtime_ms=runtime_ms,
        diff=diff,
        receipt=receipt,
        error="",
        ran_by=ran_by or worker,
    )
    return state if won else None


def _misreported_parts(reported: JobResult) -> list[dict[str, str | None]]:
    """The parts a result's report named otherwise than the result holds, as diff entries
    (the exit code by value, under `exit_code`); none when the result is not in the store."""
    parts = result_parts(reported.result_cid)
    if parts is None:
        return []
    return [
        {
            "path": "exit_code" if field == "exit_code" else name,
            "reported": str(said),
            "rerun": None if held in ("", None) else str(held),
        }
        for field, name, said, held in misreported_parts(parts, reported)
    ]


# --- verifier nodes -------------------------------------------------------------------------


def _verifier(key: ApiKey) -> str:
    """The lease owner for a verifier node's runs; 403 for a key that does not verify."""
    if key.scope != ApiKey.Scope.NODE or not key.verifier:
        raise DomainError(
            "forbidden",
            "this key does not offer to re-execute jobs (a node key made with "
            "`create_api_key --verifier`)",
            status=403,
        )
    return f"node:{key.prefix}"


def claim_for_node(*, key: ApiKey) -> Reexecution | None:
    """A verifier node takes the oldest queued re-execution of a job it did not run itself
    (a node never checks its own results), that is not kept for the bundled executor, and
    that it did not find mismatched before; None when there is none."""
    found_mismatched = Reexecution.objects.filter(
        verifier=key, state=Reexecution.State.MISMATCH
    ).values("job_id")
    among = ~Q(job__node=key) & Q(bundled_only=False) & ~Q(job_id__in=found_mismatched)
    worker = _verifier(key)
    run_id = RERUNS.claim_oldest(worker=worker, among=among, verifier=key)
    return _claimed(run_id, worker) if run_id is not None else None


def _lease_lost(run: Reexecution) -> DomainError:
    return DomainError(
        "lease_lost",
        f"re-execution {run.pk} is not this node's to run any more (it is {run.state}): its "
        "lease lapsed, or it was never claimed with this key",
        status=409,
    )


def held(*, run_id: int, key: ApiKey) -> tuple[Reexecution, str]:
    """The run and this node's lease owner name, while the node holds the run's lease: 403
    for a key that offers no re-runs, 404 for no such run, 409 lease_lost otherwise."""
    worker = _verifier(key)
    # A number from a URL: one no row can have (past 64 bits) is not looked up.
    run = (
        Reexecution.objects.select_related("job").filter(pk=run_id).first()
        if 0 < run_id < 2**63
        else None
    )
    if run is None:
        raise DomainError("not_found", f"no re-execution {run_id}", status=404)
    if run.state != Reexecution.State.RUNNING or run.lease_owner != worker:
        raise _lease_lost(run)
    if run.deadline is not None and run.deadline <= timezone.now():
        raise _lease_lost(run)  # past its deadline: the next recovery pass takes it back
    return run, worker


def renew_for_node(*, run_id: int, key: ApiKey) -> Reexecution:
    """A verifier node keeps its lease (every third of EXECUTOR_LEASE_S, as our workers do)."""
    run, worker = held(run_id=run_id, key=key)
    if not renew_lease(run_id=run.pk, worker=worker):
        run.refresh_from_db()
        raise _lease_lost(run)
    run.refresh_from_db()
    return run


def report_result(
    *,
    run_id: int,
    key: ApiKey,
    result_cid: str,
    exit_code: int,
    runtime_ms: int,
    receipt: dict[str, Any] | None = None,
) -> Reexecution:
    """A verifier node's result: the CID its run gave, which the dashboard compares with the
    reported one. Written only under the node's lease (409 lease_lost otherwise)."""
    run, worker = held(run_id=run_id, key=key)
    outcome = finish(
        run,
        worker=worker,
        result_cid=result_cid,
        exit_code=exit_code,
        runtime_ms=runtime_ms,
        ran_by=f"node:{key.name}",
        receipt=receipt,
    )
    return _reported(run, won=outcome is not None)


def report_failure(
    *, run_id: int, key: ApiKey, error: str, outcome: str | None = None
) -> Reexecution:
    """A verifier node's run gave no result (an input it cannot fetch, a limit): `failed`,
    retryable, or `not_verifiable` when it ended in a way no machine reproduces (`fail`).
    Written only under the node's lease (409 lease_lost otherwise)."""
    run, worker = held(run_id=run_id, key=key)
    won = fail(run, worker=worker, reason=error, ran_by=f"node:{key.name}", outcome=outcome)
    return _reported(run, won=won)


def _reported(run: Reexecution, *, won: bool) -> Reexecution:
    run.refresh_from_db()
    if not won:  # another worker took the run between the lease check and the write
        raise _lease_lost(run)
    return run
