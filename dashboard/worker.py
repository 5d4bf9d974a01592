"""The bundled executor inside the dashboard: it runs queued jobs and re-executions, and
measures how new each recorded result is (dashboard/novelty/).

A job: claim it, record its inputs' FIL+ status, run it, record its result. A re-execution:
claim it, run the job's spec again with the original's limits, let re-execution compare the
result. The Celery tasks (`dashboard/tasks.py`) and the embedded worker threads of
`manage.py serve` call the same functions; results go through `jobs.record_result`, the same
service `POST /jobs/{id}/results` uses. While work runs, a thread renews its lease so that
`recover_expired` can tell a live worker from a dead one.

The embedded worker never keeps a submitted job waiting behind a re-execution for more than
the second its lease thread takes to look: it stops the re-execution (which goes back to the
queue, no attempt counted) and runs the job. A re-execution stopped
REEXECUTE_MAX_PREEMPTIONS times is not stopped again, so it cannot be starved: it runs to its
end on a thread of its own beside the jobs, one at a time per process. (With Celery,
re-executions have a queue and workers of their own.)
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections

from dashboard.content.services import storage
from dashboard.eligibility.locations import locate
from dashboard.jobs import services as jobs
from dashboard.models import Job, Novelty, Reexecution
from dashboard.novelty import services as novelty
from dashboard.queue import LeaseKeeper, wait_for_work
from dashboard.reexecution import services as reexecution
from executor import outcomes
from executor.retrieval import RetrievalSettings
from executor.run import JobCancelled, JobFailed, RunResult, module_cache, run_job
from executor.spec import JobSpec, SpecError, parse_spec
from executor.wasm import TARGET

__all__ = [
    "PREEMPTED",
    "execute_job",
    "execute_reexecution",
    "measure_novelty",
    "run_once",
    "run_worker",
    "worker_name",
]

log = logging.getLogger(__name__)

PREEMPTED = "preempted"  # what execute_reexecution says of a run stopped for a waiting job

# Held while a re-execution that may no longer be stopped runs beside the jobs (one at a time
# in this process).
_beside = threading.Lock()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


def _cancel_requested(job_id: str) -> bool:
    return Job.objects.filter(id=job_id, cancel_requested=True).exists()


def _retrieval() -> RetrievalSettings:
    """Where an input missing from the store is fetched from, after the providers `locate`
    names: the settings' router and gateways; fetched pieces are indexed beside the store."""
    return RetrievalSettings(
        ipni_url=settings.IPNI_URL,
        gateways=tuple(settings.IPFS_GATEWAYS),
        timeout_s=settings.EXECUTOR_RETRIEVAL_TIMEOUT_S,
        piece_dir=Path(settings.DATA_DIR) / "pieces",
    )


def execute_job(job: Job, *, worker: str) -> str:
    """Run a job this worker has claimed; returns its final state."""
    keeper = LeaseKeeper(
        job.id,
        renew=lambda: jobs.renew_lease(job_id=job.id, worker=worker),
        cancelled=lambda: _cancel_requested(job.id),
    )
    keeper.start()
    try:
        try:
            spec = parse_spec(job.spec)
        except SpecError as exc:  # stored specs were validated; this guards old rows
            jobs.fail_job(job_id=job.id, reason=f"invalid spec: {exc}", worker=worker)
            return Job.State.FAILED
        jobs.mark_inputs_blessed(job_id=job.id)
        try:
            result = _run(spec, keeper)
        except JobCancelled as exc:
            if keeper.lost:
                return Job.State.QUEUED  # recovered by another worker: theirs to finish
            jobs.mark_cancelled(job_id=job.id, reason=f"cancelled: {exc}", worker=worker)
            return Job.State.CANCELLED
        except JobFailed as exc:
            if exc.outcome == outcomes.HOST_FAILURE and jobs.retry_after_host_failure(
                job_id=job.id, reason=str(exc), worker=worker
            ):
                return Job.State.QUEUED
            jobs.fail_job(job_id=job.id, reason=str(exc), worker=worker, outcome=exc.outcome)
            return Job.State.FAILED
        except Exception as exc:  # a bug or an outage must not leave the job running
            log.exception("job %s failed in the executor", job.id)
            jobs.fail_job(
                job_id=job.id, reason=f"executor error: {type(exc).__name__}: {exc}", worker=worker
            )
            return Job.State.FAILED
    finally:
        keeper.stop()
    if _cancel_requested(job.id):  # cancelled in the moment after it finished
        jobs.mark_cancelled(job_id=job.id, reason="cancelled", worker=worker)
        return Job.State.CANCELLED
    body = jobs.ResultIn.from_run(result, provider=settings.EXECUTOR_PROVIDER or "")
    try:
        jobs.record_result(job_id=job.id, result=body)
    except Exception:
        log.exception("recording the result of job %s failed", job.id)
        raise
    return Job.State.COMPLETED


def _run(spec: JobSpec, keeper: LeaseKeeper, engine: str = TARGET) -> RunResult:
    """A job (or a re-execution) on this worker's executor, on `engine`, under its lease."""
    return run_job(
        spec,
        storage(),
        cache=module_cache(Path(settings.DATA_DIR) / "wasm-cache"),
        cancel=keeper.stop_run,
        input_limit=settings.EXECUTOR_MAX_INPUT_BYTES,
        locate=locate,
        retrieval=_retrieval(),
        target=engine,
    )


def execute_reexecution(
    run: Reexecution, *, worker: str, preempt: Callable[[], bool] | None = None
) -> str:
    """Run a claimed re-execution with the original's spec and limits; returns its outcome
    ("running" when the lease was lost and nothing was recorded). With `preempt`, asked
    every second while it runs: when it says so, the run stops and goes back to the queue
    (PREEMPTED)."""
    refusal = reexecution.over_limits(run.job.spec)  # the limits may have changed since
    if refusal is not None:
        reexecution.fail(run, worker=worker, reason=refusal)
        return Reexecution.State.FAILED
    keeper = LeaseKeeper(
        f"reexecution-{run.pk}",
        renew=lambda: reexecution.renew_lease(run_id=run.pk, worker=worker),
        cancelled=preempt or (lambda: False),
    )
    keeper.start()
    runs: list[tuple[str, RunResult | JobFailed]] = []  # each engine's ending, in order
    try:
        try:
            spec = parse_spec(run.job.spec)
            engines = settings.REEXECUTE_ENGINES if spec.engine == "wasm" else [TARGET]
            for engine in engines:
                try:
                    runs.append((engine, _run(spec, keeper, engine)))
                except JobFailed as exc:
                    if not runs or isinstance(exc, JobCancelled):
                        raise  # the first engine's ending is the run's
                    runs.append((engine, exc))
        except JobCancelled:
            if keeper.lost or preempt is None:  # the lease was lost: whoever recovered it runs it
                return Reexecution.State.RUNNING
            if reexecution.preempted(run, worker=worker):
                return PREEMPTED
            return Reexecution.State.RUNNING
        except (JobFailed, SpecError) as exc:
            outcome = exc.outcome if isinstance(exc, JobFailed) else None
            reexecution.fail(run, worker=worker, reason=str(exc), outcome=outcome)
            return reexecution.failure_state(outcome)
        except Exception as exc:  # a bug or an outage must not leave the run running
            log.exception("re-execution %s failed in the executor", run.pk)
            reexecution.fail(
                run, worker=worker, reason=f"executor error: {type(exc).__name__}: {exc}"
            )
            return Reexecution.State.FAILED
    finally:
        keeper.stop()
    divergence = reexecution.engine_divergence(runs)
    if divergence is not None:
        log.error("re-execution %s: our engines disagree", run.pk)
        reexecution.fail(
            run, worker=worker, reason=divergence, outcome=reexecution.ENGINE_DIVERGENCE
        )
        return reexecution.failure_state(reexecution.ENGINE_DIVERGENCE)
    result = runs[0][1]
    assert isinstance(result, RunResult)
    gave = [engine for engine, ended in runs if isinstance(ended, RunResult)]
    receipt = result.receipt
    if spec.engine == "wasm" and receipt is not None:
        receipt = {**receipt, "target": ", ".join(gave)}
    outcome = reexecution.finish(
        run,
        worker=worker,
        result_cid=result.result_cid,
        exit_code=result.exit_code,
        runtime_ms=result.runtime_ms,
        receipt=receipt,
    )
    if outcome == Reexecution.State.MATCH:  # it put the reported result in the store
        jobs.check_stored_result(job_id=run.job_id)
    if outcome is not None:
        novelty.remeasure(run.job_id)
    return outcome or Reexecution.State.RUNNING


def measure_novelty(row: Novelty, *, worker: str) -> str:
    """Measure a claimed result's novelty, its lease renewed meanwhile; its final state."""
    keeper = LeaseKeeper(
        f"novelty-{row.pk}",
        renew=lambda: novelty.renew_lease(job_id=row.pk, worker=worker),
        cancelled=lambda: False,
    )
    keeper.start()
    try:
        return novelty.run_measurement(row, worker=worker)
    finally:
        keeper.stop()


def _job_waiting() -> bool:
    return jobs.JOBS.waiting()


def _run_beside(run: Reexecution, worker: str) -> None:
    """A re-execution that may no longer be stopped, run to its end on a thread of its own."""
    try:
        outcome = execute_reexecution(run, worker=worker)
        log.info("re-execution %s of job %s: %s (beside the jobs)", run.pk, run.job_id, outcome)
    except Exception:
        log.exception("re-execution %s failed beside the jobs", run.pk)
    finally:
        close_old_connections()
        _beside.release()


def run_once(worker: str) -> str | None:
    """One pass of the embedded executor: recover lost work; start a re-execution that was
    stopped REEXECUTE_MAX_PREEMPTIONS times on a thread of its own (when none runs there);
    then run a queued job, or when none is queued measure a result's novelty, or run
    another re-execution, stopped when a job comes. What it ran or started, as "job <id>",
    "novelty <id>" or "reexecution <id>", or None when nothing was queued."""
    jobs.recover_expired()
    reexecution.recover_expired()
    novelty.recover_expired()
    started = None
    if _beside.acquire(blocking=False):
        beside = f"{worker}:beside"
        run = reexecution.claim_next(worker=beside, preemptible=False)
        if run is None:
            _beside.release()
        else:
            threading.Thread(
                target=_run_beside, args=(run, beside), name="reexecution-beside", daemon=True
            ).start()
            started = f"reexecution {run.pk}"
    job = jobs.claim_next(worker=worker)
    if job is not None:
        state = execute_job(job, worker=worker)
        log.info("job %s %s", job.id, state)
        return f"job {job.id}"
    row = novelty.claim_next(worker=worker)
    if row is not None:
        state = measure_novelty(row, worker=worker)
        log.info("novelty of job %s: %s", row.pk, state)
        return f"novelty {row.pk}"
    run = reexecution.claim_next(worker=worker, preemptible=True)
    if run is not None:
        outcome = execute_reexecution(run, worker=worker, preempt=_job_waiting)
        log.info("re-execution %s of job %s: %s", run.pk, run.job_id, outcome)
        return f"reexecution {run.pk}"
    return started


def run_worker(stop: threading.Event, *, poll_s: float = 1.0) -> None:
    """The embedded executor: passes of `run_once`, sleeping until woken when idle."""
    worker = worker_name()
    while not stop.is_set():
        try:
            if run_once(worker) is not None:
                continue
        except Exception:
            log.exception("executor worker pass failed")
        finally:
            close_old_connections()
        wait_for_work(poll_s)
