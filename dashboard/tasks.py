"""Celery tasks: thin wrappers over the domains' services and the bundled executor's worker."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from dashboard.jobs import services as jobs
from dashboard.novelty import services as novelty
from dashboard.queue import MEASURE_NOVELTY_TASK, REEXECUTE_TASK, RUN_JOB_TASK
from dashboard.reexecution import services as reexecution
from dashboard.worker import execute_job, execute_reexecution, measure_novelty, worker_name


@shared_task(name=RUN_JOB_TASK, acks_late=True, ignore_result=True)
def run_queued_job(job_id: str) -> str | None:
    """Run one queued job; a duplicate delivery finds it claimed and does nothing."""
    worker = worker_name()
    job = jobs.claim_job(job_id=job_id, worker=worker)
    if job is None:
        return None
    return execute_job(job, worker=worker)


@shared_task(name=REEXECUTE_TASK, acks_late=True, ignore_result=True)
def reexecute(run_id: int) -> str | None:
    """Run one queued re-execution (queue `reexecute`); a duplicate delivery does nothing."""
    worker = worker_name()
    run = reexecution.claim(run_id=run_id, worker=worker)
    if run is None:
        return None
    return execute_reexecution(run, worker=worker)


@shared_task(name=MEASURE_NOVELTY_TASK, acks_late=True, ignore_result=True)
def measure_queued_novelty(job_id: str) -> str | None:
    """Measure how new one recorded result is; a duplicate delivery does nothing."""
    worker = worker_name()
    row = novelty.claim(job_id=job_id, worker=worker)
    if row is None:
        return None
    return measure_novelty(row, worker=worker)


@shared_task(name="dashboard.recover_jobs", ignore_result=True)
def recover_jobs() -> dict[str, list[Any]]:
    """Beat: send jobs, re-executions and novelty measurements whose worker died back to
    the queue (or fail them after N tries)."""
    lost = reexecution.recover_expired()
    measuring = novelty.recover_expired()
    return {
        **jobs.recover_expired(),
        **{f"reexecutions_{k}": v for k, v in lost.items()},
        **{f"novelty_{k}": v for k, v in measuring.items()},
    }


@shared_task(name="dashboard.follow_chain", ignore_result=True)
def follow_chain() -> tuple[int, int]:
    """Beat, after the scanner: flag jobs whose storage on chain needs a moderator's look, and
    follow each award to the claim that lands on chain."""
    from dashboard.notary.awards import follow_chain as follow

    return follow()


@shared_task(name="dashboard.scan_bacalhau", ignore_result=True)
def scan_bacalhau() -> list[str]:
    """Beat: import completed jobs from BACALHAU_ORCHESTRATORS (a lease per orchestrator)."""
    from dashboard.bacalhau.scan import scan_all

    return [report.summary() for report in scan_all()]
